//! The registry: the one module that names the concrete providers ([`Providers`]) and drives them
//! over a host: its plan ([`plan_host_with`]), its exported config ([`export_with`]) and its
//! status ([`host_status_with`]). A retired host is planned by [`crate::retire`] instead.

use kmsconf_engine::plan::HostPlan;
use kmsconf_engine::target::Discovery;
use kmsconf_model::config::HostConfig;
use kmsconf_model::failure::HostFailure;
use kmsconf_model::settings::{self, Setting};
use kmsconf_model::state::HostState;
use kmsconf_model::EntryState;
use kmsconf_model::{KmsChange, KmsHostPlan};

use crate::contract::Provider;
use crate::export::{Export, ExportDoc};
use crate::firewall::Firewall;
use crate::licensing::Licensing;
use crate::service::Service;
use crate::status::HostStatus;
use crate::Error;

/// The KMS host providers.
pub struct Providers {
    licensing: Licensing,
    service: Service,
    firewall: Firewall,
}

impl Default for Providers {
    /// The providers, the service provider managing the rows of the settings table.
    fn default() -> Self {
        Self {
            licensing: Licensing,
            service: Service::new(settings::table()),
            firewall: Firewall,
        }
    }
}

impl Providers {
    /// The setting rows the service provider manages (and a retirement resets).
    pub fn settings(&self) -> &'static [Setting] {
        self.service.settings()
    }

    /// In dependency order: the service settings wait for the host key and its activation, the
    /// firewall's port rule for the port setting.
    pub fn plan_order(&self) -> [&dyn Provider; 3] {
        [&self.licensing, &self.service, &self.firewall]
    }

    /// In the order an exported config lists them: the host's settings, then its products.
    pub fn export_order(&self) -> [&dyn Provider; 3] {
        [&self.service, &self.firewall, &self.licensing]
    }
}

/// What every command that reaches a lab host says when that created its state file.
pub fn created_notice(state: &HostState) -> String {
    format!(
        "lab host created: its state file did not exist and now holds a fresh, unconfigured {}",
        state.os
    )
}

/// Plans one host.
pub fn plan_host(cfg: &HostConfig, discovery: Discovery<HostState>) -> Result<KmsHostPlan, Error> {
    plan_host_with(&Providers::default(), cfg, discovery)
}

/// Plans one host with the given providers, each in turn seeing the changes planned before it;
/// a retired host is planned by [`crate::retire`] instead.
pub fn plan_host_with(
    providers: &Providers,
    cfg: &HostConfig,
    discovery: Discovery<HostState>,
) -> Result<KmsHostPlan, Error> {
    let state = discovery.state;
    let mut changes: Vec<KmsChange> = Vec::new();
    let mut notices: Vec<String> = Vec::new();
    if discovery.created {
        notices.push(created_notice(&state));
    }
    if cfg.is_retired() {
        let planned = crate::retire::plan_retired(providers.settings(), cfg, &state)?;
        changes.extend(planned.changes);
        notices.extend(planned.notices);
    } else {
        for provider in providers.plan_order() {
            let planned = provider.plan(cfg, &state, &changes)?;
            changes.extend(planned.changes);
            notices.extend(planned.notices);
        }
    }
    order(&mut changes)?;
    Ok(HostPlan {
        name: cfg.name.clone(),
        target: cfg.target.clone(),
        depends_on: cfg.depends_on.clone(),
        created: discovery.created,
        observed: EntryState::KmsHost(state),
        changes,
        notices,
    })
}

/// Puts changes in the order they would run (dependency level, then address), so the plan
/// reads top to bottom as apply will do it.
fn order(changes: &mut [KmsChange]) -> Result<(), Error> {
    let dag = kmsconf_engine::graph::Dag::from_deps(
        changes
            .iter()
            .map(|c| (c.address.clone(), c.depends_on.clone())),
    )?;
    let levels = dag.levels()?;
    let rank = |a: &str| {
        levels
            .iter()
            .position(|l| l.iter().any(|x| x == a))
            .unwrap_or(usize::MAX)
    };
    changes.sort_by(|a, b| {
        rank(&a.address)
            .cmp(&rank(&b.address))
            .then(a.address.cmp(&b.address))
    });
    Ok(())
}

/// The config for one host named `host`, reached as `target` (as the user wrote it).
pub fn export(host: &str, target: &str, state: &HostState) -> Export {
    export_with(&Providers::default(), host, target, state)
}

/// [`export`] by the given providers.
pub fn export_with(providers: &Providers, host: &str, target: &str, state: &HostState) -> Export {
    let mut doc = ExportDoc::for_host(host, target, state);
    for provider in providers.export_order() {
        provider.export(state, &mut doc);
    }
    doc.finish()
}

/// Builds one host's status from its config and what discovery returned.
pub fn host_status(
    cfg: &HostConfig,
    target: String,
    observed: Result<&HostState, HostFailure>,
) -> HostStatus {
    host_status_with(&Providers::default(), cfg, target, observed)
}

/// [`host_status`] by the given providers.
pub fn host_status_with(
    providers: &Providers,
    cfg: &HostConfig,
    target: String,
    observed: Result<&HostState, HostFailure>,
) -> HostStatus {
    let mut status = HostStatus {
        name: cfg.name.clone(),
        target,
        address: cfg.address.clone(),
        state: cfg.state,
        error: None,
        computer_name: None,
        os: None,
        clock: None,
        client_machine_id: None,
        remaining_rearm_count: None,
        service: None,
        products: Vec::new(),
    };
    let state = match observed {
        Ok(s) => s,
        Err(e) => {
            status.error = Some(e);
            return status;
        }
    };
    status.computer_name = Some(state.computer_name.clone());
    status.os = Some(state.os.clone());
    status.clock = state.clock.map(kmsconf_model::clock::rfc3339);
    status.client_machine_id = state.client_machine_id.clone();
    status.remaining_rearm_count = state.remaining_rearm_count;
    for provider in providers.export_order() {
        provider.status(cfg, state, &mut status);
    }
    status
}
