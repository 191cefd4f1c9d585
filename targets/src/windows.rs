//! A real Windows KMS host: the PowerShell scripts of [`super::powershell`] carried by a
//! [`Transport`] (SSH or local). Turns transport failures into the report the user needs: for a
//! batch cut short, exactly which operations ran, which may have run, and which did not.

use kmsconf_engine::lock::{LockGuard, LockHolder};
use kmsconf_engine::secret::Secret;
use kmsconf_engine::target::{ChangeStatus, Discovery, Target};
use serde::Deserialize;

use super::powershell;
use super::process::Finished;
use crate::Error;
use kmsconf_model::ops::TargetOp;
use kmsconf_model::state::HostState;

/// Moves a script to PowerShell on the host and its answer back.
pub trait Transport: Send + Sync {
    /// Runs PowerShell on the host with `stdin` (script and secrets). `Err` only when it could
    /// not be started at all.
    fn run(&self, host: &str, stdin: &Secret) -> Result<Finished, Error>;
    /// The connection-level failure of a run (host key, authentication, timeout, drop), if any;
    /// `None` when PowerShell ran to its end.
    fn failure(&self, host: &str, run: &Finished) -> Option<Error>;
}

/// A Windows host reached through a transport.
pub struct WindowsTarget<T> {
    host: String,
    transport: T,
}

impl<T: Transport + Clone + 'static> WindowsTarget<T> {
    pub fn new(host: &str, transport: T) -> Self {
        Self {
            host: host.to_string(),
            transport,
        }
    }

    fn remote_error(&self, run: &Finished, what: &str) -> Error {
        let code = run
            .status
            .map_or_else(|| "no exit code".to_string(), |c| format!("exit code {c}"));
        let stderr = super::process::tail(&powershell::readable_stderr(&run.stderr));
        Error::Remote {
            host: self.host.clone(),
            message: if stderr.is_empty() {
                format!("{what} (PowerShell ended with {code})")
            } else {
                format!("{what} (PowerShell ended with {code}: {stderr})")
            },
        }
    }
}

impl<T: Transport + Clone + 'static> WindowsTarget<T> {
    /// Runs a script that answers one `kind` line, and returns that line's JSON.
    fn run_for(
        &self,
        script: &powershell::Script,
        kind: &str,
        what: &str,
    ) -> Result<String, Error> {
        let run = self.transport.run(&self.host, &script.stdin())?;
        if let Some(e) = self.transport.failure(&self.host, &run) {
            return Err(e);
        }
        powershell::answer(&run.stdout, kind, what).map_err(|m| self.remote_error(&run, &m))
    }

    fn unlock(&self, lock_id: &str) -> Result<UnlockAnswer, Error> {
        let json = self.run_for(&powershell::unlock_script(lock_id), "unlock", "unlock")?;
        super::cim::from_json(&json).map_err(|m| Error::Remote {
            host: self.host.clone(),
            message: format!("cannot read the unlock answer: {m}"),
        })
    }

    fn holder(&self, record: Option<String>) -> Result<LockHolder, Error> {
        let record = record.unwrap_or_default();
        serde_json::from_str(&record).map_err(|_| Error::Unlock {
            host: self.host.clone(),
            message: format!("the lock file `%ProgramData%\\kmsconf\\apply.lock` holds no kmsconf lock record ({} bytes); remove it by hand if no kmsconf runs", record.len()),
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

/// A held lock on a Windows host: released by a round trip when dropped.
struct WindowsLock<T: Transport + Clone + 'static> {
    target: WindowsTarget<T>,
    id: String,
}

impl<T: Transport + Clone + 'static> Drop for WindowsLock<T> {
    fn drop(&mut self) {
        match self.target.unlock(&self.id) {
            Ok(a) if a.released => {}
            Ok(_) => {
                tracing::warn!(host = %self.target.host, "the apply lock was gone or taken over when released")
            }
            Err(e) => {
                tracing::warn!(host = %self.target.host, error = %e, "could not release the apply lock; `kmsconf force-unlock` removes it")
            }
        }
    }
}

impl<T: Transport + Clone + 'static> Target for WindowsTarget<T> {
    type State = HostState;
    type Operation = TargetOp;
    type Error = Error;

    fn discover(&self) -> Result<Discovery<HostState>, Error> {
        let script = powershell::discovery_script();
        let run = self.transport.run(&self.host, &script.stdin())?;
        if let Some(e) = self.transport.failure(&self.host, &run) {
            return Err(e);
        }
        let (state, observations) =
            powershell::discovery(&run.stdout).map_err(|m| self.remote_error(&run, &m))?;
        tracing::debug!(host = %self.host, ?observations, "discovered");
        Ok(Discovery {
            state,
            created: false,
        })
    }

    fn execute(&self, batch: &[TargetOp]) -> Result<Vec<ChangeStatus>, Error> {
        let script = powershell::batch_script(batch);
        let mut run = self.transport.run(&self.host, &script.stdin())?;
        // PowerShell's own error text can quote what it was given; it reaches the report
        run.stderr = script.redact(&run.stderr);
        let failure = self.transport.failure(&self.host, &run);
        let progress = match powershell::batch_progress(batch, &script, &run.stdout) {
            Ok(p) => p,
            Err(m) => return Err(failure.unwrap_or_else(|| self.remote_error(&run, &m))),
        };
        if progress.results.iter().all(Option::is_some) {
            return Ok(progress.results.into_iter().flatten().collect());
        }
        let nothing_began = !progress.began.iter().any(|b| *b);
        let cause = match failure {
            Some(e) if nothing_began => return Err(e),
            Some(e) => e.to_string(),
            None => self
                .remote_error(
                    &run,
                    "PowerShell stopped before reporting on every operation",
                )
                .to_string(),
        };
        Ok(progress
            .results
            .into_iter()
            .zip(progress.began)
            .map(|(result, began)| match (result, began) {
                (Some(o), _) => o,
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
        let record = serde_json::to_string(holder).unwrap_or_default();
        let json = self.run_for(&powershell::lock_script(&record), "lock", "lock")?;
        let answer: LockAnswer = super::cim::from_json(&json).map_err(|m| Error::Remote {
            host: self.host.clone(),
            message: format!("cannot read the lock answer: {m}"),
        })?;
        if !answer.acquired {
            let current = self.holder(answer.holder)?;
            return Err(Error::Locked {
                host: self.host.clone(),
                holder: Box::new(current),
            });
        }
        let target = WindowsTarget::new(&self.host, self.transport.clone());
        Ok(LockGuard::new(WindowsLock {
            target,
            id: holder.id.clone(),
        }))
    }

    /// Removes the lock file when its record has `lock_id`. A remote host cannot tell whether
    /// the holder still runs: as with Terraform, the ID is the confirmation.
    fn force_unlock(&self, lock_id: &str) -> Result<LockHolder, Error> {
        let answer = self.unlock(lock_id)?;
        let err = |message: String| Error::Unlock {
            host: self.host.clone(),
            message,
        };
        match (answer.released, answer.holder) {
            (true, record) => self.holder(record),
            (false, None) => Err(err("the host is not locked".into())),
            (false, record) => {
                let current = self.holder(record)?;
                Err(err(format!(
                    "lock ID `{lock_id}` does not match the current lock {current}"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use kmsconf_model::ops::ServiceSetting;

    /// A transport that answers with fixed output, and whether the connection failed.
    #[derive(Clone)]
    struct Canned {
        run: Finished,
        dropped: bool,
    }

    impl Transport for Canned {
        fn run(&self, _: &str, _: &Secret) -> Result<Finished, Error> {
            Ok(self.run.clone())
        }
        fn failure(&self, host: &str, _: &Finished) -> Option<Error> {
            self.dropped.then(|| Error::ConnectionDropped {
                host: host.into(),
                message: "reset".into(),
            })
        }
    }

    fn line(kind: &str, json: &str) -> String {
        format!(
            "KMSCONF:{kind}:{}\n",
            base64::engine::general_purpose::STANDARD.encode(json)
        )
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

    fn target(stdout: String, status: Option<i32>, dropped: bool) -> WindowsTarget<Canned> {
        let run = Finished {
            status,
            stdout,
            stderr: "Restart-Service : Cannot stop service".into(),
            timed_out: false,
        };
        WindowsTarget::new("kms01", Canned { run, dropped })
    }

    #[test]
    fn a_script_that_stops_early_fails_what_it_did_not_report() {
        let out = line("begin", r#"{"Index":0}"#);
        let outcomes = target(out, Some(1), false)
            .execute(&batch())
            .expect("report");
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
        let run = Finished {
            status: Some(1),
            stdout: line("begin", r#"{"Index":0}"#),
            stderr: format!("InstallProductKey : invalid key {key}"),
            timed_out: false,
        };
        let outcomes = WindowsTarget::new(
            "kms01",
            Canned {
                run,
                dropped: false,
            },
        )
        .execute(&[op])
        .expect("report");
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
        let e = target(String::new(), None, true)
            .execute(&batch())
            .expect_err("nothing ran");
        assert!(matches!(e, Error::ConnectionDropped { .. }), "{e:?}");
    }

    #[test]
    fn a_taken_lock_names_its_holder_and_a_free_one_is_taken() {
        let holder = LockHolder::current("apply").expect("random source");
        let record = serde_json::to_string(&holder).expect("json");
        let taken = serde_json::json!({ "Acquired": false, "Holder": record }).to_string();
        let e = target(line("lock", &taken), Some(0), false)
            .lock(&LockHolder::current("apply").expect("random source"))
            .err()
            .expect("locked");
        assert!(
            matches!(&e, Error::Locked { holder: h, .. } if **h == holder),
            "{e}"
        );
        let free = r#"{"Acquired":true,"Holder":null}"#;
        assert!(target(line("lock", free), Some(0), false)
            .lock(&holder)
            .is_ok());
        let script = powershell::lock_script(&record);
        assert!(
            script.text.contains("[IO.FileMode]::CreateNew") && script.text.contains(&holder.id)
        );
    }

    #[test]
    fn force_unlock_needs_the_lock_id() {
        let holder = LockHolder::current("apply").expect("random source");
        let record = serde_json::to_string(&holder).expect("json");
        let kept = serde_json::json!({ "Released": false, "Holder": record }).to_string();
        let e = target(line("unlock", &kept), Some(0), false)
            .force_unlock("other")
            .expect_err("mismatch");
        assert!(e.to_string().contains("does not match"), "{e}");
        let gone = serde_json::json!({ "Released": true, "Holder": record }).to_string();
        let removed = target(line("unlock", &gone), Some(0), false)
            .force_unlock(&holder.id)
            .expect("removed");
        assert_eq!(removed, holder);
    }

    #[test]
    fn a_discovery_answer_that_is_not_one_names_the_exit_code() {
        let out = line("discovery", "{}");
        let e = target(out, Some(0), false).discover().expect_err("bad");
        assert!(
            e.to_string().contains("cannot read the discovery answer"),
            "{e}"
        );
    }
}
