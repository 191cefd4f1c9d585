//! First contact with a host kmsconf has never seen: an agent damaged on its way there is
//! refused by name before anything runs, and what a host shows that contradicts kmsconf's
//! unverified Windows facts is reported before any change. Over the real sshd of
//! `targets/tests/support/sshd.rs`, whose `powershell.exe` runs `kmsconf lab agent`.

use crate::common::*;
use crate::ssh::sshd::{user, Server};

/// A `powershell.exe` that relays its input to the lab agent and damages it on the way: the
/// first `A` of the first line (the agent, in base64) becomes a `B`, one byte flipped.
const DAMAGING_RELAY: &str = r#"#!/bin/sh
dir="$(dirname "$0")/.."
echo relayed >> "$dir/sessions"
sed -u '1s/A/B/' | "$KMSCONF_BIN" lab agent "$dir/lab/host.json"
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
/// and both hashes, and the host ran nothing (its lab file was never written).
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
}
