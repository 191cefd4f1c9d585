//! The DNS server as a target: reads the `_vlmcs._tcp` SRV RRsets (and, where asked, the A/AAAA
//! records of their targets) in one set of queries, and sends each zone's changes as one
//! TSIG-signed RFC 2136 UPDATE. Its apply lock is a no-op (see the `Target` impl).
//!
//! hickory-proto builds, signs and parses the messages; the I/O is plain blocking sockets:
//! queries go over UDP (all sent at once, retried, TCP when an answer is truncated), updates
//! over TCP, where a lost answer cannot turn into a second, different update. An update counts
//! as applied only when the server answers NOERROR with a TSIG signature that verifies.
//!
//! This module is the target and what answers mean for discovery; `protocol` holds the messages
//! and the exchanges, `socket` the blocking I/O they run on, and `lookup` the plain lookups a
//! client of another service makes (the domain controller's SRV records).

mod gss_tsig;
pub mod lookup;
mod protocol;
mod socket;
mod tkey;

use std::net::SocketAddr;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::SRV;
use hickory_proto::rr::{RData, RecordType};
use kmsconf_engine::lock::{LockGuard, LockHolder};
use kmsconf_engine::target::{ChangeStatus, Discovery, Target};
use kmsconf_model::dns::{srv_name, DnsState, SrvRecord, ZoneUpdate, SRV_PREFIX};
use kmsconf_model::ops::EntryOp;
use kmsconf_model::EntryState;

pub use crate::error::dns::{
    DnsError, GssTsigError, SignatureError, SocketError, StrayReply, TkeyError,
};
use crate::Error;
pub use protocol::update_message;
use protocol::{exchange_all, fqdn, plain, send_update};

/// A DNS server, and the names discovery reads from it.
pub struct DnsServer {
    server: String,
    zones: Vec<String>,
    targets: Vec<String>,
}

impl DnsServer {
    /// `server` is `host:port`; `zones` the zones whose `_vlmcs._tcp` RRset is read; `targets`
    /// the names whose A/AAAA records are read (empty unless `check_targets`).
    pub fn new(server: &str, zones: Vec<String>, targets: Vec<String>) -> Self {
        Self {
            server: server.to_string(),
            zones,
            targets,
        }
    }

    fn error(&self, source: impl Into<DnsError>) -> Error {
        Error::Dns {
            server: self.server.clone(),
            source: Box::new(source.into()),
        }
    }

    fn address(&self) -> Result<SocketAddr, Error> {
        socket::resolve(&self.server).map_err(|e| self.error(e))
    }
}

/// One question of the discovery query set.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Question {
    /// The zone's SOA: proves the server is authoritative for exactly this zone.
    Apex(String),
    Srv(String),
    Address(String, RecordType),
}

impl Question {
    fn query(&self) -> Result<Query, DnsError> {
        let (name, kind) = match self {
            Self::Apex(zone) => (zone.clone(), RecordType::SOA),
            Self::Srv(zone) => (srv_name(zone), RecordType::SRV),
            Self::Address(name, kind) => (name.clone(), *kind),
        };
        Ok(Query::query(fqdn(&name)?, kind))
    }
}

impl DnsServer {
    /// Reads the zones' SOA and `_vlmcs._tcp` SRV RRsets (and the targets' A/AAAA records) in
    /// one set of queries.
    pub fn read(&self) -> Result<DnsState, Error> {
        let mut questions = Vec::new();
        for zone in &self.zones {
            questions.push(Question::Apex(zone.clone()));
            questions.push(Question::Srv(zone.clone()));
        }
        for name in &self.targets {
            questions.push(Question::Address(name.clone(), RecordType::A));
            questions.push(Question::Address(name.clone(), RecordType::AAAA));
        }
        let queries = questions
            .iter()
            .map(Question::query)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error(e))?;
        let answers = exchange_all(self.address()?, &queries).map_err(|e| self.error(e))?;
        let mut state = DnsState::default();
        for (question, answer) in questions.iter().zip(answers) {
            read_answer(&mut state, question, &answer).map_err(|e| self.error(e))?;
        }
        tracing::debug!(server = %self.server, zones = state.zones.len(), "discovered DNS");
        Ok(state)
    }

    /// Sends each zone update (one message each); one outcome per update. Once the Kerberos
    /// KDC has given no GSS-TSIG ticket in time, the zones after it are not tried: each would
    /// wait as long again for the same KDC.
    pub fn send(&self, batch: &[ZoneUpdate]) -> Result<Vec<ChangeStatus>, Error> {
        let address = self.address()?;
        let mut kdc_late: Option<&str> = None;
        let mut outcomes = Vec::with_capacity(batch.len());
        for update in batch {
            let outcome = match kdc_late {
                Some(zone) => Err(format!(
                    "not sent: the Kerberos KDC gave no GSS-TSIG ticket in time for zone `{zone}`, tried first"
                )),
                None => send(address, update).map_err(|e| {
                    if matches!(e, DnsError::GssTsig(GssTsigError::KdcLate { .. })) {
                        kdc_late = Some(&update.zone);
                    }
                    e.to_string()
                }),
            };
            outcomes.push(match outcome {
                Ok(detail) => ChangeStatus::Applied {
                    detail: Some(detail),
                },
                Err(message) => ChangeStatus::Failed {
                    code: None,
                    message: format!(
                        "DNS server `{}`, zone `{}`: {message}",
                        self.server, update.zone
                    ),
                },
            });
        }
        Ok(outcomes)
    }
}

/// One zone's UPDATE, signed as the config says.
fn send(address: SocketAddr, update: &ZoneUpdate) -> Result<String, DnsError> {
    match &update.gss_tsig {
        Some(gss) => gss_tsig::send_update(address, update, gss),
        None => send_update(address, update),
    }
}

/// The `_vlmcs._tcp` SRV RRset of `zone` on `server` (`host:port` as `[dns] server` is held,
/// or a bare host for port 53), sorted: what KMS clients of that zone find. Checks, as discovery does, that the server is authoritative for the zone.
pub fn query_srv(server: &str, zone: &str) -> Result<Vec<SrvRecord>, Error> {
    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
    let dns = DnsServer::new(server, vec![zone.clone()], Vec::new());
    let mut state = dns.read()?;
    Ok(state.zones.remove(&zone).unwrap_or_default())
}

/// A DNS server is a target with a no-op apply lock: it is shared, and each UPDATE's
/// prerequisite (the RRset as the plan saw it) is what guards it against a concurrent change.
impl Target for DnsServer {
    type State = EntryState;
    type Operation = EntryOp;
    type Error = Error;

    fn discover(&self) -> Result<Discovery<EntryState>, Error> {
        Ok(Discovery {
            state: EntryState::DnsServer(self.read()?),
            created: false,
        })
    }

    /// Sends all of a zone's record changes in one atomic UPDATE; each change gets its zone's
    /// outcome.
    fn execute(&self, batch: &[EntryOp]) -> Result<Vec<ChangeStatus>, Error> {
        let (updates, zone_of) = zone_updates(batch);
        let answers = if updates.is_empty() {
            Vec::new()
        } else {
            self.send(&updates)?
        };
        Ok(zone_of
            .into_iter()
            .map(|zone| match zone.and_then(|z| answers.get(z)) {
                Some(answer) => answer.clone(),
                None => ChangeStatus::Failed {
                    code: None,
                    message: format!(
                        "DNS server `{}`: a KMS host operation was sent to a DNS server",
                        self.server
                    ),
                },
            })
            .collect())
    }

    fn lock(&self, _holder: &LockHolder) -> Result<LockGuard, Error> {
        Ok(LockGuard::new(()))
    }

    fn force_unlock(&self, _lock_id: &str) -> Result<LockHolder, Error> {
        Err(self.error(DnsError::NoLock))
    }
}

/// Groups record changes by zone into one update each, in the order zones first appear, and
/// says for each operation which update carries it (`None` for what is not a record change).
fn zone_updates(batch: &[EntryOp]) -> (Vec<ZoneUpdate>, Vec<Option<usize>>) {
    let mut updates: Vec<ZoneUpdate> = Vec::new();
    let mut zone_of = Vec::with_capacity(batch.len());
    for op in batch {
        let EntryOp::Srv(change) = op else {
            zone_of.push(None);
            continue;
        };
        let i = match updates.iter().position(|u| u.zone == change.zone) {
            Some(i) => i,
            None => {
                updates.push(ZoneUpdate {
                    zone: change.zone.clone(),
                    expected: change.expected.clone(),
                    remove: Vec::new(),
                    add: Vec::new(),
                    tsig: change.tsig.clone(),
                    gss_tsig: change.gss_tsig.clone(),
                });
                updates.len() - 1
            }
        };
        updates[i].remove.extend(change.remove.iter().cloned());
        updates[i].add.extend(change.add.iter().cloned());
        zone_of.push(Some(i));
    }
    (updates, zone_of)
}

/// `kmsconf doctor`'s `dns-srv` lookups, through [`query_srv`] on one server.
pub struct SrvResolver {
    server: String,
}

impl SrvResolver {
    /// `server` as [`query_srv`] takes it.
    pub fn new(server: &str) -> Self {
        Self {
            server: server.to_string(),
        }
    }
}

impl SrvResolver {
    /// The SRV records of `name` (`_vlmcs._tcp.ZONE`), as a KMS client's lookup would find them.
    pub fn lookup_srv(&self, name: &str) -> Result<Vec<SrvRecord>, Error> {
        let zone = name
            .trim_end_matches('.')
            .strip_prefix(&format!("{SRV_PREFIX}."))
            .unwrap_or(name);
        query_srv(&self.server, zone)
    }
}

/// Records what one answer says into `state`, or explains why it cannot be used.
fn read_answer(
    state: &mut DnsState,
    question: &Question,
    answer: &Message,
) -> Result<(), DnsError> {
    let code = answer.metadata.response_code;
    match question {
        Question::Apex(zone) => check_apex(zone, answer),
        Question::Srv(zone) => {
            let mut records: Vec<SrvRecord> = match code {
                ResponseCode::NoError => answer
                    .answers
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::SRV(srv) if plain(&r.name) == srv_name(zone) => {
                            Some(srv_record(srv, r.ttl))
                        }
                        _ => None,
                    })
                    .collect(),
                ResponseCode::NXDomain => Vec::new(),
                code => {
                    return Err(DnsError::Rcode {
                        question: format!("`{}` SRV", srv_name(zone)),
                        code,
                    })
                }
            };
            records.sort();
            state.zones.insert(zone.clone(), records);
            Ok(())
        }
        Question::Address(name, _) => {
            if !matches!(code, ResponseCode::NoError | ResponseCode::NXDomain)
                || !answer.metadata.authoritative
            {
                return Ok(()); // not the server's to answer: reported as unchecked
            }
            let list = state.targets.entry(name.clone()).or_default();
            for r in &answer.answers {
                match &r.data {
                    RData::A(a) => list.push(a.0.to_string()),
                    RData::AAAA(a) => list.push(a.0.to_string()),
                    _ => {}
                }
            }
            list.sort();
            Ok(())
        }
    }
}

fn srv_record(srv: &SRV, ttl: u32) -> SrvRecord {
    SrvRecord {
        priority: srv.priority,
        weight: srv.weight,
        port: srv.port,
        target: plain(&srv.target),
        ttl,
    }
}

/// The server must answer the zone's SOA authoritatively, with the SOA owned by the zone itself.
fn check_apex(zone: &str, answer: &Message) -> Result<(), DnsError> {
    let zone_name = || zone.to_string();
    match answer.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::Refused => return Err(DnsError::ZoneRefused { zone: zone_name() }),
        ResponseCode::NXDomain => return Err(DnsError::NoZone { zone: zone_name() }),
        code => {
            return Err(DnsError::Rcode {
                question: format!("the SOA of zone `{zone}`"),
                code,
            })
        }
    }
    if !answer.metadata.authoritative {
        return Err(DnsError::NotAuthoritative { zone: zone_name() });
    }
    let apex = answer
        .answers
        .iter()
        .any(|r| matches!(r.data, RData::SOA(_)) && plain(&r.name) == zone);
    if !apex {
        let parent = answer
            .authorities
            .iter()
            .find(|r| matches!(r.data, RData::SOA(_)))
            .map(|r| plain(&r.name));
        return Err(DnsError::NotApex {
            zone: zone_name(),
            parent,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::OpCode;
    use hickory_proto::rr::Record;

    #[test]
    fn answers_fill_the_state_and_refusals_explain_themselves() {
        let q = Question::Srv("corp.example".into());
        let mut answer = Message::response(1, OpCode::Query);
        answer.metadata.authoritative = true;
        let target = fqdn("kms01.corp.example").expect("name");
        answer.add_answer(Record::from_rdata(
            fqdn("_vlmcs._tcp.corp.example").expect("name"),
            600,
            RData::SRV(SRV::new(0, 100, 1688, target)),
        ));
        let mut state = DnsState::default();
        read_answer(&mut state, &q, &answer).expect("read");
        assert_eq!(state.zones["corp.example"][0].ttl, 600);
        assert!(state.targets.is_empty());

        answer.metadata.response_code = ResponseCode::Refused;
        let e = check_apex("corp.example", &answer).expect_err("refused");
        assert!(matches!(e, DnsError::ZoneRefused { .. }), "{e}");
        assert!(e.to_string().contains("REFUSED"), "{e}");
        answer.metadata.response_code = ResponseCode::NoError;
        let e = check_apex("corp.example", &answer).expect_err("no SOA");
        assert!(matches!(&e, DnsError::NotApex { parent: None, .. }), "{e}");
        assert!(e.to_string().contains("not a zone on this server"), "{e}");
    }

    #[test]
    fn changes_of_one_zone_become_one_update_with_the_planned_rrset_as_prerequisite() {
        let rec = |priority: u16, port: u16, target: &str| SrvRecord {
            priority,
            weight: 0,
            port,
            target: target.into(),
            ttl: 3600,
        };
        let seen = vec![rec(0, 1688, "kms01.z")];
        let change = |zone: &str, remove: Option<SrvRecord>, add: Option<SrvRecord>| {
            EntryOp::Srv(kmsconf_model::ops::SrvRecordChange {
                zone: zone.into(),
                expected: if zone == "corp.example" {
                    seen.clone()
                } else {
                    vec![]
                },
                remove,
                add,
                tsig: None,
                gss_tsig: None,
            })
        };
        let ops = [
            change(
                "corp.example",
                Some(seen[0].clone()),
                Some(rec(0, 1689, "kms01.z")),
            ),
            change("b.example", None, Some(rec(0, 1688, "kms01.z"))),
            change("corp.example", None, Some(rec(1, 1688, "kms02.z"))),
        ];
        let (updates, zone_of) = zone_updates(&ops);
        assert_eq!(updates.len(), 2);
        assert_eq!(zone_of, vec![Some(0), Some(1), Some(0)]);
        assert_eq!(updates[0].zone, "corp.example");
        assert_eq!(updates[0].expected, seen);
        assert_eq!(updates[0].remove, seen);
        assert_eq!(updates[0].add.len(), 2);
        assert_eq!(
            (updates[1].zone.as_str(), updates[1].expected.len()),
            ("b.example", 0)
        );
    }
}
