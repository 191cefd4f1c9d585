//! Day-2 operations against lab hosts: `status`, `doctor` (each check reaching its verdict in a
//! healthy and in broken states, the port check against a real listening and a real closed port
//! on 127.0.0.1), `explain`, `client-script`, and the lab's clients and clock.

use std::net::TcpListener;

use crate::common::*;

/// A port something listens on, kept open while the value lives.
fn listening() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    (l, port)
}

/// A port nothing listens on: bound, then released.
fn closed() -> u16 {
    listening().1
}

/// A host reached at 127.0.0.1 on `port`, with the KMS firewall group and a Windows KMS host key.
fn host(name: &str, port: u16, firewall: bool) -> String {
    let fw = if firewall {
        format!("[hosts.{name}.firewall]\nrule_groups = [\"key-management-service\"]\n")
    } else {
        String::new()
    };
    format!(
        "[hosts.{name}]\ntarget = \"lab:lab/{name}.json\"\naddress = \"127.0.0.1\"\n\n[hosts.{name}.service]\nport = {port}\n\n{fw}\n[hosts.{name}.products.windows]\nhost_key = {{ env = \"KMS_HOST_KEY\" }}\n\n"
    )
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"))
}

/// The check `id` of `host` in `doctor --json`.
fn check<'a>(doc: &'a serde_json::Value, host: &str, id: &str) -> &'a serde_json::Value {
    doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["host"] == host && c["check"] == id)
        .unwrap_or_else(|| panic!("no {id} for {host} in {doc:#}"))
}

fn add_clients(p: &Project, path: &str, extra: &[&str]) -> Run {
    let mut args = vec!["lab", "clients", "add", path];
    args.extend_from_slice(extra);
    p.ok(&args, 0)
}

#[test]
fn doctor_passes_a_healthy_host_and_fails_a_broken_one() {
    let (_listener, open) = listening();
    let shut = closed();
    let p = Project::new();
    p.write(
        "kmsconf.toml",
        &[host("kms01", open, true), host("kms02", shut, false)].concat(),
    );
    p.ok(&["apply", "--auto-approve", "--json"], 0);
    add_clients(&p, "lab/kms01.json", &["--count", "25"]);
    add_clients(&p, "lab/kms02.json", &["--count", "3"]);
    p.ok(&["lab", "clock", "lab/kms02.json", "+2h"], 0);

    let r = p.ok(&["doctor", "--json"], 1);
    let doc = json(&r);
    for id in [
        "port-reachable",
        "firewall-rules",
        "clock-skew",
        "product-licensed",
        "count-threshold",
    ] {
        let c = check(&doc, "kms01", id);
        assert_eq!(c["status"], "ok", "{c:#}");
        assert!(c["fix"].is_null(), "{c:#}");
    }
    let failed = |id: &str| {
        let c = check(&doc, "kms02", id);
        assert_eq!(c["status"], "failed", "{c:#}");
        assert!(c["fix"].as_str().is_some_and(|f| !f.is_empty()), "{c:#}");
        c["detail"].as_str().expect("detail").to_string()
    };
    assert!(failed("port-reachable").contains(&format!("127.0.0.1:{shut}")));
    // kms02 listens on its custom port with no firewall declared: nothing lets it in
    assert!(failed("firewall-rules").contains(&format!("TCP {shut}")));
    assert!(failed("clock-skew").contains("2h ahead"));
    assert!(failed("count-threshold").contains("count 3"));
    assert_eq!(doc["summary"]["failed"], 4, "{doc:#}");

    let text = p.ok(&["doctor"], 1).stdout;
    let text = text
        .replace(&format!(":{open} "), ":OPEN ")
        .replace(&format!("TCP {open} "), "TCP OPEN ")
        .replace(&shut.to_string(), "CLOSED");
    snapshot("doctor.txt", &text);

    // healthy alone: exit 0
    p.ok(&["doctor", "--host", "kms01"], 0);
}

#[test]
fn doctor_reports_an_unlicensed_product_and_a_closed_firewall() {
    let (_listener, open) = listening();
    let p = Project::new();
    // never applied: the lab host has only its KMS client key and its firewall groups off
    p.write("kmsconf.toml", &host("kms01", open, true));
    let doc = json(&p.ok(&["doctor", "--json"], 1));
    let licensed = check(&doc, "kms01", "product-licensed");
    assert_eq!(licensed["status"], "failed");
    assert_eq!(licensed["subject"], "windows");
    assert!(licensed["detail"]
        .as_str()
        .is_some_and(|d| d.contains("KMS client key ending in 6VM33")));
    let fw = check(&doc, "kms01", "firewall-rules");
    assert_eq!(fw["status"], "failed");
    assert_eq!(fw["code"], "0x800706BA");
    // the listening port is reachable even though the host is not configured yet
    assert_eq!(check(&doc, "kms01", "port-reachable")["status"], "ok");
    // no count check for a product that is not an activated KMS host
    assert!(doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .all(|c| c["check"] != "count-threshold"));
}

#[test]
fn clones_sharing_a_cmid_count_once_and_doctor_says_why() {
    let (_listener, open) = listening();
    let p = Project::new();
    p.write("kmsconf.toml", &host("kms01", open, true));
    p.ok(&["apply", "--auto-approve"], 0);
    let cmid = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
    let r = add_clients(&p, "lab/kms01.json", &["--count", "30", "--cmid", cmid]);
    snapshot_run("lab-clients-sharing-a-cmid", &p, &r);
    let doc = json(&p.ok(&["doctor", "--json"], 1));
    let count = check(&doc, "kms01", "count-threshold");
    assert_eq!(count["status"], "failed");
    assert_eq!(count["code"], "0xC004F038");
    let detail = count["detail"].as_str().expect("detail");
    assert!(
        detail.contains("30 requests were served, yet the count is 1"),
        "{detail}"
    );
    assert!(count["fix"].as_str().is_some_and(|f| f.contains("/rearm")));
    // the remedy uses /rearm, so the rearm count is checked
    let rearm = check(&doc, "kms01", "rearm-count");
    assert_eq!(rearm["status"], "ok");
    assert!(rearm["detail"]
        .as_str()
        .is_some_and(|d| d.contains("5 left")));
    // the status counters show the requests and the flat count
    let status = json(&p.ok(&["status", "--json"], 0));
    let w = &status["hosts"][0]["products"][0];
    assert_eq!(w["current_count"], 1);
    assert_eq!(w["requests"]["total"], 30);
}

#[test]
fn counts_keep_30_days_and_the_most_recent_50() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(""));
    p.ok(&["apply", "--auto-approve"], 0);
    add_clients(&p, "lab/kms01.json", &["--count", "40", "--ago", "31d"]);
    add_clients(&p, "lab/kms01.json", &["--count", "4", "--ago", "29d"]);
    let count = |p: &Project| {
        json(&p.ok(&["status", "--json"], 0))["hosts"][0]["products"][0]["current_count"].clone()
    };
    assert_eq!(count(&p), 4);
    // a day later by the host's clock, the 29-day-old requests are 30 days old: gone
    p.ok(&["lab", "clock", "lab/kms01.json", "+1d"], 0);
    assert_eq!(
        count(&p),
        0,
        "an activated KMS host with no client in 30 days counts 0"
    );
    p.ok(&["lab", "clock", "lab/kms01.json", "0"], 0);
    add_clients(&p, "lab/kms01.json", &["--count", "60"]);
    assert_eq!(count(&p), 50);
    let list = p.ok(&["lab", "clients", "list", "lab/kms01.json"], 0);
    assert!(list.stdout.starts_with("windows: count 50\n"), "{list:?}");
    p.ok(&["lab", "clients", "clear", "lab/kms01.json"], 0);
    assert_eq!(count(&p), 0);
}

#[test]
fn requests_for_a_product_the_host_does_not_serve_are_refused() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(""));
    let r = add_clients(&p, "lab/kms01.json", &["--count", "2"]);
    snapshot_run("lab-clients-refused", &p, &r);
    let bad = p.ok(
        &["lab", "clients", "add", "lab/kms01.json", "--cmid", "nope"],
        1,
    );
    snapshot_run("lab-clients-not-a-cmid", &p, &bad);
}

#[test]
fn status_shows_each_host_and_product_as_a_table_and_as_json() {
    let p = Project::new();
    let unreachable = "[hosts.kms03]\ntarget = \"lab:lab/kms03.json\"\n\n";
    let config = [
        host("kms01", 1688, true),
        host("kms02", 1689, false),
        unreachable.to_string(),
    ]
    .concat();
    p.write("kmsconf.toml", &config);
    p.ok(&["apply", "--auto-approve"], 0);
    add_clients(&p, "lab/kms01.json", &["--count", "26"]);
    add_clients(&p, "lab/kms02.json", &["--count", "6"]);
    p.ok(&["lab", "unreachable", "lab/kms03.json", "on"], 0);

    let r = p.ok(&["status", "--json"], 1);
    let doc = json(&r);
    let hosts = doc["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 3);
    let w = &hosts[0]["products"][0];
    assert_eq!(hosts[0]["name"], "kms01");
    assert_eq!(w["product"], "windows");
    assert_eq!(w["license_status"], "licensed");
    assert_eq!(w["partial_key"], "6789B");
    assert_eq!(w["current_count"], 26);
    assert_eq!(w["required_count"], 25);
    assert_eq!(hosts[1]["products"][0]["current_count"], 6);
    // an unreadable host's error is the structured failure plan and apply report
    assert_eq!(hosts[2]["error"]["kind"], "unreachable", "{doc:#}");
    assert_eq!(hosts[2]["error"]["code"], serde_json::Value::Null);
    assert!(hosts[2]["error"]["message"]
        .as_str()
        .is_some_and(|e| e.contains("unreachable")));

    let dir = as_run_shows(p.dir.path());
    let mut text = p.ok(&["status"], 1).stdout.replace(&dir, "PROJECT");
    for h in &hosts[..2] {
        let cmid = h["client_machine_id"].as_str().expect("cmid");
        text = text.replace(cmid, "CMID");
    }
    snapshot("status.txt", &text);
}

#[test]
fn a_saved_plan_is_not_stale_because_clients_asked_or_the_clock_moved() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(""));
    p.ok(&["apply", "--auto-approve"], 0);
    p.write(
        "kmsconf.toml",
        &single_host("\n[hosts.kms01.service]\nactivation_interval = 60\n"),
    );
    p.ok(&["plan", "--out", "plan.json"], 0);
    add_clients(&p, "lab/kms01.json", &["--count", "3"]);
    p.ok(&["lab", "clock", "lab/kms01.json", "+90m"], 0);
    p.ok(&["apply", "plan.json"], 0);
    // a managed setting changing behind kmsconf's back still makes it stale
    p.ok(&["plan", "--out", "plan2.json"], 0);
    p.write(
        "kmsconf.toml",
        &single_host("\n[hosts.kms01.service]\nactivation_interval = 90\n"),
    );
    p.ok(&["apply", "--auto-approve"], 0);
    let stale = p.ok(&["apply", "plan2.json"], 1);
    snapshot_run("apply-stale-plan-setting-changed", &p, &stale);
}

#[test]
fn explain_knows_microsofts_codes_in_every_spelling_and_admits_unknown_ones() {
    let p = Project::new();
    let first = p.ok(&["explain", "0xC004F074"], 0);
    snapshot_run("explain-0xC004F074", &p, &first);
    for spelling in ["c004f074", "3221549172", "-1073418124"] {
        let r = p.ok(&["explain", spelling], 0);
        assert_eq!(r.stdout, first.stdout, "{spelling}");
    }
    // a code of decimal digits only, written as Windows prints it but without 0x
    let denied = p.ok(&["explain", "80070005"], 0);
    snapshot_run("explain-80070005", &p, &denied);
    let dns = p.ok(&["explain", "0x8007251D", "--json"], 0);
    let doc = json(&dns);
    assert_eq!(doc["known"], true);
    assert!(doc["cause"].as_str().is_some_and(|c| c.contains("SRV")));

    let unknown = p.ok(&["explain", "0xC004F999"], 1);
    snapshot_run("explain-unknown-code", &p, &unknown);
    assert_eq!(
        json(&p.ok(&["explain", "0xC004F999", "--json"], 1))["known"],
        false
    );
    let junk = p.ok(&["explain", "not-a-code"], 1);
    snapshot_run("explain-not-a-code", &p, &junk);
}

const SCRIPT_CONFIG: &str = "[hosts.kms01]
target = \"lab:lab/kms01.json\"
address = \"kms01.corp.example\"

[hosts.kms01.service]
port = 1689

[hosts.kms01.products.windows]
host_key = { env = \"KMS_HOST_KEY\" }

[hosts.kms01.products.office-2019]
host_key = { env = \"KMS_HOST_KEY\" }
license_pack = \"packs/office-2019\"
";

#[test]
fn client_script_comes_from_the_config_and_microsofts_keys() {
    let p = Project::new();
    p.write("kmsconf.toml", SCRIPT_CONFIG);
    let args = [
        "client-script",
        "--host",
        "kms01",
        "--edition",
        "windows-enterprise",
        "--edition",
        "office-2019-professional-plus",
        "--edition",
        "visio-2019-professional",
    ];
    // the host's address and port, Microsoft's GVLKs for the editions (`/ipk`, `/inpkey:`)
    let cmd = p.ok(&args, 0).stdout;
    assert!(
        cmd.split_terminator('\n').all(|l| l.ends_with('\r')),
        "batch files use CRLF"
    );
    snapshot("client-script.cmd", &cmd.replace("\r\n", "\n"));
    let mut ps1 = args.to_vec();
    ps1.extend(["--format", "ps1"]);
    let ps1 = p.ok(&ps1, 0).stdout;
    snapshot("client-script.ps1", &ps1.replace("\r\n", "\n"));

    // no edition: point at the host and activate with the key already installed
    let plain = p.ok(&["client-script", "--host", "kms01"], 0).stdout;
    assert!(!plain.contains("/ipk"), "{plain}");
    snapshot("client-script-no-edition.cmd", &plain.replace("\r\n", "\n"));
}

#[test]
fn client_script_refuses_what_the_host_cannot_activate() {
    let p = Project::new();
    p.write("kmsconf.toml", SCRIPT_CONFIG);
    let err = |name: &str, args: &[&str]| {
        let mut all = vec!["client-script", "--host", "kms01"];
        all.extend_from_slice(args);
        let r = p.ok(&all, 1);
        snapshot_run(&format!("client-script-{name}"), &p, &r);
    };
    err("undeclared-product", &["--edition", "office-2021-standard"]);
    err(
        "two-windows-editions",
        &[
            "--edition",
            "windows-pro",
            "--edition",
            "windows-enterprise",
        ],
    );
    err("unknown-edition", &["--edition", "windows-98"]);
    let r = p.ok(&["client-script", "--host", "nope"], 1);
    snapshot_run("client-script-no-such-host", &p, &r);
    let list = p.ok(&["client-script", "--list-editions"], 0);
    snapshot_run("client-script-list-editions", &p, &list);
}

#[test]
fn client_script_points_at_the_host_name_when_there_is_no_address() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(""));
    let args = [
        "client-script",
        "--host",
        "kms01",
        "--edition",
        "windows-enterprise",
    ];
    let r = p.ok(&args, 0);
    snapshot(
        "client-script-no-address",
        &r.shown(&p).replace("\r\n", "\n"),
    );
}

#[test]
fn status_makes_one_round_trip_per_host_doctor_and_clients_two() {
    let (_listener, open) = listening();
    let p = Project::new();
    p.write("kmsconf.toml", &host("kms01", open, true));
    p.ok(&["apply", "--auto-approve"], 0);
    // a lab host counts kmsconf's round trips in its lock file
    let trips = |p: &Project| -> u64 {
        let text = p.read("lab/kms01.json.lock");
        text.trim().parse().expect("round trips")
    };
    let before = trips(&p);
    p.ok(&["status"], 0);
    assert_eq!(trips(&p), before + 1);
    // the count is below the threshold (no clients yet), so doctor may fail; it read the host
    // in one round trip and its event log in one more
    let doc = json(&p.run(&["doctor", "--json"]));
    assert_eq!(check(&doc, "kms01", "clock-skew")["status"], "ok", "{doc}");
    assert_eq!(
        check(&doc, "kms01", "kms-idle")["status"],
        "warning",
        "{doc}"
    );
    assert_eq!(trips(&p), before + 3);
    // clients: a discovery (which products the host serves) and the event log
    p.ok(&["clients"], 0);
    assert_eq!(trips(&p), before + 5);
}

/// The codes of issue 12: 0xC004F04D is an invalid (mistyped) ID, 0xC004F031 a CID of another
/// IID, 0xC004F069 and 0xC004F050 the key-install codes; 0xC004F074 and 0xC004F038 give
/// Microsoft's fixes (UTC clocks; sysprep /generalize or /rearm).
#[test]
fn explain_knows_the_phone_and_key_install_codes() {
    let p = Project::new();
    for code in [
        "0xC004F04D",
        "0xC004F031",
        "0xC004F069",
        "0xC004F050",
        "0xC004F038",
    ] {
        let r = p.ok(&["explain", code], 0);
        snapshot_run(&format!("explain-{code}"), &p, &r);
    }
    // 0xC004F074 (`explain-0xC004F074.snap`): the clock in UTC matters, not the time zone
    let unreachable = p.ok(&["explain", "0xC004F074"], 0).stdout;
    assert!(
        !unreachable.contains("clock and time zone"),
        "{unreachable}"
    );
}
