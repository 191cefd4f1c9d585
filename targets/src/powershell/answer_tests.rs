//! Answers checked against what the host read back (each operation, retirement, firewall
//! address forms, discovery errors, installation IDs), and the requests of retirement, firewall
//! scope and activation objects.

use super::script_tests::function;
use super::tests::{key, request_lines, CID, GVLK, KEY};
use super::*;
use kmsconf_engine::target::ChangeStatus;
use kmsconf_model::config::{ProductId, Profile, RuleGroup};
use kmsconf_model::ops::{ServiceSetting, TargetOp};
use serde_json::{json, Value};

fn answer(value: Value) -> Answer {
    serde_json::from_value(value).expect("answer")
}

fn product(partial: &str, channel: &str, status: u32) -> Value {
    json!({
        "ID": "ef6cfc9f-8c5d-44ac-9aad-de6a2ea0ae03",
        "ApplicationID": "55c92734-d682-4d71-983e-d6ec3f16059f",
        "Description": "Windows(R) Operating System, VOLUME_KMS_WS22 channel",
        "PartialProductKey": partial, "ProductKeyChannel": channel, "LicenseStatus": status,
        "GracePeriodRemaining": 0, "OfflineInstallationId": "1".repeat(63), "LicenseIsAddon": false
    })
}

#[test]
fn results_are_checked_against_what_the_host_read_back() {
    let batch = [
        TargetOp::InstallProductKey {
            product: ProductId::Windows,
            key: key(),
        },
        TargetOp::ActivateOnline {
            product: ProductId::Windows,
        },
        TargetOp::SetService(
            ServiceSetting::named(
                "activation_interval",
                kmsconf_model::settings::SettingValue::U32(60),
            )
            .expect("setting"),
        ),
        TargetOp::SetService(
            ServiceSetting::named("port", kmsconf_model::settings::SettingValue::U16(1689))
                .expect("setting"),
        ),
    ];
    let service = json!({ "VLActivationInterval": 120, "KeyManagementServiceListeningPort": 1688 });
    let answers = [
        json!({ "Id": 1, "Ok": true, "Answer": { "Products": product("6789B", "Volume:CSVLK", 2) } }),
        json!({ "Id": 2, "Ok": false, "HResult": "0xC004F074", "Message": format!("key {KEY} no KMS") }),
        // the registry value (under the row's `SL` key) shows the old interval: it did not take
        json!({ "Id": 3, "Ok": true, "Answer": { "Service": service, "Registry": { "VLActivationInterval": 120 } } }),
        json!({ "Id": 4, "Ok": true, "Answer": { "Service": service, "Registry": { "KeyManagementServiceListeningPort": "1689" } } }),
    ];
    let out: Vec<ChangeStatus> = batch
        .iter()
        .zip(answers)
        .map(|(op, a)| outcome(op, answer(a), &Request::operation(op)))
        .collect();
    assert_eq!(
        out[0],
        ChangeStatus::Applied {
            detail: Some("installed key *****-*****-*****-*****-6789B".into())
        }
    );
    let ChangeStatus::Failed {
        code: Some(0xC004_F074),
        message,
    } = &out[1]
    else {
        panic!("{:?}", out[1])
    };
    assert!(
        message.contains("no KMS host could be contacted"),
        "{message}"
    );
    let ChangeStatus::Failed {
        code: None,
        message,
    } = &out[2]
    else {
        panic!("{:?}", out[2])
    };
    assert!(
        message.contains("did not take") && message.contains("/sai 120"),
        "{message}"
    );
    assert_eq!(out[3], ChangeStatus::applied());
    let key_op = &batch[0];
    let refused = answer(json!({ "Id": 1, "Ok": false, "Message": format!("invalid key {KEY}") }));
    let ChangeStatus::Failed { message, .. } =
        outcome(key_op, refused, &Request::operation(key_op))
    else {
        panic!("refused")
    };
    assert_eq!(message, "invalid key <redacted>");
}

/// Issue 24, finding 3: an interval the host shows nowhere before the restart (no registry value
/// where the table's row says, the property still the old one) is verified after the restart,
/// against the running service.
#[test]
fn a_setting_the_host_shows_nowhere_before_the_restart_is_verified_after_it() {
    let interval = ServiceSetting::named(
        "activation_interval",
        kmsconf_model::settings::SettingValue::U32(60),
    )
    .expect("setting");
    let old = json!({ "Service": { "VLActivationInterval": 120 }, "Registry": { "VLActivationInterval": null } });
    let written = verify(&TargetOp::SetService(interval.clone()), &old).expect("deferred");
    assert!(
        matches!(&written, ChangeStatus::Applied { detail: Some(d) } if d.contains("the restart verifies it")),
        "{written:?}"
    );
    let restart = TargetOp::RestartService {
        expect: vec![interval],
    };
    let e = verify(&restart, &old).expect_err("still the old interval");
    assert_eq!(
        e.to_string(),
        "after the restart the service runs with `slmgr.vbs /sai 120`, not `slmgr.vbs /sai 60`"
    );
    let new = json!({ "Service": { "VLActivationInterval": 60 }, "Registry": { "VLActivationInterval": null } });
    assert!(verify(&restart, &new).is_ok());
    // the registry shows the value: it is verified there at once
    let shown = json!({ "Service": { "VLActivationInterval": 120 }, "Registry": { "VLActivationInterval": 60 } });
    let set = ServiceSetting::named(
        "activation_interval",
        kmsconf_model::settings::SettingValue::U32(60),
    )
    .expect("setting");
    assert_eq!(
        verify(&TargetOp::SetService(set), &shown).expect("ok"),
        ChangeStatus::applied()
    );
}

#[test]
fn a_key_that_installs_as_another_channel_is_a_failure() {
    let op = TargetOp::InstallProductKey {
        product: ProductId::Windows,
        key: key(),
    };
    let e = verify(
        &op,
        &json!({ "Products": [product("6789B", "Volume:GVLK", 1)] }),
    )
    .expect_err("gvlk");
    assert!(
        matches!(
            e,
            VerifyError::OtherChannel {
                expected: kmsconf_model::state::Channel::KmsHost,
                found: kmsconf_model::state::Channel::KmsClient
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("KMS client key"), "{e}");
    let e = verify(&op, &json!({ "Products": [] })).expect_err("none");
    assert!(e.to_string().contains("no Windows product"), "{e}");
}

#[test]
fn a_phone_activation_shows_the_installation_id_as_pending() {
    let op = TargetOp::ShowInstallationId {
        product: ProductId::Windows,
    };
    let out = verify(
        &op,
        &json!({ "Products": product("6789B", "Volume:CSVLK", 0) }),
    )
    .expect("ok");
    assert!(
        matches!(&out, ChangeStatus::Pending { message } if message.contains(&"1".repeat(63))),
        "{out:?}"
    );
}

#[test]
fn firewall_read_backs_are_compared_with_windows_address_forms() {
    let op = TargetOp::SetFirewallRule {
        group: RuleGroup::KeyManagementService,
        rule: "SPPSVC-In-TCP-NoScope".into(),
        enabled: true,
        profiles: vec![Profile::Domain],
        remote_addresses: Some(vec!["10.0.0.0/8".into()]),
    };
    let rule = |enabled: &str, profile: &str, address: &str| json!({ "FirewallRules": [{ "Name": "SPPSVC-In-TCP-NoScope", "Group": "@FirewallAPI.dll,-28002", "Direction": "Inbound", "Enabled": enabled, "Profile": profile, "LocalPort": "1688", "RemoteAddress": address }] });
    assert_eq!(
        verify(&op, &rule("True", "Domain", "10.0.0.0/255.0.0.0")).expect("applied"),
        ChangeStatus::applied()
    );
    assert!(verify(&op, &rule("False", "Domain", "10.0.0.0/255.0.0.0")).is_err());
    assert!(verify(&op, &rule("True", "Domain", "Any")).is_err());
    assert!(verify(&op, &rule("True", "Domain, Public", "10.0.0.0/8")).is_err());
    // without a configured scope the rule keeps its own
    let unscoped = TargetOp::SetFirewallRule {
        group: RuleGroup::KeyManagementService,
        rule: "SPPSVC-In-TCP-NoScope".into(),
        enabled: true,
        profiles: vec![Profile::Domain],
        remote_addresses: None,
    };
    assert_eq!(
        verify(&unscoped, &rule("True", "Domain", "Any")).expect("applied"),
        ChangeStatus::applied()
    );
    let remove = TargetOp::RemovePortRule;
    assert_eq!(
        verify(&remove, &json!({ "FirewallRules": [] })).expect("applied"),
        ChangeStatus::applied()
    );
}

#[test]
fn discovery_errors_carry_the_hresult_and_its_meaning() {
    let failed = answer(
        json!({ "Id": 1, "Ok": false, "HResult": "0x80070005", "Message": "Access denied" }),
    );
    let e = discovery(failed).expect_err("error");
    assert!(
        matches!(
            e,
            AgentError::Failed {
                code: Some(0x8007_0005),
                ..
            }
        ),
        "{e}"
    );
    let e = e.to_string();
    assert!(
        e.contains("0x80070005") && e.contains("administrative rights"),
        "{e}"
    );
    assert!(message("Windows PowerShell").is_none());
    assert!(matches!(message("KMSCONF:result:!!!"), Some(Err(_))));
    let line = format!("KMSCONF:begin:{}", BASE64.encode(r#"{"Id":3}"#));
    let m = message(&line).expect("a line").expect("decodes");
    assert_eq!((m.kind.as_str(), m.json.as_str()), ("begin", r#"{"Id":3}"#));
}

/// A retirement's requests carry the SKU's activation ID as data, which the agent parses as a
/// GUID before it reaches WQL, and the public client key as a field, redacted like any key.
#[test]
fn retirement_requests_carry_the_sku_as_data() {
    assert_eq!(
        kmsconf_model::catalog::edition("windows-server-2022-datacenter").map(|e| e.key.as_str()),
        Some(GVLK)
    );
    let docs: Vec<(Request, Value)> = request_lines()
        .into_iter()
        .map(|(r, l)| (r, serde_json::from_str(&l).expect("json")))
        .collect();
    let op = |name: &str| {
        docs.iter()
            .filter(|(_, d)| d["op"] == name)
            .collect::<Vec<_>>()
    };
    let uninstall = op("uninstall_product_key");
    assert_eq!(
        uninstall[0].1["activation_id"],
        "70512334-47B4-44DB-A233-BE5EA33B914C"
    );
    assert_eq!(op("clear_listening_port").len(), 1);
    let client = op("install_product_key")
        .into_iter()
        .find(|(_, d)| d["key"] == GVLK)
        .expect("the client key");
    assert!(format!("{:?}", client.0).contains("key=<redacted>"));
    let agent = function("Invoke-KmsconfUninstallProductKey");
    let parsed = agent
        .find("([guid][string]$Request.activation_id)")
        .expect("parsed as a GUID");
    let queried = agent.find("Get-KmsconfProducts").expect("then queried");
    assert!(parsed < queried && agent.contains("0x80070057"));
    for query in agent
        .lines()
        .filter(|l| l.contains("Get-KmsconfProducts ("))
    {
        assert!(query.contains("-f $id)"), "{query}");
    }
    assert!(function("Invoke-KmsconfClearListeningPort")
        .contains("'ClearKeyManagementServiceListeningPort'"));
}

#[test]
fn retirement_read_backs_are_verified() {
    let id = "70512334-47b4-44db-a233-be5ea33b914c";
    let op = TargetOp::UninstallProductKey {
        product: ProductId::Office2019,
        activation_id: id.into(),
    };
    let gone = json!({ "Products": [{ "ID": id, "ApplicationID": "0ff1ce15-a989-479d-af46-f275c6370663", "PartialProductKey": null }] });
    assert!(matches!(
        verify(&op, &gone),
        Ok(ChangeStatus::Applied { .. })
    ));
    let kept = json!({ "Products": [{ "ID": id, "ApplicationID": "0ff1ce15-a989-479d-af46-f275c6370663", "PartialProductKey": "WXYZ2" }] });
    assert!(verify(&op, &kept).is_err_and(|e| e
        .to_string()
        .contains("still holds the key ending in WXYZ2")));
    let cleared =
        json!({ "Service": {}, "Registry": { "KeyManagementServiceListeningPort": null } });
    assert!(verify(&TargetOp::ClearListeningPort, &cleared).is_ok());
    let set = json!({ "Service": {}, "Registry": { "KeyManagementServiceListeningPort": "1689" } });
    assert!(verify(&TargetOp::ClearListeningPort, &set).is_err());
}

/// A Key Management Service rule is set by its name, with its profiles, and keeps its own
/// scope when the request carries none: the request holds the data, the agent the cmdlets.
#[test]
fn a_firewall_rule_keeps_its_scope_unless_one_is_sent() {
    let text = function("Invoke-KmsconfSetFirewallRule");
    assert!(text.contains("$null -eq $Request.remote_addresses"));
    let lines: Vec<String> = request_lines().into_iter().map(|(_, l)| l).collect();
    let rules: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        .filter(|d| d["op"] == "set_firewall_rule")
        .collect();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0]["rule"], "SPPSVC-In-TCP-NoScope");
    assert_eq!(rules[0]["profiles"], json!(["Domain"]));
    assert_eq!(rules[0]["remote_addresses"], json!(["10.0.0.0/8"]));
    assert_eq!(rules[1]["remote_addresses"], Value::Null);
}

/// A recording keeps an activation object's secrets as references to where
/// `[active_directory]` declares them, never their values: the installation ID request carries
/// the key, the phone activation the key and the confirmation ID.
#[test]
fn an_activation_objects_secrets_are_recorded_as_their_config_references() {
    let lines = request_lines();
    let recorded = |op: &str| {
        let (request, _) = lines
            .iter()
            .find(|(r, _)| r.op == op)
            .unwrap_or_else(|| panic!("no {op}"));
        let text = request.recorded("kms01");
        assert!(
            !text.contains(KEY) && !text.contains(&CID.replace('-', "")),
            "{text}"
        );
        serde_json::from_str::<Value>(&text).expect("json")
    };
    let iid = recorded("ad_activation_get_iid");
    assert_eq!(
        iid["key"]["secret"],
        "active_directory.activation_objects.WS CSVLK.host_key"
    );
    let cid = recorded("ad_activation_apply_cid");
    assert_eq!(
        cid["confirmation_id"]["secret"],
        "active_directory.activation_objects.WS CSVLK.confirmation_id"
    );
    assert_eq!(cid["object_name"], "WS CSVLK");
    // a product's secrets stay under its host
    let key = recorded("install_product_key");
    assert_eq!(
        key["key"]["secret"],
        "hosts.kms01.products.windows.host_key"
    );
}

/// The installation ID the agent reads back for an activation object is shown only when it is
/// one (63 digits, bare or in groups): any other text from the host is refused.
#[test]
fn a_forest_installation_id_is_shown_only_when_it_is_one() {
    let op = TargetOp::ShowActivationObjectInstallationId {
        name: "WS CSVLK".into(),
        key: key(),
    };
    let iid = "1234567-".repeat(8) + "1234567";
    for given in [iid.clone(), iid.replace('-', "")] {
        match verify(
            &op,
            &json!({ "InstallationId": given, "ActivationObject": "WS CSVLK" }),
        ) {
            Ok(ChangeStatus::Pending { message }) => {
                assert!(
                    message.contains(&given) && message.contains("`WS CSVLK`"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
    for hostile in [
        json!({ "InstallationId": "@octocat http://evil.example" }),
        json!({}),
    ] {
        assert!(verify(&op, &hostile).is_err(), "{hostile}");
    }
}
