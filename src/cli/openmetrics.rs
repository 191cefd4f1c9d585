//! `status --format openmetrics` and `doctor --format openmetrics`: the day-2 state as
//! OpenMetrics text for node_exporter's textfile collector, built from the rows the commands
//! already compute.
//!
//! Written so that the Prometheus text parsers (node_exporter's textfile collector, `promtool
//! check metrics`) read it as well: the license stateset is typed `gauge` (how Prometheus stores
//! a stateset: one series per state, 1 for the current one, the state in a label named like the
//! metric), the counter family is named with its `_total` suffix, and the two `*_count` metrics
//! are typed `untyped` (see [`Family::untyped`]); `# EOF` is a comment to them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use kmsconf_app::clients::HostClients;
use kmsconf_app::doctor::{Check, Verdict};
use kmsconf_app::status::{HostStatus, ProductStatus};
use kmsconf_model::state::LicenseStatus;

/// The output formats of `status` and `doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people, in a terminal.
    Human,
    /// One JSON object (the same as `--json`).
    Json,
    /// OpenMetrics text for node_exporter's textfile collector, ending with `# EOF`.
    Openmetrics,
}

/// The check id of a failed discovery: such a host counts as not read.
const HOST_REACHABLE: &str = "host-reachable";

/// One metric family: its header, then its samples, as OpenMetrics wants them together.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: Vec<(Vec<(&'static str, String)>, String)>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Self {
        Self {
            name,
            kind,
            help,
            samples: Vec::new(),
        }
    }

    /// A family typed `untyped`: promtool's linter refuses a gauge named `*_count` (a suffix it
    /// keeps for histograms and summaries), these names are kmsconf's contract, and `untyped` is
    /// the Prometheus text format's type for "no more is said" (OpenMetrics calls it `unknown`,
    /// which promtool does not parse).
    fn untyped(name: &'static str, help: &'static str) -> Self {
        Self::new(name, "untyped", help)
    }

    fn add(&mut self, labels: Vec<(&'static str, String)>, value: impl ToString) {
        self.samples.push((labels, value.to_string()));
    }

    fn write(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        for (labels, value) in &self.samples {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(out, "{}{{{}}} {value}", self.name, labels.join(","));
        }
    }
}

/// A label value as OpenMetrics (and the Prometheus text format) escapes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn document(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        f.write(&mut out);
    }
    out.push_str("# EOF\n");
    out
}

fn host_up() -> Family {
    Family::new(
        "kmsconf_host_up",
        "gauge",
        "whether kmsconf could read the host (1) or not (0); a host not read has no other series",
    )
}

/// The status of every host: counts, thresholds, license state, grace, request counters.
pub fn status(hosts: &[HostStatus]) -> String {
    let mut up = host_up();
    let mut current = Family::untyped(
        "kmsconf_kms_current_count",
        "distinct clients the KMS host counts for the product in the last 30 days",
    );
    let mut required = Family::untyped(
        "kmsconf_kms_required_count",
        "the count the product needs before the KMS host activates clients",
    );
    let mut license = Family::new(
        "kmsconf_product_license_status",
        "gauge",
        "the product's license status, as a stateset: 1 for the current state, 0 for the others",
    );
    let mut grace = Family::new(
        "kmsconf_product_grace_remaining_seconds",
        "gauge",
        "seconds left in the product's grace period (Windows counts it in whole minutes); present only while it is in one",
    );
    let mut requests = Family::new(
        "kmsconf_kms_requests_total",
        "counter",
        "activation requests the KMS host received for the product, by the client's license status",
    );
    for h in hosts {
        up.add(vec![("host", h.name.clone())], u8::from(h.error.is_none()));
        if h.error.is_some() {
            continue;
        }
        for p in &h.products {
            let at = || vec![("host", h.name.clone()), ("product", p.product.to_string())];
            if let Some(count) = p.current_count {
                current.add(at(), count);
            }
            required.add(at(), p.required_count);
            for state in (0..=6).filter_map(LicenseStatus::from_cim) {
                let mut labels = at();
                labels.push(("kmsconf_product_license_status", state.word().to_string()));
                license.add(labels, u8::from(state == p.license_status));
            }
            if in_grace(p) {
                grace.add(at(), u64::from(p.grace_minutes) * 60);
            }
            for (client_status, n) in by_client_status(p) {
                let mut labels = at();
                labels.push(("client_status", client_status.to_string()));
                requests.add(labels, n);
            }
        }
    }
    document(&[up, current, required, license, grace, requests])
}

fn in_grace(p: &ProductStatus) -> bool {
    p.license_status.word().ends_with("grace")
}

fn by_client_status(p: &ProductStatus) -> [(&'static str, u64); 6] {
    let q = &p.requests;
    [
        (LicenseStatus::Unlicensed.word(), q.unlicensed),
        (LicenseStatus::Licensed.word(), q.licensed),
        (LicenseStatus::InitialGrace.word(), q.initial_grace),
        (
            LicenseStatus::OutOfToleranceGrace.word(),
            q.out_of_tolerance_grace,
        ),
        (LicenseStatus::NonGenuineGrace.word(), q.non_genuine_grace),
        (LicenseStatus::Notification.word(), q.notification),
    ]
}

/// The doctor's verdicts: `hosts` are the hosts diagnosed, `checks` every check (with the
/// zone-wide DNS ones). Two findings of one check on one subject give its worst verdict.
pub fn doctor(hosts: &[String], checks: &[Check]) -> String {
    let unread = |host: &str| {
        checks
            .iter()
            .any(|c| c.host == host && c.check == HOST_REACHABLE && c.status == Verdict::Failed)
    };
    let mut up = host_up();
    for host in hosts {
        up.add(vec![("host", host.clone())], u8::from(!unread(host)));
    }
    let mut worst: BTreeMap<(&str, &str, &str), Verdict> = BTreeMap::new();
    for c in checks.iter().filter(|c| !unread(&c.host)) {
        let key = (c.host.as_str(), c.check, c.subject.as_deref().unwrap_or(""));
        let v = worst.entry(key).or_insert(c.status);
        *v = (*v).max(c.status);
    }
    let mut status = Family::new(
        "kmsconf_doctor_check_status",
        "gauge",
        "the verdict of a doctor check: 0 ok, 1 warning, 2 failed",
    );
    for ((host, check, subject), verdict) in worst {
        let value = match verdict {
            Verdict::Ok => 0,
            Verdict::Warning => 1,
            Verdict::Failed => 2,
        };
        status.add(
            vec![
                ("host", host.to_string()),
                ("check", check.to_string()),
                ("subject", subject.to_string()),
            ],
            value,
        );
    }
    document(&[up, status])
}

/// `clients --format openmetrics`: per host the newest request, the distinct clients per
/// product, the duplicate CMIDs and whether the Software Protection service runs. A host whose
/// log was not read has only `kmsconf_kms_service_up` absent and no other series.
pub fn clients(hosts: &[HostClients]) -> String {
    let mut last = Family::new(
        "kmsconf_kms_last_request_timestamp_seconds",
        "gauge",
        "when the KMS host answered its newest activation request in the window (event 12290), seconds since the epoch",
    );
    let mut distinct = Family::new(
        "kmsconf_kms_clients",
        "gauge",
        "distinct client machine IDs the KMS host answered with success in the window, per product",
    );
    let mut duplicates = Family::new(
        "kmsconf_kms_duplicate_cmids",
        "gauge",
        "client machine IDs that asked from two or more names in the window (cloned images)",
    );
    let mut service = Family::new(
        "kmsconf_kms_service_up",
        "gauge",
        "whether the Software Protection service (sppsvc) runs (1) or not (0)",
    );
    for h in hosts.iter().filter(|h| h.error.is_none()) {
        let host = || vec![("host", h.host.clone())];
        if let Some(at) = h
            .last_request
            .as_deref()
            .and_then(kmsconf_model::events::timestamp)
        {
            last.add(host(), at);
        }
        for p in &h.products {
            distinct.add(
                vec![("host", h.host.clone()), ("product", p.product.clone())],
                p.distinct_clients,
            );
        }
        duplicates.add(host(), h.duplicates.len());
        service.add(
            host(),
            u8::from(h.service.as_ref().is_some_and(|s| s.running)),
        );
    }
    document(&[last, distinct, duplicates, service])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }

    #[test]
    fn the_worst_verdict_of_one_subject_wins_and_an_unread_host_only_is_down() {
        let check = |host: &str, check, status| Check {
            host: host.into(),
            check,
            subject: Some("corp.example".into()),
            status,
            detail: String::new(),
            fix: None,
            code: None,
            error: None,
        };
        let checks = [
            check("dns", "dns-srv", Verdict::Ok),
            check("dns", "dns-srv", Verdict::Failed),
            check("kms02", HOST_REACHABLE, Verdict::Failed),
            check("kms02", "port-reachable", Verdict::Ok),
        ];
        let text = doctor(&["kms02".into()], &checks);
        assert!(
            text.contains("kmsconf_host_up{host=\"kms02\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("kmsconf_doctor_check_status{host=\"dns\",check=\"dns-srv\",subject=\"corp.example\"} 2\n# EOF\n"), "{text}");
        assert!(!text.contains("host=\"kms02\",check"), "{text}");
    }
}
