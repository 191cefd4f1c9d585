use super::*;
use kmsconf_engine::target::ChangeStatus;
use kmsconf_model::config::PublishDomain;
use kmsconf_model::config::{ProductId, Profile, RuleGroup};
use kmsconf_model::keys::{ConfirmationId, ProductKey};
use kmsconf_model::ops::{ServiceSetting, TargetOp};
use serde_json::json;

const KEY: &str = "BCDFG-HJKMP-QRTVW-XY234-6789B";
const CID: &str = "123456-234567-345678-456789-567890-678901-789012-890123";

fn key() -> ProductKey {
    ProductKey::parse(&Secret::new(KEY)).expect("key")
}

/// Every kind of operation, in the order a full first apply would run them.
pub(super) fn every_op() -> Vec<TargetOp> {
    vec![
        TargetOp::InstallLicensePack {
            product: ProductId::Office2019,
            path: "C:\\packs\\office-2019 (it's here)".into(),
        },
        TargetOp::InstallProductKey {
            product: ProductId::Windows,
            key: key(),
        },
        TargetOp::ActivateOnline {
            product: ProductId::Windows,
        },
        TargetOp::ShowInstallationId {
            product: ProductId::Office2019,
        },
        TargetOp::ActivateByPhone {
            product: ProductId::Office2019,
            confirmation_id: ConfirmationId::parse(&Secret::new(CID)).expect("cid"),
        },
        TargetOp::SetService(
            ServiceSetting::named("port", kmsconf_model::settings::SettingValue::U16(1689))
                .expect("setting"),
        ),
        TargetOp::SetService(
            ServiceSetting::named(
                "dns_publishing",
                kmsconf_model::settings::SettingValue::Bool(false),
            )
            .expect("setting"),
        ),
        TargetOp::SetService(
            ServiceSetting::named(
                "publish_domains",
                kmsconf_model::settings::SettingValue::List(vec![PublishDomain {
                    domain: "corp.example".into(),
                    priority: 10,
                    weight: 50,
                }]),
            )
            .expect("setting"),
        ),
        TargetOp::SetService(
            ServiceSetting::named(
                "publish_domains",
                kmsconf_model::settings::SettingValue::List(Vec::new()),
            )
            .expect("setting"),
        ),
        TargetOp::SetService(
            ServiceSetting::named(
                "low_priority",
                kmsconf_model::settings::SettingValue::Bool(true),
            )
            .expect("setting"),
        ),
        TargetOp::SetService(
            ServiceSetting::named(
                "activation_interval",
                kmsconf_model::settings::SettingValue::U32(60),
            )
            .expect("setting"),
        ),
        TargetOp::SetService(
            ServiceSetting::named(
                "renewal_interval",
                kmsconf_model::settings::SettingValue::U32(20160),
            )
            .expect("setting"),
        ),
        TargetOp::SetService(
            ServiceSetting::named(
                "host_caching",
                kmsconf_model::settings::SettingValue::Bool(false),
            )
            .expect("setting"),
        ),
        TargetOp::RestartService,
        TargetOp::SetFirewallRule {
            group: RuleGroup::KeyManagementService,
            rule: "SPPSVC-In-TCP-NoScope".into(),
            enabled: true,
            profiles: vec![Profile::Domain],
            remote_addresses: Some(vec!["10.0.0.0/8".into()]),
        },
        TargetOp::SetFirewallRule {
            group: RuleGroup::KeyManagementService,
            rule: "SPPSVC-In-TCP".into(),
            enabled: true,
            profiles: vec![Profile::Private],
            remote_addresses: None,
        },
        TargetOp::SetRuleGroup {
            group: RuleGroup::FileAndPrinterSharing,
            enabled: true,
            remote_addresses: Vec::new(),
        },
        TargetOp::SetPortRule {
            port: 1689,
            remote_addresses: Vec::new(),
            profiles: vec![Profile::Domain, Profile::Private],
        },
        TargetOp::RemovePortRule,
    ]
}

/// Compares with `targets/testdata/powershell/NAME`, byte for byte. These stay plain `.ps1`
/// files rather than insta snapshots, so they read, lint and run as PowerShell; the switch
/// that accepts every insta snapshot, `INSTA_UPDATE=always`, rewrites them too.
fn golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/powershell")
        .join(name);
    if std::env::var("INSTA_UPDATE").is_ok_and(|v| v == "always") {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{name} differs from its golden file (`INSTA_UPDATE=always` rewrites it)\n{actual}"
    );
}

#[test]
fn the_discovery_script_matches_its_golden_file() {
    let script = discovery_script();
    golden("discovery.ps1", &script.text);
    // both Key Management Service rules, by the group's resource string; products without LIKE
    assert!(
        script.text.contains("-Group $group") && script.text.contains("'@FirewallAPI.dll,-28002'")
    );
    assert!(
        !script.text.contains("LIKE"),
        "products are matched by equality"
    );
    assert!(
        !script.text.contains("Key Management Service'"),
        "never the display name"
    );
}

#[test]
fn the_batch_script_matches_its_golden_file_and_holds_no_secret() {
    let script = batch_script(&every_op());
    golden("batch.ps1", &script.text);
    assert!(!script.text.contains("HJKMP") && !script.text.contains("234567"));
    assert!(script.text.contains("[string]$Request.secrets.'1'"));
    assert!(script
        .text
        .contains("'C:\\packs\\office-2019 (it''s here)'"));
}

#[test]
fn secrets_travel_only_on_standard_input() {
    let script = batch_script(&every_op());
    let stdin = script.stdin();
    let decoded = BASE64.decode(stdin.expose().trim()).expect("base64");
    let doc: Value = serde_json::from_slice(&decoded).expect("json");
    assert_eq!(doc["input"]["secrets"]["1"], KEY);
    assert_eq!(doc["input"]["secrets"]["4"], CID.replace('-', ""));
    assert_eq!(doc["script"], script.text);
    let args = arguments().join(" ");
    assert!(!args.contains("HJKMP") && args.contains("-EncodedCommand"));
    let encoded = arguments().last().cloned().unwrap_or_default();
    let utf16 = BASE64.decode(encoded).expect("base64");
    let units: Vec<u16> = utf16
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(String::from_utf16(&units).expect("utf16"), BOOTSTRAP);
    assert_eq!(
        script.redact(&format!("bad key {KEY}")),
        "bad key <redacted>"
    );
}

#[test]
fn clixml_on_stderr_reads_as_the_error_text() {
    let stderr = concat!(
        "#< CLIXML\r\n",
        r#"<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">"#,
        r#"<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T></TN>"#,
        r#"<MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules for first use.</AV></PR></MS></Obj>"#,
        r#"<S S="Error">Access is denied. &lt;0x80070005&gt; at_x000D__x000A_</S>"#,
        r#"<S S="Error">line 2: 키 관리 서비스 _x005F_x0041_ a_b_x_</S></Objs>"#,
    );
    let text = readable_stderr(stderr);
    assert_eq!(
        text,
        "Access is denied. <0x80070005> at\r\nline 2: 키 관리 서비스 _x0041_ a_b_x_"
    );
    assert_eq!(
        super::super::process::tail(&text),
        "Access is denied. <0x80070005> at; line 2: 키 관리 서비스 _x0041_ a_b_x_"
    );
    assert_eq!(readable_stderr("plain error\n"), "plain error\n");
}

#[test]
fn quoting_survives_every_single_quote_powershell_knows() {
    assert_eq!(quote("it's"), "'it''s'");
    assert_eq!(quote("a\u{2019}b"), "'a\u{2019}\u{2019}b'");
    assert_eq!(quote("$env:X `n"), "'$env:X `n'");
}

fn line(kind: &str, value: &Value) -> String {
    format!("KMSCONF:{kind}:{}\n", BASE64.encode(value.to_string()))
}

fn product(partial: &str, channel: &str, status: u32) -> Value {
    json!({
        "ID": "ef6cfc9f-8c5d-44ac-9aad-de6a2ea0ae03",
        "ApplicationID": "55c92734-d682-4d71-983e-d6ec3f16059f",
        "Description": "Windows(R) Operating System, VOLUME_KMS_WS22 channel",
        "PartialProductKey": partial, "ProductKeyChannel": channel, "LicenseStatus": status,
        "GracePeriodRemaining": 0, "OfflineInstallationId": "1234567", "LicenseIsAddon": false
    })
}

#[test]
fn results_are_checked_against_what_the_host_read_back() {
    let batch = vec![
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
    let script = batch_script(&batch);
    let service = json!({ "VLActivationInterval": 120, "KeyManagementServiceListeningPort": 1688 });
    let stdout = [
        "Windows PowerShell banner noise\n".to_string(),
        line("begin", &json!({ "Index": 0 })),
        line("result", &json!({ "Index": 0, "Ok": true, "ReadBack": { "Products": product("6789B", "Volume:CSVLK", 2) } })),
        line("begin", &json!({ "Index": 1 })),
        line("result", &json!({ "Index": 1, "Ok": false, "HResult": "0xC004F074", "Message": format!("key {KEY} no KMS") })),
        line("begin", &json!({ "Index": 2 })),
        line("result", &json!({ "Index": 2, "Ok": true, "ReadBack": { "Service": service, "Registry": {} } })),
        line("begin", &json!({ "Index": 3 })),
        line("result", &json!({ "Index": 3, "Ok": true, "ReadBack": { "Service": service, "Registry": { "KeyManagementServiceListeningPort": "1689" } } })),
    ]
    .concat();
    let progress = batch_progress(&batch, &script, &stdout).expect("reads");
    let out: Vec<ChangeStatus> = progress
        .results
        .into_iter()
        .map(|o| o.expect("all answered"))
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
        message.contains("no KMS host could be contacted") && !message.contains("HJKMP"),
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
    assert!(e.contains("KMS client key"), "{e}");
    let e = verify(&op, &json!({ "Products": [] })).expect_err("none");
    assert!(e.contains("no Windows product"), "{e}");
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
        matches!(&out, ChangeStatus::Pending { message } if message.contains("1234567")),
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
        verify(&op, &rule("True", "Domain", "10.0.0.0/255.0.0.0")),
        Ok(ChangeStatus::applied())
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
        verify(&unscoped, &rule("True", "Domain", "Any")),
        Ok(ChangeStatus::applied())
    );
    let remove = TargetOp::RemovePortRule;
    assert_eq!(
        verify(&remove, &json!({ "FirewallRules": [] })),
        Ok(ChangeStatus::applied())
    );
}

#[test]
fn discovery_errors_carry_the_hresult_and_its_meaning() {
    let out = line(
        "error",
        &json!({ "HResult": "0x80070005", "Message": "Access denied" }),
    );
    let e = discovery(&out).expect_err("error");
    assert!(
        e.contains("0x80070005") && e.contains("administrative rights"),
        "{e}"
    );
    assert!(discovery("nothing")
        .expect_err("none")
        .contains("no discovery answer"));
    assert!(messages("KMSCONF:result:!!!").is_err());
}

/// The operations a retirement sends: the port cleared, a key uninstalled by its activation ID,
/// the public KMS client key installed.
pub(super) fn retirement_ops() -> Vec<TargetOp> {
    let gvlk = kmsconf_model::catalog::edition("windows-server-2022-datacenter")
        .map(|e| e.key.clone())
        .expect("2022 DC");
    vec![
        TargetOp::ClearListeningPort,
        TargetOp::UninstallProductKey {
            product: ProductId::Office2019,
            activation_id: "70512334-47B4-44DB-A233-BE5EA33B914C".into(),
        },
        TargetOp::InstallProductKey {
            product: ProductId::Windows,
            key: ProductKey::parse(&Secret::new(gvlk)).expect("gvlk"),
        },
    ]
}

#[test]
fn the_retirement_script_matches_its_golden_file_and_names_the_product() {
    let script = batch_script(&retirement_ops());
    golden("retire.ps1", &script.text);
    assert!(script.text.contains(
        "Get-CimInstance -ClassName SoftwareLicensingProduct -Filter \"ID = '70512334-47b4-44db-a233-be5ea33b914c' AND PartialProductKey IS NOT NULL\""
    ));
    assert!(script
        .text
        .contains("'ClearKeyManagementServiceListeningPort'"));
    assert!(script
        .text
        .contains("# windows: install the KMS client key"));
    // a value that is not an activation ID never reaches WQL
    let odd = batch_script(&[TargetOp::UninstallProductKey {
        product: ProductId::Windows,
        activation_id: "x' OR ID LIKE '%".into(),
    }]);
    assert!(odd.text.contains("is not a GUID") && !odd.text.contains("ID LIKE"));
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
    assert!(verify(&op, &kept).is_err_and(|e| e.contains("still holds the key ending in WXYZ2")));
    let cleared =
        json!({ "Service": {}, "Registry": { "KeyManagementServiceListeningPort": null } });
    assert!(verify(&TargetOp::ClearListeningPort, &cleared).is_ok());
    let set = json!({ "Service": {}, "Registry": { "KeyManagementServiceListeningPort": "1689" } });
    assert!(verify(&TargetOp::ClearListeningPort, &set).is_err());
}

/// Constrained Language Mode is detected before anything else: the bootstrap's first statement
/// reads the language mode, and its answer is an error that says what to change.
#[test]
fn constrained_language_mode_is_detected_first_and_named() {
    assert!(BOOTSTRAP.starts_with("$mode = [string]$ExecutionContext.SessionState.LanguageMode;"));
    let clm = "KMSCONF-LANGUAGE-MODE:ConstrainedLanguage\r\n";
    for e in [
        messages(clm).expect_err("refused"),
        discovery(clm).expect_err("refused"),
    ] {
        assert!(
            e.contains("`ConstrainedLanguage` mode") && e.contains("FullLanguage"),
            "{e}"
        );
    }
}

/// A method result without `ReturnValue`, or with a null one, is success; the HRESULT is also
/// read from the record's FullyQualifiedErrorId.
#[test]
fn method_results_and_hresults_are_read_robustly() {
    let text = discovery_script().text;
    assert!(text.contains("$result.PSObject.Properties['ReturnValue']"));
    assert!(text.contains("if ($null -ne $code -and [uint32]$code -ne 0)"));
    assert!(!text.contains("$result.ReturnValue -ne 0"));
    assert!(text.contains("[string]$ErrorRecord.FullyQualifiedErrorId -match '0x[0-9A-Fa-f]{8}'"));
}

/// `slmgr.vbs /ipk` writes KeyManagementServiceVersion (REG_SZ, also under Wow6432Node) when a
/// KMS host key is installed and deletes it otherwise; kmsconf's key install does the same.
#[test]
fn a_key_install_keeps_key_management_service_version_as_slmgr_does() {
    let script = batch_script(&[TargetOp::InstallProductKey {
        product: ProductId::Windows,
        key: ProductKey::parse(&kmsconf_engine::secret::Secret::new(
            "BCDFG-HJKMP-QRTVW-XY234-6789B",
        ))
        .expect("key"),
    }]);
    let text = &script.text;
    let version = text
        .find("$version = [string]$svc.Version")
        .expect("read first");
    let install = text.find("'InstallProductKey'").expect("install");
    let write = text
        .find("Set-KmsconfKmsVersion $version")
        .expect("then written");
    assert!(version < install && install < write);
    assert!(text.contains(
        "SOFTWARE\\Wow6432Node\\Microsoft\\Windows NT\\CurrentVersion\\SoftwareProtectionPlatform"
    ));
    assert!(text.contains("-Name 'KeyManagementServiceVersion' -PropertyType String"));
    assert!(text.contains("Remove-ItemProperty -Path $key -Name 'KeyManagementServiceVersion'"));
}

/// A license pack folder's own files only: a pack with one folder per host OS is refused with
/// the folders named, instead of installing every OS's licenses.
#[test]
fn a_license_pack_is_one_folder_not_a_tree() {
    let script = batch_script(&[TargetOp::InstallLicensePack {
        product: ProductId::Office2010,
        path: "C:\\packs\\office-2010".into(),
    }]);
    assert!(!script.text.contains("-Recurse"));
    assert!(script
        .text
        .contains("keeps its license files in one folder per host OS"));
}
