//! `doctor` check `winrm-service` over a real WinRM session: the test endpoint's shell runs
//! `kmsconf lab agent`, which answers `read_winrm_service` from the lab file's `winrm_service`
//! (Windows' defaults when the file has none), so a test gives the host any WinRM settings.

use serde_json::{json, Value};

use crate::common::*;
use crate::schemas::valid;
use crate::winrm::{host_table, http_url, project, Host};

/// The `winrm-service` checks of `doctor --json` (exit code ignored: a fresh lab host fails
/// other checks).
fn winrm_checks(p: &Project) -> Vec<Value> {
    let run = p.run(&["doctor", "--json"]);
    let doc = valid("doctor", &run);
    doc["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks: {run:?}"))
        .iter()
        .filter(|c| c["check"] == "winrm-service")
        .cloned()
        .collect()
}

/// Gives the lab host behind `h` the WinRM settings of `change` applied to Windows' defaults.
fn set_service(h: &Host, change: &[(&str, &str)]) {
    let path = h.lab();
    let text = std::fs::read_to_string(&path).expect("the lab file exists after a run");
    let mut file: Value = serde_json::from_str(&text).expect("lab JSON");
    let mut service = json!({
        "AllowUnencrypted": "false", "Basic": "false", "Kerberos": "true",
        "Negotiate": "true", "CredSSP": "false", "CbtHardeningLevel": "Relaxed",
        "MaxTimeoutms": "60000", "MaxShellsPerUser": "30", "IdleTimeout": "180000",
        "Listeners": [{ "Transport": "HTTP", "Port": "5985", "Enabled": "true" }],
    });
    for (k, v) in change {
        service[*k] = json!(v);
    }
    file["winrm_service"] = service;
    std::fs::write(&path, file.to_string()).expect("write the lab file");
}

#[test]
fn winrm_service_warns_on_insecure_settings_and_fails_without_a_shell() {
    let h = Host::start(&[]);
    let mut p = project(&host_table("kms0", &http_url(&h), "operation_timeout = 30"));

    // Windows' defaults: ok, with the settings in one line
    let checks = winrm_checks(&p);
    assert_eq!(checks.len(), 1, "{checks:#?}");
    assert_eq!(checks[0]["status"], "ok", "{checks:#?}");
    let detail = checks[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("MaxTimeoutms 60000") && detail.contains("listeners: HTTP 5985"),
        "{detail}"
    );

    // unsealed HTTP allowed, Basic on, and a MaxTimeoutms below operation_timeout
    set_service(
        &h,
        &[
            ("AllowUnencrypted", "true"),
            ("Basic", "True"),
            ("MaxTimeoutms", "20000"),
        ],
    );
    let checks = winrm_checks(&p);
    assert_eq!(checks[0]["status"], "warning", "{checks:#?}");
    let detail = checks[0]["detail"].as_str().unwrap_or_default();
    for named in [
        "AllowUnencrypted is true",
        "Basic authentication is on",
        "MaxTimeoutms is 20000",
    ] {
        assert!(detail.contains(named), "{named}: {detail}");
    }
    let human = p.run(&["doctor"]);
    assert!(human.stdout.contains("winrm-service"), "{human:?}");
    assert!(human.stdout.contains("Auth\\Basic $false"), "{human:?}");
    let metrics = p.run(&["doctor", "--format", "openmetrics"]);
    assert!(
        metrics
            .stdout
            .contains("kmsconf_doctor_check_status{host=\"kms0\",check=\"winrm-service\""),
        "{metrics:?}"
    );

    // no shell for the account: a failure, and doctor exits 1
    set_service(&h, &[("MaxShellsPerUser", "0")]);
    let checks = winrm_checks(&p);
    assert_eq!(checks[0]["status"], "failed", "{checks:#?}");
    assert!(
        checks[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("MaxShellsPerUser is 0")),
        "{checks:#?}"
    );
    p.ok(&["doctor"], 1);

    // a value out of shape from the host: a warning that names it, escaped, and no check on
    // half a configuration
    set_service(&h, &[("CbtHardeningLevel", "Loose\u{1b}[31m")]);
    let checks = winrm_checks(&p);
    assert_eq!(checks[0]["status"], "warning", "{checks:#?}");
    let all = checks[0].to_string();
    assert!(all.contains("CbtHardeningLevel"), "{all}");
    assert!(
        !all.contains("MaxShellsPerUser 30"),
        "no summary of a refused reading: {all}"
    );
    let human = p.run(&["doctor"]);
    assert!(human.stdout.contains("`Loose\\u{1b}[31m`"), "{human:?}");
    assert!(!human.all().contains('\u{1b}'), "{human:?}");

    // a host reached otherwise has no winrm-service check
    p.env("KMS_HOST_KEY", "unused");
    p.write(
        "kmsconf.toml",
        "[hosts.lab1]\ntarget = \"lab:lab/lab1.json\"\n",
    );
    assert!(winrm_checks(&p).is_empty());
}
