//! Secrets never reach output, logs, traces, plan files or lab state files.

use crate::common::*;

#[test]
fn an_env_secret_is_absent_from_everything_at_trace_level() {
    let mut p = Project::example("os-and-office-phone");
    p.env("OFFICE_2019_KEY", OFFICE_KEY)
        .env("KMSCONF_LOG", "trace");
    let mut seen = String::new();
    for args in [
        &["validate"][..],
        &["plan", "--out", "plan.json"],
        &["plan", "--json"],
        &["apply", "plan.json"],
    ] {
        let r = p.run(args);
        assert!(r.code == 0, "{args:?}: {r:?}");
        seen.push_str(&r.all());
    }
    let iid = installation_id(&seen);
    let cid = p
        .ok(&["lab", "confirmation-id", &iid], 0)
        .stdout
        .trim()
        .to_string();
    p.env("OFFICE_2019_CID", &cid);
    for args in [
        &["plan", "--out", "plan2.json"][..],
        &["apply", "plan2.json"],
    ] {
        let r = p.run(args);
        assert!(r.code == 0, "{args:?}: {r:?}");
        seen.push_str(&r.all());
    }
    assert!(
        seen.contains("TRACE") || seen.contains("DEBUG"),
        "tracing was on"
    );
    // the trace shows the operations that carry the keys and the confirmation ID
    assert!(
        seen.contains("InstallProductKey") && seen.contains("ActivateByPhone"),
        "the batches were traced"
    );
    seen.push_str(&p.read("plan.json"));
    seen.push_str(&p.read("plan2.json"));
    seen.push_str(&p.read("lab/kms01.json"));
    for secret in [WINDOWS_KEY, OFFICE_KEY, &cid] {
        // the whole secret, and any part of it longer than the five characters Windows shows
        let bare: String = secret.chars().filter(|c| *c != '-').collect();
        assert!(!seen.contains(secret), "secret leaked");
        assert!(!seen.contains(&bare[..10]), "part of a secret leaked");
        assert!(!seen.contains(&secret[..11]), "part of a secret leaked");
    }
    assert!(
        seen.contains("*****-*****-*****-*****-6789B"),
        "the masked form is shown"
    );
}

#[test]
fn a_literal_secret_warns_and_cannot_go_into_a_plan_file() {
    let p = Project::new();
    let config = format!("[hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\n[hosts.kms01.products.windows]\nhost_key = \"{WINDOWS_KEY}\"\n");
    p.write("kmsconf.toml", &config);
    let v = p.ok(&["validate"], 0);
    snapshot_run("secrets-literal-validate", &p, &v);
    let r = p.ok(&["plan", "--out", "plan.json"], 1);
    snapshot_run("secrets-literal-plan-out", &p, &r);
    assert!(!p.path("plan.json").exists());
    assert!(!r.all().contains(WINDOWS_KEY) && !v.all().contains(WINDOWS_KEY));
}

/// Issue 13, item 6: a malformed secret fails its own host, as a missing one does; the other
/// hosts are planned and applied.
#[test]
fn a_malformed_secret_fails_only_its_host() {
    let mut p = Project::example("two-hosts");
    // kms02 depends on kms01, so break kms01's key: kms02 is then skipped, not failed
    p.env("KMS_HOST_KEY", "BCDFG-HJKMP-QRTVW-XY234-6789");
    p.env("KMS_HOST_KEY_2", WINDOWS_KEY_2);
    let r = p.ok(&["plan"], 1);
    snapshot_run("secrets-malformed-first-host", &p, &r);
    // the other way round, kms01 converges although kms02's key is malformed
    p.env("KMS_HOST_KEY", WINDOWS_KEY)
        .env("KMS_HOST_KEY_2", "not-a-key");
    let r = p.ok(&["apply", "--auto-approve"], 1);
    snapshot_run("secrets-malformed-second-host", &p, &r);
    assert!(
        p.read("lab/kms01.json")
            .contains("\"channel\": \"kms-host\""),
        "{r:?}"
    );
    assert!(!r.all().contains("not-a-key"), "{r:?}");
}

/// Issue 13, item 5: Windows PowerShell 5.1's `Set-Content -Encoding UTF8` starts the file with
/// a byte order mark; it and the line end are not part of the key.
#[test]
fn a_secret_file_with_a_byte_order_mark_is_read_without_it() {
    let p = Project::new();
    p.write("kmsconf.toml", "[hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\n[hosts.kms01.products.windows]\nhost_key = { file = \"key.txt\" }\n");
    p.write("key.txt", &format!("\u{feff}{WINDOWS_KEY}\r\n"));
    p.ok(&["validate"], 0);
    p.ok(&["apply", "--auto-approve"], 0);
    assert!(p
        .read("lab/kms01.json")
        .contains("\"partial_key\": \"6789B\""));
}

/// Issue 13, item 6: an empty confirmation-ID file means "not phoned yet", as an empty variable
/// or a missing file does.
#[test]
fn an_empty_confirmation_id_file_is_pending() {
    let p = Project::new();
    p.write("kmsconf.toml", "[hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\n[hosts.kms01.products.windows]\nhost_key = { env = \"KMS_HOST_KEY\" }\nactivation = \"phone\"\nconfirmation_id = { file = \"cid.txt\" }\n");
    p.ok(&["plan"], 0); // creates the lab host, which the first plan also says
    let missing = p.ok(&["plan"], 0);
    snapshot_run("secrets-confirmation-id-pending", &p, &missing);
    for text in ["", "\u{feff}\r\n"] {
        p.write("cid.txt", text);
        let r = p.ok(&["plan"], 0);
        assert_eq!(r.stdout, missing.stdout, "{text:?}");
    }
}

/// Issue 13, item 3: a secret that is a device or a FIFO is refused at once, never read.
#[cfg(unix)]
#[test]
fn a_device_or_fifo_secret_never_hangs() {
    let p = Project::new();
    p.fifo("fifo");
    for (file, kind) in [("/dev/zero", "device"), ("fifo", "fifo")] {
        p.write("kmsconf.toml", &format!("[hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\n[hosts.kms01.products.windows]\nhost_key = {{ file = \"{file}\" }}\n"));
        let start = std::time::Instant::now();
        let r = p.ok(&["plan"], 1);
        assert!(start.elapsed().as_secs() < 10, "{r:?}");
        snapshot_run(&format!("secrets-{kind}-file"), &p, &r);
    }
}

/// `kmsconf lab agent` on the lab file `lab`, sent the agent line and one `request`: all it
/// printed, and its answer to the request.
fn lab_agent_answer(lab: &std::path::Path, request: &str) -> (String, serde_json::Value) {
    use base64::Engine as _;
    use std::io::Write;
    let engine = base64::engine::general_purpose::STANDARD;
    let agent = engine.encode(kmsconf_targets::powershell::agent_script());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kmsconf"))
        .args(["lab", "agent"])
        .arg(lab)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("lab agent");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{agent}\n{request}\n").as_bytes())
        .expect("request");
    let out = child.wait_with_output().expect("lab agent");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let answer = stdout
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("KMSCONF:result:"))
        .and_then(|a| engine.decode(a).ok())
        .and_then(|a| serde_json::from_slice(&a).ok())
        .unwrap_or_else(|| panic!("no result: {stdout}"));
    (stdout, answer)
}

/// Phone activation of an activation object through the Windows path's stand-in, without a
/// directory: `kmsconf lab agent` answers `ad_activation_get_iid` with the installation ID
/// (never the key), its `ad_activation_apply_cid` refuses another installation ID's
/// confirmation ID with 0xC004F031 and takes the right one, and neither the key nor the
/// confirmation ID is in its output or its lab file.
#[test]
fn the_lab_agents_phone_activation_of_an_activation_object_keeps_its_secrets() {
    let p = Project::new();
    let lab = p.path("kms01.json");
    let get = format!(
        "{{\"id\":1,\"op\":\"ad_activation_get_iid\",\"key\":\"{WINDOWS_KEY}\",\"object_name\":\"WS CSVLK\"}}"
    );
    let (stdout, answer) = lab_agent_answer(&lab, &get);
    assert_eq!(answer["Ok"], true, "{answer}");
    assert!(!stdout.contains(WINDOWS_KEY), "{stdout}");
    let iid = answer["Answer"]["InstallationId"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_string();
    let cid = p
        .ok(&["lab", "confirmation-id", &iid], 0)
        .stdout
        .trim()
        .replace('-', "");
    let apply = |cid: &str| {
        format!("{{\"id\":1,\"op\":\"ad_activation_apply_cid\",\"key\":\"{WINDOWS_KEY}\",\"confirmation_id\":\"{cid}\",\"object_name\":\"WS CSVLK\"}}")
    };
    let (_, refused) = lab_agent_answer(&lab, &apply(&"123450".repeat(8)));
    assert_eq!(refused["Ok"], false, "{refused}");
    assert_eq!(refused["HResult"], "0xC004F031", "{refused}");
    let (stdout, answer) = lab_agent_answer(&lab, &apply(&cid));
    assert_eq!(answer["Ok"], true, "{answer}");
    assert!(
        !stdout.contains(WINDOWS_KEY) && !stdout.contains(&cid),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&lab).expect("lab file");
    assert!(
        !text.contains(WINDOWS_KEY) && !text.contains(&cid),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&text).expect("lab file");
    assert_eq!(
        json["ad_activations"][0]["installation_id"],
        iid.as_str(),
        "{text}"
    );
}
