//! DNS provider: the `_vlmcs._tcp` SRV records through which KMS clients find their hosts, kept
//! in an authoritative DNS server with RFC 2136 updates (the server itself is reached through
//! [`crate::targets::dns`]).
//!
//! Each published host has one record per zone, matched by its target (the host's `address`);
//! records pointing at a retired host's `address` are deleted (whatever their port, and whether
//! or not kmsconf owns the RRset: the host is declared, and declared gone); other records no host
//! declares are reported and left alone, or deleted when the config says kmsconf owns the RRset
//! (`exclusive = true`). A plan holds one change per
//! record; apply sends all of a zone's changes in one atomic UPDATE whose prerequisite is the
//! RRset exactly as the plan saw it, so a concurrent change makes it fail instead of clobbering.

use std::collections::BTreeMap;

use kmsconf_engine::plan::HostPlan;
use kmsconf_model::config::{Config, DnsConfig, TargetSpec, DNS_PLAN_HOST};
use kmsconf_model::dns::{DnsState, SrvRecord, SRV_PREFIX};
use kmsconf_model::ops::PlanOp;
use kmsconf_model::{EntryState, KmsChange, KmsHostPlan};
use serde_json::Value;

use crate::contract::ChangeSpec;

/// The records each zone should hold for the published hosts, by target.
fn desired(cfg: &DnsConfig, config: &Config) -> Vec<(String, SrvRecord)> {
    config
        .hosts
        .values()
        .filter_map(|h| {
            let publish = h.dns?;
            let address = h.address.as_ref()?;
            let record = SrvRecord {
                priority: publish.priority,
                weight: publish.weight,
                port: h.kms_port(),
                target: address.trim_end_matches('.').to_ascii_lowercase(),
                ttl: cfg.ttl,
            };
            Some((h.name.clone(), record))
        })
        .collect()
}

/// The retired hosts whose records are to go, by the target their records carry.
fn retired(config: &Config) -> Vec<(String, String)> {
    config
        .hosts
        .values()
        .filter(|h| h.is_retired())
        .filter_map(|h| {
            let address = h.address.as_ref()?;
            Some((
                h.name.clone(),
                address.trim_end_matches('.').to_ascii_lowercase(),
            ))
        })
        .collect()
}

/// The addresses whose A/AAAA records discovery should read (with `check_targets`).
pub fn published_targets(cfg: &DnsConfig, config: &Config) -> Vec<String> {
    if !cfg.check_targets {
        return Vec::new();
    }
    desired(cfg, config)
        .into_iter()
        .map(|(_, r)| r.target)
        .collect()
}

/// Plans the DNS server as the plan entry `dns`, which runs after the published hosts.
pub fn plan_dns(cfg: &DnsConfig, config: &Config, state: DnsState) -> KmsHostPlan {
    let wanted = desired(cfg, config);
    let retired = retired(config);
    let mut changes = Vec::new();
    let mut notices = Vec::new();
    for zone in &cfg.zones {
        let observed = state.zones.get(zone).cloned().unwrap_or_default();
        let records: Vec<SrvRecord> = wanted.iter().map(|(_, r)| r.clone()).collect();
        let owned = Owned {
            retired: &retired,
            exclusive: cfg.exclusive,
        };
        let diff = diff_zone(zone, &records, observed, &owned);
        changes.extend(diff.changes.into_iter().map(|c| c.into_change(cfg)));
        notices.extend(foreign_notice(zone, &diff.foreign));
    }
    if cfg.check_targets {
        notices.extend(target_notices(&wanted, &state));
    }
    changes.sort_by(|a: &KmsChange, b| a.address.cmp(&b.address));
    if !changes.is_empty() {
        notices.extend(unreadable_secret_notices(cfg));
    }
    HostPlan {
        name: DNS_PLAN_HOST.to_string(),
        target: TargetSpec::Dns {
            server: cfg.server.clone(),
        },
        depends_on: wanted.into_iter().map(|(host, _)| host).collect(),
        created: false,
        observed: EntryState::DnsServer(state),
        changes,
        notices,
    }
}

/// The published hosts whose address has no A/AAAA record, or is in no zone the server serves.
fn target_notices(wanted: &[(String, SrvRecord)], state: &DnsState) -> Vec<String> {
    let mut notices = Vec::new();
    for (host, record) in wanted {
        match state.targets.get(&record.target) {
            Some(addresses) if addresses.is_empty() => notices.push(format!(
                "host `{host}`: its address `{}` has no A or AAAA record on the DNS server, so clients would find the SRV record but not the host",
                record.target
            )),
            Some(_) => {}
            None => notices.push(format!(
                "host `{host}`: the DNS server would not answer for `{}` (not in a zone it serves), so its A/AAAA records were not checked",
                record.target
            )),
        }
    }
    notices
}

/// The signing secrets (TSIG key, GSS-TSIG keytab) that cannot be read now.
fn unreadable_secret_notices(cfg: &DnsConfig) -> Vec<String> {
    let mut notices = Vec::new();
    if let Some(key) = cfg.tsig.as_ref() {
        if !key.secret.source.is_available() {
            notices.push(format!(
                "the secret of TSIG key `{}` ({}) cannot be read now: apply will fail until it can",
                key.name,
                key.secret.source.describe()
            ));
        }
    }
    let keytab = cfg.gss_tsig.as_ref().and_then(|g| g.keytab.as_ref());
    if let Some(keytab) = keytab {
        if !keytab.source.is_available() {
            notices.push(format!(
                "the GSS-TSIG keytab ({}) cannot be read now: apply will fail until it can",
                keytab.source.describe()
            ));
        }
    }
    notices
}

/// What the DNS entry and the published hosts of one plan say about each other: which record
/// waits for a host's port change, and which published host also publishes itself.
pub fn annotate(plan: &mut kmsconf_model::KmsPlan, config: &Config) {
    note_port_changes(plan, config);
    note_self_publishing(plan, config);
    retire_after_dns(plan, config);
}

/// A retired host waits for the DNS entry, so clients stop being sent to it before it stops
/// serving them (and is not retired when the hosts that replace it did not converge); it is
/// listed after the entry it waits for.
fn retire_after_dns(plan: &mut kmsconf_model::KmsPlan, config: &Config) {
    if !plan.hosts.iter().any(|h| h.name == DNS_PLAN_HOST) {
        return;
    }
    let retired = |name: &str| config.hosts.get(name).is_some_and(|h| h.is_retired());
    for host in plan.hosts.iter_mut().filter(|h| retired(&h.name)) {
        host.depends_on.push(DNS_PLAN_HOST.to_string());
    }
    // a stable sort: present hosts, the DNS entry, then the retired hosts, each in plan order
    plan.hosts.sort_by_key(|h| retired(&h.name));
}

/// A host kmsconf publishes should not also publish itself (Windows' default): its own dynamic
/// updates would write the same RRset, or fail and be logged every time the service starts.
fn note_self_publishing(plan: &mut kmsconf_model::KmsPlan, config: &Config) {
    if config.dns.is_none() {
        return;
    }
    for host in &mut plan.hosts {
        let Some(cfg) = config.hosts.get(&host.name) else {
            continue;
        };
        let EntryState::KmsHost(state) = &host.observed else {
            continue;
        };
        // only a KMS host (now, or once its Windows host key is activated) publishes itself
        let kms_host = state.windows_is_activated_kms_host()
            || cfg
                .products
                .contains_key(&kmsconf_model::config::ProductId::Windows);
        let unmanaged = cfg.service.dns_publishing().is_none();
        if cfg.dns.is_some() && kms_host && unmanaged && state.service.dns_publishing() {
            host.notices.push(format!(
                "kmsconf publishes this host's SRV records, and the host publishes them itself too (DNS publishing is on): set `dns_publishing = false` under `[hosts.{}.service]` (`slmgr.vbs /cdns`)",
                host.name
            ));
        }
    }
}

/// Notes on the DNS record changes whose port a host's `service.port` change in the same plan
/// sets: the record is written after that host converges (the plan entry `dns` depends on it).
fn note_port_changes(plan: &mut kmsconf_model::KmsPlan, config: &Config) {
    let mut port_changes: BTreeMap<String, (String, Value)> = BTreeMap::new();
    for host in &plan.hosts {
        let Some(cfg) = config.hosts.get(&host.name) else {
            continue;
        };
        let change = host
            .changes
            .iter()
            .find(|c| c.address == crate::contract::PORT);
        if let (Some(change), Some(address), Some(_)) = (change, &cfg.address, cfg.dns) {
            let target = address.trim_end_matches('.').to_ascii_lowercase();
            port_changes.insert(target, (host.name.clone(), change.after.clone()));
        }
    }
    let Some(dns) = plan.hosts.iter_mut().find(|h| h.name == DNS_PLAN_HOST) else {
        return;
    };
    for change in &mut dns.changes {
        let target = change.after.get("target").and_then(Value::as_str);
        if let Some((host, port)) = target.and_then(|t| port_changes.get(t)) {
            change.note = Some(format!(
                "written after host `{host}` converges: its `{}` changes to {port}",
                crate::contract::PORT
            ));
        }
    }
}

/// The records of a zone that no host declares and that stay, in one line.
fn foreign_notice(zone: &str, foreign: &[SrvRecord]) -> Option<String> {
    let list: Vec<String> = foreign.iter().map(ToString::to_string).collect();
    match list.len() {
        0 => None,
        1 => Some(format!(
            "zone {zone}: `{SRV_PREFIX}` has a record no host declares, left alone (`exclusive = true` would delete it): {}",
            list[0]
        )),
        n => Some(format!(
            "zone {zone}: `{SRV_PREFIX}` has {n} records no host declares, left alone (`exclusive = true` would delete them): {}",
            list.join(", ")
        )),
    }
}

/// What changed in the DNS server since a plan was made, zone by zone:
/// `zone corp.example: 0 100 1688 kms01.corp.example. (ttl 3600) -> (none)`.
pub fn drift(planned: &DnsState, now: &DnsState) -> Vec<String> {
    let show = |records: Option<&Vec<SrvRecord>>| match records {
        Some(r) if !r.is_empty() => r
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        _ => "(none)".to_string(),
    };
    let zones: std::collections::BTreeSet<&String> =
        planned.zones.keys().chain(now.zones.keys()).collect();
    let mut out: Vec<String> = zones
        .into_iter()
        .filter(|z| planned.zones.get(*z) != now.zones.get(*z))
        .map(|z| {
            format!(
                "zone {z}: {} -> {}",
                show(planned.zones.get(z)),
                show(now.zones.get(z))
            )
        })
        .collect();
    let names: std::collections::BTreeSet<&String> =
        planned.targets.keys().chain(now.targets.keys()).collect();
    out.extend(
        names
            .into_iter()
            .filter(|n| planned.targets.get(*n) != now.targets.get(*n))
            .map(|n| {
                let show = |a: Option<&Vec<String>>| {
                    a.map_or("(not answered)".to_string(), |a| {
                        format!("[{}]", a.join(", "))
                    })
                };
                format!(
                    "addresses of {n}: {} -> {}",
                    show(planned.targets.get(n)),
                    show(now.targets.get(n))
                )
            }),
    );
    out
}

/// One record change, before it becomes a plan change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RecordChange {
    zone: String,
    address: String,
    remove: Option<SrvRecord>,
    add: Option<SrvRecord>,
    /// Why a record goes that the `exclusive` setting alone would keep.
    note: Option<String>,
}

impl RecordChange {
    fn into_change(self, cfg: &DnsConfig) -> KmsChange {
        let before = self.remove.as_ref().map_or(Value::Null, SrvRecord::value);
        let mut spec = ChangeSpec::new(self.address.clone(), before);
        if let Some(note) = self.note {
            spec = spec.note(note);
        }
        spec.into_change(PlanOp::UpdateSrvRecord {
            zone: self.zone,
            remove: self.remove,
            add: self.add,
            tsig: cfg.tsig.clone(),
            gss_tsig: cfg.gss_tsig.clone().map(Box::new),
        })
    }
}

#[derive(Debug, Default)]
struct ZoneDiff {
    changes: Vec<RecordChange>,
    /// Records no host declares that stay (not exclusive).
    foreign: Vec<SrvRecord>,
}

/// Which of a zone's records no published host declares kmsconf deletes.
struct Owned<'a> {
    /// Retired hosts and the target of their records: deleted in any case.
    retired: &'a [(String, String)],
    /// Every other record is deleted too.
    exclusive: bool,
}

/// Compares the records the hosts declare with a zone's RRset. A declared record is matched by
/// its target (preferring a record on the same port); what is left over goes when a retired
/// host's or the RRset is kmsconf's, and is foreign otherwise.
fn diff_zone(
    zone: &str,
    wanted: &[SrvRecord],
    mut observed: Vec<SrvRecord>,
    owned: &Owned,
) -> ZoneDiff {
    observed.sort();
    let address = |label: &str| format!("{zone}/{SRV_PREFIX}/{label}");
    let mut diff = ZoneDiff::default();
    for want in wanted {
        if let Some(i) = observed.iter().position(|r| r == want) {
            observed.remove(i);
            continue;
        }
        let same_target = |r: &SrvRecord| r.target == want.target;
        let found = observed
            .iter()
            .position(|r| same_target(r) && r.port == want.port)
            .or_else(|| observed.iter().position(same_target));
        let remove = found.map(|i| observed.remove(i));
        diff.changes.push(RecordChange {
            zone: zone.to_string(),
            address: address(&want.target),
            remove,
            add: Some(want.clone()),
            note: None,
        });
    }
    let retired_host = |r: &SrvRecord| {
        owned
            .retired
            .iter()
            .find(|(_, t)| *t == r.target)
            .map(|(h, _)| h.clone())
    };
    let (gone, kept): (Vec<SrvRecord>, Vec<SrvRecord>) = observed
        .into_iter()
        .partition(|r| owned.exclusive || retired_host(r).is_some());
    diff.foreign = kept;
    let mut taken: Vec<String> = diff.changes.iter().map(|c| c.address.clone()).collect();
    for record in gone {
        // the target alone where that is unique, else the whole record data (unique in an RRset)
        let mut label = address(&record.target);
        if taken.contains(&label) {
            label = address(&record.rdata());
        }
        taken.push(label.clone());
        let note = retired_host(&record).map(|h| format!("host `{h}` is retired"));
        diff.changes.push(RecordChange {
            zone: zone.to_string(),
            address: label,
            remove: Some(record),
            add: None,
            note,
        });
    }
    diff
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port,
            target: target.into(),
            ttl: 3600,
        }
    }

    const Z: &str = "corp.example";

    fn owned(exclusive: bool) -> Owned<'static> {
        Owned {
            retired: &[],
            exclusive,
        }
    }

    #[test]
    fn a_retired_hosts_records_go_on_any_port_and_others_stay() {
        let retired = [("kms01".to_string(), "kms01.z".to_string())];
        let owned = Owned {
            retired: &retired,
            exclusive: false,
        };
        let wanted = [srv(0, 0, 1688, "kms02.z")];
        let observed = vec![
            srv(0, 0, 1688, "kms01.z"),
            srv(0, 0, 1689, "kms01.z"),
            srv(0, 0, 1688, "kms02.z"),
            srv(0, 0, 1688, "other.z"),
        ];
        let diff = diff_zone(Z, &wanted, observed, &owned);
        let gone: Vec<(&str, Option<&str>)> = diff
            .changes
            .iter()
            .map(|c| (c.address.as_str(), c.note.as_deref()))
            .collect();
        assert_eq!(
            gone,
            [
                (
                    "corp.example/_vlmcs._tcp/kms01.z",
                    Some("host `kms01` is retired")
                ),
                (
                    "corp.example/_vlmcs._tcp/0 0 1689 kms01.z.",
                    Some("host `kms01` is retired")
                ),
            ]
        );
        assert!(diff.changes.iter().all(|c| c.add.is_none()));
        assert_eq!(diff.foreign, vec![srv(0, 0, 1688, "other.z")]);
    }

    #[test]
    fn a_missing_record_is_created_and_a_matching_one_left_alone() {
        let wanted = [srv(0, 100, 1688, "kms01.z"), srv(10, 0, 1688, "kms02.z")];
        let diff = diff_zone(
            Z,
            &wanted,
            vec![srv(0, 100, 1688, "kms01.z")],
            &owned(false),
        );
        assert_eq!(diff.changes.len(), 1);
        let c = &diff.changes[0];
        assert_eq!(c.address, "corp.example/_vlmcs._tcp/kms02.z");
        assert_eq!(
            (c.remove.clone(), c.add.clone()),
            (None, Some(wanted[1].clone()))
        );
        assert!(diff.foreign.is_empty());
    }

    #[test]
    fn a_changed_port_or_ttl_updates_the_hosts_record() {
        let wanted = [srv(0, 100, 1689, "kms01.z")];
        let mut old_ttl = srv(0, 100, 1689, "kms01.z");
        old_ttl.ttl = 60;
        for before in [srv(0, 100, 1688, "kms01.z"), old_ttl] {
            let diff = diff_zone(Z, &wanted, vec![before.clone()], &owned(false));
            assert_eq!(diff.changes.len(), 1, "{before}");
            assert_eq!(diff.changes[0].remove, Some(before));
            assert_eq!(diff.changes[0].add, Some(wanted[0].clone()));
        }
    }

    #[test]
    fn foreign_records_stay_unless_the_rrset_is_exclusive() {
        let wanted = [srv(0, 100, 1688, "kms01.z")];
        let observed = vec![
            srv(0, 100, 1688, "kms01.z"),
            srv(0, 0, 1688, "old.z"),
            srv(5, 0, 1690, "kms01.z"),
        ];
        let kept = diff_zone(Z, &wanted, observed.clone(), &owned(false));
        assert!(kept.changes.is_empty());
        assert_eq!(
            kept.foreign,
            vec![srv(0, 0, 1688, "old.z"), srv(5, 0, 1690, "kms01.z")]
        );

        let owned = diff_zone(Z, &wanted, observed, &owned(true));
        let addresses: Vec<&str> = owned.changes.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(
            addresses,
            [
                "corp.example/_vlmcs._tcp/old.z",
                "corp.example/_vlmcs._tcp/kms01.z"
            ]
        );
        assert!(owned.changes.iter().all(|c| c.add.is_none()));
    }

    #[test]
    fn deletions_with_the_same_target_get_distinct_addresses() {
        let observed = vec![srv(0, 0, 1688, "old.z"), srv(0, 0, 1689, "old.z")];
        let diff = diff_zone(Z, &[], observed, &owned(true));
        let addresses: Vec<&str> = diff.changes.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(
            addresses,
            [
                "corp.example/_vlmcs._tcp/old.z",
                "corp.example/_vlmcs._tcp/0 0 1689 old.z."
            ]
        );
    }

    #[test]
    fn drift_reads_zone_by_zone_and_foreign_records_make_one_notice() {
        let planned = DnsState {
            zones: [(Z.to_string(), vec![srv(0, 100, 1688, "kms01.z")])].into(),
            targets: BTreeMap::new(),
        };
        let mut now = planned.clone();
        assert!(drift(&planned, &now).is_empty());
        now.zones.insert(Z.into(), vec![]);
        assert_eq!(
            drift(&planned, &now),
            ["zone corp.example: 0 100 1688 kms01.z. (ttl 3600) -> (none)"]
        );
        let two = [srv(0, 0, 1688, "a.z"), srv(0, 0, 1688, "b.z")];
        let notice = foreign_notice(Z, &two).expect("notice");
        assert!(
            notice.contains("has 2 records no host declares") && notice.contains("b.z."),
            "{notice}"
        );
        assert!(foreign_notice(Z, &[]).is_none());
    }
}
