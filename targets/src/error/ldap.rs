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
    #[error("the connection failed: {0}")]
    Io(std::io::Error),
    #[error("the server sent a message over the {limit}-byte limit")]
    TooLarge { limit: usize },
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
