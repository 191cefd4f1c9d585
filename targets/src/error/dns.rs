//! What can go wrong talking DNS to a server: the sockets, the messages, GSS-TSIG and its TKEY
//! negotiation, and what the server answered. The crate's [`Error::Dns`](crate::Error::Dns)
//! carries it with the server's name; each message reads after `DNS server `SERVER`: `. It
//! lives under `error`, below the DNS client that returns it and the crate's error that wraps
//! it, and is re-exported as `dns::{DnsError, GssTsigError, SignatureError, SocketError,
//! StrayReply, TkeyError}`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hickory_proto::dnssec::DnsSecError;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::RecordType;
use hickory_proto::serialize::binary::DecodeError;
use hickory_proto::ProtoError;
use kmsconf_gssapi::ErrorKind;

/// Seconds of clock difference a TSIG signature allows (RFC 8945 recommends 300).
pub(crate) const TSIG_FUDGE: u16 = 300;
/// Seconds of clock difference a GSS-TSIG signature allows (RFC 8945's recommendation; Samba's value).
pub(crate) const GSS_TSIG_FUDGE: u16 = 300;
/// Rounds of a GSS-TSIG negotiation before kmsconf gives up (Kerberos needs one).
pub(crate) const GSS_TSIG_MAX_ROUNDS: usize = 4;

/// The name and number of a response code, as DNS tools show it: `REFUSED (5)`.
pub(crate) fn rcode_name(code: ResponseCode) -> String {
    let name = match code {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::YXDomain => "YXDOMAIN",
        ResponseCode::YXRRSet => "YXRRSET",
        ResponseCode::NXRRSet => "NXRRSET",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::NotZone => "NOTZONE",
        _ => return format!("response code {}", u16::from(code)),
    };
    format!("{name} ({})", u16::from(code))
}

/// A DNS exchange that failed, or an answer that refuses or cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error("`{name}` is not a valid DNS name: {source}")]
    Name { name: String, source: ProtoError },
    /// A message kmsconf built does not encode (`what`: `a query`, `the update`).
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        source: ProtoError,
    },
    /// No answer came over UDP after every try.
    #[error("it did not answer within {seconds} seconds ({tries} tries over UDP to {address})")]
    NoAnswer {
        address: SocketAddr,
        seconds: u64,
        tries: usize,
    },
    /// The run's deadline passed before an answer came over UDP, after `tries` tries.
    #[error("it did not answer before the run's deadline ({tries} tries over UDP to {address})")]
    Deadline { address: SocketAddr, tries: usize },
    /// No answer came over UDP after every try, but replies that answer no query did: the
    /// first of them is `stray` (a reply with an ID no query had, or about another question).
    #[error("it did not answer within {seconds} seconds ({tries} tries over UDP to {address}); what came back answered no query: {stray}")]
    StrayAnswer {
        address: SocketAddr,
        seconds: u64,
        tries: usize,
        stray: StrayReply,
    },
    /// No answer came over UDP after every try, but `count` replies came from another address
    /// or port than the server's (the first from `from`): a server answering from another
    /// interface, a NAT, or someone forging answers.
    #[error("{} came from {from}, not the server; no answer from {address} within {seconds} seconds ({tries} tries over UDP)", replies(*count))]
    ForeignAnswers {
        address: SocketAddr,
        seconds: u64,
        tries: usize,
        count: usize,
        from: SocketAddr,
    },
    /// An answer truncated over UDP was asked again over TCP, and what came back does not
    /// answer the query.
    #[error("its answer over TCP does not answer the query sent")]
    Truncated,
    /// A query was answered with an error code; `question` names it (`` `_vlmcs._tcp.z` SRV ``).
    #[error("the query for {question} answered {}", rcode_name(*code))]
    Rcode {
        question: String,
        code: ResponseCode,
    },
    #[error("it refused the query for zone `{zone}` (REFUSED): it does not serve this zone, or does not answer this machine")]
    ZoneRefused { zone: String },
    #[error("zone `{zone}` does not exist there (NXDOMAIN)")]
    NoZone { zone: String },
    #[error("it is not authoritative for zone `{zone}` (its answer has no AA flag): `server` must be the zone's primary, which takes updates")]
    NotAuthoritative { zone: String },
    /// The name is not a zone's apex; `parent` is the zone it lies in, where the server said.
    #[error("`{zone}` is not a zone on this server{}: list the zone itself in `zones`", parent.as_ref().map(|p| format!(" (it lies in zone `{p}`)")).unwrap_or_default())]
    NotApex {
        zone: String,
        parent: Option<String>,
    },
    #[error("cannot sign with TSIG key `{key}`: {source}")]
    Signer { key: String, source: DnsSecError },
    #[error("cannot sign the update: {0}")]
    Sign(#[source] ProtoError),
    /// The update went out, and what followed leaves its outcome unknown.
    #[error("{source}; the update may or may not have been applied: run `kmsconf plan` to see")]
    UnknownOutcome { source: Box<DnsError> },
    #[error("the server's answer is malformed ({0})")]
    Malformed(#[source] DecodeError),
    #[error("the server answered another message")]
    OtherMessage,
    /// The server refused a TSIG signature (of `key`, where there was one).
    #[error("{}", tsig_text(*error, key.as_deref().unwrap_or("(none)")))]
    Tsig {
        error: TsigError,
        key: Option<String>,
    },
    /// The server refused an update with a response code.
    #[error("{}", rejected_text(*code, key.as_deref().unwrap_or("(none)")))]
    Rejected {
        code: ResponseCode,
        key: Option<String>,
    },
    #[error("the server answered NOERROR, but its answer does not carry a valid TSIG signature of key `{key}` ({source}); treat the update as not authenticated: run `kmsconf plan` to see")]
    Unverified { key: String, source: ProtoError },
    #[error("a DNS server has no apply lock to break")]
    NoLock,
    #[error(transparent)]
    Tkey(#[from] TkeyError),
    #[error(transparent)]
    GssTsig(#[from] GssTsigError),
}

impl DnsError {
    /// Why the server refused an update: its TSIG error, else its response code.
    pub(crate) fn rejection(
        code: ResponseCode,
        tsig_error: Option<TsigError>,
        key: Option<&str>,
    ) -> Self {
        let key = key.map(str::to_string);
        match tsig_error {
            Some(error) => Self::Tsig { error, key },
            None => Self::Rejected { code, key },
        }
    }

    /// The same failure, after which the update may or may not have been applied.
    pub(crate) fn unknown_outcome(self) -> Self {
        Self::UnknownOutcome {
            source: Box::new(self),
        }
    }
}

fn tsig_text(error: TsigError, key: &str) -> String {
    match error {
        TsigError::BadSig => format!("TSIG authentication failed (BADSIG): the server does not accept the signature of key `{key}`; the secret differs from the server's"),
        TsigError::BadKey => format!("TSIG authentication failed (BADKEY): the server does not know key `{key}` with this algorithm"),
        TsigError::BadTime => format!("TSIG authentication failed (BADTIME): this machine's clock and the server's differ by more than {TSIG_FUDGE} seconds"),
        other => format!("TSIG authentication failed ({other:?}) with key `{key}`"),
    }
}

fn rejected_text(code: ResponseCode, key: &str) -> String {
    let what = match code {
        ResponseCode::Refused => format!("the server refused the update: its update policy does not let key `{key}` change this name"),
        ResponseCode::NotAuth => "the server is not authoritative for the zone, or did not authenticate the update".to_string(),
        ResponseCode::NotZone => "the record name is not in the zone the update names".to_string(),
        ResponseCode::NXRRSet | ResponseCode::YXRRSet | ResponseCode::NXDomain | ResponseCode::YXDomain => {
            "the RRset changed since the plan was made (prerequisite failed), so nothing was changed: run `kmsconf plan` again".to_string()
        }
        ResponseCode::ServFail => "the server failed to apply the update".to_string(),
        _ => "the server rejected the update".to_string(),
    };
    format!("{what} ({})", rcode_name(code))
}

/// Why a socket could not carry a message; each reads after the server's name.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("cannot resolve the server's name: {0}")]
    Resolve(#[source] std::io::Error),
    #[error("the server's name resolves to no address")]
    NoAddress,
    #[error("cannot open a UDP socket: {0}")]
    UdpOpen(#[source] std::io::Error),
    #[error("cannot reach it over UDP: {0}")]
    UdpConnect(#[source] std::io::Error),
    #[error("nothing answers DNS there (connection refused over UDP to {address})")]
    UdpRefused { address: SocketAddr },
    #[error("cannot exchange UDP messages with {address}: {source}")]
    Udp {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("it did not accept a TCP connection within {seconds} seconds")]
    TcpConnectTimeout { address: SocketAddr, seconds: u64 },
    #[error("cannot connect over TCP to {address}: {source}")]
    TcpConnect {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("the message is too long")]
    TooLong { length: usize },
    #[error("cannot send over TCP: {0}")]
    TcpSend(#[source] std::io::Error),
    #[error("it did not answer within {seconds} seconds")]
    TcpTimeout { seconds: u64 },
    #[error("the TCP connection failed before the answer: {0}")]
    TcpLost(#[source] std::io::Error),
}

/// What goes wrong with GSS-TSIG: Kerberos credentials and the security context, signing, and
/// the server's answers to the negotiation and the update.
#[derive(Debug, thiserror::Error)]
pub enum GssTsigError {
    #[error("{0}")]
    Unavailable(#[source] kmsconf_gssapi::Error),
    /// No usable credentials of `principal` (the cache's default where `None`), from the
    /// default cache or `keytab`.
    #[error("{}", credentials_text(principal.as_deref(), keytab.as_deref(), source))]
    Credentials {
        principal: Option<String>,
        keytab: Option<PathBuf>,
        source: kmsconf_gssapi::Error,
    },
    /// No context with `server` for `who`.
    #[error(
        "as `{who}` with `{server}` (GSS-TSIG): {}",
        context_text(source, server)
    )]
    Context {
        who: String,
        server: String,
        source: kmsconf_gssapi::Error,
    },
    /// MIT's GSS-API library did not get the ticket for `server` from the KDC within `seconds`
    /// (the request is left to end on its own, its result unread).
    #[error(
        "no answer within {seconds} s from the Kerberos KDC for a ticket to `{server}`{} (GSS-TSIG): the KDC that krb5.conf names for the realm does not answer, or answers too slowly",
        principal.as_deref().map(|p| format!(" as `{p}`")).unwrap_or_default()
    )]
    KdcLate {
        principal: Option<String>,
        server: String,
        seconds: u64,
    },
    #[error("cannot start the Kerberos ticket request: {0}")]
    Thread(#[source] std::io::Error),
    #[error("the server gave no SOA for zone `{zone}`, whose primary name makes the default `server_principal`: set `server_principal`")]
    NoSoa { zone: String },
    #[error("the GSS-TSIG negotiation did not finish in {GSS_TSIG_MAX_ROUNDS} rounds")]
    Unfinished,
    #[error("the server's TKEY answer is malformed ({0})")]
    MalformedTkey(#[source] DecodeError),
    #[error("cannot encode the message to sign: {0}")]
    Encode(#[source] ProtoError),
    #[error("the message has too many records to sign")]
    TooManyRecords,
    #[error("the message has no header")]
    NoHeader,
    /// GSS-API computed no MIC of the context's deletion.
    #[error("{0}")]
    Mic(#[source] kmsconf_gssapi::Error),
    #[error("cannot sign the update: {}", describe(.0))]
    SignUpdate(#[source] kmsconf_gssapi::Error),
    /// The server refused the signed update (`tsig`: its TSIG error).
    #[error("{}", gss_rejection(*code, *tsig, zone))]
    Rejected {
        code: ResponseCode,
        tsig: Option<TsigError>,
        zone: String,
    },
    #[error("the server answered NOERROR, but {0}; treat the update as not authenticated: run `kmsconf plan` to see")]
    Unverified(#[source] SignatureError),
    /// The update with a negotiated context failed.
    #[error("as `{who}` with `{server}` (GSS-TSIG): {source}")]
    Update {
        who: String,
        server: String,
        source: Box<DnsError>,
    },
}

/// Why the signature of the server's answer does not prove the update was applied.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("its answer carries no readable signature ({0})")]
    Unreadable(#[source] ProtoError),
    #[error("its answer is signed by `{key}` with `{algorithm}`, not by the negotiated context")]
    OtherKey { key: String, algorithm: String },
    #[error(
        "its answer is signed {seconds} seconds away from this machine's clock (allowed: {fudge})"
    )]
    Time { seconds: u64, fudge: u16 },
    #[error(
        "the signature of its answer does not verify (neither as RFC 8945 nor as Samba signs)"
    )]
    Mismatch,
}

/// Why credentials of `principal` (from `keytab`, or the default cache) cannot be had.
pub(crate) fn credentials_text(
    principal: Option<&str>,
    keytab: Option<&Path>,
    e: &kmsconf_gssapi::Error,
) -> String {
    let who = principal.map(|p| format!(" for `{p}`")).unwrap_or_default();
    match (&e.kind, keytab) {
        (ErrorKind::NoCredentials, None) => format!(
            "no Kerberos credentials{who} in cache `{}`: run kinit or set `keytab`",
            kmsconf_gssapi::default_ccache()
        ),
        (ErrorKind::Expired, None) => format!(
            "the Kerberos ticket{who} in cache `{}` has expired ({}): run kinit again",
            kmsconf_gssapi::default_ccache(),
            e.detail
        ),
        (_, Some(keytab)) => format!(
            "cannot get Kerberos credentials{who} from keytab `{}`: {}",
            keytab.display(),
            describe(e)
        ),
        (_, None) => format!("cannot use the Kerberos credentials{who}: {}", describe(e)),
    }
}

/// A GSS-API failure in words a person can act on, the library's own after them.
pub(crate) fn describe(e: &kmsconf_gssapi::Error) -> String {
    let what = match e.kind {
        ErrorKind::ClockSkew => "this machine's clock and the KDC's differ by more than Kerberos allows (5 minutes by default): synchronise the clock",
        ErrorKind::KdcUnreachable => "no KDC of the realm is known or answers (krb5.conf's `[realms]` and `dns_lookup_kdc`)",
        ErrorKind::UnknownClient => "the KDC does not know the principal",
        ErrorKind::BadKeytab => "the keytab holds no current key of the principal",
        ErrorKind::Expired => "the Kerberos ticket has expired: run kinit again",
        _ => return e.detail.clone(),
    };
    format!("{what} ({})", e.detail)
}

/// Why no context with `server` could be had.
fn context_text(e: &kmsconf_gssapi::Error, server: &str) -> String {
    match e.kind {
        ErrorKind::UnknownServer => format!("the KDC does not know server principal `{server}`: set `server_principal` to the DNS server's (`DNS/<its full host name>`)"),
        _ => describe(e),
    }
}

/// Why the server refused a GSS-TSIG update.
fn gss_rejection(code: ResponseCode, tsig_error: Option<TsigError>, zone: &str) -> String {
    match (tsig_error, code) {
        (Some(TsigError::BadSig), _) => "the server rejected the update's GSS-TSIG signature (BADSIG)".into(),
        (Some(TsigError::BadKey), _) => "the server does not know the negotiated GSS-TSIG context (BADKEY): it may have restarted or expired the context; run apply again".into(),
        (Some(TsigError::BadTime), _) => format!("this machine's clock and the server's differ by more than {GSS_TSIG_FUDGE} seconds (BADTIME)"),
        (None, ResponseCode::Refused) => format!(
            "the server refused the update ({}): the account may not change `_vlmcs._tcp.{zone}`: it needs the right to create records in the zone, and a record another account created can only be changed by that account or one with write access to it",
            rcode_name(code)
        ),
        (None, ResponseCode::ServFail) => format!(
            "the server failed to apply the update ({}): Samba answers so when the account may not change `_vlmcs._tcp.{zone}` (where Windows DNS answers REFUSED): it needs the right to create records in the zone, and a record another account created can only be changed by that account or one with write access to it",
            rcode_name(code)
        ),
        (error, code) => DnsError::rejection(code, error, None).to_string(),
    }
}

/// What is wrong with a TKEY record, or the server's TKEY answer.
#[derive(Debug, thiserror::Error)]
pub enum TkeyError {
    #[error("cannot encode the TKEY algorithm: {0}")]
    Algorithm(#[source] ProtoError),
    #[error("a TKEY field is too long")]
    FieldTooLong { length: usize },
    #[error("the TKEY record is truncated")]
    Truncated,
    #[error("the server refused the GSS-TSIG negotiation ({})", rcode_name(*code))]
    Refused { code: ResponseCode },
    #[error("the server's answer to the GSS-TSIG negotiation has no TKEY record")]
    Missing,
    /// The server answered with a TKEY error (RFC 2930 section 2.6, RFC 8945 section 3).
    #[error("{}", tkey_error(*error))]
    Rejected { error: u16 },
}

/// A TKEY error (RFC 2930 section 2.6, RFC 8945 section 3) in words.
fn tkey_error(error: u16) -> String {
    match error {
        16 => "the server rejected the negotiation's signature (TKEY error BADSIG)".into(),
        17 => "the server did not accept the Kerberos ticket (TKEY error BADKEY): its key is not the one the KDC holds for the server principal, or the server does not take GSS-TSIG from this account".into(),
        18 => "this machine's clock and the server's differ too much (TKEY error BADTIME)".into(),
        19 => "the server does not take GSS-API negotiation (TKEY error BADMODE)".into(),
        20 => "the server already has a context of that name (TKEY error BADNAME)".into(),
        other => format!("the server answered the negotiation with TKEY error {other}"),
    }
}

/// `1 reply`, `2 replies`.
fn replies(count: usize) -> String {
    match count {
        1 => "1 reply".to_string(),
        n => format!("{n} replies"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_what_the_account_lacks() {
        let m = gss_rejection(ResponseCode::Refused, None, "corp.example");
        assert!(
            m.contains("REFUSED (5)") && m.contains("`_vlmcs._tcp.corp.example`"),
            "{m}"
        );
        let m = gss_rejection(
            ResponseCode::NotAuth,
            Some(TsigError::BadKey),
            "corp.example",
        );
        assert!(m.contains("BADKEY"), "{m}");
        let m = gss_rejection(ResponseCode::NXRRSet, None, "corp.example");
        assert!(m.contains("prerequisite failed"), "{m}");
    }
}

/// A reply that answers none of the queries sent: left out, and named when no answer comes.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StrayReply {
    #[error("{0} bytes that are not a DNS message")]
    NotDns(usize),
    #[error("a reply with ID {0}, which no query had")]
    UnknownId(u16),
    #[error("a reply with ID {id} about `{name}` {kind}, where that query asked about `{asked_name}` {asked_kind}")]
    OtherQuestion {
        id: u16,
        name: String,
        kind: RecordType,
        asked_name: String,
        asked_kind: RecordType,
    },
    #[error("a reply with ID {0} and no question")]
    NoQuestion(u16),
}
