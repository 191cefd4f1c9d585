//! What plan and apply share: loading the config (warnings to stderr), opening and locking
//! targets, and discovering and planning hosts, and the DNS server of `[dns]` (the plan entry
//! `dns`), concurrently.

use std::path::Path;

use kmsconf_engine::apply::{run_scheduled, Job};
use kmsconf_engine::config::{Config, HostConfig, TargetSpec, DNS_PLAN_HOST};
use kmsconf_engine::lock::{LockGuard, LockHolder};
use kmsconf_providers::targets::{self, DynTarget};
use kmsconf_providers::{dns, planner, KmsHostPlan, KmsPlan};

use super::progress::Progress;
use super::render::Style;
use super::CliError;

/// Loads and validates the config; prints its warnings to stderr.
pub fn load_config(path: &Path) -> Result<Config, CliError> {
    let config = Config::load(path)?;
    let style = Style::stderr();
    for w in &config.warnings {
        note!("{}", style.yellow(&w.to_string()));
    }
    Ok(config)
}

/// How to reach real hosts, from `KMSCONF_SSH` and `KMSCONF_TIMEOUT`.
pub fn connect() -> Result<targets::Connect, CliError> {
    let mut connect = targets::Connect::default();
    if let Some(cmd) = std::env::var(super::env::SSH)
        .ok()
        .filter(|c| !c.trim().is_empty())
    {
        connect.ssh_command = cmd.split_whitespace().map(String::from).collect();
    }
    if let Ok(text) = std::env::var(super::env::TIMEOUT) {
        let seconds: u64 = text.trim().parse().ok().filter(|s| *s > 0).ok_or_else(|| {
            CliError::Message(format!(
                "`{}` = `{text}` is not a number of seconds",
                super::env::TIMEOUT
            ))
        })?;
        connect.timeout = std::time::Duration::from_secs(seconds);
        connect.connect_timeout = connect.connect_timeout.min(connect.timeout);
    }
    Ok(connect)
}

/// Whether `--host` (all when none) selects the DNS server of `[dns]`, the entry `dns`.
pub fn selects_dns(config: &Config, only: &[String]) -> bool {
    config.dns.is_some() && (only.is_empty() || only.iter().any(|n| n == DNS_PLAN_HOST))
}

/// The hosts named by `--host` (all when none), in convergence order; `dns` names the DNS
/// server (see [`selects_dns`]), not a host.
pub fn select<'c>(config: &'c Config, only: &[String]) -> Result<Vec<&'c HostConfig>, CliError> {
    let has_dns = config.dns.is_some();
    for name in only {
        let known_entry = config.hosts.contains_key(name) || (has_dns && name == DNS_PLAN_HOST);
        if !known_entry {
            let mut known: Vec<&str> = config.hosts.keys().map(String::as_str).collect();
            if has_dns {
                known.push(DNS_PLAN_HOST);
            }
            return Err(CliError::Message(format!(
                "`--host {name}`: no such host in `{}` (hosts: {})",
                config.path.display(),
                known.join(", ")
            )));
        }
    }
    Ok(config
        .host_order()?
        .iter()
        .filter(|n| only.is_empty() || only.contains(n))
        .filter_map(|n| config.hosts.get(n))
        .collect())
}

/// A host's target, opened (which does not contact the host).
pub struct Opened {
    pub name: String,
    pub target: Box<DynTarget>,
}

/// Hosts whose targets opened, and (host, message) for those that did not.
pub type OpenedHosts<'c> = (Vec<(&'c HostConfig, Opened)>, Vec<(String, String)>);

/// Opens each host's target; those that cannot be opened come back as (host, message).
pub fn open_each<'c>(hosts: &[&'c HostConfig], connect: &targets::Connect) -> OpenedHosts<'c> {
    let mut opened = Vec::new();
    let mut failures = Vec::new();
    for host in hosts {
        match open(&host.name, &host.target, connect) {
            Ok(o) => opened.push((*host, o)),
            Err(e) => failures.push((host.name.clone(), e.to_string())),
        }
    }
    (opened, failures)
}

pub fn open(name: &str, spec: &TargetSpec, connect: &targets::Connect) -> Result<Opened, CliError> {
    let target = targets::open(name, spec, connect)?;
    Ok(Opened {
        name: name.to_string(),
        target,
    })
}

/// Takes every host's apply lock, or none: the first host already locked is an error naming
/// its holder.
pub fn lock_all<'a>(
    opened: impl IntoIterator<Item = &'a Opened>,
) -> Result<Vec<LockGuard>, CliError> {
    let holder = LockHolder::current("apply");
    tracing::debug!(lock_id = %holder.id, "taking apply locks");
    opened
        .into_iter()
        .map(|o| Ok(o.target.lock(&holder)?))
        .collect()
}

/// Hosts whose lock was taken, the guards, and (host, message) for hosts that could not be
/// reached to take it.
pub type LockedHosts<'c> = (
    Vec<(&'c HostConfig, Opened)>,
    Vec<LockGuard>,
    Vec<(String, String)>,
);

/// Takes each host's apply lock, `parallelism` at a time. A host another run holds stops the
/// whole run (an error naming the holder; locks taken so far are released); a host that cannot
/// be reached only fails itself, so the rest of the fleet goes on.
pub fn lock_each(
    opened: Vec<(&HostConfig, Opened)>,
    parallelism: usize,
) -> Result<LockedHosts<'_>, CliError> {
    let holder = LockHolder::current("apply");
    tracing::debug!(lock_id = %holder.id, "taking apply locks");
    let jobs = opened
        .into_iter()
        .map(|(h, o)| Job {
            name: h.name.clone(),
            after: Vec::new(),
            input: (h, o),
        })
        .collect();
    let results = run_scheduled(
        jobs,
        parallelism,
        |_, (host, opened): (&HostConfig, Opened)| {
            let r = opened.target.lock(&holder);
            (Some((host, opened, r)), true)
        },
        |_, _| None,
    );
    let (mut locked, mut guards, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    let mut held_elsewhere = None;
    for (host, opened, r) in results.into_iter().filter_map(|(_, r)| r) {
        match r {
            Ok(guard) => {
                guards.push(guard);
                locked.push((host, opened));
            }
            Err(e @ kmsconf_providers::Error::Locked { .. }) => {
                held_elsewhere.get_or_insert(e);
            }
            Err(e) => failures.push((host.name.clone(), e.to_string())),
        }
    }
    match held_elsewhere {
        Some(e) => Err(e.into()),
        None => Ok((locked, guards, failures)),
    }
}

/// Says which lab hosts this command created (their state file did not exist): with the human
/// output on stdout before it, with `--json` on stderr so stdout stays one JSON document.
pub fn report_created(created: &[(String, String)], json: bool) {
    let style = if json {
        Style::stderr()
    } else {
        Style::stdout()
    };
    for (host, notice) in created {
        let line = style.yellow(&format!("note: host `{host}`: {notice}"));
        if json {
            note!("{line}");
        } else {
            say!("{line}");
        }
    }
    if !created.is_empty() && !json {
        say!();
    }
}

/// A plan and the hosts that could not be planned (unreachable, missing secrets, ...).
pub struct Planned {
    pub plan: KmsPlan,
    pub failures: Vec<(String, String)>,
}

/// What one planning job discovers: a host through its target, or the DNS server.
#[derive(Clone, Copy)]
enum Entry<'a> {
    Host(&'a HostConfig, &'a DynTarget),
    Dns,
}

/// Discovers and plans the hosts, `parallelism` at a time: one round trip per host; with `dns`,
/// also the DNS server of `[dns]` (one set of queries), as the entry `dns`.
pub fn plan_hosts(
    config: &Config,
    hosts: &[(&HostConfig, Opened)],
    dns: bool,
    parallelism: usize,
) -> Planned {
    let dns = dns && config.dns.is_some();
    let mut names: Vec<String> = hosts.iter().map(|(h, _)| h.name.clone()).collect();
    if dns {
        names.push(DNS_PLAN_HOST.to_string());
    }
    let progress = Progress::new("planning", &names);
    let mut jobs: Vec<Job<Entry>> = hosts
        .iter()
        .map(|(h, o)| Job {
            name: h.name.clone(),
            after: Vec::new(),
            input: Entry::Host(h, o.target.as_ref()),
        })
        .collect();
    if dns {
        jobs.push(Job {
            name: DNS_PLAN_HOST.to_string(),
            after: Vec::new(),
            input: Entry::Dns,
        });
    }
    let results = run_scheduled(
        jobs,
        parallelism,
        |name, entry| {
            progress.update(name, "discovering");
            let r = match entry {
                Entry::Host(host, target) => plan_one(host, target),
                Entry::Dns => plan_dns(config),
            };
            match &r {
                Ok(p) if p.changes.is_empty() => progress.done(name, "no changes"),
                Ok(p) => progress.done(
                    name,
                    &format!(
                        "{} change{}",
                        p.changes.len(),
                        if p.changes.len() == 1 { "" } else { "s" }
                    ),
                ),
                Err(_) => progress.done(name, "cannot plan"),
            }
            let ok = r.is_ok();
            (r, ok)
        },
        |_, _| Err("not planned".to_string()),
    );
    progress.finish();
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
    Planned { plan, failures }
}

fn plan_dns(config: &Config) -> Result<KmsHostPlan, String> {
    let _span = tracing::info_span!("plan", host = DNS_PLAN_HOST).entered();
    let Some(cfg) = &config.dns else {
        return Err("no `[dns]` table".into());
    };
    dns::discover_and_plan(cfg, config).map_err(|e| e.to_string())
}

fn plan_one(host: &HostConfig, target: &DynTarget) -> Result<KmsHostPlan, String> {
    let _span = tracing::info_span!("plan", host = %host.name).entered();
    let discovery = target.discover().map_err(|e| e.to_string())?;
    tracing::debug!(host = %host.name, created = discovery.created, "discovered");
    planner::plan_host(host, discovery).map_err(|e| match e {
        // the report already names the host
        kmsconf_providers::Error::Plan { message, .. } => message,
        other => other.to_string(),
    })
}

/// Runs `f` on each selected host (all when `only` is empty), `parallelism` at a time, and
/// returns the results in host order. For read-only commands (status, doctor): no apply lock.
pub fn each_host<R: Send>(
    config: &Config,
    only: &[String],
    parallelism: usize,
    f: impl Fn(&HostConfig) -> R + Sync,
) -> Result<Vec<R>, CliError> {
    let jobs: Vec<Job<&HostConfig>> = select(config, only)?
        .into_iter()
        .map(|h| Job {
            name: h.name.clone(),
            after: Vec::new(),
            input: h,
        })
        .collect();
    let results = run_scheduled(
        jobs,
        parallelism,
        |_, host| (Some(f(host)), true),
        |_, _| None,
    );
    Ok(results.into_iter().filter_map(|(_, r)| r).collect())
}
