//! Machine output: one typed document per command's `--json`, each with a JSON Schema that
//! `kmsconf schema --output KIND` prints and `schema/output/KIND.schema.json` publishes.
//! Every document starts with `format_version`, bumped when a field changes meaning or goes.

use std::path::Path;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use kmsconf_engine::apply::ChangeReport;
use kmsconf_model::{Action, KmsPlan};

use crate::failure::{FailureKind, HostFailure};
use crate::session::HostResult;

/// The version of every `--json` document.
pub const FORMAT_VERSION: u32 = 1;

/// `plan --json` and `show --json`: the changes, per host, without operations or state.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanOutput {
    pub format_version: u32,
    pub kmsconf_version: String,
    pub changes: Vec<PlannedChange>,
    pub hosts: Vec<PlannedHost>,
    pub summary: PlanSummary,
    /// The entries that could not be planned.
    pub errors: Vec<EntryError>,
}

/// One planned change.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlannedChange {
    pub host: String,
    /// The resource, unique within its host: `products.windows.host_key`, `service.port`, ...
    pub address: String,
    pub action: Action,
    pub before: Value,
    pub after: Value,
    /// What an administrator would type for the same change (`slmgr.vbs /sprt 1689`), masked.
    pub equivalent: Option<String>,
    pub depends_on: Vec<String>,
    pub note: Option<String>,
}

/// One planned entry (a host, or `dns`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlannedHost {
    pub name: String,
    /// The target as the config writes it (lab paths relative to the config).
    pub target: String,
    /// The host did not exist before this plan (a lab host created on first use).
    pub created: bool,
    pub changes: usize,
    pub notices: Vec<String>,
}

/// How many changes of each action a plan holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PlanSummary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub activate: usize,
    pub restart: usize,
    pub total: usize,
    pub hosts: usize,
    pub hosts_with_changes: usize,
}

impl PlanSummary {
    pub fn of(plan: &KmsPlan) -> Self {
        let mut s = Self {
            hosts: plan.hosts.len(),
            hosts_with_changes: plan.hosts_with_changes(),
            ..Self::default()
        };
        for (action, n) in plan.count_by_action() {
            s.total += n;
            *match action {
                Action::Create => &mut s.create,
                Action::Update => &mut s.update,
                Action::Delete => &mut s.delete,
                Action::Activate => &mut s.activate,
                Action::Restart => &mut s.restart,
            } += n;
        }
        s
    }
}

/// An entry that got no result, and why.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EntryError {
    pub host: String,
    pub message: String,
    pub kind: FailureKind,
    /// The host's error code (an HRESULT), where it gave one.
    pub code: Option<u32>,
}

impl EntryError {
    fn new(host: &str, failure: &HostFailure) -> Self {
        Self {
            host: host.to_string(),
            message: failure.message.clone(),
            kind: failure.kind,
            code: failure.code,
        }
    }
}

impl PlanOutput {
    /// The document for `plan`; lab targets are shown relative to `base`.
    pub fn new(plan: &KmsPlan, base: &Path, failures: &[(String, HostFailure)]) -> Self {
        let changes = plan
            .hosts
            .iter()
            .flat_map(|h| {
                h.changes.iter().map(move |c| PlannedChange {
                    host: h.name.clone(),
                    address: c.address.clone(),
                    action: c.action,
                    before: c.before.clone(),
                    after: c.after.clone(),
                    equivalent: c.equivalent.clone(),
                    depends_on: c.depends_on.clone(),
                    note: c.note.clone(),
                })
            })
            .collect();
        let hosts = plan
            .hosts
            .iter()
            .map(|h| PlannedHost {
                name: h.name.clone(),
                target: h.target.relative_to(base),
                created: h.created,
                changes: h.changes.len(),
                notices: h.notices.clone(),
            })
            .collect();
        Self {
            format_version: FORMAT_VERSION,
            kmsconf_version: plan.kmsconf_version.clone(),
            changes,
            hosts,
            summary: PlanSummary::of(plan),
            errors: failures
                .iter()
                .map(|(h, f)| EntryError::new(h, f))
                .collect(),
        }
    }
}

/// `apply --json`: what became of each change of each entry.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ApplyOutput {
    pub format_version: u32,
    pub hosts: Vec<AppliedHost>,
    pub summary: ApplySummary,
}

/// One entry's apply result: its changes, or why it got none.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AppliedHost {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<ChangeReport<Action>>>,
    /// Round trips to the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batches: Option<usize>,
    /// Why the entry got no result (the same text as `failure.message`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<HostFailure>,
}

/// Changes by what became of them, and the entries that got no result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ApplySummary {
    pub applied: usize,
    pub failed: usize,
    pub skipped: usize,
    pub pending: usize,
    pub hosts_failed: usize,
}

impl ApplySummary {
    pub fn of(results: &[(String, HostResult)]) -> Self {
        let mut s = Self::default();
        for (_, r) in results {
            match r {
                Ok(run) => {
                    s.applied += run.applied();
                    s.failed += run.failed();
                    s.skipped += run.skipped();
                    s.pending += run.pending();
                }
                Err(_) => s.hosts_failed += 1,
            }
        }
        s
    }

    /// Whether everything converged (nothing failed, was skipped or went unreached).
    pub fn converged(&self) -> bool {
        self.failed + self.skipped + self.hosts_failed == 0
    }
}

impl ApplyOutput {
    pub fn new(results: &[(String, HostResult)]) -> Self {
        let hosts = results
            .iter()
            .map(|(name, r)| match r {
                Ok(run) => AppliedHost {
                    name: name.clone(),
                    changes: Some(run.changes.clone()),
                    batches: Some(run.batches),
                    error: None,
                    failure: None,
                },
                Err(f) => AppliedHost {
                    name: name.clone(),
                    changes: None,
                    batches: None,
                    error: Some(f.message.clone()),
                    failure: Some(f.clone()),
                },
            })
            .collect();
        Self {
            format_version: FORMAT_VERSION,
            hosts,
            summary: ApplySummary::of(results),
        }
    }
}
