//! Recordings through the real binary: `KMSCONF_RECORD` writes the agent session of a host
//! reached over ssh (the real sshd of `targets/tests/support/sshd.rs`, whose `powershell.exe`
//! execs `kmsconf lab agent`), a `replay:` target answers from it with the same output, no
//! secret is ever in it, and a doctored recording is refused. `tests/recordings/` replays the
//! recordings kept as regression tests.

use std::path::Path;

use crate::common::*;
use crate::ssh::sshd::{user, Server};

/// The host's `powershell.exe`: the lab agent on one lab file.
const STAND_IN: &str = r#"#!/bin/sh
exec "$KMSCONF_BIN" lab agent "$(dirname "$0")/../lab/kms01.json"
"#;

/// A confirmation ID kmsconf must never write anywhere (48 digits; the lab refuses it).
const CANARY_CID: &str = "314159265358979323846264338327950288419716939937";
/// A plan HMAC key (`KMSCONF_PLAN_KEY`) set for every recorded run: it signs plan files and must
/// never reach a recording either.
const CANARY_PLAN_KEY: &str = "plan-key-canary-5f1d2e3c4b5a69788796a5b4c3d2e1f0";

fn server() -> Server {
    let s = Server::start_with_env(&[("KMSCONF_BIN", env!("CARGO_BIN_EXE_kmsconf"))]);
    s.powershell(STAND_IN);
    s
}

/// One host over ssh: a host key, phone activation, service settings (one needing the
/// restart) and the KMS firewall group; `address` so that doctor probes the same port whether
/// the host is reached or replayed.
fn config(target: &str) -> String {
    format!(
        "[hosts.kms01]\ntarget = \"{target}\"\naddress = \"127.0.0.1\"\n\n\
         [hosts.kms01.products.windows]\nhost_key = {{ env = \"KMS_HOST_KEY\" }}\n\
         activation = \"phone\"\nconfirmation_id = {{ env = \"KMS_CID\" }}\n\n\
         [hosts.kms01.service]\nport = 1689\nactivation_interval = 60\n\n\
         [hosts.kms01.firewall]\nrule_groups = [\"key-management-service\"]\nprofiles = [\"domain\", \"private\"]\n"
    )
}

fn project(s: &Server) -> Project {
    let mut p = Project::new();
    p.write(
        "kmsconf.toml",
        &config(&format!("ssh://{}@127.0.0.1:{}", user(), s.port)),
    );
    p.env(
        "KMSCONF_SSH",
        &format!("ssh -F {}", s.path("ssh_config").display()),
    );
    p.env("KMSCONF_TIMEOUT", "60");
    p
}

/// Runs `args` recording into `NAME/`, then the same against `replay:NAME/kms01.jsonl`, and
/// asserts both print the same and exit the same.
fn record_and_replay(p: &mut Project, name: &str, args: &[&str]) -> Run {
    p.env("KMSCONF_RECORD", &p.path(name).display().to_string());
    let recorded = p.run(args);
    p.unset("KMSCONF_RECORD");
    let real = p.read("kmsconf.toml");
    let replay = format!("replay:{name}/kms01.jsonl");
    p.write("kmsconf.toml", &config(&replay));
    let replayed = p.run(args);
    p.write("kmsconf.toml", &real);
    // the one difference: how the host is reached, which the output names
    let ssh = format!("ssh://{}@127.0.0.1:{}", user(), port(&real));
    assert_eq!(
        replayed.shown(p).replace(&replay, "[TARGET]"),
        recorded.shown(p).replace(&ssh, "[TARGET]"),
        "kmsconf {}: the replay prints what the recorded run printed",
        args.join(" ")
    );
    recorded
}

/// The ssh port of the config `text`.
fn port(text: &str) -> String {
    text.split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an ssh target")
        .to_string()
}

/// Every file of `dir` under the project, read as text.
fn recordings(p: &Project) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(p.dir.path()).expect("project") {
        let path = entry.expect("entry").path();
        let file = path.join("kms01.jsonl");
        if file.is_file() {
            all.push_str(&std::fs::read_to_string(file).expect("recording"));
        }
    }
    all
}

#[test]
fn recorded_runs_replay_with_the_same_output_and_never_hold_a_secret() {
    let s = server();
    let mut p = project(&s);
    p.env("KMSCONF_PLAN_KEY", CANARY_PLAN_KEY);
    let plan = record_and_replay(&mut p, "plan", &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan:?}");
    let applied = record_and_replay(&mut p, "apply", &["apply", "--auto-approve"]);
    assert!(
        applied
            .stdout
            .contains("installed key *****-*****-*****-*****-6789B"),
        "{applied:?}"
    );
    // the phone activation with a confirmation ID the lab refuses: the ID travels, and fails
    p.env("KMS_CID", CANARY_CID);
    let deposited = record_and_replay(&mut p, "phone", &["apply", "--auto-approve"]);
    assert!(deposited.stdout.contains("0xC004F"), "{deposited:?}");
    p.unset("KMS_CID");
    record_and_replay(&mut p, "status", &["status"]);
    record_and_replay(&mut p, "doctor", &["doctor"]);

    let all = recordings(&p);
    assert!(
        all.contains(r#"\"op\":\"install_product_key\""#),
        "the key's request is recorded"
    );
    assert!(
        all.contains(r#"{\"secret\":\"hosts.kms01.products.windows.host_key\"}"#),
        "the key is recorded as its config reference:\n{all}"
    );
    assert!(
        all.contains(r#"{\"secret\":\"hosts.kms01.products.windows.confirmation_id\"}"#),
        "the confirmation ID is recorded as its config reference"
    );
    for canary in [
        WINDOWS_KEY,
        "HJKMP-QRTVW",
        CANARY_CID,
        &CANARY_CID[..16],
        CANARY_PLAN_KEY,
        &CANARY_PLAN_KEY[16..40],
    ] {
        assert!(!all.contains(canary), "a secret was recorded: {canary}");
    }
    let header: serde_json::Value =
        serde_json::from_str(all.lines().next().expect("header")).expect("header JSON");
    assert_eq!(header["format"], "kmsconf-recording/1");
    assert_eq!(header["kmsconf"], env!("CARGO_PKG_VERSION"));
    assert!(
        header["transport"]
            .as_str()
            .is_some_and(|t| t.starts_with("ssh://")),
        "{header}"
    );
}

/// A project that replays `recording` as host kms01.
fn replaying(recording: &str) -> Project {
    let p = Project::new();
    p.write("kmsconf.toml", &config("replay:kms01.jsonl"));
    p.write("kms01.jsonl", recording);
    p
}

#[test]
fn a_doctored_recording_or_a_different_request_is_refused_by_name() {
    let s = server();
    let mut p = project(&s);
    record_and_replay(&mut p, "plan", &["plan"]);
    record_and_replay(&mut p, "apply", &["apply", "--auto-approve"]);
    let recording = p.read("plan/kms01.jsonl");
    let apply = p.read("apply/kms01.jsonl");
    let lines: Vec<&str> = recording.lines().collect();

    // an answer changed by hand: its digest no longer follows
    let answer = lines
        .iter()
        .position(|l| l.contains(r#""answer":"KMSCONF:"#))
        .expect("an answer line");
    let mut edited = lines.clone();
    let changed = lines[answer].replacen("KMSCONF:", "KMSCONF:x", 1);
    edited[answer] = &changed;
    let r = replaying(&(edited.join("\n") + "\n")).ok(&["plan"], 1);
    assert!(
        r.all().contains(&format!(
            "line {} was changed after it was recorded",
            answer + 1
        )),
        "{r:?}"
    );

    // a request changed by hand
    let request = lines
        .iter()
        .position(|l| l.contains(r#""request":"#))
        .expect("a request line");
    let mut edited = lines.clone();
    let changed = lines[request].replacen(r#"\"id\":0"#, r#"\"id\":7"#, 1);
    edited[request] = &changed;
    let r = replaying(&(edited.join("\n") + "\n")).ok(&["plan"], 1);
    assert!(
        r.all().contains(&format!(
            "line {} was changed after it was recorded",
            request + 1
        )),
        "{r:?}"
    );

    // cut short: a line cut in two, and a recording that stops before the answer
    let r = replaying(&recording[..recording.len() - 20]).ok(&["plan"], 1);
    assert!(r.all().contains("is not a recorded event"), "{r:?}");
    let r = replaying(&(lines[..=request].join("\n") + "\n")).ok(&["plan"], 1);
    assert!(
        r.all().contains(&format!(
            "the recording ends after line {}, where the run waited for an answer",
            request + 1
        )),
        "{r:?}"
    );

    // not a recording, or another format
    let r = replaying("{\"hosts\": []}\n").ok(&["plan"], 1);
    assert!(
        r.all()
            .contains("line 1 is not the header of a kmsconf recording"),
        "{r:?}"
    );
    let other = recording.replacen("kmsconf-recording/1", "kmsconf-recording/9", 1);
    let r = replaying(&other).ok(&["plan"], 1);
    assert!(r.all().contains("format `kmsconf-recording/9`"), "{r:?}");

    // the recordings replay as recorded; an apply asking something else stops
    // at the first request that differs, naming where
    replaying(&recording).ok(&["plan"], 0);
    let p = replaying(&apply);
    p.write(
        "kmsconf.toml",
        &config("replay:kms01.jsonl")
            .replace("activation_interval = 60", "activation_interval = 90"),
    );
    let r = p.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.all().contains("differs from the recorded one")
            && r.all()
                .contains("first at `method.value`: recorded `60`, asked `90`"),
        "{r:?}"
    );
    // the lock a replay never took is not sent to `force-unlock`
    assert!(
        r.stderr.contains("could not release the apply lock; a replay takes no lock on the host, so there is nothing to remove")
            && !r.stderr.contains("force-unlock"),
        "{r:?}"
    );
}

#[test]
fn a_replay_target_must_name_a_recording_that_is_there() {
    let p = Project::new();
    p.write("kmsconf.toml", &config("replay:missing.jsonl"));
    let r = p.ok(&["validate"], 1);
    snapshot_run("replay_target_missing", &p, &r);
    p.write("kmsconf.toml", &config("replay:"));
    let r = p.ok(&["validate"], 1);
    snapshot_run("replay_target_empty", &p, &r);
}

#[test]
fn the_recordings_kept_in_tests_recordings_plan_as_they_did() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/recordings");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/recordings") {
        let recording = entry.expect("entry").path();
        if recording.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        let config = recording.with_extension("toml");
        let name = |p: &Path| {
            p.file_name()
                .and_then(|n| n.to_str())
                .expect("name")
                .to_string()
        };
        let p = Project::new();
        p.write(
            "kmsconf.toml",
            &std::fs::read_to_string(&config).expect("its config"),
        );
        p.write(
            &name(&recording),
            &std::fs::read_to_string(&recording).expect("recording"),
        );
        let r = p.run(&["plan"]);
        snapshot_run_beside(&config, &p, &r);
        replayed += 1;
    }
    assert!(replayed > 0, "no recording in {}", dir.display());
}
