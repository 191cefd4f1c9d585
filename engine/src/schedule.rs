//! The one scheduler: runs the nodes of a [`Dag`] on up to `parallelism` threads, each as soon
//! as every node it depends on has succeeded. A node whose dependency failed or was skipped is
//! not run: it is skipped, naming that dependency, and so are the nodes after it.
//!
//! The graph is acyclic by construction ([`Dag::from_deps`] refuses a cycle), so nothing here
//! can wait forever. Each step costs time in proportion to the edges it touches, so ten
//! thousand hosts schedule as fast as ten.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::graph::Dag;

struct State<T, R> {
    inputs: Vec<Option<T>>,
    results: Vec<Option<R>>,
    /// Per node: how many of its dependencies have not succeeded yet.
    waiting_on: Vec<usize>,
    /// Nodes whose dependencies all succeeded, by position, lowest first.
    ready: BTreeSet<usize>,
    unresolved: usize,
}

/// Runs `inputs` (node name and input, in the order results come back) in dependency order.
/// `run` returns a node's result and whether it succeeded; a node that cannot run because
/// `prerequisite` did not succeed gets `skip(name, prerequisite)`. Dependencies on names that
/// have no input are taken as met.
pub fn schedule<T: Send, R: Send>(
    dag: &Dag,
    inputs: Vec<(String, T)>,
    parallelism: usize,
    run: impl Fn(&str, T) -> (R, bool) + Sync,
    skip: impl Fn(&str, &str) -> R + Sync,
) -> Vec<(String, R)> {
    let names: Vec<String> = inputs.iter().map(|(n, _)| n.clone()).collect();
    let (successors, waiting_on) = edges(dag, &names);
    let total = names.len();
    let state = Mutex::new(State {
        ready: (0..total).filter(|i| waiting_on[*i] == 0).collect(),
        inputs: inputs.into_iter().map(|(_, t)| Some(t)).collect(),
        results: (0..total).map(|_| None).collect(),
        waiting_on,
        unresolved: total,
    });
    let wake = Condvar::new();
    let worker = || loop {
        let s = state.lock().unwrap_or_else(|p| p.into_inner());
        let (mut s, next) = next_ready(s, &wake);
        let Some(i) = next else {
            wake.notify_all();
            return;
        };
        let Some(input) = s.inputs[i].take() else {
            continue;
        };
        drop(s);
        let (result, ok) = run(&names[i], input);
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.results[i] = Some(result);
        s.unresolved -= 1;
        if ok {
            release_successors(&mut s, &successors[i]);
        } else {
            skip_after(&mut s, i, &names, &successors, &skip);
        }
        wake.notify_all();
    };
    let workers = parallelism.clamp(1, total.max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(worker);
        }
    });
    let s = state.into_inner().unwrap_or_else(|p| p.into_inner());
    names
        .into_iter()
        .zip(s.results)
        .filter_map(|(n, r)| r.map(|r| (n, r)))
        .collect()
}

/// Per node (by position in `names`): its successors, and how many of its dependencies are in
/// `names` (the others are taken as met).
fn edges(dag: &Dag, names: &[String]) -> (Vec<Vec<usize>>, Vec<usize>) {
    let position: BTreeMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let successors: Vec<Vec<usize>> = names
        .iter()
        .map(|n| {
            let next = dag.successors(n).into_iter();
            next.filter_map(|s| position.get(s).copied()).collect()
        })
        .collect();
    let waiting_on: Vec<usize> = names
        .iter()
        .map(|n| {
            let deps = dag.dependencies(n).into_iter();
            deps.filter(|d| position.contains_key(d)).count()
        })
        .collect();
    (successors, waiting_on)
}

/// Waits until a node is ready and takes it, or returns `None` once every node is resolved.
fn next_ready<'a, T, R>(
    mut s: MutexGuard<'a, State<T, R>>,
    wake: &Condvar,
) -> (MutexGuard<'a, State<T, R>>, Option<usize>) {
    loop {
        if s.unresolved == 0 {
            return (s, None);
        }
        if let Some(i) = s.ready.pop_first() {
            return (s, Some(i));
        }
        s = wake.wait(s).unwrap_or_else(|p| p.into_inner());
    }
}

/// A node succeeded: each successor waits on one dependency fewer, and is ready when it waits
/// on none.
fn release_successors<T, R>(s: &mut State<T, R>, successors: &[usize]) {
    for &n in successors {
        s.waiting_on[n] -= 1;
        if s.waiting_on[n] == 0 && s.inputs[n].is_some() {
            s.ready.insert(n);
        }
    }
}

/// Skips every node after `failed` that has not run, each naming the node before it.
fn skip_after<T, R>(
    s: &mut State<T, R>,
    failed: usize,
    names: &[String],
    successors: &[Vec<usize>],
    skip: &(impl Fn(&str, &str) -> R + Sync),
) {
    let mut stack = vec![failed];
    while let Some(from) = stack.pop() {
        for &n in &successors[from] {
            if s.inputs[n].take().is_some() {
                s.ready.remove(&n);
                s.results[n] = Some(skip(&names[n], &names[from]));
                s.unresolved -= 1;
                stack.push(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dag(nodes: &[(&str, &[&str])]) -> Dag {
        Dag::from_deps(
            nodes
                .iter()
                .map(|(n, d)| (n.to_string(), d.iter().map(|s| s.to_string()).collect())),
        )
        .expect("acyclic")
    }

    fn inputs(names: &[&str]) -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| (n.to_string(), n.to_string()))
            .collect()
    }

    #[test]
    fn jobs_wait_for_prerequisites_and_skip_after_failure() {
        let d = dag(&[
            ("a", &[]),
            ("b", &["a"]),
            ("c", &["b"]),
            ("d", &[]),
            ("e", &["gone"]),
        ]);
        let order = Mutex::new(Vec::new());
        let results = schedule(
            &d,
            inputs(&["a", "b", "c", "d", "e"]),
            4,
            |name, input: String| {
                order.lock().expect("lock").push(name.to_string());
                (format!("ran {input}"), name != "b")
            },
            |name, pre| format!("skipped {name} after {pre}"),
        );
        let got: Vec<String> = results.into_iter().map(|(_, r)| r).collect();
        assert_eq!(
            got,
            ["ran a", "ran b", "skipped c after b", "ran d", "ran e"]
        );
        let order = order.into_inner().expect("lock");
        let pos = |n: &str| order.iter().position(|x| x == n).expect("ran");
        assert!(pos("a") < pos("b"));
    }

    #[test]
    fn a_skip_reaches_every_node_after_it_naming_the_one_before() {
        let d = dag(&[("a", &[]), ("b", &["a"]), ("c", &["b"]), ("d", &["c", "a"])]);
        let results = schedule(
            &d,
            inputs(&["a", "b", "c", "d"]),
            2,
            |_, _| (String::from("ran"), false),
            |name, pre| format!("{name} after {pre}"),
        );
        assert_eq!(results[0].1, "ran");
        assert_eq!(results[1].1, "b after a");
        assert_eq!(results[2].1, "c after b");
        assert!(results[3].1.starts_with("d after "), "{:?}", results[3]);
    }

    #[test]
    fn many_independent_jobs_all_run_once() {
        let names: Vec<String> = (0..2000).map(|i| format!("h{i:04}")).collect();
        let d = Dag::from_deps(names.iter().map(|n| (n.clone(), Vec::new()))).expect("dag");
        let results = schedule(
            &d,
            names.iter().map(|n| (n.clone(), ())).collect(),
            8,
            |name, ()| (name.to_string(), true),
            |_, _| String::new(),
        );
        assert_eq!(results.len(), 2000);
        assert!(results.iter().all(|(n, r)| n == r));
    }
}
