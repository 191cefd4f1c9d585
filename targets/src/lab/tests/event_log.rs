//! The event log a lab host's simulated clients leave.

use super::*;

/// Clones (one CMID, `--count 3`) are logged as three 12290 events from three names; the
/// event log keeps to `since` and to both of its bounds, and its activation IDs name the edition.
#[test]
fn clones_are_logged_as_12290_events_within_the_bounds() {
    use kmsconf_model::events::{self, EventQuery};
    let dir = tempfile::tempdir().expect("tmp");
    let mut file = LabFile::fresh(&dir.path().join("k.json")).expect("fresh");
    let now = 2_000_000_000;
    let new =
        |count, cmid: Option<&str>, fqdn: Option<&str>, edition: &str, ago| clients::NewRequests {
            product: ProductId::Windows,
            count,
            cmid: cmid.map(Into::into),
            ago_seconds: ago,
            fqdn: fqdn.map(Into::into),
            edition: Some(edition.into()),
            activation_id: None,
        };
    let cmid = "e5c98033-aab6-4d0b-9af9-1d399597dd56";
    let clones = new(3, Some(cmid), None, "windows-enterprise", 3600);
    clients::add(&mut file, &clones, now).expect("clones");
    let old = new(
        1,
        None,
        Some("Web01.Corp.Example"),
        "windows-server-2022-datacenter",
        40 * 86_400,
    );
    clients::add(&mut file, &old, now).expect("old");
    let bad = new(1, None, Some("bad name"), "windows-enterprise", 0);
    assert!(clients::add(&mut file, &bad, now).is_err());
    let query = |window_seconds, max_events, max_bytes| EventQuery {
        window_seconds,
        max_events,
        max_bytes,
    };
    let wire = clients::event_log(&file, now, &query(30 * 86_400, 100, 1 << 20));
    let log = events::parse(&wire).expect("parses");
    assert_eq!(
        (log.rejected, log.requests.len(), log.truncated),
        (0, 3, false)
    );
    let names: std::collections::BTreeSet<&str> =
        log.requests.iter().map(|r| r.fqdn.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for r in &log.requests {
        assert_eq!((r.cmid.as_str(), r.min_count), (cmid, 25));
        // a fresh host is no KMS host yet: it refuses them
        assert_eq!(r.result, 0xC004_F042);
        let (product, edition) = catalog::asked_for(&r.activation_id).expect("known");
        assert_eq!(product, ProductId::Windows);
        assert_eq!(edition.map(|e| e.id.as_str()), Some("windows-enterprise"));
    }
    let all = events::parse(&clients::event_log(
        &file,
        now,
        &query(i64::MAX, 100, 1 << 20),
    ));
    assert_eq!(all.expect("parses").requests[0].fqdn, "web01.corp.example");
    let capped = clients::event_log(&file, now, &query(i64::MAX, 2, 1 << 20));
    assert!(capped.truncated && capped.events.len() == 2);
    let tiny = clients::event_log(&file, now, &query(i64::MAX, 100, 300));
    assert!(
        tiny.truncated && tiny.events.len() == 1,
        "{}",
        tiny.events.len()
    );
    assert_eq!(log.service.map(|s| s.running), Some(true));
}
