//! A real Windows KMS host: the PowerShell scripts of [`super::powershell`] carried by a
//! [`Transport`] (SSH or local). Turns transport failures into the report the user needs: for a
//! batch cut short, exactly which operations ran, which may have run, and which did not.

use kmsconf_engine::secret::Secret;
use kmsconf_engine::target::{Discovery, Outcome, Target};

use super::powershell;
use super::process::Finished;
use crate::ops::TargetOp;
use crate::state::HostState;
use crate::Error;

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

impl<T: Transport> WindowsTarget<T> {
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
        let stderr = run.stderr_tail();
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

impl<T: Transport> Target for WindowsTarget<T> {
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

    fn execute(&self, batch: &[TargetOp]) -> Result<Vec<Outcome>, Error> {
        let script = powershell::batch_script(batch);
        let run = self.transport.run(&self.host, &script.stdin())?;
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
                (None, true) => Outcome::Failed {
                    code: None,
                    message: format!("started, but no result came back, so it may or may not have taken effect: {cause}; `kmsconf plan` shows the host's state now"),
                },
                (None, false) => Outcome::Failed {
                    code: None,
                    message: format!("not run: {cause}"),
                },
            })
            .collect())
    }
}
