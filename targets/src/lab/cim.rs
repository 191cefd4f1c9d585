//! A lab host as a Windows host's agent shows it: the CIM-shaped JSON of discovery and of each
//! operation's read-back (`SoftwareLicensingService`, `SoftwareLicensingProduct`, the
//! `SoftwareProtectionPlatform` registry values, `MSFT_NetFirewallRule`), with the property
//! names, types and quirks `crate::cim` reads, so `kmsconf lab agent` exercises that parsing.
//! The opposite direction of `crate::cim`: what it reads, this writes.

use kmsconf_model::catalog;
use kmsconf_model::catalog::PORT_RULE_NAME;
use kmsconf_model::config::{ProductId, Profile};
use kmsconf_model::settings::{self, RegistryKind, RegistryValue, SettingValue};
use kmsconf_model::state::{
    Channel, HostState, LicenseStatus, ProductState, RuleState, ServiceState,
};
use serde_json::{json, Map, Value};

/// The activation ID of a Windows product whose lab state names none (Windows is found by its
/// application).
const WINDOWS_SKU: &str = "ef6cfc9f-8c5d-44ac-9aad-de6a2ea0ae03";
/// How CIM shows -1 in a uint32 counter.
const MINUS_ONE: u32 = u32::MAX;

/// The discovery document: `running` is the service the Software Protection service runs with
/// when a restart is pending (`None`: the one configured).
pub fn discovery(state: &HostState, running: Option<&ServiceState>) -> Value {
    json!({
        "ComputerName": state.computer_name,
        "OperatingSystem": operating_system(state),
        "SoftwareLicensingService": service(state, running),
        "SoftwareLicensingProduct": products(state),
        "SoftwareProtectionPlatform": registry(state),
        "FirewallRules": firewall_rules(state),
        "Readings": readings(state),
        "Clock": {
            "Utc": state.clock.map(kmsconf_engine::lock::rfc3339),
            "TimeZone": "UTC",
            "UtcOffsetMinutes": 0,
        },
    })
}

/// Whether a real host would show a restart pending, read from the lab's own CIM answer as
/// discovery reads a host's (`crate::cim`): a setting whose registry value (what was written)
/// differs from its CIM property (what the running service uses). A pending restart for a setting
/// without both (the publish list, a cleared port) shows nowhere on a real host, so the lab does
/// not show it either.
pub fn shows_restart_pending(state: &HostState, running: Option<&ServiceState>) -> bool {
    let svc = serde_json::from_value::<crate::cim::CimService>(service(state, running));
    let reg = serde_json::from_value::<crate::cim::CimRegistry>(registry(state));
    match (svc, reg) {
        (Ok(svc), Ok(reg)) => crate::cim::service(&svc, &reg).is_ok_and(|s| s.restart_pending),
        _ => false,
    }
}

/// What the agent reads back after a product operation.
pub fn read_products(state: &HostState) -> Value {
    json!({ "Products": products(state) })
}

/// What the agent reads back after a service operation.
pub fn read_service(state: &HostState, running: Option<&ServiceState>) -> Value {
    json!({ "Service": service(state, running), "Registry": registry(state) })
}

/// What the agent reads back after a firewall operation.
pub fn read_firewall(state: &HostState) -> Value {
    json!({ "FirewallRules": firewall_rules(state) })
}

/// `SoftwareLicensingService`: each setting's property shows what the running service uses (a
/// setting that needs no restart is in use at once); the service-wide counters are Windows'.
fn service(state: &HostState, running: Option<&ServiceState>) -> Value {
    let running = running.unwrap_or(&state.service);
    let mut svc = Map::new();
    svc.insert("Version".into(), json!("10.0.20348.1"));
    for row in settings::table() {
        if let Some(property) = row.property {
            // a restarted-for setting with no registry value of its own (the intervals) shows
            // what was set: it is the only place the agent can read it from
            let source = if row.needs_restart && row.write.registry().is_some() {
                running
            } else {
                &state.service
            };
            svc.insert(property.into(), setting_json(&source.current(row)));
        }
    }
    let windows = state.products.get(&ProductId::Windows);
    counters(&mut svc, windows);
    svc.insert("ClientMachineID".into(), json!(state.client_machine_id));
    svc.insert(
        "RemainingWindowsReArmCount".into(),
        json!(state.remaining_rearm_count),
    );
    Value::Object(svc)
}

fn setting_json(value: &SettingValue) -> Value {
    match value {
        SettingValue::U16(n) => json!(n),
        SettingValue::U32(n) => json!(n),
        SettingValue::Bool(b) => json!(b),
        SettingValue::List(list) => json!(list.iter().map(ToString::to_string).collect::<Vec<_>>()),
    }
}

/// The KMS counters of a product (or, from the Windows product, the service's): -1 and null
/// where the product is not a KMS host, as CIM shows them.
fn counters(into: &mut Map<String, Value>, product: Option<&ProductState>) {
    let kms = product.and_then(|p| p.required_count.map(|_| p));
    into.insert(
        "IsKeyManagementServiceMachine".into(),
        json!(u32::from(kms.is_some())),
    );
    into.insert(
        "KeyManagementServiceCurrentCount".into(),
        json!(kms.and_then(|p| p.current_count).unwrap_or(MINUS_ONE)),
    );
    into.insert(
        "RequiredClientCount".into(),
        json!(kms.and_then(|p| p.required_count).unwrap_or(MINUS_ONE)),
    );
    let requests = kms.map(|p| &p.requests);
    for (name, count) in [
        (
            "KeyManagementServiceTotalRequests",
            requests.map(|r| r.total),
        ),
        (
            "KeyManagementServiceFailedRequests",
            requests.map(|r| r.failed),
        ),
        (
            "KeyManagementServiceUnlicensedRequests",
            requests.map(|r| r.unlicensed),
        ),
        (
            "KeyManagementServiceLicensedRequests",
            requests.map(|r| r.licensed),
        ),
        (
            "KeyManagementServiceOOBGraceRequests",
            requests.map(|r| r.initial_grace),
        ),
        (
            "KeyManagementServiceOOTGraceRequests",
            requests.map(|r| r.out_of_tolerance_grace),
        ),
        (
            "KeyManagementServiceNonGenuineGraceRequests",
            requests.map(|r| r.non_genuine_grace),
        ),
        (
            "KeyManagementServiceNotificationRequests",
            requests.map(|r| r.notification),
        ),
    ] {
        into.insert(name.into(), json!(count));
    }
}

/// The registry values of the settings: present once set away from Windows' default, in their
/// registry type (REG_SZ as text, DWORD as a number, REG_MULTI_SZ as a list).
fn registry(state: &HostState) -> Value {
    let configured = &state.service;
    let default = ServiceState::windows_default();
    let mut values = Map::new();
    for row in settings::table() {
        let Some(reg) = row.write.registry() else {
            continue;
        };
        // a lab host made to keep the value under another key than its row's: the agent, which
        // reads it under the row's key, finds nothing
        if elsewhere(state, reg) {
            values.insert(reg.name.into(), Value::Null);
            continue;
        }
        let value = configured.current(row);
        let data = if value == default.current(row) {
            None
        } else {
            value.registry_data(reg.inverted)
        };
        let json = match (reg.kind, data) {
            (_, None) => Value::Null,
            (RegistryKind::MultiSz, Some(d)) => json!(d),
            (RegistryKind::Sz, Some(d)) => json!(d.concat()),
            (RegistryKind::Dword, Some(d)) => json!(d.concat().parse::<u32>().unwrap_or(0)),
        };
        values.insert(reg.name.into(), json);
    }
    Value::Object(values)
}

/// Whether the lab host's readings (`host.readings.registry` of its file) hold `reg` under
/// another key than its row's only.
fn elsewhere(state: &HostState, reg: &RegistryValue) -> bool {
    state.readings.registry.as_ref().is_some_and(|all| {
        let named: Vec<_> = all.iter().filter(|r| r.name == reg.name).collect();
        !named.is_empty() && named.iter().all(|r| r.key != reg.key)
    })
}

/// `Win32_OperatingSystem`: the caption (localized on a real host) and the numbers the edition
/// is chosen by.
fn operating_system(state: &HostState) -> Value {
    let build = state.os_build.unwrap_or(20348);
    json!({
        "Caption": state.os,
        "Version": format!("10.0.{build}"),
        "BuildNumber": build.to_string(),
        "OperatingSystemSKU": state.os_sku,
    })
}

/// What the agent reads of the Windows facts no source confirms: by default what the facts table
/// says (PowerShell 5.1 in FullLanguage, `ProductKeyChannel` present, each setting's registry
/// value under its row's key with its row's type once it is set); a field of the lab file's
/// `host.readings` replaces the default, which is how a lab host contradicts the table.
fn readings(state: &HostState) -> Value {
    let own = &state.readings;
    let registry: Vec<Value> = match &own.registry {
        Some(list) => list
            .iter()
            .map(|r| json!({ "Key": r.key, "Name": r.name, "Type": r.kind }))
            .collect(),
        None => set_registry_values(&state.service),
    };
    json!({
        "PowerShellVersion": own.powershell_version.as_deref().unwrap_or("5.1.20348.1"),
        "LanguageMode": own.language_mode.as_deref().unwrap_or("FullLanguage"),
        "ProductKeyChannel": own.product_key_channel.unwrap_or(true),
        "Registry": registry,
    })
}

/// The settings' registry values the lab host holds (those not at Windows' default), each under
/// its row's key with its row's type, as .NET's `RegistryValueKind` names it.
fn set_registry_values(configured: &ServiceState) -> Vec<Value> {
    let default = ServiceState::windows_default();
    settings::table()
        .iter()
        .filter(|row| configured.current(row) != default.current(row))
        .filter_map(|row| row.write.registry())
        .map(|reg| json!({ "Key": reg.key, "Name": reg.name, "Type": reg.kind.property_type() }))
        .collect()
}

/// The products discovery's filter selects: the keyed ones, and the Office SKUs whose license
/// pack is installed.
fn products(state: &HostState) -> Vec<Value> {
    state
        .products
        .iter()
        .filter(|(id, p)| p.partial_key.is_some() || state.license_packs.contains(id))
        .map(|(id, p)| product(*id, p))
        .collect()
}

fn product(id: ProductId, p: &ProductState) -> Value {
    let info = catalog::product(id);
    let channel = match p.channel {
        Channel::KmsHost => Some(("Volume:CSVLK", "VOLUME_KMS")),
        Channel::KmsClient => Some(("Volume:GVLK", "VOLUME_KMSCLIENT")),
        Channel::Mak => Some(("Volume:MAK", "VOLUME_MAK")),
        Channel::Retail => Some(("Retail", "RETAIL")),
        Channel::None => None,
    };
    let mut product = Map::new();
    for (name, value) in [
        (
            "ID",
            json!(p
                .activation_id
                .clone()
                .or_else(|| info.and_then(|i| i.activation_id.clone()))
                .unwrap_or_else(|| WINDOWS_SKU.to_string())),
        ),
        (
            "ApplicationID",
            json!(info.map(|i| i.application_id.clone())),
        ),
        ("Name", json!(catalog::product_name(id))),
        (
            "Description",
            json!(p.description.clone().unwrap_or_else(|| format!(
                "{}, {} channel",
                catalog::product_name(id),
                channel.map_or("VOLUME_KMS", |c| c.1)
            ))),
        ),
        ("PartialProductKey", json!(p.partial_key)),
        ("ProductKeyChannel", json!(channel.map(|c| c.0))),
        ("LicenseStatus", json!(license_status(p.license_status))),
        ("GracePeriodRemaining", json!(p.grace_minutes)),
        (
            "OfflineInstallationId",
            json!(p.installation_id.as_deref().map(digits)),
        ),
        ("LicenseIsAddon", json!(false)),
    ] {
        product.insert(name.into(), value);
    }
    counters(&mut product, Some(p));
    Value::Object(product)
}

/// `LicenseStatus` as CIM numbers it.
fn license_status(status: LicenseStatus) -> u32 {
    (0..=6)
        .find(|n| LicenseStatus::from_cim(*n) == Some(status))
        .unwrap_or(0)
}

/// Windows shows the installation ID as its digits alone.
fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// The managed groups' inbound rules as `Get-NetFirewallRule -Group G -Direction Inbound` finds
/// them: each rule the host has with its own profiles and scope, and its protocol and port from
/// the facts table (File and Printer Sharing's SMB, NetBIOS, ICMP, RPC and LLMNR rules, the Key
/// Management Service group's two); and kmsconf's own port rule.
fn firewall_rules(state: &HostState) -> Vec<Value> {
    let mut rules = Vec::new();
    for (group, g) in &state.firewall.groups {
        let Some(info) = catalog::rule_group(*group) else {
            continue;
        };
        for (name, r) in &g.rules {
            let fact = info.rules.iter().find(|f| f.name == *name);
            // the lab file's `host.readings.rule_filters` replaces the table's filter
            let own = state
                .readings
                .rule_filters
                .iter()
                .flatten()
                .find(|f| f.name == *name);
            let filter = match own {
                Some(own) => PortFilter {
                    protocol: &own.protocol,
                    local_ports: own.local_ports.iter().map(String::as_str).collect(),
                },
                None => PortFilter {
                    protocol: fact.map_or("TCP", |f| f.protocol.as_str()),
                    // an ICMP rule's port filter has no port: Windows shows `Any`
                    local_ports: vec![fact.and_then(|f| f.local_port.as_deref()).unwrap_or("Any")],
                },
            };
            rules.push(rule_json(name, Some(&info.group), &filter, r));
        }
    }
    if let Some(rule) = &state.firewall.port_rule {
        let state = RuleState {
            enabled: true,
            profiles: rule.profiles.clone(),
            remote_addresses: rule.remote_addresses.clone(),
        };
        let port = rule.port.to_string();
        let filter = PortFilter {
            protocol: "TCP",
            local_ports: vec![&port],
        };
        rules.push(rule_json(PORT_RULE_NAME, None, &filter, &state));
    }
    rules
}

/// What `Get-NetFirewallPortFilter` shows of a rule.
struct PortFilter<'a> {
    protocol: &'a str,
    local_ports: Vec<&'a str>,
}

/// One inbound rule as the agent reads it (`MSFT_NetFirewallRule` with its port and address
/// filters): Windows shows all three profiles as `Any`, no scope as `Any`.
fn rule_json(name: &str, group: Option<&str>, filter: &PortFilter, r: &RuleState) -> Value {
    let profile = if r.profiles.len() == Profile::ALL.len() {
        "Any".to_string()
    } else {
        r.profiles
            .iter()
            .map(|p| p.windows_name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let scope = if r.remote_addresses.is_empty() {
        json!("Any")
    } else {
        json!(r.remote_addresses)
    };
    json!({
        "Name": name,
        "Group": group,
        "Direction": "Inbound",
        "Enabled": if r.enabled { "True" } else { "False" },
        "Profile": profile,
        "Protocol": filter.protocol,
        "LocalPort": filter.local_ports,
        "RemoteAddress": scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsconf_model::config::RuleGroup;
    use kmsconf_model::state::{PortRule, RuleGroupState};

    /// What `crate::cim` reads from the lab's document is the lab's state.
    fn read(state: &HostState, running: Option<&ServiceState>) -> HostState {
        let json = discovery(state, running).to_string();
        crate::cim::parse_discovery(&json).expect("parses").0
    }

    /// The same settings, as planning compares them (a port never set is 1688 in effect), and
    /// the same pending restart.
    fn same_service(seen: &ServiceState, lab: &ServiceState) {
        for row in settings::table() {
            assert_eq!(seen.current(row), lab.current(row), "{}", row.key);
        }
        assert_eq!(seen.restart_pending, lab.restart_pending);
    }

    #[test]
    fn a_fresh_host_reads_back_as_itself() {
        let mut state = HostState::fresh_windows_server("LAB01");
        state.clock = Some(1_800_000_000);
        let seen = read(&state, None);
        same_service(&seen.service, &state.service);
        assert_eq!(seen.firewall, state.firewall);
        assert_eq!(seen.products.len(), 1);
        let (w, lab) = (
            &seen.products[&ProductId::Windows],
            &state.products[&ProductId::Windows],
        );
        assert_eq!(
            (&w.partial_key, w.channel, w.license_status),
            (&lab.partial_key, lab.channel, lab.license_status)
        );
        assert_eq!(seen.clock, state.clock);
        assert!(seen.license_packs.is_empty());
    }

    /// Each built-in rule's port filter reaches the readings: as the table has it by default (no
    /// surprise), as the lab file's `host.readings.rule_filters` says otherwise (a surprise that
    /// stops that rule's change).
    #[test]
    fn built_in_rule_filters_read_back_and_a_lab_file_can_contradict_them() {
        use kmsconf_model::state::RuleFilterReading;
        use kmsconf_model::surprise::surprises;
        let mut state = HostState::fresh_windows_server("LAB01");
        let seen = read(&state, None);
        let filters = seen.readings.rule_filters.clone().expect("read");
        let kms = filters
            .iter()
            .find(|f| f.name == "SPPSVC-In-TCP")
            .expect("the KMS rule");
        assert_eq!(
            (kms.protocol.as_str(), &kms.local_ports[..]),
            ("TCP", &["1688".to_string()][..])
        );
        assert!(filters.iter().any(|f| f.name == "FPS-SMB-In-TCP"));
        assert!(!filters
            .iter()
            .any(|f| f.name == kmsconf_model::catalog::PORT_RULE_NAME));
        assert_eq!(surprises(&seen), Vec::new());

        state.readings.rule_filters = Some(vec![RuleFilterReading {
            name: "SPPSVC-In-TCP".into(),
            protocol: "TCP".into(),
            local_ports: vec!["RPC".into()],
        }]);
        let found = surprises(&read(&state, None));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].observed, "`TCP RPC`");
        assert!(found[0].affects("firewall.key-management-service.SPPSVC-In-TCP"));
    }

    #[test]
    fn settings_a_restart_waits_for_read_back_as_pending() {
        let mut state = HostState::fresh_windows_server("LAB01");
        let running = state.service.clone();
        let set = |key| settings::find(key).expect("row");
        state.service.store(set("port"), SettingValue::U16(1689));
        state
            .service
            .store(set("dns_publishing"), SettingValue::Bool(false));
        state
            .service
            .store(set("activation_interval"), SettingValue::U32(60));
        state.service.restart_pending = true;
        state.license_packs.insert(ProductId::Office2019);
        state
            .products
            .insert(ProductId::Office2019, ProductState::empty());
        // both Key Management Service rules, each with its own profiles and scope
        let rule = |profiles: Vec<Profile>, scope: &str| RuleState {
            enabled: true,
            profiles,
            remote_addresses: vec![scope.into()],
        };
        let rules = [
            ("SPPSVC-In-TCP", rule(vec![Profile::Private], "LocalSubnet")),
            (
                "SPPSVC-In-TCP-NoScope",
                rule(vec![Profile::Domain], "10.0.0.0/8"),
            ),
        ];
        state.firewall.groups.insert(
            RuleGroup::KeyManagementService,
            RuleGroupState::from_rules(rules.map(|(n, r)| (n.to_string(), r)).into()),
        );
        state.firewall.port_rule = Some(PortRule {
            port: 1689,
            remote_addresses: Vec::new(),
            profiles: vec![Profile::Domain, Profile::Private],
        });
        let seen = read(&state, Some(&running));
        same_service(&seen.service, &state.service);
        assert_eq!(seen.firewall, state.firewall);
        // every name of what `kmsconf lab agent` answers is a row of the facts table too
        let doc = discovery(&state, Some(&running));
        crate::powershell::names::assert_document_names_known("the lab agent's discovery", &doc);
        assert_eq!(seen.license_packs, state.license_packs);
        state.service.restart_pending = false;
        let restarted = read(&state, None);
        same_service(&restarted.service, &state.service);
    }
}
