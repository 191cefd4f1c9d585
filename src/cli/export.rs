//! `kmsconf export --target TARGET`: discovers one host and prints the config that reproduces
//! it, so an existing KMS host can be brought under Git. Keys appear as `{ env = ... }`
//! placeholders; stderr lists the variables to set.

use std::path::Path;
use std::process::ExitCode;

use kmsconf_model::config::TargetSpec;
use kmsconf_providers::{export, registry};

use super::{session, CliError};

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The host to read: `lab:PATH` (relative to the current directory), `local`,
    /// `ssh://[user@]host[:port]`, or `winrm[+https]://user@host[:port]` (the password from
    /// KMSCONF_WINRM_PASSWORD; negotiate authentication, the system's CA roots).
    #[arg(long, value_name = "TARGET")]
    target: String,
    /// The host's name in the config; default its computer name, in lowercase.
    #[arg(long, value_name = "NAME", value_parser = parse_name)]
    name: Option<String>,
}

fn parse_name(text: &str) -> Result<String, String> {
    kmsconf_model::config::check_host_name(text)
        .map(|()| text.to_string())
        .map_err(|e| e.to_string())
}

pub fn run(args: ExportArgs) -> Result<ExitCode, CliError> {
    let cwd = std::env::current_dir()
        .map_err(|e| CliError::Message(format!("cannot read the current directory: {e}")))?;
    let spec =
        TargetSpec::parse(&args.target, &cwd).map_err(|e| CliError::Message(e.to_string()))?;
    if let TargetSpec::Lab { path } = &spec {
        refuse_missing_lab(path)?;
    }
    // until discovery gives the computer name, messages name the host by its target
    let label = args
        .name
        .clone()
        .unwrap_or_else(|| args.target.trim().to_string());
    let target = kmsconf_targets::open(&label, &spec, &session::connect()?)?;
    let state = target
        .discover()?
        .state
        .into_host()
        .map_err(|m| CliError::Message(format!("`{}`: {m}", args.target.trim())))?;
    let name = args
        .name
        .unwrap_or_else(|| export::host_name(&state.computer_name));
    let exported = registry::export(&name, args.target.trim(), &state);
    super::output::emit(&exported.toml)?;
    if matches!(spec, TargetSpec::WinRm { .. }) {
        note!(
            "the config reads the WinRM password from `{}`",
            export::WINRM_PASSWORD_VARIABLE
        );
    }
    for (variable, partial) in &exported.variables {
        note!("set `{variable}` to the host key ending in {partial}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Discovery would create a missing lab host; export only reads.
fn refuse_missing_lab(path: &Path) -> Result<(), CliError> {
    if path.exists() {
        return Ok(());
    }
    Err(CliError::Message(format!(
        "there is no lab host at `{}` (export reads a host; `kmsconf plan` creates lab hosts)",
        path.display()
    )))
}
