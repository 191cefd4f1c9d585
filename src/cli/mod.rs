//! Command-line interface: argument types (clap derive) and dispatch, one file per command.

/// `eprintln!` for notes, progress and errors, without its panic when standard error is closed
/// (`2>&-`, or `2>&1 | head` once the reader is gone): what stderr carries is never worth a crash.
/// What a host sent cannot drive the terminal: the text goes through [`terminal::clean`].
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let text = format!($($arg)*);
        let style = crate::cli::render::Style::stderr().enabled;
        let _ = writeln!(std::io::stderr(), "{}", crate::cli::terminal::clean(&text, style));
    }};
}

/// `println!` for the short outputs not written through [`output::emit`], without its panic when
/// the reader has gone (`kmsconf lab clients list | head -1`); cleaned as [`note!`] is.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let text = format!($($arg)*);
        let style = crate::cli::render::Style::stdout().enabled;
        let _ = writeln!(std::io::stdout(), "{}", crate::cli::terminal::clean(&text, style));
    }};
}

mod apply;
mod client_script;
mod clients;
mod completions;
mod doctor;
mod env;
mod error;
mod excerpt;
mod explain;
mod export;
mod github;
mod lab;
mod listen;
mod markdown;
mod openmetrics;
mod output;
mod plan;
mod progress;
mod render;
mod report_html;
mod schema;
mod session;
mod show;
mod status;
mod terminal;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kmsconf_app::output::OutputKind;

pub use error::CliError;

/// Declarative configuration-as-code for Microsoft KMS hosts.
#[derive(Debug, Parser)]
// `bin_name`: usage lines say `kmsconf`, as the docs do, also on Windows (where clap would take
// `kmsconf.exe` from the program's file name)
#[command(name = "kmsconf", bin_name = "kmsconf", version, about, long_about = None)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct ConfigArg {
    /// The config file.
    #[arg(short = 'c', long = "config", value_name = "FILE", default_value = kmsconf_model::config::DEFAULT_FILE, value_parser = native_path)]
    file: PathBuf,
}

/// A path argument in the platform's separators (on Windows `lab/x.json` is `lab\x.json`), so
/// that kmsconf prints every path one way.
fn native_path(text: &str) -> Result<PathBuf, std::convert::Infallible> {
    Ok(kmsconf_app::engine::paths::native(std::path::Path::new(
        text,
    )))
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the config file without contacting any host.
    Validate {
        #[command(flatten)]
        config: ConfigArg,
        /// How to print errors and warnings: `github` prints GitHub Actions annotations.
        #[arg(long, value_enum, value_name = "FORMAT", default_value_t = github::Format::Human)]
        format: github::Format,
    },
    /// Discover each host and show what apply would change.
    Plan(plan::PlanArgs),
    /// Print a saved plan file as `plan` printed it, without contacting any host.
    Show(show::ShowArgs),
    /// Converge the hosts: from the config (plans first, then asks) or from a saved plan file.
    Apply(apply::ApplyArgs),
    /// Show each host and KMS host product: license, partial key, count against the threshold,
    /// KMS settings and request counters.
    Status(status::StatusArgs),
    /// Show who asks each KMS host, from its event log: clients, distinct clients per product
    /// against the threshold, duplicate CMIDs (cloned images), clients no host key covers.
    Clients(clients::ClientsArgs),
    /// Run the troubleshooting checks (port, firewall, clock, licenses, count, ...); exit 1 when
    /// any fails.
    Doctor(doctor::DoctorArgs),
    /// Explain a KMS or activation error code: meaning, cause and fix.
    Explain(explain::ExplainArgs),
    /// Print the one-time client activation script for a host (batch file or PowerShell).
    ClientScript(client_script::ClientScriptArgs),
    /// Discover one host and print the config that reproduces it (keys as `{ env = ... }`).
    Export(export::ExportArgs),
    /// Print the JSON Schema of the config file, or of a command's `--json` output.
    Schema(schema::SchemaArgs),
    /// Break a host's apply lock left behind by a run that died (give the lock ID its error showed).
    ForceUnlock {
        #[command(flatten)]
        config: ConfigArg,
        /// The host, by its name in the config.
        host: String,
        /// The lock ID, as the `locked` error printed it.
        lock_id: String,
    },
    /// Control simulated lab hosts (faults, latency, offline, unreachable, clients, clock) and play the activation phone line.
    #[command(subcommand)]
    Lab(lab::LabCommand),
    /// Print the shell completion script for bash, zsh, fish or PowerShell.
    Completions(completions::CompletionsArgs),
}

/// Runs the command and returns the process exit code.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    match args.command {
        Command::Validate { config, format } => validate(&config.file, format),
        Command::Plan(a) => as_json(a.json(), OutputKind::Plan, || plan::run(a)),
        Command::Show(a) => as_json(a.json(), OutputKind::Plan, || show::run(a)),
        Command::Apply(a) => as_json(a.json(), OutputKind::Apply, || apply::run(a)),
        Command::Status(a) => as_json(a.json(), OutputKind::Status, || status::run(a)),
        Command::Doctor(a) => as_json(a.json(), OutputKind::Doctor, || doctor::run(a)),
        Command::Clients(a) => as_json(a.json(), OutputKind::Clients, || clients::run(a)),
        Command::Explain(a) => explain::run(a),
        Command::ClientScript(a) => client_script::run(a),
        Command::Export(a) => export::run(a),
        Command::Schema(a) => schema::run(a),
        Command::Lab(c) => lab::run(c),
        Command::ForceUnlock {
            config,
            host,
            lock_id,
        } => force_unlock(&config.file, &host, &lock_id),
        Command::Completions(a) => completions::run(a),
    }
}

/// Runs a command that may print a `--json` document: when it fails as a whole with `json`, the
/// document still goes out, the failure in its `error`, and the error is reported as ever.
fn as_json(
    json: bool,
    kind: OutputKind,
    command: impl FnOnce() -> Result<ExitCode, CliError>,
) -> Result<ExitCode, CliError> {
    let result = command();
    if let (true, Err(e), false) = (json, &result, output::json_made()) {
        let message = match e.diagnostics() {
            Some(d) => d
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            None => e.to_string(),
        };
        let failure = match e {
            CliError::App(app) if e.diagnostics().is_none() => kmsconf_app::failure::of_run(app),
            _ => kmsconf_app::failure::HostFailure::plan(message),
        };
        if let Some(doc) = kmsconf_app::output::failed(kind, failure) {
            let _ = output::emit(&output::json_text(doc));
        }
    }
    result
}

fn force_unlock(file: &std::path::Path, host: &str, lock_id: &str) -> Result<ExitCode, CliError> {
    let config = session::load_config(file)?;
    let holder = kmsconf_app::unlock::force_unlock(&config, host, lock_id, &session::connect()?)?;
    say!("host `{host}`: removed the lock held by {holder}");
    Ok(ExitCode::SUCCESS)
}

fn validate(file: &std::path::Path, format: github::Format) -> Result<ExitCode, CliError> {
    let config = match format {
        github::Format::Human => session::load_config(file)?,
        github::Format::Github => match github::load_config(file) {
            Some(config) => config,
            None => return Ok(ExitCode::from(1)),
        },
    };
    say!(
        "{}: valid ({} host{})",
        file.display(),
        config.hosts.len(),
        if config.hosts.len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}

/// Logs to stderr, filtered by `KMSCONF_LOG` (`warn` when unset or empty, and then nothing of
/// the `sspi` crate's own: kmsconf's messages already carry what its errors say, and its error
/// lines dump whole Kerberos structures); a filter that does not parse is an error, not silently
/// no logs.
pub fn init_tracing() -> Result<(), CliError> {
    let text = std::env::var_os(env::LOG).unwrap_or_default();
    let text = text.to_string_lossy();
    let filter = match text.trim() {
        "" => tracing_subscriber::EnvFilter::new("warn,sspi=off"),
        text => tracing_subscriber::EnvFilter::try_new(text).map_err(|e| {
            CliError::Message(format!(
                "`{}` = {} is not a log filter ({e}): give a level (`error`, `warn`, `info`, `debug`, `trace`) or `target=level` pairs separated by commas, e.g. `kmsconf_providers=debug`",
                env::LOG,
                kmsconf_app::engine::quoted(text)
            ))
        })?,
    };
    let ansi = render::Style::stderr().enabled;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || terminal::Stderr::new(ansi))
        .with_ansi(ansi)
        .try_init();
    Ok(())
}

/// Raises the open-file soft limit to the hard limit: every host of a run keeps its connection
/// (an ssh process and its pipes, or a WinRM socket) from its lock to its unlock, and a soft limit
/// of 1024 would fail hosts past the first few hundred with "Too many open files".
pub fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(e) => tracing::debug!(error = %e, "cannot raise the open-file limit"),
    }
}

pub fn report_error(e: &CliError) {
    let style = render::Style::stderr();
    if let Some(diagnostics) = e.diagnostics() {
        let mut excerpts = excerpt::Excerpts::default();
        for d in diagnostics {
            note!("{}", excerpts.diagnostic(d, style));
        }
        return;
    }
    let message = e.to_string();
    for line in message.lines() {
        if line.starts_with(char::is_whitespace) {
            note!("{line}");
        } else {
            note!("{} {line}", style.red("error:"));
        }
    }
    for excerpt in excerpt::Excerpts::default().declared_at(&message, style) {
        note!("{excerpt}");
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every argument of every (sub)command says what it is in `--help`: a bare `<PATH>` left
    /// the reader to guess which file and from where.
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &format!("{path} {}", sub.get_name()), missing);
                }
            }
        }
        let mut missing = Vec::new();
        walk(&super::Args::command(), "kmsconf", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }
}
