//! Helpers: a temporary project directory, the binary, and insta snapshots of what it prints.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A lab host's latency, in milliseconds, that keeps an `apply` holding its lock for a few
/// round trips while a test starts a second one: longer on Windows, where the test runs under
/// Wine and starting a process costs a second or more on a loaded machine.
pub const HOLDING_LATENCY_MS: &str = if cfg!(windows) { "2000" } else { "400" };

/// Made-up keys in the product-key alphabet, for lab hosts only.
pub const WINDOWS_KEY: &str = "BCDFG-HJKMP-QRTVW-XY234-6789B";
pub const WINDOWS_KEY_2: &str = "PQRTV-WXY23-46789-BCDFG-HJKMP";
pub const OFFICE_KEY: &str = "XY234-6789B-CDFGH-JKMPQ-RTVWX";

/// Wine's answer when a process it starts dies before it has initialised
/// (`STATUS_INTERNAL_ERROR` from `NtCreateUserProcess`, as `ERROR_INTERNAL_ERROR`). Under a
/// loaded Wine this happens now and then to a program that starts fine on the next try; a
/// Windows build run anywhere else never sees it from `kmsconf.exe`.
const WINE_START_FAILED: i32 = 1359;

/// Attempts at starting a program under Wine before its failure is the test's.
const WINE_START_ATTEMPTS: u32 = 4;

/// `cmd.output()`, tried again on Windows when Wine fails to start the program
/// ([`WINE_START_FAILED`]), saying so on stderr.
pub fn output(cmd: &mut Command) -> std::io::Result<Output> {
    retry_start(|| cmd.output())
}

/// `cmd.spawn()`, tried again the same way as [`output`].
pub fn spawn(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    retry_start(|| cmd.spawn())
}

fn retry_start<T>(mut start: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    let mut attempt = 1;
    loop {
        match start() {
            Err(e)
                if cfg!(windows)
                    && e.raw_os_error() == Some(WINE_START_FAILED)
                    && attempt < WINE_START_ATTEMPTS =>
            {
                eprintln!("Wine did not start the program (attempt {attempt}): {e}; trying again");
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            other => return other,
        }
    }
}

pub struct Project {
    pub dir: tempfile::TempDir,
    envs: Vec<(String, String)>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Exit code, stdout and stderr as a snapshot shows them, the project directory as
    /// `[PROJECT]` and the progress lines on stderr in host order (`progress_by_host`).
    pub fn shown(&self, project: &Project) -> String {
        let text = format!(
            "exit code: {}\n----- stdout -----\n{}----- stderr -----\n{}",
            self.code,
            self.stdout,
            progress_by_host(&self.stderr)
        );
        let dir = project.dir.path();
        let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        // a path word `portable` did not take for a file (`C:\...\cid.txt`) still has
        // Windows' separators
        let text = [&canonical, dir]
            .iter()
            .flat_map(|path| [as_run_shows(path), path.display().to_string()])
            .fold(text, |text, shown| text.replace(&shown, "[PROJECT]"));
        portable(text)
    }
}

/// What a run shows, in the words a snapshot holds on every platform. On Windows a file path
/// (a word under the project, or naming a `.json`, `.toml` or `.plan` file) is written with `/`
/// as Linux prints it (`lab:lab\kms01.json` is `lab:lab/kms01.json`; `windows_paths.rs` checks
/// that kmsconf prints `\` there), and the operating system's error text is Linux's; elsewhere
/// the text stays as it is. Other backslashes (a WinRM `DOMAIN\user`, a batch file's
/// `%SystemRoot%\System32`) stay.
pub fn portable(text: String) -> String {
    if !cfg!(windows) {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for c in text.chars() {
        if c.is_whitespace() || "`'\"(),".contains(c) {
            out.push_str(&path_word(&word));
            word.clear();
            out.push(c);
        } else {
            word.push(c);
        }
    }
    out.push_str(&path_word(&word));
    OS_ERRORS
        .iter()
        .fold(out, |text, (windows, linux)| text.replace(windows, linux))
}

/// `word` with `/` for `\` (and for `\\`, JSON's escaped one) when it names a file. Before it
/// is changed, a file word or one with a drive (`C:\`) must not hold both separators: on Windows
/// kmsconf prints every path with `\` (`engine::paths::native`), and this normalising would
/// hide a path printed half one way, half the other (`[PROJECT]\lab/kms03.json`).
fn path_word(word: &str) -> String {
    let file =
        word.contains("[PROJECT]") || [".json", ".toml", ".plan"].iter().any(|e| word.contains(e));
    let path = (file || has_drive(word)) && !word.contains("://");
    assert!(
        !(path && word.contains('/') && word.contains('\\')),
        "kmsconf printed a path with both separators, `{word}`: on Windows every path it prints uses `\\`"
    );
    if file && !word.contains('@') && !word.starts_with('%') {
        word.replace("\\\\", "/").replace('\\', "/")
    } else {
        word.to_string()
    }
}

/// Whether `word` holds a Windows drive path: a letter, `:\`, not inside a longer name (`C:\p`,
/// `lab:C:\p`; not a schema's regex `[^@:\\s]`).
fn has_drive(word: &str) -> bool {
    let b = word.as_bytes();
    b.windows(3).enumerate().any(|(i, w)| {
        w[0].is_ascii_alphabetic()
            && &w[1..] == b":\\"
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
    })
}

/// A path as a [`Run`] shows it: with `/` on Windows (see [`portable`]).
pub fn as_run_shows(path: &Path) -> String {
    let shown = path.display().to_string();
    if cfg!(windows) {
        shown.replace('\\', "/")
    } else {
        shown
    }
}

/// Windows' text of the OS errors the snapshots show, and Linux's.
const OS_ERRORS: [(&str, &str); 5] = [
    (
        "The system cannot find the file specified. (os error 2)",
        "No such file or directory (os error 2)",
    ),
    // Wine's words for it
    ("File not found. (os error 2)", "No such file or directory (os error 2)"),
    (
        "No connection could be made because the target machine actively refused it. (os error 10061)",
        "Connection refused (os error 111)",
    ),
    ("Connection refused. (os error 10061)", "Connection refused (os error 111)"),
    (
        "The system cannot find the path specified. (os error 3)",
        "No such file or directory (os error 2)",
    ),
];

/// `stderr` with the progress lines (`HOST: discovering`, `HOST: 2 changes`, ...) sorted by host.
/// Hosts are discovered and applied in parallel, so their lines interleave differently from run
/// to run; each host's own lines keep their order, and every other line keeps its place.
fn progress_by_host(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.split_inclusive('\n').collect();
    let places: Vec<usize> = (0..lines.len())
        .filter(|&i| progress_host(lines[i]).is_some())
        .collect();
    let mut progress: Vec<&str> = places.iter().map(|&i| lines[i]).collect();
    progress.sort_by_key(|line| progress_host(line));
    let mut out = lines;
    for (place, line) in places.into_iter().zip(progress) {
        out[place] = line;
    }
    out.concat()
}

/// The host a progress line is about, if `line` is one.
fn progress_host(line: &str) -> Option<&str> {
    let (host, what) = line.split_once(": ")?;
    let is_name = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    let counted = what.trim_start_matches(|c: char| c.is_ascii_digit());
    let is_progress = (counted.len() < what.len()
        && [" change", " applied, "]
            .iter()
            .any(|p| counted.starts_with(p)))
        || [
            "discovering",
            "skipped",
            "cannot plan",
            "no changes",
            "applying ",
        ]
        .iter()
        .any(|p| what.starts_with(p));
    (is_name && is_progress).then_some(host)
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Project {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            envs: vec![("KMS_HOST_KEY".into(), WINDOWS_KEY.into())],
        }
    }

    /// A project holding a copy of `examples/NAME`.
    pub fn example(name: &str) -> Self {
        let p = Self::new();
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name);
        copy_dir(&src, p.dir.path());
        let _ = std::fs::remove_dir_all(p.dir.path().join("lab"));
        p
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) -> &Self {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
        self
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_default()
    }

    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        self.envs.retain(|(k, _)| k != key);
        self.envs.push((key.into(), value.into()));
        self
    }

    pub fn unset(&mut self, key: &str) -> &mut Self {
        self.envs.retain(|(k, _)| k != key);
        self
    }

    pub fn run(&self, args: &[&str]) -> Run {
        to_run(output(&mut self.command(args)).expect("run kmsconf"))
    }

    /// Runs kmsconf and keeps its output exactly as printed (paths in Windows' own form there).
    #[cfg(windows)]
    pub fn run_as_printed(&self, args: &[&str]) -> Run {
        to_run_as_printed(output(&mut self.command(args)).expect("run kmsconf"))
    }

    /// Starts kmsconf in the background, output discarded.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        spawn(
            self.command(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("spawn kmsconf")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kmsconf"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .env_remove("KMSCONF_LOG")
            .env_remove("KMS_HOST_KEY")
            .env_remove("KMS_HOST_KEY_2")
            .env_remove("OFFICE_2019_KEY")
            .env_remove("OFFICE_2019_CID");
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// Waits (up to 20 s, or 60 s on Windows, where the tests run under Wine and a loaded
    /// machine can hold a process start for many seconds) until `check` holds, polling.
    pub fn wait_for(&self, what: &str, check: impl Fn(&Self) -> bool) {
        let start = std::time::Instant::now();
        let limit = if cfg!(windows) { 60 } else { 20 };
        while !check(self) {
            assert!(
                start.elapsed().as_secs() < limit,
                "timed out waiting for {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Makes a FIFO named `name` in the project (a file that blocks whoever reads it).
    #[cfg(unix)]
    pub fn fifo(&self, name: &str) {
        let made = std::process::Command::new("mkfifo")
            .arg(self.path(name))
            .status()
            .expect("mkfifo");
        assert!(made.success());
    }

    /// Runs and asserts the exit code.
    pub fn ok(&self, args: &[&str], code: i32) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, code, "kmsconf {}:\n{r:?}", args.join(" "));
        r
    }
}

/// A run as tests compare it: on Windows with its paths and OS errors as Linux prints them
/// ([`portable`]); `Project::run_as_printed` keeps what the binary printed.
fn to_run(o: Output) -> Run {
    let run = to_run_as_printed(o);
    Run {
        stdout: portable(run.stdout),
        stderr: portable(run.stderr),
        ..run
    }
}

fn to_run_as_printed(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// What changes from run to run in the binary's output, as a regex and what a snapshot shows
/// instead (uv's `uv_snapshot!` filters): plan digests, phone activation installation IDs, lock
/// holders (random ID, pid, machine, start time), times, and the ports of servers a test starts.
const FILTERS: &[(&str, &str)] = &[
    (r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]"),
    (r"\b[0-9]{7}(?:-[0-9]{7}){8}\b", "[INSTALLATION-ID]"),
    (r"\b[0-9a-f]{16}\b", "[LOCK-ID]"),
    (
        r"\bby pid [0-9]+ on \S+ since",
        "by pid [PID] on [MACHINE] since",
    ),
    (
        r"\b[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z",
        "[TIME]",
    ),
    (r"\b127\.0\.0\.1:[0-9]{4,5}\b", "127.0.0.1:[PORT]"),
    (r"\b127\.0\.0\.1 port [0-9]{4,5}\b", "127.0.0.1 port [PORT]"),
];

/// Compares `actual` with the reviewed insta snapshot `tests/e2e/snapshots/NAME.snap`, with
/// `FILTERS` applied. A new or changed output fails; `cargo insta review` (or
/// `INSTA_UPDATE=always cargo test`) accepts it, and CI (`CI` set) never writes one.
pub fn snapshot(name: &str, actual: &str) {
    let actual = portable(actual.to_string());
    insta::with_settings!({ filters => FILTERS.to_vec() }, {
        snapshot_unfiltered(name, &actual);
    });
}

/// `snapshot` without `FILTERS`, for output that is the same on every run (still in the words
/// every platform shows, see [`portable`]).
fn snapshot_unfiltered(name: &str, actual: &str) {
    let actual = portable(actual.to_string());
    insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!(name, actual);
    });
}

/// Snapshots all a person sees of a run, as `snapshot` does: exit code, stdout and stderr, with
/// the project's temporary directory shown as `[PROJECT]`.
pub fn snapshot_run(name: &str, project: &Project, run: &Run) {
    snapshot(name, &run.shown(project));
}

/// The same for a run on the input file `input`, into `NAME.snap` beside `NAME.EXT`. The input
/// is a fixed file, so what the binary prints about it (a digest, say) is pinned unfiltered.
pub fn snapshot_run_beside(input: &Path, project: &Project, run: &Run) {
    let dir = input.parent().expect("input's directory");
    let name = input.file_stem().and_then(|s| s.to_str()).expect("name");
    insta::with_settings!({ snapshot_path => dir, input_file => input }, {
        snapshot_unfiltered(name, &run.shown(project));
    });
}

/// The installation ID a pending phone activation printed.
pub fn installation_id(output: &str) -> String {
    output
        .split_whitespace()
        .find(|w| w.len() == 71 && w.split('-').count() == 9)
        .unwrap_or_else(|| panic!("no installation ID in:\n{output}"))
        .to_string()
}

/// Service settings and a firewall group for `single_host`: a custom port (so a port rule), one
/// setting that needs the service restart and one that does not.
pub const SETTINGS: &str = "
[hosts.kms01.service]
port = 1689
activation_interval = 60

[hosts.kms01.firewall]
rule_groups = [\"key-management-service\"]
";

/// A minimal single-host config with the given extra TOML appended.
pub fn single_host(extra: &str) -> String {
    format!(
        "[hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\n\n[hosts.kms01.products.windows]\nhost_key = {{ env = \"KMS_HOST_KEY\" }}\n{extra}"
    )
}

/// `2026-12-06T11:53:48Z` anywhere in `text` becomes `TIME` and every GUID not in `keep`
/// `GUID`, so a snapshot holds still.
pub fn timeless_keeping(text: &str, keep: &[&str]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('T') {
        let candidate = rest.get(i.saturating_sub(10)..i + 10);
        let is_time = i >= 10
            && candidate.is_some_and(|c| {
                c.len() == 20
                    && c.bytes().enumerate().all(|(j, b)| match j {
                        4 | 7 => b == b'-',
                        10 => b == b'T',
                        13 | 16 => b == b':',
                        19 => b == b'Z',
                        _ => b.is_ascii_digit(),
                    })
            });
        if is_time {
            out.push_str(&rest[..i - 10]);
            out.push_str("TIME");
            rest = &rest[i + 10..];
        } else {
            out.push_str(&rest[..=i]);
            rest = &rest[i + 1..];
        }
    }
    out.push_str(rest);
    unguid(&out, keep)
}

/// GUIDs (the lab's generated CMIDs are random per lab host) become `GUID`, but those in `keep`.
fn unguid(text: &str, keep: &[&str]) -> String {
    let is_guid = |c: &str| {
        c.len() == 36
            && c.bytes().enumerate().all(|(j, b)| match j {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_hexdigit(),
            })
    };
    let mut out = String::new();
    let mut i = 0;
    while i < text.len() {
        match text.get(i..i + 36) {
            Some(c) if is_guid(c) && !keep.contains(&c) => {
                out.push_str("GUID");
                i += 36;
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}
