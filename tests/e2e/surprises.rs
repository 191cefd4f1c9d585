//! Issue 24: what a host shows against kmsconf's unverified Windows facts is reported before any
//! change. A lab host made to contradict a fact (its file's `host.readings`) draws a plan
//! warning (human, markdown, JSON), a `doctor` warning (`windows-facts`), and an `apply` that
//! refuses the change relying on it until `--accept-surprises`. A retirement chooses the client
//! key by SKU and build whatever language the caption is in, and refuses an unknown SKU.

use serde_json::{json, Value};

use crate::common::*;

/// A KMS host with an interval to set, its lab host created by a first `plan`.
fn project() -> Project {
    let p = Project::new();
    p.write(
        "kmsconf.toml",
        &single_host("\n[hosts.kms01.service]\nactivation_interval = 60\n"),
    );
    p.ok(&["plan"], 0);
    p
}

/// Edits the lab host's state file.
fn edit_host(p: &Project, edit: impl FnOnce(&mut Value)) {
    let mut file: Value = serde_json::from_str(&p.read("lab/kms01.json")).expect("lab file");
    edit(&mut file["host"]);
    p.write(
        "lab/kms01.json",
        &serde_json::to_string_pretty(&file).expect("json"),
    );
}

/// The host keeps `VLActivationInterval` under the VA 2.0 guide's Vista-era `SL` key, not under
/// SoftwareProtectionPlatform, where the table names it.
fn contradict_interval_key(p: &Project) {
    edit_host(p, |host| {
        host["readings"] = json!({
            "registry": [{ "key": "sl", "name": "VLActivationInterval", "type": "REG_DWORD" }]
        });
    });
}

#[test]
fn a_contradicted_fact_warns_in_every_plan_format_and_in_doctor() {
    let p = project();
    contradict_interval_key(&p);
    let human = p.ok(&["plan"], 0);
    snapshot_run("surprise-plan", &p, &human);
    let markdown = p.ok(&["plan", "--format", "markdown"], 0);
    assert!(
        markdown.stdout.contains("- **warning:** the host contradicts `registry VLActivationInterval` (source `spp-listing` in model/data/windows.toml)"),
        "{markdown:?}"
    );
    let json: Value = serde_json::from_str(&p.ok(&["plan", "--json"], 0).stdout).expect("json");
    assert_eq!(json["format_version"], 1);
    assert_eq!(
        json["hosts"][0]["surprises"],
        json!([{
            "fact": "registry VLActivationInterval",
            "source": "spp-listing",
            "expected": "REG_DWORD under `HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\SoftwareProtectionPlatform`",
            "observed": "REG_DWORD under `HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\SL`",
            "affects": ["service.activation_interval"],
        }])
    );
    let doctor: Value =
        serde_json::from_str(&p.run(&["doctor", "--json"]).stdout).expect("doctor json");
    let facts: Vec<&Value> = doctor["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["check"] == "windows-facts")
        .collect();
    assert_eq!(facts.len(), 1, "{doctor:#}");
    assert_eq!(facts[0]["status"], "warning");
    assert_eq!(facts[0]["subject"], "registry VLActivationInterval");
    assert!(
        facts[0]["fix"]
            .as_str()
            .is_some_and(|f| f.contains("KMSCONF_RECORD=DIR kmsconf plan")),
        "{:?}",
        facts[0]
    );
}

#[test]
fn apply_refuses_a_change_relying_on_a_contradicted_fact_until_accepted() {
    let p = project();
    contradict_interval_key(&p);
    let before = p.read("lab/kms01.json");
    let refused = p.ok(&["apply", "--auto-approve"], 1);
    snapshot_run("surprise-apply-refused", &p, &refused);
    assert_eq!(p.read("lab/kms01.json"), before, "nothing changed");
    // a saved plan is refused the same way
    p.ok(&["plan", "--out", "plan.json"], 0);
    let refused = p.ok(&["apply", "plan.json"], 1);
    assert!(
        refused.stderr.contains("refusing to apply: host `kms01`: `service.activation_interval` relies on `registry VLActivationInterval`"),
        "{refused:?}"
    );
    let accepted = p.ok(&["apply", "--auto-approve", "--accept-surprises"], 0);
    assert!(
        accepted
            .stderr
            .contains("`--accept-surprises`: applying 1 change that rely"),
        "{accepted:?}"
    );
    let status: Value =
        serde_json::from_str(&p.ok(&["status", "--json"], 0).stdout).expect("status");
    assert_eq!(
        status["hosts"][0]["service"]["activation_interval"], 60,
        "{status:#}"
    );
}

#[test]
fn a_host_that_agrees_with_the_table_draws_no_warning_and_doctor_says_ok() {
    let p = project();
    let plan = p.ok(&["plan"], 0);
    assert!(!plan.all().contains("contradicts"), "{plan:?}");
    let doctor: Value =
        serde_json::from_str(&p.run(&["doctor", "--json"]).stdout).expect("doctor json");
    let ok = doctor["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .any(|c| c["check"] == "windows-facts" && c["status"] == "ok");
    assert!(ok, "{doctor:#}");
}

/// Retires the host after giving it `caption`, `sku` and `build`.
fn retire(caption: &str, sku: u32, build: u32) -> (Project, Run) {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(""));
    p.ok(&["apply", "--auto-approve"], 0);
    edit_host(&p, |host| {
        host["os"] = json!(caption);
        host["os_sku"] = json!(sku);
        host["os_build"] = json!(build);
    });
    p.write(
        "kmsconf.toml",
        "[hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\nstate = \"retired\"\n",
    );
    let r = p.run(&["plan", "--json"]);
    (p, r)
}

#[test]
fn a_retirement_chooses_the_client_key_by_sku_and_build_in_any_language() {
    for (caption, sku, build, name) in [
        (
            "Microsoft Windows 10 Professionnel",
            48,
            19045,
            "Windows 11 Pro / Windows 10 Pro",
        ),
        (
            "Microsoft Windows 10 엔터프라이즈",
            4,
            19045,
            "Windows 11 Enterprise / Windows 10 Enterprise",
        ),
        (
            "Microsoft Windows Server 2019 Datacenter",
            8,
            17763,
            "Windows Server 2019 Datacenter",
        ),
    ] {
        let (_, r) = retire(caption, sku, build);
        assert_eq!(r.code, 0, "{caption}: {r:?}");
        let plan: Value = serde_json::from_str(&r.stdout).expect("json");
        let key = plan["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .find(|c| c["address"] == "products.windows.client_key")
            .unwrap_or_else(|| panic!("{caption}: {plan:#}"));
        assert_eq!(
            key["note"],
            json!(format!(
                "the public KMS client setup key of {name}, replacing the KMS host key in one step"
            )),
            "{caption}"
        );
    }
}

#[test]
fn an_unknown_sku_is_a_plan_error_naming_what_the_host_reported() {
    let (p, _) = retire(
        "Microsoft Windows Server 2022 Datacenter Evaluation",
        80,
        20348,
    );
    let r = p.ok(&["plan"], 1);
    snapshot_run("surprise-unknown-sku", &p, &r);
}

/// What the host says is its own text: a language mode carrying a terminal escape is shown
/// escaped in the human plan, and every change of the host is held back.
#[test]
fn the_hosts_own_text_in_a_surprise_is_escaped_and_the_agent_fact_holds_back_everything() {
    let p = project();
    edit_host(&p, |host| {
        host["readings"] = json!({ "language_mode": "Constrained\u{1b}]0;pwned\u{7}Language" });
    });
    let plan = p.ok(&["plan"], 0);
    assert!(!plan.stdout.contains('\u{1b}'), "{plan:?}");
    assert!(
        plan.stdout
            .contains("the host contradicts `agent language-mode` (source `powershell-clm`"),
        "{plan:?}"
    );
    let refused = p.ok(&["apply", "--auto-approve"], 1);
    for address in [
        "products.windows.host_key",
        "service.activation_interval",
        "service.restart",
    ] {
        assert!(
            refused
                .stderr
                .contains(&format!("`{address}` relies on `agent language-mode`")),
            "{address}: {refused:?}"
        );
    }
}

/// A built-in rule that lets in another port than its rule-store row (the lab file's
/// `host.readings.rule_filters`) is a warning naming the rule and what the host shows; `apply`
/// refuses the change to that rule, which would not open the KMS port, until
/// `--accept-surprises`, and `doctor` warns too.
#[test]
fn a_built_in_rule_on_another_port_stops_its_own_change_until_accepted() {
    let p = Project::new();
    p.write(
        "kmsconf.toml",
        &single_host(
            "\n[hosts.kms01.firewall]\nrule_groups = [\"key-management-service\"]\nprofiles = [\"private\"]\n",
        ),
    );
    p.ok(&["plan"], 0);
    edit_host(&p, |host| {
        host["readings"] = json!({
            "rule_filters": [{ "name": "SPPSVC-In-TCP", "protocol": "TCP", "local_ports": ["1689"] }]
        });
    });
    let plan = p.ok(&["plan"], 0);
    assert!(
        plan.stdout.contains("warning: the host contradicts `firewall rule SPPSVC-In-TCP` (source `rule-store` in model/data/windows.toml)")
            && plan.stdout.contains("the host shows `TCP 1689`"),
        "{plan:?}"
    );
    let before = p.read("lab/kms01.json");
    let refused = p.ok(&["apply", "--auto-approve"], 1);
    assert!(
        refused.stderr.contains(
            "`firewall.key-management-service.SPPSVC-In-TCP` relies on `firewall rule SPPSVC-In-TCP`"
        ),
        "{refused:?}"
    );
    assert_eq!(p.read("lab/kms01.json"), before, "nothing changed");
    let doctor: Value =
        serde_json::from_str(&p.run(&["doctor", "--json"]).stdout).expect("doctor json");
    assert!(
        doctor["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .any(|c| {
                c["check"] == "windows-facts"
                    && c["status"] == "warning"
                    && c["subject"] == "firewall rule SPPSVC-In-TCP"
            }),
        "{doctor:#}"
    );
    p.ok(&["apply", "--auto-approve", "--accept-surprises"], 0);
}
