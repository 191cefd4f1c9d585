//! The Windows target over a transport whose "host" is `sh -c SCRIPT`: agents that stop early,
//! secrets kept out of reports, locks, damaged or constrained sessions and banner lines.

use super::super::session::Process;
use super::*;
use base64::Engine as _;
use kmsconf_engine::secret::Secret;
use kmsconf_model::ops::ServiceSetting;

/// A transport whose "host" is `sh -c SCRIPT`, and whether its connection counts as failed.
struct Shell {
    script: String,
    dropped: bool,
}

impl Transport for Shell {
    fn start(&self, _: &str) -> Result<Session, Error> {
        Process::start("sh", &["-c".into(), self.script.clone()])
            .map(|p| Box::new(p) as Session)
            .map_err(|e| Error::Unreachable {
                host: "kms01".into(),
                message: e.to_string(),
            })
    }
    fn failure(&self, host: &str, _: &Finished) -> Option<Error> {
        self.dropped.then(|| Error::ConnectionDropped {
            host: host.into(),
            message: "reset".into(),
        })
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(20)
    }
    fn name(&self) -> &'static str {
        "sh"
    }
}

/// A shell command printing one answer line.
fn line(kind: &str, json: &str) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(json);
    format!("echo 'KMSCONF:{kind}:{data}'\n")
}

/// A host that reads the agent and `requests` requests, then runs `then`.
fn target(requests: usize, then: &str, dropped: bool) -> WindowsTarget<Shell> {
    let script = format!(
        "read -r agent\necho '{}'\n{}{then}",
        powershell::READY_LINE,
        "read -r request\n".repeat(requests)
    );
    WindowsTarget::new("kms01", Shell { script, dropped })
}

fn batch() -> Vec<TargetOp> {
    vec![
        TargetOp::SetService(
            ServiceSetting::named(
                "host_caching",
                kmsconf_model::settings::SettingValue::Bool(false),
            )
            .expect("setting"),
        ),
        TargetOp::RestartService { expect: Vec::new() },
    ]
}

#[test]
fn an_agent_that_stops_early_fails_what_it_did_not_report() {
    let then = format!(
        "{}echo 'Restart-Service : Cannot stop service' >&2\nexit 1\n",
        line("begin", r#"{"Id":0}"#)
    );
    let outcomes = target(2, &then, false).execute(&batch()).expect("report");
    for o in &outcomes {
        assert!(
            matches!(o, ChangeStatus::Failed { message, .. } if message.contains("exit code 1") && message.contains("Cannot stop service")),
            "{o:?}"
        );
    }
    assert!(
        matches!(&outcomes[0], ChangeStatus::Failed { message, .. } if message.contains("may or may not"))
    );
    assert!(
        matches!(&outcomes[1], ChangeStatus::Failed { message, .. } if message.starts_with("not run"))
    );
}

#[test]
fn stderr_in_a_report_never_holds_a_secret() {
    let key = "BCDFG-HJKMP-QRTVW-XY234-6789B";
    let op = TargetOp::InstallProductKey {
        product: kmsconf_model::config::ProductId::Windows,
        key: kmsconf_model::keys::ProductKey::parse(&Secret::new(key)).expect("key"),
    };
    let then = format!(
        "{}echo 'InstallProductKey : invalid key {key}' >&2\nexit 1\n",
        line("begin", r#"{"Id":0}"#)
    );
    let outcomes = target(1, &then, false).execute(&[op]).expect("report");
    let ChangeStatus::Failed { message, .. } = &outcomes[0] else {
        panic!("{outcomes:?}")
    };
    assert!(
        message.contains("invalid key <redacted>") && !message.contains("QRTVW"),
        "{message}"
    );
}

#[test]
fn a_connection_lost_before_anything_ran_fails_the_whole_batch() {
    let e = target(0, "exit 255\n", true)
        .execute(&batch())
        .expect_err("nothing ran");
    assert!(matches!(e, Error::ConnectionDropped { .. }), "{e:?}");
}

#[test]
fn a_taken_lock_names_its_holder_and_a_free_one_is_taken() {
    let holder = LockHolder::current("apply").expect("random source");
    let record = serde_json::to_string(&holder).expect("json");
    let taken = serde_json::json!({ "Id": 0, "Ok": true, "Answer": { "Acquired": false, "Holder": record } });
    let e = target(1, &line("lock", &taken.to_string()), false)
        .lock(&LockHolder::current("apply").expect("random source"))
        .err()
        .expect("locked");
    assert!(
        matches!(&e, Error::Locked { holder: h, .. } if **h == holder),
        "{e}"
    );
    let free = r#"{"Id":0,"Ok":true,"Answer":{"Acquired":true,"Holder":null}}"#;
    assert!(target(1, &line("lock", free), false).lock(&holder).is_ok());
}

#[test]
fn force_unlock_needs_the_lock_id() {
    let holder = LockHolder::current("apply").expect("random source");
    let record = serde_json::to_string(&holder).expect("json");
    let kept = serde_json::json!({ "Id": 0, "Ok": true, "Answer": { "Released": false, "Holder": record } });
    let e = target(1, &line("unlock", &kept.to_string()), false)
        .force_unlock("other")
        .expect_err("mismatch");
    assert!(e.to_string().contains("does not match"), "{e}");
    let gone = serde_json::json!({ "Id": 0, "Ok": true, "Answer": { "Released": true, "Holder": record } });
    let removed = target(1, &line("unlock", &gone.to_string()), false)
        .force_unlock(&holder.id)
        .expect("removed");
    assert_eq!(removed, holder);
}

#[test]
fn a_discovery_answer_that_is_not_one_names_the_problem() {
    let then = line("discovery", r#"{"Id":0,"Ok":true,"Answer":{}}"#);
    let e = target(1, &then, false).discover().expect_err("bad");
    assert!(
        e.to_string().contains("cannot read the discovery answer"),
        "{e}"
    );
}

/// A host whose PowerShell runs in Constrained Language Mode: the bootstrap says so and
/// ends before reading anything, and the error is that, not a lost session.
#[test]
fn a_session_in_constrained_language_mode_is_refused_by_name() {
    let script = "echo 'KMSCONF-LANGUAGE-MODE:ConstrainedLanguage'\nexit 1\n".to_string();
    let host = WindowsTarget::new(
        "kms01",
        Shell {
            script,
            dropped: false,
        },
    );
    let e = host.discover().expect_err("refused").to_string();
    assert!(
        e.contains("`ConstrainedLanguage` mode") && e.contains("FullLanguage"),
        "{e}"
    );
    let outcomes = host.execute(&batch()).expect("report");
    assert!(
        matches!(&outcomes[0], ChangeStatus::Failed { message, .. } if message.contains("not run") && message.contains("`ConstrainedLanguage` mode")),
        "{outcomes:?}"
    );
}

/// A host whose bootstrap found the agent damaged: it answers one `damaged` line and ends
/// with exit code 1; discovery fails naming the transport, and a batch fails whole (no
/// operation ran).
#[test]
fn an_agent_damaged_on_the_way_is_reported_with_its_transport_and_runs_nothing() {
    let damaged = line(
        "damaged",
        r#"{"Expected":"00ff","Received":"ff00","Bytes":41000}"#,
    );
    let host = target(0, &format!("{damaged}exit 1\n"), false);
    let e = host.discover().expect_err("damaged").to_string();
    assert!(
        e.starts_with("host `kms01`: the agent arrived damaged over sh (SHA-256 mismatch): ")
            && e.contains("`00ff`")
            && e.contains("decoded 41000 bytes with SHA-256 `ff00`"),
        "{e}"
    );
    let e = host.execute(&batch()).expect_err("nothing ran");
    assert!(
        matches!(
            &e,
            Error::Remote {
                source: RemoteError::Damaged {
                    transport: "sh",
                    ..
                },
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn banner_lines_are_ignored_and_answers_matched_by_id() {
    let then = format!(
        "echo 'Windows PowerShell'\n{}{}{}",
        line("begin", r#"{"Id":0}"#),
        line("result", r#"{"Id":1,"Ok":false,"Message":"second"}"#),
        line("result", r#"{"Id":0,"Ok":false,"Message":"first"}"#),
    );
    let out = target(2, &then, false).execute(&batch()).expect("report");
    assert_eq!(
        out,
        [
            ChangeStatus::Failed {
                code: None,
                message: "first".into()
            },
            ChangeStatus::Failed {
                code: None,
                message: "second".into()
            }
        ]
    );
}
