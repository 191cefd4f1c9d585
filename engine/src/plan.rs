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
            Some(found) => return Err(err(version_error(found, &bytes, D::FORMAT_VERSION))),
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

/// Why `found` is not the `format_version` this kmsconf reads. A number no version can be
/// (negative, a fraction, past `u32`) is out of range, shown as written in `bytes`: serde_json
/// reads `18446744073709551616` as the float `1.8446744073709552e19`.
fn version_error(found: &Value, bytes: &[u8], supported: u32) -> PlanFileError {
    let in_range = found.as_u64().is_some_and(|v| u32::try_from(v).is_ok());
    if !found.is_number() || in_range {
        return PlanFileError::Version {
            found: found.to_string(),
            supported,
        };
    }
    let written =
        written_number(bytes, "format_version").map_or_else(|| found.to_string(), str::to_string);
    PlanFileError::VersionOutOfRange { written, supported }
}

/// The number a top-level `key` of the JSON object in `bytes` has, as written (the last one,
/// as serde_json keeps it). Only the top level counts: strings and nested values are skipped.
fn written_number<'b>(bytes: &'b [u8], key: &str) -> Option<&'b str> {
    let text = std::str::from_utf8(bytes).ok()?;
    let quoted = format!("\"{key}\"");
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut found = None;
    for (i, b) in text.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' if !in_string && depth == 1 && text[i..].starts_with(&quoted) => {
                let after = text[i + quoted.len()..].trim_start().strip_prefix(':')?;
                let value = after.trim_start();
                let end = value
                    .find(|c: char| !matches!(c, '0'..='9' | '-' | '+' | '.' | 'e' | 'E'))
                    .unwrap_or(value.len());
                found = Some(&value[..end]);
                in_string = true;
            }
            b'"' => in_string = !in_string,
            b'{' | b'[' if !in_string => depth += 1,
            b'}' | b']' if !in_string => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    found.filter(|n| !n.is_empty())
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
mod tests;
