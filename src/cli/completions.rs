//! `kmsconf completions SHELL`: the shell completion script, generated from the argument
//! definitions so it can never disagree with them.

use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use super::CliError;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete in: bash, zsh, fish, powershell (or elvish).
    #[arg(value_enum)]
    shell: Shell,
}

pub fn run(args: CompletionsArgs) -> Result<ExitCode, CliError> {
    let mut command = super::Args::command();
    // generated into memory first: clap_complete panics when it cannot write, and a reader
    // that stops early (`kmsconf completions bash | head`) closes the pipe under it
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "kmsconf", &mut script);
    super::output::emit(&String::from_utf8_lossy(&script))?;
    Ok(ExitCode::SUCCESS)
}
