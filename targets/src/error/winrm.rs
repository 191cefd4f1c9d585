//! What the WinRM service answers that kmsconf refuses ([`Refusal`]: a fault, an HTTP status,
//! a body it cannot or must not read), with the protocol errors it carries. It lives under
//! `error`, below the WinRM transport that returns it and the crate's error that wraps it, and
//! is re-exported at `winrm::Refusal`, `winrm::wsman::{Fault, ParseError}`,
//! `winrm::encryption::FrameError` and `winrm::auth::AuthError`.

use std::fmt;

/// The WinRM service answered something other than what kmsconf asked for: a fault, an HTTP
/// status, or a body kmsconf cannot or must not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A WS-Management fault, `during` the step it answered where that is named.
    #[error("{}{}", during.as_deref().map(|d| format!("{d}: ")).unwrap_or_default(), fault_message(fault))]
    Fault {
        during: Option<String>,
        fault: Fault,
    },
    #[error("{during}: {source}")]
    Unreadable { during: String, source: ParseError },
    /// An HTTP status kmsconf does not expect; `detail` is the start of the body.
    #[error("the WinRM service answered HTTP {status} {during}{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    Status {
        status: u16,
        during: String,
        detail: String,
    },
    #[error("the WinRM service answered HTTP {status} with an unsealed `{content_type}` body after {who} authenticated; over HTTP kmsconf accepts only sealed messages (something between may be rewriting the connection)")]
    Unsealed {
        status: u16,
        content_type: String,
        who: String,
    },
    #[error("unreadable sealed answer: {0}")]
    Frame(#[source] FrameError),
    #[error("a sealed answer failed its integrity check: it was changed on the way, or does not come from the host kmsconf authenticated with ({0})")]
    Integrity(#[source] AuthError),
    #[error("a sealed answer of {found} bytes says it holds {said}")]
    Length { found: usize, said: usize },
    #[error("an answer that is not UTF-8")]
    NotUtf8,
    /// A reply of another kind than the request asks for.
    #[error("the host answered a {request} with {reply}")]
    Unexpected {
        request: &'static str,
        reply: &'static str,
    },
}

/// A WS-Management fault as people read it: its text, its code and the reason.
fn fault_message(fault: &Fault) -> String {
    let code = fault
        .wsman_code
        .map(|c| format!(" (WS-Management error {c}, 0x{c:08X})"))
        .unwrap_or_default();
    let sub = fault
        .subcode
        .as_deref()
        .map(|s| format!(" [{s}]"))
        .unwrap_or_default();
    format!("WS-Management fault{sub}{code}: {}", fault.message)
}

/// A SOAP fault the service answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `s:Code/s:Value`, e.g. `s:Receiver`. Prefixes are kmsconf's own (`s:` SOAP, `w:` WS-Man),
    /// whatever the service wrote.
    pub code: String,
    /// `s:Code/s:Subcode/s:Value`, e.g. `w:TimedOut`, `w:AccessDenied`, `w:QuotaLimit`,
    /// `w:InvalidSelectors`.
    pub subcode: Option<String>,
    /// The `Code` of `wsmanfault:WSManFault`, a Windows error code, e.g. 2150858793 or 5.
    pub wsman_code: Option<u32>,
    /// The fault's text, trimmed, its whitespace collapsed: the WSManFault message (provider
    /// faults included) when there is one, else `s:Reason/s:Text`.
    pub message: String,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WS-Management fault `{}`", self.code)?;
        if let Some(subcode) = &self.subcode {
            write!(f, " `{subcode}`")?;
        }
        if let Some(code) = self.wsman_code {
            write!(f, " (code {code})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Why a reply could not be read as the answer to a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Fault(Fault),
    #[error("the reply answers message `{found}`, not the request `{expected}`")]
    RelatesTo { expected: String, found: String },
    #[error("{0}")]
    Malformed(String),
}

/// Why a body is not a `multipart/encrypted` one kmsconf can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the encrypted reply is malformed: {0}")]
pub struct FrameError(pub(crate) String);

/// An authentication failure, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

/// Why a security context could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Refused(#[from] AuthError),
    /// MIT's GSS-API library did not get a ticket for `service` from the KDC within `seconds`
    /// (its request is left to end on its own, its result unread).
    #[error("no answer within {seconds} s from the Kerberos KDC for a ticket to `{service}`")]
    KdcLate { service: String, seconds: u64 },
}

/// Why no Kerberos credentials of `principal` (the cache's own where `None`) could be had from
/// `keytab` or the credential cache, for a WinRM host.
pub(crate) fn ticket_error(
    principal: Option<&str>,
    keytab: Option<&std::path::Path>,
    e: &kmsconf_gssapi::Error,
) -> AuthError {
    use kmsconf_gssapi::ErrorKind;
    if let (ErrorKind::NoCredentials, Some(keytab)) = (&e.kind, keytab) {
        // MIT finds no key of the principal there, whether the file holds other principals'
        // keys or is no keytab at all, and then says only that it found no credentials cache
        let who = principal.unwrap_or("the principal");
        return AuthError(format!(
            "keytab `{}` holds no key of `{who}` that Kerberos can use: check that it is a keytab (`klist -k` lists it) made for `{who}` (`ktpass` or `ktutil`), realm included ({})",
            keytab.display(),
            e.detail
        ));
    }
    let text = super::dns::credentials_text(principal, keytab, e);
    let hint = match (&e.kind, keytab) {
        (ErrorKind::NoCredentials, None) => " (with no `password`, kmsconf logs on to a WinRM host with a Kerberos ticket: `kinit` one, or set `keytab` and `principal`, or give a password)",
        _ => "",
    };
    AuthError(format!("{text}{hint}"))
}

/// Why no security context with the host's service principal `server` could be had.
pub(crate) fn service_error(server: &str, e: &kmsconf_gssapi::Error) -> AuthError {
    use kmsconf_gssapi::ErrorKind;
    AuthError(match e.kind {
        ErrorKind::UnknownServer => format!(
            "the KDC does not know the service principal `{server}`: the host's WinRM service is registered under another name; write the host's DNS name in the target, or set `service_principal` (`setspn -L HOST` lists the host's) ({})",
            e.detail
        ),
        ErrorKind::Expired => format!(
            "the Kerberos ticket in cache `{}` has expired ({}): run kinit again",
            kmsconf_gssapi::default_ccache(),
            e.detail
        ),
        _ => format!(
            "no Kerberos context with `{server}`: {}",
            super::dns::describe(e)
        ),
    })
}
