//! The checks of one host: reachability, firewall, clock, products, grace, count and rearms,
//! each a pure function of the config, one discovery and the port probe.

use kmsconf_model::catalog::PORT_RULE_NAME;
use kmsconf_model::config::{
    HostConfig, ProductId, Profile, RuleGroup, DEFAULT_PORT, DEFAULT_PROFILES,
};
use kmsconf_model::state::{Channel, HostState, LicenseStatus, ProductState};

use crate::failure::HostFailure;

use super::{
    catalog, clock, Check, HostReading, PortProbe, Verdict, CLOCK_FAIL_SECONDS, CLOCK_SKEW,
    CLOCK_WARN_SECONDS, COUNT_THRESHOLD, FIREWALL_RULES, GRACE_FAIL_MINUTES, GRACE_PERIOD,
    GRACE_WARN_MINUTES, HOST_REACHABLE, PORT_REACHABLE, PRODUCT_LICENSED, REARM_COUNT,
    SERVICE_RESTART,
};

/// Every check of one host, in a fixed order.
pub fn check_host(cfg: &HostConfig, observed: &HostReading, probe: &PortProbe) -> Vec<Check> {
    let host = cfg.name.as_str();
    let mut checks = Vec::new();
    let state = match &observed.state {
        Ok(s) => Some(s),
        Err(e) => {
            checks.push(unreachable(cfg, e));
            None
        }
    };
    checks.push(port_reachable(host, probe));
    let Some(state) = state else {
        return checks;
    };
    // the rule must let in the port the host listens on now (a different configured port is
    // drift that `kmsconf plan` shows)
    let profiles = cfg
        .firewall
        .as_ref()
        .map_or(DEFAULT_PROFILES.to_vec(), |f| f.profiles.clone());
    checks.push(firewall_rules(
        host,
        state,
        state.service.effective_port(),
        &profiles,
    ));
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
    checks.extend(super::windows_facts(host, state));
    checks
}

/// Discovery failed with `error`.
pub(super) fn unreachable(cfg: &HostConfig, error: &HostFailure) -> Check {
    Check::new(
        &cfg.name,
        HOST_REACHABLE,
        Verdict::Failed,
        format!("discovery failed: {error}"),
    )
    .fix(format!(
        "make `{}` reachable for kmsconf, then run doctor again",
        cfg.target
    ))
    .failure(error.clone())
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

/// The profiles the KMS port is open on: kmsconf's own rule for a custom port, else the Key
/// Management Service rules that are enabled (`None` for a custom port no rule is known for).
fn open_profiles(state: &HostState, port: u16) -> Option<Vec<(Profile, String)>> {
    let fw = &state.firewall;
    if let Some(rule) = fw.port_rule.as_ref().filter(|r| r.port == port) {
        let from = scope(&rule.remote_addresses);
        let open = rule
            .profiles
            .iter()
            .map(|p| (*p, format!("{PORT_RULE_NAME}{from}")));
        return Some(open.collect());
    }
    if port != DEFAULT_PORT {
        return None;
    }
    let rules = fw
        .groups
        .get(&RuleGroup::KeyManagementService)
        .map(|g| g.rules.clone())
        .unwrap_or_default();
    let open = Profile::ALL.into_iter().filter_map(|p| {
        rules
            .iter()
            .find(|(_, r)| r.open_on(p))
            .map(|(name, r)| (p, format!("{name}{}", scope(&r.remote_addresses))))
    });
    Some(open.collect())
}

fn scope(list: &[String]) -> String {
    if list.is_empty() {
        String::new()
    } else {
        format!(" from {}", list.join(", "))
    }
}

/// The inbound rules that let clients reach the KMS port are enabled on the host, on every
/// profile the config opens it on (Domain and Private unless it says otherwise).
pub fn firewall_rules(host: &str, state: &HostState, port: u16, wanted: &[Profile]) -> Check {
    let ids = |list: &[Profile]| list.iter().map(|p| p.id()).collect::<Vec<_>>().join(", ");
    let declare = format!("declare `rule_groups = [\"key-management-service\"]` with `profiles = [{}]` under `[hosts.{host}.firewall]` and run `kmsconf apply`", wanted.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", "));
    let Some(open) = open_profiles(state, port) else {
        return custom_port_closed(host, state, port, &declare);
    };
    let missing: Vec<Profile> = wanted
        .iter()
        .copied()
        .filter(|p| !open.iter().any(|(o, _)| o == p))
        .collect();
    let by: Vec<String> = open
        .iter()
        .map(|(p, rule)| format!("{p}: {rule}"))
        .collect();
    if missing.is_empty() {
        return Check::new(
            host,
            FIREWALL_RULES,
            Verdict::Ok,
            format!(
                "TCP {port} is open on the {} profiles ({})",
                ids(wanted),
                by.join("; ")
            ),
        );
    }
    let fix = format!("{declare} (by hand: `Set-NetFirewallRule -Name SPPSVC-In-TCP-NoScope -Enabled True` opens the domain profile, `Set-NetFirewallRule -Name SPPSVC-In-TCP -Enabled True -Profile Private` the private one)");
    if open.is_empty() {
        return Check::new(
            host,
            FIREWALL_RULES,
            Verdict::Failed,
            format!("no enabled inbound rule lets TCP {port} in on any profile"),
        )
        .fix(fix)
        .code(0x8007_06BA);
    }
    Check::new(
        host,
        FIREWALL_RULES,
        Verdict::Warning,
        format!(
            "TCP {port} is open on {} but not on the {} profile(s) clients may come from ({})",
            ids(&open.iter().map(|(p, _)| *p).collect::<Vec<_>>()),
            ids(&missing),
            by.join("; ")
        ),
    )
    .fix(fix)
    .code(0x8007_06BA)
}

/// No rule is known to let the custom port `port` in; `declare` is how the config opens it.
fn custom_port_closed(host: &str, state: &HostState, port: u16, declare: &str) -> Check {
    let kms_on = state
        .firewall
        .groups
        .get(&RuleGroup::KeyManagementService)
        .is_some_and(|g| g.rules.values().any(|r| r.enabled));
    let check = if kms_on {
        Check::new(host, FIREWALL_RULES, Verdict::Warning, format!("the Key Management Service rules are enabled, but the host listens on custom port {port} and the built-in rules are for TCP 1688; no rule is known to let {port} in"))
    } else {
        Check::new(
            host,
            FIREWALL_RULES,
            Verdict::Failed,
            format!("no enabled inbound rule lets TCP {port} in"),
        )
    };
    check
        .fix(format!("{declare}, with `port = {port}` in `[hosts.{host}.service]`: kmsconf then adds `{PORT_RULE_NAME}` for the port"))
        .code(0x8007_06BA)
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
    let fix = "synchronise the host with the same time source as its clients (`w32tm /resync` on a domain member, or an NTP source); activation compares clocks in UTC, so the time zone does not matter";
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
