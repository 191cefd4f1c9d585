//! A setting is one row: a test-only row, added to the table before anything reads it, is a
//! config key (read, checked against the row's range), a value of its own in the host state,
//! planned, applied on a lab host, sent to the Windows agent, exported and shown by `status`,
//! with no code naming it.

use kmsconf_engine::target::{ChangeStatus, Target};
use kmsconf_model::config::Config;
use kmsconf_model::ops::{PlanOp, TargetOp};
use kmsconf_model::settings::{
    self, Kind, OnRetire, RegistryKind, RegistryValue, Setting, SettingValue, Shown, ValueRange,
    Write, SETTINGS,
};
use kmsconf_model::state::HostState;
use kmsconf_providers::{registry, Providers};
use kmsconf_targets::lab::LabTarget;

/// A number of minutes between 30 and 90, 60 on a fresh host, written as a registry value of
/// its own.
fn test_interval() -> Setting {
    Setting {
        key: "test_interval",
        description: "Minutes of a setting only this test has, 30..=90.",
        kind: Kind::U32,
        meaning: "a number of minutes",
        range: Some(ValueRange {
            min: 30,
            max: 90,
            unit: " minutes",
            max_in_words: Some("an hour and a half"),
            refused_by_windows: false,
        }),
        default: SettingValue::U32(60),
        default_in_effect: None,
        write: Write::Registry(RegistryValue {
            key: "spp",
            name: "KmsconfTestInterval",
            kind: RegistryKind::Dword,
            inverted: false,
        }),
        property: None,
        needs_restart: false,
        needs_kms_host_key: false,
        status: Shown {
            field: "test_interval",
            label: "test interval",
            unit: " min",
            words: ("on", "off"),
            words_in_json: false,
        },
        exported: |_| true,
        on_retire: OnRetire::Keep,
    }
}

/// The production rows and the test's, as the table of this test process.
fn declare() {
    let rows: Vec<Setting> = SETTINGS.iter().cloned().chain([test_interval()]).collect();
    settings::use_table(Box::leak(rows.into_boxed_slice())).expect("nothing read the table yet");
}

const HOST: &str = r#"
[hosts.kms01]
target = "lab:kms01.json"

[hosts.kms01.products.windows]
host_key = "BCDFG-HJKMP-QRTVW-XY234-6789B"
"#;

fn with_service(service: &str) -> String {
    format!("{HOST}\n[hosts.kms01.service]\n{service}\n")
}

/// Plans `config`'s host with `providers` against the lab host and applies every change.
fn plan_and_apply(providers: &Providers, config: &Config, lab: &LabTarget) -> Vec<String> {
    let host = &config.hosts["kms01"];
    let plan =
        registry::plan_host_with(providers, host, lab.discover().expect("discover")).expect("plan");
    let addresses: Vec<String> = plan.changes.iter().map(|c| c.address.clone()).collect();
    let ops: Vec<TargetOp> = plan
        .changes
        .iter()
        .map(|c| match &c.operation {
            PlanOp::InstallProductKey { product, key, .. } => {
                let secret = key.resolve("host_key").expect("literal key");
                TargetOp::InstallProductKey {
                    product: *product,
                    key: kmsconf_model::keys::ProductKey::parse(&secret).expect("key"),
                }
            }
            PlanOp::ActivateOnline { product } => TargetOp::ActivateOnline { product: *product },
            PlanOp::SetService(s) => TargetOp::SetService(s.clone()),
            other => panic!("unexpected operation {other:?}"),
        })
        .collect();
    for outcome in lab.execute(&ops).expect("execute") {
        assert!(
            matches!(outcome, ChangeStatus::Applied { .. }),
            "{outcome:?}"
        );
    }
    addresses
}

#[test]
fn a_test_row_is_read_planned_applied_written_exported_and_shown() {
    declare();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("kmsconf.toml");
    // the row's range is what validation takes
    let e = Config::parse(&file, &with_service("test_interval = 91")).expect_err("out of range");
    assert!(
        e.to_string().contains(
            "`test_interval` = 91 is out of range: Windows accepts 30 to 90 minutes (an hour and a half)"
        ),
        "{e}"
    );
    let config = Config::parse(&file, &with_service("test_interval = 45")).expect("config");
    let host = &config.hosts["kms01"];
    let lab = LabTarget::new(
        "kms01",
        dir.path().join("kms01.json"),
        std::time::Duration::from_secs(600),
    );
    let providers = Providers::default();
    // the host becomes an activated KMS host first
    let keyed = Config::parse(&file, HOST).expect("config");
    plan_and_apply(&providers, &keyed, &lab);
    let fresh: HostState = lab.discover().expect("discover").state;
    assert_eq!(
        fresh.service.value("test_interval"),
        Some(SettingValue::U32(60))
    );

    let plan = registry::plan_host_with(&providers, host, lab.discover().expect("discover"))
        .expect("plan");
    let [change] = plan.changes.as_slice() else {
        panic!("one change expected: {:?}", plan.changes)
    };
    assert_eq!(change.address, "service.test_interval");
    assert_eq!((&change.before, &change.after), (&60.into(), &45.into()));
    assert_eq!(
        change.equivalent.as_deref(),
        Some(
            r#"reg add "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform" /v KmsconfTestInterval /t REG_DWORD /d "45" /f"#
        )
    );
    assert_eq!(change.depends_on, Vec::<String>::new());
    let PlanOp::SetService(setting) = &change.operation else {
        panic!("{:?}", change.operation)
    };

    // the Windows agent is asked to write the row's registry value
    let request =
        kmsconf_targets::powershell::Request::operation(&TargetOp::SetService(setting.clone()));
    let line: serde_json::Value =
        serde_json::from_str(request.line().expose()).expect("one JSON line");
    assert_eq!(
        line["registry"],
        serde_json::json!({ "name": "KmsconfTestInterval", "type": "DWord", "data": ["45"] }),
        "{line}"
    );

    assert_eq!(
        plan_and_apply(&providers, &config, &lab),
        ["service.test_interval"]
    );
    // the lab keeps the value in the host state, in a field of its own
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("kms01.json")).expect("lab state file"),
    )
    .expect("json");
    let service = &saved["host"]["service"];
    assert_eq!(service["test_interval"], 45, "{service}");
    assert_eq!(service["host_caching"], true, "{service}");
    let state: HostState = lab.discover().expect("discover").state;
    assert_eq!(
        state.service.value("test_interval"),
        Some(SettingValue::U32(45))
    );
    let again = registry::plan_host_with(&providers, host, lab.discover().expect("discover"))
        .expect("plan");
    assert!(again.changes.is_empty(), "{:?}", again.changes);

    let exported = registry::export_with(&providers, "kms01", "lab:kms01.json", &state);
    assert!(
        exported
            .toml
            .contains("host_caching = true\ntest_interval = 45\n"),
        "{}",
        exported.toml
    );

    let shown = registry::host_status_with(&providers, host, "lab".into(), Ok(&state));
    let service = shown.service.expect("service status");
    assert!(
        service
            .summary()
            .ends_with("host caching on, test interval 45 min"),
        "{}",
        service.summary()
    );
    let json = serde_json::to_value(&service).expect("json");
    assert_eq!(json["test_interval"], 45);
    assert_eq!(json["host_caching"], true);
}
