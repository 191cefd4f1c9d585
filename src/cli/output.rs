//! How a plan is printed, for `plan` and `show` alike: one rendering path, so a saved plan
//! shows exactly as it was planned (human, JSON or the markdown summary for a pull request).

use std::io::Write as _;

use kmsconf_app::failure::HostFailure;
use kmsconf_app::output::PlanOutput;
use kmsconf_model::KmsPlan;

use super::markdown;
use super::render::{self, Style};
use super::terminal;
use super::CliError;

/// The output formats of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The plan as a reviewer reads it in a terminal.
    Human,
    /// One JSON object (`format_version`, `changes`, `hosts`, `summary`, `errors`).
    Json,
    /// A summary for a pull-request comment, capped under GitHub's comment size limit.
    Markdown,
}

/// `--format FORMAT`, with `--json` kept as the short form of `--format json`.
#[derive(Debug, clap::Args)]
pub struct FormatArgs {
    /// Print the plan as one JSON object (the same as `--format json`).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// How to print the plan.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Human)]
    format: Format,
}

impl FormatArgs {
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            self.format
        }
    }
}

/// Prints the plan in `format`; `failures` are the hosts that could not be planned, with why.
/// Lab targets are shown relative to the config's directory recorded in the plan. The human
/// plan goes out as it is rendered, never held whole.
pub fn emit_plan(
    plan: &KmsPlan,
    failures: &[(String, HostFailure)],
    format: Format,
) -> Result<(), CliError> {
    let base = plan.config_dir();
    match format {
        Format::Human => {
            let mut out = Stdout::new();
            render::plan(&mut out, plan, &base, failures, Style::stdout());
            out.finish()
        }
        Format::Json => emit(&json(&PlanOutput::new(plan, &base, failures))),
        Format::Markdown => emit_text(&markdown::plan(plan, &base, failures)),
    }
}

/// Standard output for text rendered piece by piece, buffered; as for [`emit`], a reader that
/// stops early is not an error, and what is left is not written.
struct Stdout {
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    error: Option<std::io::Error>,
    keep_style: bool,
}

impl Stdout {
    fn new() -> Self {
        Self {
            out: std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock()),
            error: None,
            keep_style: Style::stdout().enabled,
        }
    }

    fn finish(mut self) -> Result<(), CliError> {
        if self.error.is_none() {
            self.error = self.out.flush().err();
        }
        written(self.error.map_or(Ok(()), Err))
    }
}

impl std::fmt::Write for Stdout {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        if self.error.is_none() {
            let text = terminal::clean(text, self.keep_style);
            self.error = self.out.write_all(text.as_bytes()).err();
        }
        Ok(())
    }
}

/// A `--json` document, pretty, with its final newline; a secret of the run that a host quoted
/// is redacted inside its strings, and nothing else is changed.
pub fn json(doc: &impl serde::Serialize) -> String {
    json_text(serde_json::to_string_pretty(doc).unwrap_or_default())
}

/// Whether this run made its `--json` document: a command that fails after it (a plan that
/// cannot be saved) must not print a second one.
static JSON_MADE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn json_made() -> bool {
    JSON_MADE.load(std::sync::atomic::Ordering::Relaxed)
}

/// A `--json` document already pretty-printed, as [`json`] finishes it.
pub fn json_text(text: String) -> String {
    JSON_MADE.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut text = kmsconf_app::engine::redact_run_json(&text).into_owned();
    text.push('\n');
    text
}

/// Writes `text` to standard output. A reader that stops early (`kmsconf show PLANFILE | head`)
/// closes the pipe: that is not an error, and the command goes on (a plan is still saved).
pub fn emit(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    written(out.write_all(text.as_bytes()).and_then(|()| out.flush()))
}

/// Writes human output (a table, a report, a markdown summary) to standard output as [`emit`]
/// does, with what came from outside unable to drive the terminal ([`terminal::clean`]).
pub fn emit_text(text: &str) -> Result<(), CliError> {
    emit(&terminal::clean(text, Style::stdout().enabled))
}

/// What writing to standard output came to: a closed pipe is not an error.
fn written(result: std::io::Result<()>) -> Result<(), CliError> {
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Message(format!(
            "cannot write to standard output: {e}"
        ))),
        _ => Ok(()),
    }
}
