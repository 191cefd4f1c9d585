//! `target = "local"`: PowerShell on the machine kmsconf runs on (a pipeline agent on the KMS
//! host). Compiled everywhere so it is tested everywhere; config validation refuses `local` on
//! anything but Windows.

use std::time::Duration;

use kmsconf_engine::secret::Secret;

use super::powershell;
use super::process::{self, Finished};
use super::windows::Transport;
use crate::Error;

/// Runs `powershell.exe` locally, script and secrets on its standard input.
pub struct LocalShell {
    program: String,
    timeout: Duration,
}

impl LocalShell {
    pub fn new(timeout: Duration) -> Self {
        Self {
            program: powershell::PROGRAM.to_string(),
            timeout,
        }
    }

    /// Runs another program in place of `powershell.exe` (tests).
    pub fn with_program(mut self, program: &str) -> Self {
        self.program = program.to_string();
        self
    }
}

impl Transport for LocalShell {
    fn run(&self, host: &str, stdin: &Secret) -> Result<Finished, Error> {
        process::run(
            &self.program,
            &powershell::arguments(),
            stdin.expose().as_bytes(),
            self.timeout,
        )
        .map_err(|e| Error::Remote {
            host: host.to_string(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "`{}` was not found: target `local` runs only on Windows",
                    self.program
                )
            } else {
                format!("cannot start `{}`: {e}", self.program)
            },
        })
    }

    fn failure(&self, host: &str, run: &Finished) -> Option<Error> {
        run.timed_out.then(|| Error::Timeout {
            host: host.to_string(),
            seconds: self.timeout.as_secs(),
            during: "for PowerShell to finish".into(),
        })
    }
}
