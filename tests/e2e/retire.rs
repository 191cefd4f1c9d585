//! Retiring a KMS host: a two-host fleet published in a real BIND (the harness of
//! [`crate::dns`]) converges, then one host is declared `state = "retired"`. Its SRV records go,
//! its KMS host key gives way to its edition's KMS client key, its KMS rules close, the other
//! host is untouched, and a second plan has nothing left to do; a run that fails part-way
//! converges when run again.

#[cfg(unix)]
use serde_json::Value;

use crate::common::*;
#[cfg(unix)]
use crate::dns::{json, Bind, SECRET};

/// Two KMS hosts with host keys, firewall rules and SRV records; kms01 on a custom port, with a
/// publish list of its own.
#[cfg(unix)]
fn fleet(port: u16, kms01: &str) -> String {
    format!(
        r#"[dns]
server = "127.0.0.1:{port}"
zones = ["corp.example", "lab.example"]
tsig = {{ name = "kmsconf-key", secret = {{ env = "KMSCONF_TSIG_SECRET" }} }}

{kms01}
[hosts.kms02]
target = "lab:lab/kms02.json"
address = "kms02.corp.example"

[hosts.kms02.service]
dns_publishing = false

[hosts.kms02.firewall]
rule_groups = ["key-management-service", "file-and-printer-sharing"]

[hosts.kms02.products.windows]
host_key = {{ env = "KMS_HOST_KEY_2" }}

[hosts.kms02.dns]
priority = 10
"#
    )
}

#[cfg(unix)]
const KMS01: &str = r#"[hosts.kms01]
target = "lab:lab/kms01.json"
address = "kms01.corp.example"

[hosts.kms01.service]
port = 1689
dns_publishing = true
publish_domains = ["corp.example"]

[hosts.kms01.firewall]
rule_groups = ["key-management-service", "file-and-printer-sharing"]

[hosts.kms01.products.windows]
host_key = { env = "KMS_HOST_KEY" }

[hosts.kms01.dns]
"#;

#[cfg(unix)]
const RETIRED: &str = r#"[hosts.kms01]
target = "lab:lab/kms01.json"
address = "kms01.corp.example"
state = "retired"
"#;

#[cfg(unix)]
fn converged_fleet(bind: &Bind) -> Project {
    let mut p = Project::new();
    p.env("KMSCONF_TSIG_SECRET", SECRET)
        .env("KMS_HOST_KEY_2", WINDOWS_KEY_2);
    p.write("kmsconf.toml", &fleet(bind.port, KMS01));
    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        bind.srv("corp.example"),
        [
            "0 0 1689 kms01.corp.example.",
            "10 0 1688 kms02.corp.example."
        ]
    );
    p.write("kmsconf.toml", &fleet(bind.port, RETIRED));
    p
}

#[cfg(unix)]
fn lab_host(p: &Project, name: &str) -> Value {
    let file: Value = serde_json::from_str(&p.read(&format!("lab/{name}.json"))).expect("json");
    file["host"].clone()
}

/// The changes of one plan entry, as `address -> equivalent`.
#[cfg(unix)]
fn equivalents(plan: &Value, host: &str) -> Vec<(String, String)> {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["host"] == host)
        .map(|c| {
            let shown = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (shown(&c["address"]), shown(&c["equivalent"]))
        })
        .collect()
}

#[cfg(unix)] // needs BIND (`named`)
#[test]
fn a_retired_host_becomes_a_kms_client_and_leaves_dns_and_the_other_host_alone() {
    let bind = Bind::start();
    let p = converged_fleet(&bind);
    let kms02_before = lab_host(&p, "kms02");
    let key_id = lab_host(&p, "kms01")["products"]["windows"]["partial_key"].clone();
    assert_eq!(key_id, "6789B");

    let plan = json(&p.ok(&["plan", "--json"], 0));
    let kms01 = equivalents(&plan, "kms01");
    let addresses: Vec<&str> = kms01.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        addresses,
        [
            "service.dns_publishing",
            "service.port",
            "service.publish_domains",
            "products.windows.client_key",
            "firewall.key-management-service.SPPSVC-In-TCP",
            "firewall.key-management-service.SPPSVC-In-TCP-NoScope",
            "firewall.kms-port-rule",
            "service.restart",
        ],
        "{plan:#}"
    );
    let equivalent = |address: &str| {
        kms01
            .iter()
            .find(|(a, _)| a == address)
            .map(|(_, e)| e.clone())
            .unwrap_or_default()
    };
    assert_eq!(equivalent("service.dns_publishing"), "slmgr.vbs /cdns");
    assert_eq!(
        equivalent("service.port"),
        "SoftwareLicensingService.ClearKeyManagementServiceListeningPort()"
    );
    assert!(
        equivalent("service.publish_domains").starts_with("reg delete "),
        "{plan:#}"
    );
    // one /ipk replaces the KMS host key ("If a key is already installed, it is silently
    // replaced"): no /upk of Windows' key, so no step leaves it without one
    assert_eq!(
        equivalent("products.windows.client_key"),
        "slmgr.vbs /ipk WX4NM-KYWYW-QJJR4-XV3QB-6VM33"
    );
    for rule in ["SPPSVC-In-TCP", "SPPSVC-In-TCP-NoScope"] {
        assert_eq!(
            equivalent(&format!("firewall.key-management-service.{rule}")),
            format!("Set-NetFirewallRule -Name {rule} -Enabled False"),
            "both KMS rules close, one by one"
        );
    }
    assert_eq!(
        equivalent("firewall.kms-port-rule"),
        "netsh advfirewall firewall delete rule name=\"kmsconf-KMS-Port-In-TCP\""
    );
    assert_eq!(
        equivalents(&plan, "dns"),
        [
            (
                "corp.example/_vlmcs._tcp/kms01.corp.example".to_string(),
                "nsupdate: update delete _vlmcs._tcp.corp.example. SRV 0 0 1689 kms01.corp.example."
                    .to_string()
            ),
            (
                "lab.example/_vlmcs._tcp/kms01.corp.example".to_string(),
                "nsupdate: update delete _vlmcs._tcp.lab.example. SRV 0 0 1689 kms01.corp.example."
                    .to_string()
            ),
        ],
        "the records go although the RRset is not exclusive"
    );
    assert!(equivalents(&plan, "kms02").is_empty(), "{plan:#}");
    let human = p
        .ok(&["plan"], 0)
        .stdout
        .replace(&bind.port.to_string(), "PORT");
    snapshot("retire-plan.txt", &human);
    let dns_at = human.find("host dns").expect("dns entry");
    let kms01_at = human.find("host kms01").expect("kms01 entry");
    assert!(dns_at < kms01_at, "the records go first:\n{human}");

    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(bind.srv("corp.example"), ["10 0 1688 kms02.corp.example."]);
    assert_eq!(bind.srv("lab.example"), ["10 0 1688 kms02.corp.example."]);
    let host = lab_host(&p, "kms01");
    let windows = &host["products"]["windows"];
    assert_eq!(
        (&windows["partial_key"], &windows["channel"]),
        (&Value::from("6VM33"), &Value::from("kms-client")),
        "{host:#}"
    );
    let groups = &host["firewall"]["groups"];
    assert_eq!(groups["key-management-service"]["enabled"], false);
    for rule in ["SPPSVC-In-TCP", "SPPSVC-In-TCP-NoScope"] {
        assert_eq!(
            groups["key-management-service"]["rules"][rule]["enabled"], false,
            "{host:#}"
        );
    }
    assert_eq!(
        groups["file-and-printer-sharing"]["enabled"], true,
        "File and Printer Sharing is left as it is"
    );
    assert_eq!(host["firewall"]["port_rule"], Value::Null);
    assert_eq!(host["service"]["port"], 0);
    assert_eq!(host["service"]["dns_publishing"], false);
    assert_eq!(host["service"]["restart_pending"], false);
    assert_eq!(lab_host(&p, "kms02"), kms02_before, "kms02 is untouched");

    let again = p.ok(&["plan", "--detailed-exitcode"], 0);
    snapshot_run("retire-replan", &p, &again);

    let status = p.ok(&["status", "--host", "kms01"], 0).stdout;
    // the lab derives the client machine ID from the host's random ID
    let shown: Vec<String> = status
        .lines()
        .map(|l| match l.split_once("client machine ID ") {
            Some((head, rest)) => format!(
                "{head}client machine ID CMID{}",
                rest.find(',').map_or("", |i| &rest[i..])
            ),
            None => l.to_string(),
        })
        .collect();
    // retired: a KMS client, Windows holds a KMS client key
    snapshot("retire-status.txt", &shown.join("\n"));
    let doctor = p.ok(&["doctor", "--json", "--host", "kms01", "--host", "dns"], 0);
    let checks = json(&doctor)["checks"].clone();
    let verdict = |check: &str| -> Vec<String> {
        checks
            .as_array()
            .expect("checks")
            .iter()
            .filter(|c| c["host"] == "kms01" && c["check"] == check)
            .map(|c| c["status"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(verdict("no-host-key"), ["ok"], "{doctor:?}");
    assert_eq!(verdict("dns-unpublished"), ["ok", "ok"], "{doctor:?}");
    assert_eq!(verdict("port-closed").len(), 1, "{doctor:?}");
}

#[cfg(unix)] // needs BIND (`named`)
#[test]
fn a_retirement_that_fails_part_way_converges_when_run_again() {
    let bind = Bind::start();
    let p = converged_fleet(&bind);
    p.ok(
        &[
            "lab",
            "fault",
            "lab/kms01.json",
            "--op",
            "install-key",
            "--hresult",
            "0xC004F050",
            "--times",
            "1",
        ],
        0,
    );
    let failed = p.ok(&["apply", "--auto-approve"], 1);
    snapshot("retire-failed-part-way", &failed.shown(&p));
    let host = lab_host(&p, "kms01");
    assert_eq!(
        host["products"]["windows"]["channel"],
        "kms-host",
        "the client key replaces the KMS host key in one step, so a failed install leaves the host key, never no key: {host:#}"
    );
    assert_eq!(
        host["firewall"]["groups"]["key-management-service"]["enabled"],
        true
    );

    let plan = json(&p.ok(&["plan", "--json"], 0));
    let addresses: Vec<String> = equivalents(&plan, "kms01")
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(
        addresses,
        [
            "products.windows.client_key",
            "firewall.key-management-service.SPPSVC-In-TCP",
            "firewall.key-management-service.SPPSVC-In-TCP-NoScope",
            "firewall.kms-port-rule",
            "service.restart"
        ],
        "{plan:#}"
    );
    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        lab_host(&p, "kms01")["products"]["windows"]["channel"],
        "kms-client"
    );
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn a_retired_host_declares_nothing_but_where_it_is() {
    let p = Project::new();
    p.write(
        "kmsconf.toml",
        "[hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\nstate = \"retired\"\n\n[hosts.kms01.service]\nport = 1689\n\n[hosts.kms01.products.windows]\nhost_key = { env = \"KMS_HOST_KEY\" }\n\n[hosts.kms02]\ntarget = \"lab:lab/kms02.json\"\ndepends_on = [\"kms01\"]\n",
    );
    let r = p.ok(&["validate"], 1);
    snapshot_run("retire-declares-more-than-where-it-is", &p, &r);
}

/// Issue 22, item 12: a retirement waits for its DNS removal when the DNS server does not
/// answer at plan time too: the host is not retired (its key, port and rules stay) while its
/// SRV records would still send clients to it.
#[cfg(unix)] // needs BIND (`named`)
#[test]
fn a_retirement_waits_when_dns_is_unreachable_at_plan_time() {
    let bind = Bind::start();
    let p = converged_fleet(&bind);
    let before = lab_host(&p, "kms01");
    let closed = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind")
        .port();
    p.write("kmsconf.toml", &fleet(closed, RETIRED));
    let waits = "its retirement waits for the DNS entry `dns` to remove its SRV records, and `dns` could not be planned";
    let plan = p.ok(&["plan"], 1);
    assert!(plan.stdout.contains("host kms01: cannot plan:"), "{plan:?}");
    assert!(plan.stdout.contains(waits), "{plan:?}");
    let applied = p.ok(&["apply", "--auto-approve", "--json"], 1);
    let doc = json(&applied);
    assert_eq!(doc["summary"]["applied"], 0, "{doc:#}");
    assert!(applied.stdout.contains(waits), "{applied:?}");
    assert_eq!(lab_host(&p, "kms01"), before, "kms01 is not retired");
    assert_eq!(bind.srv("corp.example").len(), 2, "the records stay");
}
