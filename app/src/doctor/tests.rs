//! Each check's verdicts, from hand-built host states.

use std::path::Path;

use kmsconf_model::config::{Config, HostConfig, ProductId, Profile, RuleGroup, DEFAULT_PROFILES};

use super::*;
use crate::failure::FailureKind;
use kmsconf_model::state::{Channel, LicenseStatus, ProductState, RequestCounters};

const NOW_MS: i64 = 1_795_000_000_000;

fn host(extra: &str) -> HostConfig {
    let text = format!(
        "[hosts.kms01]\ntarget = \"lab:kms01.json\"\naddress = \"127.0.0.1\"\n[hosts.kms01.products.windows]\nhost_key = {{ env = \"DOCTOR_TEST_UNSET\" }}\n{extra}"
    );
    let config = Config::parse(Path::new("kmsconf.toml"), &text).expect("config");
    config.hosts["kms01"].clone()
}

fn healthy() -> HostState {
    let mut s = HostState::fresh_windows_server("KMS01");
    s.clock = Some(NOW_MS / 1000);
    s.remaining_rearm_count = Some(5);
    let w = s.products.get_mut(&ProductId::Windows).expect("windows");
    w.channel = Channel::KmsHost;
    w.partial_key = Some("6789B".into());
    w.license_status = LicenseStatus::Licensed;
    w.current_count = Some(30);
    w.required_count = Some(25);
    w.requests = RequestCounters {
        total: 30,
        initial_grace: 30,
        ..RequestCounters::default()
    };
    for rule in s
        .firewall
        .groups
        .get_mut(&RuleGroup::KeyManagementService)
        .expect("group")
        .rules
        .values_mut()
    {
        rule.enabled = true;
    }
    s
}

fn open_port() -> PortProbe {
    PortProbe {
        address: "127.0.0.1".into(),
        port: 1688,
        result: Ok(Duration::from_millis(2)),
    }
}

fn run(state: HostState) -> Vec<Check> {
    let observed = HostReading {
        state: Ok(state),
        local_millis: NOW_MS,
    };
    check_host(&host(""), &observed, &open_port())
}

fn verdict(checks: &[Check], id: &str) -> Verdict {
    checks
        .iter()
        .find(|c| c.check == id)
        .unwrap_or_else(|| panic!("no {id} in {checks:#?}"))
        .status
}

#[test]
fn a_healthy_host_passes_every_check() {
    let checks = run(healthy());
    let ids: Vec<&str> = checks.iter().map(|c| c.check).collect();
    assert_eq!(
        ids,
        [
            PORT_REACHABLE,
            FIREWALL_RULES,
            CLOCK_SKEW,
            PRODUCT_LICENSED,
            COUNT_THRESHOLD,
            WINDOWS_FACTS
        ]
    );
    assert!(
        checks.iter().all(|c| c.status == Verdict::Ok),
        "{checks:#?}"
    );
    assert!(checks.iter().all(|c| c.fix.is_none()));
}

#[test]
fn an_unreachable_host_still_gets_the_port_check() {
    let observed = HostReading {
        state: Err(HostFailure::new(
            FailureKind::Unreachable,
            "lab host is set unreachable",
        )),
        local_millis: NOW_MS,
    };
    let checks = check_host(&host(""), &observed, &open_port());
    assert_eq!(verdict(&checks, HOST_REACHABLE), Verdict::Failed);
    let reach = checks.iter().find(|c| c.check == HOST_REACHABLE);
    assert_eq!(
        reach.and_then(|c| c.error.as_ref()).map(|e| e.kind),
        Some(FailureKind::Unreachable)
    );
    assert_eq!(verdict(&checks, PORT_REACHABLE), Verdict::Ok);
    assert_eq!(checks.len(), 2);
}

#[test]
fn a_closed_port_fails_with_the_fix() {
    let probe = PortProbe {
        result: Err(ProbeError::Refused {
            endpoint: "127.0.0.1:1688".parse().expect("address"),
            reason: "connection refused".into(),
        }),
        ..open_port()
    };
    let c = port_reachable("kms01", &probe);
    assert_eq!(c.status, Verdict::Failed);
    assert!(c.detail.contains("127.0.0.1:1688"), "{c:?}");
    assert!(c.fix.as_deref().is_some_and(|f| f.contains("/sprt")));
}

#[test]
fn clock_skew_is_ok_then_warning_then_failed() {
    let at = |s: i64| clock_skew("kms01", Some(NOW_MS / 1000 + s), NOW_MS).status;
    assert_eq!(at(0), Verdict::Ok);
    assert_eq!(at(-60), Verdict::Ok);
    assert_eq!(at(120), Verdict::Warning);
    assert_eq!(at(-3600), Verdict::Failed);
    let c = clock_skew("kms01", Some(NOW_MS / 1000 - 3600), NOW_MS);
    assert!(c.detail.contains("1h behind"), "{c:?}");
    assert_eq!(c.code.as_deref(), Some("0xC004F074"));
    assert_eq!(clock_skew("kms01", None, NOW_MS).status, Verdict::Warning);
    // whatever clock a host reports, the check is a verdict, not an overflow
    for host_clock in [i64::MIN, i64::MAX] {
        assert_eq!(
            clock_skew("kms01", Some(host_clock), NOW_MS).status,
            Verdict::Failed
        );
    }
}

#[test]
fn the_firewall_needs_the_group_or_kmsconfs_port_rule() {
    let wanted = DEFAULT_PROFILES;
    let mut s = healthy();
    assert_eq!(
        firewall_rules("kms01", &s, 1688, &wanted).status,
        Verdict::Ok
    );
    assert_eq!(
        firewall_rules("kms01", &s, 1689, &wanted).status,
        Verdict::Warning
    );
    s.firewall.port_rule = Some(kmsconf_model::state::PortRule {
        port: 1689,
        remote_addresses: vec!["10.0.0.0/8".into()],
        profiles: vec![Profile::Domain, Profile::Private],
    });
    let c = firewall_rules("kms01", &s, 1689, &wanted);
    assert_eq!(c.status, Verdict::Ok);
    assert!(c.detail.contains("from 10.0.0.0/8"), "{c:?}");
    s.firewall.port_rule = None;
    let kms = s
        .firewall
        .groups
        .get_mut(&RuleGroup::KeyManagementService)
        .expect("group");
    for rule in kms.rules.values_mut() {
        rule.enabled = false;
    }
    assert_eq!(
        firewall_rules("kms01", &s, 1688, &wanted).status,
        Verdict::Failed
    );
}

/// A domain-joined host needs the Domain rule (`SPPSVC-In-TCP-NoScope`): the private/public rule
/// alone leaves the domain profile closed.
#[test]
fn the_firewall_check_follows_the_profiles() {
    let mut s = healthy();
    let kms = s
        .firewall
        .groups
        .get_mut(&RuleGroup::KeyManagementService)
        .expect("group");
    if let Some(r) = kms.rules.get_mut("SPPSVC-In-TCP-NoScope") {
        r.enabled = false;
    }
    let c = firewall_rules("kms01", &s, 1688, &DEFAULT_PROFILES);
    assert_eq!(c.status, Verdict::Warning, "{c:?}");
    assert!(c.detail.contains("not on the domain profile"), "{c:?}");
    assert_eq!(
        firewall_rules("kms01", &s, 1688, &[Profile::Private]).status,
        Verdict::Ok
    );
}

#[test]
fn products_must_hold_an_activated_kms_host_key() {
    let fresh = HostState::fresh_windows_server("KMS01");
    let client_key = product_licensed(
        "kms01",
        ProductId::Windows,
        fresh.products.get(&ProductId::Windows),
    );
    assert_eq!(client_key.status, Verdict::Failed);
    assert!(
        client_key.detail.contains("KMS client key ending in 6VM33"),
        "{client_key:?}"
    );
    let missing = product_licensed("kms01", ProductId::Office2019, None);
    assert_eq!(missing.code.as_deref(), Some("0xC004F014"));
    let mut s = healthy();
    let w = s.products.get_mut(&ProductId::Windows).expect("w");
    w.license_status = LicenseStatus::InitialGrace;
    let c = product_licensed("kms01", ProductId::Windows, Some(w));
    assert_eq!(
        (c.status, c.code.as_deref()),
        (Verdict::Failed, Some("0xC004F041"))
    );
}

#[test]
fn grace_running_out_warns_then_fails_and_brings_the_rearm_check() {
    let mut s = healthy();
    let w = s.products.get_mut(&ProductId::Windows).expect("w");
    w.license_status = LicenseStatus::InitialGrace;
    w.grace_minutes = 20 * 24 * 60;
    assert_eq!(
        grace_period("kms01", ProductId::Windows, w).map(|c| c.status),
        Some(Verdict::Ok)
    );
    w.grace_minutes = 10 * 24 * 60;
    assert_eq!(
        grace_period("kms01", ProductId::Windows, w).map(|c| c.status),
        Some(Verdict::Warning)
    );
    w.grace_minutes = 60;
    let checks = run(s.clone());
    assert_eq!(verdict(&checks, GRACE_PERIOD), Verdict::Failed);
    assert_eq!(verdict(&checks, REARM_COUNT), Verdict::Ok);
    s.remaining_rearm_count = Some(0);
    assert_eq!(verdict(&run(s.clone()), REARM_COUNT), Verdict::Failed);
    s.remaining_rearm_count = None;
    assert_eq!(verdict(&run(s), REARM_COUNT), Verdict::Warning);
    let licensed = healthy();
    assert!(grace_period(
        "kms01",
        ProductId::Windows,
        &licensed.products[&ProductId::Windows]
    )
    .is_none());
}

#[test]
fn the_count_threshold_distinguishes_server_and_client_windows() {
    let mut s = healthy();
    let w = s.products.get_mut(&ProductId::Windows).expect("w");
    let at = |w: &mut ProductState, n: Option<u32>| {
        w.current_count = n;
        w.requests.total = u64::from(n.unwrap_or(0));
        count_threshold("kms01", ProductId::Windows, w).map(|c| c.status)
    };
    assert_eq!(at(w, Some(25)), Some(Verdict::Ok));
    assert_eq!(at(w, Some(7)), Some(Verdict::Warning));
    assert_eq!(at(w, Some(4)), Some(Verdict::Failed));
    assert_eq!(at(w, None), Some(Verdict::Failed));
    let mut office = w.clone();
    office.required_count = Some(5);
    office.current_count = Some(5);
    assert_eq!(
        count_threshold("kms01", ProductId::Office2019, &office).map(|c| c.status),
        Some(Verdict::Ok)
    );
    office.license_status = LicenseStatus::Unlicensed;
    assert!(count_threshold("kms01", ProductId::Office2019, &office).is_none());
}

#[test]
fn a_flat_count_under_many_requests_explains_duplicate_cmids() {
    let mut s = healthy();
    let w = s.products.get_mut(&ProductId::Windows).expect("w");
    w.current_count = Some(1);
    w.requests.total = 30;
    let checks = run(s);
    let c = checks
        .iter()
        .find(|c| c.check == COUNT_THRESHOLD)
        .expect("count");
    assert_eq!(c.status, Verdict::Failed);
    assert!(
        c.detail
            .contains("30 requests were served, yet the count is 1"),
        "{c:?}"
    );
    assert!(
        c.fix.as_deref().is_some_and(|f| f.contains("/rearm")),
        "{c:?}"
    );
    assert_eq!(verdict(&checks, REARM_COUNT), Verdict::Ok);
}

#[test]
fn a_pending_restart_is_a_warning() {
    let mut s = healthy();
    s.service.restart_pending = true;
    assert_eq!(verdict(&run(s), SERVICE_RESTART), Verdict::Warning);
}

fn expected(target: &str, port: u16) -> ExpectedSrv {
    ExpectedSrv {
        host: "kms01".into(),
        zone: "corp.example".into(),
        target: target.into(),
        port,
        priority: 0,
        weight: 100,
    }
}

fn srv(target: &str, port: u16, priority: u16, weight: u16) -> SrvRecord {
    SrvRecord {
        priority,
        weight,
        port,
        target: target.into(),
    }
}

#[test]
fn srv_records_must_point_at_the_declared_host_and_port() {
    let e = expected("kms01.corp.example", 1688);
    let ok = Ok(vec![srv("KMS01.corp.example.", 1688, 0, 100)]);
    assert_eq!(check_srv(&e, &ok).status, Verdict::Ok);
    let weight = Ok(vec![srv("kms01.corp.example", 1688, 0, 5)]);
    assert_eq!(check_srv(&e, &weight).status, Verdict::Warning);
    let port = Ok(vec![srv("kms01.corp.example", 1689, 0, 100)]);
    let c = check_srv(&e, &port);
    assert_eq!(c.status, Verdict::Failed);
    assert!(
        c.detail.contains("port 1689, but the host listens on 1688"),
        "{c:?}"
    );
    let other = Ok(vec![srv("old.corp.example", 1688, 0, 0)]);
    assert!(check_srv(&e, &other)
        .detail
        .contains("points at old.corp.example"));
    assert_eq!(
        check_srv(&e, &Ok(vec![])).code.as_deref(),
        Some("0x8007251D")
    );
    let failed = check_srv(&e, &Err(HostFailure::new(FailureKind::Dns, "timeout")));
    assert_eq!(failed.status, Verdict::Failed);
    assert_eq!(failed.error.map(|e| e.kind), Some(FailureKind::Dns));
}

#[test]
fn records_of_undeclared_hosts_are_reported_once_per_zone() {
    struct Fake;
    impl SrvLookup for Fake {
        fn lookup_srv(&self, name: &str) -> Result<Vec<SrvRecord>, HostFailure> {
            assert_eq!(name, "_vlmcs._tcp.corp.example");
            Ok(vec![
                srv("kms01.corp.example", 1688, 0, 100),
                srv("gone.corp.example", 1688, 0, 0),
            ])
        }
    }
    let checks = dns_checks(&[expected("kms01.corp.example", 1688)], &[], &Fake);
    assert_eq!(checks.len(), 2, "{checks:#?}");
    assert_eq!(checks[0].status, Verdict::Ok);
    assert_eq!(
        (checks[1].host.as_str(), checks[1].status),
        ("dns", Verdict::Warning)
    );
    assert!(checks[1].detail.contains("gone.corp.example:1688"));
}

#[test]
fn the_port_probe_tells_a_listening_port_from_a_closed_one() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let open = listener.local_addr().expect("addr").port();
    assert!(probe_port("127.0.0.1", open, Duration::from_secs(2))
        .result
        .is_ok());
    drop(listener);
    // the port was just released: nothing listens there now
    assert!(probe_port("127.0.0.1", open, Duration::from_secs(2))
        .result
        .is_err());
}

#[test]
fn every_code_doctor_names_is_explained_by_the_catalogue() {
    let source = [include_str!("host.rs"), include_str!("dns.rs")].concat();
    let mut named = 0;
    for part in source.split(".code(0x").skip(1) {
        let hex: String = part
            .chars()
            .take_while(|c| c.is_ascii_hexdigit() || *c == '_')
            .collect();
        let code = u32::from_str_radix(&hex.replace('_', ""), 16).expect("hex");
        assert!(
            catalog::code(code).is_some(),
            "{} not in the catalogue",
            catalog::format_code(code)
        );
        named += 1;
    }
    assert!(named >= 10, "found only {named} codes");
}

mod event_log {
    use super::super::*;
    use crate::clients::{DnsFailure, DuplicateCmid, HostClients, Service};
    use crate::failure::{FailureKind, HostFailure};

    fn read() -> HostClients {
        HostClients {
            host: "kms01".into(),
            clock: Some("2026-12-06T12:00:00Z".into()),
            last_request: Some("2026-12-06T11:00:00Z".into()),
            service: Some(Service {
                running: true,
                start_mode: "Auto".into(),
                set_to_start: true,
            }),
            ..HostClients::default()
        }
    }

    #[test]
    fn a_healthy_log_passes_all_four() {
        let checks = check_events(&read(), 86_400, false);
        let ids: Vec<&str> = checks.iter().map(|c| c.check).collect();
        assert_eq!(
            ids,
            [CMID_DUPLICATES, KMS_IDLE, DNS_PUBLISHING, SERVICE_RUNNING]
        );
        assert!(
            checks
                .iter()
                .all(|c| c.status == Verdict::Ok && c.fix.is_none()),
            "{checks:#?}"
        );
    }

    #[test]
    fn clones_idle_dns_and_a_stopped_service_each_fail_with_a_fix() {
        let mut h = read();
        h.duplicates = vec![DuplicateCmid {
            cmid: "3f2504e0-4f89-11d3-9a0c-0305e82c3301".into(),
            fqdns: (1..=7).map(|i| format!("pc-{i}.corp")).collect(),
        }];
        h.last_request = Some("2026-12-04T12:00:00Z".into());
        h.dns_failures = vec![DnsFailure {
            at: "2026-12-05T12:00:00Z".into(),
            code: "0x80072338".into(),
            domain: "corp.example".into(),
        }];
        h.service = Some(Service {
            running: false,
            start_mode: "Disabled".into(),
            set_to_start: false,
        });
        let checks = check_events(&h, 86_400, true);
        let dup = &checks[0];
        assert_eq!(dup.status, Verdict::Failed);
        assert!(
            dup.detail.contains("7 names") && dup.detail.contains("and 2 more"),
            "{}",
            dup.detail
        );
        assert!(dup
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("sysprep /generalize")));
        let idle = &checks[1];
        assert_eq!(idle.status, Verdict::Warning);
        assert!(idle.detail.contains("no request for 2d"), "{}", idle.detail);
        let dns = &checks[2];
        assert_eq!(
            (dns.status, dns.code.as_deref()),
            (Verdict::Failed, Some("0x80072338"))
        );
        assert!(
            dns.detail.contains("DNS_ERROR_RCODE_BADSIG"),
            "{}",
            dns.detail
        );
        assert!(dns
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("dns_publishing = false")));
        // not managed by kmsconf: the catalogue's fix
        let unmanaged = dns_publishing(&h, false);
        assert!(unmanaged
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("DNS Permissions")));
        assert_eq!(checks[3].status, Verdict::Failed);
        assert!(checks[3].detail.contains("stopped") && checks[3].detail.contains("Disabled"));
    }

    #[test]
    fn no_request_warns_and_an_unread_log_is_one_warning() {
        let mut h = read();
        h.last_request = None;
        assert_eq!(kms_idle(&h, 86_400).status, Verdict::Warning);
        h.service = None;
        assert_eq!(service_running(&h).status, Verdict::Failed);
        h.error = Some(HostFailure::new(FailureKind::Refused, "no such log"));
        let checks = check_events(&h, 86_400, false);
        assert_eq!(checks.len(), 1);
        assert_eq!(
            (checks[0].check, checks[0].status),
            (EVENT_LOG, Verdict::Warning)
        );
        assert!(checks[0].error.is_some());
    }
}
