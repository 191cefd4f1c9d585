//! What plan and apply share: loading the config (warnings to stderr), and discovering and
//! planning the selected hosts concurrently.

use std::path::Path;

use kmsconf_engine::apply::{run_scheduled, Job};
use kmsconf_engine::config::{Config, HostConfig};
use kmsconf_providers::{planner, targets, KmsHostPlan, KmsPlan};

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

/// Discovers the selected hosts (all when `only` is empty), `parallelism` at a time, and plans
/// each. One round trip per host.
pub fn plan_hosts(
    config: &Config,
    only: &[String],
    parallelism: usize,
) -> Result<Planned, CliError> {
    for name in only {
        if !config.hosts.contains_key(name) {
            let known: Vec<&str> = config.hosts.keys().map(String::as_str).collect();
            return Err(CliError::Message(format!(
                "`--host {name}`: no such host in `{}` (hosts: {})",
                config.path.display(),
                known.join(", ")
            )));
        }
    }
    let order = config.host_order()?;
    let jobs: Vec<Job<&HostConfig>> = order
        .iter()
        .filter(|n| only.is_empty() || only.contains(n))
        .filter_map(|n| config.hosts.get(n))
        .map(|h| Job {
            name: h.name.clone(),
            after: Vec::new(),
            input: h,
        })
        .collect();
    let results = run_scheduled(
        jobs,
        parallelism,
        |_, host| {
            let r = plan_one(host);
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
    Ok(Planned {
        plan: KmsPlan::new(config.path.clone(), config.dir.clone(), hosts),
        failures,
    })
}

fn plan_one(host: &HostConfig) -> Result<KmsHostPlan, String> {
    let _span = tracing::info_span!("plan", host = %host.name).entered();
    let target = targets::open(&host.name, &host.target).map_err(|e| e.to_string())?;
    let discovery = target.discover().map_err(|e| e.to_string())?;
    tracing::debug!(host = %host.name, "discovered");
    planner::plan_host(host, discovery).map_err(|e| e.to_string())
}
