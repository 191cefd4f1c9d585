//! Machine output: one typed document per command's `--json`, each with a JSON Schema that
//! `kmsconf schema --output KIND` prints and `schema/output/KIND.schema.json` publishes.
//! Every document starts with `format_version`, bumped when a field changes meaning or goes.

use std::path::Path;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use kmsconf_engine::apply::ChangeReport;
use kmsconf_engine::target::ChangeStatus;
use kmsconf_model::config::DNS_PLAN_HOST;
use kmsconf_model::{catalog, Action, KmsPlan};
use kmsconf_providers::status::HostStatus;

use crate::clients::ClientsOutput;
use crate::doctor::{Check, Verdict};
use crate::failure::{FailureKind, HostFailure};
use crate::session::HostResult;

/// The version of the `--json` documents whose failures are the `{kind, code, message}` object
/// since version 2 (`status`'s and `apply`'s `error`, `doctor`'s `error` of a check).
pub const FORMAT_VERSION: u32 = 2;

/// The version of the `plan`/`show` and `explain` documents, which have not changed since 1
/// (plan's `errors` were already `{kind, code, message}`).
pub const STABLE_FORMAT_VERSION: u32 = 1;

/// The `--json` documents, by the name `kmsconf schema --output` and `schema/output/` give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// [`PlanOutput`], of `plan` and `show`.
    Plan,
    Apply,
    Status,
    Doctor,
    Explain,
    /// [`ClientsOutput`], of `clients`.
    Clients,
}

impl OutputKind {
    pub const ALL: [Self; 6] = [
        Self::Plan,
        Self::Apply,
        Self::Status,
        Self::Doctor,
        Self::Explain,
        Self::Clients,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Apply => "apply",
            Self::Status => "status",
            Self::Doctor => "doctor",
            Self::Explain => "explain",
            Self::Clients => "clients",
        }
    }

    /// The document's JSON Schema, as published in `schema/output/NAME.schema.json`.
    pub fn json_schema(self) -> String {
        use kmsconf_engine::schema::of_output;
        match self {
            Self::Plan => of_output::<PlanOutput>(),
            Self::Apply => of_output::<ApplyOutput>(),
            Self::Status => of_output::<StatusOutput>(),
            Self::Doctor => of_output::<DoctorOutput>(),
            Self::Explain => of_output::<ExplainOutput>(),
            Self::Clients => of_output::<ClientsOutput>(),
        }
    }
}

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
    /// Why the command produced no result at all (the config does not load, a host is held by
    /// another run's lock, a plan file is refused); the rest of the document is then empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<HostFailure>,
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
    /// What the host showed that contradicts kmsconf's Windows facts (`model/data/windows.toml`),
    /// each with the changes `apply` holds back for it; absent when there is none (an optional
    /// field, so `format_version` 1 readers are unaffected).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub surprises: Vec<kmsconf_model::surprise::Surprise>,
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
                surprises: crate::surprises::of_host(h),
            })
            .collect();
        Self {
            format_version: STABLE_FORMAT_VERSION,
            kmsconf_version: plan.kmsconf_version.clone(),
            changes,
            hosts,
            summary: PlanSummary::of(plan),
            errors: failures
                .iter()
                .map(|(h, f)| EntryError::new(h, f))
                .collect(),
            error: None,
        }
    }
}

/// `apply --json`: what became of each change of each entry.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ApplyOutput {
    pub format_version: u32,
    pub hosts: Vec<AppliedHost>,
    pub summary: ApplySummary,
    /// Why the command produced no result at all (the config does not load, a host is held by
    /// another run's lock, a plan file is refused); the rest of the document is then empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<HostFailure>,
}

/// One entry's apply result: its changes, or why it got none.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AppliedHost {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<AppliedChange>>,
    /// Round trips to the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batches: Option<usize>,
    /// Why the entry got no result, or why the host stopped answering part-way through its
    /// changes (which then say what was not applied).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<HostFailure>,
    /// The same object as `error`, under the name format 1 gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<HostFailure>,
}

/// What became of one change. A failed one has the `{kind, code, message}` of every failure
/// object of the `--json` documents: `kind` is added to the change's own `code` and `message`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AppliedChange {
    #[serde(flatten)]
    pub report: ChangeReport<Action>,
    /// With `"status": "failed"` only: `refused` where the host gave its error code; where it
    /// gave none, the kind of the failure that stopped the host part-way (the change's result
    /// was lost with it), `dns` for the DNS server's changes, else `remote`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<FailureKind>,
}

impl AppliedChange {
    fn new(entry: &str, report: &ChangeReport<Action>, stopped: Option<&HostFailure>) -> Self {
        let kind = match report.status {
            ChangeStatus::Failed { code: Some(_), .. } => Some(FailureKind::Refused),
            ChangeStatus::Failed { code: None, .. } => Some(match stopped {
                Some(f) => f.kind,
                None if entry == DNS_PLAN_HOST => FailureKind::Dns,
                None => FailureKind::Remote,
            }),
            _ => None,
        };
        Self {
            report: report.clone(),
            kind,
        }
    }
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
                    changes: Some(
                        run.changes
                            .iter()
                            .map(|c| AppliedChange::new(name, c, run.stopped.as_ref()))
                            .collect(),
                    ),
                    batches: Some(run.batches),
                    error: run.stopped.clone(),
                    failure: run.stopped.clone(),
                },
                Err(f) => AppliedHost {
                    name: name.clone(),
                    changes: None,
                    batches: None,
                    error: Some(f.clone()),
                    failure: Some(f.clone()),
                },
            })
            .collect();
        Self {
            format_version: FORMAT_VERSION,
            hosts,
            summary: ApplySummary::of(results),
            error: None,
        }
    }
}

/// `status --json`: each host as discovery found it, or why it could not be read.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StatusOutput {
    pub format_version: u32,
    pub hosts: Vec<HostStatus>,
    /// The directory of `[active_directory]` and its activation objects, when declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_directory: Option<crate::status::AdStatus>,
    /// Why the command produced no result at all (the config does not load, a host is held by
    /// another run's lock, a plan file is refused); the rest of the document is then empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<HostFailure>,
}

impl StatusOutput {
    pub fn new(hosts: Vec<HostStatus>) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            hosts,
            active_directory: None,
            error: None,
        }
    }
}

/// `doctor --json`: every check of every host, and how many got each verdict.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DoctorOutput {
    pub format_version: u32,
    pub checks: Vec<Check>,
    pub summary: DoctorSummary,
    /// Why the command produced no result at all (the config does not load, a host is held by
    /// another run's lock, a plan file is refused); the rest of the document is then empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<HostFailure>,
}

/// How many checks got each verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct DoctorSummary {
    pub ok: usize,
    pub warning: usize,
    pub failed: usize,
}

impl DoctorSummary {
    pub fn of(checks: &[Check]) -> Self {
        let count = |v| checks.iter().filter(|c| c.status == v).count();
        Self {
            ok: count(Verdict::Ok),
            warning: count(Verdict::Warning),
            failed: count(Verdict::Failed),
        }
    }
}

impl DoctorOutput {
    pub fn new(checks: Vec<Check>) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            summary: DoctorSummary::of(&checks),
            checks,
            error: None,
        }
    }
}

/// `explain --json`: a code as kmsconf writes it, and what the catalogue says of it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ExplainOutput {
    pub format_version: u32,
    /// The code as `0xC004F074`.
    pub code: String,
    /// Whether the catalogue holds the code; the explanation's fields are present only then.
    pub known: bool,
    #[serde(flatten)]
    pub explanation: Option<Explanation>,
}

/// What the catalogue says of a code.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Explanation {
    pub meaning: String,
    /// Why it usually happens.
    pub cause: Option<String>,
    pub fix: String,
    /// Which side meets it: KMS host, KMS client, MAK.
    pub applies_to: Option<String>,
    /// Where the explanation comes from.
    pub source: String,
}

impl ExplainOutput {
    pub fn new(code: u32) -> Self {
        let explanation = catalog::code(code).map(|i| Explanation {
            meaning: i.meaning.clone(),
            cause: i.cause.clone(),
            fix: i.fix.clone(),
            applies_to: i.applies_to.clone(),
            source: match i.source {
                None => catalog::CODES_SOURCE.to_string(),
                Some(_) => "the Software Licensing Service's messages as kmsconf meets them on a KMS host (not on Microsoft's list)".to_string(),
            },
        });
        Self {
            format_version: STABLE_FORMAT_VERSION,
            code: catalog::format_code(code),
            known: explanation.is_some(),
            explanation,
        }
    }
}

/// The document of a command that failed as a whole: what `--json` prints then, so a script
/// always reads one document its schema accepts, with the failure in `error`.
pub fn failed(kind: OutputKind, error: HostFailure) -> Option<String> {
    let text = match kind {
        OutputKind::Plan => pretty(&PlanOutput {
            format_version: STABLE_FORMAT_VERSION,
            kmsconf_version: env!("CARGO_PKG_VERSION").to_string(),
            changes: Vec::new(),
            hosts: Vec::new(),
            summary: PlanSummary::default(),
            errors: Vec::new(),
            error: Some(error),
        }),
        OutputKind::Apply => pretty(&ApplyOutput {
            error: Some(error),
            ..ApplyOutput::new(&[])
        }),
        OutputKind::Status => pretty(&StatusOutput {
            error: Some(error),
            ..StatusOutput::new(Vec::new())
        }),
        OutputKind::Doctor => pretty(&DoctorOutput {
            error: Some(error),
            ..DoctorOutput::new(Vec::new())
        }),
        OutputKind::Explain => return None,
        OutputKind::Clients => pretty(&ClientsOutput {
            format_version: crate::clients::FORMAT_VERSION,
            since: String::new(),
            hosts: Vec::new(),
            unnamed_activation_ids: Vec::new(),
            error: Some(error),
        }),
    };
    Some(text)
}

fn pretty(doc: &impl Serialize) -> String {
    serde_json::to_string_pretty(doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KmsHostRun;

    /// A host reached but lost part-way reports its changes and, as `error`, why it stopped;
    /// a host not reached reports only the failure. Both are the one `{kind, code, message}`.
    #[test]
    fn apply_output_carries_the_failure_object_of_a_host_that_stopped() {
        let lost = HostFailure::new(FailureKind::ConnectionDropped, "the connection dropped");
        let stopped = KmsHostRun {
            stopped: Some(lost.clone()),
            ..KmsHostRun::default()
        };
        let unreached = HostFailure::new(FailureKind::Unreachable, "cannot reach host `b`");
        let results = [
            ("a".to_string(), Ok(stopped)),
            ("b".to_string(), Err(unreached.clone())),
        ];
        let out = ApplyOutput::new(&results);
        assert_eq!(out.hosts[0].error, Some(lost));
        assert_eq!(out.hosts[0].changes.as_ref().map(Vec::len), Some(0));
        assert_eq!(out.hosts[1].error, Some(unreached.clone()));
        assert_eq!(out.hosts[1].failure, Some(unreached));
        assert_eq!(out.summary.hosts_failed, 1);
    }

    /// `schema/output/*.schema.json` are what `kmsconf schema --output KIND` prints.
    #[test]
    fn checked_in_output_schemas_are_up_to_date() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/output");
        let stale: Vec<&str> = OutputKind::ALL
            .into_iter()
            .filter(|k| {
                let path = dir.join(format!("{}.schema.json", k.name()));
                std::fs::read_to_string(path).ok() != Some(k.json_schema())
            })
            .map(OutputKind::name)
            .collect();
        assert!(
            stale.is_empty(),
            "stale in schema/output: {stale:?}; run `cargo run -- schema --output KIND > schema/output/KIND.schema.json` for each"
        );
    }
}
