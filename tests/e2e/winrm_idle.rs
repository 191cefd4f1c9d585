//! Shells that end: kmsconf asks for a shell idle time bounded by the run's timeout
//! (`KMSCONF_TIMEOUT`, at least twice `operation_timeout`, and never under WinRM's one-minute
//! minimum, which the test endpoint enforces by refusing a shorter one), and keeps the shell
//! alive while the run waits. The test endpoint deletes a shell no request has touched for its
//! idle time, as WinRM does: a run killed outright (`kill -9`) leaves a shell that ends within
//! that bound, while a run that sits at apply's confirmation prompt for longer keeps its shell.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::winrm::{host_table, http_url, project, Host};

/// The run's timeout in these tests (`operation_timeout = 1`): below WinRM's minimum idle time,
/// so the shells' idle time is that minimum.
const TIMEOUT: u64 = 6;
/// WinRM's least shell idle time, in seconds (`shell-idle-timeout-minimum`).
const IDLE: u64 = 60;

fn slow_host() -> (Host, Project) {
    let h = Host::start(&[]);
    let mut p = project(&host_table("kms0", &http_url(&h), "operation_timeout = 1"));
    p.env("KMSCONF_TIMEOUT", &TIMEOUT.to_string());
    p.ok(&["plan"], 0);
    (h, p)
}

#[test]
fn a_killed_runs_shell_ends_within_the_idle_time() {
    let (h, p) = slow_host();
    // the agent takes 4 s per answer: the run is killed while it waits on its first one
    p.ok(&["lab", "latency", &h.lab(), "4000"], 0);
    let shells = h.count("shells_created");
    let mut apply = p.spawn(&["apply", "--auto-approve"]);
    p.wait_for("the run's shell", |_| {
        h.count("shells_created") > shells && h.count("commands") > shells
    });
    apply.kill().expect("kill -9");
    let killed = Instant::now();
    let _ = apply.wait();
    while h.count("shells_expired") == 0 {
        assert!(
            killed.elapsed() < Duration::from_secs(IDLE + 5),
            "the shell outlived its idle time: {}",
            h.stats()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // the shell asked the minimum, not the run's shorter timeout (which the endpoint refuses)
    assert!(
        killed.elapsed() >= Duration::from_secs(IDLE - 5),
        "{}",
        h.stats()
    );
    assert_eq!(h.count("shells_refused_idle_timeout"), 0, "{}", h.stats());
    // the agent (and the apply lock it held) ended with the shell
    p.ok(&["lab", "latency", &h.lab(), "0"], 0);
    let rerun = p.ok(&["apply", "--auto-approve"], 0);
    assert!(rerun.stdout.contains("installed key"), "{rerun:?}");
}

/// `apply` holds its sessions (and their locks) while it asks for confirmation; the keepalive
/// keeps the shell from idling out however long the answer takes. The run's timeout (600 s)
/// asks for ten minutes, but the service grants at most its own `IdleTimeout` (60 s here, as a
/// Group Policy may set it) and says so in its Create reply: the keepalive follows what was
/// granted.
#[test]
fn a_shell_waiting_at_the_confirmation_prompt_is_kept_alive() {
    let h = Host::start(&["--service-idle-timeout", &IDLE.to_string()]);
    let mut p = project(&host_table("kms0", &http_url(&h), "operation_timeout = 1"));
    p.env("KMSCONF_TIMEOUT", "600");
    p.ok(&["plan"], 0);
    let kmsconf = p.command(&["apply"]);
    // `script` gives apply a terminal to confirm on
    let mut script = Command::new("script");
    script
        .args([
            "-qec",
            &format!("'{}' apply", env!("CARGO_BIN_EXE_kmsconf")),
            "/dev/null",
        ])
        .current_dir(p.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in kmsconf.get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    let mut child = script.spawn().expect("script (util-linux)");
    // longer than the shell's idle time: only the keepalive's Receives keep it
    std::thread::sleep(Duration::from_secs(IDLE + 10));
    child
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"yes\n")
        .expect("answer");
    let out = child.wait_with_output().expect("apply");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("installed key"),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        h.stats()
    );
    assert_eq!(h.count("shells_expired"), 0, "{}", h.stats());
}
