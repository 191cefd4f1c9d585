//! `target = "local"` on Windows: kmsconf starts the `powershell.exe` it finds on its PATH and
//! runs the agent session through its pipes. Under Wine that program is Wine's stub, which runs
//! nothing: the plan must say no discovery answer came. With a stand-in `powershell.exe` first on
//! the PATH (`scripts/windows/powershell-standin.c`, which runs `kmsconf lab agent FILE` on the
//! same pipes), `local` is driven end to end: process start, pipes, the agent session, the apply
//! lock. Windows only: elsewhere `local` is refused by validation (`validate.rs`).

use std::path::PathBuf;

use crate::common::*;

/// The built stand-in (`KMSCONF_TEST_STANDIN_POWERSHELL`, which `scripts/windows-check.sh`
/// builds with MinGW-w64 and sets).
fn stand_in() -> PathBuf {
    let Some(path) = std::env::var_os("KMSCONF_TEST_STANDIN_POWERSHELL") else {
        panic!("KMSCONF_TEST_STANDIN_POWERSHELL is not set: it names the stand-in powershell.exe built from scripts/windows/powershell-standin.c; run the tests with `bash scripts/windows-check.sh`, which builds it")
    };
    let path = std::path::absolute(PathBuf::from(path)).expect("absolute path");
    assert!(path.is_file(), "no stand-in at `{}`", path.display());
    path
}

/// Wine's prefixes carry its own tools in system32; Windows has no `winecfg.exe`.
fn under_wine() -> bool {
    let system =
        std::env::var_os("SystemRoot").map_or_else(|| PathBuf::from(r"C:\windows"), PathBuf::from);
    system.join(r"system32\winecfg.exe").exists()
}

fn local_host(p: &Project) {
    p.write(
        "kmsconf.toml",
        &format!("[hosts.kms01]\ntarget = \"local\"\n\n[hosts.kms01.products.windows]\nhost_key = {{ env = \"KMS_HOST_KEY\" }}\n{SETTINGS}"),
    );
}

/// A project whose `local` host is the lab file `lab/kms01.json`, served by the stand-in.
fn with_stand_in() -> Project {
    let mut p = Project::new();
    local_host(&p);
    let bin = stand_in();
    let dir = bin.parent().expect("the stand-in's directory");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    let path = std::env::join_paths(dirs).expect("PATH");
    let kmsconf = std::path::absolute(env!("CARGO_BIN_EXE_kmsconf")).expect("absolute path");
    let lab = p.path("lab/kms01.json").display().to_string();
    p.env("PATH", &path.to_string_lossy())
        .env("KMSCONF_STANDIN_EXE", &kmsconf.display().to_string())
        .env("KMSCONF_STANDIN_LAB", &lab);
    p
}

/// Wine's `powershell.exe` starts and ends without reading a line: the plan fails, saying no
/// discovery answer came. On Windows itself the real PowerShell answers.
#[test]
fn local_with_wines_powershell_says_no_discovery_answer_came() {
    let p = Project::new();
    local_host(&p);
    if under_wine() {
        let r = p.ok(&["plan"], 1);
        assert!(
            r.all()
                .contains("host `kms01`: the host sent no discovery answer (PowerShell ended with"),
            "{r:?}"
        );
    } else {
        p.ok(&["plan"], 0);
    }
}

#[test]
fn local_through_a_stand_in_powershell_converges_and_locks() {
    let p = with_stand_in();
    p.ok(&["lab", "latency", "lab/kms01.json", HOLDING_LATENCY_MS], 0);
    let plan = p.ok(&["plan"], 0);
    assert!(plan.stdout.contains("kms01"), "{plan:?}");
    let mut first = p.spawn(&["apply", "--auto-approve"]);
    p.wait_for("the first apply to take its lock", |p| {
        p.read("lab/kms01.json.apply.holder").contains("\"pid\"")
    });
    let second = p.ok(&["apply", "--auto-approve"], 1);
    assert!(
        second.stderr.contains("host `kms01` is locked by `apply`")
            && second
                .stderr
                .contains(&format!("by pid {} on ", first.id())),
        "{second:?}"
    );
    assert!(first.wait().expect("first").success());
    assert_eq!(p.read("lab/kms01.json.apply.holder"), "", "released");
    p.ok(&["lab", "latency", "lab/kms01.json", "0"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 0);
    let status = p.ok(&["status"], 0);
    assert!(status.stdout.contains("kms01"), "{status:?}");
}

/// What `.github/workflows/ci.yml`'s `windows` job asks of `target = "local"` on a real Windows
/// Server, read-only, through the stand-in here: the same config and commands, and the exit
/// codes, JSON fields and words that job checks.
#[test]
fn the_read_only_commands_of_the_windows_ci_job_hold_through_a_stand_in() {
    let p = with_stand_in();
    p.write(
        "ci-local/kmsconf.toml",
        "[hosts.runner]\ntarget = \"local\"\naddress = \"127.0.0.1\"\n",
    );
    let config = r"ci-local\kmsconf.toml";
    for command in ["validate", "plan", "status"] {
        p.ok(&[command, "-c", config], 0);
    }
    let doctor = p.run(&["doctor", "-c", config, "--json"]);
    assert!(doctor.code <= 1, "{doctor:?}");
    let report: serde_json::Value = serde_json::from_str(&doctor.stdout).expect("doctor's JSON");
    let checks = report["checks"].as_array().expect("checks");
    assert!(
        checks
            .iter()
            .any(|c| c["check"] == "clock-skew" && c["status"] == "ok"),
        "{doctor:?}"
    );
    let unlock = p.ok(
        &["force-unlock", "-c", config, "runner", "0123456789abcdef"],
        1,
    );
    assert!(
        unlock.all().contains("the host is not locked"),
        "{unlock:?}"
    );
}
