//! Bad input never hangs and is never read without bound: configs, plan files and lab files are
//! regular files under a cap, lab latency has a range and a timeout, and a bad environment
//! setting is an error naming the variable and what it accepts.

use crate::common::*;

/// Runs `args`, which must fail within a few seconds (a FIFO or a device must not be waited on).
fn fails_fast(p: &Project, args: &[&str]) -> Run {
    let start = std::time::Instant::now();
    let r = p.ok(args, 1);
    assert!(
        start.elapsed().as_secs() < 10,
        "{args:?} took too long: {r:?}"
    );
    r
}

#[cfg(unix)]
#[test]
fn a_fifo_or_a_device_as_config_plan_or_lab_file_is_refused_at_once() {
    let p = Project::new();
    p.fifo("fifo");
    for (file, kind) in [("fifo", "a FIFO"), ("/dev/zero", "a device")] {
        let expected = format!("it is not a regular file: it is {kind}");
        for args in [
            &["validate", "-c", file][..],
            &["show", file],
            &["apply", file],
            &["lab", "show", file],
        ] {
            let r = fails_fast(&p, args);
            assert!(r.stderr.contains(&expected), "{args:?}: {r:?}");
        }
    }
}

#[test]
fn a_config_over_the_cap_is_refused_naming_the_cap() {
    let p = Project::new();
    let file = std::fs::File::create(p.path("big.toml")).expect("create");
    file.set_len(17 << 20).expect("a sparse 17 MiB file");
    let r = fails_fast(&p, &["validate", "-c", "big.toml"]);
    assert!(
        r.stderr
            .contains("cannot read `big.toml`: it is over the 16 MiB limit of a config file"),
        "{r:?}"
    );
}

#[test]
fn invalid_utf8_in_the_config_has_its_position() {
    let p = Project::new();
    let mut bytes = b"[hosts.kms01]\ntarget = \"lab:a".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(b".json\"\n");
    std::fs::write(p.path("kmsconf.toml"), bytes).expect("write");
    let r = p.ok(&["validate"], 1);
    assert!(
        r.stderr.contains(
            "kmsconf.toml:2:16: the config is not valid UTF-8 text (TOML files are UTF-8)"
        ),
        "{r:?}"
    );
}

#[test]
fn lab_latency_is_bounded_and_cut_by_the_timeout() {
    let mut p = Project::new();
    p.write(
        "kmsconf.toml",
        "[hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\n",
    );
    let r = p.ok(
        &["lab", "latency", "lab/kms01.json", "18446744073709551615"],
        1,
    );
    assert!(
        r.stderr
            .contains("18446744073709551615 is not in 0..=600000"),
        "{r:?}"
    );
    assert!(!p.path("lab/kms01.json").exists(), "nothing was written");
    p.ok(&["lab", "latency", "lab/kms01.json", "30000"], 0);
    p.env("KMSCONF_TIMEOUT", "1");
    let start = std::time::Instant::now();
    let r = p.ok(&["plan"], 1);
    assert!(
        start.elapsed().as_secs() < 10,
        "the timeout cut the 30 s latency: {r:?}"
    );
    assert!(r.stdout.contains("host kms01: cannot plan:"), "{r:?}");
    assert!(r.stdout.contains("which takes 30000 ms"), "{r:?}");
}

#[test]
fn a_bad_environment_setting_names_the_variable_and_the_accepted_form() {
    let mut p = Project::example("two-hosts");
    for (var, value, expected) in [
        ("KMSCONF_TIMEOUT", "0", "`KMSCONF_TIMEOUT` = `0` is not allowed: give a whole number of seconds from 1 to 86400 (default 600)"),
        ("KMSCONF_TIMEOUT", "99999999999999999999999", "`KMSCONF_TIMEOUT` = `99999999999999999999999` is not allowed"),
        ("KMSCONF_LOG", "kmsconf=loud", "`KMSCONF_LOG` = `kmsconf=loud` is not a log filter"),
    ] {
        p.env(var, value);
        let r = p.ok(&["plan"], 1);
        assert!(r.stderr.contains(expected), "{var}={value}: {r:?}");
        p.unset(var);
    }
    let long = "9".repeat(5000);
    p.env("KMSCONF_TIMEOUT", &long);
    let r = p.ok(&["plan"], 1);
    assert!(
        r.stderr.contains("…` (5000 characters) is not allowed"),
        "{r:?}"
    );
    assert!(r.stderr.len() < 1000, "a long value is cut: {r:?}");
}

/// Issue 13, item 8: a lab target reached through a symlink is the file it names, and apply
/// leaves the link a link.
#[cfg(unix)]
#[test]
fn apply_through_a_symlinked_lab_file_keeps_the_link() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(""));
    std::fs::create_dir_all(p.path("lab")).expect("mkdir");
    std::os::unix::fs::symlink(p.path("real.json"), p.path("lab/kms01.json")).expect("ln");
    p.ok(&["apply", "--auto-approve"], 0);
    let meta = std::fs::symlink_metadata(p.path("lab/kms01.json")).expect("link");
    assert!(meta.file_type().is_symlink(), "the link was replaced");
    assert!(p.read("real.json").contains("\"channel\": \"kms-host\""));
}

/// Issue 13, item 8: two lab targets that reach one file through a symlink are one machine.
#[cfg(unix)]
#[test]
fn two_lab_targets_through_a_symlink_are_one_machine() {
    let p = Project::new();
    std::fs::create_dir_all(p.path("real")).expect("mkdir");
    std::os::unix::fs::symlink(p.path("real"), p.path("link")).expect("ln");
    p.write(
        "kmsconf.toml",
        "[hosts.a]\ntarget = \"lab:real/kms.json\"\n[hosts.b]\ntarget = \"lab:link/kms.json\"\n",
    );
    let r = p.ok(&["validate"], 1);
    assert!(
        r.stderr.contains("hosts `a` and `b` have the same target"),
        "{r:?}"
    );
}

/// Issue 13, item 7: a fault that answers success, or a clock offset past the range, is refused
/// saying why (an overflowing number was "not a duration").
#[test]
fn lab_fault_and_clock_refuse_values_out_of_range() {
    let p = Project::new();
    for (args, expected) in [
        (
            &[
                "lab",
                "fault",
                "k.json",
                "--op",
                "activate",
                "--hresult",
                "0",
            ][..],
            "`0` is not a failure: a fault answers an HRESULT from 0x80000000 to 0xFFFFFFFF",
        ),
        (
            &["lab", "clock", "k.json", "99999999999999999999999d"],
            "`99999999999999999999999d` is outside -36500d..=+36500d (100 years either way)",
        ),
        (
            &["lab", "clock", "k.json", "-36501d"],
            "`-36501d` is outside -36500d..=+36500d",
        ),
    ] {
        let r = p.ok(args, 1);
        assert!(r.stderr.contains(expected), "{args:?}: {r:?}");
    }
    assert!(!p.path("k.json").exists(), "nothing was written");
    p.ok(&["lab", "clock", "k.json", "-36500d"], 0);
}

/// A `replay:` recording is a file a user names like the others: a FIFO is refused at once, a
/// recording over 64 MiB (here a 3 GiB sparse one, a header and then a single line
/// of NUL bytes) is refused by its size before a byte of it is read, and one that is not UTF-8
/// says where. Before, the whole file was read into memory, and a FIFO waited for a writer.
#[cfg(unix)]
#[test]
fn a_replay_recording_is_bounded_like_every_file_kmsconf_reads() {
    let recorded = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/recordings");
    let header = std::fs::read_to_string(recorded.join("lab-plan.jsonl")).expect("recording");
    let header = header.lines().next().expect("header");
    let mut p = Project::new();
    p.env("KMS_HOST_KEY", WINDOWS_KEY);
    let config = |file: &str| {
        std::fs::read_to_string(recorded.join("lab-plan.toml"))
            .expect("config")
            .replace("replay:lab-plan.jsonl", &format!("replay:{file}"))
    };
    p.fifo("fifo.jsonl");
    p.write("kmsconf.toml", &config("fifo.jsonl"));
    let r = fails_fast(&p, &["plan"]);
    // the config's check refuses it first; the reader would too (a FIFO made after validation)
    assert!(r.stderr.contains("`fifo.jsonl` is not a file"), "{r:?}");

    let huge = p.path("huge.jsonl");
    std::fs::write(&huge, format!("{header}\n")).expect("header");
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&huge)
        .expect("open");
    file.set_len(3 << 30).expect("a sparse 3 GiB file");
    p.write("kmsconf.toml", &config("huge.jsonl"));
    let m = crate::hostile_session::measured(&p, &["plan"]);
    m.failed_within("is over the 64 MiB limit of a recording", 10, 100);

    let mut bytes = format!("{header}\n").into_bytes();
    bytes.extend_from_slice(b"{\"event\":\"open\",\"digest\":\"\xff\x00\"}\n");
    std::fs::write(p.path("binary.jsonl"), bytes).expect("write");
    p.write("kmsconf.toml", &config("binary.jsonl"));
    let r = fails_fast(&p, &["plan"]);
    assert!(r.all().contains("line 2, column 27 is not UTF-8"), "{r:?}");
    assert!(!r.all().contains('\0'), "{r:?}");
}
