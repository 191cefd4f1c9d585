//! README's quickstart (`scripts/quickstart.sh`) run as it is, with this build's binary: it
//! ends with doctor reporting no failed check, through real TCP connects to the ports
//! `kmsconf lab listen` holds, and stops the listener it started. Also `lab listen` alone: a
//! taken port, hosts it must not listen for, and a clean end on SIGTERM.

use std::net::TcpListener;
#[cfg(unix)]
use std::path::Path;
#[cfg(unix)]
use std::process::Command;

use crate::common::*;

#[cfg(unix)] // bash runs the script
#[test]
fn the_quickstart_ends_with_doctor_healthy_and_stops_its_listener() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/quickstart.sh");
    let out = Command::new("bash")
        .arg(script)
        .env("KMSCONF", env!("CARGO_BIN_EXE_kmsconf"))
        .env_remove("KMSCONF_LOG")
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!(
        "exit {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(out.status.success(), "{all}");
    let doctor = stdout.split("== kmsconf doctor").nth(1).expect(&all);
    assert!(
        doctor.contains("TCP 127.0.0.1:1688 accepts connections"),
        "{all}"
    );
    assert!(
        doctor.contains("TCP 127.0.0.1:1689 accepts connections"),
        "{all}"
    );
    assert!(
        doctor.contains("Doctor: 20 ok, 0 warnings, 0 failed."),
        "{all}"
    );
    assert!(!doctor.contains("failed "), "{all}");
    // the listener ended on the script's SIGTERM, cleanly
    assert!(stderr.contains("stopped: the ports are closed"), "{all}");
}

/// A lab host whose KMS port in effect is `port`.
fn lab_host(p: &Project, path: &str, port: u16) {
    p.ok(&["lab", "offline", path, "off"], 0);
    let mut file: serde_json::Value = serde_json::from_str(&p.read(path)).expect("lab JSON");
    file["host"]["service"]["port"] = port.into();
    p.write(path, &file.to_string());
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn a_taken_port_is_refused_naming_the_port_and_the_host() {
    let p = Project::new();
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    lab_host(&p, "lab/kms01.json", port);
    let r = p.ok(&["lab", "listen", "lab/kms01.json"], 1);
    assert_eq!(
        r.stderr,
        format!("error: lab host `lab/kms01.json`: cannot listen on 127.0.0.1:{port}: the port is in use by another program\n"),
        "{r:?}"
    );
}

#[test]
fn unreachable_and_offline_hosts_are_not_listened_for() {
    let p = Project::new();
    lab_host(&p, "lab/gone.json", free_port());
    p.ok(&["lab", "unreachable", "lab/gone.json", "on"], 0);
    lab_host(&p, "lab/cut.json", free_port());
    p.ok(&["lab", "offline", "lab/cut.json", "on"], 0);
    let r = p.ok(&["lab", "listen", "lab/gone.json", "lab/cut.json"], 1);
    snapshot_run("lab-listen-nothing-to-listen-for", &p, &r);
    // the help says which hosts are not listened for
    let help = p.ok(&["lab", "listen", "--help"], 0);
    snapshot_run("lab-listen-help", &p, &help);
}

#[cfg(unix)] // kill sends SIGTERM
#[test]
fn sigterm_ends_the_listener_cleanly() {
    let p = Project::new();
    let port = free_port();
    lab_host(&p, "lab/kms01.json", port);
    let child = p
        .command(&["lab", "listen", "lab/kms01.json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    p.wait_for("the port to open", |_| {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("127.0.0.1:{port}")),
        "the port: {stdout}"
    );
    let run = Run {
        code: 0,
        stdout: stdout.into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    snapshot_run("lab-listen-sigterm", &p, &run);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
