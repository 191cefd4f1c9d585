use super::*;
use crate::readings::RegistryReading;

fn host() -> HostState {
    HostState::fresh_windows_server("KMS01")
}

fn filter(name: &str, protocol: &str, ports: &[&str]) -> crate::readings::RuleFilterReading {
    crate::readings::RuleFilterReading {
        name: name.into(),
        protocol: protocol.into(),
        local_ports: ports.iter().map(ToString::to_string).collect(),
    }
}

fn reading(key: &str, name: &str, kind: &str) -> RegistryReading {
    RegistryReading {
        key: key.into(),
        name: name.into(),
        kind: kind.into(),
    }
}

#[test]
fn a_host_that_agrees_with_the_table_has_no_surprise() {
    let mut state = host();
    state.readings = HostReadings {
        powershell_version: Some("5.1.20348.1".into()),
        language_mode: Some("FullLanguage".into()),
        product_key_channel: Some(true),
        registry: Some(vec![
            reading("spp", "KeyManagementServiceListeningPort", "REG_SZ"),
            reading("spp", "VLActivationInterval", "REG_DWORD"),
        ]),
        rule_filters: Some(vec![
            filter("SPPSVC-In-TCP", "TCP", &["1688"]),
            // the NetSecurity cmdlets' spelling of the rule store's `RPC-EPMap`
            filter("FPS-RPCSS-In-TCP", "TCP", &["RPCEPMap"]),
            filter("FPS-ICMP4-ERQ-In", "ICMPv4", &["Any"]),
        ]),
    };
    assert_eq!(surprises(&state), Vec::new());
    // nothing read, nothing compared
    assert_eq!(surprises(&host()), Vec::new());
}

#[test]
fn a_registry_value_of_another_type_or_under_another_key_names_its_setting() {
    let mut state = host();
    state.readings.registry = Some(vec![
        reading("spp", "VLActivationInterval", "REG_SZ"),
        reading("sl", "VLRenewalInterval", "REG_DWORD"),
    ]);
    let found = surprises(&state);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].fact, "registry VLActivationInterval");
    assert_eq!(found[0].source, "spp-listing");
    assert_eq!(found[0].expected, "REG_DWORD there");
    assert!(found[0].observed.starts_with(
        "REG_SZ under `HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\SoftwareProtectionPlatform`"
    ));
    assert_eq!(found[0].affects, ["service.activation_interval"]);
    assert!(
        found[1].expected.contains("SoftwareProtectionPlatform"),
        "{:?}",
        found[1]
    );
    assert!(found[1].observed.contains("CurrentVersion\\SL"));
    assert!(found[1].affects("service.renewal_interval"));
    assert!(!found[1].affects("service.renewal_intervals"));
    assert!(!found[1].affects("service.port"));
}

#[test]
fn the_agent_and_product_facts_affect_their_changes() {
    let mut state = host();
    state.readings.language_mode = Some("ConstrainedLanguage".into());
    state.readings.powershell_version = Some("2.0".into());
    state.readings.product_key_channel = Some(false);
    let found = surprises(&state);
    let facts: Vec<&str> = found.iter().map(|s| s.fact.as_str()).collect();
    assert_eq!(
        facts,
        [
            "agent language-mode",
            "agent powershell-version",
            "class SoftwareLicensingProduct.ProductKeyChannel"
        ]
    );
    assert!(found[0].affects("firewall.kms-port-rule"));
    assert!(found[2].affects("products.windows.host_key"));
    assert!(!found[2].affects("service.port"));
    assert!(!older("5.1.17763.1", "3.0") && older("2.0", "3.0") && !older("vNext", "3.0"));
}

#[test]
fn a_missing_built_in_rule_is_a_warning_no_change_relies_on() {
    let mut state = host();
    let group = state
        .firewall
        .groups
        .get_mut(&RuleGroup::KeyManagementService)
        .expect("the KMS group");
    group.rules.remove("SPPSVC-In-TCP-NoScope");
    let found = surprises(&state);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].fact, "firewall rule SPPSVC-In-TCP-NoScope");
    assert_eq!(found[0].source, "rule-store");
    assert_eq!(found[0].observed, "no such rule");
    assert!(found[0].affects.is_empty());
}

/// A built-in rule that does not let in what the table says (another port or protocol) is a
/// surprise that stops the change to that rule, and only that one.
#[test]
fn a_built_in_rule_on_another_port_or_protocol_stops_its_own_change() {
    let mut state = host();
    state.readings.rule_filters = Some(vec![
        filter("SPPSVC-In-TCP", "TCP", &["1689"]),
        filter("SPPSVC-In-TCP-NoScope", "TCP", &["1688"]),
        filter("FPS-LLMNR-In-UDP", "TCP", &["5355"]),
    ]);
    let found = surprises(&state);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].fact, "firewall rule SPPSVC-In-TCP");
    assert_eq!(found[0].source, "rule-store");
    assert!(found[0].expected.contains("TCP 1688"), "{:?}", found[0]);
    assert_eq!(found[0].observed, "`TCP 1689`");
    assert!(found[0].affects("firewall.key-management-service.SPPSVC-In-TCP"));
    assert!(!found[0].affects("firewall.key-management-service.SPPSVC-In-TCP-NoScope"));
    assert!(!found[0].affects("service.port"));
    assert_eq!(found[1].fact, "firewall rule FPS-LLMNR-In-UDP");
    assert_eq!(found[1].observed, "`TCP 5355`");
    assert!(found[1].affects("firewall.file-and-printer-sharing.FPS-LLMNR-In-UDP"));
}
