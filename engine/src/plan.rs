//! Plans: the changes that would bring each host to its desired state, and the plan file that
//! carries them from `plan --out` to `apply PLANFILE`.
//!
//! A plan file holds the observed state each change was computed from (so `apply` can refuse a
//! stale plan) and the operations with secret *references*, never secret values. What a change
//! does, what a host looks like and how it is reached are the [`Domain`]'s types: the engine only
//! orders, stores and counts them.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Error;

/// The types a domain plugs into plans and apply runs.
pub trait Domain: Debug + Clone + PartialEq + Send + Sync + 'static {
    /// One operation as a plan file holds it (secret references, never values).
    type Op: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync;
    /// What discovery read from a host, stored with the plan to detect a stale plan.
    type State: Clone + Debug + Serialize + DeserializeOwned + Send + Sync;
    /// How a host is reached, as the plan file records it.
    type Target: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync;
    /// The verbs of changes (`create`, `update`, ...).
    type Action: Verb;
    /// The `kind` of the plan file, checked on load.
    const PLAN_KIND: &'static str;
    /// The plan file's format version: a file of another version is refused on load.
    const FORMAT_VERSION: u32;
}

/// What a change does, as shown in the plan: a word and a one-character symbol.
pub trait Verb:
    Copy + Debug + Eq + Ord + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Every verb, in the order summaries list them.
    const ALL: &'static [Self];
    fn symbol(self) -> char;
    fn as_str(self) -> &'static str;
}

/// One change to one resource of one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Change<D: Domain> {
    /// The resource, unique within its host: `products.windows.host_key`, `service.port`, ...
    pub address: String,
    pub action: D::Action,
    pub before: Value,
    pub after: Value,
    /// What an administrator would type for the same change, with any secret masked.
    pub equivalent: Option<String>,
    /// Addresses (in the same host) that must be applied first.
    pub depends_on: Vec<String>,
    /// Something the reviewer must know (a pending phone activation, a restart it triggers).
    pub note: Option<String>,
    pub operation: D::Op,
}

/// The changes for one host, with the state they were computed from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct HostPlan<D: Domain> {
    pub name: String,
    pub target: D::Target,
    /// Hosts that must be converged before this one.
    pub depends_on: Vec<String>,
    /// The host did not exist before this plan (a lab host created on first use).
    pub created: bool,
    pub observed: D::State,
    pub changes: Vec<Change<D>>,
    /// Informational lines for the reviewer (drift left alone, pending activations).
    pub notices: Vec<String>,
}

/// A whole plan across hosts, in host order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Plan<D: Domain> {
    pub format_version: u32,
    pub kind: String,
    pub kmsconf_version: String,
    /// The config the plan was made from (for messages; applying a plan does not reread it).
    pub config: PathBuf,
    /// The config's directory, absolute, so a saved plan shows lab targets as the config wrote
    /// them wherever it is shown. Absent in plan files made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_dir: Option<PathBuf>,
    pub hosts: Vec<HostPlan<D>>,
}

impl<D: Domain> Plan<D> {
    /// A plan made from the config `config` (as given), whose directory is `config_dir`.
    pub fn new(config: PathBuf, config_dir: PathBuf, hosts: Vec<HostPlan<D>>) -> Self {
        Self {
            format_version: D::FORMAT_VERSION,
            kind: D::PLAN_KIND.to_string(),
            kmsconf_version: env!("CARGO_PKG_VERSION").to_string(),
            config,
            config_dir: Some(config_dir),
            hosts,
        }
    }

    /// The directory lab targets are shown relative to: the recorded config directory, or for
    /// an older plan file the config's directory taken from the current directory.
    pub fn config_dir(&self) -> PathBuf {
        if let Some(dir) = &self.config_dir {
            return dir.clone();
        }
        match self.config.parent() {
            Some(p) if !p.as_os_str().is_empty() => std::path::absolute(p).unwrap_or(p.into()),
            _ => std::env::current_dir().unwrap_or_default(),
        }
    }

    pub fn has_changes(&self) -> bool {
        self.hosts.iter().any(|h| !h.changes.is_empty())
    }

    /// How many changes of each verb the plan holds, in [`Verb::ALL`] order.
    pub fn count_by_action(&self) -> Vec<(D::Action, usize)> {
        D::Action::ALL
            .iter()
            .map(|a| {
                let n = self.hosts.iter().flat_map(|h| &h.changes);
                (*a, n.filter(|c| c.action == *a).count())
            })
            .collect()
    }

    /// How many hosts have at least one change.
    pub fn hosts_with_changes(&self) -> usize {
        self.hosts.iter().filter(|h| !h.changes.is_empty()).count()
    }
}

impl<D: Domain> Plan<D> {
    /// Writes the plan file atomically.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| Error::PlanFile {
            path: path.to_path_buf(),
            message: format!("cannot encode the plan: {e}"),
        })?;
        text.push('\n');
        crate::write::atomic_write(path, text.as_bytes())
    }
}

impl<D: Domain> Plan<D> {
    /// Reads a plan file, checking that it is one and that this kmsconf understands its version.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let err = |message: String| Error::PlanFile {
            path: path.to_path_buf(),
            message,
        };
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            // serde_json ends its message with the position, which goes first here
            let message = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            err(format!(
                "invalid JSON at line {} column {}: {}",
                e.line(),
                e.column(),
                message.strip_suffix(&suffix).unwrap_or(&message)
            ))
        })?;
        if value.get("kind").and_then(Value::as_str) != Some(D::PLAN_KIND) {
            return Err(err(format!("it has no `\"kind\": \"{}\"`", D::PLAN_KIND)));
        }
        match value.get("format_version").and_then(Value::as_u64) {
            Some(v) if v == u64::from(D::FORMAT_VERSION) => {}
            Some(v) => {
                return Err(err(format!(
                    "it has format version {v}; this kmsconf reads version {}: make a new plan",
                    D::FORMAT_VERSION
                )))
            }
            None => return Err(err("it has no `format_version`".into())),
        }
        let plan: Self =
            serde_json::from_value(value).map_err(|e| err(format!("malformed plan: {e}")))?;
        plan.check_host_order().map_err(err)?;
        Ok(plan)
    }
}

impl<D: Domain> Plan<D> {
    /// A plan file is JSON a person can edit: hosts that depend on each other in a cycle could
    /// never be applied in order.
    fn check_host_order(&self) -> Result<(), String> {
        let deps = self
            .hosts
            .iter()
            .map(|h| (h.name.clone(), h.depends_on.clone()));
        match crate::graph::Dag::from_deps(deps) {
            Err(Error::Cycle(cycle)) => Err(format!(
                "dependency cycle between hosts: {}",
                cycle.join(" -> ")
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Test, TestVerb};

    fn plan() -> Plan<Test> {
        let change = Change {
            address: "a.setting".into(),
            action: TestVerb::Update,
            before: serde_json::json!(1),
            after: serde_json::json!(2),
            equivalent: Some("set-it 2".into()),
            depends_on: vec![],
            note: None,
            operation: "set".to_string(),
        };
        Plan::new(
            "config.toml".into(),
            "/srv/conf".into(),
            vec![HostPlan {
                name: "host01".into(),
                target: "somewhere".into(),
                depends_on: vec![],
                created: false,
                observed: 7,
                changes: vec![change],
                notices: vec![],
            }],
        )
    }

    #[test]
    fn counts_changes_by_verb() {
        let p = plan();
        assert_eq!(p.count_by_action(), vec![(TestVerb::Update, 1)]);
        assert_eq!(p.hosts_with_changes(), 1);
        assert_eq!(p.format_version, 3);
    }

    #[test]
    fn plan_files_round_trip_and_reject_other_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("plan.json");
        plan().save(&p).expect("save");
        let back: Plan<Test> = Plan::load(&p).expect("load");
        assert_eq!(back.hosts[0].changes, plan().hosts[0].changes);
        assert_eq!(back.config_dir(), Path::new("/srv/conf"));
        std::fs::write(&p, "{\"kind\": \"other\"}").expect("write");
        let e = Plan::<Test>::load(&p).expect_err("not a plan");
        assert!(e.to_string().contains("test-plan"), "{e}");
        std::fs::write(&p, "{\"kind\": \"test-plan\", \"format_version\": 99}").expect("write");
        let e = Plan::<Test>::load(&p).expect_err("future");
        assert!(e.to_string().contains("version 99"), "{e}");
    }

    #[test]
    fn plan_files_without_a_config_dir_still_load() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("plan.json");
        let mut old = serde_json::to_value(plan()).expect("encode");
        old.as_object_mut().expect("object").remove("config_dir");
        std::fs::write(&p, old.to_string()).expect("write");
        let back: Plan<Test> = Plan::load(&p).expect("load");
        assert_eq!(back.config_dir, None);
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(back.config_dir(), cwd);
    }

    #[test]
    fn a_plan_file_whose_hosts_depend_on_each_other_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("plan.json");
        let mut cyclic = plan();
        let mut second = cyclic.hosts[0].clone();
        second.name = "host02".into();
        second.depends_on = vec!["host01".into()];
        cyclic.hosts[0].depends_on = vec!["host02".into()];
        cyclic.hosts.push(second);
        cyclic.save(&p).expect("save");
        let e = Plan::<Test>::load(&p).expect_err("a cycle");
        assert!(
            e.to_string()
                .ends_with("dependency cycle between hosts: host01 -> host02 -> host01"),
            "{e}"
        );
    }
}
