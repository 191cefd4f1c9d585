//! Every Windows name the scripts and the CIM fixtures use must be a row of the facts table
//! (`model/data/windows.toml`): a class, property, method, parameter, registry value or firewall
//! rule that no source backs fails here.

use super::tests::{every_op, retirement_ops};
use super::{batch_script, discovery_script};
use kmsconf_model::config::ProductId;
use kmsconf_model::facts::facts;
use kmsconf_model::ops::TargetOp;

/// The words that follow `marker` in `text`, up to a character that cannot be in a name.
fn after<'a>(text: &'a str, marker: &str) -> Vec<&'a str> {
    text.match_indices(marker)
        .map(|(i, _)| {
            let rest = text[i + marker.len()..].trim_start_matches(['\'', ' ']);
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || "_-@,.".contains(c)))
                .unwrap_or(rest.len());
            rest[..end].trim_end_matches([',', '.'])
        })
        .filter(|w| !w.is_empty() && !w.starts_with('$'))
        .collect()
}

/// The names of a PowerShell list: `Select-Object -Property ID, Name` or `@('A', 'B')`.
fn listed(text: &str, open: &str, close: char) -> Vec<String> {
    text.match_indices(open)
        .flat_map(|(i, _)| {
            let rest = &text[i + open.len()..];
            let end = rest.find(close).unwrap_or(rest.len());
            rest[..end]
                .split([',', '\n', '(', '+', '@'])
                .map(|w| w.trim().trim_matches('\'').to_string())
                .filter(|w| {
                    !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The properties a WQL filter tests: the word before ` IS `, ` = ` or ` LIKE ` inside a
/// `-Filter "..."` or `-Filter '...'` (or the `$ProductFilter` the discovery builds).
fn wql_properties(text: &str) -> Vec<String> {
    let mut filters: Vec<&str> = Vec::new();
    for open in ["-Filter \"", "-Filter '", "$ProductFilter = '"] {
        // a single-quoted filter doubles the quotes of its literals, so it runs to the line's end
        let close = if open.ends_with('"') { '"' } else { '\n' };
        for (i, _) in text.match_indices(open) {
            let rest = &text[i + open.len()..];
            let end = rest.find([close, '\n']).unwrap_or(rest.len());
            filters.push(&rest[..end]);
        }
    }
    filters
        .into_iter()
        .flat_map(|filter| {
            let words: Vec<&str> = filter.split([' ', '(', ')']).collect();
            words
                .windows(2)
                .filter(|w| matches!(w[1], "IS" | "=" | "LIKE"))
                .map(|w| w[0].to_string())
                .collect::<Vec<_>>()
        })
        .filter(|w| w.chars().all(|c| c.is_ascii_alphanumeric()) && !w.is_empty())
        .collect()
}

fn names_in(script: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for marker in [
        "-ClassName ",
        "Invoke-KmsconfMethod $svc ",
        "Invoke-KmsconfMethod $product ",
        "Invoke-KmsconfMethod $product[0] ",
        "-ClassName SoftwareLicensingService) ",
    ] {
        names.extend(after(script, marker).into_iter().map(String::from));
    }
    for marker in [
        "Set-NetFirewallRule -Name ",
        "-Group '",
        "ItemProperty -Path $SppKey -Name ",
        "-Path $key -Name ",
    ] {
        names.extend(after(script, marker).into_iter().map(String::from));
    }
    names.extend(listed(script, "Select-Object -Property (@(", ')'));
    names.extend(listed(script, "Select-Object -Property ID,", ')'));
    names.extend(listed(script, "$SettingProperties = @(", ')'));
    names.extend(listed(script, "$SettingRegistryValues = @(", ')'));
    names.extend(wql_properties(script));
    // the method call's argument names: `@{ ProductKey = ...; ... }`
    for (i, _) in script.match_indices("' @{ ") {
        let rest = &script[i + 5..];
        let end = rest.find('}').unwrap_or(rest.len());
        for part in rest[..end].split(';') {
            if let Some((name, _)) = part.split_once('=') {
                names.push(name.trim().to_string());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn every_name_the_scripts_use_is_in_the_facts_table() {
    let f = facts();
    let scripts = [
        discovery_script().text,
        batch_script(&every_op()).text,
        batch_script(&retirement_ops()).text,
    ];
    let mut seen = 0;
    for script in &scripts {
        for name in names_in(script) {
            seen += 1;
            assert!(
                f.knows(&name) || name == kmsconf_model::catalog::PORT_RULE_NAME,
                "the scripts use `{name}`, which the facts table (model/data/windows.toml) does not hold"
            );
        }
    }
    assert!(seen > 60, "the scan found only {seen} names");
    // the retirement's names are among those scanned
    let retire = names_in(&scripts[2]);
    for name in [
        "UninstallProductKey",
        "ClearKeyManagementServiceListeningPort",
        "RefreshLicenseStatus",
        "KeyManagementServiceVersion",
        "IsKeyManagementServiceMachine",
        "PartialProductKey",
        "ID",
    ] {
        assert!(retire.iter().any(|n| n == name), "`{name}` was not scanned");
    }
    // the scan itself finds a name the table lacks
    for made_up in [
        "Invoke-KmsconfMethod $svc 'SetKeyManagementServiceMagic' @{ Magic = 1 }",
        "Invoke-KmsconfMethod $product[0] 'UninstallEverything'",
        "Invoke-KmsconfMethod (Get-CimInstance -ClassName SoftwareLicensingService) 'ClearEverything'",
        "Get-CimInstance -ClassName SoftwareLicensingProduct -Filter \"MadeUpProperty IS NOT NULL\"",
    ] {
        assert!(
            names_in(made_up).iter().any(|n| !f.knows(n)),
            "{made_up}"
        );
    }
}

/// Every HRESULT an operation's script block throws itself is a row of the facts table for
/// that operation's kind (`kmsconf lab fault --op`), so `explain` knows it and the table says
/// where it comes from.
#[test]
fn every_code_a_script_throws_is_in_the_facts_table_for_its_operation() {
    let f = facts();
    let mut seen = 0;
    for op in
        every_op()
            .into_iter()
            .chain(retirement_ops())
            .chain([TargetOp::UninstallProductKey {
                product: ProductId::Windows,
                activation_id: "not a guid".into(),
            }])
    {
        let text = batch_script(std::slice::from_ref(&op)).text;
        let body = text
            .split("Invoke-KmsconfOp 0 {")
            .nth(1)
            .unwrap_or_default();
        for (i, _) in body.match_indices("throw ") {
            let Some(code) = body[i..].find("0x").map(|at| &body[i + at..i + at + 10]) else {
                continue;
            };
            seen += 1;
            let number = kmsconf_model::catalog::parse_code(code).expect("a code");
            let row = f.hresult(number).unwrap_or_else(|| {
                panic!(
                    "{code}, thrown for {:?}, is not in the facts table",
                    op.kind()
                )
            });
            assert!(
                row.ops.iter().any(|o| o == op.kind().id()),
                "{code} is thrown for `{}`, which its facts row does not list",
                op.kind().id()
            );
        }
    }
    assert!(seen >= 5, "the scan found only {seen} codes");
}

#[test]
fn every_property_the_cim_fixtures_carry_is_in_the_facts_table() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cim");
    let f = facts();
    for name in ["kms-host.json", "fresh-server.json"] {
        let text = std::fs::read_to_string(dir.join(name)).expect("fixture");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
        for (part, class) in [
            ("SoftwareLicensingService", "SoftwareLicensingService"),
            ("SoftwareLicensingProduct", "SoftwareLicensingProduct"),
            ("FirewallRules", "MSFT_NetFirewallRule"),
            ("OperatingSystem", "Win32_OperatingSystem"),
        ] {
            let objects = match &doc[part] {
                serde_json::Value::Array(many) => many.clone(),
                one => vec![one.clone()],
            };
            let props = &f
                .class
                .iter()
                .find(|c| c.name == class)
                .expect("class")
                .properties;
            for object in objects {
                for key in object
                    .as_object()
                    .map(|o| o.keys().collect())
                    .unwrap_or_else(Vec::new)
                {
                    assert!(
                        props.contains(key),
                        "{name}: {class}.{key} is not in the facts table"
                    );
                }
            }
        }
        let registry = doc["SoftwareProtectionPlatform"]
            .as_object()
            .expect("registry");
        for key in registry.keys() {
            assert!(
                f.knows(key),
                "{name}: registry value {key} is not in the facts table"
            );
        }
    }
}
