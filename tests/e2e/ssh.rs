//! `ssh://` targets through the real binary: failures of the host and of the connection against
//! a real OpenSSH server on 127.0.0.1 whose `powershell.exe` is a fake (see
//! `targets/tests/support/sshd.rs`), reached with `KMSCONF_SSH`. `agent.rs` converges hosts
//! over the same server with `kmsconf lab agent` as their `powershell.exe`.

#[path = "../../targets/tests/support/sshd.rs"]
pub mod sshd;

use crate::common::*;
use sshd::{user, Server};

/// A project whose one host is the sshd, with `KMSCONF_SSH` pointing at its client config.
fn project(s: &Server) -> Project {
    let mut p = Project::new();
    let target = format!("ssh://{}@127.0.0.1:{}", user(), s.port);
    p.write(
        "kmsconf.toml",
        &format!("[hosts.kms01]\ntarget = \"{target}\"\n"),
    );
    p.env(
        "KMSCONF_SSH",
        &format!("ssh -F {}", s.path("ssh_config").display()),
    );
    p.env("KMSCONF_TIMEOUT", "30");
    p
}

#[test]
fn host_failures_over_ssh_are_reported_per_host() {
    let s = Server::start();
    s.mode("fail");
    let p = project(&s);
    let r = p.ok(&["plan"], 1);
    assert!(
        r.all().contains("exit code 3") && r.all().contains("Access denied"),
        "{r:?}"
    );
    s.write("known_hosts", "");
    let r = p.ok(&["plan"], 1);
    assert!(r.all().contains("host key verification failed"), "{r:?}");
}
