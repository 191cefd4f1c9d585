//! Key coverage end to end: `[fleet] clients` against the KMS host keys of lab hosts. A lab key
//! is of the group of its host's own Windows unless the lab file's `host_key_groups` names
//! another; `status` shows what each key activates, and `doctor`'s `client-coverage` fails a
//! family no present, licensed key covers, naming the key it needs and the host update.

use crate::common::*;

const CONFIG: &str = "[fleet]
clients = [\"windows-11\", \"windows-server-2025\"]

[hosts.kms01]
target = \"lab:lab/kms01.json\"
address = \"127.0.0.1\"

[hosts.kms01.products.windows]
host_key = { env = \"KMS_HOST_KEY\" }
";

fn coverage(doc: &serde_json::Value, client: &str) -> serde_json::Value {
    doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check"] == "client-coverage" && c["subject"] == client)
        .cloned()
        .unwrap_or_else(|| panic!("no client-coverage for {client} in {doc:#}"))
}

fn doctor(p: &Project) -> serde_json::Value {
    let r = p.ok(&["doctor", "--json"], 1);
    serde_json::from_str(&r.stdout).expect("doctor --json")
}

#[test]
fn doctor_names_the_key_a_client_family_needs() {
    let p = Project::new();
    p.write("kmsconf.toml", CONFIG);
    p.ok(&["apply", "--auto-approve"], 0);
    // the lab host runs Windows Server 2022, so its key is of the 2022 group
    let doc = doctor(&p);
    let w11 = coverage(&doc, "windows-11");
    assert_eq!(w11["status"], "ok", "{w11:#}");
    assert_eq!(w11["host"], "fleet");
    let ws25 = coverage(&doc, "windows-server-2025");
    assert_eq!(ws25["status"], "failed", "{ws25:#}");
    assert_eq!(ws25["code"], "0xC004F042");
    assert_eq!(
        ws25["fix"],
        "install and activate a KMS host key of group `Volume License for Windows Server 2025` on host `kms01` (Windows Server 2022, with KB5034765 (February 13, 2024) or a later cumulative update)"
    );
    // the product table and what the key activates (the host's lines hold its random CMID)
    let status = p.ok(&["status"], 0).stdout;
    let products = status
        .split_once("  PRODUCT")
        .map(|(_, table)| format!("  PRODUCT{table}"))
        .expect("a product table");
    snapshot("coverage-status", &products);
    let status = p.ok(&["status", "--json"], 0);
    let doc: serde_json::Value = serde_json::from_str(&status.stdout).expect("status --json");
    let windows = &doc["hosts"][0]["products"][0];
    assert_eq!(
        windows["activates"]["group"], "windows-server-2022",
        "{windows:#}"
    );
    assert_eq!(
        windows["activates"]["read_from"],
        "Description `Windows(R) Operating System, VOLUME_KMS_WS22 channel`"
    );
}

#[test]
fn a_lab_key_can_be_given_another_group() {
    let p = Project::new();
    p.write("kmsconf.toml", CONFIG);
    // the first discovery makes the lab file; the key's group is set before it is installed
    p.ok(&["status"], 0);
    let mut lab: serde_json::Value =
        serde_json::from_str(&p.read("lab/kms01.json")).expect("lab file");
    lab["host_key_groups"] = serde_json::json!({ "6789B": "windows-server-2025" });
    p.write("lab/kms01.json", &lab.to_string());
    p.ok(&["apply", "--auto-approve"], 0);
    // (the host's own checks fail here: nothing listens on its port, no clients count)
    let doc = doctor(&p);
    let ws25 = coverage(&doc, "windows-server-2025");
    assert_eq!(ws25["status"], "ok", "{ws25:#}");
    // a 2022 host activates Windows Server 2025 only with the update Microsoft names
    assert!(
        ws25["detail"]
            .as_str()
            .is_some_and(|d| d.contains("that host needs KB5034765")),
        "{ws25:#}"
    );
    let text = p.ok(&["doctor"], 1).stdout;
    let fleet = text
        .split("host fleet\n")
        .nth(1)
        .expect("the fleet's block")
        .to_string();
    snapshot("coverage-doctor-fleet.txt", &fleet);
}
