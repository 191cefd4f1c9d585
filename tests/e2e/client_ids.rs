//! Naming the products of a real KMS host's clients: a lab host whose clients ask with activation
//! IDs the lab does not derive (as a real host's would) shows them `unknown` and says once which
//! IDs to name; `[fleet.activation_ids]` then names them in every format of `kmsconf clients`.
//! Portable (no promtool, no chromium): it runs under Wine too. The IDs are made up.

use serde_json::Value;

use crate::common::*;

const ENTERPRISE: &str = "00000000-0000-4000-8000-000000000001";
const OFFICE: &str = "00000000-0000-4000-8000-000000000002";
const STRANGER: &str = "00000000-0000-4000-8000-000000000003";

/// A Windows KMS host, applied, whose clients ask with made-up activation IDs: 3 Windows
/// Enterprise clients, an Office 2024 client (the host has no Office key) and one more.
fn real_looking_fleet(config_extra: &str) -> Project {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(config_extra));
    p.ok(&["apply", "--auto-approve"], 0);
    let add = |extra: &[&str]| {
        let mut args = vec!["lab", "clients", "add", "lab/kms01.json"];
        args.extend_from_slice(extra);
        p.ok(&args, 0)
    };
    add(&[
        "--edition",
        "windows-enterprise",
        "--activation-id",
        ENTERPRISE,
        "--count",
        "3",
        "--ago",
        "3h",
    ]);
    let office = OFFICE.to_ascii_uppercase();
    add(&[
        "--product",
        "office-2024",
        "--activation-id",
        &office,
        "--fqdn",
        "desk1.corp.example",
        "--ago",
        "2h",
    ]);
    add(&[
        "--activation-id",
        &format!("{{{STRANGER}}}"),
        "--fqdn",
        "odd.corp.example",
        "--ago",
        "1h",
    ]);
    p
}

fn shown(text: &str) -> String {
    timeless_keeping(text, &[ENTERPRISE, OFFICE, STRANGER])
}

fn product<'a>(host: &'a Value, id: &str) -> &'a Value {
    host["products"]
        .as_array()
        .and_then(|l| l.iter().find(|p| p["product"] == id))
        .unwrap_or_else(|| panic!("no product `{id}` in {host:#}"))
}

fn client<'a>(host: &'a Value, fqdn: &str) -> &'a Value {
    host["clients"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["fqdn"] == fqdn))
        .unwrap_or_else(|| panic!("no client `{fqdn}` in {host:#}"))
}

#[test]
fn unnamed_ids_are_unknown_and_named_once_with_how_to_name_them() {
    let p = real_looking_fleet("");
    let human = p.ok(&["clients"], 0);
    snapshot("client_ids_unnamed.txt", &shown(&human.stdout));
    assert_eq!(human.stdout.matches("named nowhere").count(), 1);

    let doc = crate::schemas::valid("clients", &p.ok(&["clients", "--json"], 0));
    assert_eq!(
        doc["unnamed_activation_ids"],
        serde_json::json!([ENTERPRISE, OFFICE, STRANGER])
    );
    let h = &doc["hosts"][0];
    let labels: Vec<&str> = h["products"]
        .as_array()
        .map(|l| l.iter().filter_map(|p| p["product"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(labels, ["unknown"], "every ID collapses into one bucket");
    assert_eq!(
        h["uncovered"],
        serde_json::json!([]),
        "an unknown product is not uncovered"
    );
    assert_eq!(client(h, "desk1.corp.example")["product"], Value::Null);

    let metrics = p.ok(&["clients", "--format", "openmetrics"], 0);
    assert!(metrics
        .stdout
        .contains("kmsconf_kms_clients{host=\"kms01\",product=\"unknown\"}"));
    assert!(
        !metrics.stdout.contains("named nowhere"),
        "the notice is not a metric"
    );
    assert_eq!(
        metrics
            .stderr
            .matches("3 activation IDs are named nowhere")
            .count(),
        1
    );
}

#[test]
fn named_ids_name_the_product_split_the_counts_and_find_the_uncovered_client() {
    let table = format!("\n[fleet.activation_ids]\n\"{ENTERPRISE}\" = \"windows-enterprise\"\n\"{}\" = \"office-2024\"\n", OFFICE.to_ascii_uppercase());
    let p = real_looking_fleet(&table);
    p.ok(&["validate"], 0);
    let human = p.ok(&["clients"], 0);
    snapshot("client_ids_named.txt", &shown(&human.stdout));

    let doc = crate::schemas::valid("clients", &p.ok(&["clients", "--json"], 0));
    assert_eq!(doc["unnamed_activation_ids"], serde_json::json!([STRANGER]));
    let h = &doc["hosts"][0];
    let windows = product(h, "windows");
    assert_eq!(
        (
            windows["distinct_clients"].as_u64(),
            windows["threshold"].as_u64()
        ),
        (Some(3), Some(25))
    );
    let office = product(h, "office-2024");
    assert_eq!(
        (
            office["distinct_clients"].as_u64(),
            office["distinct_names"].as_u64()
        ),
        (Some(0), Some(1))
    );
    assert_eq!(product(h, "unknown")["distinct_names"], 1);
    let desk = client(h, "desk1.corp.example");
    assert_eq!(
        (desk["product"].as_str(), desk["uncovered"].as_bool()),
        (Some("office-2024"), Some(true))
    );
    assert_eq!(h["uncovered"][0]["product"], "office-2024");
    assert_eq!(
        h["uncovered"][0]["fqdns"],
        serde_json::json!(["desk1.corp.example"])
    );
    let odd = client(h, "odd.corp.example");
    assert_eq!(
        (odd["product"].clone(), odd["uncovered"].as_bool()),
        (Value::Null, Some(false))
    );
    let enterprise = h["clients"].as_array().map(|l| {
        l.iter()
            .filter(|c| c["edition"] == "windows-enterprise")
            .count()
    });
    assert_eq!(enterprise, Some(3));

    let metrics = p.ok(&["clients", "--format", "openmetrics"], 0).stdout;
    for line in [
        "kmsconf_kms_clients{host=\"kms01\",product=\"windows\"} 3",
        "kmsconf_kms_clients{host=\"kms01\",product=\"office-2024\"} 0",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
    let html = p.ok(&["clients", "--format", "html"], 0).stdout;
    assert_eq!(html.matches("<section class=\"unnamed\">").count(), 1);
    assert!(html.contains(STRANGER) && html.contains("class=\"uncovered\""));

    // all named: no notice anywhere
    let all = format!("{table}\"{STRANGER}\" = \"windows-pro\"\n");
    p.write("kmsconf.toml", &single_host(&all));
    let human = p.ok(&["clients"], 0).stdout;
    assert!(!human.contains("named nowhere"), "{human}");
    let doc = crate::schemas::valid("clients", &p.ok(&["clients", "--json"], 0));
    assert_eq!(doc["unnamed_activation_ids"], serde_json::json!([]));
    assert_eq!(
        client(&doc["hosts"][0], "odd.corp.example")["edition"],
        "windows-pro"
    );
}

#[test]
fn a_lab_client_takes_only_a_guid_for_its_activation_id() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(""));
    p.ok(&["apply", "--auto-approve"], 0);
    let r = p.run(&[
        "lab",
        "clients",
        "add",
        "lab/kms01.json",
        "--activation-id",
        "1234567890",
    ]);
    snapshot_run("client_ids_lab_not_guid", &p, &r);
    let doc: Value = serde_json::from_str(&p.ok(&["clients", "--json"], 0).stdout).expect("json");
    assert_eq!(doc["hosts"][0]["requests"], 0, "nothing was recorded");
}
