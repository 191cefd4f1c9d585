//! `kmsconf apply`: converge hosts from the config (lock, plan, show, ask, apply) or from a saved
//! plan file (lock, rediscover and refuse if stale, apply). Every host's apply lock is held from
//! before discovery to the end of the run.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use kmsconf_app::engine::LockGuard;
use kmsconf_app::failure::HostFailure;
use kmsconf_app::output::{ApplyOutput, ApplySummary};
use kmsconf_app::session::{self as app, Entry, HostResult};
use kmsconf_model::KmsPlan;

use super::progress::Progress;
use super::render::{self, Style};
use super::session;
use super::{output, CliError, ConfigArg};

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// A plan saved by `kmsconf plan --out`; applied as reviewed, or refused when stale or
    /// changed. It names its own hosts, so it cannot be given with `--config`.
    #[arg(value_name = "PLANFILE", conflicts_with = "file", value_parser = super::native_path)]
    plan: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long)]
    auto_approve: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
    /// How many hosts to work on at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    parallelism: u16,
    /// Also make the changes that rely on a Windows fact the host contradicts (the plan's
    /// "the host contradicts ..." warnings), which apply otherwise refuses.
    #[arg(long)]
    accept_surprises: bool,
}

impl ApplyArgs {
    pub fn json(&self) -> bool {
        self.json
    }
}

pub fn run(args: ApplyArgs) -> Result<ExitCode, CliError> {
    let parallelism = usize::from(args.parallelism);
    let prepared = match &args.plan {
        Some(file) => from_plan_file(file, parallelism, &args)?,
        None => from_config(&args, parallelism)?,
    };
    if !prepared.plan.has_changes() && prepared.unplanned.is_empty() {
        if args.json {
            output::emit(&output::json(&ApplyOutput::new(&[])))?;
        } else if args.plan.is_some() {
            say!("The plan has no changes; nothing to apply.");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let names: Vec<String> = prepared
        .plan
        .hosts
        .iter()
        .filter(|h| !h.changes.is_empty())
        .map(|h| h.name.clone())
        .collect();
    let progress = Progress::new("applying", &names);
    let results = app::execute(
        &prepared.plan,
        &prepared.unplanned,
        &prepared.entries,
        parallelism,
        &progress,
    );
    progress.finish();
    report(&results, args.json)
}

/// What an apply run works from: the plan, the entries that could not be planned (with why),
/// the opened entries, and the locks held on them until the run ends.
struct Prepared {
    plan: KmsPlan,
    unplanned: Vec<(String, HostFailure)>,
    entries: Vec<Entry>,
    _locks: Vec<LockGuard>,
}

fn from_config(args: &ApplyArgs, parallelism: usize) -> Result<Prepared, CliError> {
    let config = session::load_config(&args.config.file)?;
    let selection = app::select(&config, &[])?;
    let opened = app::open(&config, &selection, &session::connect()?);
    let locked = app::lock_each(opened.entries, parallelism)?;
    let progress = Progress::new("planning", &selection.names());
    let mut planned = app::plan(&config, &locked.entries, parallelism, &progress);
    progress.finish();
    planned.failures.extend(opened.failures);
    planned.failures.extend(locked.failures);
    let mut text = String::new();
    render::plan(
        &mut text,
        &planned.plan,
        &config.dir,
        &planned.failures,
        Style::stdout(),
    );
    if args.json {
        // the plan is not printed, but a lab host this run created is still said
        let created: Vec<(String, String)> = planned
            .plan
            .hosts
            .iter()
            .filter(|h| h.created)
            .filter_map(|h| h.notices.first().map(|n| (h.name.clone(), n.clone())))
            .collect();
        session::report_created(&created, true);
    } else {
        output::emit_text(&text)?;
    }
    refuse_surprises(&planned.plan, args.accept_surprises)?;
    // a host that could not be planned (unreachable, a secret missing) fails, and so do the
    // hosts that depend on it; the other hosts are applied
    if planned.plan.has_changes() && !args.auto_approve {
        confirm()?;
    }
    Ok(Prepared {
        plan: planned.plan,
        unplanned: planned.failures,
        entries: locked.entries,
        _locks: locked.guards,
    })
}

fn from_plan_file(
    file: &std::path::Path,
    parallelism: usize,
    args: &ApplyArgs,
) -> Result<Prepared, CliError> {
    let json = args.json;
    let (plan, seal) = app::load_plan(file, session::plan_key()?.as_ref())?;
    let verified = format!("{}: verified", session::seal_line(&seal));
    if json {
        note!("{verified}");
    } else {
        say!("{verified}");
    }
    let entries = app::open_plan(&plan, &session::connect()?)?;
    let locks = app::lock_all(&entries)?;
    app::check_fresh(&plan, &entries, parallelism)?;
    refuse_surprises(&plan, args.accept_surprises)?;
    Ok(Prepared {
        plan,
        unplanned: Vec::new(),
        entries,
        _locks: locks,
    })
}

/// Refuses the whole run, before anything changes, when a planned change relies on a Windows
/// fact its host contradicts, unless the user accepts the surprises.
fn refuse_surprises(plan: &KmsPlan, accepted: bool) -> Result<(), CliError> {
    let refused = kmsconf_app::surprises::refusals(plan);
    if refused.is_empty() {
        return Ok(());
    }
    let each: Vec<String> = refused
        .iter()
        .map(|r| {
            format!(
                "host `{}`: `{}` relies on `{}`, which the host contradicts",
                r.host, r.address, r.surprise.fact
            )
        })
        .collect();
    if accepted {
        note!(
            "note: `--accept-surprises`: applying {} change{} that rely on what the host contradicts ({})",
            refused.len(),
            if refused.len() == 1 { "" } else { "s" },
            each.join("; ")
        );
        return Ok(());
    }
    Err(CliError::Message(format!(
        "refusing to apply: {}; nothing was changed. `kmsconf plan` shows what each host showed against kmsconf's table; record a read-only plan for a bug report (`KMSCONF_RECORD=DIR kmsconf plan`), or apply with `--accept-surprises` to make these changes anyway",
        each.join("; ")
    )))
}

fn confirm() -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Message(
            "refusing to apply without `--auto-approve`: standard input is not a terminal to confirm on".into(),
        ));
    }
    print!("\nApply these changes? Only `yes` is accepted: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::Message(format!("cannot read the answer: {e}")))?;
    if answer.trim() != "yes" {
        return Err(CliError::Message(
            "apply cancelled; nothing was changed".into(),
        ));
    }
    Ok(())
}

fn report(results: &[(String, HostResult)], json: bool) -> Result<ExitCode, CliError> {
    let summary = ApplySummary::of(results);
    if json {
        output::emit(&output::json(&ApplyOutput::new(results)))?;
    } else {
        let ApplySummary {
            applied,
            failed,
            skipped,
            pending,
            hosts_failed: host_errors,
        } = summary;
        let style = Style::stdout();
        let mut out = String::from("\n");
        for (name, r) in results {
            render::host_run(&mut out, name, r, style);
        }
        out.push_str(&format!(
            "\nApply: {applied} applied, {failed} failed, {skipped} skipped, {pending} pending, {host_errors} host{} not reached.\n",
            if host_errors == 1 { "" } else { "s" }
        ));
        if pending > 0 {
            out.push_str("Pending phone activations: call the activation line with the installation ID shown, set `confirmation_id`, then apply again.\n");
        }
        if failed + skipped + host_errors > 0 {
            out.push_str("Not everything converged: fix the failures above and run apply again; what was applied stays applied.\n");
        }
        output::emit_text(&out)?;
    }
    Ok(if summary.converged() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
