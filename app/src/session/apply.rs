//! Applying a plan: checking that a saved plan is still current on every entry, then executing
//! it in dependency order between entries, `parallelism` at a time.

use std::collections::HashMap;

use kmsconf_engine::apply::{ChangeReport, ChangeStatus};
use kmsconf_engine::graph::Dag;
use kmsconf_engine::schedule::schedule;
use kmsconf_model::{KmsHostPlan, KmsPlan};
use kmsconf_targets::DynTarget;

use super::{by_name, independent, Entry, HostResult, Progress};
use crate::error::Stale;
use crate::failure::{self, HostFailure};
use crate::{execute, Error, KmsHostRun};

/// Rediscovers every entry of a saved plan and reads the secrets its changes need, and refuses
/// the whole plan if any entry changed or any secret no longer fits: a stale plan changes
/// nothing, on any host.
pub fn check_fresh(plan: &KmsPlan, entries: &[Entry], parallelism: usize) -> Result<(), Error> {
    let inputs: Vec<(String, &KmsHostPlan)> =
        plan.hosts.iter().map(|h| (h.name.clone(), h)).collect();
    let targets = by_name(entries);
    let results = schedule(
        &independent(&inputs),
        inputs,
        parallelism,
        |name, host: &KmsHostPlan| {
            let r = match targets.get(name) {
                Some(t) => t
                    .discover()
                    .map(|d| {
                        let mut diffs = execute::staleness(&host.observed, &d.state);
                        let secrets = execute::secret_staleness(host);
                        diffs.extend(secrets.iter().map(ToString::to_string));
                        diffs
                    })
                    .map_err(failure::of_target),
                None => Err(HostFailure::plan("no target")),
            };
            (r, true)
        },
        |_, _| Err(HostFailure::skipped("not checked")),
    );
    let mut problems = Vec::new();
    for (host, r) in results {
        match r {
            Ok(diffs) if diffs.is_empty() => {}
            Ok(diffs) => problems.push(Stale::Changed { host, diffs }),
            Err(reason) => problems.push(Stale::Unread { host, reason }),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::StalePlan(problems))
    }
}

/// What one apply job does: apply a planned entry, or fail one that could not be planned.
enum Work<'a> {
    Planned(&'a KmsHostPlan),
    Unplanned(&'a HostFailure),
}

/// Applies every entry of `plan` in dependency order between entries, `parallelism` at a
/// time; an entry whose prerequisite did not converge is skipped. Results come in plan order,
/// then the entries that could not be planned.
pub fn execute(
    plan: &KmsPlan,
    unplanned: &[(String, HostFailure)],
    entries: &[Entry],
    parallelism: usize,
    progress: &dyn Progress,
) -> Vec<(String, HostResult)> {
    let inputs: Vec<(String, Work)> = plan
        .hosts
        .iter()
        .map(|h| (h.name.clone(), Work::Planned(h)))
        .chain(
            unplanned
                .iter()
                .map(|(n, e)| (n.clone(), Work::Unplanned(e))),
        )
        .collect();
    let deps = plan
        .hosts
        .iter()
        .map(|h| (h.name.clone(), h.depends_on.clone()))
        .chain(unplanned.iter().map(|(n, _)| (n.clone(), Vec::new())));
    let dag = Dag::from_deps(deps).unwrap_or_default();
    let targets = by_name(entries);
    let hosts: HashMap<&str, &KmsHostPlan> =
        plan.hosts.iter().map(|h| (h.name.as_str(), h)).collect();
    schedule(
        &dag,
        inputs,
        parallelism,
        |name, work| match work {
            Work::Unplanned(e) => (Err(e.clone().cannot_plan()), false),
            Work::Planned(host) => apply_one(name, host, targets.get(name).copied(), progress),
        },
        |name, prerequisite| {
            progress.done(name, "skipped");
            Ok(skipped_host(hosts.get(name).copied(), prerequisite))
        },
    )
}

fn apply_one(
    name: &str,
    host: &KmsHostPlan,
    target: Option<&DynTarget>,
    progress: &dyn Progress,
) -> (HostResult, bool) {
    let _span = tracing::info_span!("apply", host = %name).entered();
    if host.changes.is_empty() {
        return (Ok(KmsHostRun::default()), true);
    }
    let n = host.changes.len();
    progress.update(
        name,
        &format!("applying {n} change{}", if n == 1 { "" } else { "s" }),
    );
    let r = match target {
        Some(t) => execute::apply_entry(t, host).map_err(HostFailure::from),
        None => Err(HostFailure::plan("no target was opened for it")),
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
            Err(e) => format!("failed: {}", e.message),
        },
    );
    (r, ok)
}

/// An entry not applied because an entry it depends on did not converge: each of its changes
/// is reported (and counted) as skipped.
fn skipped_host(host: Option<&KmsHostPlan>, prerequisite: &str) -> KmsHostRun {
    let reason = format!("host `{prerequisite}` (a dependency) did not converge");
    let changes = host
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
    KmsHostRun {
        changes,
        batches: 0,
        stopped: None,
    }
}
