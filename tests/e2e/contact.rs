//! First contact with a host kmsconf has never seen: an agent damaged on its way there is
//! refused by name before anything runs, and what a host shows that contradicts kmsconf's
//! unverified Windows facts is reported before any change. Over the real sshd of
//! `targets/tests/support/sshd.rs`, whose `powershell.exe` runs `kmsconf lab agent`.

use crate::common::*;
use crate::ssh::sshd::{user, Server};

/// A `powershell.exe` that relays its input to the lab agent and damages it on the way: the
/// first `A` of the first line (the agent, in base64) becomes a `B`, one byte flipped. Every
/// line it receives is kept in `received`.
const DAMAGING_RELAY: &str = r#"#!/bin/sh
dir="$(dirname "$0")/.."
echo relayed >> "$dir/sessions"
tee -a "$dir/received" | sed -u '1s/A/B/' | "$KMSCONF_BIN" lab agent "$dir/lab/host.json"
"#;

fn project(s: &Server) -> Project {
    let mut p = Project::new();
    p.write(
        "kmsconf.toml",
        &format!(
            "[hosts.kms]\ntarget = \"ssh://{user}@127.0.0.1:{port}\"\n\n\
             [hosts.kms.products.windows]\nhost_key = {{ env = \"KMS_HOST_KEY\" }}\n\n\
             [hosts.kms.service]\nactivation_interval = 60\n",
            user = user(),
            port = s.port
        ),
    );
    p.env(
        "KMSCONF_SSH",
        &format!("ssh -F {}", s.path("ssh_config").display()),
    );
    p.env("KMSCONF_TIMEOUT", "60");
    p.env("KMS_HOST_KEY", WINDOWS_KEY);
    p
}

/// The agent damaged in transit: `plan` and `apply` fail with exit code 1, naming the transport
/// and both hashes, the host ran nothing (its lab file was never written), and kmsconf sent it
/// nothing after the agent: no request, so no secret, reaches a host that refused the agent.
#[test]
fn an_agent_damaged_in_transit_is_refused_before_any_request_runs() {
    let s = Server::start_with_env(&[("KMSCONF_BIN", env!("CARGO_BIN_EXE_kmsconf"))]);
    s.powershell(DAMAGING_RELAY);
    let p = project(&s);
    for args in [&["plan"][..], &["apply", "--auto-approve"]] {
        let r = p.ok(args, 1);
        let out = r.all();
        assert!(
            out.contains(
                "host `kms`: the agent arrived damaged over SSH (SHA-256 mismatch): kmsconf sent "
            ) && out.contains("nothing was run"),
            "kmsconf {}: {r:?}",
            args.join(" ")
        );
        // what was sent and what arrived: the same length, another hash (one byte flipped)
        let sent = out.split("kmsconf sent ").nth(1).unwrap_or_default();
        let bytes = sent.split(' ').next().unwrap_or_default();
        assert!(
            sent.contains(&format!("the host decoded {bytes} bytes with SHA-256 `")),
            "{out}"
        );
    }
    assert_eq!(s.sessions(), ["relayed", "relayed"]);
    assert!(
        !s.path("lab/host.json").exists(),
        "the damaged agent ran a request"
    );
    let received = s.read("received");
    assert_eq!(
        received.lines().count(),
        2,
        "a request was sent after a damaged agent: {}",
        received
            .lines()
            .skip(1)
            .map(|l| &l[..l.len().min(80)])
            .collect::<Vec<_>>()
            .join(" | ")
    );
    assert!(!received.contains("\"op\""), "a request was sent");
}

/// The same over WinRM: the test endpoint's shell command damages the agent line on its way to
/// the lab agent (one byte flipped), and `plan` and `apply` fail naming WinRM, before any request
/// ran (the lab file is never written).
#[test]
fn an_agent_damaged_over_winrm_is_refused_naming_winrm() {
    use crate::winrm::{host_table, http_url, project, Host};
    let h = Host::start(&[
        "--agent-command",
        r#"sed -u '1s/A/B/' | "$KMSCONF_BIN" lab agent "$LAB_FILE""#,
    ]);
    let mut p = project(&host_table("kms", &http_url(&h), ""));
    p.env("KMS_HOST_KEY", WINDOWS_KEY);
    for args in [&["plan"][..], &["apply", "--auto-approve"]] {
        let r = p.ok(args, 1);
        let out = r.all();
        assert!(
            out.contains(
                "host `kms`: the agent arrived damaged over WinRM (SHA-256 mismatch): kmsconf sent "
            ) && out.contains("nothing was run"),
            "kmsconf {}: {r:?}",
            args.join(" ")
        );
    }
    assert!(
        !std::path::Path::new(&h.lab()).exists(),
        "the damaged agent ran a request"
    );
}

/// The host's `powershell.exe`: the lab agent on the lab file `lab/host.json`.
const STAND_IN: &str = r#"#!/bin/sh
dir="$(dirname "$0")/.."
echo relayed >> "$dir/sessions"
exec "$KMSCONF_BIN" lab agent "$dir/lab/host.json"
"#;

/// Makes the server's lab host keep `VLActivationInterval` under the Vista-era `SL` key, not under
/// SoftwareProtectionPlatform, where the facts table names it.
fn contradict_interval_key(s: &Server) {
    let mut file: serde_json::Value =
        serde_json::from_str(&s.read("lab/host.json")).expect("lab file");
    file["host"]["readings"] = serde_json::json!({
        "registry": [{ "key": "sl", "name": "VLActivationInterval", "type": "REG_DWORD" }]
    });
    s.write("lab/host.json", &file.to_string());
}

/// Issue 24: over the real agent protocol, a host that contradicts a Windows fact is a plan
/// warning and an apply refusal; `--accept-surprises` applies the interval, which the host shows
/// nowhere before the restart, and verifies it against the running service after it. A recording
/// of the plan replays the warning.
#[test]
fn a_host_contradicting_a_fact_is_reported_refused_and_applied_only_when_accepted() {
    let s = Server::start_with_env(&[("KMSCONF_BIN", env!("CARGO_BIN_EXE_kmsconf"))]);
    s.powershell(STAND_IN);
    let mut p = project(&s);
    p.ok(&["plan"], 0);
    contradict_interval_key(&s);
    let warning = "warning: the host contradicts `registry VLActivationInterval` (source `spp-listing` in model/data/windows.toml)";
    p.env("KMSCONF_RECORD", &p.path("recording").display().to_string());
    let planned = p.ok(&["plan"], 0);
    p.unset("KMSCONF_RECORD");
    assert!(planned.stdout.contains(warning), "{planned:?}");
    let refused = p.ok(&["apply", "--auto-approve"], 1);
    assert!(
        refused
            .stderr
            .contains("refusing to apply: host `kms`: `service.activation_interval` relies on `registry VLActivationInterval`"),
        "{refused:?}"
    );
    let applied = p.ok(&["apply", "--auto-approve", "--accept-surprises"], 0);
    assert!(
        applied
            .stdout
            .contains("the host shows `slmgr.vbs /sai 60` nowhere until the service restarts, so the restart verifies it"),
        "{applied:?}"
    );
    assert!(
        applied
            .stdout
            .contains("Software Protection service restarted"),
        "{applied:?}"
    );
    let again = p.ok(&["plan"], 0);
    assert!(
        again.stdout.contains("no changes") && again.stdout.contains(warning),
        "{again:?}"
    );
    // the recorded plan replays with the same warning
    p.write(
        "kmsconf.toml",
        "[hosts.kms]\ntarget = \"replay:recording/kms.jsonl\"\n\n\
         [hosts.kms.products.windows]\nhost_key = { env = \"KMS_HOST_KEY\" }\n\n\
         [hosts.kms.service]\nactivation_interval = 60\n",
    );
    let replayed = p.ok(&["plan"], 0);
    assert_eq!(
        replayed.stdout.lines().skip(1).collect::<Vec<_>>(),
        planned.stdout.lines().skip(1).collect::<Vec<_>>(),
        "{replayed:?}"
    );
}
