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

use super::powershell::{self, AgentError, Request};
use super::process::Finished;
use super::session::{Next, Session};
use crate::{Error, RemoteError, UnlockError};
use exchange::Exchange;
use kmsconf_model::events::{self, EventLog, EventQuery, WireLog};
use kmsconf_model::ops::TargetOp;
use kmsconf_model::state::HostState;
use kmsconf_model::winrm_service::{self, WinRmService, WireWinRmService};

mod exchange;

/// Starts PowerShell on a host, with the fixed bootstrap, through some connection.
pub trait Transport: Send + Sync {
    /// Starts the connection's process. `Err` only when it could not be started at all.
    fn start(&self, host: &str) -> Result<Session, Error>;
    /// The connection-level failure of a session that ended (host key, authentication,
    /// timeout, drop), if any; `None` when PowerShell itself ended.
    fn failure(&self, host: &str, run: &Finished) -> Option<Error>;
    /// The longest wait for the answers to one round of requests.
    fn timeout(&self) -> Duration;
    /// What carries the session, as a person names it (`SSH`, `WinRM`): the agent may have been
    /// damaged on the way.
    fn name(&self) -> &'static str;
    /// What to do when the apply lock could not be released, said after the error.
    fn unlock_advice(&self) -> &'static str {
        "`kmsconf force-unlock` removes it"
    }
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

impl<T: Transport> crate::ReadEvents for WindowsTarget<T> {
    fn read_events(&self, query: &EventQuery) -> Result<EventLog, Error> {
        let link = &self.link;
        let value = link.ask(Request::read_kms_events(query), "event log")?;
        let wire: WireLog = serde_json::from_value(value).map_err(|source| {
            link.remote(RemoteError::Answer {
                what: "event log",
                source,
            })
        })?;
        events::parse(&wire).map_err(|e| link.remote(e.into()))
    }

    fn read_winrm_service(&self) -> Result<WinRmService, Error> {
        let link = &self.link;
        let value = link.ask(Request::read_winrm_service(), "WinRM service settings")?;
        let wire: WireWinRmService = serde_json::from_value(value).map_err(|source| {
            link.remote(RemoteError::Answer {
                what: "WinRM service settings",
                source,
            })
        })?;
        winrm_service::parse(&wire).map_err(|e| link.remote(e.into()))
    }
}

impl<T: Transport> Link<T> {
    /// Sends `requests` through the session (opening it if there is none) and reads their
    /// answers, all within one deadline. `Err` only when the session could not be started.
    fn exchange(&self, requests: &mut [Request]) -> Result<Exchange, Error> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let deadline = Instant::now() + self.transport.timeout();
        let first = state.next_id;
        state.next_id += requests.len() as u64;
        for (i, request) in requests.iter_mut().enumerate() {
            request.id = first + i as u64;
        }
        let mut exchange = Exchange::new(requests, first);
        let session = match state.session.take() {
            Some(session) => Some(session),
            None => self.open(&mut exchange, deadline)?,
        };
        // the host refused the agent, or never said it runs: no request is sent
        let Some(mut session) = session else {
            return Ok(exchange);
        };
        for request in requests.iter() {
            tracing::trace!(host = %self.host, ?request, "sending");
            if !session.request(request) {
                break;
            }
        }
        state.session = if exchange.waiting() {
            self.read_until(session, &mut exchange, deadline, |exchange, line| {
                exchange.read(line).map(|()| !exchange.waiting())
            })
        } else {
            Some(session)
        };
        Ok(exchange)
    }

    /// Starts a session, sends it the agent and waits for the bootstrap's `ready` line: `None`
    /// when the session ended first (`exchange` says how and why).
    fn open(&self, exchange: &mut Exchange, deadline: Instant) -> Result<Option<Session>, Error> {
        let mut session = self.transport.start(&self.host)?;
        tracing::debug!(host = %self.host, "session opened");
        // a process that does not read its input has ended: the first read says how
        session.send(powershell::agent_line().as_bytes());
        Ok(self.read_until(session, exchange, deadline, Exchange::ready))
    }

    /// Reads the session's lines into `exchange` through `take` until it says the wait is over,
    /// and gives the session back; or, when the session ends, times out or breaks the protocol,
    /// closes it, records how in `exchange` and returns `None`.
    fn read_until(
        &self,
        mut session: Session,
        exchange: &mut Exchange,
        deadline: Instant,
        mut take: impl FnMut(&mut Exchange, &str) -> Result<bool, AgentError>,
    ) -> Option<Session> {
        let broken = loop {
            match session.next(deadline) {
                Next::Line(line) => match take(exchange, &line) {
                    Ok(true) => return Some(session),
                    // the bootstrap refused to run the agent: nothing more will come, even if
                    // something on the way (a relay) keeps the session open
                    Ok(false)
                        if exchange
                            .refused
                            .as_ref()
                            .is_some_and(AgentError::ends_session) =>
                    {
                        exchange.ended = Some(session.close(false));
                        return None;
                    }
                    Ok(false) => {}
                    Err(e) => break e,
                },
                Next::LineTooLong => break AgentError::LineTooLong,
                Next::Ended => {
                    exchange.ended = Some(session.close(false));
                    return None;
                }
                Next::TimedOut => {
                    exchange.ended = Some(session.close(true));
                    return None;
                }
            }
        };
        tracing::debug!(host = %self.host, error = %broken, "ending the session");
        let mut run = session.close(true);
        // killed for what it sent, not for its silence
        run.timed_out = false;
        exchange.ended = Some(run);
        exchange.refused = Some(broken);
        None
    }

    /// The error of a session that ended before answering: the connection's own failure, the
    /// host's own refusal, or PowerShell's exit code and stderr.
    fn lost(&self, run: &Finished, refused: Option<AgentError>, what: &str) -> Error {
        if let Some(e) = self.transport.failure(&self.host, run) {
            return e;
        }
        let what = what.to_string();
        self.remote(match refused {
            Some(AgentError::Damaged(damage)) => RemoteError::Damaged {
                transport: self.transport.name(),
                damage,
            },
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
                let advice = self.link.transport.unlock_advice();
                tracing::warn!(host = %host, error = %e, "could not release the apply lock; {advice}")
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
        // a damaged agent, like a lost connection, ran nothing: the batch fails whole
        let damaged = matches!(refused, Some(AgentError::Damaged(_)));
        let cause = exchange.ended.map(|mut run| {
            // PowerShell's own error text can quote what it was given; it reaches the report
            run.stderr = requests.iter().fold(run.stderr, |text, r| r.redact(&text));
            let lost = link.lost(
                &run,
                refused,
                "PowerShell stopped before reporting on every operation",
            );
            let connection = damaged || link.transport.failure(&link.host, &run).is_some();
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
mod tests;
