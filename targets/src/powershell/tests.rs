//! What kmsconf sends: the bootstrap, the agent and every request against their golden files,
//! secrets only in request lines, and quoting.

use super::*;
use kmsconf_engine::secret::Secret;
use kmsconf_model::config::PublishDomain;
use kmsconf_model::config::{ProductId, Profile, RuleGroup};
use kmsconf_model::keys::{ConfirmationId, ProductKey};
use kmsconf_model::ops::{ServiceSetting, TargetOp};
use serde_json::Value;

pub(super) const KEY: &str = "BCDFG-HJKMP-QRTVW-XY234-6789B";
/// The public KMS client setup key of Windows Server 2022 Datacenter (`gvlks.toml`).
pub(super) const GVLK: &str = "WX4NM-KYWYW-QJJR4-XV3QB-6VM33";
pub(super) const CID: &str = "123456-234567-345678-456789-567890-678901-789012-890123";

pub(super) fn key() -> ProductKey {
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
        TargetOp::RestartService { expect: Vec::new() },
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
        // a retirement's: the port cleared, a key uninstalled by its SKU's activation ID, the
        // edition's public KMS client key installed
        TargetOp::ClearListeningPort,
        TargetOp::UninstallProductKey {
            product: ProductId::Office2019,
            activation_id: "70512334-47B4-44DB-A233-BE5EA33B914C".into(),
        },
        TargetOp::InstallProductKey {
            product: ProductId::Windows,
            key: ProductKey::parse(&Secret::new(GVLK)).expect("gvlk"),
        },
        // Active Directory-based activation through this host's licensing service
        TargetOp::CreateActivationObject {
            name: "WS CSVLK".into(),
            key: key(),
        },
        // and by phone: the installation ID out, the confirmation ID in
        TargetOp::ShowActivationObjectInstallationId {
            name: "WS CSVLK".into(),
            key: key(),
        },
        TargetOp::CreateActivationObjectByPhone {
            name: "WS CSVLK".into(),
            key: key(),
            confirmation_id: ConfirmationId::parse(&Secret::new(CID)).expect("cid"),
        },
    ]
}

/// Compares with `targets/testdata/powershell/NAME`, byte for byte. These stay plain files
/// rather than insta snapshots, so the agent reads, lints and runs as PowerShell; the switch
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

/// The request lines of [`every_op`], numbered from 1 as a session numbers them.
pub(super) fn request_lines() -> Vec<(Request, String)> {
    every_op()
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let mut request = Request::operation(op);
            request.id = i as u64 + 1;
            let line = request.line().expose().to_string();
            (request, line)
        })
        .collect()
}

/// The command line's script, with the SHA-256 of the agent beside it filled in (it changes with
/// every change to the agent).
#[test]
fn the_bootstrap_matches_its_golden_file() {
    golden("bootstrap.ps1", &format!("{}\n", bootstrap()));
}

#[test]
fn the_agent_matches_its_golden_file_and_reads_narrowly() {
    let agent = agent_script();
    golden("agent.ps1", agent);
    // both Key Management Service rules, by the group's resource string
    assert!(agent.contains("-Group $group") && agent.contains("'@FirewallAPI.dll,-28002'"));
    // the firewall group never by its display name; the event log of that name is read by it
    assert_eq!(
        agent.matches("Key Management Service'").count(),
        agent.matches("LogName = 'Key Management Service'").count(),
        "never the display name"
    );
    assert!(!agent.to_ascii_uppercase().contains(" LIKE "), "no LIKE");
    assert!(agent.contains("$ProductFilter = 'PartialProductKey IS NOT NULL OR ID = '"));
    assert!(agent.contains("-Filter $Filter -Property $ProductProperties"));
}

#[test]
fn requests_are_data_and_match_their_golden_file() {
    let lines: Vec<String> = request_lines().into_iter().map(|(_, l)| l).collect();
    golden("requests.jsonl", &lines.concat());
    for line in &lines {
        let doc: Value = serde_json::from_str(line).expect("one JSON object per line");
        assert!(doc["id"].is_u64() && doc["op"].is_string(), "{line}");
        // no PowerShell source: no variable, no cmdlet, no script block
        for needle in ["$", "Invoke-", "Get-", "Set-", "New-", "{ "] {
            assert!(!line.contains(needle), "{needle} in {line}");
        }
        assert!(line.is_ascii() && line.ends_with('\n') && line.matches('\n').count() == 1);
    }
    let docs: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(docs[1]["key"], KEY);
    assert_eq!(docs[4]["confirmation_id"], CID.replace('-', ""));
    assert_eq!(docs[0]["path"], "C:\\packs\\office-2019 (it's here)");
    assert_eq!(
        docs[5]["method"]["name"],
        "SetKeyManagementServiceListeningPort"
    );
    assert_eq!(docs[7]["registry"]["type"], "MultiString");
}

#[test]
fn secrets_travel_only_in_request_lines_never_in_a_trace_or_the_command_line() {
    for (request, line) in request_lines() {
        let traced = format!("{request:?}");
        assert!(
            !traced.contains("HJKMP") && !traced.contains("234567"),
            "{traced}"
        );
        if line.contains(KEY) {
            assert!(traced.contains("key=<redacted>"), "{traced}");
            assert_eq!(
                request.redact(&format!("bad key {KEY}")),
                "bad key <redacted>"
            );
        }
    }
    assert!(!agent_script().contains("HJKMP"));
    let args = arguments().join(" ");
    assert!(!args.contains("HJKMP") && args.contains("-EncodedCommand"));
    let encoded = arguments().last().cloned().unwrap_or_default();
    let utf16 = BASE64.decode(encoded).expect("base64");
    let units: Vec<u16> = utf16
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(String::from_utf16(&units).expect("utf16"), bootstrap());
    let agent = BASE64.decode(agent_line().trim()).expect("base64");
    assert_eq!(agent, agent_script().as_bytes());
}

#[test]
fn text_outside_ascii_is_escaped_in_a_request() {
    let mut request = Request::operation(&TargetOp::InstallLicensePack {
        product: ProductId::Office2019,
        path: "D:\\팩\\office".into(),
    });
    request.id = 7;
    let line = request.line().expose().to_string();
    assert!(line.is_ascii() && line.contains("\\ud329"), "{line}");
    let doc: Value = serde_json::from_str(&line).expect("json");
    assert_eq!(doc["path"], "D:\\팩\\office");
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
