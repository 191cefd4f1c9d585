//! `kmsconf plan`: discover, diff, print (human, JSON or markdown), optionally save the plan file.

use std::path::PathBuf;
use std::process::ExitCode;

use kmsconf_app::session as app;

use super::output::{self, FormatArgs};
use super::progress::Progress;
use super::{session, CliError, ConfigArg};

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Save the plan to this file, for `kmsconf apply PLANFILE`.
    #[arg(long, value_name = "PLANFILE", value_parser = super::native_path)]
    out: Option<PathBuf>,
    #[command(flatten)]
    format: FormatArgs,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    detailed_exitcode: bool,
    /// Plan only this host (repeatable).
    #[arg(long = "host", value_name = "NAME")]
    hosts: Vec<String>,
    /// How many hosts to discover at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    parallelism: u16,
}

impl PlanArgs {
    pub fn json(&self) -> bool {
        self.format.format() == super::output::Format::Json
    }
}

pub fn run(args: PlanArgs) -> Result<ExitCode, CliError> {
    let config = session::load_config(&args.config.file)?;
    let selection = app::select(&config, &args.hosts)?;
    let opened = app::open(&config, &selection, &session::connect()?);
    let progress = Progress::new("planning", &selection.names());
    let mut planned = app::plan(
        &config,
        &opened.entries,
        usize::from(args.parallelism),
        &progress,
    );
    progress.finish();
    planned.failures.extend(opened.failures);
    output::emit_plan(&planned.plan, &planned.failures, args.format.format())?;
    if !planned.failures.is_empty() {
        return Err(CliError::Message(format!(
            "{} host{} could not be planned; nothing was saved",
            planned.failures.len(),
            if planned.failures.len() == 1 { "" } else { "s" }
        )));
    }
    if let Some(out) = &args.out {
        let seal = app::save_plan(&planned.plan, out, session::plan_key()?.as_ref())?;
        note!(
            "Saved the plan to `{}`; apply it with `kmsconf apply {}`.\n{}",
            out.display(),
            out.display(),
            session::seal_line(&seal)
        );
    }
    let changes = planned.plan.has_changes();
    Ok(if args.detailed_exitcode && changes {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
