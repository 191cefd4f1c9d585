//! What can go wrong talking to an LDAP server (an Active Directory domain controller): the
//! connection, the bind, the messages, and an operation the server refused. The caller names the
//! server and the bind identity around it ([`crate::Error::Ldap`]).

use std::time::Duration;

/// LDAP result codes (RFC 4511 section 4.1.9) that get words of their own.
pub const NO_SUCH_OBJECT: i64 = 32;
pub const INVALID_CREDENTIALS: i64 = 49;
pub const INSUFFICIENT_ACCESS_RIGHTS: i64 = 50;
pub const STRONGER_AUTH_REQUIRED: i64 = 8;

#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    #[error("cannot resolve `{host}`: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
    /// The session outlived its deadline: its sockets end by then, so what held it is the
    /// GSS-API library's ticket request to the KDC.
    #[error("no answer within {} s from the Kerberos KDC (the GSS-API library's ticket request for the bind)", .0.as_secs())]
    KdcLate(Duration),
    #[error("the connection failed: {0}")]
    Io(std::io::Error),
    #[error("the server sent a message over the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("the server sent over {limit} bytes in one session (the limit)")]
    SessionTooLarge { limit: usize },
    #[error("a search returned over {limit} entries (the limit)")]
    TooManyEntries { limit: usize },
    #[error("the server sent a malformed message: {0}")]
    Malformed(&'static str),
    #[error("Kerberos: {0}")]
    Gss(#[from] kmsconf_gssapi::Error),
    #[error("the SASL GSSAPI bind was refused ({}): {message}", code_name(*code))]
    BindRefused { code: i64, message: String },
    #[error("the server offers no integrity-protected SASL security layer, and kmsconf binds only with signing")]
    NoIntegrityLayer,
    #[error("{operation} of `{dn}` failed ({}): {message}", code_name(*code))]
    Refused {
        operation: &'static str,
        dn: String,
        code: i64,
        message: String,
    },
    #[error("the server ended the session: {0}")]
    Disconnected(String),
}

impl LdapError {
    /// The result code of a refused operation or bind.
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::BindRefused { code, .. } | Self::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// `insufficientAccessRights (50)`.
pub fn code_name(code: i64) -> String {
    let name = match code {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        STRONGER_AUTH_REQUIRED => "strongerAuthRequired",
        NO_SUCH_OBJECT => "noSuchObject",
        INVALID_CREDENTIALS => "invalidCredentials",
        INSUFFICIENT_ACCESS_RIGHTS => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        66 => "notAllowedOnNonLeaf",
        _ => "result",
    };
    format!("{name} ({code})")
}

/// Why no domain controller could be used when `[active_directory]` names no `server` and
/// kmsconf looks for one in DNS. The caller names the bind identity around it
/// ([`crate::Error::Locate`]).
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error("the bind identity has no realm to take the domain from: set `server = \"ldap://…\"`")]
    NoRealm,
    #[error("no DNS server to ask for `{name}`: cannot read `{}` ({source}); declare `[dns] server` or set `server = \"ldap://…\"`", path.display())]
    NoResolver {
        name: String,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// A lookup for the domain controllers of `name` (the SRV name) failed.
    #[error("DNS server `{dns}`, looking up `{name}`: {source}")]
    Dns {
        dns: String,
        name: String,
        source: Box<super::dns::DnsError>,
    },
    #[error("no `{name}` SRV record on {dns}: set `server = \"ldap://…\"`")]
    NoRecord { name: String, dns: String },
    /// RFC 2782: a single target `.` means the service is decidedly not available.
    #[error("`{name}` on {dns} says the domain has no LDAP service (its target is `.`): set `server = \"ldap://…\"`")]
    NoService { name: String, dns: String },
    /// Every domain controller tried failed; `untried` were left when the deadline passed.
    #[error("no domain controller of `{name}` (DNS server `{dns}`) connected and bound: {}{}", attempts(tried), untried_text(*untried))]
    NoneBound {
        name: String,
        dns: String,
        tried: Vec<Attempt>,
        untried: usize,
    },
}

impl LocateError {
    /// Whether DNS itself failed (no server, no record, no answer), rather than the domain
    /// controllers it named.
    pub fn is_dns(&self) -> bool {
        !matches!(self, Self::NoRealm | Self::NoneBound { .. })
    }
}

/// One domain controller tried, and how it failed.
#[derive(Debug)]
pub struct Attempt {
    /// `host:port` as the SRV record names it.
    pub server: String,
    pub error: LdapError,
}

fn attempts(tried: &[Attempt]) -> String {
    let each: Vec<String> = tried
        .iter()
        .map(|a| format!("`{}`: {}", a.server, a.error))
        .collect();
    each.join("; ")
}

fn untried_text(untried: usize) -> String {
    match untried {
        0 => String::new(),
        n => format!("; {n} more not tried: the run's time ran out"),
    }
}
