//! Partial failure: a fault on one node stops its dependents, independent branches and other
//! hosts finish, the exit code is 1, and a re-run converges.

use crate::common::*;

const HOST: &str = "
[hosts.kms01.service]
port = 1689

[hosts.kms01.firewall]
rule_groups = [\"key-management-service\", \"file-and-printer-sharing\"]
";

#[test]
fn a_failed_key_install_skips_its_dependents_and_a_rerun_converges() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(HOST));
    p.ok(
        &[
            "lab",
            "fault",
            "lab/kms01.json",
            "--op",
            "install-key",
            "--hresult",
            "0xC004F050",
            "--times",
            "1",
        ],
        0,
    );
    // the KMS settings wait for the key install (slmgr.vbs gates them on a KMS host key); the
    // firewall groups do not depend on the key: they finish
    let r = p.ok(&["apply", "--auto-approve"], 1);
    snapshot_run("failures-key-install-failed", &p, &r);

    // the re-plan shows exactly what is left
    let plan = p.ok(&["plan", "--json"], 0);
    let doc: serde_json::Value = serde_json::from_str(&plan.stdout).expect("json");
    let left: Vec<&str> = doc["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["address"].as_str().expect("a"))
        .collect();
    assert_eq!(
        left,
        vec![
            "products.windows.host_key",
            "products.windows.activation",
            "service.port",
            "firewall.kms-port-rule",
            "service.restart"
        ]
    );
    p.ok(&["apply", "--auto-approve"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

/// A failed activation no longer holds the settings back: they need the key, not activation.
#[test]
fn a_failed_activation_leaves_the_settings_applied() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(HOST));
    p.ok(
        &[
            "lab",
            "fault",
            "lab/kms01.json",
            "--op",
            "activate",
            "--hresult",
            "0xC004C008",
            "--times",
            "1",
        ],
        0,
    );
    let r = p.ok(&["apply", "--auto-approve"], 1);
    snapshot_run("failures-activation-failed", &p, &r);
}

#[test]
fn online_activation_on_an_offline_host_fails_with_the_real_code() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(""));
    p.ok(&["lab", "offline", "lab/kms01.json", "on"], 0);
    // the real code, and a fix that names phone activation
    let r = p.ok(&["apply", "--auto-approve"], 1);
    snapshot_run("failures-online-activation-offline", &p, &r);
    p.ok(&["lab", "offline", "lab/kms01.json", "off"], 0);
    p.ok(&["apply", "--auto-approve"], 0);
}

#[test]
fn a_failed_host_stops_the_hosts_that_depend_on_it_and_not_the_others() {
    let p = Project::new();
    let config = three_hosts_b_after_a();
    p.write("kmsconf.toml", &config);
    p.ok(&["plan"], 0);
    p.ok(
        &[
            "lab",
            "fault",
            "lab/a.json",
            "--op",
            "install-key",
            "--hresult",
            "0xC004F050",
        ],
        0,
    );
    let r = p.ok(&["apply", "--auto-approve"], 1);
    snapshot_run("failures-dependency-host-failed", &p, &r);
    assert!(
        p.read("lab/c.json")
            .contains("\"license_status\": \"licensed\""),
        "c finished"
    );
    assert!(
        !p.read("lab/b.json").contains("kms-host"),
        "b was not touched"
    );
    p.ok(&["lab", "clear-faults", "lab/a.json"], 0);
    p.ok(&["apply", "--auto-approve"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn an_unreachable_host_is_reported_and_the_others_are_planned() {
    let p = Project::new();
    let config = "[hosts.a]\ntarget = \"lab:lab/a.json\"\n[hosts.b]\ntarget = \"lab:lab/b.json\"\n";
    p.write("kmsconf.toml", config);
    p.ok(&["lab", "unreachable", "lab/a.json", "on"], 0);
    let r = p.ok(&["plan"], 1);
    snapshot_run("failures-unreachable-plan", &p, &r);
}

/// Issue 5: with a host unreachable, apply still converges the others, skips (and reports,
/// change by change) the hosts that depend on it, exits 1, and a re-run converges.
#[test]
fn apply_with_an_unreachable_host_finishes_the_others_and_skips_its_dependents() {
    let p = Project::new();
    let config = three_hosts_b_after_a();
    p.write("kmsconf.toml", &config);
    p.ok(&["lab", "unreachable", "lab/a.json", "on"], 0);
    let r = p.ok(&["apply", "--auto-approve"], 1);
    snapshot_run("failures-unreachable-apply", &p, &r);
    assert!(
        p.read("lab/c.json")
            .contains("\"license_status\": \"licensed\""),
        "c finished"
    );
    assert!(
        !p.read("lab/b.json").contains("kms-host"),
        "b was not touched"
    );
    let json = p.ok(&["apply", "--auto-approve", "--json"], 1);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("one JSON object");
    assert_eq!(doc["summary"]["hosts_failed"], 1, "{json:?}");
    assert_eq!(doc["summary"]["skipped"], 2, "{json:?}");
    p.ok(&["lab", "unreachable", "lab/a.json", "off"], 0);
    p.ok(&["apply", "--auto-approve"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn a_corrupt_lab_state_file_is_an_error_and_stays_as_it_was() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(""));
    p.write("lab/kms01.json", "{\"format\": 1, \"truncated");
    let r = p.ok(&["apply", "--auto-approve"], 1);
    snapshot_run("failures-corrupt-lab-state", &p, &r);
    assert_eq!(p.read("lab/kms01.json"), "{\"format\": 1, \"truncated");
}

#[cfg(unix)] // the system `ssh` client, which Wine has not
#[test]
fn a_host_that_cannot_be_reached_to_lock_fails_alone() {
    // nothing listens on this port: taking the ssh host's lock fails, the lab host converges
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let mut p = Project::new();
    let config = format!(
        "[hosts.lab]\ntarget = \"lab:lab/lab.json\"\n[hosts.lab.products.windows]\nhost_key = {{ env = \"KMS_HOST_KEY\" }}\n\n[hosts.win]\ntarget = \"ssh://admin@127.0.0.1:{port}\"\n"
    );
    p.write("kmsconf.toml", &config);
    p.env("KMSCONF_SSH", "ssh -F /dev/null -o ConnectTimeout=5");
    let r = p.ok(&["apply", "--auto-approve"], 1);
    snapshot_run("failures-lock-unreachable", &p, &r);
    p.ok(&["plan", "--host", "lab", "--detailed-exitcode"], 0);
}

#[test]
fn a_bad_timeout_setting_is_one_error_not_a_failure_of_each_host() {
    let mut p = Project::example("two-hosts");
    p.env("KMSCONF_TIMEOUT", "abc");
    for args in [&["plan"][..], &["apply", "--auto-approve"]] {
        let r = p.ok(args, 1);
        let message = "`KMSCONF_TIMEOUT` = `abc` is not allowed: give a whole number of seconds from 1 to 86400";
        assert_eq!(r.all().matches(message).count(), 1, "{r:?}");
        assert!(!r.all().contains("cannot plan"), "{r:?}");
    }
    assert!(!p.path("lab").exists(), "no host was touched");
}

/// Lab hosts `a`, `b` (which depends on `a`) and `c`, each with a Windows KMS host key.
fn three_hosts_b_after_a() -> String {
    let host = |name: &str, extra: &str| {
        format!("[hosts.{name}]\ntarget = \"lab:lab/{name}.json\"\n{extra}\n[hosts.{name}.products.windows]\nhost_key = {{ env = \"KMS_HOST_KEY\" }}\n\n")
    };
    [
        host("a", ""),
        host("b", "depends_on = [\"a\"]"),
        host("c", ""),
    ]
    .concat()
}
