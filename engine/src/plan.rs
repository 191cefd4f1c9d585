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

use crate::error::{IntegrityError, PlanFileError};
use crate::secret::Secret;
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

/// What makes a saved plan trustworthy: the SHA-256 digest of its canonical content, which
/// `plan`, `show` and `apply` print so a reviewer can see they read the same file, and whether an
/// HMAC made with a plan key vouched for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    /// `sha256:` and 64 lowercase hex digits.
    pub digest: String,
    /// An HMAC-SHA-256 with the plan key was written (save) or verified (load).
    pub authenticated: bool,
}

/// The plan file fields that seal the rest; they are left out of the content they seal.
const DIGEST_FIELD: &str = "digest";
const HMAC_FIELD: &str = "hmac";

impl<D: Domain> Plan<D> {
    /// The plan as its file holds it, without the seal; an error for a plan that cannot be
    /// saved (one that needs a literal secret).
    /// Dependencies on hosts the plan does not hold (left out by `--host`) are left out: apply
    /// could not order by them, and a loaded plan may depend only on its own hosts.
    fn content(&self) -> Result<Value, PlanFileError> {
        let mut value = serde_json::to_value(self).map_err(PlanFileError::Encode)?;
        let names: std::collections::BTreeSet<&str> =
            self.hosts.iter().map(|h| h.name.as_str()).collect();
        let hosts = value.get_mut("hosts").and_then(Value::as_array_mut);
        for host in hosts.into_iter().flatten() {
            if let Some(deps) = host.get_mut("depends_on").and_then(Value::as_array_mut) {
                deps.retain(|d| d.as_str().is_some_and(|d| names.contains(d)));
            }
        }
        Ok(value)
    }

    /// The digest `save` would record, for showing a plan before or without saving it; `None`
    /// for a plan that cannot be saved.
    /// Made a host at a time, so a plan of 100,000 hosts is never held a second time as JSON.
    pub fn digest(&self) -> Option<String> {
        let head = Self {
            hosts: Vec::new(),
            format_version: self.format_version,
            kind: self.kind.clone(),
            kmsconf_version: self.kmsconf_version.clone(),
            config: self.config.clone(),
            config_dir: self.config_dir.clone(),
        };
        let Ok(Value::Object(head)) = serde_json::to_value(&head) else {
            return None;
        };
        let names: std::collections::BTreeSet<&str> =
            self.hosts.iter().map(|h| h.name.as_str()).collect();
        let mut failed = false;
        let hosts = self
            .hosts
            .iter()
            .map_while(|h| match serde_json::to_value(h) {
                Ok(mut host) => {
                    if let Some(deps) = host.get_mut("depends_on").and_then(Value::as_array_mut) {
                        deps.retain(|d| d.as_str().is_some_and(|d| names.contains(d)));
                    }
                    Some(host)
                }
                Err(_) => {
                    failed = true;
                    None
                }
            });
        let digest = crate::seal::digest_streamed(&head, "hosts", hosts);
        (!failed).then_some(digest)
    }

    /// Writes the plan file atomically with its digest, and with `key` its HMAC.
    pub fn save(&self, path: &Path, key: Option<&Secret>) -> Result<Seal, Error> {
        let err = |reason| Error::PlanFile {
            path: path.to_path_buf(),
            reason,
        };
        let content = self.content().map_err(err)?;
        let digest = crate::seal::digest(&content);
        let mut file = content.clone();
        if let Value::Object(map) = &mut file {
            map.insert(DIGEST_FIELD.into(), Value::String(digest.clone()));
            if let Some(key) = key {
                map.insert(
                    HMAC_FIELD.into(),
                    Value::String(crate::seal::hmac(&content, key)),
                );
            }
        }
        let mut text =
            serde_json::to_string_pretty(&file).map_err(|e| err(PlanFileError::Encode(e)))?;
        text.push('\n');
        crate::write::atomic_write(path, text.as_bytes())?;
        Ok(Seal {
            digest,
            authenticated: key.is_some(),
        })
    }
}

impl<D: Domain> Plan<D> {
    /// Reads a plan file, checking that it is one, that this kmsconf understands its version,
    /// that its content is what was saved (its digest; with `key`, its HMAC), and that its hosts
    /// and their dependencies make sense.
    pub fn load(path: &Path, key: Option<&Secret>) -> Result<(Self, Seal), Error> {
        let bytes = crate::read::read_bounded(path, crate::read::PLAN)?;
        let err = |reason| Error::PlanFile {
            path: path.to_path_buf(),
            reason,
        };
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            // serde_json ends its message with the position, which goes first here
            let message = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            err(PlanFileError::Json {
                line: e.line(),
                column: e.column(),
                message: message.strip_suffix(&suffix).unwrap_or(&message).into(),
            })
        })?;
        if value.get("kind").and_then(Value::as_str) != Some(D::PLAN_KIND) {
            return Err(err(PlanFileError::Kind(D::PLAN_KIND)));
        }
        match value.get("format_version") {
            Some(v) if v.as_u64() == Some(u64::from(D::FORMAT_VERSION)) => {}
            Some(found) => {
                return Err(err(PlanFileError::Version {
                    found: found.to_string(),
                    supported: D::FORMAT_VERSION,
                }))
            }
            None => return Err(err(PlanFileError::NoVersion)),
        }
        // what is checked is exactly what is then read: the parsed value, not the text
        let (content, seal) = unseal(value, key).map_err(|reason| Error::PlanIntegrity {
            path: path.to_path_buf(),
            reason,
        })?;
        let plan: Self =
            serde_json::from_value(content).map_err(|e| err(PlanFileError::Malformed(e)))?;
        plan.check_hosts().map_err(err)?;
        Ok((plan, seal))
    }
}

/// A plan file's content (the file without `digest` and `hmac`) once they vouch for it.
fn unseal(value: Value, key: Option<&Secret>) -> Result<(Value, Seal), IntegrityError> {
    let Value::Object(mut map) = value else {
        return Err(IntegrityError::NotAnObject);
    };
    let recorded = map.remove(DIGEST_FIELD);
    let hmac = map.remove(HMAC_FIELD);
    let content = Value::Object(map);
    let recorded = recorded
        .as_ref()
        .and_then(Value::as_str)
        .ok_or(IntegrityError::NoDigest)?;
    let digest = crate::seal::digest(&content);
    if recorded != digest {
        return Err(IntegrityError::Digest {
            computed: digest,
            recorded: recorded.to_string(),
        });
    }
    if let Some(key) = key {
        let hmac = hmac
            .as_ref()
            .and_then(Value::as_str)
            .ok_or(IntegrityError::NoHmac)?;
        if !crate::seal::verify_hmac(&content, key, hmac) {
            return Err(IntegrityError::Hmac);
        }
    }
    Ok((
        content,
        Seal {
            digest,
            authenticated: key.is_some(),
        },
    ))
}

impl<D: Domain> Plan<D> {
    /// A plan file is JSON a person can edit: each host must appear once, depend only on hosts
    /// of the plan, and not in a cycle; each change must depend only on changes of its host.
    fn check_hosts(&self) -> Result<(), PlanFileError> {
        let mut names = std::collections::BTreeSet::new();
        for host in &self.hosts {
            if !names.insert(host.name.as_str()) {
                return Err(PlanFileError::HostTwice(host.name.clone()));
            }
        }
        for host in &self.hosts {
            if let Some(dep) = host.depends_on.iter().find(|d| !names.contains(d.as_str())) {
                return Err(PlanFileError::UnknownHost {
                    host: host.name.clone(),
                    dependency: dep.clone(),
                });
            }
            host.check_changes()?;
        }
        let deps = self
            .hosts
            .iter()
            .map(|h| (h.name.clone(), h.depends_on.clone()));
        match crate::graph::Dag::from_deps(deps) {
            Err(Error::Cycle(cycle)) => Err(PlanFileError::HostCycle(cycle)),
            _ => Ok(()),
        }
    }
}

impl<D: Domain> HostPlan<D> {
    fn check_changes(&self) -> Result<(), PlanFileError> {
        let mut addresses = std::collections::BTreeSet::new();
        for change in &self.changes {
            if !addresses.insert(change.address.as_str()) {
                return Err(PlanFileError::ChangeTwice {
                    host: self.name.clone(),
                    address: change.address.clone(),
                });
            }
        }
        for change in &self.changes {
            if let Some(dep) = change
                .depends_on
                .iter()
                .find(|d| !addresses.contains(d.as_str()))
            {
                return Err(PlanFileError::UnknownChange {
                    host: self.name.clone(),
                    address: change.address.clone(),
                    dependency: dep.clone(),
                });
            }
        }
        let deps = self
            .changes
            .iter()
            .map(|c| (c.address.clone(), c.depends_on.clone()));
        match crate::graph::Dag::from_deps(deps) {
            Err(Error::Cycle(cycle)) => Err(PlanFileError::ChangeCycle {
                host: self.name.clone(),
                cycle,
            }),
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
    fn the_streamed_digest_is_the_digest_a_save_records() {
        let mut p = plan();
        let mut second = p.hosts[0].clone();
        second.name = "host02".into();
        second.depends_on = vec!["host01".into(), "left-out".into()];
        p.hosts.push(second);
        let dir = tempfile::tempdir().expect("tmp");
        let saved = p.save(&dir.path().join("plan.json"), None).expect("save");
        assert_eq!(p.digest(), Some(saved.digest));
    }

    #[test]
    fn a_cycle_between_changes_of_one_host_or_a_bad_version_is_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("plan.json");
        let mut p = plan();
        let mut other = p.hosts[0].changes[0].clone();
        other.address = "b.setting".into();
        other.depends_on = vec!["a.setting".into()];
        p.hosts[0].changes[0].depends_on = vec!["b.setting".into()];
        p.hosts[0].changes.push(other);
        p.save(&path, None).expect("save");
        let e = Plan::<Test>::load(&path, None).expect_err("a cycle");
        assert!(
            e.to_string()
                .contains("dependency cycle between changes of host `host01`"),
            "{e}"
        );
        for (version, shown) in [
            ("-1", "-1"),
            ("18446744073709551616", "1.8446744073709552e+19"),
        ] {
            std::fs::write(
                &path,
                format!("{{\"kind\": \"test-plan\", \"format_version\": {version}}}"),
            )
            .expect("write");
            let e = Plan::<Test>::load(&path, None).expect_err("version");
            assert!(
                e.to_string().contains(&format!("format version {shown};")),
                "{e}"
            );
        }
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
        let saved = plan().save(&p, None).expect("save");
        let (back, seal): (Plan<Test>, _) = Plan::load(&p, None).expect("load");
        assert_eq!(seal, saved);
        assert_eq!(back.hosts[0].changes, plan().hosts[0].changes);
        assert_eq!(back.config_dir(), Path::new("/srv/conf"));
        std::fs::write(&p, "{\"kind\": \"other\"}").expect("write");
        let e = Plan::<Test>::load(&p, None).expect_err("not a plan");
        assert!(e.to_string().contains("test-plan"), "{e}");
        std::fs::write(&p, "{\"kind\": \"test-plan\", \"format_version\": 99}").expect("write");
        let e = Plan::<Test>::load(&p, None).expect_err("future");
        assert!(e.to_string().contains("version 99"), "{e}");
    }

    #[test]
    fn plan_files_without_a_config_dir_still_load() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("plan.json");
        let mut old = plan();
        old.config_dir = None;
        old.save(&p, None).expect("save");
        assert!(!std::fs::read_to_string(&p)
            .expect("read")
            .contains("config_dir"));
        let (back, _): (Plan<Test>, _) = Plan::load(&p, None).expect("load");
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
        cyclic.save(&p, None).expect("save");
        let e = Plan::<Test>::load(&p, None).expect_err("a cycle");
        assert!(
            e.to_string()
                .ends_with("dependency cycle between hosts: host01 -> host02 -> host01"),
            "{e}"
        );
    }

    /// Saves `plan`, lets `edit` change the file's JSON (keeping its digest), and loads it.
    fn load_edited(plan: &Plan<Test>, edit: impl FnOnce(&mut Value)) -> Result<Plan<Test>, Error> {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("plan.json");
        plan.save(&p, None).expect("save");
        let mut value: Value =
            serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
        edit(&mut value);
        std::fs::write(&p, serde_json::to_string_pretty(&value).expect("encode")).expect("write");
        Plan::load(&p, None).map(|(plan, _)| plan)
    }

    /// Recomputes the digest after an edit, as an attacker who knows the format can.
    fn reseal(value: &mut Value) {
        let map = value.as_object_mut().expect("object");
        map.remove(DIGEST_FIELD);
        let mut content = map.clone();
        content.remove(HMAC_FIELD);
        let digest = crate::seal::digest(&Value::Object(content));
        map.insert(DIGEST_FIELD.into(), Value::String(digest));
    }

    #[test]
    fn an_edited_operation_or_display_is_refused_naming_the_mismatch() {
        let digest = plan().digest().expect("digest");
        for edit in ["operation", "after", "before", "equivalent"] {
            let e = load_edited(&plan(), |v| {
                v["hosts"][0]["changes"][0][edit] = serde_json::json!("edited");
            })
            .expect_err("edited");
            assert!(
                e.to_string()
                    .contains("was changed after it was saved: its content hashes to `sha256:")
                    && e.to_string()
                        .contains(&format!("not to its recorded digest `{digest}`")),
                "{edit}: {e}"
            );
        }
        // layout is not content: the same plan re-indented still loads
        load_edited(&plan(), |_| {}).expect("re-indented");
        let e = load_edited(&plan(), |v| {
            v.as_object_mut().expect("object").remove(DIGEST_FIELD);
        })
        .expect_err("no digest");
        assert!(
            e.to_string()
                .ends_with("it has no `digest`; make the plan again with this kmsconf"),
            "{e}"
        );
    }

    #[test]
    fn with_a_key_only_a_plan_signed_with_it_loads() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("plan.json");
        let key = Secret::new("0123456789abcdef0123456789abcdef");
        let seal = plan().save(&p, Some(&key)).expect("save");
        assert!(seal.authenticated);
        let (_, loaded) = Plan::<Test>::load(&p, Some(&key)).expect("signed");
        assert_eq!(loaded, seal);
        let text = std::fs::read_to_string(&p).expect("read");
        assert!(!text.contains(key.expose()), "the key is never written");
        // an attacker who edits the operation and recomputes the digest has no key for the HMAC
        let mut value: Value = serde_json::from_str(&text).expect("json");
        value["hosts"][0]["changes"][0]["operation"] = serde_json::json!("edited");
        reseal(&mut value);
        std::fs::write(&p, value.to_string()).expect("write");
        let (unsigned, _) = Plan::<Test>::load(&p, None).expect("the digest alone holds");
        assert_eq!(unsigned.hosts[0].changes[0].operation, "edited");
        let e = Plan::<Test>::load(&p, Some(&key)).expect_err("hmac");
        assert!(
            e.to_string().ends_with(
                "its `hmac` does not match the plan key: it was changed, or made with another key"
            ),
            "{e}"
        );
        plan().save(&p, None).expect("save unsigned");
        let e = Plan::<Test>::load(&p, Some(&key)).expect_err("unsigned");
        assert!(
            e.to_string()
                .contains("it has no `hmac`, but a plan key was given"),
            "{e}"
        );
    }

    #[test]
    fn a_host_listed_twice_or_an_unknown_dependency_is_refused() {
        let e = load_edited(&plan(), |v| {
            let host = v["hosts"][0].clone();
            v["hosts"].as_array_mut().expect("hosts").push(host);
            reseal(v);
        })
        .expect_err("twice");
        assert!(
            e.to_string().ends_with("host `host01` is listed twice"),
            "{e}"
        );
        let e = load_edited(&plan(), |v| {
            v["hosts"][0]["depends_on"] = serde_json::json!(["host09"]);
            reseal(v);
        })
        .expect_err("unknown host");
        assert!(
            e.to_string()
                .ends_with("host `host01` depends on `host09`, which is not a host of the plan"),
            "{e}"
        );
        let e = load_edited(&plan(), |v| {
            v["hosts"][0]["changes"][0]["depends_on"] = serde_json::json!(["b.setting"]);
            reseal(v);
        })
        .expect_err("unknown change");
        assert!(
            e.to_string().ends_with("change `a.setting` of host `host01` depends on `b.setting`, which is not a change of that host"),
            "{e}"
        );
    }

    #[test]
    fn a_saved_plan_drops_dependencies_on_hosts_outside_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("plan.json");
        let mut selected = plan();
        selected.hosts[0].depends_on = vec!["not-selected".into()];
        selected.save(&p, None).expect("save");
        let (back, _) = Plan::<Test>::load(&p, None).expect("load");
        assert!(back.hosts[0].depends_on.is_empty());
    }
}
