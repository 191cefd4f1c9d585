//! The lab state file on disk: loading it (checked, and brought up to date from older files),
//! creating a fresh host, the OS lock on `PATH.lock` each round trip holds (which counts the
//! round trips), and writing it back atomically. What the host does lives in the parent module.

use std::fs::File;
use std::path::{Path, PathBuf};

use kmsconf_engine::read::read_bounded;

use super::{groups, LabFile, FORMAT};
use crate::{Error, LabStateError};

/// The longest `latency_ms` a lab host takes: ten minutes, the default `KMSCONF_TIMEOUT`.
pub const MAX_LATENCY_MS: u64 = 600_000;

/// A lab state file holds one host and its simulated clients; far larger is not one.
const LAB_LIMIT: kmsconf_engine::read::Limit = kmsconf_engine::read::Limit {
    what: "a lab state file",
    bytes: 16 << 20,
};

/// Loads the lab file at `path` under its lock (creating a fresh host when `create` and it does
/// not exist), runs `f`, and writes the file back atomically when `f` changed it. Returns `f`'s
/// result and whether the file was created.
pub fn with_lab_file<R>(
    path: &Path,
    create: bool,
    f: impl FnOnce(&mut LabFile) -> Result<R, Error>,
) -> Result<(R, bool), Error> {
    with_locked(path, create, |file, _| f(file))
}

/// [`with_lab_file`], with `f` also given the lock it runs under.
pub(super) fn with_locked<R>(
    path: &Path,
    create: bool,
    f: impl FnOnce(&mut LabFile, &mut HostLock) -> Result<R, Error>,
) -> Result<(R, bool), Error> {
    // through a symlink, the file it names is the host: read, locked and replaced there, so two
    // links to one file are one host and the link stays a link
    let resolved = resolve_link(path);
    let path = resolved.as_path();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let mut lock = HostLock::take(path)?;
    let (mut file, created) = match read_bounded(path, LAB_LIMIT) {
        Ok(bytes) => (parse(path, &bytes)?, false),
        Err(kmsconf_engine::Error::Read { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound && create =>
        {
            (LabFile::fresh(path)?, true)
        }
        Err(e) => return Err(e.into()),
    };
    let before = file.clone();
    let result = f(&mut file, &mut lock)?;
    if created || file != before {
        save(path, &file)?;
    }
    Ok((result, created))
}

/// The OS lock on `PATH.lock` that one round trip or lab command holds. The lock file's text is
/// the number of round trips kmsconf made to the host (discoveries and batches), for the
/// benchmarks: counting there, a discovery that changes nothing never rewrites the state file.
pub(super) struct HostLock {
    file: File,
    path: PathBuf,
}

impl HostLock {
    fn take(path: &Path) -> Result<Self, Error> {
        let path = PathBuf::from(format!("{}.lock", path.display()));
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        file.lock().map_err(io)?;
        Ok(Self { file, path })
    }

    /// One more round trip in the count; a lock file without one (from before it was kept
    /// there, or edited) starts again from zero.
    pub(super) fn count_round_trip(&mut self) -> Result<(), Error> {
        use std::io::{Read, Seek, Write};
        let mut bytes = Vec::new();
        let counted = self
            .file
            .rewind()
            .and_then(|()| self.file.read_to_end(&mut bytes))
            .and_then(|_| {
                let count = std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|text| text.trim().parse::<u64>().ok())
                    .unwrap_or(0)
                    .saturating_add(1);
                let text = format!("{count}\n");
                self.file.rewind()?;
                self.file.write_all(text.as_bytes())?;
                self.file.set_len(text.len() as u64)
            });
        counted.map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// The file `path` names, through any symlinks; a link to a file not created yet names where
/// it will be.
fn resolve_link(path: &Path) -> PathBuf {
    if let Ok(real) = kmsconf_engine::paths::canonical(path) {
        return real;
    }
    match std::fs::read_link(path) {
        Ok(target) => path.parent().unwrap_or(Path::new("")).join(target),
        Err(_) => path.to_path_buf(),
    }
}

/// Reads a lab file without creating or changing it.
pub fn load(path: &Path) -> Result<LabFile, Error> {
    parse(path, &read_bounded(path, LAB_LIMIT)?)
}

fn parse(path: &Path, text: &[u8]) -> Result<LabFile, Error> {
    let invalid = |source: LabStateError| Error::LabState {
        path: path.to_path_buf(),
        source,
    };
    // the format first: a file of another format is named as such, not by its first odd field
    let value: serde_json::Value = serde_json::from_slice(text).map_err(|e| invalid(e.into()))?;
    match value.get("format").and_then(serde_json::Value::as_u64) {
        Some(found) if found != u64::from(FORMAT) => {
            return Err(invalid(LabStateError::Format {
                found,
                expected: FORMAT,
            }))
        }
        _ => {}
    }
    let mut file: LabFile = serde_json::from_slice(text).map_err(|e| invalid(e.into()))?;
    if file.latency_ms > MAX_LATENCY_MS {
        return Err(invalid(LabStateError::Latency {
            found: file.latency_ms,
            max: MAX_LATENCY_MS,
        }));
    }
    groups::check(&file).map_err(invalid)?;
    add_built_in_rules(&mut file.host.firewall);
    Ok(file)
}

/// A lab file from before the Key Management Service rules were kept one by one holds the group
/// with no rules: give it Windows' built-in rules, enabled (and scoped) as the group was.
fn add_built_in_rules(fw: &mut kmsconf_model::state::FirewallState) {
    let fresh = kmsconf_model::state::FirewallState::windows_default();
    for (group, built_in) in fresh.groups {
        let Some(g) = fw.groups.get_mut(&group) else {
            continue;
        };
        if !g.rules.is_empty() || built_in.rules.is_empty() {
            continue;
        }
        let mut rules = built_in.rules;
        for r in rules.values_mut() {
            r.enabled = g.enabled;
            if !g.remote_addresses.is_empty() {
                r.remote_addresses = g.remote_addresses.clone();
            }
        }
        *g = kmsconf_model::state::RuleGroupState::from_rules(rules);
    }
}

fn save(path: &Path, file: &LabFile) -> Result<(), Error> {
    let mut text = serde_json::to_string_pretty(file).map_err(|e| Error::LabState {
        path: path.to_path_buf(),
        source: LabStateError::Encode(e),
    })?;
    text.push('\n');
    // a simulated host: a kill must leave the file whole (the rename does), a power loss
    // need not keep the last round trip
    kmsconf_engine::write::atomic_write_unflushed(path, text.as_bytes())?;
    Ok(())
}
