//! The DNS checks: do the `_vlmcs._tcp` SRV records of each zone send clients to the declared
//! hosts and ports, and do any point at hosts the config no longer declares.

use super::retired::RETIRE;
use super::{Check, Verdict, DNS_SRV, DNS_UNPUBLISHED};
use crate::failure::HostFailure;

/// One `_vlmcs._tcp` SRV record as DNS returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// The record a declared host should have in a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedSrv {
    pub host: String,
    pub zone: String,
    /// The host's address, which the record must point at.
    pub target: String,
    pub port: u16,
    pub priority: u16,
    pub weight: u16,
}

/// Reads the `_vlmcs._tcp` SRV records of a name. Implemented by the DNS target's resolver;
/// a failed query is a [`FailureKind::Dns`] failure.
pub trait SrvLookup {
    fn lookup_srv(&self, name: &str) -> Result<Vec<SrvRecord>, HostFailure>;
}

impl SrvLookup for kmsconf_targets::dns::SrvResolver {
    fn lookup_srv(&self, name: &str) -> Result<Vec<SrvRecord>, HostFailure> {
        let records = kmsconf_targets::dns::SrvResolver::lookup_srv(self, name)
            .map_err(crate::failure::of_target)?;
        Ok(records
            .into_iter()
            .map(|r| SrvRecord {
                priority: r.priority,
                weight: r.weight,
                port: r.port,
                target: r.target,
            })
            .collect())
    }
}

pub(super) fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// Whether the records `found` for `expected.zone` send clients to the declared host and port.
pub fn check_srv(expected: &ExpectedSrv, found: &Result<Vec<SrvRecord>, HostFailure>) -> Check {
    let name = format!("_vlmcs._tcp.{}", expected.zone);
    let c = |v, detail: String| srv_check(expected, v, detail);
    let publish = format!("publish it: `[hosts.{}.dns]` with kmsconf's `[dns]` section, or `dns_publishing = true` on the host, or create `{name} SRV {} {} {} {}.`", expected.host, expected.priority, expected.weight, expected.port, expected.target);
    let records = match found {
        Err(e) => {
            return c(Verdict::Failed, format!("the query for {name} failed: {e}"))
                .fix("check the DNS server kmsconf asks and the zone")
                .code(0x8007_232A)
                .failure(e.clone())
        }
        Ok(r) => r,
    };
    let mine: Vec<&SrvRecord> = records
        .iter()
        .filter(|r| same_name(&r.target, &expected.target))
        .collect();
    if records.is_empty() {
        return c(
            Verdict::Failed,
            format!("{name} has no SRV record: clients that rely on DNS find no KMS host"),
        )
        .fix(publish)
        .code(0x8007_251D);
    }
    if mine.is_empty() {
        let others: Vec<&str> = records.iter().map(|r| r.target.as_str()).collect();
        return c(
            Verdict::Failed,
            format!(
                "{name} has no record for {} (it points at {})",
                expected.target,
                others.join(", ")
            ),
        )
        .fix(publish)
        .code(0x8007_232B);
    }
    check_host_records(expected, &name, &mine)
}

/// The DNS check of one host in one zone, with the zone as its subject.
fn srv_check(expected: &ExpectedSrv, verdict: Verdict, detail: String) -> Check {
    Check::new(&expected.host, DNS_SRV, verdict, detail).about(expected.zone.clone())
}

/// Whether the records of `name` that point at the host (`mine`, at least one) carry the
/// declared port, priority and weight.
fn check_host_records(expected: &ExpectedSrv, name: &str, mine: &[&SrvRecord]) -> Check {
    let c = |v, detail: String| srv_check(expected, v, detail);
    let Some(exact) = mine.iter().find(|r| r.port == expected.port) else {
        let ports: Vec<String> = mine.iter().map(|r| r.port.to_string()).collect();
        return c(
            Verdict::Failed,
            format!(
                "{name} sends clients to {} on port {}, but the host listens on {}",
                expected.target,
                ports.join(", "),
                expected.port
            ),
        )
        .fix("correct the record's port (kmsconf apply converges declared records)")
        .code(0xC004_F074);
    };
    if (exact.priority, exact.weight) != (expected.priority, expected.weight) {
        return c(
            Verdict::Warning,
            format!(
                "{name} points at {}:{} with priority {} weight {}, declared {} {}",
                expected.target,
                expected.port,
                exact.priority,
                exact.weight,
                expected.priority,
                expected.weight
            ),
        )
        .fix("run `kmsconf apply` to converge the record");
    }
    c(
        Verdict::Ok,
        format!(
            "{name} points at {}:{} (priority {}, weight {})",
            expected.target, expected.port, exact.priority, exact.weight
        ),
    )
}

/// Records in a zone that point at no declared host: clients trying them fail (0x800706BA).
/// `retired` are the addresses of retired hosts, whose records their own check reports.
pub fn check_stale_srv(
    zone: &str,
    declared: &[ExpectedSrv],
    retired: &[&str],
    found: &Result<Vec<SrvRecord>, HostFailure>,
) -> Option<Check> {
    let records = found.as_ref().ok()?;
    let stale: Vec<String> = records
        .iter()
        .filter(|r| !declared.iter().any(|d| same_name(&d.target, &r.target)))
        .filter(|r| !retired.iter().any(|t| same_name(t, &r.target)))
        .map(|r| format!("{}:{}", r.target.trim_end_matches('.'), r.port))
        .collect();
    if stale.is_empty() {
        return None;
    }
    Some(
        Check::new("dns", DNS_SRV, Verdict::Warning, format!("_vlmcs._tcp.{zone} also points at {}, which no host in the config declares", stale.join(", ")))
            .about(zone)
            .fix("remove the records of KMS hosts that are gone (or declare the zone `exclusive = true` so kmsconf removes them)")
            .code(0x8007_06BA),
    )
}

/// The DNS checks: one query per zone, then [`check_srv`] per declared host,
/// [`check_unpublished`] per retired host and [`check_stale_srv`] per
/// zone.
pub fn dns_checks(
    expected: &[ExpectedSrv],
    retired: &[RetiredSrv],
    lookup: &dyn SrvLookup,
) -> Vec<Check> {
    let mut zones: Vec<&str> = expected
        .iter()
        .map(|e| e.zone.as_str())
        .chain(retired.iter().map(|r| r.zone.as_str()))
        .collect();
    zones.sort_unstable();
    zones.dedup();
    let mut checks = Vec::new();
    for zone in zones {
        let found = lookup.lookup_srv(&format!("_vlmcs._tcp.{zone}"));
        let in_zone: Vec<ExpectedSrv> = expected
            .iter()
            .filter(|e| e.zone == zone)
            .cloned()
            .collect();
        checks.extend(in_zone.iter().map(|e| check_srv(e, &found)));
        let gone: Vec<&RetiredSrv> = retired.iter().filter(|r| r.zone == zone).collect();
        checks.extend(gone.iter().map(|r| check_unpublished(r, &found)));
        let targets: Vec<&str> = gone.iter().map(|r| r.target.as_str()).collect();
        checks.extend(check_stale_srv(zone, &in_zone, &targets, &found));
    }
    checks
}

/// A retired host whose records are looked for in a zone: no record may point at `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredSrv {
    pub host: String,
    pub zone: String,
    /// The host's address, which its old records pointed at.
    pub target: String,
}

/// Whether the zone's records still send clients to the retired host.
pub fn check_unpublished(
    retired: &RetiredSrv,
    found: &Result<Vec<SrvRecord>, HostFailure>,
) -> Check {
    let name = format!("_vlmcs._tcp.{}", retired.zone);
    let check = |v, detail: String| {
        Check::new(&retired.host, DNS_UNPUBLISHED, v, detail).about(retired.zone.clone())
    };
    let records = match found {
        Err(e) => {
            return check(Verdict::Warning, format!("the query for {name} failed, so kmsconf cannot tell whether it still points at {}: {e}", retired.target))
                .fix("check the DNS server kmsconf asks and the zone")
                .failure(e.clone())
        }
        Ok(r) => r,
    };
    let ports: Vec<String> = records
        .iter()
        .filter(|r| same_name(&r.target, &retired.target))
        .map(|r| r.port.to_string())
        .collect();
    if ports.is_empty() {
        return check(
            Verdict::Ok,
            format!("{name} has no record for {}", retired.target),
        );
    }
    check(
        Verdict::Failed,
        format!(
            "{name} still sends clients to the retired host {} (port {}), where they fail",
            retired.target,
            ports.join(", ")
        ),
    )
    .fix(RETIRE)
    .code(0x8007_06BA)
}
