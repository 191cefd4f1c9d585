//! GSS-TSIG (RFC 3645): a Kerberos security context negotiated with the server through TKEY,
//! each zone's UPDATE signed with the context's MIC over the bytes RFC 8945 signs, and the
//! server's answer verified the same way (or Samba's way, see [`verify_answer`]) before it
//! counts as applied. One context per zone update, deleted at the end.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::{
    make_tsig_record, message_tbs, signed_bitmessage_to_buf, TsigAlgorithm, TSIG,
};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::BinEncodable;
use kmsconf_gssapi::{Credentials, SecurityContext, Step};
use kmsconf_model::dns::{GssTsigCredentials, ZoneUpdate};

use super::protocol::{exchange_all, fqdn, plain, update_answer, update_message};
use super::socket::{TcpLink, TCP_TIMEOUT};
use super::tkey::{self, Mode, Tkey};
use crate::error::dns::{
    DnsError, GssTsigError, SignatureError, GSS_TSIG_FUDGE, GSS_TSIG_MAX_ROUNDS,
};

/// Which convention the server's answer was signed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Convention {
    /// RFC 8945 section 4.3.2: the request MAC with its two-byte length prefix.
    Rfc8945,
    /// Samba (`source4/dns_server/dns_crypto.c`): the request MAC without the prefix.
    Samba,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A message signed with GSS-TSIG: its wire bytes, and the MAC the answer's signature covers.
pub(super) struct Signed {
    pub(super) bytes: Vec<u8>,
    pub(super) mac: Vec<u8>,
}

/// Signs `message` with algorithm `gss-tsig` under `key_name`: `mic` computes the MAC over the
/// bytes RFC 8945 section 4.3.3 defines. The TSIG record is appended with its names
/// uncompressed: Samba finds where the signed part ends by the length of the record encoded
/// that way.
pub(super) fn sign(
    message: &Message,
    key_name: &Name,
    now: u64,
    mic: impl FnOnce(&[u8]) -> Result<Vec<u8>, GssTsigError>,
) -> Result<Signed, GssTsigError> {
    let encoding = GssTsigError::Encode;
    let stub = TSIG::new(
        TsigAlgorithm::Gss,
        now,
        GSS_TSIG_FUDGE,
        Vec::new(),
        message.metadata.id,
        None,
        Vec::new(),
    );
    let data = message_tbs(message, &stub, key_name).map_err(encoding)?;
    let mac = mic(&data)?;
    let record = make_tsig_record(key_name.clone(), stub.set_mac(mac.clone()));
    let mut bytes = message.to_vec().map_err(encoding)?;
    let additionals =
        u16::try_from(message.additionals.len() + 1).map_err(|_| GssTsigError::TooManyRecords)?;
    if bytes.len() < 12 {
        return Err(GssTsigError::NoHeader);
    }
    bytes[10..12].copy_from_slice(&additionals.to_be_bytes());
    bytes.extend(record.to_bytes().map_err(encoding)?);
    Ok(Signed { bytes, mac })
}

/// Verifies the signature of an answer to a request whose MAC was `request_mac`: first as RFC
/// 8945 says, then as Samba signs; `verify` checks a MIC over some bytes. The signature must be
/// of `key_name`, with `gss-tsig`, and within the fudge of `now`.
pub(super) fn verify_answer(
    answer: &[u8],
    request_mac: &[u8],
    key_name: &Name,
    now: u64,
    mut verify: impl FnMut(&[u8], &[u8]) -> bool,
) -> Result<Convention, SignatureError> {
    let (standard, record) = signed_bitmessage_to_buf(answer, Some(request_mac), true)
        .map_err(SignatureError::Unreadable)?;
    let tsig = &record.data;
    if record.name != *key_name || tsig.algorithm != TsigAlgorithm::Gss {
        return Err(SignatureError::OtherKey {
            key: plain(&record.name),
            algorithm: tsig.algorithm.to_name().to_string(),
        });
    }
    if tsig.time.abs_diff(now) > u64::from(tsig.fudge) {
        return Err(SignatureError::Time {
            seconds: tsig.time.abs_diff(now),
            fudge: tsig.fudge,
        });
    }
    if verify(&standard, &tsig.mac) {
        return Ok(Convention::Rfc8945);
    }
    let (unprefixed, _) =
        signed_bitmessage_to_buf(answer, None, true).map_err(SignatureError::Unreadable)?;
    let samba = [request_mac, &unprefixed].concat();
    if verify(&samba, &tsig.mac) {
        return Ok(Convention::Samba);
    }
    Err(SignatureError::Mismatch)
}

/// A context name no other client uses at the same time (RFC 3645 section 4.1.2 leaves the
/// form to the client).
fn key_name() -> Result<Name, DnsError> {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new()
        .hash_one((std::process::id(), SystemTime::now()));
    fqdn(&format!("{random:016x}.kmsconf"))
}

/// `DNS/<the zone's SOA primary name>`, the principal Active Directory gives its DNS servers.
fn default_server_principal(address: SocketAddr, zone: &str) -> Result<String, DnsError> {
    let query = Query::query(fqdn(zone)?, RecordType::SOA);
    let answers = exchange_all(address, &[query])?;
    answers
        .first()
        .and_then(|a| {
            a.answers.iter().find_map(|r| match &r.data {
                RData::SOA(soa) => Some(format!("DNS/{}", plain(&soa.mname))),
                _ => None,
            })
        })
        .ok_or_else(|| {
            GssTsigError::NoSoa {
                zone: zone.to_string(),
            }
            .into()
        })
}

/// Sends one zone's UPDATE signed with GSS-TSIG; `Ok` only when the server answered NOERROR
/// with a signature of the negotiated context that verifies.
pub(super) fn send_update(
    address: SocketAddr,
    update: &ZoneUpdate,
    gss: &GssTsigCredentials,
) -> Result<String, DnsError> {
    let server = match &gss.server_principal {
        Some(p) => p.clone(),
        None => default_server_principal(address, &update.zone)?,
    };
    let (context, first) = begin(gss, &server)?;
    let who = context.principal().to_string();
    let server = context.server().to_string();
    let mut session = Session::open(address, context, first)?;
    let result = session.update(update);
    session.delete();
    result.map_err(|e| {
        GssTsigError::Update {
            who,
            server,
            source: Box::new(e),
        }
        .into()
    })
}

/// The context with `server` and its first step, whose token goes in the first TKEY query:
/// the credentials (from a keytab: an AS exchange with the KDC) and the service ticket (a TGS
/// exchange) are MIT's GSS-API library's requests, under its own timeouts, so they run in a
/// thread of their own given the time of a DNS exchange, [`TCP_TIMEOUT`]. A thread still
/// waiting then is left to end by itself: it owns its credentials and context, and what it
/// returns is dropped unread.
fn begin(gss: &GssTsigCredentials, server: &str) -> Result<(SecurityContext, Step), GssTsigError> {
    let (owned, target) = (gss.clone(), server.to_string());
    let started = crate::deadline::within("gss-tsig", TCP_TIMEOUT, move || {
        let credentials = credentials(&owned)?;
        let who = credentials.principal().to_string();
        let refused = |source| GssTsigError::Context {
            who: who.clone(),
            server: target.clone(),
            source,
        };
        let mut context = credentials.context(&target).map_err(refused)?;
        let shown = context.server().to_string();
        let first = context.step(None).map_err(|source| GssTsigError::Context {
            who: who.clone(),
            server: shown,
            source,
        })?;
        Ok((context, first))
    })
    .map_err(GssTsigError::Thread)?;
    started.unwrap_or_else(|| {
        Err(GssTsigError::KdcLate {
            principal: gss.principal.clone(),
            server: server.to_string(),
            seconds: TCP_TIMEOUT.as_secs(),
        })
    })
}

fn credentials(gss: &GssTsigCredentials) -> Result<Credentials, GssTsigError> {
    let lib = kmsconf_gssapi::load().map_err(GssTsigError::Unavailable)?;
    lib.credentials(gss.principal.as_deref(), gss.keytab.as_deref())
        .map_err(|source| GssTsigError::Credentials {
            principal: gss.principal.clone(),
            keytab: gss.keytab.clone(),
            source,
        })
}

/// One TCP connection with a negotiated context.
struct Session {
    link: TcpLink,
    context: SecurityContext,
    key_name: Name,
}

impl Session {
    /// Negotiates the context, whose `first` step GSS-API has taken: TKEY queries in mode 3
    /// while GSS-API has a token to send (the later steps need no KDC).
    fn open(address: SocketAddr, context: SecurityContext, first: Step) -> Result<Self, DnsError> {
        let (who, server) = (
            context.principal().to_string(),
            context.server().to_string(),
        );
        let refused = |source| GssTsigError::Context {
            who: who.clone(),
            server: server.clone(),
            source,
        };
        let mut step = first;
        let link = TcpLink::connect(address)?;
        let mut session = Self {
            link,
            context,
            key_name: key_name()?,
        };
        for _ in 0..GSS_TSIG_MAX_ROUNDS {
            let (token, last) = match step {
                Step::Complete(token) if token.is_empty() => return Ok(session),
                Step::Complete(token) => (token, true),
                Step::Continue(token) => (token, false),
            };
            let answer = session.tkey(Mode::Gssapi, token)?;
            if last {
                return Ok(session);
            }
            step = session.context.step(Some(&answer.key)).map_err(refused)?;
        }
        Err(GssTsigError::Unfinished.into())
    }

    /// One TKEY query and its answer's TKEY record.
    fn tkey(&mut self, mode: Mode, token: Vec<u8>) -> Result<Tkey, DnsError> {
        let now = unix_now();
        let request = Tkey::request(mode, u32::try_from(now).unwrap_or(u32::MAX), token);
        let message = tkey::query(&self.key_name, &request)?;
        let bytes = if mode == Mode::Delete {
            let context = &self.context;
            sign(&message, &self.key_name, now, |data| {
                context.sign(data).map_err(GssTsigError::Mic)
            })?
            .bytes
        } else {
            message.to_vec().map_err(|source| DnsError::Encode {
                what: "the TKEY query",
                source,
            })?
        };
        let answer = self.link.exchange(&bytes)?;
        let answer = Message::from_vec(&answer).map_err(GssTsigError::MalformedTkey)?;
        if answer.metadata.id != message.metadata.id {
            return Err(DnsError::OtherMessage);
        }
        Ok(tkey::answer(&answer, &self.key_name)?)
    }

    /// Sends the zone's UPDATE signed with the context and checks the signed answer.
    fn update(&mut self, update: &ZoneUpdate) -> Result<String, DnsError> {
        let message = update_message(update)?;
        let context = &self.context;
        let signed = sign(&message, &self.key_name, unix_now(), |data| {
            context.sign(data).map_err(GssTsigError::SignUpdate)
        })?;
        let answer_bytes = self
            .link
            .exchange(&signed.bytes)
            .map_err(|e| DnsError::from(e).unknown_outcome())?;
        let answer = update_answer(&answer_bytes, message.metadata.id)?;
        let code = answer.metadata.response_code;
        let tsig_error = answer.signature().and_then(|s| s.data.error);
        if code != ResponseCode::NoError || tsig_error.is_some() {
            return Err(GssTsigError::Rejected {
                code,
                tsig: tsig_error,
                zone: update.zone.clone(),
            }
            .into());
        }
        let convention = verify_answer(
            &answer_bytes,
            &signed.mac,
            &self.key_name,
            unix_now(),
            |data, mic| self.context.verify(data, mic).is_ok(),
        )
        .map_err(GssTsigError::Unverified)?;
        tracing::debug!(zone = %update.zone, ?convention, "the GSS-TSIG signature of the answer verified");
        let n = update.remove.len() + update.add.len();
        Ok(format!(
            "{} record change{} in one GSS-TSIG-signed update of `_vlmcs._tcp.{}`",
            n,
            if n == 1 { "" } else { "s" },
            update.zone
        ))
    }

    /// Asks the server to forget the context (TKEY mode 5, signed); the local context is deleted
    /// when the session is dropped. A failure only shows at debug level: the update's outcome
    /// is known by then, and the server expires the context by itself.
    fn delete(&mut self) {
        match self.tkey(Mode::Delete, Vec::new()) {
            Ok(_) => tracing::debug!("GSS-TSIG context deleted on the server"),
            Err(e) => tracing::debug!(%e, "the server did not delete the GSS-TSIG context"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer signed with a stand-in MIC that is the signed bytes themselves, so the test
    /// sees which bytes each convention covers.
    fn answer_signed(key: &Name, request_mac: &[u8], convention: Convention) -> Vec<u8> {
        let mut answer = Message::query();
        answer.metadata.id = 4242;
        sign(&answer, key, 1_000, |data| {
            Ok(match convention {
                Convention::Rfc8945 => {
                    let prefix = (request_mac.len() as u16).to_be_bytes();
                    [&prefix[..], request_mac, data].concat()
                }
                Convention::Samba => [request_mac, data].concat(),
            })
        })
        .expect("sign")
        .bytes
    }

    #[test]
    fn an_answer_verifies_either_way_and_only_with_the_right_request_mac() {
        let key = Name::from_ascii("k1.kmsconf.").expect("name");
        let mac = vec![7u8; 28];
        let same = |data: &[u8], mic: &[u8]| data == mic;
        for convention in [Convention::Rfc8945, Convention::Samba] {
            let answer = answer_signed(&key, &mac, convention);
            assert_eq!(
                verify_answer(&answer, &mac, &key, 1_100, same).expect("verifies"),
                convention
            );
            let e = verify_answer(&answer, &[8u8; 28], &key, 1_100, same).expect_err("other MAC");
            assert!(matches!(e, SignatureError::Mismatch), "{e}");
            assert!(e.to_string().contains("does not verify"), "{e}");
            let e = verify_answer(&answer, &mac, &key, 2_000, same).expect_err("late");
            assert!(
                matches!(e, SignatureError::Time { seconds: 1_000, .. }),
                "{e}"
            );
            assert!(e.to_string().contains("seconds away"), "{e}");
            let other = Name::from_ascii("k2.kmsconf.").expect("name");
            let e = verify_answer(&answer, &mac, &other, 1_100, same).expect_err("other key");
            assert!(
                e.to_string().contains("not by the negotiated context"),
                "{e}"
            );
        }
        let mut unsigned = Message::query();
        unsigned.metadata.id = 1;
        let bytes = unsigned.to_vec().expect("encode");
        let e = verify_answer(&bytes, &mac, &key, 1_000, same).expect_err("unsigned");
        assert!(e.to_string().contains("no readable signature"), "{e}");
    }

    /// The update of the captured exchange, as kmsconf planned it.
    fn captured_update() -> ZoneUpdate {
        let record = |weight: u16| kmsconf_model::dns::SrvRecord {
            priority: 0,
            weight,
            port: 1688,
            target: "kms01.corp.example".into(),
            ttl: 3600,
        };
        ZoneUpdate {
            zone: "corp.example".into(),
            expected: vec![record(80)],
            remove: vec![record(80)],
            add: vec![record(95)],
            tsig: None,
            gss_tsig: None,
        }
    }

    #[test]
    fn the_captured_update_is_signed_over_the_same_bytes_and_samba_answer_verifies_its_way() {
        use super::super::tkey::captured;
        let sent = captured("update_request");
        let parsed = Message::from_vec(&sent).expect("update parses");
        let tsig = parsed.signature().expect("signed");
        let mut message = update_message(&captured_update()).expect("message");
        message.metadata.id = parsed.metadata.id;
        let mac = captured("update_mac");
        let signed = sign(&message, &tsig.name, tsig.data.time, |data| {
            assert_eq!(
                data,
                captured("signed_data"),
                "the bytes gss_get_mic signed"
            );
            Ok(mac.clone())
        })
        .expect("sign");
        assert_eq!(signed.bytes, sent, "byte for byte what Samba accepted");

        let answer = captured("update_answer");
        let answered = Message::from_vec(&answer).expect("answer parses");
        let time = answered
            .signature()
            .expect("Samba signs its answer")
            .data
            .time;
        let samba_signed = captured("answer_signed_data");
        let mut tried = Vec::new();
        let convention = verify_answer(&answer, &mac, &tsig.name, time, |data, _| {
            tried.push(data.to_vec());
            data == samba_signed
        });
        assert_eq!(convention.expect("verifies"), Convention::Samba);
        assert_eq!(tried.len(), 2, "RFC 8945's bytes first, then Samba's");
        assert_eq!(
            tried[0][..2],
            [0, 28],
            "RFC 8945 prefixes the request MAC's length"
        );
        assert_eq!(tried[0][2..], tried[1][..], "and is otherwise the same");
    }
}
