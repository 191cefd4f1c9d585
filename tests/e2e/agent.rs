//! The whole Windows path against a host whose state changes: `ssh://` targets through the real
//! sshd of `targets/tests/support/sshd.rs`, whose `powershell.exe` is a stand-in that execs
//! `kmsconf lab agent` on one lab file per address it is reached at (one per host), and records
//! each session it serves. Every command must make exactly one connection per host.

use crate::common::*;
use crate::ssh::sshd::{user, Server, ADDRESSES};

/// The host's `powershell.exe`: the lab agent on the lab file of the address it was reached at.
const STAND_IN: &str = r#"#!/bin/sh
dir="$(dirname "$0")/.."
address=$(echo "$SSH_CONNECTION" | cut -d' ' -f3)
echo "$address" >> "$dir/sessions"
exec "$KMSCONF_BIN" lab agent "$dir/lab/$address.json"
"#;

fn server() -> Server {
    let s = Server::start_with_env(&[("KMSCONF_BIN", env!("CARGO_BIN_EXE_kmsconf"))]);
    s.powershell(STAND_IN);
    s
}

/// A config of `hosts` hosts, each reached over ssh at its own address, with the Windows KMS
/// host key, service settings (one needing the restart) and the KMS firewall group's two rules on
/// the domain and private profiles.
fn config(s: &Server, hosts: usize, activation_interval: u32) -> String {
    ADDRESSES[..hosts]
        .iter()
        .enumerate()
        .map(|(i, address)| {
            format!(
                "[hosts.kms{i}]\ntarget = \"ssh://{user}@{address}:{port}\"\n\n\
                 [hosts.kms{i}.products.windows]\nhost_key = {{ env = \"KMS_HOST_KEY\" }}\n\n\
                 [hosts.kms{i}.service]\nport = 1689\nactivation_interval = {activation_interval}\n\n\
                 [hosts.kms{i}.firewall]\nrule_groups = [\"key-management-service\"]\nremote_addresses = [\"10.0.0.0/8\"]\nprofiles = [\"domain\", \"private\"]\n\n",
                user = user(),
                port = s.port
            )
        })
        .collect()
}

fn project(s: &Server, hosts: usize) -> Project {
    let mut p = Project::new();
    p.write("kmsconf.toml", &config(s, hosts, 60));
    p.env(
        "KMSCONF_SSH",
        &format!("ssh -F {}", s.path("ssh_config").display()),
    );
    p.env("KMSCONF_TIMEOUT", "60");
    p.env("KMS_HOST_KEY", WINDOWS_KEY);
    p
}

/// Runs `args`, asserts the exit code and that the command connected exactly once to each of
/// the first `hosts` addresses.
fn once_per_host(s: &Server, p: &Project, hosts: usize, args: &[&str], code: i32) -> Run {
    let _ = std::fs::remove_file(s.path("sessions"));
    let r = p.ok(args, code);
    let mut sessions = s.sessions();
    sessions.sort();
    assert_eq!(
        sessions,
        ADDRESSES[..hosts],
        "kmsconf {}: one connection per host\n{r:?}",
        args.join(" ")
    );
    r
}

#[test]
fn plan_apply_and_saved_plans_converge_with_one_connection_per_host() {
    let s = server();
    let mut p = project(&s, 3);
    let plan = once_per_host(&s, &p, 3, &["plan", "--detailed-exitcode"], 2);
    assert!(plan.stdout.contains("products.windows"), "{plan:?}");
    // a trace shows each request, never the key it carries
    p.env("KMSCONF_LOG", "kmsconf_targets=trace");
    let applied = once_per_host(&s, &p, 3, &["apply", "--auto-approve"], 0);
    p.unset("KMSCONF_LOG");
    assert!(
        applied
            .stdout
            .contains("installed key *****-*****-*****-*****-6789B")
            && applied.stdout.contains("activated online")
            && applied
                .stdout
                .contains("Software Protection service restarted"),
        "{applied:?}"
    );
    assert!(
        applied.stderr.contains("install_product_key") && applied.stderr.contains("key=<redacted>"),
        "{}",
        applied.stderr
    );
    assert!(!applied.all().contains("HJKMP"), "a secret was printed");
    once_per_host(&s, &p, 3, &["plan", "--detailed-exitcode"], 0);

    p.write("kmsconf.toml", &config(&s, 3, 120));
    once_per_host(&s, &p, 3, &["plan", "--out", "change.plan"], 0);
    let applied = once_per_host(&s, &p, 3, &["apply", "change.plan"], 0);
    assert!(
        applied.stdout.contains("service.activation_interval"),
        "{applied:?}"
    );
    once_per_host(&s, &p, 3, &["plan", "--detailed-exitcode"], 0);
    once_per_host(&s, &p, 3, &["status"], 0);
    // doctor's port check finds nothing listening for these hosts; it still connects once each
    let _ = std::fs::remove_file(s.path("sessions"));
    let doctor = p.run(&["doctor"]);
    let mut sessions = s.sessions();
    sessions.sort();
    assert_eq!(sessions, ADDRESSES[..3], "{doctor:?}");

    let lab = p.ok(
        &[
            "lab",
            "show",
            &s.path("lab/127.0.0.2.json").display().to_string(),
        ],
        0,
    );
    assert!(
        lab.stdout.contains("\"activation_interval\": 120") && !lab.stdout.contains("HJKMP"),
        "{lab:?}"
    );
    // both Key Management Service rules, set one by one through the agent, with their profiles
    let file: serde_json::Value = serde_json::from_str(&lab.stdout).expect("lab file");
    let rules = &file["host"]["firewall"]["groups"]["key-management-service"]["rules"];
    for (rule, profiles) in [
        ("SPPSVC-In-TCP", serde_json::json!(["private"])),
        ("SPPSVC-In-TCP-NoScope", serde_json::json!(["domain"])),
    ] {
        assert_eq!(rules[rule]["enabled"], true, "{rule}: {rules}");
        assert_eq!(rules[rule]["profiles"], profiles, "{rule}: {rules}");
        assert_eq!(
            rules[rule]["remote_addresses"],
            serde_json::json!(["10.0.0.0/8"]),
            "{rule}: {rules}"
        );
    }
    let target = format!("ssh://{}@127.0.0.3:{}", user(), s.port);
    let exported = once_per_host_at(&s, &p, &["export", "--target", &target], "127.0.0.3");
    assert!(
        exported.stdout.contains("activation_interval = 120"),
        "{exported:?}"
    );
}

fn once_per_host_at(s: &Server, p: &Project, args: &[&str], address: &str) -> Run {
    let _ = std::fs::remove_file(s.path("sessions"));
    let r = p.ok(args, 0);
    assert_eq!(s.sessions(), [address], "{r:?}");
    r
}

#[test]
fn a_fault_on_the_agents_host_fails_its_change_and_a_rerun_converges() {
    let s = server();
    let p = project(&s, 1);
    once_per_host(&s, &p, 1, &["plan", "--detailed-exitcode"], 2);
    let lab = s.path("lab/127.0.0.1.json").display().to_string();
    p.ok(
        &[
            "lab",
            "fault",
            &lab,
            "--op",
            "activate",
            "--hresult",
            "0xC004F074",
            "--times",
            "1",
        ],
        0,
    );
    let failed = once_per_host(&s, &p, 1, &["apply", "--auto-approve"], 1);
    let out = failed.all();
    assert_eq!(
        out.matches("0xC004F074").count(),
        1,
        "explained once: {out}"
    );
    assert!(
        out.contains("no KMS host could be contacted") && out.contains("skipped"),
        "{out}"
    );
    let rerun = once_per_host(&s, &p, 1, &["apply", "--auto-approve"], 0);
    assert!(rerun.stdout.contains("activated online"), "{rerun:?}");
    once_per_host(&s, &p, 1, &["plan", "--detailed-exitcode"], 0);
}

/// Retiring a host through the agent: the retired host becomes a KMS client (its key
/// uninstalled by its SKU's activation ID, the GVLK installed, both KMS rules off, the port
/// cleared), a run that fails part-way converges when run again, the other host is left alone,
/// a re-plan shows no changes, and every command still makes one connection per host.
#[test]
fn a_host_retires_through_the_agent_with_one_connection_per_host() {
    let s = server();
    let p = project(&s, 2);
    once_per_host(&s, &p, 2, &["apply", "--auto-approve"], 0);
    let lab = |address: &str| -> serde_json::Value {
        let shown = p.ok(
            &[
                "lab",
                "show",
                &s.path(&format!("lab/{address}.json")).display().to_string(),
            ],
            0,
        );
        serde_json::from_str(&shown.stdout).expect("lab file")
    };
    let kept_before = lab(ADDRESSES[1])["host"].clone();

    let fleet = config(&s, 2, 60);
    let kept = fleet
        .find("[hosts.kms1]")
        .map_or("", |at| &fleet[at..])
        .to_string();
    let retired = format!(
        "[hosts.kms0]\ntarget = \"ssh://{}@{}:{}\"\nstate = \"retired\"\n\n{kept}",
        user(),
        ADDRESSES[0],
        s.port
    );
    p.write("kmsconf.toml", &retired);
    let plan = once_per_host(&s, &p, 2, &["plan", "--detailed-exitcode"], 2);
    assert!(
        plan.stdout
            .contains("slmgr.vbs /ipk WX4NM-KYWYW-QJJR4-XV3QB-6VM33")
            && !plan.stdout.contains("slmgr.vbs /upk")
            && plan
                .stdout
                .contains("ClearKeyManagementServiceListeningPort"),
        "{plan:?}"
    );
    // the client key's install (which replaces the host key) fails once, part-way through: a
    // second run converges
    let file = s.path(&format!("lab/{}.json", ADDRESSES[0]));
    let fault = [
        "lab",
        "fault",
        &file.display().to_string(),
        "--op",
        "install-key",
        "--hresult",
        "0xC004F050",
        "--times",
        "1",
    ];
    p.ok(&fault, 0);
    let failed = once_per_host(&s, &p, 2, &["apply", "--auto-approve"], 1);
    assert!(failed.all().contains("0xC004F050"), "{failed:?}");
    assert_eq!(
        lab(ADDRESSES[0])["host"]["products"]["windows"]["channel"],
        "kms-host",
        "a failed replacement leaves the KMS host key, never no key"
    );
    let applied = once_per_host(&s, &p, 2, &["apply", "--auto-approve"], 0);
    assert!(!applied.all().contains("HJKMP"), "a secret was printed");
    once_per_host(&s, &p, 2, &["plan", "--detailed-exitcode"], 0);

    let host = lab(ADDRESSES[0])["host"].clone();
    let windows = &host["products"]["windows"];
    assert_eq!(windows["channel"], "kms-client", "{host}");
    assert_eq!(windows["partial_key"], "6VM33", "the GVLK: {host}");
    let rules = &host["firewall"]["groups"]["key-management-service"]["rules"];
    for rule in ["SPPSVC-In-TCP", "SPPSVC-In-TCP-NoScope"] {
        assert_eq!(rules[rule]["enabled"], false, "{rule}: {rules}");
    }
    assert!(host["firewall"]["port_rule"].is_null(), "{host}");
    assert_eq!(host["service"]["port"], 0, "{host}");
    // the other host is as it was
    assert_eq!(lab(ADDRESSES[1])["host"], kept_before);
}
