//! A dependency graph of named nodes on petgraph: topological order with the cycle named, and
//! levels (nodes whose dependencies are all in earlier levels), which the executor runs as
//! batches.

use std::collections::BTreeMap;

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use crate::Error;

/// A directed acyclic graph of string keys; an edge `a -> b` means `a` must come before `b`.
#[derive(Debug, Default)]
pub struct Dag {
    graph: DiGraph<String, ()>,
    index: BTreeMap<String, NodeIndex>,
}

impl Dag {
    pub fn new() -> Self {
        Self::default()
    }

    /// The graph of `nodes`, each with the names it depends on; a dependency that names no
    /// node is left out (the caller reports unknown names in its own terms). Refuses a cycle,
    /// naming it, so a `Dag` built here can always be ordered and scheduled.
    pub fn from_deps(
        nodes: impl IntoIterator<Item = (String, Vec<String>)>,
    ) -> Result<Self, Error> {
        let nodes: Vec<(String, Vec<String>)> = nodes.into_iter().collect();
        let mut dag = Self::new();
        for (name, _) in &nodes {
            dag.add_node(name.clone());
        }
        for (name, deps) in nodes {
            for dep in deps {
                if dag.index.contains_key(&dep) {
                    dag.add_edge(dep, name.clone());
                }
            }
        }
        match toposort(&dag.graph, None) {
            Ok(_) => Ok(dag),
            Err(_) => Err(Error::Cycle(dag.find_cycle())),
        }
    }

    /// Adds a node (idempotent) and returns its index.
    pub fn add_node(&mut self, key: String) -> NodeIndex {
        if let Some(i) = self.index.get(&key) {
            return *i;
        }
        let i = self.graph.add_node(key.clone());
        self.index.insert(key, i);
        i
    }

    /// `before` must come before `after`. Both nodes are added if missing.
    pub fn add_edge(&mut self, before: String, after: String) {
        let a = self.add_node(before);
        let b = self.add_node(after);
        if !self.graph.contains_edge(a, b) {
            self.graph.add_edge(a, b, ());
        }
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// The keys of the direct dependencies of `key`, sorted.
    pub fn dependencies(&self, key: &str) -> Vec<&str> {
        let Some(i) = self.index.get(key) else {
            return Vec::new();
        };
        let mut deps: Vec<&str> = self
            .graph
            .neighbors_directed(*i, Direction::Incoming)
            .map(|n| self.graph[n].as_str())
            .collect();
        deps.sort_unstable();
        deps
    }

    /// The keys of the nodes that depend directly on `key`, sorted.
    pub fn successors(&self, key: &str) -> Vec<&str> {
        let Some(i) = self.index.get(key) else {
            return Vec::new();
        };
        let mut next: Vec<&str> = self
            .graph
            .neighbors_directed(*i, Direction::Outgoing)
            .map(|n| self.graph[n].as_str())
            .collect();
        next.sort_unstable();
        next
    }

    /// Every node in an order where dependencies come first; ties broken by key, so the order
    /// is the same on every run.
    pub fn topological_order(&self) -> Result<Vec<String>, Error> {
        Ok(self.levels()?.into_iter().flatten().collect())
    }

    /// Nodes grouped into levels: level 0 has no dependencies; every node sits one level after
    /// its deepest dependency. Keys within a level are sorted.
    pub fn levels(&self) -> Result<Vec<Vec<String>>, Error> {
        let order = toposort(&self.graph, None).map_err(|_| Error::Cycle(self.find_cycle()))?;
        let mut depth: BTreeMap<NodeIndex, usize> = BTreeMap::new();
        for n in &order {
            let d = self
                .graph
                .neighbors_directed(*n, Direction::Incoming)
                .map(|p| depth.get(&p).map_or(0, |d| d + 1))
                .max()
                .unwrap_or(0);
            depth.insert(*n, d);
        }
        let mut levels: Vec<Vec<String>> = Vec::new();
        for (n, d) in depth {
            if levels.len() <= d {
                levels.resize_with(d + 1, Vec::new);
            }
            levels[d].push(self.graph[n].clone());
        }
        for level in &mut levels {
            level.sort();
        }
        Ok(levels)
    }

    /// One cycle, as the keys along it with the first repeated at the end: `a -> b -> a`.
    fn find_cycle(&self) -> Vec<String> {
        let mut components = tarjan_scc(&self.graph);
        components.retain(|c| c.len() > 1 || self.graph.contains_edge(c[0], c[0]));
        let Some(component) = components
            .into_iter()
            .min_by_key(|c| c.iter().map(|n| self.graph[*n].clone()).min())
        else {
            return Vec::new();
        };
        // walk inside the component from its smallest key until we come back
        let start = *component
            .iter()
            .min_by_key(|n| &self.graph[**n])
            .unwrap_or(&component[0]);
        let mut path = vec![start];
        let mut current = start;
        loop {
            let mut next: Vec<NodeIndex> = self
                .graph
                .neighbors_directed(current, Direction::Outgoing)
                .filter(|n| component.contains(n))
                .collect();
            next.sort_by_key(|n| &self.graph[*n]);
            let Some(step) = next
                .iter()
                .find(|n| **n == start || !path.contains(n))
                .copied()
            else {
                break;
            };
            path.push(step);
            if step == start {
                break;
            }
            current = step;
        }
        path.into_iter().map(|n| self.graph[n].clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dag(edges: &[(&str, &str)]) -> Dag {
        let mut d = Dag::new();
        for (a, b) in edges {
            d.add_edge(a.to_string(), b.to_string());
        }
        d
    }

    #[test]
    fn levels_put_each_node_after_its_deepest_dependency() {
        let d = dag(&[
            ("pack", "key"),
            ("key", "activate"),
            ("activate", "port"),
            ("port", "restart"),
            ("port", "fw"),
        ]);
        let levels = d.levels().expect("acyclic");
        assert_eq!(
            levels,
            vec![
                vec!["pack"],
                vec!["key"],
                vec!["activate"],
                vec!["port"],
                vec!["fw", "restart"]
            ]
        );
        assert_eq!(d.dependencies("restart"), vec!["port"]);
    }

    #[test]
    fn a_cycle_is_named_from_its_smallest_key() {
        let d = dag(&[("b", "c"), ("c", "a"), ("a", "b"), ("x", "a")]);
        match d.topological_order() {
            Err(Error::Cycle(c)) => assert_eq!(c, vec!["a", "b", "c", "a"]),
            other => panic!("expected a cycle, got {other:?}"),
        }
    }

    #[test]
    fn from_deps_ignores_unknown_names_and_refuses_cycles() {
        let d = Dag::from_deps([
            (
                "b".to_string(),
                vec!["a".to_string(), "nowhere".to_string()],
            ),
            ("a".to_string(), vec![]),
        ])
        .expect("acyclic");
        assert_eq!(d.topological_order().expect("order"), vec!["a", "b"]);
        assert_eq!(d.successors("a"), vec!["b"]);
        let e = Dag::from_deps([
            ("a".to_string(), vec!["b".to_string()]),
            ("b".to_string(), vec!["a".to_string()]),
        ]);
        assert!(matches!(e, Err(Error::Cycle(c)) if c == vec!["a", "b", "a"]));
    }

    #[test]
    fn a_self_loop_is_a_cycle() {
        let d = dag(&[("a", "a")]);
        assert!(matches!(d.levels(), Err(Error::Cycle(c)) if c == vec!["a", "a"]));
    }
}
