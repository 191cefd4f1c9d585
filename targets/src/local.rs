//! `target = "local"`: PowerShell on the machine kmsconf runs on (a pipeline agent on the KMS
//! host). Compiled everywhere so it is tested everywhere; config validation refuses `local` on
//! anything but Windows.

use std::time::Duration;

use super::powershell;
use super::process::Finished;
use super::session::{Process, Session};
use super::windows::Transport;
use crate::{Error, RemoteError};

/// Runs one `powershell.exe` locally per run, the agent and the requests on its standard input.
#[derive(Debug, Clone)]
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
    fn start(&self, host: &str) -> Result<Session, Error> {
        Process::start(&self.program, &powershell::arguments())
            .map(|p| Box::new(p) as Session)
            .map_err(|source| {
                let program = self.program.clone();
                Error::Remote {
                    host: host.to_string(),
                    source: if source.kind() == std::io::ErrorKind::NotFound {
                        RemoteError::NotFound { program }
                    } else {
                        RemoteError::Start { program, source }
                    },
                }
            })
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn name(&self) -> &'static str {
        "the local pipe to PowerShell"
    }

    fn failure(&self, host: &str, run: &Finished) -> Option<Error> {
        run.timed_out.then(|| Error::Timeout {
            host: host.to_string(),
            seconds: self.timeout.as_secs(),
            during: "for PowerShell to answer".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsconf_engine::target::Target;

    #[test]
    fn without_powershell_local_says_it_needs_windows() {
        let shell =
            LocalShell::new(Duration::from_secs(5)).with_program("kmsconf-no-such-powershell");
        let e = super::super::WindowsTarget::new("kms01", shell)
            .discover()
            .expect_err("missing");
        assert!(e.to_string().contains("runs only on Windows"), "{e}");
    }

    /// The Windows target of a local shell whose `powershell` is the shell script `script`,
    /// written (executable) at `fake`.
    #[cfg(unix)]
    fn fake_powershell(
        fake: &std::path::Path,
        script: &str,
    ) -> super::super::WindowsTarget<LocalShell> {
        std::fs::write(fake, script).expect("fake");
        let mut perms = std::fs::metadata(fake).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(fake, perms).expect("chmod");
        let shell =
            LocalShell::new(Duration::from_secs(20)).with_program(&fake.display().to_string());
        super::super::WindowsTarget::new("kms01", shell)
    }

    /// Windows PowerShell writes its error stream as CLIXML when started this way: the error
    /// names what PowerShell said, not the XML around it.
    #[cfg(unix)]
    #[test]
    fn a_powershell_failure_shows_its_clixml_error_as_text() {
        let dir = tempfile::tempdir().expect("tmp");
        let fake = dir.path().join("powershell");
        let script = concat!(
            "#!/bin/sh\nread -r agent\n",
            r#"printf '%s\n' '#< CLIXML' '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><S S="Error">At line:1 char:1_x000D__x000A_</S><S S="Error">+ Access is denied_x000D__x000A_</S></Objs>' >&2"#,
            "\nexit 1\n"
        );
        let e = fake_powershell(&fake, script)
            .discover()
            .expect_err("fails")
            .to_string();
        assert!(
            e.contains("exit code 1: At line:1 char:1; + Access is denied")
                && !e.contains("CLIXML"),
            "{e}"
        );
    }

    /// A local PowerShell whose bootstrap found the agent damaged (its one `damaged` line and
    /// exit code 1): the error names the local pipe and both hashes, and says nothing ran.
    #[cfg(unix)]
    #[test]
    fn an_agent_damaged_on_the_local_pipe_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let fake = dir.path().join("powershell");
        let damage = serde_json::json!({
            "Expected": powershell::agent_sha256(),
            "Received": "0".repeat(64),
            "Bytes": 12,
        });
        let line = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            damage.to_string(),
        );
        // what comes after the agent line is kept: kmsconf must send nothing more
        let script = format!(
            "#!/bin/sh\nread -r agent\necho 'KMSCONF:damaged:{line}'\ncat > '{}/after'\nexit 1\n",
            dir.path().display()
        );
        let e = fake_powershell(&fake, &script)
            .discover()
            .expect_err("damaged")
            .to_string();
        assert!(
            e.starts_with("host `kms01`: the agent arrived damaged over the local pipe to PowerShell (SHA-256 mismatch): kmsconf sent ")
                && e.contains("the host decoded 12 bytes with SHA-256 `0000")
                && e.contains("nothing was run"),
            "{e}"
        );
        let after = std::fs::read_to_string(dir.path().join("after")).expect("after");
        assert_eq!(
            after, "",
            "a request was sent to a host that refused the agent"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_local_shell_feeds_the_script_on_stdin_and_reads_the_answer() {
        let dir = tempfile::tempdir().expect("tmp");
        let fake = dir.path().join("powershell");
        let fixture =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cim/fresh-server.json");
        let document: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&fixture).expect("fixture"))
                .expect("json");
        let envelope = serde_json::json!({ "Id": 0, "Ok": true, "Answer": document });
        let answer = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            envelope.to_string(),
        );
        let script = format!(
            "#!/bin/sh\nread -r agent\nprintf '%s' \"$agent\" > '{}/agent'\necho '{}'\nread -r request\necho 'KMSCONF:discovery:{answer}'\n",
            dir.path().display(),
            powershell::READY_LINE,
        );
        let d = fake_powershell(&fake, &script)
            .discover()
            .expect("discover");
        assert_eq!(d.state.computer_name, "WIN-7Q2LABHOST");
        assert!(!std::fs::read_to_string(dir.path().join("agent"))
            .expect("agent")
            .is_empty());
    }
}
