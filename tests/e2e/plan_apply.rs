//! Plan and apply behaviour: idempotency, order, saved plans, exit codes, host selection.

use crate::common::*;

#[test]
fn a_fresh_lab_host_is_created_by_plan_and_said_so_once() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(""));
    let first = p.ok(&["plan"], 0);
    snapshot_run("plan-fresh-lab-host", &p, &first);
    assert!(p.path("lab/kms01.json").exists());
    let second = p.ok(&["plan"], 0);
    assert!(!second.stdout.contains("lab host created"), "{second:?}");
}

/// Every command that reaches a lab host, not only plan, says when it created the state file;
/// with `--json` on stderr, so stdout stays one JSON document.
#[test]
fn every_command_that_creates_a_lab_host_says_so() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(""));
    let fresh = |p: &Project| {
        let _ = std::fs::remove_dir_all(p.path("lab"));
    };
    for (args, code) in [
        (vec!["status"], 0),
        (vec!["doctor"], 1),
        (vec!["apply", "--auto-approve"], 0),
    ] {
        fresh(&p);
        let r = p.ok(&args, code);
        assert!(r.stdout.contains("lab host created"), "{args:?}: {r:?}");
        assert!(p.path("lab/kms01.json").exists());
        let again = p.run(&args);
        assert!(
            !again.all().contains("lab host created"),
            "{args:?}: {again:?}"
        );
    }
    for (args, code) in [
        (vec!["status", "--json"], 0),
        (vec!["doctor", "--json"], 1),
        (vec!["apply", "--auto-approve", "--json"], 0),
    ] {
        fresh(&p);
        let r = p.ok(&args, code);
        assert!(r.stderr.contains("lab host created"), "{args:?}: {r:?}");
        serde_json::from_str::<serde_json::Value>(&r.stdout).expect("stdout is one JSON object");
    }
}

#[test]
fn detailed_exit_codes_are_0_2_and_1() {
    let mut p = Project::new();
    p.write("kmsconf.toml", &single_host(SETTINGS));
    p.ok(&["plan", "--detailed-exitcode"], 2);
    p.ok(&["plan"], 0);
    p.ok(&["apply", "--auto-approve"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 0);
    p.unset("KMS_HOST_KEY");
    let err = p.ok(&["plan", "--detailed-exitcode"], 1);
    snapshot_run("plan-host-key-not-set", &p, &err);
}

/// A usage error is an error (1), never 2, which `--detailed-exitcode` means "changes".
#[test]
fn a_usage_error_exits_1_even_with_detailed_exitcode() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(SETTINGS));
    let r = p.ok(&["plan", "--detailed-exitcode", "--no-such-flag"], 1);
    snapshot_run("plan-unknown-flag", &p, &r);
    p.ok(&["plan", "--detailed-exitcode", "--parallelism", "0"], 1);
    p.ok(&["no-such-command"], 1);
    let help = p.ok(&["plan", "--help"], 0);
    snapshot_run("plan-help", &p, &help);
    p.ok(&["--version"], 0);
}

#[test]
fn apply_is_idempotent_and_runs_in_dependency_order() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(SETTINGS));
    let plan = p.ok(&["plan", "--json"], 0);
    let doc: serde_json::Value = serde_json::from_str(&plan.stdout).expect("json");
    let addresses: Vec<&str> = doc["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["address"].as_str().expect("address"))
        .collect();
    let pos = |a: &str| {
        addresses
            .iter()
            .position(|x| *x == a)
            .unwrap_or_else(|| panic!("{a} not in {addresses:?}"))
    };
    assert!(pos("products.windows.host_key") < pos("products.windows.activation"));
    assert!(pos("products.windows.host_key") < pos("service.port"));
    assert!(pos("service.port") < pos("service.restart"));
    assert!(pos("service.activation_interval") < pos("service.restart"));
    assert!(pos("service.port") < pos("firewall.kms-port-rule"));
    let port = &doc["changes"][pos("service.port")];
    assert_eq!(
        port["depends_on"],
        serde_json::json!(["products.windows.host_key"])
    );
    assert_eq!(port["before"], 1688);
    assert_eq!(port["after"], 1689);
    assert_eq!(port["equivalent"], "slmgr.vbs /sprt 1689");
    assert_eq!(doc["summary"]["restart"], 1);

    let applied = p.ok(&["apply", "--auto-approve", "--json"], 0);
    let report: serde_json::Value = serde_json::from_str(&applied.stdout).expect("json");
    let host = &report["hosts"][0];
    // key; activation beside the settings; restart + port rule: one batch per dependency level
    assert_eq!(host["batches"], 3, "{report}");
    assert!(host["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .all(|c| c["status"] == "applied"));

    let again = p.ok(&["apply", "--auto-approve"], 0);
    snapshot_run("apply-no-changes", &p, &again);
    let state = p.read("lab/kms01.json");
    assert!(
        state.contains("\"port\": 1689") && state.contains("\"restart_pending\": false"),
        "{state}"
    );
}

#[test]
fn apply_refuses_to_run_unattended_without_auto_approve() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(""));
    let r = p.ok(&["apply"], 1);
    snapshot_run("apply-without-auto-approve", &p, &r);
    let state = p.read("lab/kms01.json");
    assert!(state.contains("kms-client"), "nothing may change: {state}");
}

#[test]
fn a_saved_plan_applies_as_reviewed_and_a_stale_one_is_refused() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(SETTINGS));
    p.ok(&["plan", "--out", "plan.json"], 0);
    let applied = p.ok(&["apply", "plan.json"], 0);
    snapshot_run("apply-saved-plan", &p, &applied);
    p.ok(&["plan", "--detailed-exitcode"], 0);

    // the host changes between plan and apply: the plan must be refused, nothing applied
    p.write(
        "kmsconf.toml",
        &single_host("[hosts.kms01.service]\nport = 1700\n"),
    );
    p.ok(&["plan", "--out", "plan2.json"], 0);
    p.write(
        "kmsconf.toml",
        &single_host("[hosts.kms01.service]\nport = 1800\n"),
    );
    p.ok(&["apply", "--auto-approve"], 0);
    let stale = p.ok(&["apply", "plan2.json"], 1);
    snapshot_run("apply-stale-plan", &p, &stale);
    assert!(p.read("lab/kms01.json").contains("\"port\": 1800"));
}

#[test]
fn a_plan_file_that_is_not_one_is_refused() {
    let p = Project::new();
    p.write("bad.json", "{\"hello\": 1}");
    let r = p.ok(&["apply", "bad.json"], 1);
    snapshot_run("apply-not-a-plan-file", &p, &r);
    p.write("bad.json", "not json");
    let r = p.ok(&["apply", "bad.json"], 1);
    snapshot_run("apply-plan-file-not-json", &p, &r);
}

#[test]
fn host_selection_plans_only_the_named_hosts() {
    let mut p = Project::example("two-hosts");
    p.env("KMS_HOST_KEY_2", WINDOWS_KEY_2);
    let r = p.ok(&["plan", "--host", "kms02", "--json"], 0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert!(doc["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .all(|c| c["host"] == "kms02"));
    assert!(
        !p.path("lab/kms01.json").exists(),
        "kms01 must not be contacted"
    );
    let r = p.ok(&["plan", "--host", "nope"], 1);
    snapshot_run("plan-no-such-host", &p, &r);
}

#[test]
fn no_colour_when_not_a_terminal_or_with_no_color() {
    let mut p = Project::new();
    p.write("kmsconf.toml", &single_host(SETTINGS));
    p.env("NO_COLOR", "1");
    let r = p.ok(&["plan"], 0);
    assert!(!r.all().contains('\u{1b}'), "{r:?}");
}

#[test]
fn schema_command_prints_the_checked_in_schema() {
    let p = Project::new();
    let r = p.ok(&["schema"], 0);
    let file = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/kmsconf.schema.json"),
    )
    .expect("schema");
    assert_eq!(r.stdout, file);
}

/// Paths in the config are relative to the config file, whatever the current directory: the
/// lab state file, a `file` secret, and a lab host's license pack.
#[test]
fn a_config_in_another_directory_converges_with_its_relative_paths() {
    let p = Project::new();
    p.write(
        "site/kmsconf.toml",
        "[hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\n\n[hosts.kms01.products.office-2019]\nhost_key = { file = \"secrets/office.key\" }\nlicense_pack = \"packs/office-2019\"\nactivation = \"none\"\n",
    );
    p.write("site/secrets/office.key", OFFICE_KEY);
    p.write("site/packs/office-2019/README.txt", "stand-in pack");
    let r = p.ok(&["apply", "--auto-approve", "-c", "site/kmsconf.toml"], 0);
    snapshot_run("apply-config-in-another-directory", &p, &r);
    assert!(p.path("site/lab/kms01.json").exists());
    assert!(!p.path("lab").exists());
    p.ok(
        &["plan", "--detailed-exitcode", "-c", "site/kmsconf.toml"],
        0,
    );
}

/// KMS settings on a host that is not an activated KMS host and declares no Windows key cannot
/// be planned (Windows refuses them there); the message names the table to add for that host.
#[test]
fn settings_without_a_windows_key_name_the_table_to_declare() {
    let p = Project::new();
    p.write(
        "kmsconf.toml",
        "[hosts.kms07]\ntarget = \"lab:lab/kms07.json\"\n[hosts.kms07.service]\nport = 1700\n",
    );
    let r = p.ok(&["plan", "--detailed-exitcode"], 1);
    snapshot_run("plan-settings-without-a-windows-key", &p, &r);
}

/// `slmgr.vbs /sai` and `/sri` warn that the KMS needs a restart, as `/sprt` does: a config that
/// changes only an interval plans the Software Protection restart too.
#[test]
fn an_interval_alone_plans_the_service_restart() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(""));
    p.ok(&["apply", "--auto-approve"], 0);
    p.write(
        "kmsconf.toml",
        &single_host("\n[hosts.kms01.service]\nactivation_interval = 60\n"),
    );
    let plan = p.ok(&["plan", "--json"], 0);
    let doc: serde_json::Value = serde_json::from_str(&plan.stdout).expect("json");
    let addresses: Vec<&str> = doc["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["address"].as_str().expect("address"))
        .collect();
    assert_eq!(
        addresses,
        ["service.activation_interval", "service.restart"],
        "{doc}"
    );
    p.ok(&["apply", "--auto-approve"], 0);
    let state = p.read("lab/kms01.json");
    assert!(state.contains("\"restart_pending\": false"), "{state}");
}

/// Both Key Management Service rules are managed: by default the domain rule
/// (`SPPSVC-In-TCP-NoScope`) and the private one open, Public stays closed, and each rule keeps
/// its built-in scope; `profiles` with `public` opens it too.
#[test]
fn the_kms_rules_open_on_the_configured_profiles_only() {
    let p = Project::new();
    let firewall = |extra: &str| {
        single_host(&format!(
            "\n[hosts.kms01.firewall]\nrule_groups = [\"key-management-service\"]\n{extra}"
        ))
    };
    p.write("kmsconf.toml", &firewall(""));
    p.ok(&["apply", "--auto-approve"], 0);
    let state: serde_json::Value =
        serde_json::from_str(&p.read("lab/kms01.json")).expect("lab json");
    let rules = &state["host"]["firewall"]["groups"]["key-management-service"]["rules"];
    assert_eq!(
        rules["SPPSVC-In-TCP"],
        serde_json::json!({ "enabled": true, "profiles": ["private"], "remote_addresses": ["LocalSubnet"] })
    );
    assert_eq!(
        rules["SPPSVC-In-TCP-NoScope"],
        serde_json::json!({ "enabled": true, "profiles": ["domain"], "remote_addresses": [] })
    );
    p.write(
        "kmsconf.toml",
        &firewall("profiles = [\"domain\", \"private\", \"public\"]\n"),
    );
    let plan = p.ok(&["plan"], 0);
    snapshot_run("plan-kms-rules-on-public", &p, &plan);
}

/// KMS settings wait for the host key install, not its activation: a host whose Windows phone
/// activation is still pending gets them (and the restart) applied, and host caching, which
/// slmgr.vbs does not gate, waits for nothing.
#[test]
fn settings_are_applied_while_a_phone_activation_is_pending() {
    let p = Project::new();
    p.write(
        "kmsconf.toml",
        "[hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\n\n[hosts.kms01.products.windows]\nhost_key = { env = \"KMS_HOST_KEY\" }\nactivation = \"phone\"\n\n[hosts.kms01.service]\nport = 1689\nhost_caching = false\n",
    );
    let plan = p.ok(&["plan", "--json"], 0);
    let doc: serde_json::Value = serde_json::from_str(&plan.stdout).expect("json");
    let change = |address: &str| {
        doc["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .find(|c| c["address"] == address)
            .cloned()
            .unwrap_or_else(|| panic!("{address} not planned: {doc}"))
    };
    assert_eq!(
        change("service.port")["depends_on"],
        serde_json::json!(["products.windows.host_key"])
    );
    assert_eq!(
        change("service.host_caching")["depends_on"],
        serde_json::json!([])
    );
    let applied = p.ok(&["apply", "--auto-approve"], 0);
    snapshot_run("apply-settings-while-phone-pending", &p, &applied);
    let state = p.read("lab/kms01.json");
    assert!(
        state.contains("\"port\": 1689") && state.contains("\"restart_pending\": false"),
        "{state}"
    );
    assert!(state.contains("\"host_caching\": false"), "{state}");
}
