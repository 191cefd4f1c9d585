//! `kmsconf schema`: the JSON Schema of the config file, or with `--output KIND` of one `--json`
//! document, as committed under `schema/`.

use std::process::ExitCode;

use kmsconf_app::output::OutputKind;

use super::{output, CliError};

#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Print the schema of the `--json` output of this command instead of the config's.
    #[arg(long, value_enum, value_name = "KIND")]
    output: Option<Kind>,
}

/// The `--json` documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    /// `plan --json` and `show --json`.
    Plan,
    /// `apply --json`.
    Apply,
    /// `status --json`.
    Status,
    /// `doctor --json`.
    Doctor,
    /// `explain --json`.
    Explain,
    /// `clients --json`.
    Clients,
}

impl From<Kind> for OutputKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Plan => Self::Plan,
            Kind::Apply => Self::Apply,
            Kind::Status => Self::Status,
            Kind::Doctor => Self::Doctor,
            Kind::Explain => Self::Explain,
            Kind::Clients => Self::Clients,
        }
    }
}

pub fn run(args: SchemaArgs) -> Result<ExitCode, CliError> {
    let text = match args.output {
        Some(kind) => OutputKind::from(kind).json_schema(),
        None => kmsconf_model::config::json_schema(),
    };
    output::emit(&text)?;
    Ok(ExitCode::SUCCESS)
}
