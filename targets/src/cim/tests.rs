//! The CIM reader's unit tests, against the captured discovery fixtures.

use super::*;
use kmsconf_model::settings::SettingValue;

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/cim")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_kms_host_reads_as_its_state_with_pending_restart_and_counters() {
    let (state, seen) = parse_discovery(&fixture("kms-host.json")).expect("parses");
    assert_eq!(state.computer_name, "KMS01");
    assert_eq!(state.os, "Microsoft Windows Server 2022 Datacenter");
    // the registry holds what was set; the CIM property what the running service uses
    assert_eq!(state.service.port(), 1689);
    assert!(state.service.restart_pending);
    let value = |key| state.service.value(key).expect("row");
    assert_eq!(value("dns_publishing"), SettingValue::Bool(true));
    assert_eq!(value("low_priority"), SettingValue::Bool(false));
    assert_eq!(value("activation_interval"), SettingValue::U32(60));
    let SettingValue::List(list) = value("publish_domains") else {
        panic!("a list")
    };
    let domains: Vec<String> = list.iter().map(ToString::to_string).collect();
    assert_eq!(
        domains,
        [
            "corp.example, 0, 0",
            "branch.example, 10, 50",
            "lab.example, 0, 0"
        ]
    );

    let windows = &state.products[&ProductId::Windows];
    assert_eq!(
        windows.partial_key.as_deref(),
        Some("6789B"),
        "the ESU add-on is not Windows' key"
    );
    assert!(windows.is_activated_kms_host());
    let office = &state.products[&ProductId::Office2019];
    assert_eq!(
        (office.channel, office.license_status),
        (Channel::KmsHost, LicenseStatus::Unlicensed)
    );
    assert_eq!(
        state.license_packs.iter().collect::<Vec<_>>(),
        [&ProductId::Office2019]
    );

    // both rules of the group, found by its resource string, each with its profiles
    let kms = &state.firewall.groups[&RuleGroup::KeyManagementService];
    assert!(kms.enabled);
    assert_eq!(
        kms.remote_addresses,
        ["10.0.0.0/8", "192.168.1.10", "LocalSubnet"]
    );
    assert_eq!(kms.rules["SPPSVC-In-TCP"].profiles, [Profile::Private]);
    assert_eq!(
        kms.rules["SPPSVC-In-TCP-NoScope"].profiles,
        [Profile::Domain]
    );
    // the outbound rule of the group does not count
    assert!(state.firewall.groups[&RuleGroup::FileAndPrinterSharing].enabled);
    let rule = state.firewall.port_rule.as_ref().expect("port rule");
    assert_eq!((rule.port, rule.remote_addresses.len()), (1689, 3));
    assert_eq!(rule.profiles, [Profile::Domain, Profile::Private]);

    assert_eq!(seen.current_count, Some(12));
    assert_eq!(seen.requests.total, Some(340));
    assert_eq!(seen.rearm_count, Some(1001));
    assert_eq!(seen.clock.time_zone.as_deref(), Some("Korea Standard Time"));
    assert_eq!(
        seen.products[&ProductId::Office2019].current_count,
        None,
        "-1 as uint32"
    );
    assert!(seen.products[&ProductId::Windows].is_kms_host);
}

#[test]
fn a_fresh_server_reads_as_the_lab_s_fresh_host_does() {
    let (state, seen) = parse_discovery(&fixture("fresh-server.json")).expect("parses");
    let lab = HostState::fresh_windows_server("X");
    assert_eq!(state.service, lab.service);
    assert_eq!(state.firewall.port_rule, None);
    let fps = &state.firewall.groups[&RuleGroup::FileAndPrinterSharing];
    assert!(
        !fps.enabled,
        "one rule of the group is off, so the group is not enabled"
    );
    assert_eq!(fps.remote_addresses, ["LocalSubnet"]);
    assert_eq!(
        state.firewall.groups[&RuleGroup::KeyManagementService],
        lab.firewall.groups[&RuleGroup::KeyManagementService]
    );
    let windows = &state.products[&ProductId::Windows];
    assert_eq!(
        (windows.channel, windows.license_status),
        (Channel::KmsClient, LicenseStatus::InitialGrace)
    );
    assert!(state.license_packs.is_empty());
    assert_eq!(
        (seen.current_count, seen.required_client_count),
        (None, None)
    );
    assert_eq!(state.os, "Microsoft Windows Server 2022 Standard");
}

#[test]
fn malformed_documents_name_what_is_wrong() {
    let text = fixture("fresh-server.json").replace("\"LicenseStatus\": 2", "\"LicenseStatus\": 9");
    let e = parse_discovery(&text).expect_err("status 9");
    assert!(
        matches!(e, CimError::LicenseStatus { status: 9, .. }),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("`LicenseStatus` = `9` is not 0 to 6"),
        "{e}"
    );
    let svc = CimService {
        properties: serde_json::json!({ "KeyManagementServiceListeningPort": 70_000 })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..CimService::default()
    };
    let e = service(&svc, &CimRegistry::default()).expect_err("port 70000");
    assert_eq!(
        e.to_string(),
        "`KeyManagementServiceListeningPort` = `70000` is not a TCP port"
    );
    let text = fixture("fresh-server.json").replace(
        "\"KeyManagementServiceListeningPort\": null",
        "\"KeyManagementServiceListeningPort\": \"x\"",
    );
    assert_eq!(
        parse_discovery(&text).expect_err("port").to_string(),
        "`KeyManagementServiceListeningPort` = `\"x\"` is not a TCP port"
    );
    assert!(publish_domain("corp.example, 99999").is_err());
    let e = parse_discovery("{").expect_err("eof");
    assert!(matches!(e, CimError::Json(_)), "{e}");
    assert!(e.to_string().contains("line 1"), "{e}");
}

#[test]
fn channels_come_from_the_key_channel_or_the_description() {
    let p = |channel: Option<&str>, description: &str| CimProduct {
        partial_product_key: Some("ABCDE".into()),
        product_key_channel: channel.map(String::from),
        description: Some(description.into()),
        ..CimProduct::default()
    };
    assert_eq!(
        channel(&p(None, "Office 16, VOLUME_KMS channel")),
        Channel::KmsHost
    );
    assert_eq!(
        channel(&p(
            None,
            "Windows(R) Operating System, VOLUME_KMSCLIENT channel"
        )),
        Channel::KmsClient
    );
    assert_eq!(channel(&p(Some("OEM:DM"), "")), Channel::Retail);
    assert_eq!(channel(&p(Some("Volume:MAK"), "VOLUME_KMS")), Channel::Mak);
    let unkeyed = CimProduct {
        partial_product_key: None,
        ..p(Some("Volume:CSVLK"), "")
    };
    assert_eq!(channel(&unkeyed), Channel::None);
}

#[test]
fn addresses_are_compared_in_the_form_the_config_uses() {
    let list = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(remote_addresses(&list(&["Any"])), Vec::<String>::new());
    assert_eq!(
        remote_addresses(&list(&[
            "10.0.0.0/255.255.0.0",
            "10.1.2.3/255.255.255.255",
            "10.0.0.1-10.0.0.9",
            "fe80::/64",
            "1.2.3.0/255.0.255.0"
        ])),
        list(&[
            "10.0.0.0/16",
            "10.1.2.3",
            "10.0.0.1-10.0.0.9",
            "fe80::/64",
            "1.2.3.0/255.0.255.0"
        ])
    );
}
