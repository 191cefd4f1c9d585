//! Issue 22: a host that lies. `ssh://` targets whose `ssh` is a stand-in that runs
//! `kmsconf lab agent` behind `hostile/tamper.py`, a man in the middle that rewrites the agent's
//! answers: a partial key of 70,000 characters, escape sequences in the computer name, an
//! installation ID that mentions someone, a clock that is no time, a count that is no number, a
//! session that dies quoting the key, a lock record that would be a command. Each run ends as a
//! person expects: exit 1 with a message that says what is wrong with what, no secret, no
//! control character, nothing changed.

use serde_json::Value;

use crate::common::*;

/// The host's `ssh`: whatever it is asked, it is the lab agent of `lab/kms01.json`, its answers
/// passed through the tamperer.
const FAKE_SSH: &str = r#"#!/bin/sh
dir="$(dirname "$0")"
exec python3 "$dir/tamper.py" "$dir/lab/kms01.json"
"#;

fn project() -> Project {
    let mut p = Project::new();
    p.write(
        "kmsconf.toml",
        "[hosts.kms01]\ntarget = \"ssh://admin@kms01.corp.example\"\n\n[hosts.kms01.products.windows]\nhost_key = { env = \"KMS_HOST_KEY\" }\n",
    );
    p.write("tamper.py", include_str!("hostile/tamper.py"));
    p.write("fake-ssh", FAKE_SSH);
    std::fs::create_dir_all(p.path("lab")).expect("mkdir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(p.path("fake-ssh"), mode).expect("chmod");
    }
    let ssh = p.path("fake-ssh").display().to_string();
    p.env("KMSCONF_SSH", &ssh)
        .env("KMSCONF_BIN", env!("CARGO_BIN_EXE_kmsconf"))
        .env("KMSCONF_TIMEOUT", "30")
        .env("KMSCONF_TAMPER_KEY", WINDOWS_KEY);
    p
}

/// A project whose host holds its KMS host key already (applied through an honest agent).
fn converged() -> Project {
    let p = project();
    p.ok(&["apply", "--auto-approve"], 0);
    p
}

/// What a person sees holds no secret and no control character but newlines.
fn clean(r: &Run) {
    let all = r.all();
    assert!(!all.contains(WINDOWS_KEY), "a secret was printed: {r:?}");
    let bad: Vec<char> = all
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(
        bad.is_empty(),
        "control characters {bad:?} reached the terminal: {r:?}"
    );
    assert!(!all.contains("panicked"), "{r:?}");
}

fn tampered(p: &mut Project, mode: &str, args: &[&str], code: i32) -> Run {
    p.env("KMSCONF_TAMPER", mode);
    let r = p.ok(args, code);
    p.unset("KMSCONF_TAMPER");
    clean(&r);
    r
}

#[test]
fn a_partial_key_of_70000_characters_is_refused_naming_it_not_a_panic() {
    let mut p = converged();
    let r = tampered(&mut p, "long-partial-key", &["status"], 1);
    assert!(
        r.stdout.contains("cannot read:")
            && r.stdout.contains("`PartialProductKey` = `AAAA")
            && r.stdout
                .contains("(70000 characters) is not the last five characters of a product key"),
        "{r:?}"
    );
    assert!(r.stdout.len() < 2000, "the value is cut: {r:?}");
    let json = tampered(&mut p, "long-partial-key", &["status", "--json"], 1);
    let doc: Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    assert_eq!(doc["hosts"][0]["error"]["kind"], "remote", "{doc:#}");
}

#[test]
fn escape_sequences_in_what_the_host_says_of_itself_are_shown_not_run() {
    let mut p = converged();
    let r = tampered(&mut p, "names", &["status"], 0);
    assert!(
        r.stdout
            .contains("KMS\\u{1b}]0;owned\\u{7}\\u{d}\\u{a}0 changes"),
        "{r:?}"
    );
    assert!(
        !r.stdout.contains("\n0 changes"),
        "no line of the host's own: {r:?}"
    );
    // JSON output stays exact: the escapes are JSON's own
    p.env("KMSCONF_TAMPER", "names");
    let json = p.ok(&["status", "--json"], 0);
    p.unset("KMSCONF_TAMPER");
    let doc: Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    assert_eq!(
        doc["hosts"][0]["computer_name"],
        "KMS\u{1b}]0;owned\u{7}\r\n0 changes\u{1b}[2J"
    );
}

#[test]
fn values_the_protocol_defines_are_checked_where_they_are_read() {
    let mut p = converged();
    let before = p.read("lab/kms01.json");
    for (mode, expected) in [
        ("iid", "`OfflineInstallationId` = `@octocat `x` http://evil.example` is not an installation ID of 63 digits"),
        ("clock", "the host's clock `Clock.Utc` = `yesterday` is not an RFC 3339 time"),
        ("count", "entry 1, property `KeyManagementServiceCurrentCount` = `many`: invalid type"),
    ] {
        let r = tampered(&mut p, mode, &["plan", "--format", "markdown"], 1);
        assert!(r.stdout.contains(expected), "{mode}: {r:?}");
        // the host's text is in a fenced block, where GitHub links and mentions nothing
        assert!(r.stdout.contains("```text\n"), "{mode}: {r:?}");
        let applied = tampered(&mut p, mode, &["apply", "--auto-approve"], 1);
        assert!(applied.all().contains(expected), "{mode}: {applied:?}");
    }
    assert_eq!(p.read("lab/kms01.json"), before, "nothing changed");
}

#[test]
fn a_session_that_dies_quoting_the_key_prints_neither_key_nor_escapes() {
    let mut p = project();
    let r = tampered(&mut p, "die-quoting-key", &["apply", "--auto-approve"], 1);
    assert!(r.all().contains("cannot install <redacted>"), "{r:?}");
    let json = tampered(
        &mut p,
        "die-quoting-key",
        &["apply", "--auto-approve", "--json"],
        1,
    );
    serde_json::from_str::<Value>(&json.stdout).expect("one JSON document");
}

/// Item 8: a key the host quotes is redacted wherever and whenever it is shown, not only in the
/// answer to the request that carried it: stderr that quoted the key in batch 1 of a session that
/// dies in batch 2 (which sends no key), and the WARN line of a session that dies at unlock.
#[test]
fn a_key_quoted_in_one_batch_is_redacted_when_the_session_dies_in_another_or_at_unlock() {
    let mut p = project();
    let r = tampered(&mut p, "quote-then-die", &["apply", "--auto-approve"], 1);
    assert!(
        r.stdout.contains("applied  products.windows.host_key")
            && r.stdout.contains("failed   products.windows.activation")
            && r.stdout
                .contains("installed <redacted>; ERROR: the session is lost"),
        "{r:?}"
    );
    let mut p = project();
    let json = tampered(
        &mut p,
        "quote-then-die",
        &["apply", "--auto-approve", "--json"],
        1,
    );
    serde_json::from_str::<Value>(&json.stdout).expect("one JSON document");
    let mut p = project();
    let r = tampered(&mut p, "die-at-unlock", &["apply", "--auto-approve"], 0);
    assert!(
        r.stderr.contains("could not release the apply lock")
            && r.stderr
                .contains("installed <redacted>; ERROR: the session is lost"),
        "{r:?}"
    );
}

/// Item 8: the failure of one operation (a license pack, which carries no key) quoting the key
/// of another operation of the same batch.
#[test]
fn a_failure_that_quotes_another_operations_key_is_redacted() {
    let mut p = project();
    p.write(
        "kmsconf.toml",
        &format!(
            "{}\n[hosts.kms01.products.office-2019]\nhost_key = {{ env = \"OFFICE_KEY\" }}\nlicense_pack = \"packs/office-2019\"\n",
            p.read("kmsconf.toml")
        ),
    );
    std::fs::create_dir_all(p.path("packs/office-2019")).expect("mkdir");
    p.env("OFFICE_KEY", OFFICE_KEY);
    let r = tampered(&mut p, "quote-other-key", &["apply", "--auto-approve"], 1);
    assert!(
        r.stdout.contains(
            "failed   products.office-2019.license_pack: 0xC004F050 cannot install <redacted>:"
        ),
        "{r:?}"
    );
    std::fs::remove_file(p.path("lab/kms01.json")).expect("a new host");
    let json = tampered(
        &mut p,
        "quote-other-key",
        &["apply", "--auto-approve", "--json"],
        1,
    );
    assert!(!json.stdout.contains(WINDOWS_KEY), "{json:?}");
    let doc: Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    // a failed change is a failure object like any other: `{kind, code, message}`
    let failed = &doc["hosts"][0]["changes"][0];
    assert_eq!(failed["status"], "failed", "{doc:#}");
    assert_eq!(failed["kind"], "refused", "{doc:#}");
    assert_eq!(failed["code"], 0xC004_F050_u32, "{doc:#}");
    assert!(
        doc["hosts"][0]["changes"][1].get("kind").is_none(),
        "{doc:#}"
    );
}

/// Item 8: a secret too short to redact wherever it might be quoted is refused where it is
/// declared: an error for one written in the config, a warning for a variable's (whose value
/// may differ when `apply` runs), and the run that needs it fails naming the declaration.
#[test]
fn a_secret_too_short_to_redact_is_refused_at_its_place() {
    let mut p = Project::new();
    p.write(
        "kmsconf.toml",
        "[dns]\nserver = \"127.0.0.1:53\"\nzones = [\"corp.example\"]\ntsig = { name = \"k\", secret = \"YWJj\" }\n\n[hosts.kms01]\ntarget = \"winrm://admin@127.0.0.1:1\"\n\n[hosts.kms01.winrm]\npassword = { env = \"WINRM_PASSWORD\" }\n",
    );
    p.env("WINRM_PASSWORD", "pw123").env("KMSCONF_TIMEOUT", "5");
    let r = p.ok(&["validate"], 1);
    let why =
        "is too short: it is 4 characters long; kmsconf takes secrets of at least 6 characters";
    assert!(
        r.all().contains(&format!(
            "kmsconf.toml:4:31: the TSIG secret of key `k` (a literal in the config) {why}"
        )),
        "{r:?}"
    );
    assert!(
        r.all().contains("kmsconf.toml:10:12: warning: the WinRM password (env `WINRM_PASSWORD`) is too short: it is 5 characters long"),
        "{r:?}"
    );
    p.write(
        "kmsconf.toml",
        "[hosts.kms01]\ntarget = \"winrm://admin@127.0.0.1:1\"\n\n[hosts.kms01.winrm]\npassword = { env = \"WINRM_PASSWORD\" }\n",
    );
    let r = p.ok(&["status"], 1);
    assert!(
        r.all().contains("secret `hosts.kms01.winrm.password` (declared at kmsconf.toml:5:12): it is 5 characters long"),
        "{r:?}"
    );
    assert!(!r.all().contains("pw123"), "{r:?}");
}

#[test]
fn a_lock_record_that_is_a_command_is_shown_as_invalid_and_a_lock_fails_apply_json() {
    let mut p = converged();
    let before = p.read("lab/kms01.json");
    let r = tampered(&mut p, "locked-hostile", &["apply", "--auto-approve"], 1);
    assert!(r.all().contains("holds no kmsconf lock record"), "{r:?}");
    assert!(!r.all().contains("curl"), "{r:?}");
    let json = tampered(&mut p, "locked", &["apply", "--auto-approve", "--json"], 1);
    let doc: Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    assert_eq!(doc["error"]["kind"], "locked", "{doc:#}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("kmsconf force-unlock kms01 0123456789abcdef")),
        "{doc:#}"
    );
    assert_eq!(p.read("lab/kms01.json"), before, "nothing changed");
}

/// Items 13 and 17: a saved plan edited to make two changes of one host wait for each other
/// (its digest recomputed) is refused on load, and so is a `format_version` out of range, each
/// saying what is wrong.
#[test]
fn an_edited_plan_with_a_cycle_between_changes_or_a_bad_version_is_refused() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(SETTINGS));
    p.ok(&["plan", "--out", "change.plan"], 0);
    let mut plan: Value = serde_json::from_str(&p.read("change.plan")).expect("plan");
    let changes = plan["hosts"][0]["changes"].as_array_mut().expect("changes");
    let (first, second) = (changes[0]["address"].clone(), changes[1]["address"].clone());
    changes[0]["depends_on"] = Value::from(vec![second]);
    changes[1]["depends_on"] = Value::from(vec![first]);
    let map = plan.as_object_mut().expect("object");
    map.remove("digest");
    let digest = canonical_digest(&plan);
    plan["digest"] = Value::from(digest);
    p.write("change.plan", &serde_json::to_string(&plan).expect("json"));
    for args in [&["show", "change.plan"][..], &["apply", "change.plan"]] {
        let r = p.ok(args, 1);
        assert!(
            r.stderr
                .contains("dependency cycle between changes of host `kms01`"),
            "{args:?}: {r:?}"
        );
    }
    assert!(!p.path("lab/kms01.json").exists() || !p.read("lab/kms01.json").contains("kms-host"));
    for version in ["-1", "18446744073709551616"] {
        p.write(
            "v.plan",
            &format!("{{\"kind\": \"kmsconf-plan\", \"format_version\": {version}}}"),
        );
        let r = p.ok(&["show", "v.plan"], 1);
        assert!(
            r.stderr.contains(&format!(
                "its `format_version` {version} is out of range (a version is a whole number from 0 to 4294967295); this kmsconf reads version "
            )),
            "{version}: {r:?}"
        );
        assert!(
            !r.stderr.contains("no `format_version`"),
            "{version}: {r:?}"
        );
    }
}

/// Item 17: a dotted key thousands of parts deep, which the TOML reader refuses without saying
/// where, is reported at its own line and column.
#[test]
fn a_dotted_key_thousands_deep_is_reported_at_its_line() {
    let p = Project::new();
    let deep = vec!["a"; 5000].join(".");
    p.write(
        "kmsconf.toml",
        &format!("[hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\n\n  {deep} = 1\n"),
    );
    let r = p.ok(&["validate"], 1);
    assert!(
        r.stderr.contains("kmsconf.toml:4:3: this dotted key has 5000 parts, more than the TOML reader takes (its recursion limit)"),
        "{r:?}"
    );
    assert!(
        r.stderr.len() < 2000,
        "the excerpt is cut: {}",
        r.stderr.len()
    );
}

/// The plan digest as kmsconf computes it: SHA-256 of the JSON with sorted keys and no spaces.
fn canonical_digest(content: &Value) -> String {
    fn canonical(v: &Value, out: &mut String) {
        match v {
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical(item, out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    canonical(&map[k], out);
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    canonical(content, &mut text);
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .expect("sha256sum");
    let hex = String::from_utf8_lossy(&out.stdout);
    format!(
        "sha256:{}",
        hex.split_whitespace().next().unwrap_or_default()
    )
}

/// Answers no honest agent sends: a discovery answer nested 200,000 arrays deep (a parser
/// that recursed would overflow its stack), one that is not UTF-8, and a computer name with a
/// NUL after a line of noise that is not UTF-8. Each is refused at once or shown escaped, never
/// a crash, and nothing on the host changes. (An answer that was not UTF-8 used to be set
/// aside while the round waited: "no answer within 600 s" after ten minutes.)
#[test]
fn nested_binary_and_nul_answers_are_refused_or_escaped() {
    let mut p = converged();
    let before = p.read("lab/kms01.json");
    // KMSCONF_TIMEOUT is 30 s: each refusal must come at once, not when the round times out
    let started = std::time::Instant::now();
    let r = tampered(&mut p, "nested", &["plan"], 1);
    assert!(
        r.all()
            .contains("answer `discovery` is not the JSON kmsconf reads: recursion limit"),
        "{r:?}"
    );
    let r = tampered(&mut p, "binary", &["plan"], 1);
    assert!(
        r.all()
            .contains("the host sent no discovery answer: answer `discovery` is not UTF-8"),
        "{r:?}"
    );
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    let r = tampered(&mut p, "nul", &["status"], 0);
    assert!(r.stdout.contains("KMS\\u{0}\u{fffd}01"), "{r:?}");
    for mode in ["nested", "binary"] {
        let applied = tampered(&mut p, mode, &["apply", "--auto-approve"], 1);
        assert!(
            applied.stdout.contains("Apply: 0 applied"),
            "{mode}: {applied:?}"
        );
    }
    assert_eq!(p.read("lab/kms01.json"), before, "nothing changed");
}
