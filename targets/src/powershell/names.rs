//! Every Windows name the agent, its requests, the CIM fixtures and the lab agent's CIM-shaped
//! answers use must be a row of the facts table (`model/data/windows.toml`): a class, property,
//! method, parameter, registry value or firewall rule that no source backs fails here.

use super::script_tests::function as function_text;
use super::tests::{every_op, request_lines};
use super::{agent_script, Request};
use kmsconf_model::catalog::PORT_RULE_NAME;
use kmsconf_model::facts::facts;
use serde_json::Value;

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

/// The single-quoted strings of the list that follows `open`, up to its `)`: the header's
/// `$RuleGroups = @('@FirewallAPI.dll,-28002', ...)`, whose items hold commas.
fn quoted(text: &str, open: &str) -> Vec<String> {
    text.match_indices(open)
        .flat_map(|(i, _)| {
            let rest = &text[i + open.len()..];
            let end = rest.find(')').unwrap_or(rest.len());
            rest[..end]
                .split('\'')
                .skip(1)
                .step_by(2)
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The properties a WQL filter tests: the word before ` IS ` or ` = ` inside a `-Filter '...'`,
/// the `$ProductFilter` of the header, or a filter built by `"..." -f` from parsed IDs.
fn wql_properties(text: &str) -> Vec<String> {
    let mut filters: Vec<&str> = Vec::new();
    for open in ["-Filter '", "$ProductFilter = '"] {
        for (i, _) in text.match_indices(open) {
            let rest = &text[i + open.len()..];
            // a single-quoted filter doubles the quotes of its literals: it runs to the line's end
            filters.push(&rest[..rest.find('\n').unwrap_or(rest.len())]);
        }
    }
    for (i, _) in text.match_indices("\" -f ") {
        let literal = &text[..i];
        if let Some(start) = literal.rfind('"') {
            filters.push(&literal[start + 1..]);
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
        .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric()))
        .collect()
}

fn names_in(script: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for marker in [
        "-ClassName ",
        "Invoke-KmsconfMethod $svc ",
        "Invoke-KmsconfMethod $product ",
        "Invoke-KmsconfMethod (Get-KmsconfLicensingService) ",
        "Invoke-KmsconfMethodOut $svc ",
        "Invoke-KmsconfProductMethod $Request ",
        "ItemProperty -Path $SppKey -Name ",
        "-Path $key -Name ",
        "-Property ",
        "$product.",
        "$svc.",
    ] {
        names.extend(after(script, marker).into_iter().map(String::from));
    }
    // the firewall rule and its port and address filters, as discovery reads them
    let rules = script
        .split_once("function Get-KmsconfFirewallRules")
        .map_or("", |(_, rest)| {
            rest.split("\nfunction ").next().unwrap_or(rest)
        });
    for marker in ["= $_.", "]$_.", "$port.", "$address."] {
        names.extend(after(rules, marker).into_iter().map(String::from));
    }
    for list in ["$RuleNames = @(", "$RuleGroups = @("] {
        names.extend(quoted(script, list));
    }
    for list in [
        "$ServiceProperties = @(",
        "$ProductProperties = @(",
        "$SettingProperties = @(",
        "$SettingRegistryValues = @(",
        "$FactRegistryValues = @(",
    ] {
        names.extend(listed(script, list, ')'));
    }
    names.extend(listed(script, "Select-Object -Property ", '\n'));
    names.extend(wql_properties(script));
    // the method calls' argument names: `@{ ProductKey = ...; ... }`
    for open in ["' @{ ", "$arguments = @{ "] {
        for (i, _) in script.match_indices(open) {
            let rest = &script[i + open.len()..];
            let end = rest.find('}').unwrap_or(rest.len());
            for part in rest[..end].split(';') {
                if let Some((name, _)) = part.split_once('=') {
                    names.push(name.trim().to_string());
                }
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The Windows names a request carries as data: a setting's method and its argument, a
/// registry value, a rule and a group resource string.
fn names_in_request(doc: &Value) -> Vec<String> {
    [
        &doc["method"]["name"],
        &doc["method"]["argument"],
        &doc["registry"]["name"],
        &doc["rule"],
        &doc["resource"],
        &doc["name"],
    ]
    .into_iter()
    .filter_map(|v| v.as_str().map(String::from))
    .collect()
}

fn known(name: &str) -> bool {
    facts().knows(name) || name == PORT_RULE_NAME
}

#[test]
fn every_name_the_agent_and_its_requests_use_is_in_the_facts_table() {
    let names = names_in(agent_script());
    for name in &names {
        assert!(
            known(name),
            "the agent uses `{name}`, which the facts table (model/data/windows.toml) does not hold"
        );
    }
    assert!(
        names.len() > 50,
        "the scan found only {} names: {names:?}",
        names.len()
    );
    let mut in_requests = 0;
    for (_, line) in request_lines() {
        let doc: Value = serde_json::from_str(&line).expect("json");
        for name in names_in_request(&doc) {
            in_requests += 1;
            assert!(
                known(&name),
                "a `{}` request carries `{name}`, which the facts table does not hold",
                doc["op"]
            );
        }
    }
    assert!(in_requests > 10, "the scan found only {in_requests} names");
    // the retirement's names are among those scanned
    for name in [
        "UninstallProductKey",
        "ClearKeyManagementServiceListeningPort",
        "RefreshLicenseStatus",
        "KeyManagementServiceVersion",
        "IsKeyManagementServiceMachine",
        "PartialProductKey",
        "ApplicationID",
        "ID",
    ] {
        assert!(names.iter().any(|n| n == name), "`{name}` was not scanned");
    }
    // the scan itself finds a name the table lacks
    for made_up in [
        "Invoke-KmsconfMethod $svc 'SetKeyManagementServiceMagic' @{ Magic = 1 }",
        "Invoke-KmsconfMethod $product 'UninstallEverything'",
        "Invoke-KmsconfMethod (Get-KmsconfLicensingService) 'ClearEverything'",
        "Get-CimInstance -ClassName SoftwareLicensingProduct -Filter 'MadeUpProperty IS NOT NULL'",
        "Get-KmsconfProducts (\"MadeUpId = '{0}'\" -f $id)",
    ] {
        assert!(names_in(made_up).iter().any(|n| !known(n)), "{made_up}");
    }
}

/// Every HRESULT an operation's function in the agent throws itself is a row of the facts table
/// for that operation's kind (`kmsconf lab fault --op`), so `explain` knows it and the table says
/// where it comes from.
#[test]
fn every_code_an_operation_throws_is_in_the_facts_table_for_its_kind() {
    let f = facts();
    let agent = agent_script();
    let mut seen = 0;
    for op in every_op() {
        let name = Request::operation(&op).op;
        // the agent's table: `'install_product_key' = @('result', ${function:Invoke-...})`
        let function = agent
            .split(&format!("'{name}' = @("))
            .nth(1)
            .and_then(|entry| entry.split("${function:").nth(1))
            .and_then(|rest| rest.split('}').next())
            .unwrap_or_else(|| panic!("the agent has no function for `{name}`"));
        let body = function_text(function);
        for (i, _) in body.match_indices("throw ") {
            let thrown = body[i + "throw ".len()..].trim_start_matches(['(', '\'']);
            let Some(code) = thrown.get(..10).filter(|c| c.starts_with("0x")) else {
                continue;
            };
            seen += 1;
            let number = kmsconf_model::catalog::parse_code(code).expect("a code");
            let row = f.hresult(number).unwrap_or_else(|| {
                panic!("{code}, thrown by {function}, is not in the facts table")
            });
            assert!(
                row.ops.iter().any(|o| o == op.kind().id()),
                "{code} is thrown by {function} for `{}`, which its facts row does not list",
                op.kind().id()
            );
        }
    }
    assert!(seen >= 4, "the scan found only {seen} codes");
}

/// Every property of a CIM-shaped discovery document (a fixture of a real host, or what
/// `kmsconf lab agent` answers) is in the facts table. `what` names it in failures.
pub(crate) fn assert_document_names_known(what: &str, doc: &Value) {
    let f = facts();
    for (part, class) in [
        ("SoftwareLicensingService", "SoftwareLicensingService"),
        ("SoftwareLicensingProduct", "SoftwareLicensingProduct"),
        ("FirewallRules", "MSFT_NetFirewallRule"),
        ("OperatingSystem", "Win32_OperatingSystem"),
    ] {
        let objects = match &doc[part] {
            Value::Array(many) => many.clone(),
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
                    "{what}: {class}.{key} is not in the facts table"
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
            "{what}: registry value {key} is not in the facts table"
        );
    }
}

#[test]
fn every_property_the_cim_fixtures_carry_is_in_the_facts_table() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cim");
    for name in ["kms-host.json", "fresh-server.json"] {
        let text = std::fs::read_to_string(dir.join(name)).expect("fixture");
        let doc: Value = serde_json::from_str(&text).expect("json");
        assert_document_names_known(name, &doc);
    }
}
