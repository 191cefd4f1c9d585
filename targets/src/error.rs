//! The targets' one error type, [`Error`]: what can go wrong reaching a host or a DNS server.
//! Its variants are the kinds a caller reports (unreachable, refused, timeout, remote, DNS,
//! locked, local...); each carries the host, server or file, and where a module knows more, that
//! module's own error as its source (`dns::DnsError`, [`RemoteError`] with the agent's
//! `AgentError`, [`LabStateError`], [`UnlockError`], [`ListenError`]).

pub(crate) mod dns;
pub mod ldap;
pub(crate) mod replay;
pub(crate) mod winrm;

use std::path::PathBuf;

use crate::powershell::AgentError;
pub use replay::ReplayError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] kmsconf_engine::Error),
    #[error("lab state file `{path}` is invalid: {source}; fix or delete it (kmsconf never overwrites a file it cannot read)")]
    LabState {
        path: PathBuf,
        source: LabStateError,
    },
    #[error("cannot reach host `{host}`: {message}")]
    Unreachable { host: String, message: String },
    /// The host answered a whole request (discovery) with an error code, an HRESULT.
    #[error("cannot reach host `{host}`: {message}")]
    Refused {
        host: String,
        code: u32,
        message: String,
    },
    /// The host's SSH key is not the one `known_hosts` holds, or is not known at all.
    #[error("host `{host}`: host key verification failed: {message}")]
    HostKey { host: String, message: String },
    /// The host's TLS certificate (WinRM over HTTPS) is not trusted or not for its name.
    #[error("host `{host}`: {message}")]
    Certificate { host: String, message: String },
    /// The SSH server refused every credential offered; the WinRM service refused the account.
    #[error("host `{host}`: authentication refused: {message}")]
    AuthRefused { host: String, message: String },
    #[error("host `{host}`: no answer within {seconds} s {during}")]
    Timeout {
        host: String,
        seconds: u64,
        during: String,
    },
    /// The connection broke while the host was working.
    #[error("host `{host}`: the connection dropped: {message}")]
    ConnectionDropped { host: String, message: String },
    /// PowerShell on the host failed, or answered something kmsconf cannot read.
    #[error("host `{host}`: {source}")]
    Remote { host: String, source: RemoteError },
    #[error("target `{target}` is not available in this version of kmsconf: {reason}")]
    UnsupportedTarget { target: String, reason: String },
    #[error("cannot use `{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("DNS server `{server}`: {source}")]
    Dns {
        server: String,
        source: Box<dns::DnsError>,
    },
    #[error("host `{host}` is locked by {holder}; if that run was killed and its lock stayed behind, `kmsconf force-unlock {host} {}` breaks it", holder.id)]
    Locked {
        host: String,
        holder: Box<kmsconf_engine::lock::LockHolder>,
    },
    #[error("host `{host}`: cannot break the lock: {source}")]
    Unlock { host: String, source: UnlockError },
    /// A `replay:` target's recording cannot answer what the run asks.
    #[error("host `{host}`: cannot replay `{}`: {source}", path.display())]
    Replay {
        host: String,
        path: PathBuf,
        source: Box<ReplayError>,
    },
    /// An LDAP server (a domain controller) failed or refused; `identity` is the principal
    /// kmsconf bound (or tried to bind) as.
    #[error("LDAP server `{server}` (bound as `{identity}`): {source}")]
    Ldap {
        server: String,
        identity: String,
        source: Box<ldap::LdapError>,
    },
    /// `[active_directory]` names no server and none of its domain's domain controllers could
    /// be found or bound to; `identity` is the principal kmsconf binds as.
    #[error("no domain controller for `{identity}`: {source}")]
    Locate {
        identity: String,
        source: Box<ldap::LocateError>,
    },
    /// `kmsconf lab listen` cannot hold a lab host's KMS port open.
    #[error("lab host `{path}`: cannot listen on 127.0.0.1:{port}: {source}")]
    Listen {
        path: PathBuf,
        port: u16,
        source: ListenError,
    },
}

impl Error {
    /// The host's own error code (an HRESULT), where it gave one: a whole request refused
    /// ([`Error::Refused`]), or a step the agent reported failed with one.
    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Refused { code, .. } => Some(*code),
            Self::Remote {
                source: RemoteError::Agent(AgentError::Failed { code, .. }),
                ..
            } => *code,
            _ => None,
        }
    }
}

/// How PowerShell on a host failed, or what it answered that kmsconf cannot read.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The session ended before `what` came, and the host had said why.
    #[error("{what}: {source}")]
    Refused { what: String, source: AgentError },
    /// PowerShell ended before `what` came; `stderr` is the last of what it wrote there.
    #[error(
        "{what} (PowerShell ended with {}{})",
        exit_code.map_or_else(|| "no exit code".to_string(), |c| format!("exit code {c}")),
        if stderr.is_empty() { String::new() } else { format!(": {stderr}") }
    )]
    Ended {
        what: String,
        exit_code: Option<i32>,
        stderr: String,
    },
    /// The bootstrap found that the agent it read is not the one kmsconf sent; nothing ran.
    #[error("the agent arrived damaged over {transport} (SHA-256 mismatch): {damage}")]
    Damaged {
        transport: &'static str,
        damage: crate::powershell::Damage,
    },
    #[error("cannot read the event log answer: {0}")]
    Events(#[from] kmsconf_model::events::EventError),
    #[error("cannot read the WinRM service's settings: {0}")]
    WinRmService(#[from] kmsconf_model::winrm_service::WinRmServiceError),
    #[error("cannot read the {what} answer: {source}")]
    Answer {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("`{program}` was not found: target `local` runs only on Windows")]
    NotFound { program: String },
    #[error("cannot start `{program}`: {source}")]
    Start {
        program: String,
        source: std::io::Error,
    },
    /// The WinRM service answered with a fault, an HTTP status, or a body kmsconf cannot read.
    #[error(transparent)]
    WinRm(Box<winrm::Refusal>),
}

/// What is wrong with a lab host's state file.
#[derive(Debug, thiserror::Error)]
pub enum LabStateError {
    /// Not JSON, or not a lab file's fields; serde's message without its position, which goes
    /// first.
    #[error("line {line} column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("format {found} is not the format {expected} this kmsconf reads")]
    Format { found: u64, expected: u32 },
    #[error("`latency_ms` is {found}, outside 0..={max}")]
    Latency { found: u64, max: u64 },
    #[error("`host_key_groups`: `{partial}` names `{group}`, which is no Windows KMS host key group (groups: {known})")]
    HostKeyGroup {
        partial: String,
        group: String,
        known: String,
    },
    #[error("{0}")]
    Encode(#[source] serde_json::Error),
}

impl From<serde_json::Error> for LabStateError {
    fn from(e: serde_json::Error) -> Self {
        let text = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        Self::Json {
            line: e.line(),
            column: e.column(),
            message: text.strip_suffix(&suffix).unwrap_or(&text).to_string(),
        }
    }
}

/// Why a host's apply lock cannot be broken.
#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    #[error("the host is not locked")]
    NotLocked,
    #[error("lock ID `{lock_id}` does not match the current lock {current}")]
    OtherLock {
        lock_id: String,
        current: Box<kmsconf_engine::lock::LockHolder>,
    },
    /// A lab host's lock is held by a process that runs.
    #[error("the lock is held by a live process: {holder}; an OS lock ends with its process, so stop that run instead")]
    Live {
        holder: Box<kmsconf_engine::lock::LockHolder>,
    },
    /// A lab host's lock file is locked, but holds no record of who holds it.
    #[error("`{}` is locked by another process that left no record", path.display())]
    NoRecord { path: PathBuf },
    /// A Windows host's lock file holds something other than a lock record.
    #[error("the lock file `%ProgramData%\\kmsconf\\apply.lock` holds no kmsconf lock record ({bytes} bytes); remove it by hand if no kmsconf runs")]
    Unreadable { bytes: usize },
}

/// Why a lab host's KMS port cannot be held open.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("lab host `{}` listens on the same port", other.display())]
    SamePort { other: PathBuf },
    #[error("the port is in use by another program")]
    InUse,
    #[error("{0}")]
    Bind(#[source] std::io::Error),
}
