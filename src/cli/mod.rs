//! Command-line interface: argument types (clap derive) and dispatch, one file per command.

mod apply;
mod completions;
mod env;
mod error;
mod lab;
mod markdown;
mod output;
mod plan;
mod render;
mod session;
mod show;

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
    /// Print a saved plan file as `plan` printed it, without contacting any host.
    Show(show::ShowArgs),
    /// Converge the hosts: from the config (plans first, then asks) or from a saved plan file.
    Apply(apply::ApplyArgs),
    /// Print the JSON Schema of the config file.
    Schema,
    /// Control simulated lab hosts (faults, offline, latency) and play the activation phone line.
    #[command(subcommand)]
    Lab(lab::LabCommand),
    /// Print the shell completion script for bash, zsh, fish or PowerShell.
    Completions(completions::CompletionsArgs),
}

/// Runs the command and returns the process exit code.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    match args.command {
        Command::Validate { config } => validate(&config.file),
        Command::Plan(a) => plan::run(a),
        Command::Show(a) => show::run(a),
        Command::Apply(a) => apply::run(a),
        Command::Schema => {
            print!("{}", kmsconf_engine::config::json_schema());
            Ok(ExitCode::SUCCESS)
        }
        Command::Lab(c) => lab::run(c),
        Command::Completions(a) => Ok(completions::run(a)),
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
