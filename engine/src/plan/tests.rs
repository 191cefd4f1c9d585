use super::*;
use crate::testing::{Test, TestVerb};

fn plan() -> Plan<Test> {
    let change = Change {
        address: "a.setting".into(),
        action: TestVerb::Update,
        before: serde_json::json!(1),
        after: serde_json::json!(2),
        equivalent: Some("set-it 2".into()),
        depends_on: vec![],
        note: None,
        operation: "set".to_string(),
    };
    Plan::new(
        "config.toml".into(),
        "/srv/conf".into(),
        vec![HostPlan {
            name: "host01".into(),
            target: "somewhere".into(),
            depends_on: vec![],
            created: false,
            observed: 7,
            changes: vec![change],
            notices: vec![],
        }],
    )
}

#[test]
fn the_streamed_digest_is_the_digest_a_save_records() {
    let mut p = plan();
    let mut second = p.hosts[0].clone();
    second.name = "host02".into();
    second.depends_on = vec!["host01".into(), "left-out".into()];
    p.hosts.push(second);
    let dir = tempfile::tempdir().expect("tmp");
    let saved = p.save(&dir.path().join("plan.json"), None).expect("save");
    assert_eq!(p.digest(), Some(saved.digest));
}

#[test]
fn a_cycle_between_changes_of_one_host_or_a_bad_version_is_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("plan.json");
    let mut p = plan();
    let mut other = p.hosts[0].changes[0].clone();
    other.address = "b.setting".into();
    other.depends_on = vec!["a.setting".into()];
    p.hosts[0].changes[0].depends_on = vec!["b.setting".into()];
    p.hosts[0].changes.push(other);
    p.save(&path, None).expect("save");
    let e = Plan::<Test>::load(&path, None).expect_err("a cycle");
    assert!(
        e.to_string()
            .contains("dependency cycle between changes of host `host01`"),
        "{e}"
    );
    for (version, shown) in [
        ("-1", "its `format_version` -1 is out of range"),
        (
            "18446744073709551616",
            "its `format_version` 18446744073709551616 is out of range",
        ),
        ("1.50", "its `format_version` 1.50 is out of range"),
        ("\"3\"", "it has format version \"3\";"),
        ("7", "it has format version 7;"),
    ] {
        // a nested `format_version` and one inside a string are not the plan's
        std::fs::write(
            &path,
            format!("{{\"x\": {{\"format_version\": 2}}, \"s\": \"\\\"format_version\\\": 9\", \"kind\": \"test-plan\", \"format_version\": {version}}}"),
        )
        .expect("write");
        let e = Plan::<Test>::load(&path, None).expect_err("version");
        assert!(e.to_string().contains(shown), "{version}: {e}");
    }
}

#[test]
fn counts_changes_by_verb() {
    let p = plan();
    assert_eq!(p.count_by_action(), vec![(TestVerb::Update, 1)]);
    assert_eq!(p.hosts_with_changes(), 1);
    assert_eq!(p.format_version, 3);
}

#[test]
fn plan_files_round_trip_and_reject_other_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("plan.json");
    let saved = plan().save(&p, None).expect("save");
    let (back, seal): (Plan<Test>, _) = Plan::load(&p, None).expect("load");
    assert_eq!(seal, saved);
    assert_eq!(back.hosts[0].changes, plan().hosts[0].changes);
    assert_eq!(back.config_dir(), Path::new("/srv/conf"));
    std::fs::write(&p, "{\"kind\": \"other\"}").expect("write");
    let e = Plan::<Test>::load(&p, None).expect_err("not a plan");
    assert!(e.to_string().contains("test-plan"), "{e}");
    std::fs::write(&p, "{\"kind\": \"test-plan\", \"format_version\": 99}").expect("write");
    let e = Plan::<Test>::load(&p, None).expect_err("future");
    assert!(e.to_string().contains("version 99"), "{e}");
}

#[test]
fn plan_files_without_a_config_dir_still_load() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("plan.json");
    let mut old = plan();
    old.config_dir = None;
    old.save(&p, None).expect("save");
    assert!(!std::fs::read_to_string(&p)
        .expect("read")
        .contains("config_dir"));
    let (back, _): (Plan<Test>, _) = Plan::load(&p, None).expect("load");
    assert_eq!(back.config_dir, None);
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(back.config_dir(), cwd);
}

#[test]
fn a_plan_file_whose_hosts_depend_on_each_other_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("plan.json");
    let mut cyclic = plan();
    let mut second = cyclic.hosts[0].clone();
    second.name = "host02".into();
    second.depends_on = vec!["host01".into()];
    cyclic.hosts[0].depends_on = vec!["host02".into()];
    cyclic.hosts.push(second);
    cyclic.save(&p, None).expect("save");
    let e = Plan::<Test>::load(&p, None).expect_err("a cycle");
    assert!(
        e.to_string()
            .ends_with("dependency cycle between hosts: host01 -> host02 -> host01"),
        "{e}"
    );
}

/// Saves `plan`, lets `edit` change the file's JSON (keeping its digest), and loads it.
fn load_edited(plan: &Plan<Test>, edit: impl FnOnce(&mut Value)) -> Result<Plan<Test>, Error> {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("plan.json");
    plan.save(&p, None).expect("save");
    let mut value: Value =
        serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
    edit(&mut value);
    std::fs::write(&p, serde_json::to_string_pretty(&value).expect("encode")).expect("write");
    Plan::load(&p, None).map(|(plan, _)| plan)
}

/// Recomputes the digest after an edit, as an attacker who knows the format can.
fn reseal(value: &mut Value) {
    let map = value.as_object_mut().expect("object");
    map.remove(DIGEST_FIELD);
    let mut content = map.clone();
    content.remove(HMAC_FIELD);
    let digest = crate::seal::digest(&Value::Object(content));
    map.insert(DIGEST_FIELD.into(), Value::String(digest));
}

#[test]
fn an_edited_operation_or_display_is_refused_naming_the_mismatch() {
    let digest = plan().digest().expect("digest");
    for edit in ["operation", "after", "before", "equivalent"] {
        let e = load_edited(&plan(), |v| {
            v["hosts"][0]["changes"][0][edit] = serde_json::json!("edited");
        })
        .expect_err("edited");
        assert!(
            e.to_string()
                .contains("was changed after it was saved: its content hashes to `sha256:")
                && e.to_string()
                    .contains(&format!("not to its recorded digest `{digest}`")),
            "{edit}: {e}"
        );
    }
    // layout is not content: the same plan re-indented still loads
    load_edited(&plan(), |_| {}).expect("re-indented");
    let e = load_edited(&plan(), |v| {
        v.as_object_mut().expect("object").remove(DIGEST_FIELD);
    })
    .expect_err("no digest");
    assert!(
        e.to_string()
            .ends_with("it has no `digest`; make the plan again with this kmsconf"),
        "{e}"
    );
}

#[test]
fn with_a_key_only_a_plan_signed_with_it_loads() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("plan.json");
    let key = Secret::new("0123456789abcdef0123456789abcdef");
    let seal = plan().save(&p, Some(&key)).expect("save");
    assert!(seal.authenticated);
    let (_, loaded) = Plan::<Test>::load(&p, Some(&key)).expect("signed");
    assert_eq!(loaded, seal);
    let text = std::fs::read_to_string(&p).expect("read");
    assert!(!text.contains(key.expose()), "the key is never written");
    // an attacker who edits the operation and recomputes the digest has no key for the HMAC
    let mut value: Value = serde_json::from_str(&text).expect("json");
    value["hosts"][0]["changes"][0]["operation"] = serde_json::json!("edited");
    reseal(&mut value);
    std::fs::write(&p, value.to_string()).expect("write");
    let (unsigned, _) = Plan::<Test>::load(&p, None).expect("the digest alone holds");
    assert_eq!(unsigned.hosts[0].changes[0].operation, "edited");
    let e = Plan::<Test>::load(&p, Some(&key)).expect_err("hmac");
    assert!(
        e.to_string().ends_with(
            "its `hmac` does not match the plan key: it was changed, or made with another key"
        ),
        "{e}"
    );
    plan().save(&p, None).expect("save unsigned");
    let e = Plan::<Test>::load(&p, Some(&key)).expect_err("unsigned");
    assert!(
        e.to_string()
            .contains("it has no `hmac`, but a plan key was given"),
        "{e}"
    );
}

#[test]
fn a_host_listed_twice_or_an_unknown_dependency_is_refused() {
    let e = load_edited(&plan(), |v| {
        let host = v["hosts"][0].clone();
        v["hosts"].as_array_mut().expect("hosts").push(host);
        reseal(v);
    })
    .expect_err("twice");
    assert!(
        e.to_string().ends_with("host `host01` is listed twice"),
        "{e}"
    );
    let e = load_edited(&plan(), |v| {
        v["hosts"][0]["depends_on"] = serde_json::json!(["host09"]);
        reseal(v);
    })
    .expect_err("unknown host");
    assert!(
        e.to_string()
            .ends_with("host `host01` depends on `host09`, which is not a host of the plan"),
        "{e}"
    );
    let e = load_edited(&plan(), |v| {
        v["hosts"][0]["changes"][0]["depends_on"] = serde_json::json!(["b.setting"]);
        reseal(v);
    })
    .expect_err("unknown change");
    assert!(
        e.to_string().ends_with("change `a.setting` of host `host01` depends on `b.setting`, which is not a change of that host"),
        "{e}"
    );
}

#[test]
fn a_saved_plan_drops_dependencies_on_hosts_outside_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("plan.json");
    let mut selected = plan();
    selected.hosts[0].depends_on = vec!["not-selected".into()];
    selected.save(&p, None).expect("save");
    let (back, _) = Plan::<Test>::load(&p, None).expect("load");
    assert!(back.hosts[0].depends_on.is_empty());
}
