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
    let connect = connect()?;
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
            let r = plan_one(host, &connect);
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
        plan: KmsPlan::new(config.path.clone(), hosts),
        failures,
    })
}

fn plan_one(host: &HostConfig, connect: &targets::Connect) -> Result<KmsHostPlan, String> {
    let _span = tracing::info_span!("plan", host = %host.name).entered();
    let target = targets::open(&host.name, &host.target, connect).map_err(|e| e.to_string())?;
    let discovery = target.discover().map_err(|e| e.to_string())?;
    tracing::debug!(host = %host.name, "discovered");
    planner::plan_host(host, discovery).map_err(|e| e.to_string())
}
