//! `kmsconf status`: each selected host as one discovery finds it, or why it could not be read,
//! built by the providers' status rows. The binary renders the table, `--json` or OpenMetrics.

use kmsconf_model::config::{Config, AD_PLAN_HOST};
use kmsconf_providers::{registry, status};
use kmsconf_targets::Connect;

use crate::session;
use crate::Error;

pub use status::{
    AdMissingStatus, AdObjectStatus, AdStatus, HostStatus, KeyCoverage, ProductStatus,
    ServiceStatus,
};

/// Every selected host's status, and the lab hosts the discovery created.
#[derive(Debug, Clone)]
pub struct Report {
    pub hosts: Vec<HostStatus>,
    /// `(host, notice)` for each lab host the discovery created.
    pub created: Vec<(String, String)>,
    /// The directory of `[active_directory]`, when it is declared and selected.
    pub active_directory: Option<AdStatus>,
}

impl Report {
    /// Whether some host could not be read.
    pub fn unread(&self) -> bool {
        self.hosts.iter().any(|h| h.error.is_some())
            || self
                .active_directory
                .as_ref()
                .is_some_and(|a| a.error.is_some())
    }
}

/// Discovers the selected hosts (all when `only` is empty), `parallelism` at a time, without
/// their apply locks.
pub fn run(
    config: &Config,
    only: &[String],
    connect: &Connect,
    parallelism: usize,
) -> Result<Report, Error> {
    let read = session::each_host(config, only, parallelism, |host| {
        let shown = host.target.relative_to(&config.dir);
        let discovery = session::discover_host(host, connect);
        let created = session::created_notice(host, &discovery);
        let observed = discovery.map(|d| d.state);
        let status = registry::host_status(host, shown, observed.as_ref().map_err(Clone::clone));
        (status, created)
    })?;
    let (hosts, created): (Vec<HostStatus>, Vec<_>) = read.into_iter().unzip();
    Ok(Report {
        hosts,
        created: created.into_iter().flatten().collect(),
        active_directory: directory(config, only, connect),
    })
}

/// Reads the directory of `[active_directory]` (one bind and search, within the connection
/// timeout) when it is declared and `only` selects it (or nothing).
fn directory(config: &Config, only: &[String], connect: &Connect) -> Option<AdStatus> {
    let cfg = config.active_directory.as_ref()?;
    if !only.is_empty() && !only.iter().any(|n| n == AD_PLAN_HOST) {
        return None;
    }
    let server = cfg
        .server
        .as_ref()
        .map_or_else(|| "(from DNS)".to_string(), ToString::to_string);
    let dns = config.dns.as_ref().map(|d| d.server.as_str());
    let bind = kmsconf_targets::ldap::Bind::of(cfg, dns);
    let read = kmsconf_targets::ldap::read_within(&bind, connect.timeout)
        .map_err(crate::failure::of_target);
    Some(AdStatus::new(
        cfg,
        server,
        read.as_ref().map_err(Clone::clone),
    ))
}
