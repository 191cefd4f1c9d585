//! What the commands share on the command-line side: loading the config (its warnings to
//! stderr), how to reach real hosts (from the environment), the start and exit status of the
//! read-only commands, the progress display the application reports to, and the note about lab
//! hosts a command created.

use std::path::Path;
use std::process::ExitCode;

use kmsconf_app::engine::{quoted, Seal, Secret};
use kmsconf_app::session::Progress as AppProgress;
use kmsconf_app::Connect;
use kmsconf_model::config::Config;

use super::progress::Progress;
use super::render::Style;
use super::CliError;

/// Loads and validates the config; prints its warnings to stderr.
pub fn load_config(path: &Path) -> Result<Config, CliError> {
    let config = Config::load(path)?;
    let style = Style::stderr();
    let mut excerpts = super::excerpt::Excerpts::default();
    for w in &config.warnings {
        note!("{}", excerpts.diagnostic(w, style));
    }
    Ok(config)
}

/// How to reach real hosts, from `KMSCONF_SSH` and `KMSCONF_TIMEOUT`, and where to record their
/// sessions, from `KMSCONF_RECORD`.
pub fn connect() -> Result<Connect, CliError> {
    let mut connect = Connect {
        record: std::env::var_os(super::env::RECORD)
            .filter(|dir| !dir.is_empty())
            .map(std::path::PathBuf::from),
        ..Connect::default()
    };
    if let Some(cmd) = std::env::var(super::env::SSH)
        .ok()
        .filter(|c| !c.trim().is_empty())
    {
        connect.ssh_command = cmd.split_whitespace().map(String::from).collect();
    }
    if let Some(text) = std::env::var_os(super::env::TIMEOUT) {
        let text = text.to_string_lossy();
        let seconds: u64 = text
            .trim()
            .parse()
            .ok()
            .filter(|s| TIMEOUT_SECONDS.contains(s))
            .ok_or_else(|| {
                CliError::Message(format!(
                    "`{}` = {} is not allowed: give a whole number of seconds from {} to {} (default 600)",
                    super::env::TIMEOUT,
                    quoted(&text),
                    TIMEOUT_SECONDS.start(),
                    TIMEOUT_SECONDS.end()
                ))
            })?;
        connect.timeout = std::time::Duration::from_secs(seconds);
        connect.connect_timeout = connect.connect_timeout.min(connect.timeout);
    }
    Ok(connect)
}

/// How many hosts a read-only command (status, doctor, clients) reads at once.
pub const READ_PARALLELISM: usize = 8;

/// The start of a read-only command (status, doctor, clients): the config at `path` (its
/// warnings said), then how to reach its hosts; a config error is said before an environment one.
pub fn read_only(path: &Path) -> Result<(Config, Connect), CliError> {
    let config = load_config(path)?;
    Ok((config, connect()?))
}

/// A read-only command's exit status: 1 when a host could not be read or a check failed, so
/// pipelines can gate on it, else 0.
pub fn exit_status(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `KMSCONF_TIMEOUT`'s range: at least a second, at most a day.
const TIMEOUT_SECONDS: std::ops::RangeInclusive<u64> = 1..=86_400;

/// The shortest plan key accepted: an HMAC key much shorter than the hash is easy to guess.
const PLAN_KEY_CHARS: usize = 32;

/// The plan key from `KMSCONF_PLAN_KEY`, if set; an error for one too short to be a key.
pub fn plan_key() -> Result<Option<Secret>, CliError> {
    let Some(value) = std::env::var_os(super::env::PLAN_KEY) else {
        return Ok(None);
    };
    let key = value.to_str().map(str::trim).unwrap_or_default();
    if key.chars().count() < PLAN_KEY_CHARS {
        return Err(CliError::Message(format!(
            "`{}` must be at least {PLAN_KEY_CHARS} characters of UTF-8 (e.g. from `openssl rand -hex 32`), or unset",
            super::env::PLAN_KEY
        )));
    }
    Ok(Some(Secret::new(key)))
}

/// How a plan file's seal is shown: its digest, and whether the plan key vouched for it.
pub fn seal_line(seal: &Seal) -> String {
    let how = if seal.authenticated {
        format!("signed with `{}`", super::env::PLAN_KEY)
    } else {
        "not signed: anyone who can write the file can recompute its digest".to_string()
    };
    format!("Plan digest: {} ({how})", seal.digest)
}

impl AppProgress for Progress {
    fn update(&self, entry: &str, what: &str) {
        Progress::update(self, entry, what);
    }

    fn done(&self, entry: &str, what: &str) {
        Progress::done(self, entry, what);
    }
}

/// Says which lab hosts this command created (their state file did not exist): with the human
/// output on stdout before it, with `--json` on stderr so stdout stays one JSON document.
pub fn report_created(created: &[(String, String)], json: bool) {
    let style = if json {
        Style::stderr()
    } else {
        Style::stdout()
    };
    for (host, notice) in created {
        let line = style.yellow(&format!("note: host `{host}`: {notice}"));
        if json {
            note!("{line}");
        } else {
            say!("{line}");
        }
    }
    if !created.is_empty() && !json {
        say!("");
    }
}
