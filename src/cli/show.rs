//! `kmsconf show PLANFILE`: prints a saved plan exactly as `plan` printed it (human, JSON or
//! markdown), without contacting any host, so a pipeline can plan once and show that file.

use std::path::PathBuf;
use std::process::ExitCode;

use kmsconf_app::session as app;

use super::output::{self, FormatArgs};
use super::{session, CliError};

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// A plan saved by `kmsconf plan --out`.
    #[arg(value_name = "PLANFILE", value_parser = super::native_path)]
    plan: PathBuf,
    #[command(flatten)]
    format: FormatArgs,
}

impl ShowArgs {
    pub fn json(&self) -> bool {
        self.format.format() == super::output::Format::Json
    }
}

pub fn run(args: ShowArgs) -> Result<ExitCode, CliError> {
    let (plan, seal) = app::load_plan(&args.plan, session::plan_key()?.as_ref())?;
    // a saved plan never has failed hosts: `plan --out` refuses to save one
    output::emit_plan(&plan, &[], args.format.format())?;
    if args.format.format() != output::Format::Markdown {
        // the markdown summary carries the digest itself
        note!("{}", session::seal_line(&seal));
    }
    Ok(ExitCode::SUCCESS)
}
