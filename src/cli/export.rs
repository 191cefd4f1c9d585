//! `kmsconf export --target TARGET`: discovers one host and prints the config that reproduces
//! it, so an existing KMS host can be brought under Git. Keys appear as `{ env = ... }`
//! placeholders; stderr lists the variables to set.

use std::process::ExitCode;

use kmsconf_app::export;
use kmsconf_model::config::TargetSpec;

use super::{session, CliError};

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The host to read: `lab:PATH` (relative to the current directory), `local`,
    /// `ssh://[user@]host[:port]`, or `winrm[+https]://user@host[:port]` (the password from
    /// KMSCONF_WINRM_PASSWORD, else a Kerberos ticket from the credential cache; negotiate
    /// authentication, the system's CA roots).
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
    let target = args.target.trim();
    let exported = export::run(target, &spec, args.name.as_deref(), &session::connect()?)?;
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
