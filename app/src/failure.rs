//! Why an entry (a host or the DNS server) got no result: a kind a script can branch on, the
//! host's error code where it gave one, and a message a person can act on.

use schemars::JsonSchema;
use serde::Serialize;

/// What kind of failure stopped an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The host could not be reached (network, lab host switched off).
    Unreachable,
    /// The host answered with an error code (an HRESULT in `code`).
    Refused,
    /// The host did not answer in time.
    Timeout,
    /// The connection broke while the host was working.
    ConnectionDropped,
    /// The host's SSH key is not the one `known_hosts` holds.
    HostKey,
    /// The host's TLS certificate (WinRM over HTTPS) is not trusted or not for its name.
    Certificate,
    /// The SSH server refused every credential offered, or the WinRM service the account.
    AuthRefused,
    /// PowerShell on the host failed, or answered something kmsconf cannot read.
    Remote,
    /// The DNS server failed or refused.
    Dns,
    /// Another run holds the host's apply lock, or a lock could not be broken.
    Locked,
    /// A local file (a lab host's state file) cannot be used.
    Local,
    /// The host cannot be planned as the config declares it (or its plan cannot be run).
    Plan,
    /// Not attempted because something before it did not happen.
    Skipped,
}

/// Why an entry got no result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct HostFailure {
    pub kind: FailureKind,
    /// The host's own error code (an HRESULT), where it gave one.
    pub code: Option<u32>,
    pub message: String,
}

impl HostFailure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            code: None,
            message: message.into(),
        }
    }

    pub fn plan(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Plan, message)
    }

    pub fn skipped(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Skipped, message)
    }

    /// The same failure, said of an entry that therefore could not be planned.
    pub fn cannot_plan(mut self) -> Self {
        self.message = format!("cannot plan: {}", self.message);
        self
    }
}

impl std::fmt::Display for HostFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<kmsconf_targets::Error> for HostFailure {
    fn from(e: kmsconf_targets::Error) -> Self {
        use kmsconf_targets::Error as E;
        let kind = match &e {
            E::Unreachable { .. } | E::UnsupportedTarget { .. } => FailureKind::Unreachable,
            E::Refused { .. } => FailureKind::Refused,
            E::Timeout { .. } => FailureKind::Timeout,
            E::ConnectionDropped { .. } => FailureKind::ConnectionDropped,
            E::HostKey { .. } => FailureKind::HostKey,
            E::Certificate { .. } => FailureKind::Certificate,
            E::AuthRefused { .. } => FailureKind::AuthRefused,
            E::Remote { .. } => FailureKind::Remote,
            E::Dns { .. } => FailureKind::Dns,
            E::Locked { .. } | E::Unlock { .. } => FailureKind::Locked,
            E::LabState { .. } | E::Io { .. } | E::Listen { .. } | E::Engine(_) => {
                FailureKind::Local
            }
        };
        let code = match &e {
            E::Refused { code, .. } => Some(*code),
            _ => None,
        };
        Self {
            kind,
            code,
            message: e.to_string(),
        }
    }
}

impl From<kmsconf_providers::Error> for HostFailure {
    fn from(e: kmsconf_providers::Error) -> Self {
        // the message of a planning error already names the host, which the report shows
        let message = match e {
            kmsconf_providers::Error::Plan { source, .. } => source.to_string(),
            other => other.to_string(),
        };
        Self::plan(message)
    }
}

impl From<crate::Error> for HostFailure {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Target(t) => t.into(),
            crate::Error::Providers(p) => p.into(),
            other => Self::plan(other.to_string()),
        }
    }
}
