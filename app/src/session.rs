//! A run's work with its plan entries: choosing them from the config, opening their targets,
//! taking their apply locks, discovering and planning them, checking that a saved plan is still
//! current, and executing a plan, `parallelism` entries at a time through the engine's scheduler.
//!
//! The DNS server of `[dns]` is the entry `dns`: a target like the hosts, with a no-op lock.
//! Nothing here prints; progress goes to a [`Progress`] the caller supplies.
//!
//! This module holds the entries themselves (choosing and opening them, the read-only commands'
//! per-host loop); reading and saving plan files, locking, planning and applying are its
//! submodules, re-exported here.

mod apply;
mod lock;
mod plan_file;
mod planning;

use std::collections::HashMap;

use kmsconf_engine::graph::Dag;
use kmsconf_engine::lock::LockGuard;
use kmsconf_engine::schedule::schedule;
use kmsconf_engine::target::Discovery;
use kmsconf_model::config::{Config, HostConfig, TargetSpec, AD_PLAN_HOST, DNS_PLAN_HOST};
use kmsconf_model::state::HostState;
use kmsconf_model::KmsPlan;
use kmsconf_providers::{dns, registry};
use kmsconf_targets::{Connect, DynTarget};

use crate::failure::{self, HostFailure};
use crate::{Error, KmsHostRun};

pub use apply::{check_fresh, execute};
pub use lock::{lock_all, lock_each};
pub use plan_file::{load_plan, open_plan, save_plan};
pub use planning::plan;

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

/// A graph of entries that do not wait for each other.
fn independent<T>(inputs: &[(String, T)]) -> Dag {
    Dag::from_deps(inputs.iter().map(|(n, _)| (n.clone(), Vec::new()))).unwrap_or_default()
}

/// Each entry's target by its name: found in one lookup a host, not a search of the fleet.
fn by_name(entries: &[Entry]) -> HashMap<&str, &DynTarget> {
    entries
        .iter()
        .map(|e| (e.name.as_str(), e.target.as_ref()))
        .collect()
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
