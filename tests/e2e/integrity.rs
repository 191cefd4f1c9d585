//! A saved plan is what was reviewed: `plan`, `show`, the markdown summary and `apply` print one
//! digest, an edited file is refused before any host is touched, and with `KMSCONF_PLAN_KEY` a
//! recomputed digest is not enough.

use serde_json::Value;

use crate::common::*;

/// `text` with each `sha256:` digest replaced by `sha256:<digest>`, for snapshots: a plan
/// records its config's absolute directory, so its digest differs from one temp dir to the next.
pub fn mask_digests(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("sha256:") {
        let (head, tail) = rest.split_at(i + "sha256:".len());
        out.push_str(head);
        let hex = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex == 64 {
            out.push_str("<digest>");
            rest = &tail[hex..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// The first `sha256:` digest in `text`.
fn digest_in(text: &str) -> String {
    let i = text
        .find("sha256:")
        .unwrap_or_else(|| panic!("no digest in:\n{text}"));
    text[i..i + 71].to_string()
}

fn settings_project() -> Project {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(SETTINGS));
    p
}

fn edit(p: &Project, file: &str, f: impl FnOnce(&mut Value)) {
    let mut value: Value = serde_json::from_str(&p.read(file)).expect("plan json");
    f(&mut value);
    p.write(file, &serde_json::to_string_pretty(&value).expect("json"));
}

/// What an attacker who knows the format does after editing: recompute the digest.
pub fn reseal(value: &mut Value) {
    let map = value.as_object_mut().expect("object");
    map.remove("digest");
    let mut content = map.clone();
    content.remove("hmac");
    let plan: kmsconf_model::KmsPlan =
        serde_json::from_value(Value::Object(content)).expect("a plan");
    map.insert(
        "digest".into(),
        Value::String(plan.digest().expect("digest")),
    );
}

/// The change of `address` in the first host of a plan file's JSON.
fn change<'a>(plan: &'a mut Value, address: &str) -> &'a mut Value {
    plan["hosts"][0]["changes"]
        .as_array_mut()
        .expect("changes")
        .iter_mut()
        .find(|c| c["address"] == address)
        .unwrap_or_else(|| panic!("no change {address}"))
}

#[test]
fn plan_show_markdown_and_apply_print_one_digest() {
    let p = settings_project();
    let planned = p.ok(&["plan", "--out", "plan.json"], 0);
    let digest = digest_in(&planned.stderr);
    snapshot_run("plan-out-not-signed", &p, &planned);
    let shown = p.ok(&["show", "plan.json"], 0);
    assert_eq!(digest_in(&shown.stderr), digest);
    assert_eq!(shown.stdout, planned.stdout, "the digest goes to stderr");
    let md = p.ok(&["show", "plan.json", "--format", "markdown"], 0);
    assert!(
        md.stdout.contains(&format!("Plan digest: `{digest}`")),
        "{md:?}"
    );
    let applied = p.ok(&["apply", "plan.json"], 0);
    assert!(
        applied
            .stdout
            .starts_with(&format!("Plan digest: {digest} (not signed")),
        "{applied:?}"
    );
}

#[test]
fn an_edited_operation_is_refused_by_show_and_apply_and_changes_nothing() {
    let p = settings_project();
    p.ok(&["plan", "--out", "plan.json"], 0);
    let lab = p.read("lab/kms01.json");
    // the attack: the display still says 60, the operation would set 15
    edit(&p, "plan.json", |plan| {
        change(plan, "service.activation_interval")["operation"]["value"] = 15.into();
    });
    let shown = p.ok(&["show", "plan.json"], 1);
    snapshot_run("show-edited-plan", &p, &shown);
    for args in [
        &["show", "plan.json", "--format", "markdown"][..],
        &["apply", "plan.json"],
    ] {
        let r = p.ok(args, 1);
        assert_eq!(r.shown(&p), shown.shown(&p), "{args:?}");
    }
    assert_eq!(p.read("lab/kms01.json"), lab, "no host was touched");
}

#[test]
fn with_a_plan_key_a_recomputed_digest_is_refused_and_the_key_never_shows() {
    const KEY: &str = "4f1c0b7e9a2d4c6e8f0a1b3c5d7e9f11";
    let mut p = settings_project();
    p.env("KMSCONF_PLAN_KEY", KEY);
    let planned = p.ok(&["plan", "--out", "plan.json"], 0);
    snapshot_run("plan-out-signed", &p, &planned);
    let saved = p.read("plan.json");
    assert!(saved.contains("\"hmac\": \"hmac-sha256:"));
    p.ok(&["show", "plan.json"], 0);
    edit(&p, "plan.json", |plan| {
        change(plan, "service.activation_interval")["operation"]["value"] = 15.into();
        reseal(plan);
    });
    let lab = p.read("lab/kms01.json");
    let r = p.ok(&["apply", "plan.json"], 1);
    snapshot_run("apply-plan-hmac-mismatch", &p, &r);
    assert_eq!(p.read("lab/kms01.json"), lab, "no host was touched");
    // without the key the recomputed digest passes, and the display no longer matching the
    // operation is what refuses the file
    p.unset("KMSCONF_PLAN_KEY");
    let r = p.ok(&["show", "plan.json"], 1);
    snapshot_run("show-resealed-plan-without-key", &p, &r);
    // an unsigned plan is refused where the key is set
    p.ok(&["plan", "--out", "unsigned.json"], 0);
    p.env("KMSCONF_PLAN_KEY", KEY);
    let r = p.ok(&["apply", "unsigned.json"], 1);
    snapshot_run("apply-unsigned-plan-with-key", &p, &r);
    for text in [planned.all(), saved, r.all()] {
        assert!(
            !text.contains(KEY) && !text.contains(&KEY[..12]),
            "the key leaked"
        );
    }
    p.env("KMSCONF_PLAN_KEY", "short");
    let r = p.ok(&["plan", "--out", "plan.json"], 1);
    snapshot_run("plan-key-too-short", &p, &r);
    assert!(!r.all().contains("short"), "{r:?}");
}

/// Issue 13, item 1, against an attacker who recomputes the digest: each change must show what
/// its operation does, so an edited `after` or `equivalent`, or an operation edited under them, is
/// refused by show, the markdown summary and apply, naming the host and the change.
#[test]
fn an_edited_display_or_operation_with_a_recomputed_digest_is_refused() {
    let p = settings_project();
    p.ok(&["plan", "--out", "reviewed.json"], 0);
    let reviewed = p.read("reviewed.json");
    let lab = p.read("lab/kms01.json");
    type Edit = fn(&mut Value);
    let edits: [(Edit, &str); 3] = [
        (|c| c["after"] = 15.into(), "after"),
        (
            |c| c["equivalent"] = "slmgr.vbs /sai 120".into(),
            "equivalent",
        ),
        (|c| c["operation"]["value"] = 15.into(), "operation"),
    ];
    for (edit_change, what) in edits {
        p.write("plan.json", &reviewed);
        edit(&p, "plan.json", |plan| {
            edit_change(change(plan, "service.activation_interval"));
            reseal(plan);
        });
        let shown = p.ok(&["show", "plan.json"], 1);
        snapshot_run(&format!("show-plan-with-edited-{what}"), &p, &shown);
        for args in [
            &["show", "plan.json", "--format", "markdown"][..],
            &["apply", "plan.json"],
        ] {
            let r = p.ok(args, 1);
            assert_eq!(r.shown(&p), shown.shown(&p), "{args:?}");
        }
        assert_eq!(p.read("lab/kms01.json"), lab, "no host was touched");
    }
    // an operation and its display edited together: what is shown is what would be applied
    p.write("plan.json", &reviewed);
    edit(&p, "plan.json", |plan| {
        let c = change(plan, "service.activation_interval");
        c["operation"]["value"] = 15.into();
        c["after"] = 15.into();
        c["equivalent"] = "slmgr.vbs /sai 15".into();
        reseal(plan);
    });
    let r = p.ok(&["show", "plan.json"], 0);
    snapshot_run("show-plan-edited-consistently", &p, &r);
}

#[test]
fn apply_refuses_a_config_with_a_plan_file() {
    let p = settings_project();
    p.ok(&["plan", "--out", "plan.json"], 0);
    let r = p.ok(&["apply", "-c", "other.toml", "plan.json"], 1);
    snapshot_run("apply-config-with-plan-file", &p, &r);
}

/// Issue 13, item 2: a secret changed between plan and apply is found before the first change
/// on any host, so neither kms01 (whose key did not change) nor kms02 is touched.
#[test]
fn a_changed_or_malformed_secret_makes_a_saved_plan_stale_before_any_change() {
    let mut p = Project::example("two-hosts");
    p.env("KMS_HOST_KEY_2", WINDOWS_KEY_2);
    p.ok(&["plan", "--out", "plan.json"], 0);
    let hosts = |p: &Project| {
        ["lab/kms01.json", "lab/kms02.json"].map(|f| {
            // the round-trip counter counts the rediscovery; the host itself must not change
            serde_json::from_str::<Value>(&p.read(f)).expect("lab file")["host"].clone()
        })
    };
    let before = hosts(&p);
    for (value, name) in [(OFFICE_KEY, "changed"), ("not-a-key", "malformed")] {
        p.env("KMS_HOST_KEY_2", value);
        let r = p.ok(&["apply", "plan.json"], 1);
        snapshot_run(&format!("apply-stale-plan-secret-{name}"), &p, &r);
        assert!(!r.all().contains(value), "the secret is never shown: {r:?}");
        assert_eq!(hosts(&p), before, "no host was touched");
    }
}

/// Issue 13, item 10: a lab host's license pack that is not on disk is said at plan time.
#[test]
fn plan_warns_about_a_missing_local_license_pack() {
    let mut p = Project::new();
    p.env("OFFICE_2019_KEY", OFFICE_KEY);
    p.write("kmsconf.toml", "[hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\n[hosts.kms01.products.office-2019]\nhost_key = { env = \"OFFICE_2019_KEY\" }\nlicense_pack = \"packs/office-2019\"\n");
    let r = p.ok(&["plan"], 0);
    snapshot_run("plan-missing-license-pack", &p, &r);
    std::fs::create_dir_all(p.path("packs/office-2019")).expect("mkdir");
    let r = p.ok(&["plan"], 0);
    assert!(!r.stdout.contains("does not exist"), "{r:?}");
}
