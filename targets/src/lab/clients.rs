//! The lab host's KMS clients: simulated activation requests, and what a KMS host makes of them.
//!
//! As Microsoft documents the activation count cache: each KMS host product counts the distinct
//! client machine IDs (CMIDs) that asked within the last 30 days, a CMID counting once however
//! often it asks (so clones sharing one CMID count once); only the most recent 50 (Windows) or
//! 10 (Office) are kept, so the count tops out there. The cumulative request counters count
//! every request, by the license status the client reported. A request for a product this host
//! is not an activated KMS host for is refused and counted as failed.

use std::collections::BTreeMap;

use kmsconf_model::config::ProductId;
use serde::{Deserialize, Serialize};

use super::{fnv1a, LabFile};
use kmsconf_model::catalog;
use kmsconf_model::events::{self, EventQuery, WireEvent, WireLog, WireService};
use kmsconf_model::state::{HostState, LicenseStatus, RequestCounters};

/// How long a KMS host keeps a client's CMID, in seconds (30 days).
pub const CACHE_SECONDS: i64 = 30 * 86_400;

/// One activation request a simulated client sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRequest {
    pub cmid: String,
    pub product: ProductId,
    /// When the host received it, by the host's clock (seconds since the Unix epoch).
    pub at: i64,
    /// The license status the client reported.
    pub status: LicenseStatus,
    /// The host refused it (not an activated KMS host for the product).
    pub failed: bool,
    /// The client's DNS name; `None` in files from before it was kept (a name from the CMID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
    /// The edition it asked for (`client-script --list-editions`); `None`: its product only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edition: Option<String>,
    /// The activation ID its request carries (lower case), as a real client's would; `None`:
    /// the lab's own ID of its edition or product ([`catalog::lab_activation_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_id: Option<String>,
}

/// How many distinct clients a KMS host product keeps: twice the highest threshold.
pub fn cache_limit(product: ProductId) -> usize {
    if product.is_office() {
        10
    } else {
        50
    }
}

/// What `kmsconf lab clients add` asks for.
#[derive(Debug, Clone)]
pub struct NewRequests {
    pub product: ProductId,
    pub count: u32,
    /// All requests come from this CMID (cloned machines); `None` = a new CMID each.
    pub cmid: Option<String>,
    /// How long before the host's now they were received.
    pub ago_seconds: i64,
    /// All requests come from this DNS name; `None` = a name of its own each.
    pub fqdn: Option<String>,
    /// The edition asked for (an id of the GVLK table, of `product`).
    pub edition: Option<String>,
    /// The activation ID the requests carry instead of the lab's own (a GUID).
    pub activation_id: Option<String>,
}

/// What the host did with new requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    pub accepted: u32,
    pub refused: u32,
    pub count: usize,
}

/// A client machine ID that is not in the GUID form Windows shows.
#[derive(Debug, thiserror::Error)]
#[error("`{cmid}` is not a CMID: Windows shows it as a GUID, e.g. `3f2504e0-4f89-11d3-9a0c-0305e82c3301`")]
pub struct InvalidCmid {
    pub cmid: String,
}

/// A client's DNS name that is not one.
#[derive(Debug, thiserror::Error)]
#[error("`{}` is not a DNS name: labels of letters, digits and `-`, 1 to 63 characters each", .fqdn.escape_debug())]
pub struct InvalidFqdn {
    pub fqdn: String,
}

/// Why `kmsconf lab clients add` refuses its arguments.
#[derive(Debug, thiserror::Error)]
pub enum InvalidRequest {
    #[error(transparent)]
    Cmid(#[from] InvalidCmid),
    #[error(transparent)]
    Fqdn(#[from] InvalidFqdn),
    #[error("`{}` is not an activation ID: a GUID as a client's `slmgr /dlv` shows it, e.g. `3f2504e0-4f89-41d3-9a0c-0305e82c3301`", .0.escape_debug())]
    ActivationId(String),
}

/// The host's clock for a local time.
pub fn host_now(file: &LabFile, local_now: i64) -> i64 {
    local_now.saturating_add(file.clock_offset_seconds)
}

/// Records `new` as received by the host; returns what the host made of them.
pub fn add(file: &mut LabFile, new: &NewRequests, local_now: i64) -> Result<Added, InvalidRequest> {
    if let Some(cmid) = &new.cmid {
        check_cmid(cmid)?;
    }
    let fqdn = match &new.fqdn {
        Some(name) => Some(events::fqdn(name).ok_or_else(|| InvalidFqdn { fqdn: name.clone() })?),
        None => None,
    };
    let activation_id = match &new.activation_id {
        Some(id) => Some(events::guid(id).ok_or_else(|| InvalidRequest::ActivationId(id.clone()))?),
        None => None,
    };
    let at = host_now(file, local_now).saturating_sub(new.ago_seconds);
    let serves = file
        .host
        .products
        .get(&new.product)
        .is_some_and(|p| p.is_activated_kms_host());
    let mut seen: std::collections::BTreeSet<String> = file
        .clients
        .iter()
        .filter(|r| r.product == new.product && !r.failed)
        .map(|r| r.cmid.clone())
        .collect();
    let required = catalog::product(new.product).map_or(5, |p| p.required_count as usize);
    let first = file.clients.len() as u64 + 1;
    for i in 0..new.count {
        // the requests before this call and this one's: `file.clients` grows as they are pushed
        let n = first - 1 + u64::from(i);
        let cmid = new
            .cmid
            .clone()
            .unwrap_or_else(|| generated_cmid(&file.host_id, n));
        // clones (one CMID) are distinct machines: each its own name unless one is given
        let fqdn = fqdn
            .clone()
            .unwrap_or_else(|| format!("pc-{:04}.lab.test", first + u64::from(i)));
        // a CMID the host served while its count was at the threshold is an activated client
        // renewing; every other client is still in its grace period
        let activated = seen.len() >= required;
        let status = if serves && activated && seen.contains(&cmid) {
            LicenseStatus::Licensed
        } else {
            LicenseStatus::InitialGrace
        };
        if serves {
            seen.insert(cmid.clone());
        }
        file.clients.push(ClientRequest {
            cmid,
            product: new.product,
            at,
            status,
            failed: !serves,
            fqdn: Some(fqdn),
            edition: new.edition.clone(),
            activation_id: activation_id.clone(),
        });
    }
    file.clients.sort_by_key(|r| r.at);
    let count = counted(&file.clients, new.product, host_now(file, local_now)).len();
    let (accepted, refused) = if serves {
        (new.count, 0)
    } else {
        (0, new.count)
    };
    Ok(Added {
        accepted,
        refused,
        count,
    })
}

/// The requests a KMS host product counts at `now`: the latest request of each CMID received in
/// the last 30 days, newest first, at most [`cache_limit`].
pub fn counted(requests: &[ClientRequest], product: ProductId, now: i64) -> Vec<&ClientRequest> {
    let mut latest: BTreeMap<&str, &ClientRequest> = BTreeMap::new();
    for r in requests.iter().filter(|r| {
        // a request stamped after `now` (the clock was set back) is still in the cache
        r.product == product && !r.failed && now.saturating_sub(r.at) < CACHE_SECONDS
    }) {
        let keep = latest.get(r.cmid.as_str()).is_none_or(|old| old.at <= r.at);
        if keep {
            latest.insert(&r.cmid, r);
        }
    }
    let mut list: Vec<&ClientRequest> = latest.into_values().collect();
    list.sort_by(|a, b| b.at.cmp(&a.at).then(a.cmid.cmp(&b.cmid)));
    list.truncate(cache_limit(product));
    list
}

/// The host as discovery sees it at `local_now`: the stored state plus its clock, CMID, rearm
/// count, and each KMS host product's count and request counters.
pub fn observe(file: &LabFile, local_now: i64) -> HostState {
    let now = host_now(file, local_now);
    let mut host = file.host.clone();
    host.clock = Some(now);
    host.service.restart_pending =
        super::cim::shows_restart_pending(&file.host, file.running_service.as_ref());
    if host.client_machine_id.is_none() {
        host.client_machine_id = Some(generated_cmid(&file.host_id, u64::MAX));
    }
    if host.remaining_rearm_count.is_none() {
        host.remaining_rearm_count = Some(super::LAB_REARM_COUNT);
    }
    for (id, product) in &mut host.products {
        product.activation_id = Some(super::activation_id(&file.host_id, *id, product.channel));
        if !product.is_activated_kms_host() {
            product.current_count = None;
            product.required_count = None;
            product.requests = RequestCounters::default();
            continue;
        }
        let count = counted(&file.clients, *id, now).len();
        product.current_count = (count > 0).then(|| u32::try_from(count).unwrap_or(u32::MAX));
        product.required_count = catalog::product(*id).map(|p| p.required_count);
        let mut counters = RequestCounters::default();
        for r in file.clients.iter().filter(|r| r.product == *id) {
            counters.record(r.status, r.failed);
        }
        product.requests = counters;
    }
    host
}

/// The host's event log as the agent reads it: a 12290 for each request received in the last
/// `query.window_seconds` by the host's clock (newest first, within its bounds), a 12293 for each DNS publishing failure,
/// and the Software Protection service's state.
pub fn event_log(file: &LabFile, local_now: i64, query: &EventQuery) -> WireLog {
    let now = host_now(file, local_now);
    let since = now.saturating_sub(query.window_seconds);
    let mut out = Vec::new();
    let mut bytes = 0usize;
    let mut truncated = false;
    let requests = file.clients.iter().rev().filter(|r| r.at >= since);
    let failures = file.dns_failures.iter().rev().filter(|d| d.at >= since);
    let lists: [Vec<WireEvent>; 2] = [
        requests.map(request_event).collect(),
        failures.map(DnsFailure::event).collect(),
    ];
    for list in lists {
        let max = query.max_events as usize;
        truncated |= list.len() > max;
        for event in list.into_iter().take(max) {
            let size = 64 + event.properties.iter().map(|p| p.len() + 4).sum::<usize>();
            if bytes + size > query.max_bytes as usize {
                truncated = true;
                break;
            }
            bytes += size;
            out.push(event);
        }
    }
    WireLog {
        clock: kmsconf_model::clock::rfc3339(now),
        truncated,
        service: Some(WireService {
            state: Some(
                if file.sppsvc.stopped {
                    "Stopped"
                } else {
                    "Running"
                }
                .into(),
            ),
            start_mode: Some(file.sppsvc.start_mode.clone()),
        }),
        events: out,
    }
}

/// A 12290 as Windows writes it, in the guide's field order.
fn request_event(r: &ClientRequest) -> WireEvent {
    let edition = r.edition.as_deref().and_then(catalog::edition);
    let activation_id = r
        .activation_id
        .clone()
        .unwrap_or_else(|| catalog::lab_activation_id(edition.map_or(r.product.id(), |e| &e.id)));
    let (status, minutes) = match r.status {
        LicenseStatus::Licensed => (1, 180 * 1440),
        LicenseStatus::Unlicensed => (0, 0),
        _ => (2, 30 * 1440),
    };
    let fqdn = r
        .fqdn
        .clone()
        .unwrap_or_else(|| format!("pc-{}.lab.test", &r.cmid[..8.min(r.cmid.len())]));
    let result = if r.failed {
        catalog::format_code(0xC004_F042)
    } else {
        "0x0".into()
    };
    WireEvent {
        id: events::REQUEST_EVENT,
        time: kmsconf_model::clock::rfc3339(r.at),
        properties: vec![
            result,
            catalog::required_count_of(r.product, edition).to_string(),
            fqdn,
            r.cmid.clone(),
            kmsconf_model::clock::rfc3339(r.at),
            "0".into(),
            status.to_string(),
            minutes.to_string(),
            activation_id,
        ],
    }
}

/// A DNS publishing failure the lab host logs as event 12293 (`kmsconf lab dns-failure`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsFailure {
    /// By the host's clock.
    pub at: i64,
    pub code: u32,
    pub domain: String,
}

impl DnsFailure {
    fn event(&self) -> WireEvent {
        WireEvent {
            id: events::DNS_FAILURE_EVENT,
            time: kmsconf_model::clock::rfc3339(self.at),
            properties: vec![catalog::format_code(self.code), self.domain.clone()],
        }
    }
}

/// The lab host's Software Protection service as `Win32_Service` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sppsvc {
    pub stopped: bool,
    /// `Auto`, `Manual` or `Disabled`.
    pub start_mode: String,
}

impl Default for Sppsvc {
    fn default() -> Self {
        Self {
            stopped: false,
            start_mode: "Auto".into(),
        }
    }
}

impl Sppsvc {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// A CMID in the GUID form Windows shows, derived from the host and a sequence number so lab
/// runs are repeatable.
fn generated_cmid(host_id: &str, n: u64) -> String {
    let a = fnv1a(format!("{host_id}/cmid/{n}/a").as_bytes());
    let b = fnv1a(format!("{host_id}/cmid/{n}/b").as_bytes());
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

fn check_cmid(cmid: &str) -> Result<(), InvalidCmid> {
    let groups: Vec<&str> = cmid.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    let hex = groups
        .iter()
        .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()));
    if lengths == [8, 4, 4, 4, 12] && hex {
        Ok(())
    } else {
        Err(InvalidCmid {
            cmid: cmid.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(cmid: &str, product: ProductId, at: i64) -> ClientRequest {
        ClientRequest {
            cmid: cmid.into(),
            product,
            at,
            status: LicenseStatus::InitialGrace,
            failed: false,
            fqdn: None,
            edition: None,
            activation_id: None,
        }
    }

    #[test]
    fn a_cmid_counts_once_and_only_within_30_days() {
        let now = 100 * 86_400;
        let w = ProductId::Windows;
        let list = vec![
            req("a", w, now - 86_400),
            req("a", w, now - 3600),
            req("b", w, now - 31 * 86_400),
            req("c", w, now - 29 * 86_400),
            req("d", ProductId::Office2019, now),
        ];
        let c = counted(&list, w, now);
        let cmids: Vec<&str> = c.iter().map(|r| r.cmid.as_str()).collect();
        assert_eq!(cmids, ["a", "c"]);
        assert_eq!(c[0].at, now - 3600, "the latest request of a CMID is kept");
    }

    #[test]
    fn request_times_from_a_hand_edited_file_do_not_overflow() {
        let w = ProductId::Windows;
        let list = vec![req("old", w, i64::MIN), req("future", w, i64::MAX)];
        let cmids = |now| -> Vec<String> {
            counted(&list, w, now)
                .iter()
                .map(|r| r.cmid.clone())
                .collect()
        };
        assert_eq!(cmids(1_000_000), ["future"]);
        assert_eq!(cmids(i64::MIN), ["future", "old"]);
    }

    #[test]
    fn the_cache_keeps_the_most_recent_50_or_10() {
        let now = 1_000_000;
        let many: Vec<ClientRequest> = (0..60)
            .flat_map(|i| {
                let cmid = format!("{i:02}");
                [
                    req(&cmid, ProductId::Windows, now - i),
                    req(&cmid, ProductId::Office2016, now - i),
                ]
            })
            .collect();
        let w = counted(&many, ProductId::Windows, now);
        assert_eq!(w.len(), 50);
        assert_eq!(w.last().map(|r| r.cmid.as_str()), Some("49"));
        assert_eq!(counted(&many, ProductId::Office2016, now).len(), 10);
    }

    #[test]
    fn generated_cmids_are_guids_and_differ() {
        let a = generated_cmid("h", 1);
        assert!(check_cmid(&a).is_ok(), "{a}");
        assert_ne!(a, generated_cmid("h", 2));
        assert!(check_cmid("not-a-guid").is_err());
    }

    fn new(count: u32, activation_id: Option<&str>) -> NewRequests {
        NewRequests {
            product: ProductId::Windows,
            count,
            cmid: None,
            ago_seconds: 0,
            fqdn: None,
            edition: Some("windows-enterprise".into()),
            activation_id: activation_id.map(str::to_string),
        }
    }

    #[test]
    fn requests_carry_a_given_activation_id_and_generated_cmids_never_repeat() {
        let mut file = LabFile::fresh(std::path::Path::new("kms01.json")).expect("fresh");
        let now = 1_796_040_000;
        add(&mut file, &new(3, None), now).expect("add");
        add(
            &mut file,
            &new(2, Some("{00000000-0000-4000-8000-0000000000AB}")),
            now,
        )
        .expect("add");
        let cmids: std::collections::BTreeSet<&str> =
            file.clients.iter().map(|r| r.cmid.as_str()).collect();
        assert_eq!(cmids.len(), 5, "one CMID per generated client");
        let ids: Vec<String> = file
            .clients
            .iter()
            .map(|r| request_event(r).properties[8].clone())
            .collect();
        let lab = catalog::lab_activation_id("windows-enterprise");
        assert_eq!(ids.iter().filter(|id| **id == lab).count(), 3);
        let given = "00000000-0000-4000-8000-0000000000ab";
        assert_eq!(ids.iter().filter(|id| *id == given).count(), 2);
        let refused = add(&mut file, &new(1, Some("1234567890")), now);
        assert!(matches!(refused, Err(InvalidRequest::ActivationId(_))));
        assert_eq!(file.clients.len(), 5);
    }
}
