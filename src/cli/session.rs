//! What plan and apply share: loading the config (warnings to stderr), and discovering and
//! planning the selected hosts, and the DNS server of `[dns]` (the plan entry `dns`),
//! concurrently.

use std::path::Path;

use kmsconf_engine::apply::{run_scheduled, Job};
use kmsconf_engine::config::{Config, HostConfig, DNS_PLAN_HOST};
use kmsconf_providers::{dns, planner, targets, KmsHostPlan, KmsPlan};

use super::render::Style;
use super::CliError;

/// Loads and validates the config; prints its warnings to stderr.
pub fn load_config(path: &Path) -> Result<Config, CliError> {
    let config = Config::load(path)?;
    let style = Style::stderr();
    for w in &config.warnings {
        eprintln!("{}", style.yellow(&w.to_string()));
    }
    Ok(config)
}

/// A plan and the hosts that could not be planned (unreachable, missing secrets, ...).
pub struct Planned {
    pub plan: KmsPlan,
    pub failures: Vec<(String, String)>,
}

/// What one planning job discovers.
#[derive(Clone, Copy)]
enum Entry<'a> {
    Host(&'a HostConfig),
    Dns,
}

/// Discovers the selected hosts (all when `only` is empty), `parallelism` at a time, and plans
/// each; the DNS server is one more entry, `dns`. One round trip per host, one set of queries
/// for the DNS server.
pub fn plan_hosts(
    config: &Config,
    only: &[String],
    parallelism: usize,
) -> Result<Planned, CliError> {
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
    let order = config.host_order()?;
    let selected = |n: &str| only.is_empty() || only.iter().any(|o| o == n);
    let mut jobs: Vec<Job<Entry>> = order
        .iter()
        .filter(|n| selected(n))
        .filter_map(|n| config.hosts.get(n))
        .map(|h| Job {
            name: h.name.clone(),
            after: Vec::new(),
            input: Entry::Host(h),
        })
        .collect();
    if has_dns && selected(DNS_PLAN_HOST) {
        jobs.push(Job {
            name: DNS_PLAN_HOST.to_string(),
            after: Vec::new(),
            input: Entry::Dns,
        });
    }
    let results = run_scheduled(
        jobs,
        parallelism,
        |_, entry| {
            let r = match entry {
                Entry::Host(host) => plan_one(host),
                Entry::Dns => plan_dns(config),
            };
            let ok = r.is_ok();
            (r, ok)
        },
        |_, _| Err("not planned".to_string()),
    );
    let mut hosts = Vec::new();
    let mut failures = Vec::new();
    for (name, r) in results {
        match r {
            Ok(h) => hosts.push(h),
            Err(e) => failures.push((name, e)),
        }
    }
    let mut plan = KmsPlan::new(config.path.clone(), hosts);
    dns::annotate(&mut plan, config);
    Ok(Planned { plan, failures })
}

fn plan_dns(config: &Config) -> Result<KmsHostPlan, String> {
    let _span = tracing::info_span!("plan", host = DNS_PLAN_HOST).entered();
    let Some(cfg) = &config.dns else {
        return Err("no `[dns]` table".into());
    };
    dns::discover_and_plan(cfg, config).map_err(|e| e.to_string())
}

fn plan_one(host: &HostConfig) -> Result<KmsHostPlan, String> {
    let _span = tracing::info_span!("plan", host = %host.name).entered();
    let target = targets::open(&host.name, &host.target).map_err(|e| e.to_string())?;
    let discovery = target.discover().map_err(|e| e.to_string())?;
    tracing::debug!(host = %host.name, "discovered");
    planner::plan_host(host, discovery).map_err(|e| e.to_string())
}
