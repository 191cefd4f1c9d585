//! How a transport's process ended, and the last lines of what it wrote to stderr: what both
//! the SSH and the local transport report from.

/// How a program ended.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    /// The exit code; `None` when killed (by the deadline or a signal).
    pub status: Option<i32>,
    pub stderr: String,
    /// The deadline passed and the program was killed.
    pub timed_out: bool,
    /// What broke the connection, when the transport itself knows (WinRM: an HTTP or WS-Man
    /// error); `None` for a process, whose transport reads it from the exit code and stderr.
    pub broken: Option<Broken>,
}

/// A connection failure a transport saw itself, kept until the session's end is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// Nothing answered at the address (refused, unresolvable, unroutable).
    Unreachable(String),
    /// The host refused the credentials.
    Auth(String),
    /// The host's TLS certificate is unknown or not for its name.
    Certificate(String),
    /// No answer within `seconds`.
    Timeout { seconds: u64, during: String },
    /// The connection ended or broke mid-exchange.
    Dropped(String),
    /// The host answered with an error of its protocol (a WS-Management fault, an HTTP status).
    Refused(crate::error::winrm::Refusal),
}

impl Broken {
    /// The target error for host `host`.
    pub fn error(&self, host: &str) -> crate::Error {
        use crate::Error;
        let host = host.to_string();
        match self.clone() {
            Self::Unreachable(message) => Error::Unreachable { host, message },
            Self::Auth(message) => Error::AuthRefused { host, message },
            Self::Certificate(message) => Error::Certificate { host, message },
            Self::Timeout { seconds, during } => Error::Timeout {
                host,
                seconds,
                during,
            },
            Self::Dropped(message) => Error::ConnectionDropped { host, message },
            Self::Refused(refusal) => Error::Remote {
                host,
                source: crate::RemoteError::WinRm(Box::new(refusal)),
            },
        }
    }
}

impl Finished {
    /// The last lines of stderr, for messages.
    pub fn stderr_tail(&self) -> String {
        tail(&self.stderr)
    }
}

/// The last lines of `text` that are not blank, joined with `; `.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(6)..].join("; ")
}
