//! Turns one host's desired state and its discovered state into its planned changes, asking each
//! provider for its part and wiring the dependencies between them.

use kmsconf_engine::plan::{Change, HostPlan};
use kmsconf_engine::target::Discovery;
use kmsconf_model::config::{Activation, HostConfig, ProductId};
use kmsconf_model::Action;
use serde_json::Value;

use crate::{firewall, licensing, service, Error};
use kmsconf_model::ops::PlanOp;
use kmsconf_model::state::HostState;
use kmsconf_model::EntryState;
use kmsconf_model::{KmsChange, KmsHostPlan};

/// Builds one change; providers fill in the fields that differ.
pub(crate) struct ChangeSpec {
    pub address: String,
    pub action: Action,
    pub before: Value,
    pub after: Value,
    pub equivalent: String,
    pub depends_on: Vec<String>,
    pub note: Option<String>,
}

impl ChangeSpec {
    pub fn new(address: impl Into<String>, action: Action, before: Value, after: Value) -> Self {
        Self {
            address: address.into(),
            action,
            before,
            after,
            equivalent: String::new(),
            depends_on: Vec::new(),
            note: None,
        }
    }

    pub fn equivalent(mut self, text: impl Into<String>) -> Self {
        self.equivalent = text.into();
        self
    }

    pub fn after_all(mut self, deps: &[String]) -> Self {
        self.depends_on.extend(deps.iter().cloned());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    pub fn op(mut self, operation: PlanOp) -> KmsChange {
        self.depends_on.sort();
        self.depends_on.dedup();
        Change {
            address: self.address,
            action: self.action,
            before: self.before,
            after: self.after,
            equivalent: (!self.equivalent.is_empty()).then_some(self.equivalent),
            depends_on: self.depends_on,
            note: self.note,
            operation,
        }
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
    let state = discovery.state;
    let mut changes: Vec<KmsChange> = Vec::new();
    let mut notices: Vec<String> = Vec::new();
    if discovery.created {
        notices.push(created_notice(&state));
    }
    for (id, product) in &cfg.products {
        let planned = licensing::plan_product(&cfg.name, *id, product, &state)?;
        changes.extend(planned.changes);
        notices.extend(planned.notices);
    }
    let ready = service_prerequisites(cfg, &state, &changes)?;
    let service_changes = service::plan_service(&cfg.service, &state.service, &ready);
    let port_change = service_changes
        .iter()
        .find(|c| c.address == service::PORT)
        .map(|c| c.address.clone());
    changes.extend(service_changes);
    if let Some(fw) = &cfg.firewall {
        let port = cfg.service.port.unwrap_or(state.service.effective_port());
        changes.extend(firewall::plan_firewall(
            fw,
            &state.firewall,
            port,
            port_change.as_deref(),
        ));
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

/// The changes service settings must wait for: Windows applies KMS settings only on an
/// installed and activated KMS host key.
fn service_prerequisites(
    cfg: &HostConfig,
    state: &HostState,
    changes: &[KmsChange],
) -> Result<Vec<String>, Error> {
    let prefix = format!("products.{}.", ProductId::Windows);
    let windows_changes: Vec<String> = changes
        .iter()
        .filter(|c| c.address.starts_with(&prefix))
        .map(|c| c.address.clone())
        .collect();
    if cfg.service.is_empty() {
        return Ok(windows_changes);
    }
    let err = |message: &str| Error::Plan {
        host: cfg.name.clone(),
        message: message.to_string(),
    };
    let activated_after_apply = match cfg.products.get(&ProductId::Windows) {
        None => state.windows_is_activated_kms_host(),
        Some(p) if p.activation == Activation::None => {
            state.windows_is_activated_kms_host() && windows_changes.is_empty()
        }
        Some(_) => true,
    };
    if !activated_after_apply {
        let message = match cfg.products.get(&ProductId::Windows) {
            None => format!("KMS service settings can only be set on an activated KMS host, and this host has no activated Windows KMS host key: declare `[hosts.{}.products.windows]` with its `host_key`", cfg.name),
            Some(_) => "KMS service settings need an activated Windows KMS host key, but `windows` has `activation = \"none\"` and is not activated".to_string(),
        };
        return Err(err(&message));
    }
    Ok(windows_changes)
}

/// Puts changes in the order they would run (dependency level, then address), so the plan
/// reads top to bottom as apply will do it.
fn order(changes: &mut [KmsChange]) -> Result<(), Error> {
    let mut dag = kmsconf_engine::graph::Dag::new();
    for c in changes.iter() {
        dag.add_node(c.address.clone());
        for d in &c.depends_on {
            if changes.iter().any(|o| &o.address == d) {
                dag.add_edge(d.clone(), c.address.clone());
            }
        }
    }
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
