use super::*;
use crate::config::PublishDomain;
use serde_json::json;

fn set(key: &str, value: SettingValue) -> ServiceSetting {
    ServiceSetting::named(key, value).expect("setting")
}

#[test]
fn keys_are_unique_and_every_row_is_whole() {
    for (i, row) in SETTINGS.iter().enumerate() {
        assert!(
            SETTINGS[..i].iter().all(|r| r.key != row.key),
            "{}",
            row.key
        );
        // a value Windows reads back: from its property or its registry value
        assert!(
            row.property.is_some() || row.write.registry().is_some(),
            "{}",
            row.key
        );
        assert_eq!(
            row.range.is_some(),
            row.kind != Kind::Bool && row.kind != Kind::List
        );
    }
}

/// The plan file keeps the shape it had when `ServiceSetting` was an enum.
#[test]
fn every_setting_keeps_its_plan_file_form() {
    let domains = vec![PublishDomain {
        domain: "corp.example".into(),
        priority: 10,
        weight: 50,
    }];
    let cases = [
        (set("port", SettingValue::U16(1689)), json!(1689)),
        (
            set("dns_publishing", SettingValue::Bool(false)),
            json!(false),
        ),
        (
            set("publish_domains", SettingValue::List(domains)),
            json!([{ "domain": "corp.example", "priority": 10, "weight": 50 }]),
        ),
        (set("low_priority", SettingValue::Bool(true)), json!(true)),
        (set("activation_interval", SettingValue::U32(60)), json!(60)),
        (
            set("renewal_interval", SettingValue::U32(20160)),
            json!(20160),
        ),
        (set("host_caching", SettingValue::Bool(false)), json!(false)),
    ];
    assert_eq!(cases.len(), SETTINGS.len());
    for (setting, value) in cases {
        let text = serde_json::to_value(&setting).expect("json");
        assert_eq!(
            text,
            json!({ "setting": setting.setting().key, "value": value })
        );
        let back: ServiceSetting = serde_json::from_value(text).expect("back");
        assert_eq!(back, setting);
    }
    let op = crate::ops::PlanOp::SetService(set("port", SettingValue::U16(1689)));
    let text = serde_json::to_string(&op).expect("json");
    assert_eq!(
        text,
        r#"{"op":"set_service","setting":"port","value":1689}"#
    );
    assert_eq!(
        serde_json::from_str::<crate::ops::PlanOp>(&text).expect("back"),
        op
    );
    let wrong = r#"{"op":"set_service","setting":"port","value":true}"#;
    assert!(serde_json::from_str::<crate::ops::PlanOp>(wrong).is_err());
    let unknown = r#"{"op":"set_service","setting":"colour","value":1}"#;
    assert!(serde_json::from_str::<crate::ops::PlanOp>(unknown).is_err());
}

#[test]
fn equivalents_are_what_an_administrator_types() {
    let cases = [
        (set("port", SettingValue::U16(1689)), "slmgr.vbs /sprt 1689"),
        (
            set("dns_publishing", SettingValue::Bool(true)),
            "slmgr.vbs /sdns",
        ),
        (
            set("dns_publishing", SettingValue::Bool(false)),
            "slmgr.vbs /cdns",
        ),
        (
            set("low_priority", SettingValue::Bool(true)),
            "slmgr.vbs /cpri",
        ),
        (
            set("low_priority", SettingValue::Bool(false)),
            "slmgr.vbs /spri",
        ),
        (
            set("activation_interval", SettingValue::U32(60)),
            "slmgr.vbs /sai 60",
        ),
        (
            set("renewal_interval", SettingValue::U32(20160)),
            "slmgr.vbs /sri 20160",
        ),
        (
            set("host_caching", SettingValue::Bool(true)),
            "slmgr.vbs /skhc",
        ),
        (
            set("host_caching", SettingValue::Bool(false)),
            "slmgr.vbs /ckhc",
        ),
        (
            set("publish_domains", SettingValue::List(Vec::new())),
            r#"reg delete "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform" /v DnsDomainPublishList /f"#,
        ),
    ];
    for (setting, text) in cases {
        assert_eq!(setting.equivalent(), text);
    }
    let restarts: Vec<&str> = SETTINGS
        .iter()
        .filter(|s| s.needs_restart)
        .map(|s| s.key)
        .collect();
    assert_eq!(
        restarts,
        [
            "port",
            "dns_publishing",
            "publish_domains",
            "low_priority",
            "activation_interval",
            "renewal_interval"
        ]
    );
}

/// The config's JSON Schema (from the wire type) states the same range as each row.
#[test]
fn every_row_is_a_config_key_with_the_rows_range() {
    let schema = serde_json::to_value(schemars::schema_for!(crate::config::wire::ServiceWire))
        .expect("schema");
    let properties = schema["properties"].as_object().expect("properties");
    assert_eq!(properties.len(), SETTINGS.len());
    for row in SETTINGS {
        let property = &properties[row.key];
        if let Some(range) = row.range {
            assert_eq!(property["minimum"], json!(range.min), "{}", row.key);
            assert_eq!(property["maximum"], json!(range.max), "{}", row.key);
            // a range the description states is this one
            let description = property["description"].as_str().unwrap_or_default();
            if description.contains("..=") {
                let stated = format!("{}..={}", range.min, range.max);
                assert!(description.contains(&stated), "{}: {description}", row.key);
            }
        }
    }
}

/// Validation takes each row's range, and no more: its ends are accepted, one past them refused.
#[test]
fn validation_takes_exactly_each_rows_range() {
    let dir = tempfile::tempdir().expect("temp dir");
    let parse = |key: &str, value: i64| {
        let text = format!(
            "[hosts.kms01]\ntarget = \"lab:kms01.json\"\n[hosts.kms01.service]\n{key} = {value}\n"
        );
        crate::config::Config::parse(&dir.path().join("kmsconf.toml"), &text)
    };
    for row in SETTINGS {
        let Some(range) = row.range else { continue };
        let (min, max) = (i64::from(range.min), i64::from(range.max));
        for ok in [min, max] {
            assert!(parse(row.key, ok).is_ok(), "{} = {ok}", row.key);
        }
        for bad in [min - 1, max + 1] {
            let e = parse(row.key, bad).expect_err(row.key).to_string();
            assert!(
                e.contains(&format!("`{}` = {bad} is out of range", row.key)),
                "{e}"
            );
        }
    }
}

/// A fresh host is at every row's Windows default, and the state reads back what a row stores.
#[test]
fn rows_store_what_they_read() {
    let mut state = crate::state::ServiceState::windows_default();
    assert_eq!(
        state,
        crate::state::HostState::fresh_windows_server("K").service
    );
    for row in SETTINGS {
        let value = state.stored(row);
        state.store(row, value.clone());
        assert_eq!(state.stored(row), value, "{}", row.key);
        assert_eq!(state.current(row), row.in_effect(value), "{}", row.key);
    }
    // a port never set listens on 1688
    assert_eq!(state.effective_port(), 1688);
}

/// The host state keeps the flat form of the struct it replaces, in lab state and plan files:
/// a field per row in the table's order, then `restart_pending`; nothing missing, nothing more.
#[test]
fn the_host_state_keeps_its_file_form() {
    let state = ServiceState::windows_default();
    let text = serde_json::to_string(&state).expect("json");
    assert_eq!(
        text,
        r#"{"port":0,"dns_publishing":true,"publish_domains":[],"low_priority":false,"activation_interval":120,"renewal_interval":10080,"host_caching":true,"restart_pending":false}"#
    );
    assert_eq!(
        serde_json::from_str::<ServiceState>(&text).expect("back"),
        state
    );
    let unknown = text.replace("\"host_caching\"", "\"colour\"");
    let e = serde_json::from_str::<ServiceState>(&unknown).expect_err("unknown field");
    assert!(
        e.to_string().starts_with("unknown field `colour`, expected one of `port`, `dns_publishing`, `publish_domains`, `low_priority`, `activation_interval`, `renewal_interval`, `host_caching`, `restart_pending`"),
        "{e}"
    );
    let missing = text.replace(",\"host_caching\":true", "");
    let e = serde_json::from_str::<ServiceState>(&missing).expect_err("missing field");
    assert!(
        e.to_string().starts_with("missing field `host_caching`"),
        "{e}"
    );
    let wrong = text.replace("\"port\":0", "\"port\":70000");
    assert!(serde_json::from_str::<ServiceState>(&wrong).is_err());
}
