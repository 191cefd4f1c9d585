//! What can go wrong talking DNS to a server: the sockets, the messages, and what the server
//! answered. The crate's [`Error::Dns`](crate::Error::Dns) carries it with the server's name;
//! each message reads after `DNS server `SERVER`: `.

use std::net::SocketAddr;

use hickory_proto::dnssec::DnsSecError;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::serialize::binary::DecodeError;
use hickory_proto::ProtoError;

use super::gss_tsig::GssTsigError;
use super::protocol::{rcode_name, TSIG_FUDGE};
use super::socket::SocketError;
use super::tkey::TkeyError;

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
    pub(super) fn rejection(
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
    pub(super) fn unknown_outcome(self) -> Self {
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
