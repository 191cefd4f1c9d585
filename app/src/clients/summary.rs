//! From one host's discovery and event log to what `kmsconf clients` shows: a pure function, so
//! every figure is unit-tested.

use std::collections::{BTreeMap, BTreeSet};

use kmsconf_model::catalog;
use kmsconf_model::clock::rfc3339;
use kmsconf_model::config::{ActivationNames, ProductId};
use kmsconf_model::events::{EventLog, RequestEvent};
use kmsconf_model::state::HostState;

use super::{
    Client, DayCount, DnsFailure, DuplicateCmid, HostClients, ProductClients, Service, Uncovered,
    Unnamed,
};

/// One day in seconds.
pub const DAY: i64 = 86_400;
/// The host counts the CMIDs of the last 30 days.
const COUNT_WINDOW: i64 = 30 * DAY;
/// The label of activation IDs kmsconf does not know.
const UNKNOWN: &str = "unknown";

/// The start (00:00 UTC) of the day `at` falls in.
pub fn day_start(at: i64) -> i64 {
    at.div_euclid(DAY) * DAY
}

/// The product label and edition of a request: by `[fleet.activation_ids]`, then the lab's IDs.
fn asked(names: &ActivationNames, r: &RequestEvent) -> (String, Option<String>) {
    match names.asked_for(&r.activation_id) {
        Some((product, edition)) => (product.id().to_string(), edition.map(|e| e.id.clone())),
        None => (UNKNOWN.to_string(), None),
    }
}

/// Whether this host is an activated KMS host for product `label`.
fn covers(state: &HostState, label: &str) -> bool {
    ProductId::ALL
        .into_iter()
        .find(|p| p.id() == label)
        .and_then(|p| state.products.get(&p))
        .is_some_and(|p| p.is_activated_kms_host())
}

/// Everything `kmsconf clients` shows of one host; `names`: the config's `[fleet.activation_ids]`.
pub fn summarize(
    host: &str,
    state: &HostState,
    log: &EventLog,
    since: i64,
    names: &ActivationNames,
) -> HostClients {
    let requests: Vec<&RequestEvent> = log.requests.iter().filter(|r| r.at >= since).collect();
    let duplicates = duplicates(&requests);
    let mut clients = clients(&requests, state, names);
    for c in &mut clients {
        c.duplicate = duplicates.iter().any(|d| d.cmid == c.cmid);
    }
    HostClients {
        host: host.to_string(),
        error: None,
        clock: Some(rfc3339(log.clock)),
        service: log.service.as_ref().map(|s| Service {
            running: s.running,
            start_mode: s.start_mode.clone(),
            set_to_start: s.set_to_start(),
        }),
        last_request: requests.iter().map(|r| r.at).max().map(rfc3339),
        requests: requests.len() as u64,
        truncated: log.truncated,
        rejected_events: log.rejected as u64,
        rejections: log.rejections.clone(),
        products: products(&requests, since, log.clock, names),
        uncovered: uncovered(&clients),
        clients,
        duplicates,
        dns_failures: log
            .dns_failures
            .iter()
            .filter(|d| d.at >= since)
            .map(|d| DnsFailure {
                at: rfc3339(d.at),
                code: catalog::format_code(d.code),
                domain: d.domain.clone(),
            })
            .collect(),
    }
}

/// One row per (CMID, name, activation ID), from its latest request; newest first.
fn clients(requests: &[&RequestEvent], state: &HostState, names: &ActivationNames) -> Vec<Client> {
    let mut by_key: BTreeMap<(&str, &str, &str), (u64, &RequestEvent)> = BTreeMap::new();
    for r in requests {
        let entry = by_key
            .entry((&r.cmid, &r.fqdn, &r.activation_id))
            .or_insert((0, r));
        entry.0 += 1;
        if r.at >= entry.1.at {
            entry.1 = r;
        }
    }
    let mut rows: Vec<Client> = by_key
        .into_values()
        .map(|(count, r)| {
            let (product, edition) = asked(names, r);
            Client {
                cmid: r.cmid.clone(),
                fqdn: r.fqdn.clone(),
                uncovered: product != UNKNOWN && !covers(state, &product),
                product: (product != UNKNOWN).then_some(product),
                edition,
                activation_id: r.activation_id.clone(),
                vm: r.vm,
                license_status: r.license_status,
                minutes_to_expiry: r.minutes_to_expiry,
                last_request: rfc3339(r.at),
                requests: count,
                last_result: catalog::format_code(r.result),
                duplicate: false,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.last_request
            .cmp(&a.last_request)
            .then_with(|| a.fqdn.cmp(&b.fqdn))
    });
    rows
}

/// CMIDs asking from two or more names.
fn duplicates(requests: &[&RequestEvent]) -> Vec<DuplicateCmid> {
    let mut names: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in requests {
        names.entry(&r.cmid).or_default().insert(&r.fqdn);
    }
    names
        .into_iter()
        .filter(|(_, n)| n.len() > 1)
        .map(|(cmid, n)| DuplicateCmid {
            cmid: cmid.to_string(),
            fqdns: n.into_iter().map(str::to_string).collect(),
        })
        .collect()
}

/// Per product: the distinct clients against the threshold, and the count day by day.
fn products(
    requests: &[&RequestEvent],
    since: i64,
    now: i64,
    names: &ActivationNames,
) -> Vec<ProductClients> {
    let mut by_product: BTreeMap<String, Vec<&RequestEvent>> = BTreeMap::new();
    for r in requests {
        by_product.entry(asked(names, r).0).or_default().push(r);
    }
    by_product
        .into_iter()
        .map(|(label, list)| {
            let ok: Vec<&RequestEvent> = list.iter().copied().filter(|r| r.result == 0).collect();
            let distinct = ok.iter().map(|r| &r.cmid).collect::<BTreeSet<_>>().len() as u64;
            let names = list.iter().map(|r| &r.fqdn).collect::<BTreeSet<_>>().len() as u64;
            let threshold = list.iter().map(|r| r.min_count).max().unwrap_or(0);
            let product = ProductId::ALL.into_iter().find(|p| p.id() == label);
            ProductClients {
                name: product
                    .map_or_else(|| "unknown activation IDs".into(), catalog::product_name),
                product: label,
                distinct_clients: distinct,
                distinct_names: names,
                threshold,
                meets_threshold: distinct >= u64::from(threshold),
                daily: daily(&list, product, since, now),
            }
        })
        .collect()
}

/// The host's count at the end of each day from `since` to `now`: distinct CMIDs answered with
/// success in the 30 days before, at most 50 (10 for Office).
fn daily(
    list: &[&RequestEvent],
    product: Option<ProductId>,
    since: i64,
    now: i64,
) -> Vec<DayCount> {
    let cap = if product.is_some_and(|p| p.is_office()) {
        10
    } else {
        50
    };
    let first = day_start(since.max(now.saturating_sub(3660 * DAY)));
    let mut out = Vec::new();
    let mut day = first;
    while day <= now {
        let end = day + DAY;
        let counted: BTreeSet<&str> = list
            .iter()
            .filter(|r| r.result == 0 && r.at < end && r.at >= end - COUNT_WINDOW)
            .map(|r| r.cmid.as_str())
            .collect();
        let requests = list.iter().filter(|r| r.at >= day && r.at < end).count();
        out.push(DayCount {
            day: rfc3339(day).chars().take(10).collect(),
            count: counted.len().min(cap) as u64,
            requests: requests as u64,
        });
        day = end;
    }
    out
}

/// The clients no KMS host key of the host activates, per product.
fn uncovered(clients: &[Client]) -> Vec<Uncovered> {
    let mut by_product: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in clients.iter().filter(|c| c.uncovered) {
        if let Some(p) = &c.product {
            by_product.entry(p).or_default().push(&c.fqdn);
        }
    }
    by_product
        .into_iter()
        .map(|(product, names)| Uncovered {
            product: product.to_string(),
            clients: names.len() as u64,
            fqdns: names.into_iter().take(10).map(str::to_string).collect(),
        })
        .collect()
}

/// The activation IDs the clients of `hosts` asked with that nothing names, sorted, with how
/// many clients ask with each and the first of their names.
pub fn unnamed(hosts: &[HostClients]) -> Vec<Unnamed> {
    let mut by_id: BTreeMap<&str, (u64, &str)> = BTreeMap::new();
    let clients = hosts.iter().flat_map(|h| &h.clients);
    for c in clients.filter(|c| c.product.is_none()) {
        let entry = by_id
            .entry(&c.activation_id)
            .or_insert((0, c.fqdn.as_str()));
        entry.0 += 1;
        entry.1 = entry.1.min(c.fqdn.as_str());
    }
    by_id
        .into_iter()
        .map(|(id, (clients, example))| Unnamed {
            activation_id: id.to_string(),
            clients,
            example: example.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests;
