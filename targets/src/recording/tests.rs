use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use kmsconf_engine::secret::Secret;
use serde_json::json;

use super::record::scrub;
use super::replay::{describe, first_difference, Tape};
use super::{chained, header_digest, Event, Header, Line, FORMAT};

const KEY: &str = "BCDFG-HJKMP-QRTVW-XY234-6789B";

#[test]
fn a_secret_the_host_quotes_back_is_redacted_in_the_answer_and_inside_its_base64() {
    let secrets = [Secret::new(KEY)];
    let json = format!(r#"{{"Id":3,"Ok":false,"Message":"key {KEY} is invalid"}}"#);
    let line = format!("KMSCONF:result:{}\n", BASE64.encode(&json));
    let scrubbed = scrub(&line, &secrets);
    let data = scrubbed
        .trim_end()
        .strip_prefix("KMSCONF:result:")
        .expect("still an answer line");
    let decoded = String::from_utf8(BASE64.decode(data).expect("base64")).expect("utf-8");
    assert_eq!(decoded, json.replace(KEY, "<redacted>"));
    assert!(scrubbed.ends_with('\n'));
    assert_eq!(
        scrub(&format!("error: {KEY}"), &secrets),
        "error: <redacted>"
    );
    let untouched = format!("KMSCONF:result:{}\n", BASE64.encode(r#"{"Id":1}"#));
    assert_eq!(scrub(&untouched, &secrets), untouched, "verbatim otherwise");
}

#[test]
fn the_first_difference_is_named_by_its_path() {
    let recorded =
        json!({"id": 2, "op": "set_service", "method": {"value": 60}, "profiles": ["Domain"]});
    let same = first_difference(&recorded, &recorded.clone(), String::new());
    assert_eq!(same, None);
    let asked =
        json!({"id": 2, "op": "set_service", "method": {"value": 90}, "profiles": ["Domain"]});
    assert_eq!(
        first_difference(&recorded, &asked, String::new()),
        Some(("method.value".into(), "`60`".into(), "`90`".into()))
    );
    let asked =
        json!({"id": 2, "op": "set_service", "method": {"value": 60}, "profiles": ["Private"]});
    assert_eq!(
        first_difference(&recorded, &asked, String::new()).map(|d| d.0),
        Some("profiles[0]".into())
    );
    let asked = json!({"id": 2, "op": "set_service", "method": {}, "profiles": ["Domain"]});
    assert_eq!(
        first_difference(&recorded, &asked, String::new()),
        Some(("method.value".into(), "`60`".into(), "nothing".into()))
    );
}

/// A recording of `events`, chained as the recorder writes it.
fn recording(events: &[Event]) -> String {
    let header = Header {
        format: FORMAT.into(),
        kmsconf: "0.1.0".into(),
        host: "kms01".into(),
        transport: "ssh://kms01".into(),
        started: "2026-12-06T10:00:00Z".into(),
    };
    let mut digest = header_digest(&header);
    let mut text = serde_json::to_string(&header).expect("header") + "\n";
    for event in events {
        digest = chained(&digest, event);
        let line = Line {
            event: event.clone(),
            digest: digest.clone(),
        };
        text += &(serde_json::to_string(&line).expect("line") + "\n");
    }
    text
}

#[test]
fn a_recording_reads_back_and_any_changed_or_dropped_line_is_refused() {
    let events = [
        Event::Open,
        Event::Agent { bytes: 10 },
        Event::Request(r#"{"id":0,"op":"discover"}"#.into()),
        Event::Answer("KMSCONF:discovery:e30=\n".into()),
    ];
    let text = recording(&events);
    assert!(Tape::read(&text).is_ok());
    let changed = text.replace("e30=", "e31=");
    let e = Tape::read(&changed).err().expect("changed").to_string();
    assert!(
        e.starts_with("line 5 was changed after it was recorded"),
        "{e}"
    );
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(3);
    let e = Tape::read(&lines.join("\n"))
        .err()
        .expect("dropped")
        .to_string();
    assert!(e.starts_with("line 4 was changed"), "{e}");
    let e = Tape::read("").err().expect("empty").to_string();
    assert!(e.contains("it is empty"), "{e}");
}

/// A session recorded before the bootstrap said `ready` gets that line where it now comes (after
/// the agent, before the first request), so it replays; a session that sent no request (the
/// agent refused) and one that recorded its `ready` get none.
#[test]
fn a_recording_from_before_the_ready_line_replays_with_it() {
    let ready = || Event::Answer(crate::powershell::READY_LINE.into());
    let request = || Event::Request(r#"{"id":0,"op":"discover"}"#.into());
    let old = [Event::Open, Event::Agent { bytes: 10 }, request()];
    let tape = Tape::read(&recording(&old)).expect("old");
    let kinds: Vec<String> = tape.events.iter().map(|(_, e)| describe(e)).collect();
    assert_eq!(
        kinds,
        [
            "a new session",
            "the agent sent",
            "a line from the host",
            "request `discover`"
        ]
    );
    assert_eq!(tape.events[2].1, ready());
    let new = [Event::Open, Event::Agent { bytes: 10 }, ready(), request()];
    assert_eq!(Tape::read(&recording(&new)).expect("new").events.len(), 4);
    let refused = [
        Event::Open,
        Event::Agent { bytes: 10 },
        Event::Answer("KMSCONF:damaged:e30=".into()),
        Event::Ended,
    ];
    assert_eq!(
        Tape::read(&recording(&refused))
            .expect("refused")
            .events
            .len(),
        4
    );
}
