//! The SSH transport against a real OpenSSH server (see `support/sshd.rs`): Debian's `sshd`, on a
//! free port with a throw-away host key and user key, and stopped by PID when the test ends.
//! There is no PowerShell on Linux, so the server's PATH starts with a fake `powershell.exe`
//! that speaks the agent protocol, records its session, arguments, agent and requests, and
//! answers as the test tells it.
//!
//! Needs `/usr/sbin/sshd` (`apt-get install openssh-server`; `scripts/test.sh` installs it). Without it
//! these tests fail, they never skip. They need a Unix `sshd` and `sh`, so Windows compiles them
//! out.
#![cfg(unix)]

#[path = "support/sshd.rs"]
mod sshd;

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use kmsconf_engine::secret::Secret;
use kmsconf_engine::target::ChangeStatus;
use kmsconf_model::config::{ProductId, TargetSpec};
use kmsconf_model::keys::ProductKey;
use kmsconf_model::ops::{ServiceSetting, TargetOp};
use kmsconf_targets::{self as targets, Connect, Error};
use serde_json::{json, Value};
use sshd::{free_port, user, Server};

const KEY: &str = "BCDFG-HJKMP-QRTVW-XY234-6789B";

fn target(s: &Server, timeout: Duration) -> Box<targets::DynHostTarget> {
    let connect = Connect {
        ssh_command: vec![
            "ssh".into(),
            "-F".into(),
            s.path("ssh_config").display().to_string(),
        ],
        timeout,
        connect_timeout: Duration::from_secs(5),
        record: None,
    };
    let spec = TargetSpec::Ssh {
        user: Some(user()),
        host: "127.0.0.1".into(),
        port: Some(s.port),
    };
    targets::open_host("kms01", &spec, &connect).expect("open")
}

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cim/kms-host.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

fn key_op() -> TargetOp {
    TargetOp::InstallProductKey {
        product: ProductId::Windows,
        key: ProductKey::parse(&Secret::new(KEY)).expect("key"),
    }
}

fn windows_product() -> Value {
    fixture()["SoftwareLicensingProduct"][0].clone()
}

fn begin() -> (&'static str, Value) {
    ("begin", json!({ "Id": "@ID@" }))
}

fn ok(kind: &'static str, answer: Value) -> (&'static str, Value) {
    (kind, json!({ "Id": "@ID@", "Ok": true, "Answer": answer }))
}

/// The requests the fake received, as JSON.
fn requests(s: &Server) -> Vec<Value> {
    s.read("requests")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a request is one JSON line"))
        .collect()
}

#[test]
fn discovery_runs_powershell_with_the_agent_on_stdin() {
    let s = Server::start();
    s.answer("discover", &[begin(), ok("discovery", fixture())]);
    let d = target(&s, Duration::from_secs(30))
        .discover()
        .expect("discover");
    assert_eq!(d.state.computer_name, "KMS01");
    assert_eq!(d.state.service.port(), 1689);
    let argv = s.read("argv");
    assert_eq!(argv.lines().next(), Some("-NoLogo"), "{argv}");
    assert!(argv.contains("-EncodedCommand"), "{argv}");
    let agent = BASE64
        .decode(s.read("agent").trim())
        .expect("the agent is base64");
    let agent = String::from_utf8(agent).expect("utf8");
    assert!(
        agent.contains("function Invoke-KmsconfDiscover($Request)"),
        "{agent}"
    );
    assert_eq!(requests(&s)[0]["op"], "discover");
}

#[test]
fn one_session_carries_lock_discovery_every_batch_and_unlock() {
    let s = Server::start();
    s.answer("discover", &[begin(), ok("discovery", fixture())]);
    let read_back = json!({ "Products": windows_product() });
    s.answer("install_product_key", &[begin(), ok("result", read_back)]);
    let t = target(&s, Duration::from_secs(30));
    let holder = kmsconf_engine::lock::LockHolder::current("apply").expect("random source");
    let guard = t.lock(&holder).expect("lock");
    t.discover().expect("discover");
    for _ in 0..2 {
        let out = t.execute(&[key_op()]).expect("execute");
        assert!(matches!(&out[0], ChangeStatus::Applied { .. }), "{out:?}");
    }
    drop(guard);
    drop(t);
    assert_eq!(s.sessions(), ["127.0.0.1"], "one connection for the run");
    let ops: Vec<Value> = requests(&s).iter().map(|r| r["op"].clone()).collect();
    assert_eq!(
        ops,
        [
            "lock",
            "discover",
            "install_product_key",
            "install_product_key",
            "unlock"
        ]
    );
    let ids: Vec<u64> = requests(&s)
        .iter()
        .filter_map(|r| r["id"].as_u64())
        .collect();
    assert_eq!(ids, [0, 1, 2, 3, 4], "each request its own ID");
}

#[test]
fn secrets_arrive_on_stdin_and_never_in_argv() {
    let s = Server::start();
    let read_back = json!({ "Products": windows_product() });
    s.answer("install_product_key", &[begin(), ok("result", read_back)]);
    let out = target(&s, Duration::from_secs(30))
        .execute(&[key_op()])
        .expect("execute");
    assert!(matches!(&out[0], ChangeStatus::Applied { .. }), "{out:?}");
    assert!(
        !s.read("argv").contains("HJKMP"),
        "the key is on the command line"
    );
    assert_eq!(requests(&s)[0]["key"], KEY);
    assert!(!s.read("agent").contains("HJKMP"));
}

#[test]
fn a_failing_powershell_reports_its_exit_code_and_stderr() {
    let s = Server::start();
    s.mode("fail");
    let e = target(&s, Duration::from_secs(30))
        .discover()
        .expect_err("fails");
    assert!(matches!(e, Error::Remote { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("exit code 3") && text.contains("Access denied"),
        "{text}"
    );
}

#[test]
fn a_batch_cut_off_says_what_ran_what_may_have_and_what_did_not() {
    let s = Server::start();
    let read_back = json!({ "Products": windows_product() });
    s.answer("install_product_key", &[begin(), ok("result", read_back)]);
    s.answer("set_service", &[begin(), ("drop", json!(null))]);
    let batch = [
        key_op(),
        TargetOp::SetService(
            ServiceSetting::named(
                "activation_interval",
                kmsconf_model::settings::SettingValue::U32(60),
            )
            .expect("setting"),
        ),
        TargetOp::RestartService { expect: Vec::new() },
    ];
    let t = target(&s, Duration::from_secs(30));
    let out = t.execute(&batch).expect("a partial report, not an error");
    assert!(matches!(&out[0], ChangeStatus::Applied { .. }), "{out:?}");
    let message = |o: &ChangeStatus| match o {
        ChangeStatus::Failed { message, .. } => message.clone(),
        other => panic!("{other:?}"),
    };
    let (second, third) = (message(&out[1]), message(&out[2]));
    assert!(
        second.contains("may or may not") && second.contains("connection dropped"),
        "{second}"
    );
    assert!(
        third.starts_with("not run: ") && third.contains("closed by remote host"),
        "{third}"
    );
    // the next request opens a new session
    s.answer("discover", &[begin(), ok("discovery", fixture())]);
    t.discover().expect("a new session");
    assert_eq!(s.sessions().len(), 2);
}

#[test]
fn a_changed_host_key_is_refused() {
    let s = Server::start();
    let other = s.read("other_host_key.pub");
    s.write("known_hosts", &format!("[127.0.0.1]:{} {other}", s.port));
    let e = target(&s, Duration::from_secs(30))
        .discover()
        .expect_err("mismatch");
    assert!(
        matches!(&e, Error::HostKey { message, .. } if message.contains("different")),
        "{e}"
    );
    assert!(
        !s.path("argv").exists(),
        "nothing may run on a host that failed verification"
    );
}

#[test]
fn an_unknown_host_key_is_refused() {
    let s = Server::start();
    s.write("known_hosts", "");
    let e = target(&s, Duration::from_secs(30))
        .discover()
        .expect_err("unknown");
    assert!(
        matches!(&e, Error::HostKey { message, .. } if message.contains("not in known_hosts")),
        "{e}"
    );
}

#[test]
fn a_refused_key_is_an_authentication_error() {
    let s = Server::start();
    s.client("other_key");
    let e = target(&s, Duration::from_secs(30))
        .discover()
        .expect_err("refused");
    assert!(matches!(e, Error::AuthRefused { .. }), "{e:?}");
    assert!(e.to_string().contains("authentication refused"), "{e}");
}

#[test]
fn a_host_that_does_not_answer_times_out() {
    let s = Server::start();
    s.mode("hang");
    let started = Instant::now();
    let e = target(&s, Duration::from_secs(2))
        .discover()
        .expect_err("timeout");
    assert!(matches!(e, Error::Timeout { seconds: 2, .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_server_that_never_speaks_times_out_and_a_closed_port_is_unreachable() {
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let connect = Connect {
        ssh_command: vec!["ssh".into(), "-F".into(), "/dev/null".into()],
        timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(1),
        record: None,
    };
    let spec = TargetSpec::Ssh {
        user: None,
        host: "127.0.0.1".into(),
        port: Some(port),
    };
    let target = targets::open_host("kms01", &spec, &connect).expect("open");
    let e = target.discover().expect_err("silent");
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    drop(silent);
    let closed = TargetSpec::Ssh {
        user: None,
        host: "127.0.0.1".into(),
        port: Some(free_port()),
    };
    let target = targets::open_host("kms01", &closed, &connect).expect("open");
    let e = target.discover().expect_err("closed");
    assert!(
        matches!(&e, Error::Unreachable { message, .. } if message.contains("refused")),
        "{e:?}"
    );
}
