//! `kmsconf completions SHELL`: the shell completion script, generated from the argument
//! definitions so it can never disagree with them.

use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete in: bash, zsh, fish, powershell (or elvish).
    #[arg(value_enum)]
    shell: Shell,
}

pub fn run(args: CompletionsArgs) -> ExitCode {
    let mut command = super::Args::command();
    clap_complete::generate(args.shell, &mut command, "kmsconf", &mut std::io::stdout());
    ExitCode::SUCCESS
}
