//! `kmsconf doctor`: the checks the troubleshooting chapters of the guide do by hand, each with a
//! verdict (ok / warning / failed), why, and the fix. The checks are pure functions of the config,
//! one discovery and one TCP probe, so each verdict is unit-tested; [`diagnose`] gathers those
//! inputs for one host, [`run`] for every selected host and the DNS zones. Nothing is printed
//! here.

pub mod adba;
mod coverage;
mod dns;
mod events;
mod facts;
mod host;
mod probe;
mod retired;
mod winrm;

use std::time::Duration;

use kmsconf_model::config::{ActivationNames, Config, HostConfig, TargetSpec, DEFAULT_PORT};
use schemars::JsonSchema;
use serde::Serialize;

use kmsconf_model::catalog;
use kmsconf_model::clock;
use kmsconf_model::state::HostState;
use kmsconf_targets::dns::SrvResolver;
use kmsconf_targets::Connect;

use crate::failure::HostFailure;
use crate::session;
use crate::Error;

pub use coverage::{check_coverage, FLEET};
pub use dns::{
    check_srv, check_stale_srv, check_unpublished, dns_checks, ExpectedSrv, RetiredSrv, SrvLookup,
    SrvRecord,
};
pub use events::{check_events, cmid_duplicates, dns_publishing, kms_idle, service_running};
pub use facts::windows_facts;
pub use host::{
    check_host, clock_skew, count_threshold, firewall_rules, grace_period, port_reachable,
    product_licensed, rearm_count,
};
pub use probe::{probe_port, PortProbe, ProbeError};
pub use retired::{check_retired, no_host_key, port_closed};
pub use winrm::winrm_service;

/// Stable check ids (the `check` field of `doctor --json`).
pub const HOST_REACHABLE: &str = "host-reachable";
pub const PORT_REACHABLE: &str = "port-reachable";
pub const FIREWALL_RULES: &str = "firewall-rules";
pub const CLOCK_SKEW: &str = "clock-skew";
pub const PRODUCT_LICENSED: &str = "product-licensed";
pub const GRACE_PERIOD: &str = "grace-period";
pub const COUNT_THRESHOLD: &str = "count-threshold";
pub const REARM_COUNT: &str = "rearm-count";
pub const SERVICE_RESTART: &str = "service-restart";
pub const DNS_SRV: &str = "dns-srv";
/// Retired hosts: nothing listens on the KMS port, no KMS host key, no SRV record.
pub const PORT_CLOSED: &str = "port-closed";
pub const NO_HOST_KEY: &str = "no-host-key";
pub const DNS_UNPUBLISHED: &str = "dns-unpublished";
/// What the host shows against kmsconf's Windows facts (`model/data/windows.toml`).
pub const WINDOWS_FACTS: &str = "windows-facts";
/// Active Directory-based activation: the schema class and container exist, one object per
/// SKU, no object for an undeclared key.
pub const ADBA_CONTAINER: &str = "adba-container";
pub const ADBA_DUPLICATES: &str = "adba-duplicates";
pub const ADBA_STALE: &str = "adba-stale";
/// A declared activation object the directory does not hold yet (one warning per object).
pub const ADBA_MISSING: &str = "adba-missing";
/// `[fleet] clients`: each family is activated by a present, licensed KMS host key.
pub const CLIENT_COVERAGE: &str = "client-coverage";
/// From the KMS host's event log: cloned images, an idle host, DNS publishing, the service.
pub const CMID_DUPLICATES: &str = "cmid-duplicates";
pub const KMS_IDLE: &str = "kms-idle";
pub const DNS_PUBLISHING: &str = "dns-publishing";
pub const SERVICE_RUNNING: &str = "service-running";
/// The event log could not be read, so its checks did not run.
pub const EVENT_LOG: &str = "event-log";
/// A WinRM host's own WinRM service settings (`AllowUnencrypted`, Basic, `MaxTimeoutms`,
/// `MaxShellsPerUser`); not run for hosts reached otherwise.
pub const WINRM_SERVICE: &str = "winrm-service";

/// Clock skew up to this many seconds is fine; beyond it time sync is not working.
pub const CLOCK_WARN_SECONDS: i64 = 60;
/// Beyond this, kmsconf calls the clock wrong. Microsoft gives no figure for 0xC004F06C (only
/// "too different"); 5 minutes is the default tolerance of a Windows domain's Kerberos, which
/// a KMS host and its clients normally share.
pub const CLOCK_FAIL_SECONDS: i64 = 300;
/// Grace left below this is a warning, below [`GRACE_FAIL_MINUTES`] a failure.
pub const GRACE_WARN_MINUTES: u32 = 14 * 24 * 60;
pub const GRACE_FAIL_MINUTES: u32 = 3 * 24 * 60;
/// The longest the directory's whole LDAP exchange may take.
pub const ADBA_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the port check waits for a TCP connection.
pub const PORT_TIMEOUT: Duration = Duration::from_secs(3);

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warning,
    Failed,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warning => "warning",
            Self::Failed => "failed",
        }
    }
}

/// One check of one host (or, for DNS, one zone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Check {
    pub host: String,
    /// A stable id: `port-reachable`, `clock-skew`, ...
    #[schemars(
        with = "String",
        extend("enum" = [
            HOST_REACHABLE, PORT_REACHABLE, FIREWALL_RULES, CLOCK_SKEW, PRODUCT_LICENSED,
            GRACE_PERIOD, COUNT_THRESHOLD, REARM_COUNT, SERVICE_RESTART, DNS_SRV, PORT_CLOSED,
            NO_HOST_KEY, DNS_UNPUBLISHED, WINDOWS_FACTS, ADBA_CONTAINER, ADBA_DUPLICATES,
            ADBA_STALE, CLIENT_COVERAGE, CMID_DUPLICATES, KMS_IDLE, DNS_PUBLISHING,
            SERVICE_RUNNING, EVENT_LOG, WINRM_SERVICE, ADBA_MISSING
        ])
    )]
    pub check: &'static str,
    /// What the check is about within the host: a product id, a zone; `None` for the host.
    pub subject: Option<String>,
    pub status: Verdict,
    pub detail: String,
    /// What to do; `None` when there is nothing to do.
    pub fix: Option<String>,
    /// The activation error code clients see because of this, where there is one.
    pub code: Option<String>,
    /// Why the host (or the DNS server) could not be read, when that is what the check found.
    pub error: Option<HostFailure>,
}

impl Check {
    fn new(host: &str, check: &'static str, status: Verdict, detail: impl Into<String>) -> Self {
        Self {
            host: host.to_string(),
            check,
            subject: None,
            status,
            detail: detail.into(),
            fix: None,
            code: None,
            error: None,
        }
    }
    fn about(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
    fn code(mut self, code: u32) -> Self {
        self.code = Some(catalog::format_code(code));
        self
    }
    fn failure(mut self, error: HostFailure) -> Self {
        self.error = Some(error);
        self
    }
    /// Whether the fix asks for `slmgr.vbs /rearm`, which only works while rearms are left.
    fn uses_rearm(&self) -> bool {
        self.status != Verdict::Ok && self.fix.as_deref().is_some_and(|f| f.contains("/rearm"))
    }
}

/// What discovery returned, with the local clock at the middle of the round trip.
#[derive(Debug, Clone)]
pub struct HostReading {
    pub state: Result<HostState, HostFailure>,
    pub local_millis: i64,
}

/// One host's checks (a retired host's are [`check_retired`]), and the notice to show when the discovery created a lab host.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    pub checks: Vec<Check>,
    /// `(host, notice)` when the discovery created the host.
    pub created: Option<(String, String)>,
    /// What discovery read, for the checks across hosts (`client-coverage`); `None` for a
    /// retired host or one that could not be read.
    pub state: Option<HostState>,
}

/// Every check of the selected hosts (all when `only` is empty) and, when `[dns]` is selected,
/// of the DNS zones; `parallelism` hosts at a time.
#[derive(Debug, Clone)]
pub struct Report {
    pub checks: Vec<Check>,
    /// The hosts diagnosed, in order (the DNS checks are not a host's).
    pub hosts: Vec<String>,
    /// `(host, notice)` for each lab host the discovery created.
    pub created: Vec<(String, String)>,
}

/// What the event-log checks read: the events of the last `window` seconds (by the host's
/// clock), and how old the newest request may be before the host counts as idle (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventWindow {
    pub window: i64,
    pub idle: i64,
}

/// Diagnoses each selected host, then checks the `_vlmcs._tcp` records of the `[dns]` zones.
pub fn run(
    config: &Config,
    only: &[String],
    connect: &Connect,
    parallelism: usize,
    window: EventWindow,
) -> Result<Report, Error> {
    let per_host = session::each_host(config, only, parallelism, |host| {
        let names = config.activation_names();
        (host.name.clone(), diagnose(host, connect, window, names))
    })?;
    let created = per_host
        .iter()
        .filter_map(|(_, d)| d.created.clone())
        .collect();
    let hosts = per_host.iter().map(|(name, _)| name.clone()).collect();
    // the fleet's coverage is a question about every host: not asked of a `--host` selection
    let coverage = match (&config.fleet, only.is_empty()) {
        (Some(fleet), true) => {
            let states: Vec<(&str, &HostState)> = per_host
                .iter()
                .filter_map(|(name, d)| d.state.as_ref().map(|s| (name.as_str(), s)))
                .collect();
            check_coverage(fleet, &states)
        }
        _ => Vec::new(),
    };
    let mut checks: Vec<Check> = per_host.into_iter().flat_map(|(_, d)| d.checks).collect();
    checks.extend(coverage);
    if let Some(inputs) = dns_inputs(config, only) {
        let lookup = SrvResolver::new(&inputs.server);
        checks.extend(dns_checks(&inputs.expected, &inputs.retired, &lookup));
    }
    let ad_selected = session::select(config, only).is_ok_and(|s| s.active_directory);
    if let Some(ad) = config.active_directory.as_ref().filter(|_| ad_selected) {
        let dns = config.dns.as_ref().map(|d| d.server.as_str());
        let reading = adba::read(ad, dns, connect.timeout.min(ADBA_TIMEOUT));
        checks.extend(adba::adba_checks(ad, &reading));
    }
    Ok(Report {
        checks,
        hosts,
        created,
    })
}

/// What the DNS checks compare, and the server they ask.
struct DnsInputs {
    expected: Vec<ExpectedSrv>,
    retired: Vec<RetiredSrv>,
    server: String,
}

/// The declared `_vlmcs._tcp` records (one per zone and published host: target = the host's
/// `address`, port = its `[service] port` or 1688), the retired hosts' addresses no record may
/// point at, and the `[dns] server` to ask, when the config has a `[dns]` table and `--host`
/// selects `dns` (or nothing).
fn dns_inputs(config: &Config, only: &[String]) -> Option<DnsInputs> {
    let dns = config
        .dns
        .as_ref()
        .filter(|_| session::select(config, only).is_ok_and(|s| s.dns))?;
    let mut expected = Vec::new();
    let mut retired = Vec::new();
    for zone in &dns.zones {
        for host in config.hosts.values() {
            if let (true, Some(address)) = (host.is_retired(), &host.address) {
                retired.push(RetiredSrv {
                    host: host.name.clone(),
                    zone: zone.clone(),
                    target: address.clone(),
                });
            }
            let (Some(publish), Some(address)) = (host.dns, &host.address) else {
                continue;
            };
            expected.push(ExpectedSrv {
                host: host.name.clone(),
                zone: zone.clone(),
                target: address.clone(),
                port: host.kms_port(),
                priority: publish.priority,
                weight: publish.weight,
            });
        }
    }
    Some(DnsInputs {
        expected,
        retired,
        server: dns.server.clone(),
    })
}

/// Discovers the host (one round trip), probes its KMS port, reads its event log (one more
/// round trip in the same session, for a host that is not retired and was read) and, for a
/// WinRM host, its WinRM service's settings (one more), and runs every check.
/// `names`: the config's `[fleet.activation_ids]`, which name the clients' products.
pub fn diagnose(
    cfg: &HostConfig,
    connect: &Connect,
    window: EventWindow,
    names: &ActivationNames,
) -> Diagnosis {
    let before = clock::now_millis();
    let target = kmsconf_targets::open_host(&cfg.name, &cfg.target, connect)
        .map_err(crate::failure::of_target);
    let discovery = target
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|t| t.discover().map_err(crate::failure::of_target));
    let created = session::created_notice(cfg, &discovery);
    let state = discovery.map(|d| d.state);
    let after = clock::now_millis();
    let observed = HostReading {
        state,
        local_millis: before + (after - before) / 2,
    };
    let port = kms_port(cfg, observed.state.as_ref().ok());
    let probe = probe_port(probe_address(cfg), port, PORT_TIMEOUT);
    let mut checks = if cfg.is_retired() {
        check_retired(cfg, &observed, &probe)
    } else {
        check_host(cfg, &observed, &probe)
    };
    if let (false, Ok(target), Ok(state)) = (cfg.is_retired(), &target, &observed.state) {
        let log = crate::clients::read_log(&cfg.name, target.as_ref(), state, window.window, names);
        checks.extend(check_events(&log, window.idle, cfg.dns.is_some()));
        if let TargetSpec::WinRm { winrm, .. } = &cfg.target {
            let reading = target
                .read_winrm_service()
                .map_err(crate::failure::of_target);
            checks.push(winrm_service(
                &cfg.name,
                winrm.operation_timeout.seconds(),
                reading.as_ref(),
            ));
        }
    }
    let state = observed.state.ok().filter(|_| !cfg.is_retired());
    Diagnosis {
        checks,
        created,
        state,
    }
}

/// The address the port check connects to: the host's `address`, else its name.
pub fn probe_address(cfg: &HostConfig) -> &str {
    cfg.address.as_deref().unwrap_or(&cfg.name)
}

/// The KMS port clients use: the configured one, else the one in effect, else 1688.
pub fn kms_port(cfg: &HostConfig, state: Option<&HostState>) -> u16 {
    cfg.service
        .port()
        .or(state.map(|s| s.service.effective_port()))
        .unwrap_or(DEFAULT_PORT)
}

#[cfg(test)]
mod tests;
