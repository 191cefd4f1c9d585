//! `kmsconf doctor`: the checks the troubleshooting chapters of the guide do by hand, each with a
//! verdict (ok / warning / failed), why, and the fix. The checks are pure functions of the config,
//! one discovery and one TCP probe, so each verdict is unit-tested; [`diagnose`] gathers those
//! inputs for one host. Nothing is printed here.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use kmsconf_model::config::{HostConfig, ProductId, RuleGroup, DEFAULT_PORT};
use schemars::JsonSchema;
use serde::Serialize;

use kmsconf_model::catalog;
use kmsconf_model::clock;
use kmsconf_model::state::{Channel, HostState, LicenseStatus, ProductState};
use kmsconf_targets::DynTarget;

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

/// Clock skew up to this many seconds is fine; beyond it time sync is not working.
pub const CLOCK_WARN_SECONDS: i64 = 60;
/// Beyond this, kmsconf calls the clock wrong. Microsoft gives no figure for 0xC004F06C (only
/// "too different"); 5 minutes is the default tolerance of a Windows domain's Kerberos, which
/// a KMS host and its clients normally share.
pub const CLOCK_FAIL_SECONDS: i64 = 300;
/// Grace left below this is a warning, below [`GRACE_FAIL_MINUTES`] a failure.
pub const GRACE_WARN_MINUTES: u32 = 14 * 24 * 60;
pub const GRACE_FAIL_MINUTES: u32 = 3 * 24 * 60;
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
            GRACE_PERIOD, COUNT_THRESHOLD, REARM_COUNT, SERVICE_RESTART, DNS_SRV
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
    /// Whether the fix asks for `slmgr.vbs /rearm`, which only works while rearms are left.
    fn uses_rearm(&self) -> bool {
        self.status != Verdict::Ok && self.fix.as_deref().is_some_and(|f| f.contains("/rearm"))
    }
}

/// The result of the TCP connect to the KMS port.
#[derive(Debug, Clone)]
pub struct PortProbe {
    pub address: String,
    pub port: u16,
    /// How long the connection took, or why it failed.
    pub result: Result<Duration, String>,
}

/// Connects to `address:port` (every address the name resolves to, in turn) within `timeout`:
/// what the guide does with `telnet host 1688`.
pub fn probe_port(address: &str, port: u16, timeout: Duration) -> PortProbe {
    let start = Instant::now();
    let result = (|| {
        let addrs: Vec<_> = (address, port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve `{address}`: {e}"))?
            .collect();
        let mut last = format!("`{address}` resolves to no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(_) => return Ok(start.elapsed()),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    last = format!("no answer from {addr} within {}s", timeout.as_secs())
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(last)
    })();
    PortProbe {
        address: address.to_string(),
        port,
        result,
    }
}

/// What discovery returned, with the local clock at the middle of the round trip.
#[derive(Debug, Clone)]
pub struct HostReading {
    pub state: Result<HostState, String>,
    pub local_millis: i64,
}

/// One host's checks, and the notice to show when the discovery created a lab host.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    pub checks: Vec<Check>,
    pub created: Option<String>,
}

/// Discovers the host (one round trip), probes its KMS port, and runs every check.
pub fn diagnose(cfg: &HostConfig, target: Result<&DynTarget, String>) -> Diagnosis {
    let before = clock::now_millis();
    let discovery = target
        .and_then(|t| t.discover().map_err(|e| e.to_string()))
        .and_then(|d| {
            let created = d.created;
            d.state
                .into_host()
                .map(|state| kmsconf_engine::target::Discovery { state, created })
        });
    let created = match &discovery {
        Ok(d) if d.created => Some(kmsconf_providers::planner::created_notice(&d.state)),
        _ => None,
    };
    let state = discovery.map(|d| d.state);
    let after = clock::now_millis();
    let observed = HostReading {
        state,
        local_millis: before + (after - before) / 2,
    };
    let port = kms_port(cfg, observed.state.as_ref().ok());
    let probe = probe_port(probe_address(cfg), port, PORT_TIMEOUT);
    Diagnosis {
        checks: check_host(cfg, &observed, &probe),
        created,
    }
}

/// The address the port check connects to: the host's `address`, else its name.
pub fn probe_address(cfg: &HostConfig) -> &str {
    cfg.address.as_deref().unwrap_or(&cfg.name)
}

/// The KMS port clients use: the configured one, else the one in effect, else 1688.
pub fn kms_port(cfg: &HostConfig, state: Option<&HostState>) -> u16 {
    cfg.service
        .port
        .or(state.map(|s| s.service.effective_port()))
        .unwrap_or(DEFAULT_PORT)
}

/// Every check of one host, in a fixed order.
pub fn check_host(cfg: &HostConfig, observed: &HostReading, probe: &PortProbe) -> Vec<Check> {
    let host = cfg.name.as_str();
    let mut checks = Vec::new();
    let state = match &observed.state {
        Ok(s) => Some(s),
        Err(e) => {
            checks.push(
                Check::new(
                    host,
                    HOST_REACHABLE,
                    Verdict::Failed,
                    format!("discovery failed: {e}"),
                )
                .fix(format!(
                    "make `{}` reachable for kmsconf, then run doctor again",
                    cfg.target
                )),
            );
            None
        }
    };
    checks.push(port_reachable(host, probe));
    let Some(state) = state else {
        return checks;
    };
    // the rule must let in the port the host listens on now (a different configured port is
    // drift that `kmsconf plan` shows)
    checks.push(firewall_rules(host, state, state.service.effective_port()));
    checks.push(clock_skew(host, state.clock, observed.local_millis));
    for id in cfg.products.keys() {
        checks.push(product_licensed(host, *id, state.products.get(id)));
    }
    for (id, product) in &state.products {
        if let Some(c) = grace_period(host, *id, product) {
            checks.push(c);
        }
    }
    for id in cfg.products.keys() {
        if let Some(c) = state
            .products
            .get(id)
            .and_then(|p| count_threshold(host, *id, p))
        {
            checks.push(c);
        }
    }
    if state.service.restart_pending {
        checks.push(
            Check::new(host, SERVICE_RESTART, Verdict::Warning, "KMS settings were changed but the Software Protection service has not restarted, so they are not in effect yet")
                .fix("run `kmsconf apply` (it restarts the service) or `Restart-Service sppsvc` on the host"),
        );
    }
    if checks.iter().any(Check::uses_rearm) {
        checks.push(rearm_count(host, state.remaining_rearm_count));
    }
    checks
}

/// `telnet host 1688`: can a client reach the KMS port from here?
pub fn port_reachable(host: &str, probe: &PortProbe) -> Check {
    let endpoint = format!("{}:{}", probe.address, probe.port);
    match &probe.result {
        Ok(_) => Check::new(
            host,
            PORT_REACHABLE,
            Verdict::Ok,
            format!("TCP {endpoint} accepts connections"),
        ),
        Err(e) => Check::new(host, PORT_REACHABLE, Verdict::Failed, format!("TCP {endpoint} is not reachable from here: {e}"))
            .fix(format!("check that the KMS host listens on port {} (Software Protection service running, `slmgr.vbs /sprt`), that its firewall lets the port in, and that nothing between here and the host filters it; clients see 0xC004F074 / 0xC004F039 until then", probe.port))
            .code(0xC004_F039),
    }
}

/// The inbound rule that lets clients reach the KMS port is enabled on the host.
pub fn firewall_rules(host: &str, state: &HostState, port: u16) -> Check {
    let fw = &state.firewall;
    let group = fw.groups.get(&RuleGroup::KeyManagementService);
    let group_on = group.is_some_and(|g| g.enabled);
    let port_rule = fw.port_rule.as_ref().filter(|r| r.port == port);
    let scope = |list: &[String]| {
        if list.is_empty() {
            String::new()
        } else {
            format!(" (only from {})", list.join(", "))
        }
    };
    let fix = format!("declare `rule_groups = [\"key-management-service\"]` under `[hosts.{host}.firewall]` and run `kmsconf apply` (by hand: `Set-NetFirewallRule -Name SPPSVC-In-TCP -Enabled True`)");
    if let Some(rule) = port_rule {
        let detail = format!(
            "kmsconf's rule `{}` lets TCP {port} in{}",
            kmsconf_model::catalog::PORT_RULE_NAME,
            scope(&rule.remote_addresses)
        );
        return Check::new(host, FIREWALL_RULES, Verdict::Ok, detail);
    }
    match (group_on, port == DEFAULT_PORT) {
        (true, true) => {
            let s = group.map(|g| scope(&g.remote_addresses)).unwrap_or_default();
            Check::new(host, FIREWALL_RULES, Verdict::Ok, format!("the Key Management Service rule group is enabled: TCP {port} in{s}"))
        }
        (true, false) => Check::new(host, FIREWALL_RULES, Verdict::Warning, format!("the Key Management Service rule group is enabled, but the host listens on custom port {port} and the built-in rule is for TCP 1688; no rule is known to let {port} in"))
            .fix(format!("declare the firewall under `[hosts.{host}.firewall]` with `port = {port}` in `[hosts.{host}.service]`: kmsconf then adds `{}` for the port", kmsconf_model::catalog::PORT_RULE_NAME))
            .code(0x8007_06BA),
        (false, _) => Check::new(host, FIREWALL_RULES, Verdict::Failed, format!("no enabled inbound rule lets TCP {port} in: the Key Management Service rule group is disabled"))
            .fix(fix)
            .code(0x8007_06BA),
    }
}

/// The host's clock against the clock of the machine running kmsconf.
pub fn clock_skew(host: &str, host_clock: Option<i64>, local_millis: i64) -> Check {
    let Some(host_secs) = host_clock else {
        return Check::new(host, CLOCK_SKEW, Verdict::Warning, "the host did not report its clock")
            .fix("compare the host's clock with a trusted source by hand (`w32tm /stripchart /computer:SOURCE`)");
    };
    // the host reports whole seconds; compare in seconds, rounding the local clock
    // saturating: a host (or a hand-edited lab file) can report any clock at all
    let skew = host_secs.saturating_sub(local_millis.saturating_add(500).div_euclid(1000));
    let direction = if skew >= 0 { "ahead of" } else { "behind" };
    // beyond two minutes, whole minutes: the second the host read its clock is not exact
    let shown = if skew.unsigned_abs() >= 120 {
        skew.saturating_add(30).div_euclid(60).saturating_mul(60)
    } else {
        skew
    };
    let detail = format!(
        "the host's clock is {} {direction} this machine's",
        clock::human(shown)
    );
    let fix = "synchronise the host with the same time source as its clients (`w32tm /resync` on a domain member, or an NTP source) and check the time zone; activation compares clocks in UTC";
    match skew.saturating_abs() {
        s if s <= CLOCK_WARN_SECONDS => Check::new(
            host,
            CLOCK_SKEW,
            Verdict::Ok,
            format!("the host's clock is within {CLOCK_WARN_SECONDS}s of this machine's"),
        ),
        s if s <= CLOCK_FAIL_SECONDS => Check::new(host, CLOCK_SKEW, Verdict::Warning, detail)
            .fix(fix)
            .code(0xC004_F06C),
        _ => Check::new(host, CLOCK_SKEW, Verdict::Failed, detail)
            .fix(fix)
            .code(0xC004_F074),
    }
}

/// A declared KMS host product is installed, is a KMS host key, and is activated.
pub fn product_licensed(host: &str, id: ProductId, p: Option<&ProductState>) -> Check {
    let name = catalog::product_name(id);
    let apply = "run `kmsconf plan` to see what is missing and `kmsconf apply` to converge";
    let failed = |detail: String| {
        Check::new(host, PRODUCT_LICENSED, Verdict::Failed, detail)
            .about(id.id())
            .fix(apply)
    };
    let Some(p) = p.filter(|p| p.partial_key.is_some()) else {
        return failed(format!("{name} has no key installed")).code(0xC004_F014);
    };
    let key = p.partial_key.clone().unwrap_or_default();
    if p.channel != Channel::KmsHost {
        return failed(format!(
            "{name} has a {} ending in {key}, not a KMS host key",
            p.channel
        ));
    }
    if p.license_status == LicenseStatus::Licensed {
        let detail = format!("{name}: KMS host key ending in {key} is licensed");
        return Check::new(host, PRODUCT_LICENSED, Verdict::Ok, detail).about(id.id());
    }
    failed(format!(
        "{name}: KMS host key ending in {key} is {} (not activated), so the host activates no {name} clients",
        p.license_status
    ))
    .code(0xC004_F041)
}

/// A product running on a grace period: how long is left.
pub fn grace_period(host: &str, id: ProductId, p: &ProductState) -> Option<Check> {
    let in_grace = matches!(
        p.license_status,
        LicenseStatus::InitialGrace
            | LicenseStatus::OutOfToleranceGrace
            | LicenseStatus::NonGenuineGrace
            | LicenseStatus::ExtendedGrace
    );
    if !in_grace {
        return None;
    }
    let name = catalog::product_name(id);
    let left = clock::human(i64::from(p.grace_minutes) * 60);
    let detail = format!(
        "{name} is in its {} period: {left} left, then notification mode",
        p.license_status
    );
    let fix = "activate it (`kmsconf apply`); if that cannot happen in time, `slmgr.vbs /rearm` on the host restarts the grace period once per rearm left";
    let verdict = match p.grace_minutes {
        m if m < GRACE_FAIL_MINUTES => Verdict::Failed,
        m if m < GRACE_WARN_MINUTES => Verdict::Warning,
        _ => Verdict::Ok,
    };
    let check = Check::new(host, GRACE_PERIOD, verdict, detail).about(id.id());
    Some(if verdict == Verdict::Ok {
        check
    } else {
        check.fix(fix).code(0xC004_F009)
    })
}

/// The KMS host product's count against the threshold it needs before it activates clients.
/// `None` when the product is not an activated KMS host (product-licensed says why).
pub fn count_threshold(host: &str, id: ProductId, p: &ProductState) -> Option<Check> {
    if !p.is_activated_kms_host() {
        return None;
    }
    let info = catalog::product(id);
    let required = p
        .required_count
        .or(info.map(|i| i.required_count))
        .unwrap_or(5);
    let server = info
        .and_then(|i| i.required_count_server)
        .filter(|s| *s < required);
    let count = p.current_count.unwrap_or(0);
    let name = catalog::product_name(id);
    let check = |v, detail: String| Check::new(host, COUNT_THRESHOLD, v, detail).about(id.id());
    if count >= required {
        return Some(check(
            Verdict::Ok,
            format!("{name} count {count} reaches {required}: the host activates its clients"),
        ));
    }
    let served = p.requests.total.saturating_sub(p.requests.failed);
    let mut fix = "more distinct clients must ask within 30 days (each counts once); `kmsconf status` shows the count".to_string();
    let mut detail = match server {
        Some(s) if count >= s => format!("{name} count {count}: enough for Windows Server ({s}) but below the {required} client Windows needs, which get 0xC004F038"),
        _ if p.current_count.is_none() => format!("{name}: no client has asked yet (count 0), and the host needs {} before it activates any: clients get 0xC004F038", server.unwrap_or(required)),
        _ => format!("{name} count {count} is below the {} it needs: clients get 0xC004F038", server.unwrap_or(required)),
    };
    if served > u64::from(count) {
        detail.push_str(&format!(
            "; {served} requests were served, yet the count is {count}: if more than {count} machines asked, they share client machine IDs (CMIDs; clones not prepared with `sysprep /generalize`) and each CMID counts once"
        ));
        fix = "give every cloned client its own CMID, as the guide does on each clone: `slmgr.vbs /rearm` (check the rearm count with `slmgr.vbs /dlv` first), reboot, `slmgr.vbs /upk`, `slmgr.vbs /ipk` its KMS client key (`kmsconf client-script`), `slmgr.vbs /ato`".to_string();
    }
    let verdict = match server {
        Some(s) if count >= s => Verdict::Warning,
        _ => Verdict::Failed,
    };
    Some(check(verdict, detail).fix(fix).code(0xC004_F038))
}

/// Rearms left on the host, reported when a suggested fix uses `slmgr.vbs /rearm`.
pub fn rearm_count(host: &str, remaining: Option<u32>) -> Check {
    let about = "a fix above uses `slmgr.vbs /rearm`, and every rearm uses one of a limited count";
    match remaining {
        None => Check::new(host, REARM_COUNT, Verdict::Warning, format!("{about}; the host did not report how many are left"))
            .fix("read \"Remaining Windows rearm count\" with `slmgr.vbs /dlv` before rearming"),
        Some(0) => Check::new(host, REARM_COUNT, Verdict::Failed, format!("{about}; this host has none left, so `/rearm` fails here"))
            .fix("activate instead of rearming; on clones, check each machine's own count with `slmgr.vbs /dlv`"),
        Some(n) => Check::new(host, REARM_COUNT, Verdict::Ok, format!("{about}; this host has {n} left (clients: check each with `slmgr.vbs /dlv`)")),
    }
}

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

/// Reads the `_vlmcs._tcp` SRV records of a name. Implemented by the DNS provider's resolver.
pub trait SrvLookup {
    fn lookup_srv(&self, name: &str) -> Result<Vec<SrvRecord>, String>;
}

impl SrvLookup for kmsconf_targets::dns::SrvResolver {
    fn lookup_srv(&self, name: &str) -> Result<Vec<SrvRecord>, String> {
        let records = kmsconf_targets::dns::SrvResolver::lookup_srv(self, name)?;
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

fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// Whether the records `found` for `expected.zone` send clients to the declared host and port.
pub fn check_srv(expected: &ExpectedSrv, found: &Result<Vec<SrvRecord>, String>) -> Check {
    let name = format!("_vlmcs._tcp.{}", expected.zone);
    let c = |v, detail: String| {
        Check::new(&expected.host, DNS_SRV, v, detail).about(expected.zone.clone())
    };
    let publish = format!("publish it: `[hosts.{}.dns]` with kmsconf's `[dns]` section, or `dns_publishing = true` on the host, or create `{name} SRV {} {} {} {}.`", expected.host, expected.priority, expected.weight, expected.port, expected.target);
    let records = match found {
        Err(e) => {
            return c(Verdict::Failed, format!("the query for {name} failed: {e}"))
                .fix("check the DNS server kmsconf asks and the zone")
                .code(0x8007_232A)
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
pub fn check_stale_srv(
    zone: &str,
    declared: &[ExpectedSrv],
    found: &Result<Vec<SrvRecord>, String>,
) -> Option<Check> {
    let records = found.as_ref().ok()?;
    let stale: Vec<String> = records
        .iter()
        .filter(|r| !declared.iter().any(|d| same_name(&d.target, &r.target)))
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

/// The DNS checks: one query per zone, then [`check_srv`] per declared host and
/// [`check_stale_srv`] per zone.
pub fn dns_checks(expected: &[ExpectedSrv], lookup: &dyn SrvLookup) -> Vec<Check> {
    let mut zones: Vec<&str> = expected.iter().map(|e| e.zone.as_str()).collect();
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
        checks.extend(check_stale_srv(zone, &in_zone, &found));
    }
    checks
}

#[cfg(test)]
mod tests;
