//! A real Windows KMS host: the agent of [`super::powershell`] in one [`Session`] per run,
//! started through a [`Transport`] (SSH or local) on first use. Lock, discovery, every batch and
//! unlock go through that one session; a session that ends early is reported as the user needs
//! it (for a batch cut short, exactly which operations ran, which may have run, and which did
//! not), and the next request opens a new one.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kmsconf_engine::lock::{LockGuard, LockHolder};
use kmsconf_engine::target::{ChangeStatus, Discovery, Target};
use serde::Deserialize;

use super::powershell::{self, AgentError, Answer, Request};
use super::process::Finished;
#[cfg(test)]
use super::session::Process;
use super::session::{Next, Session};
use crate::{Error, RemoteError, UnlockError};
use kmsconf_model::ops::TargetOp;
use kmsconf_model::state::HostState;

/// Starts PowerShell on a host, with the fixed bootstrap, through some connection.
pub trait Transport: Send + Sync {
    /// Starts the connection's process. `Err` only when it could not be started at all.
    fn start(&self, host: &str) -> Result<Session, Error>;
    /// The connection-level failure of a session that ended (host key, authentication,
    /// timeout, drop), if any; `None` when PowerShell itself ended.
    fn failure(&self, host: &str, run: &Finished) -> Option<Error>;
    /// The longest wait for the answers to one round of requests.
    fn timeout(&self) -> Duration;
}

/// A Windows host reached through a transport.
pub struct WindowsTarget<T> {
    link: Arc<Link<T>>,
}

/// The host, its transport and its session: shared by the target and the lock it hands out, so
/// that the unlock goes through the same session and the session ends with the last of them.
struct Link<T> {
    host: String,
    transport: T,
    state: Mutex<LinkState>,
}

#[derive(Default)]
struct LinkState {
    session: Option<Session>,
    next_id: u64,
}

/// What came back for a round of requests: per request, whether the agent began it and its
/// answer; how the session ended if it ended before answering them all; and the first line
/// the host sent that was an error of its own (a session refused for its language mode, an
/// unreadable answer), which then says why.
struct Exchange {
    began: Vec<bool>,
    answers: Vec<Option<Answer>>,
    ended: Option<Finished>,
    refused: Option<AgentError>,
}

impl<T: Transport> WindowsTarget<T> {
    pub fn new(host: &str, transport: T) -> Self {
        Self {
            link: Arc::new(Link {
                host: host.to_string(),
                transport,
                state: Mutex::new(LinkState::default()),
            }),
        }
    }
}

impl<T: Transport> Link<T> {
    /// Sends `requests` through the session (opening it if there is none) and reads their
    /// answers. `Err` only when the session could not be started.
    fn exchange(&self, requests: &mut [Request]) -> Result<Exchange, Error> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut session = match state.session.take() {
            Some(session) => session,
            None => self.open()?,
        };
        let first = state.next_id;
        state.next_id += requests.len() as u64;
        for (i, request) in requests.iter_mut().enumerate() {
            request.id = first + i as u64;
            tracing::trace!(host = %self.host, ?request, "sending");
            if !session.request(request) {
                break;
            }
        }
        let mut exchange = Exchange {
            began: vec![false; requests.len()],
            answers: (0..requests.len()).map(|_| None).collect(),
            ended: None,
            refused: None,
        };
        let deadline = Instant::now() + self.transport.timeout();
        while exchange.answers.iter().any(Option::is_none) {
            match session.next(deadline) {
                Next::Line(line) => exchange.read(&line, first),
                Next::Ended => {
                    exchange.ended = Some(session.close(false));
                    return Ok(exchange);
                }
                Next::TimedOut => {
                    exchange.ended = Some(session.close(true));
                    return Ok(exchange);
                }
            }
        }
        state.session = Some(session);
        Ok(exchange)
    }

    /// Starts a session and sends it the agent.
    fn open(&self) -> Result<Session, Error> {
        let mut session = self.transport.start(&self.host)?;
        tracing::debug!(host = %self.host, "session opened");
        // a process that does not read its input has ended: the first read says how
        session.send(powershell::agent_line().as_bytes());
        Ok(session)
    }

    /// The error of a session that ended before answering: the connection's own failure, the
    /// host's own refusal, or PowerShell's exit code and stderr.
    fn lost(&self, run: &Finished, refused: Option<AgentError>, what: &str) -> Error {
        if let Some(e) = self.transport.failure(&self.host, run) {
            return e;
        }
        let what = what.to_string();
        self.remote(match refused {
            Some(source) => RemoteError::Refused { what, source },
            None => RemoteError::Ended {
                what,
                exit_code: run.status,
                stderr: super::process::tail(&powershell::readable_stderr(&run.stderr)),
            },
        })
    }

    /// Sends one request and returns its answer's value; `what` names it in errors.
    fn ask(&self, request: Request, what: &str) -> Result<serde_json::Value, Error> {
        let mut requests = [request];
        let mut exchange = self.exchange(&mut requests)?;
        match exchange.answers[0].take() {
            Some(answer) => answer.value(what).map_err(|e| self.remote(e.into())),
            None => Err(self.lost(
                &exchange.ended.unwrap_or_default(),
                exchange.refused,
                &format!("the host sent no {what} answer"),
            )),
        }
    }

    fn remote(&self, source: RemoteError) -> Error {
        Error::Remote {
            host: self.host.clone(),
            source,
        }
    }

    fn unlock(&self, lock_id: &str) -> Result<UnlockAnswer, Error> {
        let value = self.ask(Request::unlock(lock_id), "unlock")?;
        serde_json::from_value(value).map_err(|source| {
            self.remote(RemoteError::Answer {
                what: "unlock",
                source,
            })
        })
    }

    fn holder(&self, record: Option<String>) -> Result<LockHolder, Error> {
        let record = record.unwrap_or_default();
        serde_json::from_str(&record).map_err(|_| Error::Unlock {
            host: self.host.clone(),
            source: UnlockError::Unreadable {
                bytes: record.len(),
            },
        })
    }
}

impl Exchange {
    /// Takes in one line of output: a `begin` marks its request started, an answer ends it; a
    /// line that is not an answer is ignored.
    fn read(&mut self, line: &str, first: u64) {
        let message = match powershell::message(line) {
            Some(Ok(message)) => message,
            Some(Err(e)) => {
                self.refused.get_or_insert(e);
                return;
            }
            None => return,
        };
        let index = |id: u64| usize::try_from(id.checked_sub(first)?).ok();
        if message.kind == "begin" {
            let begun = serde_json::from_str::<powershell::Begin>(&message.json).ok();
            if let Some(slot) = begun
                .and_then(|b| index(b.id))
                .and_then(|i| self.began.get_mut(i))
            {
                *slot = true;
            }
            return;
        }
        let answer = match serde_json::from_str::<Answer>(&message.json) {
            Ok(answer) => answer,
            Err(e) => Answer {
                id: None,
                ok: false,
                h_result: None,
                message: Some(format!("unreadable `{}` answer: {e}", message.kind)),
                answer: serde_json::Value::Null,
            },
        };
        // an answer without an ID (a request the agent could not read) is the first one waiting
        let slot = match answer.id.and_then(index) {
            Some(i) => self.answers.get_mut(i),
            None => self.answers.iter_mut().find(|a| a.is_none()),
        };
        if let Some(slot) = slot {
            *slot = Some(answer);
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LockAnswer {
    acquired: bool,
    holder: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UnlockAnswer {
    released: bool,
    holder: Option<String>,
}

/// A held lock on a Windows host: released through the host's session when dropped.
struct WindowsLock<T: Transport> {
    link: Arc<Link<T>>,
    id: String,
}

impl<T: Transport> Drop for WindowsLock<T> {
    fn drop(&mut self) {
        let host = &self.link.host;
        match self.link.unlock(&self.id) {
            Ok(a) if a.released => {}
            Ok(_) => {
                tracing::warn!(host = %host, "the apply lock was gone or taken over when released")
            }
            Err(e) => {
                tracing::warn!(host = %host, error = %e, "could not release the apply lock; `kmsconf force-unlock` removes it")
            }
        }
    }
}

impl<T: Transport + 'static> Target for WindowsTarget<T> {
    type State = HostState;
    type Operation = TargetOp;
    type Error = Error;

    fn discover(&self) -> Result<Discovery<HostState>, Error> {
        let link = &self.link;
        let mut requests = [Request::discover()];
        let mut exchange = link.exchange(&mut requests)?;
        let Some(answer) = exchange.answers[0].take() else {
            return Err(link.lost(
                &exchange.ended.unwrap_or_default(),
                exchange.refused,
                "the host sent no discovery answer",
            ));
        };
        let (state, observations) =
            powershell::discovery(answer).map_err(|e| link.remote(e.into()))?;
        tracing::debug!(host = %link.host, ?observations, "discovered");
        Ok(Discovery {
            state,
            created: false,
        })
    }

    fn execute(&self, batch: &[TargetOp]) -> Result<Vec<ChangeStatus>, Error> {
        let link = &self.link;
        let mut requests: Vec<Request> = batch.iter().map(Request::operation).collect();
        let exchange = link.exchange(&mut requests)?;
        let refused = exchange.refused;
        let cause = exchange.ended.map(|mut run| {
            // PowerShell's own error text can quote what it was given; it reaches the report
            run.stderr = requests.iter().fold(run.stderr, |text, r| r.redact(&text));
            let lost = link.lost(
                &run,
                refused,
                "PowerShell stopped before reporting on every operation",
            );
            let connection = link.transport.failure(&link.host, &run).is_some();
            (lost, connection)
        });
        let nothing_began = !exchange.began.iter().any(|b| *b);
        let cause = match cause {
            None => String::new(),
            Some((e, true)) if nothing_began => return Err(e),
            Some((e, _)) => e.to_string(),
        };
        Ok(batch
            .iter()
            .zip(&requests)
            .zip(exchange.answers.into_iter().zip(exchange.began))
            .map(|((op, request), (answer, began))| match (answer, began) {
                (Some(answer), _) => powershell::outcome(op, answer, request),
                (None, true) => ChangeStatus::Failed {
                    code: None,
                    message: format!("started, but no result came back, so it may or may not have taken effect: {cause}; `kmsconf plan` shows the host's state now"),
                },
                (None, false) => ChangeStatus::Failed {
                    code: None,
                    message: format!("not run: {cause}"),
                },
            })
            .collect())
    }

    /// A lock file on the host (`%ProgramData%\kmsconf\apply.lock`), created atomically.
    fn lock(&self, holder: &LockHolder) -> Result<LockGuard, Error> {
        let link = &self.link;
        let record = serde_json::to_string(holder).unwrap_or_default();
        let value = link.ask(Request::lock(&record), "lock")?;
        let answer: LockAnswer = serde_json::from_value(value).map_err(|source| {
            link.remote(RemoteError::Answer {
                what: "lock",
                source,
            })
        })?;
        if !answer.acquired {
            let current = link.holder(answer.holder)?;
            return Err(Error::Locked {
                host: link.host.clone(),
                holder: Box::new(current),
            });
        }
        Ok(LockGuard::new(WindowsLock {
            link: Arc::clone(link),
            id: holder.id.clone(),
        }))
    }

    /// Removes the lock file when its record has `lock_id`. A remote host cannot tell whether
    /// the holder still runs: as with Terraform, the ID is the confirmation.
    fn force_unlock(&self, lock_id: &str) -> Result<LockHolder, Error> {
        let link = &self.link;
        let answer = link.unlock(lock_id)?;
        let err = |source: UnlockError| Error::Unlock {
            host: link.host.clone(),
            source,
        };
        match (answer.released, answer.holder) {
            (true, record) => link.holder(record),
            (false, None) => Err(err(UnlockError::NotLocked)),
            (false, record) => {
                let current = link.holder(record)?;
                Err(err(UnlockError::OtherLock {
                    lock_id: lock_id.to_string(),
                    current: Box::new(current),
                }))
            }
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
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
    }

    /// A shell command printing one answer line.
    fn line(kind: &str, json: &str) -> String {
        let data = base64::engine::general_purpose::STANDARD.encode(json);
        format!("echo 'KMSCONF:{kind}:{data}'\n")
    }

    /// A host that reads the agent and `requests` requests, then runs `then`.
    fn target(requests: usize, then: &str, dropped: bool) -> WindowsTarget<Shell> {
        let script = format!(
            "read -r agent\n{}{then}",
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
            TargetOp::RestartService,
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
}
