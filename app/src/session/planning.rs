//! Planning a run's entries: discovering each, `parallelism` at a time, planning it by what it
//! turned out to be (a KMS host, the DNS server, the directory), and annotating the whole plan.

use kmsconf_engine::schedule::schedule;
use kmsconf_model::config::{Config, TargetSpec, DNS_PLAN_HOST};
use kmsconf_model::{EntryState, KmsHostPlan, KmsPlan, PlanOp};
use kmsconf_providers::{adba, dns, registry};

use super::{ad_target, independent, Entry, Planned, Progress};
use crate::failure::{self, HostFailure};

/// Discovers and plans each entry, `parallelism` at a time: one round trip per host, one set
/// of queries for the DNS server.
pub fn plan(
    config: &Config,
    entries: &[Entry],
    parallelism: usize,
    progress: &dyn Progress,
) -> Planned {
    let inputs: Vec<(String, &Entry)> = entries.iter().map(|e| (e.name.clone(), e)).collect();
    let results = schedule(
        &independent(&inputs),
        inputs,
        parallelism,
        |name, entry| {
            progress.update(name, "discovering");
            let r = plan_entry(config, entry);
            progress.done(name, &planned_summary(&r));
            let ok = r.is_ok();
            (r, ok)
        },
        |_, _| Err(HostFailure::skipped("not planned")),
    );
    let mut planned = Vec::new();
    let mut failures = Vec::new();
    for (name, r) in results {
        match r {
            Ok(h) => planned.push(h),
            Err(e) => failures.push((name, e)),
        }
    }
    let mut plan = KmsPlan::new(config.path.clone(), config.dir.clone(), planned);
    dns::annotate(&mut plan, config);
    adba::annotate(&mut plan, config);
    crate::installation_id::show(&mut plan, config, |name| {
        entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.target.as_ref())
    });
    hold_retirements(&mut plan, &mut failures, config);
    Planned { plan, failures }
}

/// A retired host waits for the DNS entry to remove its SRV records; when `[dns]` is declared
/// but its entry is not in the plan (the server did not answer at plan time, or it was not
/// selected), the retirement is not planned either, so clients are never sent to a host that
/// no longer serves them. Apply then fails it, as it does when DNS fails at apply time.
fn hold_retirements(
    plan: &mut KmsPlan,
    failures: &mut Vec<(String, HostFailure)>,
    config: &Config,
) {
    if config.dns.is_none() || plan.hosts.iter().any(|h| h.name == DNS_PLAN_HOST) {
        return;
    }
    let waits = |h: &KmsHostPlan| {
        !h.changes.is_empty() && config.hosts.get(&h.name).is_some_and(|c| c.is_retired())
    };
    let (held, kept): (Vec<KmsHostPlan>, Vec<KmsHostPlan>) =
        std::mem::take(&mut plan.hosts).into_iter().partition(waits);
    plan.hosts = kept;
    let why = if failures.iter().any(|(name, _)| name == DNS_PLAN_HOST) {
        "its retirement waits for the DNS entry `dns` to remove its SRV records, and `dns` could not be planned"
    } else {
        "its retirement waits for the DNS entry `dns` to remove its SRV records: plan `dns` with it (`--host dns`)"
    };
    failures.extend(
        held.into_iter()
            .map(|h| (h.name, HostFailure::skipped(why))),
    );
}

fn planned_summary(r: &Result<KmsHostPlan, HostFailure>) -> String {
    match r {
        Ok(p) if p.changes.is_empty() => "no changes".into(),
        Ok(p) => format!(
            "{} change{}",
            p.changes.len(),
            if p.changes.len() == 1 { "" } else { "s" }
        ),
        Err(_) => "cannot plan".into(),
    }
}

/// Discovers one entry and plans it by what it turned out to be: a KMS host against its
/// declared state, the DNS server against the records the published hosts need.
fn plan_entry(config: &Config, entry: &Entry) -> Result<KmsHostPlan, HostFailure> {
    let _span = tracing::info_span!("plan", host = %entry.name).entered();
    let discovery = entry.target.discover().map_err(failure::of_target)?;
    tracing::debug!(host = %entry.name, created = discovery.created, "discovered");
    match discovery.state {
        EntryState::KmsHost(state) => {
            let host = config.hosts.get(&entry.name).ok_or_else(|| {
                HostFailure::plan(format!("`{}` is not a host of the config", entry.name))
            })?;
            let discovery = kmsconf_engine::target::Discovery {
                state,
                created: discovery.created,
            };
            let mut plan = registry::plan_host(host, discovery).map_err(failure::of_plan)?;
            if matches!(host.target, TargetSpec::Lab { .. }) {
                plan.notices.extend(missing_lab_packs(&plan));
            }
            Ok(plan)
        }
        EntryState::DnsServer(state) => {
            let cfg = config
                .dns
                .as_ref()
                .ok_or_else(|| HostFailure::plan("the config has no `[dns]` table"))?;
            Ok(dns::plan_dns(cfg, config, state))
        }
        EntryState::ActiveDirectory(state) => {
            let cfg = config
                .active_directory
                .as_ref()
                .ok_or_else(|| HostFailure::plan("the config has no `[active_directory]` table"))?;
            Ok(adba::plan_ad(cfg, ad_target(config, cfg), state))
        }
    }
}

/// A lab host's license packs are files on this machine: one that is not there is said at plan
/// time, not found when apply installs it.
fn missing_lab_packs(plan: &KmsHostPlan) -> Vec<String> {
    plan.changes
        .iter()
        .filter_map(|c| match &c.operation {
            PlanOp::InstallLicensePack {
                product,
                source,
                path,
            } if !path.exists() => Some(format!(
                "license pack `{source}` of `{product}` does not exist (relative to the config file): apply will fail to install it"
            )),
            _ => None,
        })
        .collect()
}
