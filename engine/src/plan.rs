//! Plans: the changes that would bring each host to its desired state, and the plan file that
//! carries them from `kmsconf plan --out` to `kmsconf apply PLANFILE`.
//!
//! A plan file holds the observed state each change was computed from (so `apply` can refuse a
//! stale plan) and the operations with secret *references*, never secret values.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::TargetSpec;
use crate::Error;

/// The version of both the plan file and the `plan --json` output.
pub const FORMAT_VERSION: u32 = 1;
const PLAN_KIND: &str = "kmsconf-plan";

/// What a change does, as shown in the plan (`+`, `~`, `-`, and the two verbs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
    Activate,
    Restart,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Self::Create,
        Self::Update,
        Self::Delete,
        Self::Activate,
        Self::Restart,
    ];

    pub fn symbol(self) -> char {
        match self {
            Self::Create | Self::Activate => '+',
            Self::Update | Self::Restart => '~',
            Self::Delete => '-',
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Activate => "activate",
            Self::Restart => "restart",
        }
    }
}

/// One change to one resource of one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change<Op> {
    /// The resource, unique within its host: `products.windows.host_key`, `service.port`, ...
    pub address: String,
    pub action: Action,
    pub before: Value,
    pub after: Value,
    /// What an administrator would type for the same change (`slmgr.vbs /sprt 1689`), masked.
    pub equivalent: Option<String>,
    /// Addresses (in the same host) that must be applied first.
    pub depends_on: Vec<String>,
    /// Something the reviewer must know (a pending phone activation, a restart it triggers).
    pub note: Option<String>,
    pub operation: Op,
}

/// The changes for one host, with the state they were computed from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostPlan<Op, State> {
    pub name: String,
    pub target: TargetSpec,
    /// Hosts that must be converged before this one.
    pub depends_on: Vec<String>,
    /// The host did not exist before this plan (a lab host created on first use).
    pub created: bool,
    pub observed: State,
    pub changes: Vec<Change<Op>>,
    /// Informational lines for the reviewer (drift left alone, pending activations).
    pub notices: Vec<String>,
}

/// A whole plan across hosts, in host order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan<Op, State> {
    pub format_version: u32,
    pub kind: String,
    pub kmsconf_version: String,
    /// The config the plan was made from (for messages; applying a plan does not reread it).
    pub config: PathBuf,
    /// The config's directory, absolute, so a saved plan shows lab targets as the config wrote
    /// them wherever it is shown. Absent in plan files made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_dir: Option<PathBuf>,
    pub hosts: Vec<HostPlan<Op, State>>,
}

/// How many changes of each action a plan holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub activate: usize,
    pub restart: usize,
    pub total: usize,
    pub hosts: usize,
    pub hosts_with_changes: usize,
}

impl<Op, State> Plan<Op, State> {
    /// A plan made from the config `config` (as given), whose directory is `config_dir`.
    pub fn new(config: PathBuf, config_dir: PathBuf, hosts: Vec<HostPlan<Op, State>>) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            kind: PLAN_KIND.to_string(),
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

    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            hosts: self.hosts.len(),
            ..Summary::default()
        };
        for host in &self.hosts {
            if !host.changes.is_empty() {
                s.hosts_with_changes += 1;
            }
            for c in &host.changes {
                s.total += 1;
                match c.action {
                    Action::Create => s.create += 1,
                    Action::Update => s.update += 1,
                    Action::Delete => s.delete += 1,
                    Action::Activate => s.activate += 1,
                    Action::Restart => s.restart += 1,
                }
            }
        }
        s
    }

    /// The `plan --json` document: versioned, only real changes, no operations and no state.
    /// Lab targets are shown relative to `base` (the config's directory).
    pub fn to_json(&self, base: &Path) -> Value {
        let changes: Vec<Value> = self
            .hosts
            .iter()
            .flat_map(|h| {
                h.changes.iter().map(move |c| {
                    json!({
                        "host": h.name,
                        "address": c.address,
                        "action": c.action,
                        "before": c.before,
                        "after": c.after,
                        "equivalent": c.equivalent,
                        "depends_on": c.depends_on,
                        "note": c.note,
                    })
                })
            })
            .collect();
        let hosts: Vec<Value> = self
            .hosts
            .iter()
            .map(|h| {
                json!({
                    "name": h.name,
                    "target": h.target.relative_to(base),
                    "created": h.created,
                    "changes": h.changes.len(),
                    "notices": h.notices,
                })
            })
            .collect();
        json!({
            "format_version": self.format_version,
            "kmsconf_version": self.kmsconf_version,
            "changes": changes,
            "hosts": hosts,
            "summary": self.summary(),
        })
    }
}

impl<Op: Serialize, State: Serialize> Plan<Op, State> {
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

impl<Op: DeserializeOwned, State: DeserializeOwned> Plan<Op, State> {
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
        if value.get("kind").and_then(Value::as_str) != Some(PLAN_KIND) {
            return Err(err(format!("it has no `\"kind\": \"{PLAN_KIND}\"`")));
        }
        match value.get("format_version").and_then(Value::as_u64) {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(err(format!(
                    "it has format version {v}; this kmsconf reads version {FORMAT_VERSION}: make a new plan"
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

impl<Op, State> Plan<Op, State> {
    /// A plan file is JSON a person can edit: hosts that depend on each other in a cycle could
    /// never be applied in order.
    fn check_host_order(&self) -> Result<(), String> {
        let names: std::collections::BTreeSet<&str> =
            self.hosts.iter().map(|h| h.name.as_str()).collect();
        let mut dag = crate::graph::Dag::new();
        for host in &self.hosts {
            dag.add_node(host.name.clone());
            for dep in host
                .depends_on
                .iter()
                .filter(|d| names.contains(d.as_str()))
            {
                dag.add_edge(dep.clone(), host.name.clone());
            }
        }
        match dag.topological_order() {
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

    fn plan() -> Plan<String, u32> {
        let change = Change {
            address: "service.port".into(),
            action: Action::Update,
            before: json!(1688),
            after: json!(1689),
            equivalent: Some("slmgr.vbs /sprt 1689".into()),
            depends_on: vec![],
            note: None,
            operation: "set-port".to_string(),
        };
        Plan::new(
            "kmsconf.toml".into(),
            "/srv/kms".into(),
            vec![HostPlan {
                name: "kms01".into(),
                target: TargetSpec::Local,
                depends_on: vec![],
                created: false,
                observed: 7,
                changes: vec![change],
                notices: vec![],
            }],
        )
    }

    #[test]
    fn json_lists_changes_with_host_and_summary() {
        let j = plan().to_json(Path::new("."));
        assert_eq!(j["format_version"], 1);
        assert_eq!(j["changes"][0]["host"], "kms01");
        assert_eq!(j["changes"][0]["action"], "update");
        assert_eq!(j["summary"]["update"], 1);
        assert!(j["changes"][0].get("operation").is_none());
    }

    #[test]
    fn plan_files_round_trip_and_reject_other_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("plan.json");
        plan().save(&p).expect("save");
        let back: Plan<String, u32> = Plan::load(&p).expect("load");
        assert_eq!(back.hosts[0].changes, plan().hosts[0].changes);
        assert_eq!(back.config_dir(), Path::new("/srv/kms"));
        std::fs::write(&p, "{\"kind\": \"other\"}").expect("write");
        let e = Plan::<String, u32>::load(&p).expect_err("not a plan");
        assert!(e.to_string().contains("kmsconf-plan"), "{e}");
        std::fs::write(&p, "{\"kind\": \"kmsconf-plan\", \"format_version\": 99}").expect("write");
        let e = Plan::<String, u32>::load(&p).expect_err("future");
        assert!(e.to_string().contains("version 99"), "{e}");
    }

    #[test]
    fn plan_files_without_a_config_dir_still_load() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("plan.json");
        let mut old = serde_json::to_value(plan()).expect("encode");
        old.as_object_mut().expect("object").remove("config_dir");
        std::fs::write(&p, old.to_string()).expect("write");
        let back: Plan<String, u32> = Plan::load(&p).expect("load");
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
        second.name = "kms02".into();
        second.depends_on = vec!["kms01".into()];
        cyclic.hosts[0].depends_on = vec!["kms02".into()];
        cyclic.hosts.push(second);
        cyclic.save(&p).expect("save");
        let e = Plan::<String, u32>::load(&p).expect_err("a cycle");
        assert!(
            e.to_string()
                .ends_with("dependency cycle between hosts: kms01 -> kms02 -> kms01"),
            "{e}"
        );
    }
}
