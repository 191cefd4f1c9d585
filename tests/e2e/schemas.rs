//! Every `--json` document of a real run (plan, show, apply, status, doctor, explain) against lab
//! hosts, validated against its committed schema in `schema/output/`; the runs include a failed
//! change, an unreachable host and an unknown code so the parts that appear only then
//! (`errors`, `failure`, a host's `error`, `known: false`) are checked too.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

const KINDS: [&str; 6] = ["plan", "apply", "status", "doctor", "explain", "clients"];

fn schema_path(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schema/output")
        .join(format!("{kind}.schema.json"))
}

/// Whether `doc` satisfies `schema/output/KIND.schema.json`, with boon's report when not.
fn check(kind: &str, doc: &Value) -> Result<(), String> {
    let path = schema_path(kind);
    let location = path.to_str().expect("a UTF-8 path");
    let mut schemas = boon::Schemas::new();
    let index = boon::Compiler::new()
        .compile(location, &mut schemas)
        .unwrap_or_else(|e| panic!("schema/output/{kind}.schema.json: {e:#}"));
    schemas.validate(doc, index).map_err(|e| format!("{e:#}"))
}

/// The run's standard output, which must be one document valid against the `kind` schema.
pub fn valid(kind: &str, run: &Run) -> Value {
    let doc: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document: {e}\n{run:?}"));
    if let Err(report) = check(kind, &doc) {
        panic!("{kind} output does not match its schema:\n{report}\n{run:?}");
    }
    doc
}

fn host<'a>(doc: &'a Value, list: &str, name: &str) -> &'a Value {
    doc[list]
        .as_array()
        .and_then(|l| l.iter().find(|h| h["name"] == name))
        .unwrap_or_else(|| panic!("no {list} entry `{name}` in {doc:#}"))
}

#[test]
fn schema_prints_each_committed_output_schema() {
    let p = Project::new();
    for kind in KINDS {
        let printed = p.ok(&["schema", "--output", kind], 0).stdout;
        let committed = std::fs::read_to_string(schema_path(kind)).unwrap_or_default();
        assert!(
            printed == committed,
            "schema/output/{kind}.schema.json is stale"
        );
    }
    let config = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/kmsconf.schema.json"),
    )
    .unwrap_or_default();
    assert!(p.ok(&["schema"], 0).stdout == config);
}

#[test]
fn the_json_of_every_command_matches_its_schema_through_failures() {
    let p = Project::new();
    let hosts = ["kms01", "kms02", "kms03"].map(|name| {
        format!("[hosts.{name}]\ntarget = \"lab:lab/{name}.json\"\naddress = \"127.0.0.1\"\n\n[hosts.{name}.products.windows]\nhost_key = {{ env = \"KMS_HOST_KEY\" }}\n\n")
    });
    p.write("kmsconf.toml", &hosts.concat());

    let plan = valid("plan", &p.ok(&["plan", "--json", "--out", "tfplan"], 0));
    assert!(!plan["changes"].as_array().expect("changes").is_empty());
    let shown = valid("plan", &p.ok(&["show", "tfplan", "--json"], 0));
    assert_eq!(shown["changes"], plan["changes"]);

    let fault = ["--op", "activate", "--hresult", "0xC004C008"];
    p.ok(
        &[&["lab", "fault", "lab/kms02.json"][..], &fault].concat(),
        0,
    );
    p.ok(&["lab", "unreachable", "lab/kms03.json", "on"], 0);
    let plan = valid("plan", &p.ok(&["plan", "--json"], 1));
    assert_eq!(plan["errors"][0]["kind"], "unreachable", "{plan:#}");

    let apply = valid("apply", &p.ok(&["apply", "--auto-approve", "--json"], 1));
    let unreached = host(&apply, "hosts", "kms03");
    assert_eq!(unreached["error"]["kind"], "unreachable", "{apply:#}");
    assert_eq!(unreached["failure"], unreached["error"]);
    let failed = host(&apply, "hosts", "kms02")["changes"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["status"] == "failed"))
        .unwrap_or_else(|| panic!("no failed change on kms02: {apply:#}"));
    assert_eq!(failed["code"], 0xC004_C008_u32);

    let status = valid("status", &p.ok(&["status", "--json"], 1));
    let unread = &host(&status, "hosts", "kms03")["error"];
    assert_eq!(unread["kind"], "unreachable", "{status:#}");
    assert!(
        unreached["error"]["message"]
            .as_str()
            .zip(unread["message"].as_str())
            .is_some_and(|(apply, status)| apply.ends_with(status)),
        "{apply:#}\n{status:#}"
    );
    assert_eq!(
        host(&status, "hosts", "kms01")["products"][0]["license_status"],
        "licensed"
    );

    let doctor = valid("doctor", &p.ok(&["doctor", "--json"], 1));
    assert!(doctor["summary"]["failed"].as_u64() > Some(0), "{doctor:#}");
    let reach = doctor["checks"]
        .as_array()
        .and_then(|c| {
            c.iter()
                .find(|c| c["host"] == "kms03" && c["check"] == "host-reachable")
        })
        .unwrap_or_else(|| panic!("no host-reachable check of kms03: {doctor:#}"));
    assert_eq!(reach["error"]["kind"], "unreachable");
    assert!(doctor["checks"][0]["error"].is_null(), "{doctor:#}");

    let known = valid("explain", &p.ok(&["explain", "0xC004F074", "--json"], 0));
    assert_eq!(known["known"], true);
    assert!(known["meaning"].is_string());
    let unknown = valid("explain", &p.ok(&["explain", "0xC004F999", "--json"], 1));
    assert_eq!(unknown["known"], false);
    assert!(unknown.get("meaning").is_none(), "{unknown:#}");

    // the check is not vacuous: a document that lost a field or changed a type is refused
    let mut broken = apply.clone();
    broken["summary"].take();
    assert!(check("apply", &broken).is_err());
    let mut broken = status;
    broken["hosts"][0]["products"][0]["license_status"] = "activated".into();
    assert!(check("status", &broken).is_err());
}

/// What a script reads of a host that cannot be read: the whole `status --json` run, the
/// failure as the `{kind, code, message}` object plan and apply report.
#[test]
fn status_json_reports_an_unreadable_host_as_a_failure_object() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(""));
    p.ok(&["lab", "unreachable", "lab/kms01.json", "on"], 0);
    let run = p.ok(&["status", "--json"], 1);
    valid("status", &run);
    snapshot_run("status-unreachable.json", &p, &run);
}

/// `[fleet] clients`: the `client-coverage` checks and a key's `activates` match their schemas.
#[test]
fn coverage_output_matches_its_schemas() {
    let p = Project::new();
    p.write(
        "kmsconf.toml",
        &format!(
            "[fleet]\nclients = [\"windows-11\", \"windows-server-2025\"]\n\n{}",
            single_host("")
        ),
    );
    p.ok(&["apply", "--auto-approve"], 0);
    let doctor = valid("doctor", &p.ok(&["doctor", "--json"], 1));
    let coverage: Vec<&Value> = doctor["checks"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter(|c| c["check"] == "client-coverage")
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(coverage.len(), 2, "{doctor:#}");
    let status = valid("status", &p.ok(&["status", "--json"], 0));
    assert_eq!(
        host(&status, "hosts", "kms01")["products"][0]["activates"]["group"],
        "windows-server-2022",
        "{status:#}"
    );
}
