//! The executor: runs a host's changes level by level (one batch per dependency level), stops
//! the dependents of a change that failed or is pending, lets independent branches finish, and
//! runs hosts concurrently with a bound, respecting the order between hosts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Condvar, Mutex};

use serde::Serialize;

use crate::graph::Dag;
use crate::plan::{Action, Change};
use crate::target::Outcome;
use crate::Error;

/// What became of one planned change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum ChangeStatus {
    Applied {
        detail: Option<String>,
    },
    Pending {
        message: String,
    },
    Failed {
        code: Option<u32>,
        message: String,
    },
    /// Not attempted because something it depends on did not happen.
    Skipped {
        reason: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangeReport {
    pub address: String,
    pub action: Action,
    #[serde(flatten)]
    pub status: ChangeStatus,
}

/// The result of applying one host's changes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostRun {
    pub changes: Vec<ChangeReport>,
    /// Batches sent to the host (round trips), for the reader and for the benchmarks.
    pub batches: usize,
}

impl HostRun {
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
}

/// Runs `changes` in dependency order. `run_batch` receives the changes of one level that may
/// run (their dependencies succeeded) and returns one outcome each, or an error for the whole
/// batch (host unreachable), which fails the batch and skips everything after it.
pub fn run_host<Op>(
    changes: &[Change<Op>],
    mut run_batch: impl FnMut(&[&Change<Op>]) -> Result<Vec<Outcome>, String>,
) -> Result<HostRun, Error> {
    let by_address: BTreeMap<&str, &Change<Op>> =
        changes.iter().map(|c| (c.address.as_str(), c)).collect();
    let mut dag = Dag::new();
    for c in changes {
        dag.add_node(c.address.clone());
        for dep in c
            .depends_on
            .iter()
            .filter(|d| by_address.contains_key(d.as_str()))
        {
            dag.add_edge(dep.clone(), c.address.clone());
        }
    }
    let mut status: BTreeMap<String, ChangeStatus> = BTreeMap::new();
    let mut batches = 0;
    let mut host_error: Option<String> = None;
    for level in dag.levels()? {
        let mut ready: Vec<&Change<Op>> = Vec::new();
        for address in &level {
            let change = by_address[address.as_str()];
            if let Some(reason) = blocked_by(&dag, address, &status, host_error.as_deref()) {
                status.insert(address.clone(), ChangeStatus::Skipped { reason });
            } else {
                ready.push(change);
            }
        }
        if ready.is_empty() {
            continue;
        }
        batches += 1;
        let outcomes = run_batch(&ready).and_then(|o| {
            if o.len() == ready.len() {
                Ok(o)
            } else {
                Err(format!(
                    "the host answered {} results for {} operations",
                    o.len(),
                    ready.len()
                ))
            }
        });
        match outcomes {
            Ok(outcomes) => {
                for (c, o) in ready.iter().zip(outcomes) {
                    status.insert(c.address.clone(), from_outcome(o));
                }
            }
            Err(message) => {
                for c in &ready {
                    status.insert(
                        c.address.clone(),
                        ChangeStatus::Failed {
                            code: None,
                            message: message.clone(),
                        },
                    );
                }
                host_error = Some(message);
            }
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
    Ok(HostRun { changes, batches })
}

fn from_outcome(o: Outcome) -> ChangeStatus {
    match o {
        Outcome::Applied { detail } => ChangeStatus::Applied { detail },
        Outcome::Pending { message } => ChangeStatus::Pending { message },
        Outcome::Failed { code, message } => ChangeStatus::Failed { code, message },
    }
}

fn blocked_by(
    dag: &Dag,
    address: &str,
    status: &BTreeMap<String, ChangeStatus>,
    host_error: Option<&str>,
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

/// A unit of work for [`run_scheduled`]: a name, the names it must wait for, and its input.
pub struct Job<T> {
    pub name: String,
    pub after: Vec<String>,
    pub input: T,
}

/// Runs jobs on up to `parallelism` threads, each only after the jobs it names in `after`
/// succeeded. `run` returns the result and whether it succeeded; a job whose prerequisite did
/// not succeed is not run and gets `skip(name, prerequisite)`. Results come back in input order.
pub fn run_scheduled<T: Send, R: Send>(
    jobs: Vec<Job<T>>,
    parallelism: usize,
    run: impl Fn(&str, T) -> (R, bool) + Sync,
    skip: impl Fn(&str, &str) -> R + Sync,
) -> Vec<(String, R)> {
    struct State<T, R> {
        waiting: BTreeMap<usize, Job<T>>,
        finished: BTreeMap<String, bool>,
        results: BTreeMap<usize, (String, R)>,
        running: usize,
    }
    let total = jobs.len();
    let names: BTreeSet<String> = jobs.iter().map(|j| j.name.clone()).collect();
    let state = Mutex::new(State {
        waiting: jobs.into_iter().enumerate().collect(),
        finished: BTreeMap::new(),
        results: BTreeMap::new(),
        running: 0,
    });
    let wake = Condvar::new();
    let workers = parallelism.clamp(1, total.max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                let next = loop {
                    if s.waiting.is_empty() {
                        break None;
                    }
                    // a job whose prerequisite failed is resolved at once, without a thread
                    let failed = s.waiting.iter().find_map(|(i, j)| {
                        j.after
                            .iter()
                            .find(|a| s.finished.get(*a) == Some(&false))
                            .map(|a| (*i, a.clone()))
                    });
                    if let Some((i, prerequisite)) = failed {
                        if let Some(job) = s.waiting.remove(&i) {
                            let r = skip(&job.name, &prerequisite);
                            s.finished.insert(job.name.clone(), false);
                            s.results.insert(i, (job.name, r));
                            wake.notify_all();
                        }
                        continue;
                    }
                    let ready = s.waiting.iter().find(|(_, j)| {
                        j.after
                            .iter()
                            .all(|a| !names.contains(a) || s.finished.get(a) == Some(&true))
                    });
                    if let Some(i) = ready.map(|(i, _)| *i) {
                        s.running += 1;
                        break s.waiting.remove(&i).map(|j| (i, j));
                    }
                    // nothing runs and nothing can start: the jobs left wait on each other (a
                    // cycle in `after`); skipping one lets the others resolve instead of hanging
                    if s.running == 0 {
                        if let Some((i, job)) = s.waiting.pop_first() {
                            let prerequisite = job
                                .after
                                .iter()
                                .find(|a| names.contains(*a) && !s.finished.contains_key(*a))
                                .cloned()
                                .unwrap_or_default();
                            let r = skip(&job.name, &prerequisite);
                            s.finished.insert(job.name.clone(), false);
                            s.results.insert(i, (job.name, r));
                        }
                        continue;
                    }
                    s = wake.wait(s).unwrap_or_else(|p| p.into_inner());
                };
                drop(s);
                let Some((i, job)) = next else {
                    wake.notify_all();
                    return;
                };
                let (r, ok) = run(&job.name, job.input);
                let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                s.running -= 1;
                s.finished.insert(job.name.clone(), ok);
                s.results.insert(i, (job.name, r));
                wake.notify_all();
            });
        }
    });
    let s = state.into_inner().unwrap_or_else(|p| p.into_inner());
    s.results.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn change(address: &str, deps: &[&str]) -> Change<String> {
        Change {
            address: address.into(),
            action: Action::Update,
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
        let run = run_host(&changes, |batch| {
            seen.push(batch.iter().map(|c| c.address.clone()).collect::<Vec<_>>());
            Ok(batch
                .iter()
                .map(|c| {
                    if c.address == "activate" {
                        Outcome::failed(0xC004FC03, "offline")
                    } else {
                        Outcome::applied()
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
        let run = run_host(&changes, |_| Err("connection reset".into())).expect("acyclic");
        assert_eq!((run.failed(), run.skipped()), (1, 1));
    }

    #[test]
    fn scheduled_jobs_wait_for_prerequisites_and_skip_after_failure() {
        let job = |n: &str, after: &[&str]| Job {
            name: n.to_string(),
            after: after.iter().map(|a| a.to_string()).collect(),
            input: n.to_string(),
        };
        let order = Mutex::new(Vec::new());
        let results = run_scheduled(
            vec![
                job("c", &["b"]),
                job("b", &["a"]),
                job("a", &[]),
                job("x", &["bad"]),
                job("bad", &[]),
            ],
            4,
            |name, _| {
                order.lock().expect("lock").push(name.to_string());
                (format!("ran {name}"), name != "bad")
            },
            |name, pre| format!("skipped {name}: {pre}"),
        );
        let order = order.into_inner().expect("lock");
        let pos = |n: &str| order.iter().position(|o| o == n).expect("ran");
        assert!(pos("a") < pos("b") && pos("b") < pos("c"));
        assert_eq!(
            results.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            vec!["c", "b", "a", "x", "bad"]
        );
        assert_eq!(results[3].1, "skipped x: bad");
    }

    #[test]
    fn scheduled_jobs_that_wait_on_each_other_are_skipped_instead_of_hanging() {
        let job = |n: &str, after: &[&str]| Job {
            name: n.to_string(),
            after: after.iter().map(|a| a.to_string()).collect(),
            input: (),
        };
        let results = run_scheduled(
            vec![job("a", &["b"]), job("b", &["a"]), job("c", &[])],
            2,
            |name, ()| (format!("ran {name}"), true),
            |name, pre| format!("skipped {name}: {pre}"),
        );
        assert_eq!(
            results.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
            vec!["skipped a: b", "skipped b: a", "ran c"]
        );
    }
}
