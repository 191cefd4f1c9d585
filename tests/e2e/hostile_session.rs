//! Issue 22, transport side: a host whose agent session lies or floods (the app side is in
//! hostile.rs). Each test puts a fake
//! `ssh` (a shell script run as `KMSCONF_SSH`) around `kmsconf lab agent` that tampers with what
//! the agent answers, runs the real binary, and asserts what the user needs: exit 1 with a
//! message that says what was wrong, within the timeout and a few seconds, under a memory cap,
//! and the host's apply lock released. Floods are generated on the fly, never written to disk.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;

/// A run of the binary, with its peak resident memory, how long it took and the processor time
/// it used.
pub struct Measured {
    pub run: Run,
    pub peak_mib: u64,
    pub took: Duration,
    /// User and system time of kmsconf itself (not of the fake host), as last sampled before it
    /// ended (at most one 20 ms poll short): what it did, whatever else the machine was doing.
    pub cpu: Duration,
}

impl Measured {
    /// The run failed (exit 1) saying `expected`, in under `seconds` and `mib` MiB at its peak,
    /// and printed neither the host key nor a panic.
    pub fn failed_within(&self, expected: &str, seconds: u64, mib: u64) {
        let all = self.run.all();
        assert_eq!(self.run.code, 1, "{:?}", self.run);
        assert!(all.contains(expected), "{expected:?} in {:?}", self.run);
        let limit = Duration::from_secs(seconds);
        assert!(self.took < limit, "took {:?}: {:?}", self.took, self.run);
        assert!(
            self.peak_mib < mib,
            "peak {} MiB: {:?}",
            self.peak_mib,
            self.run
        );
        assert!(
            !all.contains(WINDOWS_KEY),
            "the key was printed: {:?}",
            self.run
        );
        assert!(!all.contains("panicked"), "{:?}", self.run);
    }
}

/// Runs `args`, reading the child's peak resident memory (`VmHWM`) while it runs.
pub fn measured(p: &Project, args: &[&str]) -> Measured {
    let started = Instant::now();
    let mut child = p
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kmsconf starts");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let status = format!("/proc/{}/status", child.id());
    let stat = format!("/proc/{}/stat", child.id());
    let mut peak_kib = 0u64;
    let mut cpu = Duration::ZERO;
    let code = loop {
        if let Ok(text) = std::fs::read_to_string(&status) {
            let hwm = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
            peak_kib = peak_kib.max(hwm.unwrap_or(0));
        }
        if let Some(used) = std::fs::read_to_string(&stat)
            .ok()
            .and_then(|t| cpu_time(&t))
        {
            cpu = cpu.max(used);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code().unwrap_or(-1);
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "kmsconf {args:?} still runs after 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let (peak_mib, took) = (peak_kib / 1024, started.elapsed());
    // the figures, for `--nocapture`
    eprintln!("kmsconf {args:?}: exit {code}, peak {peak_mib} MiB, {took:.1?}, cpu {cpu:.1?}");
    Measured {
        run: Run {
            code,
            stdout: stdout.join().expect("stdout"),
            stderr: stderr.join().expect("stderr"),
        },
        peak_mib,
        took,
        cpu,
    }
}

/// A process's user plus system time from its `/proc/PID/stat` line: fields 14 and 15, counted
/// after the command name (which is in parentheses and may hold spaces), in clock ticks of
/// `USER_HZ`, which Linux fixes at 100 for what it reports to user space.
fn cpu_time(stat: &str) -> Option<Duration> {
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    // after `)`, field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12
    Some(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// A project whose one host `kms01` is reached through the fake `ssh` whose shell body is
/// `body` (`$AGENT` runs the lab agent on the host's lab file, its input the script's).
fn project(body: &str, timeout: u64) -> Project {
    let mut p = Project::new();
    p.write(
        "kmsconf.toml",
        "[hosts.kms01]\ntarget = \"ssh://admin@kms01.test\"\n\n\
         [hosts.kms01.products.windows]\nhost_key = { env = \"KMS_HOST_KEY\" }\n\n\
         [hosts.kms01.service]\nport = 1689\nactivation_interval = 60\n",
    );
    fake_ssh(&mut p, body);
    p.env("KMSCONF_TIMEOUT", &timeout.to_string());
    p
}

/// Makes `bin/ssh` run `body`, and `KMSCONF_SSH` name it.
fn fake_ssh(p: &mut Project, body: &str) {
    let script = format!(
        "#!/bin/sh\nAGENT=\"'{bin}' lab agent '{lab}'\"\n{body}\n",
        bin = env!("CARGO_BIN_EXE_kmsconf"),
        lab = p.path("lab/kms01.json").display()
    );
    p.write("bin/ssh", &script);
    let path = p.path("bin/ssh");
    let mut perms = std::fs::metadata(&path).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).expect("chmod");
    p.env("KMSCONF_SSH", &path.display().to_string());
}

/// An honest relay: what a later run sees when the host is sound again.
const HONEST: &str = "eval exec \"$AGENT\"";

fn assert_failed_plainly(m: &Measured, expected: &str, seconds: u64, mib: u64) {
    m.failed_within(expected, seconds, mib);
    // at most the 64 KiB of stderr kept, and a few lines
    assert!(
        m.run.all().len() < 80_000,
        "{} bytes printed",
        m.run.all().len()
    );
}

/// Item 3: a host that writes without a newline is cut at the line cap, named, in bounded
/// memory (it was 4.1 GB in 30 s).
#[test]
fn an_endless_line_is_cut_at_the_line_cap() {
    let p = project("read agent\nyes AAAAAAAAAAAAAAAA | tr -d '\\n'", 60);
    let m = measured(&p, &["plan"]);
    assert_failed_plainly(
        &m,
        "a line of the agent's output passed 8 MiB (the cap on one answer line), so kmsconf ended the session",
        20,
        150,
    );
}

/// The processor time kmsconf may spend reaching the round cap: a debug build spent 12 s (22.5 s
/// of wall time) on a 2-core machine at load 7; 40 leaves room for a slower processor and for
/// what contention costs in caches, while a scan of the whole round per line (quadratic) would
/// take hours.
const CPU_SECONDS: u64 = 40;

/// Item 3: endless short lines (none an answer) are cut at the cap on one round.
///
/// Reaching the cap takes 64 MiB of short lines (1.6 million) through the binary, so its wall
/// time is the machine's: on a CI machine of 2 cores running the tests in parallel it passed
/// the 30 s this test allowed. What the bound was for holds without it: the cap's message (not
/// the session timeout's) says the cap ended the session, and ended it before the timeout,
/// which is set high enough (90 s) that load does not reach it; and kmsconf's own processor
/// time, which other processes do not add to, bounds the work it did to get there (a
/// quadratic scan of the round, or reading on past the cap, would spend far more).
#[test]
fn endless_lines_are_cut_at_the_round_cap() {
    let p = project("read agent\nyes 'a banner line that is not an answer'", 90);
    let m = measured(&p, &["plan"]);
    assert_failed_plainly(
        &m,
        "the agent's output for one round of requests passed 64 MiB (the cap on one round)",
        90,
        150,
    );
    assert!(
        m.cpu < Duration::from_secs(CPU_SECONDS),
        "kmsconf used {:?} of processor time to reach the cap: {:?}",
        m.cpu,
        m.run
    );
}

/// Item 4: a flood on ssh's stderr keeps its first 64 KiB and says so (it was held whole and
/// printed whole: 4.1 GB for 2 GB).
#[test]
fn a_stderr_flood_is_kept_to_its_start_and_said_to_be_cut() {
    let p = project(
        "echo 'ssh: something failed' >&2\nhead -c 300000000 /dev/zero | tr '\\0' 'e' >&2\nexit 255",
        60,
    );
    let m = measured(&p, &["plan"]);
    assert_failed_plainly(
        &m,
        "[stderr cut: kmsconf keeps its first 64 KiB; 299934486 more bytes were not kept]",
        30,
        150,
    );
}

/// Item 7: `ssh` exits, but a child it left keeps stdout and stderr open: kmsconf does not wait
/// for the child.
#[test]
fn a_child_left_holding_stderr_open_is_not_waited_for() {
    let p = project(
        "sleep 30 &\necho 'ssh: connect to host kms01.test port 22: Connection refused' >&2\nexit 255",
        60,
    );
    let m = measured(&p, &["plan"]);
    assert_failed_plainly(&m, "Connection refused", 15, 150);
}

/// Item 14: a duplicated `lock` answer is left in the session, and the next round reads it: an
/// ID of an earlier round is a protocol error that ends the session (it was taken as the next
/// answer, and the lock stayed), and the lock is still released.
#[test]
fn a_stale_answer_ends_the_session_and_the_lock_is_released() {
    let mut p = project("eval \"$AGENT\" | sed -u '/^KMSCONF:lock:/p'", 30);
    let m = measured(&p, &["apply", "--auto-approve"]);
    assert_failed_plainly(
        &m,
        "an ID of an earlier round, but this round asked",
        40,
        150,
    );
    assert!(
        m.run.all().contains("so kmsconf ended the session"),
        "{:?}",
        m.run
    );
    fake_ssh(&mut p, HONEST);
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(!r.all().contains("locked"), "the lock was released: {r:?}");
}

/// Item 14: every `result` line twice: the second is a protocol error, not the answer to the
/// next operation (an activation that succeeded was reported failed).
#[test]
fn a_duplicated_result_is_a_protocol_error_not_the_next_answer() {
    let mut p = project("eval \"$AGENT\" | sed -u '/^KMSCONF:result:/p'", 30);
    let m = measured(&p, &["apply", "--auto-approve"]);
    assert_failed_plainly(&m, "the host broke the agent protocol (", 40, 150);
    let all = m.run.all();
    assert!(
        all.contains("a second answer `result` to request")
            || all.contains("an ID of an earlier round"),
        "{:?}",
        m.run
    );
    fake_ssh(&mut p, HONEST);
    p.ok(&["apply", "--auto-approve"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 0);
}
