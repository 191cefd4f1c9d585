//! The summary of hand-built event logs.

use kmsconf_model::config::ProductId;
use kmsconf_model::events::{EventLog, RequestEvent, ServiceRun};
use kmsconf_model::state::{Channel, HostState, LicenseStatus};

use super::*;

const NOW: i64 = 1_796_040_000; // noon UTC

fn kms_host() -> HostState {
    let mut s = HostState::fresh_windows_server("KMS01");
    let w = s.products.get_mut(&ProductId::Windows).expect("windows");
    w.channel = Channel::KmsHost;
    w.license_status = LicenseStatus::Licensed;
    s
}

fn request(cmid: &str, fqdn: &str, edition: &str, ago: i64, result: u32) -> RequestEvent {
    RequestEvent {
        at: NOW - ago,
        result,
        min_count: catalog::required_count_of(
            catalog::edition(edition).map_or(ProductId::Office2019, |e| e.product),
            catalog::edition(edition),
        ),
        fqdn: fqdn.into(),
        cmid: cmid.into(),
        vm: false,
        license_status: LicenseStatus::InitialGrace,
        minutes_to_expiry: 43_200,
        activation_id: catalog::lab_activation_id(edition),
    }
}

fn log(requests: Vec<RequestEvent>) -> EventLog {
    EventLog {
        clock: NOW,
        requests,
        service: Some(ServiceRun {
            running: true,
            start_mode: "Auto".into(),
        }),
        ..EventLog::default()
    }
}

const CLONE: &str = "e5c98033-aab6-4d0b-9af9-1d399597dd56";

#[test]
fn clones_count_once_and_are_named_as_duplicates() {
    let mut list: Vec<RequestEvent> = (0..4)
        .map(|i| {
            request(
                CLONE,
                &format!("pc-{i}.corp"),
                "windows-enterprise",
                3600,
                0,
            )
        })
        .collect();
    list.push(request(
        "11111111-2222-3333-4444-555555555555",
        "pc-9.corp",
        "windows-enterprise",
        2 * DAY,
        0,
    ));
    list.push(request(
        "11111111-2222-3333-4444-555555555555",
        "pc-9.corp",
        "windows-enterprise",
        DAY,
        0,
    ));
    let h = summarize(
        "kms01",
        &kms_host(),
        &log(list),
        NOW - 30 * DAY,
        ActivationNames::none(),
    );
    assert_eq!(h.requests, 6);
    assert_eq!(h.clients.len(), 5);
    let w = &h.products[0];
    assert_eq!(
        (w.product.as_str(), w.distinct_clients, w.distinct_names),
        ("windows", 2, 5)
    );
    assert_eq!((w.threshold, w.meets_threshold), (25, false));
    assert_eq!(h.duplicates.len(), 1);
    assert_eq!(h.duplicates[0].fqdns.len(), 4);
    assert_eq!(h.clients.iter().filter(|c| c.duplicate).count(), 4);
    let pc9 = h
        .clients
        .iter()
        .find(|c| c.fqdn == "pc-9.corp")
        .expect("pc-9");
    assert_eq!((pc9.requests, pc9.duplicate), (2, false));
    assert_eq!(pc9.edition.as_deref(), Some("windows-enterprise"));
    assert!(h.uncovered.is_empty());
    assert_eq!(
        h.last_request.as_deref(),
        Some(rfc3339(NOW - 3600).as_str())
    );
    // one point per day of the window, today included; the count rises as requests come
    assert_eq!(w.daily.len(), 31);
    let counts: Vec<u64> = w.daily.iter().rev().take(3).map(|d| d.count).collect();
    assert_eq!(counts, [2, 1, 1]);
}

#[test]
fn products_the_host_does_not_serve_and_unknown_ids_are_apart() {
    let mut office = request(
        "aaaaaaaa-2222-3333-4444-555555555555",
        "o.corp",
        "office-2019-standard",
        60,
        0xC004_F042,
    );
    office.min_count = 5;
    let mut stranger = request(
        "bbbbbbbb-2222-3333-4444-555555555555",
        "x.corp",
        "windows-enterprise",
        60,
        0,
    );
    stranger.activation_id = "cf67834d-db4a-402c-ab1f-2c134f02b700".into();
    let old = request(
        "cccccccc-2222-3333-4444-555555555555",
        "old.corp",
        "windows-enterprise",
        40 * DAY,
        0,
    );
    let h = summarize(
        "kms01",
        &kms_host(),
        &log(vec![office, stranger, old]),
        NOW - 30 * DAY,
        ActivationNames::none(),
    );
    assert_eq!(
        h.requests, 2,
        "the 40-day-old request is outside the window"
    );
    assert_eq!(h.uncovered.len(), 1);
    assert_eq!(h.uncovered[0].product, "office-2019");
    assert_eq!(h.uncovered[0].fqdns, ["o.corp"]);
    let labels: Vec<&str> = h.products.iter().map(|p| p.product.as_str()).collect();
    assert_eq!(labels, ["office-2019", "unknown"]);
    assert_eq!(
        h.products[0].distinct_clients, 0,
        "refused requests count for nothing"
    );
    let x = h.clients.iter().find(|c| c.fqdn == "x.corp").expect("x");
    assert!(x.product.is_none() && !x.uncovered);
}

#[test]
fn the_daily_count_keeps_30_days_and_caps_at_50() {
    let list: Vec<RequestEvent> = (0..60)
        .map(|i| {
            request(
                &format!("{i:08x}-2222-3333-4444-555555555555"),
                &format!("pc-{i}"),
                "windows-enterprise",
                45 * DAY,
                0,
            )
        })
        .collect();
    let h = summarize(
        "kms01",
        &kms_host(),
        &log(list),
        NOW - 60 * DAY,
        ActivationNames::none(),
    );
    let daily = &h.products[0].daily;
    let at_45 = daily
        .iter()
        .find(|d| d.requests == 60)
        .expect("the day they asked");
    assert_eq!(at_45.count, 50);
    assert_eq!(
        daily.last().map(|d| d.count),
        Some(0),
        "forgotten after 30 days"
    );
    assert_eq!(day_start(NOW) % DAY, 0);
}

/// Made-up activation IDs, as a real host's clients would ask with: no lab ID names them.
const FAKE_ENTERPRISE: &str = "00000000-0000-4000-8000-000000000001";
const FAKE_OFFICE: &str = "00000000-0000-4000-8000-000000000002";
const FAKE_UNNAMED: &str = "00000000-0000-4000-8000-000000000003";

fn real_ids() -> Vec<RequestEvent> {
    let ids = [FAKE_ENTERPRISE, FAKE_ENTERPRISE, FAKE_OFFICE, FAKE_UNNAMED];
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            let mut r = request(
                &format!("{i:08x}-2222-3333-4444-555555555555"),
                &format!("pc-{i}.corp"),
                "windows-enterprise",
                60,
                0,
            );
            r.activation_id = id.to_string();
            r
        })
        .collect()
}

#[test]
fn named_ids_split_the_products_and_only_a_named_product_is_uncovered() {
    let unnamed_run = summarize(
        "kms01",
        &kms_host(),
        &log(real_ids()),
        NOW - 30 * DAY,
        ActivationNames::none(),
    );
    let labels: Vec<&str> = unnamed_run
        .products
        .iter()
        .map(|p| p.product.as_str())
        .collect();
    assert_eq!(labels, ["unknown"]);
    assert!(unnamed_run.uncovered.is_empty());
    let ids: Vec<String> = unnamed(&[unnamed_run])
        .into_iter()
        .map(|u| u.activation_id)
        .collect();
    assert_eq!(ids, [FAKE_ENTERPRISE, FAKE_OFFICE, FAKE_UNNAMED]);

    let mut names = ActivationNames::default();
    assert!(names.insert(FAKE_ENTERPRISE, "windows-enterprise"));
    assert!(names.insert(&FAKE_OFFICE.to_ascii_uppercase(), "office-2024"));
    let h = summarize(
        "kms01",
        &kms_host(),
        &log(real_ids()),
        NOW - 30 * DAY,
        &names,
    );
    let counts: Vec<(&str, u64)> = h
        .products
        .iter()
        .map(|p| (p.product.as_str(), p.distinct_clients))
        .collect();
    assert_eq!(counts, [("office-2024", 1), ("unknown", 1), ("windows", 2)]);
    let pc0 = h
        .clients
        .iter()
        .find(|c| c.fqdn == "pc-0.corp")
        .expect("pc-0");
    assert_eq!(
        (
            pc0.product.as_deref(),
            pc0.edition.as_deref(),
            pc0.uncovered
        ),
        (Some("windows"), Some("windows-enterprise"), false)
    );
    // the host is a KMS host for Windows only: the Office client is uncovered, the unknown not
    assert_eq!(h.uncovered.len(), 1);
    assert_eq!(
        (
            h.uncovered[0].product.as_str(),
            h.uncovered[0].fqdns.clone()
        ),
        ("office-2024", vec!["pc-2.corp".to_string()])
    );
    let pc3 = h
        .clients
        .iter()
        .find(|c| c.fqdn == "pc-3.corp")
        .expect("pc-3");
    assert!(pc3.product.is_none() && !pc3.uncovered);
    let left = unnamed(&[h.clone(), h]);
    assert_eq!(left.len(), 1);
    assert_eq!(
        (
            left[0].activation_id.as_str(),
            left[0].clients,
            left[0].example.as_str()
        ),
        (FAKE_UNNAMED, 2, "pc-3.corp")
    );
}
