//! `target = "ssh://[user@]host[:port]"`: PowerShell on a Windows host through its OpenSSH
//! server, using the system `ssh` client so the user's ssh config, agent, known_hosts and jump
//! hosts all apply. Batch mode (never a password prompt) and strict host key checking are on
//! unless the user's own `ssh` arguments say otherwise. One `ssh` per host and per run carries
//! the agent session; the agent and the requests, secrets included, go on its standard input,
//! never on the command line.

use super::powershell;
use super::process::Finished;
use super::session::{Process, Session};
use super::windows::Transport;
use super::Connect;
use crate::Error;

/// The exit status `ssh` uses for its own errors (as opposed to the remote command's).
const SSH_ERROR: i32 = 255;

#[derive(Debug, Clone)]
pub struct SshShell {
    command: Vec<String>,
    user: Option<String>,
    host: String,
    port: Option<u16>,
    timeout: std::time::Duration,
    connect_timeout: std::time::Duration,
}

impl SshShell {
    pub fn new(connect: &Connect, user: Option<String>, host: String, port: Option<u16>) -> Self {
        Self {
            command: connect.ssh_command.clone(),
            user,
            host,
            port,
            timeout: connect.timeout,
            connect_timeout: connect.connect_timeout,
        }
    }

    /// The `ssh` arguments after the program: the user's own first (for `ssh`, the first value
    /// given for an option wins), then kmsconf's defaults, the destination and the remote
    /// command, which holds no secret.
    pub fn arguments(&self) -> Vec<String> {
        let mut args: Vec<String> = self.command.iter().skip(1).cloned().collect();
        args.extend(
            [
                "-T",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "ServerAliveInterval=15",
                "-o",
                "ServerAliveCountMax=3",
            ]
            .map(String::from),
        );
        args.push("-o".into());
        args.push(format!(
            "ConnectTimeout={}",
            self.connect_timeout.as_secs().max(1)
        ));
        if let Some(p) = self.port {
            args.extend(["-p".to_string(), p.to_string()]);
        }
        if let Some(u) = &self.user {
            args.extend(["-l".to_string(), u.clone()]);
        }
        args.push("--".into());
        args.push(self.host.clone());
        let mut remote = vec![powershell::PROGRAM.to_string()];
        remote.extend(powershell::arguments());
        args.push(remote.join(" "));
        args
    }

    fn program(&self) -> &str {
        self.command.first().map_or("ssh", String::as_str)
    }
}

impl Transport for SshShell {
    fn start(&self, host: &str) -> Result<Session, Error> {
        Process::start(self.program(), &self.arguments())
            .map(|p| Box::new(p) as Session)
            .map_err(|e| Error::Unreachable {
                host: host.to_string(),
                message: format!("cannot start `{}`: {e}", self.program()),
            })
    }

    fn timeout(&self) -> std::time::Duration {
        self.timeout
    }

    fn name(&self) -> &'static str {
        "SSH"
    }

    fn failure(&self, host: &str, run: &Finished) -> Option<Error> {
        if run.timed_out {
            return Some(Error::Timeout {
                host: host.to_string(),
                seconds: self.timeout.as_secs(),
                during: "for the host to answer (connection and PowerShell)".into(),
            });
        }
        if run.status != Some(SSH_ERROR) {
            return None;
        }
        Some(classify(
            host,
            &self.host,
            run,
            self.connect_timeout.as_secs(),
        ))
    }
}

/// Tells `ssh`'s own failures apart by what it printed.
fn classify(host: &str, address: &str, run: &Finished, connect_seconds: u64) -> Error {
    let err = &run.stderr;
    let tail = run.stderr_tail();
    let host = host.to_string();
    if err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        return Error::HostKey {
            host,
            message: format!("`{address}` offered a host key different from the one in known_hosts: either the host was reinstalled or someone is intercepting the connection; check its fingerprint on the console before replacing the known_hosts entry ({tail})"),
        };
    }
    if err.contains("Host key verification failed") || err.contains("host key is known") {
        return Error::HostKey {
            host,
            message: format!("the key of `{address}` is not in known_hosts and strict host key checking is on: check the host's fingerprint and add it (for example `ssh-keyscan` compared with the console) ({tail})"),
        };
    }
    if err.contains("Permission denied") || err.contains("Too many authentication failures") {
        return Error::AuthRefused {
            host,
            message: format!("`{address}` refused every key offered (kmsconf runs ssh in batch mode: no password prompt; use a key in the agent or an IdentityFile) ({tail})"),
        };
    }
    if err.contains("timed out") || err.contains("Connection timeout") {
        return Error::Timeout {
            host,
            seconds: connect_seconds,
            during: format!("connecting to `{address}` ({tail})"),
        };
    }
    let unreachable = [
        "Connection refused",
        "Could not resolve hostname",
        "No route to host",
        "Network is unreachable",
    ];
    if unreachable.iter().any(|p| err.contains(p)) {
        return Error::Unreachable {
            host,
            message: tail,
        };
    }
    Error::ConnectionDropped {
        host,
        message: if tail.is_empty() {
            "ssh exited with 255 and no message".into()
        } else {
            tail
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(command: &[&str]) -> SshShell {
        let connect = Connect {
            ssh_command: command.iter().map(|s| s.to_string()).collect(),
            ..Connect::default()
        };
        SshShell::new(
            &connect,
            Some("admin".into()),
            "kms01.corp.example".into(),
            Some(2222),
        )
    }

    #[test]
    fn the_users_options_come_first_and_the_remote_command_holds_no_secret() {
        let args = shell(&[
            "ssh",
            "-F",
            "ci/ssh_config",
            "-o",
            "StrictHostKeyChecking=accept-new",
        ])
        .arguments();
        let pos = |a: &str| {
            args.iter()
                .position(|x| x == a)
                .unwrap_or_else(|| panic!("{a} in {args:?}"))
        };
        assert!(
            pos("StrictHostKeyChecking=accept-new") < pos("StrictHostKeyChecking=yes"),
            "ssh takes the first value"
        );
        assert!(pos("BatchMode=yes") < pos("--"));
        assert_eq!(&args[pos("-p")..pos("-p") + 2], ["-p", "2222"]);
        assert_eq!(&args[pos("-l")..pos("-l") + 2], ["-l", "admin"]);
        assert_eq!(args[pos("--") + 1], "kms01.corp.example");
        let remote = args.last().cloned().unwrap_or_default();
        assert!(
            remote.starts_with("powershell.exe -NoLogo -NoProfile -NonInteractive"),
            "{remote}"
        );
        assert_eq!(
            remote.split(' ').count(),
            8,
            "one word per argument: {remote}"
        );
    }

    fn failure(stderr: &str) -> Error {
        let run = Finished {
            status: Some(SSH_ERROR),
            stderr: stderr.into(),
            ..Finished::default()
        };
        shell(&["ssh"]).failure("kms01", &run).expect("a failure")
    }

    #[test]
    fn ssh_failures_are_told_apart_by_what_ssh_printed() {
        assert!(matches!(
            failure("Connection timed out during banner exchange"),
            Error::Timeout { .. }
        ));
        assert!(matches!(
            failure("ssh: connect to host x port 22: Connection timed out"),
            Error::Timeout { .. }
        ));
        assert!(matches!(
            failure("Timeout, server kms01 not responding."),
            Error::ConnectionDropped { .. }
        ));
        assert!(matches!(
            failure("client_loop: send disconnect: Broken pipe"),
            Error::ConnectionDropped { .. }
        ));
        assert!(matches!(
            failure("ssh: Could not resolve hostname kms01: Name or service not known"),
            Error::Unreachable { .. }
        ));
        assert!(matches!(
            failure("admin@kms01: Permission denied (publickey)."),
            Error::AuthRefused { .. }
        ));
        let run = Finished {
            status: Some(3),
            ..Finished::default()
        };
        assert!(
            shell(&["ssh"]).failure("kms01", &run).is_none(),
            "the remote command's own exit code"
        );
        let run = Finished {
            timed_out: true,
            ..Finished::default()
        };
        assert!(matches!(
            shell(&["ssh"]).failure("kms01", &run),
            Some(Error::Timeout { .. })
        ));
    }
}
