use super::*;
use crate::settings::{Write, SETTINGS};

#[test]
fn the_table_parses_and_every_row_names_a_known_source() {
    let f = load().unwrap_or_else(|e| panic!("{e}"));
    let sources: Vec<&String> = f
        .class
        .iter()
        .map(|c| &c.source)
        .chain(f.method.iter().map(|m| &m.source))
        .chain(f.registry.iter().map(|r| &r.source))
        .chain(f.firewall_group.iter().map(|g| &g.source))
        .chain(
            f.firewall_group
                .iter()
                .flat_map(|g| g.rules.iter().map(|r| &r.source)),
        )
        .chain(f.hresult.iter().map(|h| &h.source))
        .chain(f.winrm.iter().map(|w| &w.source))
        .chain(f.firewall_error.iter().map(|e| &e.source))
        .chain(f.agent.iter().map(|a| &a.source))
        .chain(f.sku.iter().map(|s| &s.source))
        .chain(f.os_build.iter().map(|b| &b.source))
        .chain(f.setting_readback.iter().map(|b| &b.source))
        .chain(f.event.iter().map(|e| &e.source))
        .collect();
    for s in sources {
        assert!(
            f.sources.contains_key(s),
            "source `{s}` is not in [sources]"
        );
    }
    for m in &f.method {
        assert!(
            f.class.iter().any(|c| c.name == m.class),
            "{}: class {}",
            m.name,
            m.class
        );
    }
}

/// Each setting row's method, argument, property and registry value are in the table, and its
/// restart need and its gate on a KMS host key are the table's.
#[test]
fn every_setting_row_agrees_with_the_table() {
    let f = facts();
    for row in SETTINGS {
        let (restart, gate) = match &row.write {
            Write::Method {
                method, registry, ..
            } => {
                let m = f
                    .method("SoftwareLicensingService", method.name)
                    .unwrap_or_else(|| {
                        panic!("{}: method {} not in the table", row.key, method.name)
                    });
                assert!(
                    m.parameters.iter().any(|p| p.name == method.argument),
                    "{}: parameter {}",
                    row.key,
                    method.argument
                );
                if let Some(r) = registry {
                    assert!(f.knows(r.name), "{}: registry {}", row.key, r.name);
                }
                let readback = f
                    .setting_readback
                    .iter()
                    .find(|b| b.setting == row.key)
                    .unwrap_or_else(|| panic!("{}: no [[setting_readback]] row", row.key));
                assert_eq!(
                    readback.registry.as_deref(),
                    registry.as_ref().map(|r| r.name)
                );
                assert_eq!(readback.property.as_deref(), row.property, "{}", row.key);
                assert!(
                    !readback.verified && !readback.reason.is_empty(),
                    "{}",
                    row.key
                );
                (m.restart, m.gate)
            }
            Write::Registry(r) => {
                let fact = f
                    .registry
                    .iter()
                    .find(|x| x.name == r.name && x.key == r.key)
                    .unwrap_or_else(|| panic!("{}: registry {} not in the table", row.key, r.name));
                assert_eq!(fact.kind, r.kind.reg_type(), "{}", row.key);
                (fact.restart, false)
            }
        };
        if let Some(r) = row.write.registry() {
            let fact = f
                .registry
                .iter()
                .find(|x| x.name == r.name && x.key == r.key)
                .expect("a row at the setting's key");
            assert_eq!(fact.kind, r.kind.reg_type(), "{}", row.key);
        }
        if let Some(p) = row.property {
            assert!(f.knows(p), "{}: property {p}", row.key);
        }
        assert_eq!(row.needs_restart, restart, "{}: restart", row.key);
        assert_eq!(row.needs_kms_host_key, gate, "{}: gate", row.key);
    }
}

#[test]
fn the_kms_group_has_both_rules_and_every_code_is_explained() {
    let kms = rule_group(RuleGroup::KeyManagementService).expect("kms group");
    assert_eq!(kms.group, "@FirewallAPI.dll,-28002");
    let names: Vec<&str> = kms.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["SPPSVC-In-TCP", "SPPSVC-In-TCP-NoScope"]);
    assert_eq!(kms.rules[0].profiles, [Profile::Private, Profile::Public]);
    assert_eq!(kms.rules[0].remote_addresses, ["LocalSubnet"]);
    assert_eq!(kms.rules[1].profiles, [Profile::Domain]);
    assert!(kms.rules[1].remote_addresses.is_empty());
    for g in RuleGroup::ALL {
        let info = rule_group(g).unwrap_or_else(|| panic!("{g} missing"));
        assert!(info.group.starts_with('@'), "{g}");
    }
    let f = facts();
    for h in &f.hresult {
        let code = super::parse_code(&h.code).expect("code parses");
        assert!(
            crate::catalog::code(code).is_some(),
            "{} ({}) is not in the error catalogue",
            h.code,
            h.name
        );
        for op in &h.ops {
            assert!(
                crate::ops::OpKind::parse(op).is_some(),
                "{}: op {op}",
                h.code
            );
        }
    }
}

/// The methods a retirement calls are rows with their own sources: the switch slmgr.vbs has for
/// each (none clears the port), and the port's clear is for KMS hosts only.
#[test]
fn every_method_kmsconf_names_is_a_sourced_row() {
    let f = facts();
    for m in Method::ALL {
        let row = m
            .fact()
            .unwrap_or_else(|| panic!("{}.{} is not in the table", m.class, m.name));
        assert!(
            f.sources[&row.source].contains("Microsoft Learn"),
            "{}",
            m.name
        );
    }
    assert_eq!(Method::UNINSTALL_PRODUCT_KEY.equivalent(), "slmgr.vbs /upk");
    assert_eq!(Method::INSTALL_PRODUCT_KEY.equivalent(), "slmgr.vbs /ipk");
    assert_eq!(
        Method::CLEAR_LISTENING_PORT.equivalent(),
        "SoftwareLicensingService.ClearKeyManagementServiceListeningPort()"
    );
    assert!(Method::CLEAR_LISTENING_PORT.kms_host_only());
    assert!(!Method::UNINSTALL_PRODUCT_KEY.kms_host_only());
    for id in [
        "install-product-key",
        "uninstall-product-key",
        "clear-listening-port",
    ] {
        assert!(
            f.sources[&format!("sppwmi-{id}")].contains("slmgr.vbs"),
            "{id}: the slmgr.vbs source is named too"
        );
    }
}

/// The WinRM constants the model uses are the table's.
#[test]
fn winrm_ports_are_the_tables() {
    use crate::config::{OperationTimeout, WINRM_HTTPS_PORT, WINRM_HTTP_PORT};
    let f = facts();
    assert_eq!(f.winrm("http-port"), WINRM_HTTP_PORT.to_string());
    assert_eq!(f.winrm("https-port"), WINRM_HTTPS_PORT.to_string());
    assert_eq!(
        f.winrm("client-operation-timeout"),
        OperationTimeout::DEFAULT.seconds().to_string()
    );
    assert_eq!(
        f.winrm("server-max-timeout-ms-default"),
        (OperationTimeout::SERVER_DEFAULT_MAX * 1000).to_string()
    );
}

/// A rule the host lacks is the cmdlet's not-found error, with no HRESULT.
#[test]
fn a_missing_rule_is_the_cmdlets_not_found_error() {
    assert_eq!(
        facts().rule_not_found("SPPSVC-In-TCP-NoScope"),
        "No MSFT_NetFirewallRule objects found with property 'InstanceID' equal to 'SPPSVC-In-TCP-NoScope'.  Verify the value of the property and retry. (ObjectNotFound)"
    );
}

/// Each SKU row names editions of the GVLK table (Windows ones), either by build or from a first
/// build on, and every build it names has an `[[os_build]]` row with its source.
#[test]
fn every_sku_row_names_a_windows_edition_and_sourced_builds() {
    let f = facts();
    assert!(f.sku.len() >= 15);
    for sku in &f.sku {
        assert!(
            sku.builds.is_empty() != sku.edition.is_none(),
            "{}: `builds` or `edition` with `min_build`, not both",
            sku.name
        );
        assert_eq!(
            sku.edition.is_some(),
            sku.min_build.is_some(),
            "{}",
            sku.name
        );
        let builds: Vec<u32> = sku
            .builds
            .keys()
            .map(|b| b.parse().expect("a build number"))
            .chain(sku.min_build)
            .collect();
        for build in builds {
            assert!(
                f.os_build.iter().any(|b| b.build == build),
                "{}: build {build} has no [[os_build]] row",
                sku.name
            );
        }
        for id in sku.builds.values().chain(sku.edition.iter()) {
            let e = crate::catalog::edition(id)
                .unwrap_or_else(|| panic!("{}: no edition {id}", sku.name));
            assert_eq!(e.product, crate::config::ProductId::Windows, "{id}");
        }
        assert_eq!(f.sku.iter().filter(|s| s.value == sku.value).count(), 1);
    }
}

/// The events `kmsconf clients` reads: 12290 from the Key Management Service log with its nine
/// fields in the guide's order, 12293 from the Application log (where the sources put it).
#[test]
fn the_kms_events_are_where_the_sources_put_them() {
    let f = facts();
    let request = f.event(crate::events::REQUEST_EVENT).expect("12290");
    assert_eq!(request.log, crate::events::REQUEST_LOG);
    assert_eq!(request.fields.len(), crate::events::REQUEST_FIELDS);
    assert_eq!(request.fields[3], "cmid");
    assert_eq!(request.fields[8], "activation_id");
    let dns = f.event(crate::events::DNS_FAILURE_EVENT).expect("12293");
    assert_eq!(dns.log, crate::events::DNS_FAILURE_LOG);
    assert_eq!(dns.provider, crate::events::PROVIDER);
    assert_eq!(dns.fields, ["hresult", "dns_domain"]);
    assert!(f.hresult(0x8007_2338).is_some());
}

/// What each row is known by is unique, and every HRESULT and GUID has its shape: a duplicate
/// row would shadow the other, as a lookup finds the first.
#[test]
fn rows_are_unique_and_codes_and_guids_are_well_formed() {
    use std::collections::BTreeSet;
    let f = load().unwrap_or_else(|e| panic!("{e}"));
    let unique = |what: &str, keys: Vec<String>| {
        let mut seen = BTreeSet::new();
        for k in keys {
            assert!(seen.insert(k.clone()), "{what} `{k}` is listed twice");
        }
    };
    unique("class", f.class.iter().map(|c| c.name.clone()).collect());
    let methods = f.method.iter().map(|m| format!("{}.{}", m.class, m.name));
    unique("method", methods.collect());
    let registry = f.registry.iter().map(|r| format!("{}\\{}", r.key, r.name));
    unique("registry value", registry.collect());
    unique(
        "firewall group",
        f.firewall_group.iter().map(|g| g.group.clone()).collect(),
    );
    unique("sku", f.sku.iter().map(|s| s.value.to_string()).collect());
    unique(
        "build",
        f.os_build.iter().map(|b| b.build.to_string()).collect(),
    );
    unique("event", f.event.iter().map(|e| e.id.to_string()).collect());
    let setting = f.setting_readback.iter().map(|b| b.setting.clone());
    unique("setting readback", setting.collect());
    let codes = f.hresult.iter().map(|h| {
        let code = super::parse_code(&h.code).unwrap_or_else(|| panic!("{}: no HRESULT", h.code));
        crate::catalog::format_code(code)
    });
    unique("hresult", codes.collect());
    // the GUIDs the facts quote (an Office KMS SKU's activation ID) are 8-4-4-4-12 hex digits
    for (key, text) in &f.sources {
        for word in text.split(|c: char| !(c.is_ascii_hexdigit() || c == '-')) {
            if word.len() >= 36 && word.matches('-').count() == 4 {
                assert!(crate::events::guid(word).is_some(), "{key}: `{word}`");
            }
        }
    }
}
