//! Fleet hardening: apply locks, a killed apply, latency and parallelism.

use std::time::{Duration, Instant};

use crate::common::*;

fn lock_record(p: &Project) -> String {
    p.read("lab/kms01.json.apply.holder")
}

#[test]
fn a_second_apply_fails_fast_naming_the_holder() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(SETTINGS));
    p.ok(&["lab", "latency", "lab/kms01.json", HOLDING_LATENCY_MS], 0);
    let mut first = p.spawn(&["apply", "--auto-approve"]);
    p.wait_for("the first apply to take its lock", |p| {
        lock_record(p).contains("\"pid\"")
    });
    let started = Instant::now();
    let second = p.ok(&["apply", "--auto-approve"], 1);
    assert!(started.elapsed().as_secs() < 5, "fails fast, does not wait");
    let pid = first.id().to_string();
    assert!(
        second.stderr.contains(&format!("by pid {pid} on ")),
        "the holder's pid: {second:?}"
    );
    snapshot_run("apply-locked", &p, &second);
    assert!(first.wait().expect("first").success());
    assert_eq!(lock_record(&p), "", "the record is cleared on release");
    p.ok(&["lab", "latency", "lab/kms01.json", "0"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn a_killed_apply_leaves_valid_state_and_a_rerun_converges() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(SETTINGS));
    p.ok(&["lab", "latency", "lab/kms01.json", "300"], 0);
    let installed = |p: &Project| p.read("lab/kms01.json").contains("kms-host");
    let mut apply = p.spawn(&["apply", "--auto-approve"]);
    // under Wine an apply started here once stalled before its first change for over 60 s
    // (one CI run in four on 2026-12-06, cause unknown, the run one at a time): there a stalled
    // start is ended and started once more, saying so; a second stall fails the test
    if cfg!(windows) {
        let start = Instant::now();
        while !installed(&p) && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !installed(&p) {
            apply.kill().expect("kill the stalled apply");
            let out = apply.wait_with_output().expect("reaped");
            eprintln!(
                "an apply under Wine stalled before installing the key (exit {:?}, stderr {:?}); starting it once more",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
            // a lock the stalled run took is released as a user would, by its ID
            if p.path("lab/kms01.json.apply.holder").exists() {
                let record: serde_json::Value =
                    serde_json::from_str(&lock_record(&p)).expect("the stalled run's record");
                let id = record["id"].as_str().expect("id").to_string();
                p.ok(&["force-unlock", "kms01", &id], 0);
            }
            apply = p.spawn(&["apply", "--auto-approve"]);
        }
    }
    // let it get past the first batches, then kill it without warning
    p.wait_for("the key to be installed", installed);
    apply.kill().expect("kill -9");
    apply.wait().expect("reaped");
    let show = p.ok(&["lab", "show", "lab/kms01.json"], 0);
    let state: serde_json::Value =
        serde_json::from_str(&show.stdout).expect("the state file is valid JSON");
    assert_eq!(state["format"], 1);
    let leftovers: Vec<String> = std::fs::read_dir(p.path("lab"))
        .expect("lab dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".kmsconf-"))
        .collect();
    assert!(
        leftovers.is_empty() || leftovers.len() == 1,
        "at most the one temp file being written: {leftovers:?}"
    );

    // the killed run's lock record stayed behind, but its OS lock died with it
    let record: serde_json::Value =
        serde_json::from_str(&lock_record(&p)).expect("the record of the killed run");
    let id = record["id"].as_str().expect("id").to_string();
    let r = p.ok(&["force-unlock", "kms02", &id], 1);
    snapshot_run("force-unlock-no-such-host", &p, &r);
    let r = p.ok(&["force-unlock", "kms01", "not-the-id"], 1);
    snapshot_run("force-unlock-wrong-id", &p, &r);
    let r = p.ok(&["force-unlock", "kms01", &id], 0);
    assert!(r.stdout.contains(&id), "{r:?}");
    snapshot_run("force-unlock", &p, &r);

    p.ok(&["lab", "latency", "lab/kms01.json", "0"], 0);
    p.ok(&["apply", "--auto-approve"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn latency_is_paid_in_parallel_across_hosts() {
    let p = Project::new();
    let mut config = String::new();
    for i in 0..8 {
        config.push_str(&format!("[hosts.h{i}]\ntarget = \"lab:lab/h{i}.json\"\n"));
    }
    p.write("kmsconf.toml", &config);
    p.ok(&["plan"], 0);
    // what a plan costs without latency (process start, which is slow under Wine) is not part
    // of what is compared
    let t = Instant::now();
    p.ok(&["plan", "--parallelism", "1"], 0);
    let base = t.elapsed();
    // 8 hosts x 300 ms: about 300 ms with 8 at a time, about 2.4 s one at a time; under Wine,
    // where each host's round trip costs more besides and a loaded machine makes `base` vary by
    // a second, 8 x 1 s
    let latency_ms: u128 = if cfg!(windows) { 1000 } else { 300 };
    for i in 0..8 {
        p.ok(
            &[
                "lab",
                "latency",
                &format!("lab/h{i}.json"),
                &latency_ms.to_string(),
            ],
            0,
        );
    }
    let t = Instant::now();
    p.ok(&["plan", "--parallelism", "8"], 0);
    let parallel = t.elapsed();
    let t = Instant::now();
    p.ok(&["plan", "--parallelism", "1"], 0);
    let serial = t.elapsed();
    assert!(serial.as_millis() >= 8 * latency_ms, "serial {serial:?}");
    assert!(
        parallel.saturating_sub(base) * 3 < serial.saturating_sub(base),
        "parallel {parallel:?} vs serial {serial:?}, {base:?} of each without latency"
    );
}
