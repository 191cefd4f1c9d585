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
    let mut script = String::from_utf8_lossy(&script).into_owned();
    if args.shell == Shell::PowerShell {
        script = without_using(&script);
    }
    super::output::emit(&script)?;
    Ok(ExitCode::SUCCESS)
}

/// The PowerShell script with its type names written in full instead of `using namespace`:
/// PowerShell accepts `using` only before every other statement of a file, so the script as
/// generated breaks a `$PROFILE` it is appended to (`kmsconf completions powershell >> $PROFILE`).
fn without_using(script: &str) -> String {
    const TYPES: [(&str, &str); 4] = [
        ("CompletionResult", "System.Management.Automation"),
        ("CompletionResultType", "System.Management.Automation"),
        (
            "StringConstantExpressionAst",
            "System.Management.Automation.Language",
        ),
        (
            "StringConstantType",
            "System.Management.Automation.Language",
        ),
    ];
    let mut out: String = script
        .lines()
        .filter(|l| !l.trim_start().starts_with("using namespace "))
        .map(|l| format!("{l}\n"))
        .collect();
    for (name, namespace) in TYPES {
        out = out.replace(&format!("[{name}]"), &format!("[{namespace}.{name}]"));
    }
    out
}
