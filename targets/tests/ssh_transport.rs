//! The SSH transport against a real OpenSSH server (see `support/sshd.rs`): Debian's `sshd`, on a
//! free port with a throw-away host key and user key, and stopped by PID when the test ends.
//! There is no PowerShell on Linux, so the server's PATH starts with a fake `powershell.exe`
//! that records its arguments and standard input and answers as the test tells it.
//!
//! Needs `/usr/sbin/sshd` (`apt-get install openssh-server`; `scripts/test.sh` installs it). Without it
//! these tests fail, they never skip.

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
    };
    let spec = TargetSpec::Ssh {
        user: Some(user()),
        host: "127.0.0.1".into(),
        port: Some(s.port),
    };
    targets::open_host("kms01", &spec, &connect).expect("open")
}

fn line(kind: &str, value: &Value) -> String {
    format!("KMSCONF:{kind}:{}\n", BASE64.encode(value.to_string()))
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

fn request(s: &Server) -> Value {
    let bytes = BASE64
        .decode(s.read("stdin").trim())
        .expect("stdin is base64");
    serde_json::from_slice(&bytes).expect("stdin is JSON")
}

#[test]
fn discovery_runs_powershell_with_the_script_on_stdin() {
    let s = Server::start();
    let answer = format!("Windows PowerShell\n{}", line("discovery", &fixture()));
    s.mode("answer", &answer);
    let d = target(&s, Duration::from_secs(30))
        .discover()
        .expect("discover");
    assert_eq!(d.state.computer_name, "KMS01");
    assert_eq!(d.state.service.port, 1689);
    let argv = s.read("argv");
    assert_eq!(argv.lines().next(), Some("-NoLogo"), "{argv}");
    assert!(argv.contains("-EncodedCommand"), "{argv}");
    let script = request(&s)["script"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(script.contains("Get-KmsconfService"), "{script}");
}

#[test]
fn secrets_arrive_on_stdin_and_never_in_argv() {
    let s = Server::start();
    let answer = [
        line("begin", &json!({ "Index": 0 })),
        line(
            "result",
            &json!({ "Index": 0, "Ok": true, "ReadBack": { "Products": windows_product() } }),
        ),
    ]
    .concat();
    s.mode("answer", &answer);
    let out = target(&s, Duration::from_secs(30))
        .execute(&[key_op()])
        .expect("execute");
    assert!(matches!(&out[0], ChangeStatus::Applied { .. }), "{out:?}");
    assert!(
        !s.read("argv").contains("HJKMP"),
        "the key is on the command line"
    );
    let request = request(&s);
    assert_eq!(request["input"]["secrets"]["0"], KEY);
    assert!(!request["script"].to_string().contains("HJKMP"));
}

#[test]
fn a_failing_powershell_reports_its_exit_code_and_stderr() {
    let s = Server::start();
    s.mode("fail", "");
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
    let answer = [
        line("begin", &json!({ "Index": 0 })),
        line(
            "result",
            &json!({ "Index": 0, "Ok": true, "ReadBack": { "Products": windows_product() } }),
        ),
        line("begin", &json!({ "Index": 1 })),
    ]
    .concat();
    s.mode("drop", &answer);
    let batch = [
        key_op(),
        TargetOp::SetService(
            ServiceSetting::named(
                "activation_interval",
                kmsconf_model::settings::SettingValue::U32(60),
            )
            .expect("setting"),
        ),
        TargetOp::RestartService,
    ];
    let out = target(&s, Duration::from_secs(30))
        .execute(&batch)
        .expect("a partial report, not an error");
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
fn a_host_that_does_not_finish_times_out() {
    let s = Server::start();
    s.mode("hang", "");
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
