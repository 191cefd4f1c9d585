//! The DNS server as a target: reads the `_vlmcs._tcp` SRV RRsets (and, where asked, the A/AAAA
//! records of their targets) in one set of queries, and sends each zone's changes as one
//! TSIG-signed RFC 2136 UPDATE. Its apply lock is a no-op (see the `Target` impl).
//!
//! hickory-proto builds, signs and parses the messages; the I/O is plain blocking sockets:
//! queries go over UDP (all sent at once, retried, TCP when an answer is truncated), updates
//! over TCP, where a lost answer cannot turn into a second, different update. An update counts
//! as applied only when the server answers NOERROR with a TSIG signature that verifies.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm as HickoryAlgorithm, TsigError};
use hickory_proto::rr::rdata::SRV;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
use kmsconf_engine::lock::{LockGuard, LockHolder};
use kmsconf_engine::target::{ChangeStatus, Discovery, Target};
use kmsconf_model::config::TsigAlgorithm;
use kmsconf_model::dns::{srv_name, DnsState, SrvRecord, TsigCredentials, ZoneUpdate, SRV_PREFIX};
use kmsconf_model::ops::EntryOp;
use kmsconf_model::EntryState;

use crate::Error;

/// How long each UDP try waits for the answers still missing; the last one ends the wait.
const UDP_TRIES: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(2),
];
/// Connect, send and receive limit of a TCP exchange.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);
/// The UDP payload size kmsconf offers (EDNS), the value DNS Flag Day 2020 recommends.
const UDP_PAYLOAD: u16 = 1232;
/// Seconds of clock difference a TSIG signature allows (RFC 8945 recommends 300).
const TSIG_FUDGE: u16 = 300;

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

    fn error(&self, message: impl Into<String>) -> Error {
        Error::Dns {
            server: self.server.clone(),
            message: message.into(),
        }
    }

    fn address(&self) -> Result<SocketAddr, Error> {
        // `host:port` as the config holds it; a bare host or address means port 53
        let has_port = self.server.parse::<std::net::IpAddr>().is_err()
            && self
                .server
                .rsplit_once(':')
                .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
        let found = if has_port {
            self.server.to_socket_addrs()
        } else {
            (self.server.trim_matches(['[', ']']), 53).to_socket_addrs()
        };
        let mut found =
            found.map_err(|e| self.error(format!("cannot resolve the server's name: {e}")))?;
        found
            .next()
            .ok_or_else(|| self.error("the server's name resolves to no address"))
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
    fn query(&self) -> Result<Query, String> {
        let (name, kind) = match self {
            Self::Apex(zone) => (zone.clone(), RecordType::SOA),
            Self::Srv(zone) => (srv_name(zone), RecordType::SRV),
            Self::Address(name, kind) => (name.clone(), *kind),
        };
        Ok(Query::query(fqdn(&name)?, kind))
    }
}

/// A name as hickory takes it: fully qualified.
fn fqdn(name: &str) -> Result<Name, String> {
    Name::from_ascii(format!("{}.", name.trim_end_matches('.')))
        .map_err(|e| format!("`{name}` is not a valid DNS name: {e}"))
}

/// A name as kmsconf keeps it: lowercase, without the trailing dot.
fn plain(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
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
            .map_err(|m| self.error(m))?;
        let answers = exchange_all(self.address()?, &queries).map_err(|m| self.error(m))?;
        let mut state = DnsState::default();
        for (question, answer) in questions.iter().zip(answers) {
            read_answer(&mut state, question, &answer).map_err(|m| self.error(m))?;
        }
        tracing::debug!(server = %self.server, zones = state.zones.len(), "discovered DNS");
        Ok(state)
    }

    /// Sends each zone update (one message each); one outcome per update.
    pub fn send(&self, batch: &[ZoneUpdate]) -> Result<Vec<ChangeStatus>, Error> {
        let address = self.address()?;
        Ok(batch
            .iter()
            .map(|update| match send_update(address, update) {
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
            })
            .collect())
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
        Err(self.error("a DNS server has no apply lock to break"))
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
    pub fn lookup_srv(&self, name: &str) -> Result<Vec<SrvRecord>, String> {
        let zone = name
            .trim_end_matches('.')
            .strip_prefix(&format!("{SRV_PREFIX}."))
            .unwrap_or(name);
        query_srv(&self.server, zone).map_err(|e| e.to_string())
    }
}

/// Records what one answer says into `state`, or explains why it cannot be used.
fn read_answer(state: &mut DnsState, question: &Question, answer: &Message) -> Result<(), String> {
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
                other => {
                    return Err(format!(
                        "the query for `{}` SRV answered {}",
                        srv_name(zone),
                        rcode_name(other)
                    ))
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
fn check_apex(zone: &str, answer: &Message) -> Result<(), String> {
    let code = answer.metadata.response_code;
    match code {
        ResponseCode::NoError => {}
        ResponseCode::Refused => {
            return Err(format!(
                "it refused the query for zone `{zone}` (REFUSED): it does not serve this zone, or does not answer this machine"
            ))
        }
        ResponseCode::NXDomain => {
            return Err(format!("zone `{zone}` does not exist there (NXDOMAIN)"))
        }
        other => {
            return Err(format!(
                "the query for the SOA of zone `{zone}` answered {}",
                rcode_name(other)
            ))
        }
    }
    if !answer.metadata.authoritative {
        return Err(format!(
            "it is not authoritative for zone `{zone}` (its answer has no AA flag): `server` must be the zone's primary, which takes updates"
        ));
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
            .map(|r| format!(" (it lies in zone `{}`)", plain(&r.name)))
            .unwrap_or_default();
        return Err(format!(
            "`{zone}` is not a zone on this server{parent}: list the zone itself in `zones`"
        ));
    }
    Ok(())
}

/// The name and number of a response code, as DNS tools show it: `REFUSED (5)`.
fn rcode_name(code: ResponseCode) -> String {
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

/// Sends every query at once over one UDP socket and collects the answers by ID, sending again
/// what is still missing; a truncated answer is asked again over TCP. One answer per query.
fn exchange_all(address: SocketAddr, queries: &[Query]) -> Result<Vec<Message>, String> {
    let local: SocketAddr = if address.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(local).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    socket
        .connect(address)
        .map_err(|e| format!("cannot reach it over UDP: {e}"))?;
    let mut ids = Vec::new();
    let messages: Vec<Vec<u8>> = queries
        .iter()
        .map(|q| {
            let message = query_message(q, &ids);
            ids.push(message.metadata.id);
            message
                .to_vec()
                .map_err(|e| format!("cannot encode a query: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let mut answers: Vec<Option<Message>> = vec![None; queries.len()];
    let mut buffer = vec![0u8; 65535];
    for wait in UDP_TRIES {
        for (i, bytes) in messages.iter().enumerate() {
            if answers[i].is_none() {
                socket.send(bytes).map_err(|e| udp_error(address, &e))?;
            }
        }
        let deadline = Instant::now() + wait;
        while answers.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let _ = socket.set_read_timeout(Some(left));
            match socket.recv(&mut buffer) {
                Ok(n) => match_answer(&buffer[..n], queries, &ids, &mut answers),
                Err(e) if is_timeout(&e) => break,
                Err(e) => return Err(udp_error(address, &e)),
            }
        }
        if answers.iter().all(Option::is_some) {
            break;
        }
    }
    let total: Duration = UDP_TRIES.iter().sum();
    let mut out = Vec::new();
    for (i, answer) in answers.into_iter().enumerate() {
        let Some(answer) = answer else {
            return Err(format!(
                "it did not answer within {} seconds ({} tries over UDP to {address})",
                total.as_secs(),
                UDP_TRIES.len()
            ));
        };
        if answer.metadata.truncation {
            tracing::debug!(%address, "answer truncated over UDP; asking again over TCP");
            let bytes = tcp_exchange(address, &messages[i])?;
            let mut slot = [None];
            match_answer(&bytes, &queries[i..=i], &ids[i..=i], &mut slot);
            let [full] = slot;
            out.push(full.ok_or("its answer over TCP does not answer the query sent")?);
        } else {
            out.push(answer);
        }
    }
    Ok(out)
}

fn udp_error(address: SocketAddr, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::ConnectionRefused {
        format!("nothing answers DNS there (connection refused over UDP to {address})")
    } else {
        format!("cannot exchange UDP messages with {address}: {e}")
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
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

/// Files an answer under the query it answers (same ID and question); ignores anything else.
fn match_answer(bytes: &[u8], queries: &[Query], ids: &[u16], answers: &mut [Option<Message>]) {
    let Ok(message) = Message::from_vec(bytes) else {
        return;
    };
    let Some(i) = ids.iter().position(|id| *id == message.metadata.id) else {
        return;
    };
    let same_question = message.queries.first().is_some_and(|q| {
        q.query_type() == queries[i].query_type() && plain(q.name()) == plain(queries[i].name())
    });
    if same_question && answers[i].is_none() {
        answers[i] = Some(message);
    }
}

/// One message over TCP (two-byte length prefix, RFC 1035 section 4.2.2) and its answer.
fn tcp_exchange(address: SocketAddr, message: &[u8]) -> Result<Vec<u8>, String> {
    let mut stream = TcpStream::connect_timeout(&address, TCP_TIMEOUT).map_err(|e| {
        if is_timeout(&e) {
            format!(
                "it did not accept a TCP connection within {} seconds",
                TCP_TIMEOUT.as_secs()
            )
        } else {
            format!("cannot connect over TCP to {address}: {e}")
        }
    })?;
    let _ = stream.set_read_timeout(Some(TCP_TIMEOUT));
    let _ = stream.set_write_timeout(Some(TCP_TIMEOUT));
    let length = u16::try_from(message.len()).map_err(|_| "the message is too long".to_string())?;
    let mut framed = length.to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    stream
        .write_all(&framed)
        .map_err(|e| format!("cannot send over TCP: {e}"))?;
    let lost = |e: std::io::Error| {
        if is_timeout(&e) {
            format!("it did not answer within {} seconds", TCP_TIMEOUT.as_secs())
        } else {
            format!("the TCP connection failed before the answer: {e}")
        }
    };
    let mut prefix = [0u8; 2];
    stream.read_exact(&mut prefix).map_err(lost)?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut answer).map_err(lost)?;
    Ok(answer)
}

/// The UPDATE for one zone, unsigned: zone section, the RRset as planned as prerequisite
/// (RFC 2136 2.4.2 "RRset exists (value dependent)", or 2.4.3 "RRset does not exist" when it
/// was empty), then the deletions (2.5.4) and additions (2.5.1).
pub fn update_message(update: &ZoneUpdate) -> Result<Message, String> {
    let zone = fqdn(&update.zone)?;
    let owner = fqdn(&srv_name(&update.zone))?;
    let mut message = Message::query();
    message.metadata.op_code = OpCode::Update;
    message.metadata.recursion_desired = false;
    let mut zone_query = Query::query(zone, RecordType::SOA);
    zone_query.set_query_class(DNSClass::IN);
    message.add_zone(zone_query);
    let record = |r: &SrvRecord, class: DNSClass, ttl: u32| -> Result<Record, String> {
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

fn signer(tsig: &TsigCredentials) -> Result<TSigner, String> {
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
    .map_err(|e| format!("cannot sign with TSIG key `{}`: {e}", tsig.name))
}

/// Sends one zone's UPDATE over TCP; `Ok` only when the server answered NOERROR and, for a
/// signed update, signed its answer with the same key.
fn send_update(address: SocketAddr, update: &ZoneUpdate) -> Result<String, String> {
    let mut message = update_message(update)?;
    let mut verifier = match &update.tsig {
        Some(tsig) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            message
                .finalize(&signer(tsig)?, now)
                .map_err(|e| format!("cannot sign the update: {e}"))?
        }
        None => None,
    };
    let bytes = message
        .to_vec()
        .map_err(|e| format!("cannot encode the update: {e}"))?;
    let answer_bytes = tcp_exchange(address, &bytes).map_err(|m| {
        format!("{m}; the update may or may not have been applied: run `kmsconf plan` to see")
    })?;
    let answer = Message::from_vec(&answer_bytes)
        .map_err(|e| format!("the server's answer is malformed ({e}); the update may or may not have been applied: run `kmsconf plan` to see"))?;
    if answer.metadata.id != message.metadata.id {
        return Err("the server answered another message".into());
    }
    let key = update.tsig.as_ref().map(|t| t.name.as_str());
    let tsig_error = answer.signature().and_then(|s| s.data.error);
    let code = answer.metadata.response_code;
    if code != ResponseCode::NoError || tsig_error.is_some() {
        return Err(rejection(code, tsig_error, key));
    }
    if let Some(verifier) = verifier.as_mut() {
        verifier.verify(&answer_bytes).map_err(|e| {
            format!("the server answered NOERROR, but its answer does not carry a valid TSIG signature of key `{}` ({e}); treat the update as not authenticated: run `kmsconf plan` to see", key.unwrap_or_default())
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

/// Why the server refused an update, in words a person can act on.
fn rejection(code: ResponseCode, tsig_error: Option<TsigError>, key: Option<&str>) -> String {
    let key = key.unwrap_or("(none)");
    match tsig_error {
        Some(TsigError::BadSig) => return format!("TSIG authentication failed (BADSIG): the server does not accept the signature of key `{key}`; the secret differs from the server's"),
        Some(TsigError::BadKey) => return format!("TSIG authentication failed (BADKEY): the server does not know key `{key}` with this algorithm"),
        Some(TsigError::BadTime) => return format!("TSIG authentication failed (BADTIME): this machine's clock and the server's differ by more than {TSIG_FUDGE} seconds"),
        Some(other) => return format!("TSIG authentication failed ({other:?}) with key `{key}`"),
        None => {}
    }
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

#[cfg(test)]
mod tests {
    use super::*;
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
        assert!(e.contains("REFUSED"), "{e}");
        answer.metadata.response_code = ResponseCode::NoError;
        let e = check_apex("corp.example", &answer).expect_err("no SOA");
        assert!(e.contains("not a zone on this server"), "{e}");
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
