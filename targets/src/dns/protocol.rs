//! The DNS wire protocol as kmsconf speaks it: query and UPDATE messages (built, signed and
//! parsed by hickory-proto), TSIG signing and verification, and the exchanges: all queries at
//! once over UDP with retries and TCP for truncated answers, each UPDATE over TCP.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm as HickoryAlgorithm;
use hickory_proto::rr::rdata::SRV;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
use kmsconf_model::config::TsigAlgorithm;
use kmsconf_model::dns::{srv_name, SrvRecord, TsigCredentials, ZoneUpdate};

use super::socket::{tcp_exchange, tcp_exchange_by, UdpLink};
use crate::error::dns::{DnsError, StrayReply, TSIG_FUDGE};

/// How long each UDP try waits for the answers still missing; the last one ends the wait.
const UDP_TRIES: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(2),
];
/// The UDP payload size kmsconf offers (EDNS), the value DNS Flag Day 2020 recommends.
const UDP_PAYLOAD: u16 = 1232;

/// A name as hickory takes it: fully qualified.
pub(super) fn fqdn(name: &str) -> Result<Name, DnsError> {
    Name::from_ascii(format!("{}.", name.trim_end_matches('.'))).map_err(|source| DnsError::Name {
        name: name.to_string(),
        source,
    })
}

/// A name as kmsconf keeps it: lowercase, without the trailing dot.
pub(super) fn plain(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

/// Sends every query at once over one UDP socket and collects the answers by ID, sending again
/// what is still missing; a truncated answer is asked again over TCP. One answer per query.
pub(super) fn exchange_all(
    address: SocketAddr,
    queries: &[Query],
) -> Result<Vec<Message>, DnsError> {
    exchange_all_by(address, queries, None)
}

/// [`exchange_all`], ended by `deadline` too where there is one: each UDP try waits at most
/// until then, no try starts after it, and a truncated answer's TCP exchange ends by it.
pub(super) fn exchange_all_by(
    address: SocketAddr,
    queries: &[Query],
    deadline: Option<Instant>,
) -> Result<Vec<Message>, DnsError> {
    let links = [UdpLink::connect(address)?, UdpLink::open(address)?];
    let (ids, messages) = encode_queries(queries)?;
    let collected = collect_over_udp(&links, queries, &ids, &messages, deadline)?;
    let mut out = Vec::new();
    for (i, answer) in collected.answers.into_iter().enumerate() {
        let Some(answer) = answer else {
            if collected.cut {
                return Err(DnsError::Deadline {
                    address,
                    tries: collected.tries,
                });
            }
            return Err(no_answer(address, collected.stray, links[1].foreign()));
        };
        if answer.metadata.truncation {
            tracing::debug!(%address, "answer truncated over UDP; asking again over TCP");
            let bytes = tcp_exchange_by(address, &messages[i], deadline)?;
            let mut slot = [None];
            let _ = match_answer(&bytes, &queries[i..=i], &ids[i..=i], &mut slot);
            let [full] = slot;
            out.push(full.ok_or(DnsError::Truncated)?);
        } else {
            out.push(answer);
        }
    }
    Ok(out)
}

/// Each query as an encoded message with an ID of its own; the IDs in the same order.
fn encode_queries(queries: &[Query]) -> Result<(Vec<u16>, Vec<Vec<u8>>), DnsError> {
    let mut ids = Vec::new();
    let messages: Vec<Vec<u8>> = queries
        .iter()
        .map(|q| {
            let message = query_message(q, &ids);
            ids.push(message.metadata.id);
            message.to_vec().map_err(|source| DnsError::Encode {
                what: "a query",
                source,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((ids, messages))
}

/// Why no answer came over UDP: nothing came back, replies that answered no query did, or
/// replies came from another address or port than the server's.
fn no_answer(
    address: SocketAddr,
    stray: Option<StrayReply>,
    foreign: Option<(usize, SocketAddr)>,
) -> DnsError {
    let seconds = UDP_TRIES.iter().sum::<Duration>().as_secs();
    let tries = UDP_TRIES.len();
    match (foreign, stray) {
        (Some((count, from)), _) => DnsError::ForeignAnswers {
            address,
            seconds,
            tries,
            count,
            from,
        },
        (None, Some(stray)) => DnsError::StrayAnswer {
            address,
            seconds,
            tries,
            stray,
        },
        (None, None) => DnsError::NoAnswer {
            address,
            seconds,
            tries,
        },
    }
}

/// The UDP tries: each sends the queries still unanswered and waits its time for their answers,
/// the first over the connected socket of `links` (a closed port is said at once), the others
/// over the open one (a reply from another address or port is seen, and counted).
/// No try starts after `deadline`, and none waits past it.
fn collect_over_udp(
    links: &[UdpLink; 2],
    queries: &[Query],
    ids: &[u16],
    messages: &[Vec<u8>],
    deadline: Option<Instant>,
) -> Result<Collected, DnsError> {
    let mut answers: Vec<Option<Message>> = vec![None; queries.len()];
    let mut stray = None;
    let mut tries = 0;
    let mut buffer = vec![0u8; 65535];
    let passed = || deadline.is_some_and(|d| Instant::now() >= d);
    for (n, wait) in UDP_TRIES.into_iter().enumerate() {
        if passed() {
            break;
        }
        let link = &links[usize::from(n > 0)];
        for (i, bytes) in messages.iter().enumerate() {
            if answers[i].is_none() {
                link.send(bytes)?;
            }
        }
        tries += 1;
        let until = Instant::now() + wait;
        let until = deadline.map_or(until, |d| until.min(d));
        while answers.iter().any(Option::is_none) {
            let Some(bytes) = link.receive(&mut buffer, until)? else {
                break;
            };
            if let Err(what) = match_answer(bytes, queries, ids, &mut answers) {
                stray.get_or_insert(what);
            }
        }
        if answers.iter().all(Option::is_some) {
            break;
        }
    }
    let cut = answers.iter().any(Option::is_none) && passed();
    Ok(Collected {
        answers,
        stray,
        tries,
        cut,
    })
}

/// What the UDP tries collected: `None` where no answer came; what the first reply that
/// answered no query was; how many tries went out; whether the deadline ended them.
struct Collected {
    answers: Vec<Option<Message>>,
    stray: Option<StrayReply>,
    tries: usize,
    cut: bool,
}

/// A non-recursive query with EDNS, with an ID none of `taken` has.
fn query_message(query: &Query, taken: &[u16]) -> Message {
    let mut message = Message::query();
    while taken.contains(&message.metadata.id) {
        message = Message::query();
    }
    message.metadata.recursion_desired = false;
    message.add_query(query.clone());
    let mut edns = Edns::new();
    edns.set_max_payload(UDP_PAYLOAD);
    message.edns = Some(edns);
    message
}

/// Files an answer under the query it answers (same ID and question); anything else is left
/// out, and said what it was. A second answer to a query is left out silently (a resend's).
fn match_answer(
    bytes: &[u8],
    queries: &[Query],
    ids: &[u16],
    answers: &mut [Option<Message>],
) -> Result<(), StrayReply> {
    let message = Message::from_vec(bytes).map_err(|_| StrayReply::NotDns(bytes.len()))?;
    let id = message.metadata.id;
    let i = ids
        .iter()
        .position(|x| *x == id)
        .ok_or(StrayReply::UnknownId(id))?;
    let asked = &queries[i];
    match message.queries.first() {
        Some(q)
            if q.query_type() == asked.query_type() && plain(q.name()) == plain(asked.name()) =>
        {
            if answers[i].is_none() {
                answers[i] = Some(message);
            }
            Ok(())
        }
        Some(q) => Err(StrayReply::OtherQuestion {
            id,
            name: plain(q.name()),
            kind: q.query_type(),
            asked_name: plain(asked.name()),
            asked_kind: asked.query_type(),
        }),
        None => Err(StrayReply::NoQuestion(id)),
    }
}

/// The UPDATE for one zone, unsigned: zone section, the RRset as planned as prerequisite
/// (RFC 2136 2.4.2 "RRset exists (value dependent)", or 2.4.3 "RRset does not exist" when it
/// was empty), then the deletions (2.5.4) and additions (2.5.1).
pub fn update_message(update: &ZoneUpdate) -> Result<Message, DnsError> {
    let zone = fqdn(&update.zone)?;
    let owner = fqdn(&srv_name(&update.zone))?;
    let mut message = Message::query();
    message.metadata.op_code = OpCode::Update;
    message.metadata.recursion_desired = false;
    let mut zone_query = Query::query(zone, RecordType::SOA);
    zone_query.set_query_class(DNSClass::IN);
    message.add_zone(zone_query);
    let record = |r: &SrvRecord, class: DNSClass, ttl: u32| -> Result<Record, DnsError> {
        let srv = SRV::new(r.priority, r.weight, r.port, fqdn(&r.target)?);
        let mut record = Record::from_rdata(owner.clone(), ttl, RData::SRV(srv));
        record.dns_class = class;
        Ok(record)
    };
    if update.expected.is_empty() {
        let mut absent = Record::update0(owner.clone(), 0, RecordType::SRV);
        absent.dns_class = DNSClass::NONE;
        message.add_pre_requisite(absent);
    }
    for r in &update.expected {
        message.add_pre_requisite(record(r, DNSClass::IN, 0)?);
    }
    for r in &update.remove {
        message.add_update(record(r, DNSClass::NONE, 0)?);
    }
    for r in &update.add {
        message.add_update(record(r, DNSClass::IN, r.ttl)?);
    }
    Ok(message)
}

fn signer(tsig: &TsigCredentials) -> Result<TSigner, DnsError> {
    let algorithm = match tsig.algorithm {
        TsigAlgorithm::HmacSha256 => HickoryAlgorithm::HmacSha256,
        TsigAlgorithm::HmacSha384 => HickoryAlgorithm::HmacSha384,
        TsigAlgorithm::HmacSha512 => HickoryAlgorithm::HmacSha512,
    };
    TSigner::new(
        tsig.secret.bytes().to_vec(),
        algorithm,
        fqdn(&tsig.name)?,
        TSIG_FUDGE,
    )
    .map_err(|source| DnsError::Signer {
        key: tsig.name.clone(),
        source,
    })
}

/// Sends one zone's UPDATE over TCP; `Ok` only when the server answered NOERROR and, for a
/// signed update, signed its answer with the same key.
pub(super) fn send_update(address: SocketAddr, update: &ZoneUpdate) -> Result<String, DnsError> {
    let mut message = update_message(update)?;
    let mut verifier = match &update.tsig {
        Some(tsig) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            message
                .finalize(&signer(tsig)?, now)
                .map_err(DnsError::Sign)?
        }
        None => None,
    };
    let bytes = message.to_vec().map_err(|source| DnsError::Encode {
        what: "the update",
        source,
    })?;
    let answer_bytes =
        tcp_exchange(address, &bytes).map_err(|e| DnsError::from(e).unknown_outcome())?;
    let answer = update_answer(&answer_bytes, message.metadata.id)?;
    let key = update.tsig.as_ref().map(|t| t.name.as_str());
    let tsig_error = answer.signature().and_then(|s| s.data.error);
    let code = answer.metadata.response_code;
    if code != ResponseCode::NoError || tsig_error.is_some() {
        return Err(DnsError::rejection(code, tsig_error, key));
    }
    if let Some(verifier) = verifier.as_mut() {
        verifier
            .verify(&answer_bytes)
            .map_err(|source| DnsError::Unverified {
                key: key.unwrap_or_default().to_string(),
                source,
            })?;
    }
    let n = update.remove.len() + update.add.len();
    Ok(format!(
        "{} record change{} in one update of `{}`",
        n,
        if n == 1 { "" } else { "s" },
        srv_name(&update.zone)
    ))
}

/// The server's answer to the update with ID `id`.
pub(super) fn update_answer(bytes: &[u8], id: u16) -> Result<Message, DnsError> {
    let answer = Message::from_vec(bytes).map_err(|e| DnsError::Malformed(e).unknown_outcome())?;
    if answer.metadata.id != id {
        return Err(DnsError::OtherMessage);
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::tsig::TsigError;
    use kmsconf_engine::secret::Secret;
    use kmsconf_model::keys::TsigSecret;

    fn srv(priority: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight: 100,
            port,
            target: target.into(),
            ttl: 3600,
        }
    }

    fn update(expected: Vec<SrvRecord>) -> ZoneUpdate {
        ZoneUpdate {
            zone: "corp.example".into(),
            remove: expected.clone(),
            expected,
            add: vec![srv(0, 1689, "kms01.corp.example")],
            tsig: None,
            gss_tsig: None,
        }
    }

    #[test]
    fn an_update_names_the_zone_requires_the_planned_rrset_and_then_swaps_records() {
        let m = update_message(&update(vec![srv(0, 1688, "kms01.corp.example")])).expect("message");
        assert_eq!(m.metadata.op_code, OpCode::Update);
        assert_eq!(m.zones().len(), 1);
        assert_eq!(m.zones()[0].query_type(), RecordType::SOA);
        assert_eq!(plain(m.zones()[0].name()), "corp.example");
        let pre = m.prerequisites();
        assert_eq!(pre.len(), 1);
        assert_eq!((pre[0].dns_class, pre[0].ttl), (DNSClass::IN, 0));
        assert_eq!(plain(&pre[0].name), "_vlmcs._tcp.corp.example");
        let ups = m.updates();
        assert_eq!(ups.len(), 2);
        assert_eq!((ups[0].dns_class, ups[0].ttl), (DNSClass::NONE, 0));
        assert_eq!((ups[1].dns_class, ups[1].ttl), (DNSClass::IN, 3600));
        match &ups[1].data {
            RData::SRV(s) => assert_eq!(
                (s.port, plain(&s.target).as_str()),
                (1689, "kms01.corp.example")
            ),
            other => panic!("not an SRV record: {other:?}"),
        }
        // the encoded message parses back to the same sections
        let back = Message::from_vec(&m.to_vec().expect("encode")).expect("decode");
        assert_eq!(back.updates().len(), 2);
    }

    #[test]
    fn an_empty_rrset_is_required_to_be_absent() {
        let m = update_message(&update(vec![])).expect("message");
        let pre = m.prerequisites();
        assert_eq!(pre.len(), 1);
        assert_eq!(pre[0].dns_class, DNSClass::NONE);
        assert_eq!(pre[0].record_type(), RecordType::SRV);
        assert_eq!(m.updates().len(), 1);
    }

    #[test]
    fn a_signed_update_carries_a_tsig_the_key_verifies() {
        let secret =
            TsigSecret::parse(&Secret::new("c2VjcmV0LWtleS1ieXRlcy1zZWNyZXQta2V5LWJ5dGU="))
                .expect("b64");
        let tsig = TsigCredentials {
            name: "kmsconf-key".into(),
            algorithm: TsigAlgorithm::HmacSha256,
            secret,
        };
        let signer = signer(&tsig).expect("signer");
        let mut m = update_message(&update(vec![])).expect("message");
        m.finalize(&signer, 1_700_000_000).expect("sign");
        let sig = m.signature().expect("signed");
        assert_eq!(plain(&sig.name), "kmsconf-key");
        let bytes = m.to_vec().expect("encode");
        signer
            .verify_message_byte(&bytes, None, true)
            .expect("the key verifies its own signature");
    }

    #[test]
    fn rejections_name_the_cause() {
        let rejection = |code, tsig, key| DnsError::rejection(code, tsig, key).to_string();
        let bad = rejection(ResponseCode::NotAuth, Some(TsigError::BadSig), Some("k"));
        assert!(bad.contains("BADSIG") && bad.contains("`k`"), "{bad}");
        for (error, name) in [
            (TsigError::BadKey, "BADKEY"),
            (TsigError::BadTime, "BADTIME"),
        ] {
            let m = rejection(ResponseCode::NotAuth, Some(error), Some("k"));
            assert!(
                m.starts_with("TSIG authentication failed") && m.contains(name),
                "{m}"
            );
        }
        let notauth = rejection(ResponseCode::NotAuth, None, Some("k"));
        assert!(notauth.contains("NOTAUTH (9)"), "{notauth}");
        let notzone = rejection(ResponseCode::NotZone, None, Some("k"));
        assert!(notzone.contains("NOTZONE (10)"), "{notzone}");
        let refused = rejection(ResponseCode::Refused, None, Some("k"));
        assert!(refused.contains("REFUSED (5)"), "{refused}");
        let stale = rejection(ResponseCode::NXRRSet, None, Some("k"));
        assert!(
            stale.contains("prerequisite failed") && stale.contains("NXRRSET (8)"),
            "{stale}"
        );
    }
}
