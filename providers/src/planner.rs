//! Turns one host's desired state and its discovered state into its planned changes, asking each
//! provider for its part and wiring the dependencies between them.

use kmsconf_engine::plan::{Change, HostPlan};
use kmsconf_engine::target::Discovery;
use kmsconf_model::config::HostConfig;
use kmsconf_model::Action;
use serde_json::Value;

use crate::provider::Providers;
use crate::Error;
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

    /// The change runs after every one of `deps`.
    pub fn depends_on_all(mut self, deps: &[String]) -> Self {
        self.depends_on.extend(deps.iter().cloned());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// The change that carries out `operation`.
    pub fn into_change(mut self, operation: PlanOp) -> KmsChange {
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
        let planned = crate::retire::plan_retired(cfg, &state)?;
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
