//! The targets' one error type: what can go wrong reaching a host or a DNS server.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] kmsconf_engine::Error),
    #[error("lab state file `{path}` is invalid: {message}; fix or delete it (kmsconf never overwrites a file it cannot read)")]
    LabState { path: PathBuf, message: String },
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
    #[error("host `{host}`: {message}")]
    Remote { host: String, message: String },
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
        source: crate::dns::DnsError,
    },
    #[error("host `{host}` is locked by {holder}; if that run was killed and its lock stayed behind, `kmsconf force-unlock {host} {}` breaks it", holder.id)]
    Locked {
        host: String,
        holder: Box<kmsconf_engine::lock::LockHolder>,
    },
    #[error("host `{host}`: cannot break the lock: {message}")]
    Unlock { host: String, message: String },
    /// `kmsconf lab listen` cannot hold a lab host's KMS port open.
    #[error("lab host `{path}`: cannot listen on 127.0.0.1:{port}: {message}")]
    Listen {
        path: PathBuf,
        port: u16,
        message: String,
    },
}
