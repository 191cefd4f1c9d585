use super::*;

fn wire(events: Vec<WireEvent>) -> WireLog {
    WireLog {
        clock: "2026-12-06T10:00:00.1234567Z".into(),
        truncated: false,
        service: Some(WireService {
            state: Some("Running".into()),
            start_mode: Some("Auto".into()),
        }),
        events,
    }
}

fn event(id: u32, properties: &[&str]) -> WireEvent {
    WireEvent {
        id,
        time: "2026-12-05T09:30:00.0000000Z".into(),
        properties: properties.iter().map(|p| p.to_string()).collect(),
    }
}

const GOOD: [&str; 9] = [
    "0x0",
    "25",
    "kms03.site5.contoso.com",
    "E5C98033-AAB6-4D0B-9AF9-1D399597DD56",
    "2006/1/14 22:36",
    "1",
    "2",
    "40123",
    "{cf67834d-db4a-402c-ab1f-2c134f02b700}",
];

#[test]
fn a_request_reads_in_the_guides_order() {
    let log = parse(&wire(vec![event(12290, &GOOD)])).expect("parses");
    assert_eq!(log.clock, 1_796_551_200);
    assert_eq!(log.rejected, 0);
    let r = &log.requests[0];
    assert_eq!(r.at, 1_796_463_000);
    assert_eq!((r.result, r.min_count), (0, 25));
    assert_eq!(r.fqdn, "kms03.site5.contoso.com");
    assert_eq!(r.cmid, "e5c98033-aab6-4d0b-9af9-1d399597dd56");
    assert!(r.vm);
    assert_eq!(r.license_status, LicenseStatus::InitialGrace);
    assert_eq!(r.minutes_to_expiry, 40123);
    assert_eq!(r.activation_id, "cf67834d-db4a-402c-ab1f-2c134f02b700");
    let service = log.service.expect("service");
    assert!(service.running && service.set_to_start());
}

#[test]
fn ten_strings_or_one_joined_string_read_the_same() {
    let mut ten = vec!["unnamed"];
    ten.extend(GOOD);
    let joined = GOOD.join(",");
    let log = parse(&wire(vec![event(12290, &ten), event(12290, &[&joined])])).expect("parses");
    assert_eq!(log.rejected, 0);
    assert_eq!(log.requests.len(), 2);
    assert_eq!(log.requests[0], log.requests[1]);
}

#[test]
fn every_field_out_of_shape_is_rejected_and_named() {
    let cases: [(usize, &str, &str); 7] = [
        (0, "zero", "result"),
        (1, "-3", "minimum count"),
        (2, "evil\u{1b}[2J.example", "client name"),
        (3, "not-a-guid", "CMID"),
        (5, "yes", "VM flag"),
        (6, "9", "license status"),
        (8, "cf67834d", "activation ID"),
    ];
    for (i, value, field) in cases {
        let mut fields = GOOD;
        fields[i] = value;
        let log = parse(&wire(vec![event(12290, &fields)])).expect("the log parses");
        assert_eq!(log.rejected, 1, "{field}");
        assert!(log.requests.is_empty());
        assert!(log.rejections[0].contains(field), "{}", log.rejections[0]);
        assert!(!log.rejections[0].contains('\u{1b}'), "escaped");
    }
    let short = parse(&wire(vec![event(12290, &GOOD[..4])])).expect("parses");
    assert!(
        short.rejections[0].contains("4 data fields"),
        "{:?}",
        short.rejections
    );
}

#[test]
fn dns_failures_and_other_events() {
    let log = parse(&wire(vec![
        event(12293, &["0x80072338", "corp.example.com"]),
        event(12293, &["0x80072338"]),
        event(12294, &["corp.example.com"]),
    ]))
    .expect("parses");
    assert_eq!(log.dns_failures.len(), 1);
    assert_eq!(log.dns_failures[0].code, 0x8007_2338);
    assert_eq!(log.rejected, 1, "one 12293 without its domain");
}

#[test]
fn an_unreadable_clock_fails_the_log_and_many_rejections_are_counted_not_listed() {
    let mut w = wire(Vec::new());
    w.clock = "yesterday".into();
    assert!(matches!(parse(&w), Err(EventError::Clock(_))));
    let bad: Vec<WireEvent> = (0..50).map(|_| event(12290, &["x"])).collect();
    let log = parse(&wire(bad)).expect("parses");
    assert_eq!((log.rejected, log.rejections.len()), (50, 10));
}

#[test]
fn names_and_guids() {
    assert_eq!(
        fqdn("PC-01.Corp.Example."),
        Some("pc-01.corp.example".into())
    );
    assert_eq!(fqdn("a..b"), None);
    assert_eq!(fqdn(&"a".repeat(64)), None);
    assert_eq!(fqdn("<script>"), None);
    assert_eq!(
        guid("{E5C98033-AAB6-4D0B-9AF9-1D399597DD56}").as_deref(),
        Some("e5c98033-aab6-4d0b-9af9-1d399597dd56")
    );
    assert_eq!(guid("e5c98033aab64d0b9af91d399597dd56"), None);
}
