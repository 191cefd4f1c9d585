//! Command-line interface: argument types (clap derive) and dispatch, one file per command.

mod apply;
mod env;
mod error;
mod export;
mod lab;
mod plan;
mod render;
mod session;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use error::CliError;

/// Declarative configuration-as-code for Microsoft KMS hosts.
#[derive(Debug, Parser)]
#[command(name = "kmsconf", version, about, long_about = None)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct ConfigArg {
    /// The config file.
    #[arg(short = 'c', long = "config", value_name = "FILE", default_value = kmsconf_engine::config::DEFAULT_FILE)]
    file: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the config file without contacting any host.
    Validate {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Discover each host and show what apply would change.
    Plan(plan::PlanArgs),
    /// Converge the hosts: from the config (plans first, then asks) or from a saved plan file.
    Apply(apply::ApplyArgs),
    /// Discover one host and print the config that reproduces it (keys as `{ env = ... }`).
    Export(export::ExportArgs),
    /// Print the JSON Schema of the config file.
    Schema,
    /// Control simulated lab hosts (faults, offline, latency) and play the activation phone line.
    #[command(subcommand)]
    Lab(lab::LabCommand),
}

/// Runs the command and returns the process exit code.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    match args.command {
        Command::Validate { config } => validate(&config.file),
        Command::Plan(a) => plan::run(a),
        Command::Apply(a) => apply::run(a),
        Command::Export(a) => export::run(a),
        Command::Schema => {
            print!("{}", kmsconf_engine::config::json_schema());
            Ok(ExitCode::SUCCESS)
        }
        Command::Lab(c) => lab::run(c),
    }
}

fn validate(file: &std::path::Path) -> Result<ExitCode, CliError> {
    let config = session::load_config(file)?;
    println!(
        "{}: valid ({} host{})",
        file.display(),
        config.hosts.len(),
        if config.hosts.len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}

pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env(env::LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(render::Style::stderr().enabled)
        .try_init();
}

pub fn report_error(e: &CliError) {
    let style = render::Style::stderr();
    for line in e.to_string().lines() {
        if line.starts_with(char::is_whitespace) || e.is_diagnostics() {
            eprintln!("{line}");
        } else {
            eprintln!("{} {line}", style.red("error:"));
        }
    }
}
