//! The executor: runs a host's changes level by level (one batch per dependency level), stops
//! the dependents of a change that failed or is pending, and lets independent branches finish.
//! Hosts run concurrently through [`crate::schedule`].

use std::collections::BTreeMap;

use serde::Serialize;

use crate::graph::Dag;
use crate::plan::{Change, Domain};
pub use crate::target::ChangeStatus;
use crate::Error;

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ChangeReport<A> {
    pub address: String,
    pub action: A,
    #[serde(flatten)]
    pub status: ChangeStatus,
}

/// The result of applying one host's changes.
#[derive(Debug, Clone, Serialize)]
pub struct HostRun<A, E> {
    pub changes: Vec<ChangeReport<A>>,
    /// Batches sent to the host (round trips), for the reader and for the benchmarks.
    pub batches: usize,
    /// Why the host stopped part-way, as its target reported it: that batch's changes failed
    /// and everything after it was skipped.
    #[serde(skip)]
    pub stopped: Option<E>,
}

impl<A, E> Default for HostRun<A, E> {
    fn default() -> Self {
        Self {
            changes: Vec::new(),
            batches: 0,
            stopped: None,
        }
    }
}

impl<A, E> HostRun<A, E> {
    pub fn count(&self, f: impl Fn(&ChangeStatus) -> bool) -> usize {
        self.changes.iter().filter(|c| f(&c.status)).count()
    }
    pub fn failed(&self) -> usize {
        self.count(|s| matches!(s, ChangeStatus::Failed { .. }))
    }
    pub fn skipped(&self) -> usize {
        self.count(|s| matches!(s, ChangeStatus::Skipped { .. }))
    }
    pub fn pending(&self) -> usize {
        self.count(|s| matches!(s, ChangeStatus::Pending { .. }))
    }
    pub fn applied(&self) -> usize {
        self.count(|s| matches!(s, ChangeStatus::Applied { .. }))
    }

    /// The same run, with the error that stopped it turned into another type.
    pub fn map_stopped<F>(self, f: impl FnOnce(E) -> F) -> HostRun<A, F> {
        HostRun {
            changes: self.changes,
            batches: self.batches,
            stopped: self.stopped.map(f),
        }
    }
}

/// Why a batch got no outcomes: the target's own error, or an answer that does not fit.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BatchError<E> {
    /// The target could not run the batch (the host unreachable, the connection lost).
    #[error(transparent)]
    Target(E),
    #[error("the host answered {answered} results for {sent} operations")]
    Answers { answered: usize, sent: usize },
}

/// Runs `changes` in dependency order. `run_batch` receives the changes of one level that may
/// run (their dependencies succeeded) and returns one outcome each, or the target's error for
/// the whole batch (host unreachable), which fails the batch, skips everything after it and
/// comes back, as it is, in [`HostRun::stopped`].
pub fn run_host<D: Domain, E: std::fmt::Display>(
    changes: &[Change<D>],
    mut run_batch: impl FnMut(&[&Change<D>]) -> Result<Vec<ChangeStatus>, E>,
) -> Result<HostRun<D::Action, BatchError<E>>, Error> {
    let by_address: BTreeMap<&str, &Change<D>> =
        changes.iter().map(|c| (c.address.as_str(), c)).collect();
    let dag = Dag::from_deps(
        changes
            .iter()
            .map(|c| (c.address.clone(), c.depends_on.clone())),
    )?;
    let mut status: BTreeMap<String, ChangeStatus> = BTreeMap::new();
    let mut batches = 0;
    let mut stopped: Option<BatchError<E>> = None;
    for level in dag.levels()? {
        let mut ready: Vec<&Change<D>> = Vec::new();
        for address in &level {
            let change = by_address[address.as_str()];
            if let Some(reason) = blocked_by(&dag, address, &status, stopped.as_ref()) {
                status.insert(address.clone(), ChangeStatus::Skipped { reason });
            } else {
                ready.push(change);
            }
        }
        if ready.is_empty() {
            continue;
        }
        batches += 1;
        let outcomes = one_per_change(run_batch(&ready), ready.len());
        if let Err(e) = record(&mut status, &ready, outcomes) {
            stopped = Some(e);
        }
    }
    let changes = changes
        .iter()
        .map(|c| ChangeReport {
            address: c.address.clone(),
            action: c.action,
            status: status.remove(&c.address).unwrap_or(ChangeStatus::Skipped {
                reason: "not reached".into(),
            }),
        })
        .collect();
    Ok(HostRun {
        changes,
        batches,
        stopped,
    })
}

/// A batch's outcomes, when the host answered one for each of the `sent` changes.
fn one_per_change<E>(
    outcomes: Result<Vec<ChangeStatus>, E>,
    sent: usize,
) -> Result<Vec<ChangeStatus>, BatchError<E>> {
    let outcomes = outcomes.map_err(BatchError::Target)?;
    if outcomes.len() == sent {
        Ok(outcomes)
    } else {
        Err(BatchError::Answers {
            answered: outcomes.len(),
            sent,
        })
    }
}

/// Files each change's outcome; a batch that failed as a whole fails each of its changes, and
/// its error comes back as the host's.
fn record<D: Domain, E: std::fmt::Display>(
    status: &mut BTreeMap<String, ChangeStatus>,
    ready: &[&Change<D>],
    outcomes: Result<Vec<ChangeStatus>, BatchError<E>>,
) -> Result<(), BatchError<E>> {
    match outcomes {
        Ok(outcomes) => {
            for (c, o) in ready.iter().zip(outcomes) {
                status.insert(c.address.clone(), o);
            }
            Ok(())
        }
        Err(e) => {
            let message = e.to_string();
            for c in ready {
                status.insert(
                    c.address.clone(),
                    ChangeStatus::Failed {
                        code: None,
                        message: message.clone(),
                    },
                );
            }
            Err(e)
        }
    }
}

fn blocked_by(
    dag: &Dag,
    address: &str,
    status: &BTreeMap<String, ChangeStatus>,
    host_error: Option<&impl std::fmt::Display>,
) -> Option<String> {
    if let Some(e) = host_error {
        return Some(format!("the host stopped answering: {e}"));
    }
    dag.dependencies(address)
        .into_iter()
        .find_map(|dep| match status.get(dep) {
            Some(ChangeStatus::Applied { .. }) | None => None,
            Some(ChangeStatus::Failed { .. }) => Some(format!("`{dep}` failed")),
            Some(ChangeStatus::Pending { .. }) => Some(format!("`{dep}` is pending")),
            Some(ChangeStatus::Skipped { .. }) => Some(format!("`{dep}` was skipped")),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Test, TestVerb};
    use serde_json::Value;

    fn change(address: &str, deps: &[&str]) -> Change<Test> {
        Change {
            address: address.into(),
            action: TestVerb::Update,
            before: Value::Null,
            after: Value::Null,
            equivalent: None,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            note: None,
            operation: address.into(),
        }
    }

    #[test]
    fn a_failure_skips_its_dependents_and_lets_other_branches_finish() {
        let changes = vec![
            change("key", &[]),
            change("activate", &["key"]),
            change("port", &["activate"]),
            change("firewall", &[]),
            change("firewall.port", &["port"]),
        ];
        let mut seen = Vec::new();
        let run = run_host(&changes, |batch| -> Result<_, String> {
            seen.push(batch.iter().map(|c| c.address.clone()).collect::<Vec<_>>());
            Ok(batch
                .iter()
                .map(|c| {
                    if c.address == "activate" {
                        ChangeStatus::failed(0xC004FC03, "offline")
                    } else {
                        ChangeStatus::applied()
                    }
                })
                .collect())
        })
        .expect("acyclic");
        assert_eq!(seen, vec![vec!["firewall", "key"], vec!["activate"]]);
        assert_eq!((run.applied(), run.failed(), run.skipped()), (2, 1, 2));
        assert_eq!(run.batches, 2);
        let port = run
            .changes
            .iter()
            .find(|c| c.address == "port")
            .expect("port");
        assert_eq!(
            port.status,
            ChangeStatus::Skipped {
                reason: "`activate` failed".into()
            }
        );
    }

    #[test]
    fn a_lost_host_fails_the_batch_and_skips_the_rest() {
        let changes = vec![change("a", &[]), change("b", &["a"])];
        let run = run_host(&changes, |_| Err("connection reset")).expect("acyclic");
        assert_eq!((run.failed(), run.skipped()), (1, 1));
        assert!(matches!(
            run.stopped,
            Some(BatchError::Target("connection reset"))
        ));
    }
}
