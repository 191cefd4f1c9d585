//! `kmsconf apply`: converge hosts from the config (lock, plan, show, ask, apply) or from a saved
//! plan file (lock, rediscover and refuse if stale, apply). Every host's apply lock is held from
//! before discovery to the end of the run.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use kmsconf_engine::apply::{run_scheduled, ChangeReport, ChangeStatus, HostRun, Job};
use kmsconf_providers::targets::DynTarget;
use kmsconf_providers::{execute, KmsHostPlan, KmsPlan, Observed};

use super::progress::Progress;
use super::render::{self, Style};
use super::session::{self, Opened};
use super::{output, CliError, ConfigArg};

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// A plan saved by `kmsconf plan --out`; applied as reviewed, or refused when stale.
    #[arg(value_name = "PLANFILE")]
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
}

pub fn run(args: ApplyArgs) -> Result<ExitCode, CliError> {
    let parallelism = usize::from(args.parallelism);
    let (plan, unplanned, opened, _locks) = match &args.plan {
        Some(file) => from_plan_file(file, parallelism)?,
        None => from_config(&args, parallelism)?,
    };
    if !plan.has_changes() && unplanned.is_empty() {
        if args.json {
            let doc = serde_json::json!({
                "format_version": 1,
                "hosts": [],
                "summary": { "applied": 0, "failed": 0, "skipped": 0, "pending": 0, "hosts_failed": 0 },
            });
            say!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        } else if args.plan.is_some() {
            say!("The plan has no changes; nothing to apply.");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let results = execute_plan(&plan, &unplanned, &opened, parallelism);
    report(&results, args.json)
}

/// The plan, the hosts that could not be planned (host, why), the opened targets and the locks.
type Prepared = (
    KmsPlan,
    Vec<(String, String)>,
    Vec<Opened>,
    Vec<kmsconf_engine::lock::LockGuard>,
);

fn from_config(args: &ApplyArgs, parallelism: usize) -> Result<Prepared, CliError> {
    let config = session::load_config(&args.config.file)?;
    let hosts = session::select(&config, &[])?;
    let (opened, unopened) = session::open_each(&hosts, &session::connect()?);
    let (opened, locks, unreached) = session::lock_each(opened, parallelism)?;
    let mut planned = session::plan_hosts(&config, &opened, true, parallelism);
    planned.failures.extend(unopened);
    planned.failures.extend(unreached);
    let text = render::plan(
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
        output::emit(&text)?;
    }
    // a host that could not be planned (unreachable, a secret missing) fails, and so do the
    // hosts that depend on it; the other hosts are applied
    if planned.plan.has_changes() && !args.auto_approve {
        confirm()?;
    }
    Ok((
        planned.plan,
        planned.failures,
        opened.into_iter().map(|(_, o)| o).collect(),
        locks,
    ))
}

fn from_plan_file(file: &std::path::Path, parallelism: usize) -> Result<Prepared, CliError> {
    let plan = KmsPlan::load(file)?;
    let connect = session::connect()?;
    // the DNS server entry has no target to open or lock: its UPDATE's prerequisite guards it
    let opened = plan
        .hosts
        .iter()
        .filter(|h| !h.observed.is_dns_server())
        .map(|h| session::open(&h.name, &h.target, &connect))
        .collect::<Result<Vec<_>, _>>()?;
    let locks = session::lock_all(&opened)?;
    check_fresh(&plan, &opened, parallelism)?;
    Ok((plan, Vec::new(), opened, locks))
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

fn target_of<'a>(opened: &'a [Opened], host: &str) -> Option<&'a DynTarget> {
    opened
        .iter()
        .find(|o| o.name == host)
        .map(|o| o.target.as_ref())
}

/// Rediscovers every host of a saved plan and refuses the whole plan if any host changed.
fn check_fresh(plan: &KmsPlan, opened: &[Opened], parallelism: usize) -> Result<(), CliError> {
    let jobs = plan
        .hosts
        .iter()
        .map(|h| Job {
            name: h.name.clone(),
            after: Vec::new(),
            input: h,
        })
        .collect();
    let results = run_scheduled(
        jobs,
        parallelism,
        |name, host: &KmsHostPlan| {
            let r = match target_of(opened, name) {
                _ if host.observed.is_dns_server() => {
                    execute::dns_drift(host).map_err(|e| e.to_string())
                }
                Some(t) => t
                    .discover()
                    .map(|d| execute::staleness(&host.observed, &Observed::KmsHost(d.state)))
                    .map_err(|e| e.to_string()),
                None => Err("no target".to_string()),
            };
            (r, true)
        },
        |_, _| Err(String::new()),
    );
    let mut problems = Vec::new();
    for (name, r) in results {
        match r {
            Ok(diffs) if diffs.is_empty() => {}
            Ok(diffs) => problems.push(format!(
                "host `{name}` changed since the plan was made:\n  {}",
                diffs.join("\n  ")
            )),
            Err(e) => problems.push(format!("host `{name}`: {e}")),
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(CliError::Message(format!(
        "the saved plan is stale; nothing was applied: make a new plan with `kmsconf plan --out`\n{}",
        problems.join("\n")
    )))
}

type HostResult = Result<HostRun, String>;

/// What one apply job does: apply a planned host, or fail a host that could not be planned.
#[derive(Clone, Copy)]
enum Work<'a> {
    Planned(&'a KmsHostPlan),
    Unplanned(&'a str),
}

fn execute_plan(
    plan: &KmsPlan,
    unplanned: &[(String, String)],
    opened: &[Opened],
    parallelism: usize,
) -> Vec<(String, HostResult)> {
    let names: Vec<String> = plan
        .hosts
        .iter()
        .filter(|h| !h.changes.is_empty())
        .map(|h| h.name.clone())
        .collect();
    let progress = Progress::new("applying", &names);
    let failed = unplanned.iter().map(|(name, e)| Job {
        name: name.clone(),
        after: Vec::new(),
        input: Work::Unplanned(e),
    });
    let jobs = failed
        .chain(plan.hosts.iter().map(|h| Job {
            name: h.name.clone(),
            after: h.depends_on.clone(),
            input: Work::Planned(h),
        }))
        .collect();
    let mut results = run_scheduled(
        jobs,
        parallelism,
        |name, work| match work {
            Work::Unplanned(e) => (Err(format!("cannot plan: {e}")), false),
            Work::Planned(host) => apply_one(name, host, opened, &progress),
        },
        |name, prerequisite| {
            progress.done(name, "skipped");
            Ok(skipped_host(plan, name, prerequisite))
        },
    );
    progress.finish();
    // in convergence order, as the plan shows the hosts, then those that could not be planned
    let unplanned_count = unplanned.len();
    results.rotate_left(unplanned_count);
    results
}

fn apply_one(
    name: &str,
    host: &KmsHostPlan,
    opened: &[Opened],
    progress: &Progress,
) -> (HostResult, bool) {
    let _span = tracing::info_span!("apply", host = %name).entered();
    if host.changes.is_empty() {
        return (Ok(HostRun::default()), true);
    }
    let n = host.changes.len();
    progress.update(
        name,
        &format!("applying {n} change{}", if n == 1 { "" } else { "s" }),
    );
    let r = match target_of(opened, name) {
        _ if host.observed.is_dns_server() => execute::apply_dns(host).map_err(|e| e.to_string()),
        Some(t) => execute::apply_host(t, host).map_err(|e| e.to_string()),
        None => Err("no target".to_string()),
    };
    let ok = r
        .as_ref()
        .is_ok_and(|run| run.failed() == 0 && run.skipped() == 0);
    progress.done(
        name,
        &match &r {
            Ok(run) => format!(
                "{} applied, {} failed, {} skipped, {} pending",
                run.applied(),
                run.failed(),
                run.skipped(),
                run.pending()
            ),
            Err(e) => format!("failed: {e}"),
        },
    );
    (r, ok)
}

/// A host not applied because a host it depends on did not converge: each of its changes is
/// reported (and counted) as skipped.
fn skipped_host(plan: &KmsPlan, name: &str, prerequisite: &str) -> HostRun {
    let reason = format!("host `{prerequisite}` (a dependency) did not converge");
    let changes = plan
        .hosts
        .iter()
        .find(|h| h.name == name)
        .map(|h| h.changes.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| ChangeReport {
            address: c.address.clone(),
            action: c.action,
            status: ChangeStatus::Skipped {
                reason: reason.clone(),
            },
        })
        .collect();
    HostRun {
        changes,
        batches: 0,
    }
}

fn report(results: &[(String, HostResult)], json: bool) -> Result<ExitCode, CliError> {
    let (mut applied, mut failed, mut skipped, mut pending, mut host_errors) = (0, 0, 0, 0, 0);
    for (_, r) in results {
        match r {
            Ok(run) => {
                applied += run.applied();
                failed += run.failed();
                skipped += run.skipped();
                pending += run.pending();
            }
            Err(_) => host_errors += 1,
        }
    }
    if json {
        let hosts: Vec<serde_json::Value> = results
            .iter()
            .map(|(name, r)| match r {
                Ok(run) => serde_json::json!({ "name": name, "changes": run.changes, "batches": run.batches }),
                Err(e) => serde_json::json!({ "name": name, "error": e }),
            })
            .collect();
        let doc = serde_json::json!({
            "format_version": 1,
            "hosts": hosts,
            "summary": { "applied": applied, "failed": failed, "skipped": skipped, "pending": pending, "hosts_failed": host_errors },
        });
        output::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        ))?;
    } else {
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
        output::emit(&out)?;
    }
    Ok(if failed + skipped + host_errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
