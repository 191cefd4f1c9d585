//! `ssh://` targets through the real binary: validate, plan, apply and export against a real
//! OpenSSH server on 127.0.0.1 whose `powershell.exe` is a fake answering with CIM fixtures
//! (see `targets/tests/support/sshd.rs`), reached with `KMSCONF_SSH`.

#[path = "../../targets/tests/support/sshd.rs"]
mod sshd;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::common::*;
use sshd::{user, Server};

fn line(kind: &str, value: &Value) -> String {
    format!("KMSCONF:{kind}:{}\n", BASE64.encode(value.to_string()))
}

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("targets/testdata/cim")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

/// A project whose one host is the sshd, with `KMSCONF_SSH` pointing at its client config.
fn project(s: &Server, extra: &str) -> (Project, String) {
    let mut p = Project::new();
    let target = format!("ssh://{}@127.0.0.1:{}", user(), s.port);
    p.write(
        "kmsconf.toml",
        &format!("[hosts.kms01]\ntarget = \"{target}\"\n{extra}"),
    );
    p.env(
        "KMSCONF_SSH",
        &format!("ssh -F {}", s.path("ssh_config").display()),
    );
    p.env("KMSCONF_TIMEOUT", "30");
    (p, target)
}

#[test]
fn plan_apply_and_export_reach_a_windows_host_over_ssh() {
    let s = Server::start();
    let fresh = fixture("fresh-server.json");
    s.mode("answer", &line("discovery", &fresh));
    let mut rules = fresh["FirewallRules"].clone();
    for rule in rules.as_array_mut().expect("rules") {
        rule["Enabled"] = json!("True");
    }
    let batch = [
        line("begin", &json!({ "Index": 0 })),
        line(
            "result",
            &json!({ "Index": 0, "Ok": true, "ReadBack": { "FirewallRules": rules } }),
        ),
    ]
    .concat();
    s.write("answer-batch", &batch);
    let (p, target) = project(
        &s,
        "\n[hosts.kms01.firewall]\nrule_groups = [\"file-and-printer-sharing\"]\n",
    );
    p.ok(&["validate"], 0);
    let plan = p.ok(&["plan", "--detailed-exitcode"], 2);
    assert!(
        plan.stdout.contains("firewall.file-and-printer-sharing"),
        "{plan:?}"
    );
    let applied = p.ok(&["apply", "--auto-approve"], 0);
    assert!(
        applied
            .stdout
            .contains("applied  firewall.file-and-printer-sharing"),
        "{applied:?}"
    );
    // apply took the host's lock before discovering and released it at the end
    let lock =
        String::from_utf8(BASE64.decode(s.read("stdin-lock").trim()).expect("b64")).expect("utf8");
    assert!(
        lock.contains("CreateNew") && lock.contains("\\\"pid\\\""),
        "{lock}"
    );
    assert!(s.path("stdin-unlock").exists(), "the lock was released");
    let script =
        String::from_utf8(BASE64.decode(s.read("stdin").trim()).expect("b64")).expect("utf8");
    assert!(
        script.contains("Set-NetFirewallRule -Enabled True"),
        "{script}"
    );

    let exported = p.ok(&["export", "--target", &target], 0);
    assert!(
        exported.stdout.contains("[hosts.win-7q2labhost]")
            && exported.stdout.contains("KMS client key ending in YDYKQ"),
        "{exported:?}"
    );
}

#[test]
fn host_failures_over_ssh_are_reported_per_host() {
    let s = Server::start();
    s.mode("fail", "");
    let (p, _) = project(&s, "");
    let r = p.ok(&["plan"], 1);
    assert!(
        r.all().contains("exit code 3") && r.all().contains("Access denied"),
        "{r:?}"
    );
    s.write("known_hosts", "");
    let r = p.ok(&["plan"], 1);
    assert!(r.all().contains("host key verification failed"), "{r:?}");
}
