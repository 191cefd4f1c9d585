//! `kmsconf doctor`: runs the troubleshooting checks on each host and prints each verdict with
//! why and the fix. Exit 0 when nothing failed, 1 otherwise, so pipelines can gate on it.

use std::fmt::Write as _;
use std::process::ExitCode;

use kmsconf_app::doctor::{self, Check, Verdict};
use kmsconf_app::output::{DoctorOutput, DoctorSummary};

use super::openmetrics::{self, Format};
use super::render::Style;
use super::{output, session, CliError, ConfigArg};

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Print one JSON object: `{ "format_version", "checks": [...], "summary" }`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// How to print it: `openmetrics` for node_exporter's textfile collector.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Human)]
    format: Format,
    /// Only this host (repeatable).
    #[arg(long = "host", value_name = "NAME")]
    hosts: Vec<String>,
    /// How far back the event-log checks read (duplicate CMIDs, DNS publishing failures).
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = super::clients::parse_window)]
    since: i64,
    /// Warn (`kms-idle`) when the host's newest activation request is older than this.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = super::clients::parse_window)]
    idle: i64,
}

impl DoctorArgs {
    pub fn json(&self) -> bool {
        self.json || self.format == Format::Json
    }
}

pub fn run(args: DoctorArgs) -> Result<ExitCode, CliError> {
    let (config, connect) = session::read_only(&args.config.file)?;
    let window = doctor::EventWindow {
        window: args.since,
        idle: args.idle,
    };
    let parallelism = session::READ_PARALLELISM;
    let report = doctor::run(&config, &args.hosts, &connect, parallelism, window)?;
    session::report_created(&report.created, args.json || args.format != Format::Human);
    let checks = report.checks;
    let summary = DoctorSummary::of(&checks);
    if args.format == Format::Openmetrics {
        output::emit(&openmetrics::doctor(&report.hosts, &checks))?;
    } else if args.json || args.format == Format::Json {
        output::emit(&output::json(&DoctorOutput::new(checks)))?;
    } else {
        output::emit_text(&render(&checks, Style::stdout()))?;
    }
    Ok(session::exit_status(summary.failed > 0))
}

/// The human report: one block per host, one line per check, the fix under what is not ok.
pub fn render(checks: &[Check], style: Style) -> String {
    let mut out = String::new();
    let mut current: Option<&str> = None;
    let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
    for c in checks {
        if current != Some(c.host.as_str()) {
            if current.is_some() {
                out.push('\n');
            }
            let _ = writeln!(out, "{}", style.bold(&format!("host {}", c.host)));
            current = Some(&c.host);
        }
        let word = format!("{:<7}", c.status.word());
        let word = match c.status {
            Verdict::Ok => style.green(&word),
            Verdict::Warning => style.yellow(&word),
            Verdict::Failed => style.red(&word),
        };
        let code = c.code.as_deref().filter(|_| c.status != Verdict::Ok);
        let code = code.map(|k| format!(" [{k}]")).unwrap_or_default();
        // a detail quotes what hosts and the directory report (an activation object's DN): it
        // stays on its check's line
        let detail = super::terminal::inline(&c.detail);
        let _ = writeln!(out, "  {word}  {:<width$}  {detail}{code}", c.check);
        if let Some(fix) = c.fix.as_deref().filter(|_| c.status != Verdict::Ok) {
            let fix = super::terminal::inline(fix);
            let _ = writeln!(
                out,
                "  {:<7}  {:<width$}  {}",
                "",
                "",
                style.dim(&format!("fix: {fix}"))
            );
        }
    }
    let summary = DoctorSummary::of(checks);
    let _ = writeln!(
        out,
        "\nDoctor: {} ok, {} warning{}, {} failed.",
        summary.ok,
        summary.warning,
        if summary.warning == 1 { "" } else { "s" },
        summary.failed
    );
    out
}
