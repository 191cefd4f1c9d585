//! The KMS host's event log as kmsconf reads it: event 12290 (one per activation request the host
//! answered), event 12293 (publishing its DNS records failed) and the Software Protection
//! service's run state. The agent sends the events' data as strings ([`WireLog`]); every field is
//! host input, so each is checked here and an event with a field out of shape is counted as
//! rejected, never shown. Where each event is logged and what it carries are rows of the facts
//! table (`[[event]]`).

use serde::{Deserialize, Serialize};

use crate::facts::parse_code;
use crate::state::LicenseStatus;

/// An activation request the KMS host answered.
pub const REQUEST_EVENT: u32 = 12290;
/// The KMS host failed to publish its SRV record in DNS.
pub const DNS_FAILURE_EVENT: u32 = 12293;
/// Where Windows logs [`REQUEST_EVENT`].
pub const REQUEST_LOG: &str = "Key Management Service";
/// Where Windows logs [`DNS_FAILURE_EVENT`] (the sources say: every KMS event but 12290).
pub const DNS_FAILURE_LOG: &str = "Application";
/// The provider of both.
pub const PROVIDER: &str = "Microsoft-Windows-Security-Licensing-SLC";
/// How many data fields a 12290 event carries, in the 2008 guide's order.
pub const REQUEST_FIELDS: usize = 9;
/// At most this many rejected events are described (the rest are only counted).
const REJECTIONS_SHOWN: usize = 10;

/// What kmsconf asks the agent for: the events of the last `window_seconds` by the host's
/// clock (so a request is the same whenever it is sent, and a recorded run replays), at most
/// `max_events` of each id, and at most `max_bytes` of event data in all (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventQuery {
    pub window_seconds: i64,
    pub max_events: u32,
    pub max_bytes: u32,
}

impl EventQuery {
    /// The bounds kmsconf reads with: 20000 events of each id, 4 MiB of data (one answer line
    /// of the agent holds 8 MiB of base64).
    pub fn window(window_seconds: i64) -> Self {
        Self {
            window_seconds,
            max_events: 20_000,
            max_bytes: 4 << 20,
        }
    }
}

/// The agent's answer, as it sends it (and as the lab writes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireLog {
    /// The host's clock when it read the log, `[DateTime]::UtcNow.ToString('o')`.
    pub clock: String,
    /// `-MaxEvents` or the byte cap cut the list short.
    pub truncated: bool,
    /// `Win32_Service` `sppsvc`; `None` when the host has no such service.
    pub service: Option<WireService>,
    pub events: Vec<WireEvent>,
}

/// The Software Protection service as `Win32_Service` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireService {
    pub state: Option<String>,
    pub start_mode: Option<String>,
}

/// One event: its id, `TimeCreated` in UTC and its `Properties` as strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireEvent {
    pub id: u32,
    pub time: String,
    pub properties: Vec<String>,
}

/// One answered activation request (event 12290).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestEvent {
    /// When the host logged it (seconds since the epoch, UTC).
    pub at: i64,
    /// What the host answered: 0, or the HRESULT of a refusal.
    pub result: u32,
    /// The count the client needs before it activates (its N-policy).
    pub min_count: u32,
    pub fqdn: String,
    /// Lower-case GUID.
    pub cmid: String,
    pub vm: bool,
    pub license_status: LicenseStatus,
    pub minutes_to_expiry: u32,
    /// Lower-case GUID of the license the client asked for.
    pub activation_id: String,
}

/// A failure to publish the SRV record (event 12293).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsFailureEvent {
    pub at: i64,
    pub code: u32,
    pub domain: String,
}

/// Whether the Software Protection service runs and how it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRun {
    pub running: bool,
    /// `Win32_Service.StartMode`: `Auto`, `Manual`, `Disabled`, ...
    pub start_mode: String,
}

impl ServiceRun {
    /// The service starts by itself (`Auto`; a trigger or a caller starts a `Manual` one too).
    pub fn set_to_start(&self) -> bool {
        !self.start_mode.eq_ignore_ascii_case("disabled")
    }
}

/// The checked log of one host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventLog {
    /// The host's clock when it read the log.
    pub clock: i64,
    /// Oldest first.
    pub requests: Vec<RequestEvent>,
    pub dns_failures: Vec<DnsFailureEvent>,
    /// `None`: the host has no `sppsvc` service.
    pub service: Option<ServiceRun>,
    pub truncated: bool,
    /// How many events had a field out of shape.
    pub rejected: usize,
    /// Why, for the first few (host text escaped).
    pub rejections: Vec<String>,
}

/// A field of an event that is not what Windows writes there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the host's clock {} is not an RFC 3339 time", shown(.0))]
    Clock(String),
    #[error(
        "event {id} at {}: {field} {} is not {expected}",
        shown(time),
        shown(value)
    )]
    Field {
        id: u32,
        time: String,
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("event {id} at {}: {count} data fields, expected {REQUEST_FIELDS} (or 10, or one comma-joined string)", shown(time))]
    Fields { id: u32, time: String, count: usize },
}

/// Host text in backticks, control characters escaped, at most 80 characters.
fn shown(text: &str) -> String {
    let cut: String = text.chars().take(80).collect();
    let more = if text.chars().count() > 80 { "..." } else { "" };
    format!("`{}{more}`", cut.escape_debug())
}

/// Checks the agent's answer. Only an unreadable clock fails the whole log; an event with a
/// field out of shape is counted in `rejected`.
pub fn parse(wire: &WireLog) -> Result<EventLog, EventError> {
    let clock = timestamp(&wire.clock).ok_or_else(|| EventError::Clock(wire.clock.clone()))?;
    let mut log = EventLog {
        clock,
        truncated: wire.truncated,
        service: wire.service.as_ref().map(|s| ServiceRun {
            running: s
                .state
                .as_deref()
                .is_some_and(|v| v.eq_ignore_ascii_case("running")),
            start_mode: s.start_mode.clone().unwrap_or_default(),
        }),
        ..EventLog::default()
    };
    for event in &wire.events {
        let checked = match event.id {
            REQUEST_EVENT => request(event).map(|r| log.requests.push(r)),
            DNS_FAILURE_EVENT => dns_failure(event).map(|d| log.dns_failures.push(d)),
            _ => continue,
        };
        if let Err(e) = checked {
            log.rejected += 1;
            if log.rejections.len() < REJECTIONS_SHOWN {
                log.rejections.push(e.to_string());
            }
        }
    }
    log.requests.sort_by_key(|r| r.at);
    log.dns_failures.sort_by_key(|d| d.at);
    Ok(log)
}

/// Seconds since the epoch of an RFC 3339 time.
pub fn timestamp(text: &str) -> Option<i64> {
    text.trim()
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// The nine fields of a 12290: as nine strings, ten (the first not one of them), or one string
/// joining them with commas.
fn request_fields(event: &WireEvent) -> Result<Vec<&str>, EventError> {
    let p = &event.properties;
    let fields: Vec<&str> = match p.len() {
        REQUEST_FIELDS => p.iter().map(String::as_str).collect(),
        10 => p[1..].iter().map(String::as_str).collect(),
        1 => p[0].split(',').map(str::trim).collect(),
        _ => Vec::new(),
    };
    if fields.len() == REQUEST_FIELDS {
        Ok(fields)
    } else {
        Err(EventError::Fields {
            id: event.id,
            time: event.time.clone(),
            count: if p.len() == 1 { fields.len() } else { p.len() },
        })
    }
}

fn request(event: &WireEvent) -> Result<RequestEvent, EventError> {
    let f = request_fields(event)?;
    let bad = |field, value: &str, expected| EventError::Field {
        id: event.id,
        time: event.time.clone(),
        field,
        value: value.to_string(),
        expected,
    };
    let at = timestamp(&event.time).ok_or_else(|| bad("TimeCreated", &event.time, "a time"))?;
    let result = parse_code(f[0]).ok_or_else(|| bad("result", f[0], "an HRESULT"))?;
    let min_count =
        small_number(f[1], 10_000).ok_or_else(|| bad("minimum count", f[1], "a count"))?;
    let fqdn = fqdn(f[2]).ok_or_else(|| bad("client name", f[2], "a DNS name"))?;
    let cmid = guid(f[3]).ok_or_else(|| bad("CMID", f[3], "a GUID"))?;
    let vm = match f[5] {
        "0" => false,
        "1" => true,
        other => return Err(bad("VM flag", other, "0 or 1")),
    };
    let license_status = small_number(f[6], 6)
        .and_then(LicenseStatus::from_cim)
        .ok_or_else(|| bad("license status", f[6], "0 to 6"))?;
    let minutes_to_expiry =
        small_number(f[7], u32::MAX).ok_or_else(|| bad("time to expiry", f[7], "minutes"))?;
    let activation_id = guid(f[8]).ok_or_else(|| bad("activation ID", f[8], "a GUID"))?;
    Ok(RequestEvent {
        at,
        result,
        min_count,
        fqdn,
        cmid,
        vm,
        license_status,
        minutes_to_expiry,
        activation_id,
    })
}

fn dns_failure(event: &WireEvent) -> Result<DnsFailureEvent, EventError> {
    let p = &event.properties;
    let bad = |field, value: &str, expected| EventError::Field {
        id: event.id,
        time: event.time.clone(),
        field,
        value: value.to_string(),
        expected,
    };
    if p.len() != 2 {
        return Err(EventError::Fields {
            id: event.id,
            time: event.time.clone(),
            count: p.len(),
        });
    }
    let at = timestamp(&event.time).ok_or_else(|| bad("TimeCreated", &event.time, "a time"))?;
    let code = parse_code(&p[0]).ok_or_else(|| bad("code", &p[0], "an HRESULT"))?;
    let domain = fqdn(&p[1]).ok_or_else(|| bad("domain", &p[1], "a DNS name"))?;
    Ok(DnsFailureEvent { at, code, domain })
}

fn small_number(text: &str, max: u32) -> Option<u32> {
    text.trim().parse::<u32>().ok().filter(|n| *n <= max)
}

pub use crate::ids::guid;

/// A DNS name (a computer's FQDN or a bare NetBIOS name): labels of letters, digits, `-` and
/// `_`, 1 to 63 each, 253 in all; in lower case, without a trailing dot.
pub fn fqdn(text: &str) -> Option<String> {
    let t = text.trim().trim_end_matches('.');
    let ok = !t.is_empty()
        && t.len() <= 253
        && t.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    ok.then(|| t.to_ascii_lowercase())
}

#[cfg(test)]
mod tests;
