//! A run's work with its plan entries: choosing them from the config, opening their targets,
//! taking their apply locks, discovering and planning them, checking that a saved plan is still
//! current, and executing a plan, `parallelism` entries at a time through the engine's scheduler.
//!
//! The DNS server of `[dns]` is the entry `dns`: a target like the hosts, with a no-op lock.
//! Nothing here prints; progress goes to a [`Progress`] the caller supplies.

use std::collections::HashMap;
use std::path::Path;

use kmsconf_engine::apply::{ChangeReport, ChangeStatus};
use kmsconf_engine::error::IntegrityError;
use kmsconf_engine::graph::Dag;
use kmsconf_engine::lock::{LockGuard, LockHolder};
use kmsconf_engine::plan::Seal;
use kmsconf_engine::schedule::schedule;
use kmsconf_engine::secret::Secret;
use kmsconf_engine::target::Discovery;
use kmsconf_model::config::{Config, HostConfig, TargetSpec, AD_PLAN_HOST, DNS_PLAN_HOST};
use kmsconf_model::state::HostState;
use kmsconf_model::{EntryState, KmsHostPlan, KmsPlan, PlanOp};
use kmsconf_providers::{adba, dns, registry, shown};
use kmsconf_targets::{Connect, DynTarget};

use crate::error::Stale;
use crate::failure::{self, HostFailure};
use crate::{execute, Error, KmsHostRun};

/// Where a long run reports what each entry is doing (a live line per host on a terminal).
pub trait Progress: Sync {
    fn update(&self, entry: &str, what: &str);
    fn done(&self, entry: &str, what: &str);
}

/// Progress nobody watches.
pub struct Quiet;

impl Progress for Quiet {
    fn update(&self, _: &str, _: &str) {}
    fn done(&self, _: &str, _: &str) {}
}

/// An entry of a run with its target opened (which does not contact it).
pub struct Entry {
    pub name: String,
    pub target: Box<DynTarget>,
}

/// The entries `--host` selected from a config: its hosts in convergence order, and whether the
/// DNS server (the entry `dns`) is one of them.
pub struct Selection<'c> {
    pub hosts: Vec<&'c HostConfig>,
    pub dns: bool,
    /// Whether the directory of `[active_directory]` (the entry `active_directory`) is one.
    pub active_directory: bool,
}

impl Selection<'_> {
    /// The entry names, hosts first, then `dns`.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.hosts.iter().map(|h| h.name.clone()).collect();
        if self.dns {
            names.push(DNS_PLAN_HOST.to_string());
        }
        if self.active_directory {
            names.push(AD_PLAN_HOST.to_string());
        }
        names
    }
}

/// Entries whose targets opened, and those that could not be opened, with why.
pub struct Opened {
    pub entries: Vec<Entry>,
    pub failures: Vec<(String, HostFailure)>,
}

/// Entries whose apply lock was taken, the guards that hold the locks, and the entries that
/// could not be reached to take it.
pub struct Locked {
    pub entries: Vec<Entry>,
    pub guards: Vec<LockGuard>,
    pub failures: Vec<(String, HostFailure)>,
}

/// A plan and the entries that could not be planned (unreachable, a missing secret, ...).
pub struct Planned {
    pub plan: KmsPlan,
    pub failures: Vec<(String, HostFailure)>,
}

/// What became of one entry of an apply run.
pub type HostResult = Result<KmsHostRun, HostFailure>;

/// The entries named by `--host` (all when `only` is empty); `dns` names the DNS server.
pub fn select<'c>(config: &'c Config, only: &[String]) -> Result<Selection<'c>, Error> {
    let has_dns = config.dns.is_some();
    let has_ad = config.active_directory.is_some();
    for name in only {
        let known_entry = config.hosts.contains_key(name)
            || (has_dns && name == DNS_PLAN_HOST)
            || (has_ad && name == AD_PLAN_HOST);
        if !known_entry {
            let mut known: Vec<&str> = config.hosts.keys().map(String::as_str).collect();
            if has_dns {
                known.push(DNS_PLAN_HOST);
            }
            if has_ad {
                known.push(AD_PLAN_HOST);
            }
            return Err(Error::UnknownHost {
                name: name.clone(),
                config: config.path.clone(),
                known: known.join(", "),
            });
        }
    }
    let hosts = config
        .host_order()?
        .iter()
        .filter(|n| only.is_empty() || only.contains(n))
        .filter_map(|n| config.hosts.get(n))
        .collect();
    let dns = has_dns && (only.is_empty() || only.iter().any(|n| n == DNS_PLAN_HOST));
    let active_directory = has_ad && (only.is_empty() || only.iter().any(|n| n == AD_PLAN_HOST));
    Ok(Selection {
        hosts,
        dns,
        active_directory,
    })
}

/// Opens each selected entry's target; the DNS server reads the config's zones and, with
/// `check_targets`, the published hosts' addresses.
pub fn open(config: &Config, selection: &Selection, connect: &Connect) -> Opened {
    let mut entries = Vec::new();
    let mut failures = Vec::new();
    for host in &selection.hosts {
        match kmsconf_targets::open(&host.name, &host.target, connect) {
            Ok(target) => entries.push(Entry {
                name: host.name.clone(),
                target,
            }),
            Err(e) => failures.push((host.name.clone(), failure::of_target(e))),
        }
    }
    if let Some(cfg) = config.dns.as_ref().filter(|_| selection.dns) {
        let names = dns::published_targets(cfg, config);
        entries.push(Entry {
            name: DNS_PLAN_HOST.to_string(),
            target: kmsconf_targets::open_dns(&cfg.server, cfg.zones.clone(), names),
        });
    }
    if let Some(cfg) = config
        .active_directory
        .as_ref()
        .filter(|_| selection.active_directory)
    {
        match kmsconf_targets::open(AD_PLAN_HOST, &ad_target(config, cfg), connect) {
            Ok(target) => entries.push(Entry {
                name: AD_PLAN_HOST.to_string(),
                target,
            }),
            Err(e) => failures.push((AD_PLAN_HOST.to_string(), failure::of_target(e))),
        }
    }
    Opened { entries, failures }
}

/// The plan entry's target of `[active_directory]`; without a server, the domain controller is
/// found through `[dns] server` when the config declares one.
fn ad_target(config: &Config, cfg: &kmsconf_model::config::AdConfig) -> TargetSpec {
    let dns = config.dns.as_ref().map(|d| d.server.as_str());
    let bind = kmsconf_targets::ldap::Bind::of(cfg, dns);
    TargetSpec::ActiveDirectory {
        server: bind.server,
        dns: bind.dns,
        principal: bind.principal,
        keytab: bind.keytab,
    }
}

/// Opens a KMS host's target and discovers it, for the read-only commands (status, doctor).
pub fn discover_host(
    host: &HostConfig,
    connect: &Connect,
) -> Result<Discovery<HostState>, HostFailure> {
    let target = kmsconf_targets::open(&host.name, &host.target, connect);
    let discovery = target
        .and_then(|t| t.discover())
        .map_err(failure::of_target)?;
    let state = discovery
        .state
        .into_host()
        .map_err(|reason| HostFailure::plan(reason.to_string()))?;
    Ok(Discovery {
        state,
        created: discovery.created,
    })
}

/// `(host, notice)` when `discovery` created the host (a lab host on first use), for the
/// read-only commands to show after their report.
pub fn created_notice(
    host: &HostConfig,
    discovery: &Result<Discovery<HostState>, HostFailure>,
) -> Option<(String, String)> {
    match discovery {
        Ok(d) if d.created => Some((host.name.clone(), registry::created_notice(&d.state))),
        _ => None,
    }
}

/// Reads a plan file for `show` or `apply`: its digest (with `key`, its HMAC) vouches that it is
/// the file that was saved, and each change must show what its operation does from the state
/// observed with the plan ([`shown::check`]), which a recomputed digest cannot fake.
pub fn load_plan(path: &Path, key: Option<&Secret>) -> Result<(KmsPlan, Seal), Error> {
    let (plan, seal) = KmsPlan::load(path, key)?;
    let refused = |e: String| kmsconf_engine::Error::PlanIntegrity {
        path: path.to_path_buf(),
        reason: IntegrityError::Content(e),
    };
    for host in &plan.hosts {
        shown::check(host).map_err(|e| refused(e.to_string()))?;
        // what a host reported is checked when a plan is read back, as when it was discovered
        if let EntryState::KmsHost(state) = &host.observed {
            state
                .check_protocol()
                .map_err(|e| refused(format!("host `{}`: {e}", host.name)))?;
        }
    }
    Ok((plan, seal))
}

/// Saves `plan` for `apply PLANFILE`, sealed with its digest (and with `key` its HMAC); refused
/// for a plan that needs a secret written in the config, which a plan file never holds.
pub fn save_plan(plan: &KmsPlan, path: &Path, key: Option<&Secret>) -> Result<Seal, Error> {
    let literal = plan
        .hosts
        .iter()
        .flat_map(|h| &h.changes)
        .find_map(|c| c.operation.literal_secret());
    if let Some(secret) = literal {
        return Err(Error::LiteralSecret {
            declared_at: secret.declared_at.clone(),
        });
    }
    Ok(plan.save(path, key)?)
}

/// Opens the entries of a saved plan: each as the plan recorded its target, the DNS server
/// reading the zones and names the plan saw.
pub fn open_plan(plan: &KmsPlan, connect: &Connect) -> Result<Vec<Entry>, Error> {
    plan.hosts
        .iter()
        .map(|h| {
            let target = match (&h.target, &h.observed) {
                (TargetSpec::Dns { server }, EntryState::DnsServer(seen)) => {
                    let zones = seen.zones.keys().cloned().collect();
                    let names = seen.targets.keys().cloned().collect();
                    kmsconf_targets::open_dns(server, zones, names)
                }
                (spec, _) => kmsconf_targets::open(&h.name, spec, connect)?,
            };
            Ok(Entry {
                name: h.name.clone(),
                target,
            })
        })
        .collect()
}

/// Takes every entry's apply lock, or none: the first entry locked by another run, or not
/// reachable, is an error (locks taken so far are released).
pub fn lock_all(entries: &[Entry]) -> Result<Vec<LockGuard>, Error> {
    let holder = LockHolder::current("apply")?;
    tracing::debug!(lock_id = %holder.id, "taking apply locks");
    entries
        .iter()
        .map(|e| Ok(e.target.lock(&holder)?))
        .collect()
}

/// Takes each entry's apply lock, `parallelism` at a time. An entry another run holds stops
/// the whole run (an error naming the holder; locks taken so far are released); an entry that
/// cannot be reached only fails itself, so the rest of the fleet goes on.
pub fn lock_each(entries: Vec<Entry>, parallelism: usize) -> Result<Locked, Error> {
    let holder = LockHolder::current("apply")?;
    tracing::debug!(lock_id = %holder.id, "taking apply locks");
    let inputs: Vec<(String, Entry)> = entries.into_iter().map(|e| (e.name.clone(), e)).collect();
    let results = schedule(
        &independent(&inputs),
        inputs,
        parallelism,
        |_, entry: Entry| {
            let r = entry.target.lock(&holder);
            (Some((entry, r)), true)
        },
        |_, _| None,
    );
    let mut locked = Locked {
        entries: Vec::new(),
        guards: Vec::new(),
        failures: Vec::new(),
    };
    let mut held_elsewhere = None;
    for (entry, r) in results.into_iter().filter_map(|(_, r)| r) {
        match r {
            Ok(guard) => {
                locked.guards.push(guard);
                locked.entries.push(entry);
            }
            Err(e @ kmsconf_targets::Error::Locked { .. }) => {
                held_elsewhere.get_or_insert(e);
            }
            Err(e) => locked.failures.push((entry.name, failure::of_target(e))),
        }
    }
    match held_elsewhere {
        Some(e) => Err(e.into()),
        None => Ok(locked),
    }
}

/// A graph of entries that do not wait for each other.
fn independent<T>(inputs: &[(String, T)]) -> Dag {
    Dag::from_deps(inputs.iter().map(|(n, _)| (n.clone(), Vec::new()))).unwrap_or_default()
}

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

/// Each entry's target by its name: found in one lookup a host, not a search of the fleet.
fn by_name(entries: &[Entry]) -> HashMap<&str, &DynTarget> {
    entries
        .iter()
        .map(|e| (e.name.as_str(), e.target.as_ref()))
        .collect()
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

/// Runs `f` on each selected host (all when `only` is empty), `parallelism` at a time, and
/// returns the results in host order. For read-only commands (status, doctor): no apply lock.
pub fn each_host<R: Send>(
    config: &Config,
    only: &[String],
    parallelism: usize,
    f: impl Fn(&HostConfig) -> R + Sync,
) -> Result<Vec<R>, Error> {
    let selection = select(config, only)?;
    let inputs: Vec<(String, &HostConfig)> = selection
        .hosts
        .into_iter()
        .map(|h| (h.name.clone(), h))
        .collect();
    let results = schedule(
        &independent(&inputs),
        inputs,
        parallelism,
        |_, host| (Some(f(host)), true),
        |_, _| None,
    );
    Ok(results.into_iter().filter_map(|(_, r)| r).collect())
}
