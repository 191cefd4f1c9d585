//! A setting is one row: a test-only row added to the table is planned, applied on a lab host,
//! sent to the Windows agent, exported and shown by `status`, with no code naming it.

use kmsconf_engine::target::{ChangeStatus, Target};
use kmsconf_model::config::Config;
use kmsconf_model::ops::{PlanOp, TargetOp};
use kmsconf_model::settings::{
    Kind, OnRetire, RegistryKind, RegistryValue, Setting, SettingValue, Shown, Write, SETTINGS,
};
use kmsconf_model::state::HostState;
use kmsconf_providers::{registry, Providers};
use kmsconf_targets::lab::LabTarget;

/// "No host caching", the opposite of `host_caching`: it keeps its value in the `host_caching`
/// field of the host state (a real setting adds its own field there) and is written as a
/// registry value of its own.
fn dummy() -> Setting {
    Setting {
        key: "no_host_caching",
        kind: Kind::Bool,
        meaning: "true or false",
        range: None,
        // as if the config said `no_host_caching = true`
        desired: |_| Some(SettingValue::Bool(true)),
        current: |s| SettingValue::Bool(!s.host_caching),
        store: |s, v| {
            if let SettingValue::Bool(b) = v {
                s.host_caching = !b;
            }
        },
        write: Write::Registry(RegistryValue {
            name: "KmsconfTestNoHostCaching",
            kind: RegistryKind::Dword,
            inverted: false,
        }),
        property: None,
        needs_restart: false,
        needs_kms_host_key: false,
        status: Shown {
            field: "no_host_caching",
            label: "no host caching",
            unit: "",
            words: ("on", "off"),
            words_in_json: false,
        },
        exported: |_| true,
        on_retire: OnRetire::Keep,
    }
}

const CONFIG: &str = r#"
[hosts.kms01]
target = "lab:kms01.json"

[hosts.kms01.products.windows]
host_key = "BCDFG-HJKMP-QRTVW-XY234-6789B"
"#;

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
fn a_dummy_row_is_planned_applied_written_exported_and_shown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config::parse(&dir.path().join("kmsconf.toml"), CONFIG).expect("config");
    let lab = LabTarget::new(
        "kms01",
        dir.path().join("kms01.json"),
        std::time::Duration::from_secs(600),
    );
    // the host becomes an activated KMS host first, with the production table
    plan_and_apply(&Providers::default(), &config, &lab);

    let rows: Vec<Setting> = SETTINGS.iter().cloned().chain([dummy()]).collect();
    let rows: &'static [Setting] = Box::leak(rows.into_boxed_slice());
    let providers = Providers::with_settings(rows);
    let host = &config.hosts["kms01"];

    let plan = registry::plan_host_with(&providers, host, lab.discover().expect("discover"))
        .expect("plan");
    let [change] = plan.changes.as_slice() else {
        panic!("one change expected: {:?}", plan.changes)
    };
    assert_eq!(change.address, "service.no_host_caching");
    assert_eq!(
        (&change.before, &change.after),
        (&false.into(), &true.into())
    );
    assert_eq!(
        change.equivalent.as_deref(),
        Some(
            r#"reg add "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform" /v KmsconfTestNoHostCaching /t REG_DWORD /d "1" /f"#
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
        serde_json::json!({ "name": "KmsconfTestNoHostCaching", "type": "DWord", "data": ["1"] }),
        "{line}"
    );

    assert_eq!(
        plan_and_apply(&providers, &config, &lab),
        ["service.no_host_caching"]
    );
    let state: HostState = lab.discover().expect("discover").state;
    assert!(
        !state.service.host_caching,
        "the lab applied it through the row"
    );
    let again = registry::plan_host_with(&providers, host, lab.discover().expect("discover"))
        .expect("plan");
    assert!(again.changes.is_empty(), "{:?}", again.changes);

    let exported = registry::export_with(&providers, "kms01", "lab:kms01.json", &state);
    assert!(
        exported
            .toml
            .contains("host_caching = false\nno_host_caching = true\n"),
        "{}",
        exported.toml
    );

    let shown = registry::host_status_with(&providers, host, "lab".into(), Ok(&state));
    let service = shown.service.expect("service status");
    assert!(
        service
            .summary()
            .ends_with("host caching off, no host caching on"),
        "{}",
        service.summary()
    );
    let json = serde_json::to_value(&service).expect("json");
    assert_eq!(json["no_host_caching"], true);
    assert_eq!(json["host_caching"], false);
}
