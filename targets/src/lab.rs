//! The lab target: a KMS host simulated in a JSON state file, behaving like the Windows Software
//! Licensing Service as `kms-facts.md` documents it, so kmsconf can be tried and tested without
//! Windows.
//!
//! What it enforces, as Windows does: an Office key needs its license pack; activation needs a
//! KMS host key; online activation fails with 0xC004FC03 when the host is offline; phone
//! activation accepts only the confirmation ID that matches the installation ID (which
//! `kmsconf lab confirmation-id` produces, as the phone line would); the KMS settings slmgr.vbs
//! gates are refused until a KMS host key is installed (activation is not needed); settings
//! that need a service restart stay pending until it happens; the Key Management Service
//! firewall group holds its two built-in rules with their profiles and scopes. Every round trip
//! holds an OS lock on `PATH.lock`, which also counts the round trips, and writes the state file
//! atomically when it changed the host, so concurrent runs and kills never leave it half-written.
//!
//! For day-2 operations the lab host also has simulated KMS clients ([`clients`]) and a clock
//! that can be set off from the real one (`clock_offset_seconds`), so counts, the 30-day window,
//! duplicate CMIDs and clock skew behave as they do on a real host.

pub mod agent;
mod cim;
pub mod clients;
pub mod listen;
mod operations;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kmsconf_engine::lock::{LockGuard, LockHolder};
use kmsconf_engine::read::read_bounded;
use kmsconf_engine::target::{ChangeStatus, Discovery, Target};
use kmsconf_model::config::ProductId;
use serde::{Deserialize, Serialize};

use crate::Error;
use kmsconf_model::catalog;
use kmsconf_model::ops::{OpKind, TargetOp};
use kmsconf_model::state::{Channel, HostState, ServiceState};

const FORMAT: u32 = 1;
/// The rearm count a lab host reports (`slmgr.vbs /dlv`, "Remaining Windows rearm count").
pub const LAB_REARM_COUNT: u32 = 5;

/// The whole lab state file: the host as discovery sees it, plus the lab's own controls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabFile {
    pub format: u32,
    /// Seeds the host's installation IDs, so two lab hosts never share one.
    pub host_id: String,
    pub host: HostState,
    /// No internet: online activation fails with 0xC004FC03 (phone activation still works).
    #[serde(default)]
    pub offline: bool,
    /// kmsconf cannot reach the host at all.
    #[serde(default)]
    pub unreachable: bool,
    /// Every round trip to the host takes this long.
    #[serde(default)]
    pub latency_ms: u64,
    /// Operations the host will refuse, with the HRESULT it answers.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// The host's clock runs this many seconds ahead (negative: behind) of the real one.
    #[serde(default)]
    pub clock_offset_seconds: i64,
    /// Activation requests simulated clients sent (`kmsconf lab clients add`), oldest first.
    #[serde(default)]
    pub clients: Vec<clients::ClientRequest>,
    /// While a restart is pending: the settings the running Software Protection service still
    /// uses (what a Windows host's CIM properties show, its registry showing `host.service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_service: Option<ServiceState>,
    /// Where files from before `PATH.lock` counted the round trips kept the count: still read,
    /// so they load unchanged, and no longer written.
    #[serde(default, skip_serializing)]
    round_trips: serde::de::IgnoredAny,
}

/// An injected failure: the next `remaining` operations of kind `op` fail with `hresult`
/// (`None` = every time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub op: OpKind,
    pub hresult: u32,
    pub remaining: Option<u32>,
}

impl LabFile {
    fn fresh(path: &Path) -> Result<Self, Error> {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("labhost");
        let name: String = stem
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(15)
            .collect::<String>()
            .to_ascii_uppercase();
        let mut file = Self {
            format: FORMAT,
            host_id: kmsconf_engine::lock::random_id()?,
            host: HostState::fresh_windows_server(if name.is_empty() { "LABHOST" } else { &name }),
            offline: false,
            unreachable: false,
            latency_ms: 0,
            faults: Vec::new(),
            clock_offset_seconds: 0,
            clients: Vec::new(),
            running_service: None,
            round_trips: serde::de::IgnoredAny,
        };
        let observed = clients::observe(&file, 0);
        file.host.client_machine_id = observed.client_machine_id;
        file.host.remaining_rearm_count = Some(LAB_REARM_COUNT);
        Ok(file)
    }

    /// Takes the first fault aimed at `kind`, counting it down.
    fn take_fault(&mut self, kind: OpKind) -> Option<u32> {
        let i = self.faults.iter().position(|f| f.op == kind)?;
        let fault = &mut self.faults[i];
        let code = fault.hresult;
        match &mut fault.remaining {
            Some(n) if *n <= 1 => {
                self.faults.remove(i);
            }
            Some(n) => *n -= 1,
            None => {}
        }
        Some(code)
    }
}

/// The longest `latency_ms` a lab host takes: ten minutes, the default `KMSCONF_TIMEOUT`.
pub const MAX_LATENCY_MS: u64 = 600_000;

/// A lab state file holds one host and its simulated clients; far larger is not one.
const LAB_LIMIT: kmsconf_engine::read::Limit = kmsconf_engine::read::Limit {
    what: "a lab state file",
    bytes: 16 << 20,
};

/// A lab host reached through its state file.
pub struct LabTarget {
    host: String,
    path: PathBuf,
    /// The longest a round trip may take, as for a real host: a slower one times out.
    timeout: Duration,
}

impl LabTarget {
    pub fn new(host: &str, path: PathBuf, timeout: Duration) -> Self {
        Self {
            host: host.to_string(),
            path,
            timeout,
        }
    }

    /// One round trip: lock, load (or create), honour the lab's controls, count it, run `f`,
    /// save if anything changed.
    fn round_trip<R>(&self, f: impl FnOnce(&mut LabFile) -> R) -> Result<(R, bool), Error> {
        with_locked(&self.path, true, |file, lock| {
            if file.unreachable {
                return Err(Error::Unreachable {
                    host: self.host.clone(),
                    message: format!("lab host `{}` is set unreachable (`kmsconf lab unreachable {} off` undoes it)", self.path.display(), self.path.display()),
                });
            }
            let latency = Duration::from_millis(file.latency_ms);
            if latency > self.timeout {
                std::thread::sleep(self.timeout);
                return Err(Error::Timeout {
                    host: self.host.clone(),
                    seconds: self.timeout.as_secs(),
                    during: format!(
                        "a round trip to lab host `{}`, which takes {} ms",
                        self.path.display(),
                        file.latency_ms
                    ),
                });
            }
            std::thread::sleep(latency);
            lock.count_round_trip()?;
            Ok(f(file))
        })
    }
}

impl Target for LabTarget {
    type State = HostState;
    type Operation = TargetOp;
    type Error = Error;

    fn discover(&self) -> Result<Discovery<HostState>, Error> {
        let (result, created) =
            self.round_trip(|file| match file.take_fault(OpKind::Discover) {
                Some(code) => Err(code),
                None => Ok(clients::observe(file, kmsconf_model::clock::now())),
            })?;
        let state = result.map_err(|code| Error::Refused {
            host: self.host.clone(),
            code,
            message: format!(
                "discovery failed: {}",
                catalog::explain_failure(code, "the host refused the query")
            ),
        })?;
        tracing::debug!(host = %self.host, created, "lab host discovered");
        Ok(Discovery { state, created })
    }

    fn execute(&self, batch: &[TargetOp]) -> Result<Vec<ChangeStatus>, Error> {
        let (outcomes, _) =
            self.round_trip(|file| batch.iter().map(|op| operations::run(file, op)).collect())?;
        Ok(outcomes)
    }

    /// An OS lock on `PATH.apply.lock`, which also holds the holder's record: a killed process
    /// releases the OS lock with its life, and its record is then overwritten by the next run.
    fn lock(&self, holder: &LockHolder) -> Result<LockGuard, Error> {
        let (mut file, path) = self.open_apply_lock()?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(match read_holder(&mut file) {
                    Some(holder) => Error::Locked {
                        host: self.host.clone(),
                        holder: Box::new(holder),
                    },
                    None => Error::Unlock {
                        host: self.host.clone(),
                        message: format!(
                            "`{}` is locked by another process that left no record",
                            path.display()
                        ),
                    },
                });
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(Error::Io { path, source }),
        }
        write_holder(&mut file, Some(holder)).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        Ok(LockGuard::new(ApplyLock { file, path }))
    }

    fn force_unlock(&self, lock_id: &str) -> Result<LockHolder, Error> {
        let (mut file, path) = self.open_apply_lock()?;
        let err = |message: String| Error::Unlock {
            host: self.host.clone(),
            message,
        };
        let held = matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock));
        let Some(holder) = read_holder(&mut file) else {
            return Err(err("the host is not locked".into()));
        };
        if holder.id != lock_id {
            return Err(err(format!(
                "lock ID `{lock_id}` does not match the current lock {holder}"
            )));
        }
        if held {
            return Err(err(format!(
                "the lock is held by a live process: {holder}; an OS lock ends with its process, so stop that run instead"
            )));
        }
        write_holder(&mut file, None).map_err(|source| Error::Io { path, source })?;
        Ok(holder)
    }
}

impl LabTarget {
    /// The record of the apply lock's holder, if there is one.
    fn current_holder(&self) -> Option<LockHolder> {
        let (mut file, _) = self.open_apply_lock().ok()?;
        read_holder(&mut file)
    }

    fn open_apply_lock(&self) -> Result<(File, PathBuf), Error> {
        let path = PathBuf::from(format!("{}.apply.lock", self.path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        Ok((file, path))
    }
}

/// The held apply lock: clears its record, then the OS releases the lock when the file closes.
struct ApplyLock {
    file: File,
    path: PathBuf,
}

impl Drop for ApplyLock {
    fn drop(&mut self) {
        if let Err(e) = write_holder(&mut self.file, None) {
            tracing::warn!(path = %self.path.display(), error = %e, "could not clear the lock record");
        }
    }
}

fn read_holder(file: &mut File) -> Option<LockHolder> {
    use std::io::{Read, Seek};
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_holder(file: &mut File, holder: Option<&LockHolder>) -> std::io::Result<()> {
    use std::io::{Seek, Write};
    let text = holder
        .map(|h| serde_json::to_string(h).unwrap_or_default())
        .unwrap_or_default();
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

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
fn with_locked<R>(
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
struct HostLock {
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
    fn count_round_trip(&mut self) -> Result<(), Error> {
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
    if let Ok(real) = std::fs::canonicalize(path) {
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
    let invalid = |message: String| Error::LabState {
        path: path.to_path_buf(),
        message,
    };
    let at = |e: &serde_json::Error| {
        // serde_json ends its message with the position, which goes first here
        let text = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
        format!("line {} column {}: {message}", e.line(), e.column())
    };
    // the format first: a file of another format is named as such, not by its first odd field
    let value: serde_json::Value = serde_json::from_slice(text).map_err(|e| invalid(at(&e)))?;
    match value.get("format").and_then(serde_json::Value::as_u64) {
        Some(format) if format != u64::from(FORMAT) => {
            return Err(invalid(format!(
                "format {format} is not the format {FORMAT} this kmsconf reads"
            )))
        }
        _ => {}
    }
    let mut file: LabFile = serde_json::from_slice(text).map_err(|e| invalid(at(&e)))?;
    if file.latency_ms > MAX_LATENCY_MS {
        return Err(invalid(format!(
            "`latency_ms` is {}, outside 0..={MAX_LATENCY_MS}",
            file.latency_ms
        )));
    }
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
        message: e.to_string(),
    })?;
    text.push('\n');
    // a simulated host: a kill must leave the file whole (the rename does), a power loss
    // need not keep the last round trip
    kmsconf_engine::write::atomic_write_unflushed(path, text.as_bytes())?;
    Ok(())
}

/// FNV-1a: deterministic on purpose, so the installation, confirmation and client machine IDs a
/// lab host shows are the same on every run.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `groups` groups of `width` digits drawn from a splitmix64 stream seeded by `seed`.
fn digit_groups(seed: u64, groups: usize, width: u32) -> String {
    let mut state = seed;
    let modulus = 10u64.pow(width);
    (0..groups)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            format!("{:0w$}", z % modulus, w = width as usize)
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The activation ID (`SoftwareLicensingProduct.ID`) of the SKU a lab host's product key sits
/// on: an Office KMS host SKU's from the catalogue; for Windows one made up per host and channel
/// (a KMS host key and a KMS client key sit on different SKUs), in the form Windows shows.
fn activation_id(host_id: &str, product: ProductId, channel: Channel) -> String {
    if let Some(id) = catalog::product(product).and_then(|p| p.activation_id.clone()) {
        return id;
    }
    let a = fnv1a(format!("{host_id}/{product}/{channel}").as_bytes());
    let b = fnv1a(format!("sku/{a}").as_bytes());
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// The installation ID the lab host shows for a key: nine groups of seven digits, as `/dti`.
fn installation_id(host_id: &str, product: ProductId, key: &str) -> String {
    digit_groups(fnv1a(format!("{host_id}/{product}/{key}").as_bytes()), 9, 7)
}

/// The confirmation ID the phone line gives for an installation ID: eight groups of six digits.
/// `None` when the text is not an installation ID (63 digits).
pub fn confirmation_id_for(installation_id: &str) -> Option<String> {
    let d = digits(installation_id);
    (d.len() == 63).then(|| digit_groups(fnv1a(format!("cid/{d}").as_bytes()), 8, 6))
}

#[cfg(test)]
mod tests {
    use super::operations::{SL_E_CIDIID_MISMATCHED, SL_E_INVALID_PRODUCT_KEY, SL_E_NETWORK};
    use super::*;
    use kmsconf_engine::secret::Secret;
    use kmsconf_model::keys::{ConfirmationId, ProductKey};
    use kmsconf_model::ops::ServiceSetting;

    const KEY: &str = "BCDFG-HJKMP-QRTVW-XY234-6789B";

    fn lab() -> (tempfile::TempDir, LabTarget) {
        let dir = tempfile::tempdir().expect("tmp");
        let t = LabTarget::new(
            "kms01",
            dir.path().join("kms01.json"),
            Duration::from_secs(600),
        );
        (dir, t)
    }

    fn key() -> ProductKey {
        ProductKey::parse(&Secret::new(KEY)).expect("key")
    }

    /// Every HRESULT the lab answers is a row of the facts table marked `lab = true`, and so
    /// in the error catalogue.
    #[test]
    fn every_code_the_lab_returns_is_in_the_facts_table() {
        use super::operations::{
            E_FILE_NOT_FOUND, E_INVALIDARG, SL_E_NO_KMS_CONTACTED, SL_E_PKEY_NOT_INSTALLED,
        };
        for code in [
            E_FILE_NOT_FOUND,
            E_INVALIDARG,
            SL_E_PKEY_NOT_INSTALLED,
            SL_E_INVALID_PRODUCT_KEY,
            SL_E_CIDIID_MISMATCHED,
            SL_E_NO_KMS_CONTACTED,
            SL_E_NETWORK,
        ] {
            let row = kmsconf_model::facts::facts().hresult(code);
            assert!(
                row.is_some_and(|h| h.lab),
                "{} is not a lab row of the facts table",
                catalog::format_code(code)
            );
            assert!(catalog::code(code).is_some());
        }
        // the retirement's: a key uninstall on a SKU that holds none
        let (_d, t) = lab();
        let gone = t
            .execute(&[TargetOp::UninstallProductKey {
                product: ProductId::Office2019,
                activation_id: "70512334-47b4-44db-a233-be5ea33b914c".into(),
            }])
            .expect("run");
        let ChangeStatus::Failed {
            code: Some(code), ..
        } = gone[0]
        else {
            panic!("{gone:?}");
        };
        assert_eq!(code, SL_E_PKEY_NOT_INSTALLED);
        let row = kmsconf_model::facts::facts().hresult(code).expect("row");
        assert!(row.lab && row.ops.iter().any(|o| o == OpKind::UninstallKey.id()));
    }

    #[test]
    fn a_missing_host_is_created_fresh_and_reported_once() {
        let (_d, t) = lab();
        let first = t.discover().expect("discover");
        assert!(first.created);
        assert_eq!(
            first.state.products[&ProductId::Windows].channel,
            Channel::KmsClient
        );
        assert!(!t.discover().expect("again").created);
    }

    /// As slmgr.vbs: the gated settings wait for an installed KMS host key, not for activation;
    /// host caching is not gated at all. The listening port's clear (a retirement's, "applies to
    /// KMS hosts only") passes the same gate.
    #[test]
    fn settings_wait_for_a_kms_host_key_not_for_activation() {
        let (_d, t) = lab();
        let set = |key: &str, value| {
            [TargetOp::SetService(
                ServiceSetting::named(key, value).expect("setting"),
            )]
        };
        let port = set("port", kmsconf_model::settings::SettingValue::U16(1689));
        let refused = t.execute(&port).expect("run");
        assert!(
            matches!(&refused[0], ChangeStatus::Failed { code: None, message } if message.contains("no KMS host key")),
            "{refused:?}"
        );
        let clear = [TargetOp::ClearListeningPort];
        let refused = t.execute(&clear).expect("run");
        assert!(
            matches!(&refused[0], ChangeStatus::Failed { code: None, message } if message.contains("no KMS host key")),
            "{refused:?}"
        );
        let caching = set(
            "host_caching",
            kmsconf_model::settings::SettingValue::Bool(false),
        );
        assert_eq!(
            t.execute(&caching).expect("run")[0],
            ChangeStatus::applied()
        );
        let install = [TargetOp::InstallProductKey {
            product: ProductId::Windows,
            key: key(),
        }];
        assert!(matches!(
            t.execute(&install).expect("run")[0],
            ChangeStatus::Applied { .. }
        ));
        // installed, not activated: taken
        assert_eq!(t.execute(&port).expect("run")[0], ChangeStatus::applied());
        let state = t.discover().expect("discover").state;
        assert_eq!(state.service.port, 1689);
        assert!(state.service.restart_pending);
        assert!(!state.windows_is_activated_kms_host());
        assert_eq!(t.execute(&clear).expect("run")[0], ChangeStatus::applied());
        assert_eq!(t.discover().expect("discover").state.service.port, 0);
    }

    /// The Office 2010 pack keeps one folder per host OS; only the host OS's folder is a pack.
    #[test]
    fn a_pack_of_per_os_folders_is_refused_naming_them() {
        let (d, t) = lab();
        let pack = d.path().join("office-2010");
        for os in ["win2k3", "win7", "win8"] {
            std::fs::create_dir_all(pack.join(os)).expect("mkdir");
            std::fs::write(pack.join(os).join("license.xrm-ms"), "x").expect("write");
        }
        let install = |path: std::path::PathBuf| {
            t.execute(&[TargetOp::InstallLicensePack {
                product: ProductId::Office2010,
                path,
            }])
            .expect("run")
            .remove(0)
        };
        let refused = install(pack.clone());
        assert!(
            matches!(&refused, ChangeStatus::Failed { code: Some(0x8007_0002), message } if message.contains("(win2k3, win7, win8)")),
            "{refused:?}"
        );
        assert_eq!(install(pack.join("win8")), ChangeStatus::applied());
    }

    #[test]
    fn office_keys_need_their_pack_and_online_activation_needs_internet() {
        let (_d, t) = lab();
        let office = [TargetOp::InstallProductKey {
            product: ProductId::Office2019,
            key: key(),
        }];
        assert!(matches!(
            t.execute(&office).expect("run")[0],
            ChangeStatus::Failed {
                code: Some(SL_E_INVALID_PRODUCT_KEY),
                ..
            }
        ));
        with_lab_file(&t.path, false, |f| {
            f.offline = true;
            Ok(())
        })
        .expect("control");
        let ops = [
            TargetOp::InstallProductKey {
                product: ProductId::Windows,
                key: key(),
            },
            TargetOp::ActivateOnline {
                product: ProductId::Windows,
            },
        ];
        let out = t.execute(&ops).expect("run");
        assert!(
            matches!(
                out[1],
                ChangeStatus::Failed {
                    code: Some(SL_E_NETWORK),
                    ..
                }
            ),
            "{out:?}"
        );
    }

    #[test]
    fn phone_activation_takes_only_the_matching_confirmation_id() {
        let (_d, t) = lab();
        let w = ProductId::Windows;
        t.execute(&[TargetOp::InstallProductKey {
            product: w,
            key: key(),
        }])
        .expect("install");
        let iid = t.discover().expect("d").state.products[&w]
            .installation_id
            .clone()
            .expect("iid");
        assert_eq!(digits(&iid).len(), 63);
        let wrong = ConfirmationId::parse(&Secret::new("1".repeat(48))).expect("cid");
        let out = t
            .execute(&[TargetOp::ActivateByPhone {
                product: w,
                confirmation_id: wrong,
            }])
            .expect("run");
        assert!(matches!(
            out[0],
            ChangeStatus::Failed {
                code: Some(SL_E_CIDIID_MISMATCHED),
                ..
            }
        ));
        let right = ConfirmationId::parse(&Secret::new(confirmation_id_for(&iid).expect("cid")))
            .expect("cid");
        let out = t
            .execute(&[TargetOp::ActivateByPhone {
                product: w,
                confirmation_id: right,
            }])
            .expect("run");
        assert_eq!(
            out[0],
            ChangeStatus::Applied {
                detail: Some("activated by phone".into())
            }
        );
    }

    #[test]
    fn faults_fire_the_given_number_of_times() {
        let (_d, t) = lab();
        with_lab_file(&t.path, true, |f| {
            f.faults.push(Fault {
                op: OpKind::Firewall,
                hresult: 0x8007_0005,
                remaining: Some(1),
            });
            Ok(())
        })
        .expect("control");
        let op = [TargetOp::RemovePortRule];
        assert!(matches!(
            t.execute(&op).expect("run")[0],
            ChangeStatus::Failed {
                code: Some(0x8007_0005),
                ..
            }
        ));
        assert_eq!(t.execute(&op).expect("run")[0], ChangeStatus::applied());
    }

    #[test]
    fn a_second_lock_fails_naming_the_holder_and_a_dead_holder_can_be_cleared() {
        let (_d, t) = lab();
        let holder = LockHolder::current("apply").expect("random source");
        let guard = t.lock(&holder).expect("first lock");
        match t.lock(&LockHolder::current("apply").expect("random source")) {
            Err(Error::Locked { holder: h, .. }) => assert_eq!(*h, holder),
            Err(other) => panic!("expected Locked, got {other}"),
            Ok(_) => panic!("expected Locked, got a second lock"),
        }
        let live = t
            .force_unlock(&holder.id)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(live.contains("live process"), "{live}");
        drop(guard);
        assert!(
            t.lock(&LockHolder::current("apply").expect("random source"))
                .is_ok(),
            "released on drop"
        );
        // a record left behind (as by a killed process) is cleared by force-unlock with its ID
        let (mut f, _) = t.open_apply_lock().expect("open");
        write_holder(&mut f, Some(&holder)).expect("write");
        drop(f);
        assert!(t.force_unlock("wrong").is_err());
        assert_eq!(t.force_unlock(&holder.id).expect("unlock"), holder);
    }

    #[test]
    fn a_corrupt_state_file_is_reported_and_left_alone() {
        let (_d, t) = lab();
        std::fs::write(&t.path, "{ not json").expect("write");
        let e = t.discover().expect_err("corrupt");
        assert!(e.to_string().contains("line 1"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&t.path).expect("read"),
            "{ not json"
        );
    }

    #[test]
    fn a_lab_file_from_before_clients_and_clock_still_loads() {
        let (_d, t) = lab();
        t.discover().expect("create");
        let mut value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&t.path).expect("read")).expect("json");
        let file = value.as_object_mut().expect("object");
        file.remove("clients");
        file.remove("clock_offset_seconds");
        let host = file["host"].as_object_mut().expect("host");
        for key in ["clock", "client_machine_id", "remaining_rearm_count"] {
            host.remove(key);
        }
        std::fs::write(&t.path, value.to_string()).expect("write");
        let state = t.discover().expect("old file loads").state;
        assert!(state.client_machine_id.is_some());
        assert_eq!(state.remaining_rearm_count, Some(LAB_REARM_COUNT));
        assert!(state.clock.is_some());
    }

    #[test]
    fn extreme_numbers_in_a_hand_edited_file_are_not_an_overflow() {
        let (_d, t) = lab();
        with_lab_file(&t.path, true, |f| {
            f.clock_offset_seconds = i64::MAX;
            Ok(())
        })
        .expect("control");
        std::fs::write(round_trips_path(&t), u64::MAX.to_string()).expect("write");
        let state = t.discover().expect("discover").state;
        assert_eq!(state.clock, Some(i64::MAX));
        assert_eq!(round_trips(&t), u64::MAX);
    }

    fn round_trips_path(t: &LabTarget) -> PathBuf {
        PathBuf::from(format!("{}.lock", t.path.display()))
    }

    fn round_trips(t: &LabTarget) -> u64 {
        let text = std::fs::read_to_string(round_trips_path(t)).expect("lock file");
        text.trim().parse().expect("a count")
    }

    #[cfg(unix)]
    #[test]
    fn round_trips_are_counted_in_the_lock_file_and_a_discovery_leaves_the_state_file_alone() {
        let (_d, t) = lab();
        t.discover().expect("creates");
        // a rewrite replaces the file (a new inode), even with the same text
        let inode = || {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(&t.path).expect("state file").ino()
        };
        let first = inode();
        t.discover().expect("again");
        assert_eq!(inode(), first);
        t.execute(&[]).expect("an empty batch is a round trip too");
        assert_eq!(round_trips(&t), 3);
        std::fs::write(round_trips_path(&t), "not a count, longer than one").expect("write");
        t.discover().expect("discover");
        assert_eq!(round_trips(&t), 1);
    }

    #[test]
    fn a_file_that_kept_its_round_trips_loads_and_drops_them() {
        let (_d, t) = lab();
        t.discover().expect("creates");
        let mut value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&t.path).expect("read")).expect("json");
        value["round_trips"] = 7.into();
        std::fs::write(&t.path, value.to_string()).expect("write");
        with_lab_file(&t.path, false, |f| {
            f.offline = true;
            Ok(())
        })
        .expect("loads");
        let saved = std::fs::read_to_string(&t.path).expect("read");
        assert!(!saved.contains("round_trips"), "{saved}");
    }

    #[test]
    fn discovery_reports_the_clock_with_its_offset() {
        let (_d, t) = lab();
        with_lab_file(&t.path, true, |f| {
            f.clock_offset_seconds = -7200;
            Ok(())
        })
        .expect("control");
        let before = kmsconf_model::clock::now();
        let clock = t.discover().expect("discover").state.clock.expect("clock");
        assert!((clock - (before - 7200)).abs() <= 2, "{clock} vs {before}");
    }

    #[test]
    fn the_state_file_never_holds_the_key() {
        let (_d, t) = lab();
        t.execute(&[TargetOp::InstallProductKey {
            product: ProductId::Windows,
            key: key(),
        }])
        .expect("install");
        let text = std::fs::read_to_string(&t.path).expect("read");
        assert!(!text.contains("HJKMP"));
    }
}
