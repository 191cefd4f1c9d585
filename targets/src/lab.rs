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
mod groups;
pub mod listen;
mod operations;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kmsconf_engine::lock::{LockGuard, LockHolder};
use kmsconf_engine::read::read_bounded;
use kmsconf_engine::target::{ChangeStatus, Discovery, Target};
use kmsconf_model::config::ProductId;
use kmsconf_model::keys::check_digit;
use serde::{Deserialize, Serialize};

use crate::{Error, LabStateError, UnlockError};
use kmsconf_model::catalog;
use kmsconf_model::events::{self, EventLog, EventQuery};
use kmsconf_model::ops::{OpKind, TargetOp};
use kmsconf_model::state::{Channel, HostState, ServiceState};
use kmsconf_model::winrm_service::{self, WinRmService, WireWinRmService};

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
    /// Event 12293s the host logged (`kmsconf lab dns-failure`), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_failures: Vec<clients::DnsFailure>,
    /// The Software Protection service's run state (`kmsconf lab sppsvc`).
    #[serde(default, skip_serializing_if = "clients::Sppsvc::is_default")]
    pub sppsvc: clients::Sppsvc,
    /// While a restart is pending: the settings the running Software Protection service still
    /// uses (what a Windows host's CIM properties show, its registry showing `host.service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_service: Option<ServiceState>,
    /// The KMS host key group (`model/data/coverage.toml`) of a Windows KMS host key, by the
    /// key's last five characters; a key not listed is of the group of the host's own Windows
    /// (`host.os`). Decides the `Description` the product shows, and so what it activates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub host_key_groups: BTreeMap<String, String>,
    /// The Active Directory-based activations the host's licensing service was asked for
    /// (`DoActiveDirectoryOnlineActivation`, or by phone
    /// `DepositActiveDirectoryOfflineActivationConfirmation`), oldest first. The lab writes nothing to a
    /// directory: only Windows creates an activation object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ad_activations: Vec<AdActivationCall>,
    /// The WinRM service's settings as the `WSMan:` drive shows them (strings, so a test can
    /// give the host any value); `None` = Windows' defaults (the facts table's rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winrm_service: Option<WireWinRmService>,
    /// Where files from before `PATH.lock` counted the round trips kept the count: still read,
    /// so they load unchanged, and no longer written.
    #[serde(default, skip_serializing)]
    round_trips: serde::de::IgnoredAny,
}

/// One WMI call that creates an activation object, as the lab recorded it: the key's last five
/// characters only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdActivationCall {
    /// `SoftwareLicensingService.DoActiveDirectoryOnlineActivation`.
    pub method: String,
    /// The `ActivationObjectName` argument.
    pub name: String,
    /// The last five characters of the `ProductKey` argument.
    pub partial_key: String,
    /// By phone: the installation ID the lab generated for the key, whose confirmation ID was
    /// deposited (never the confirmation ID itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<String>,
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
    /// The WinRM service's settings the host shows: its own, else Windows' defaults.
    pub fn winrm_service(&self) -> WireWinRmService {
        self.winrm_service
            .clone()
            .unwrap_or_else(WireWinRmService::windows_default)
    }

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
            dns_failures: Vec::new(),
            winrm_service: None,
            sppsvc: clients::Sppsvc::default(),
            running_service: None,
            host_key_groups: BTreeMap::new(),
            ad_activations: Vec::new(),
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

impl crate::ReadEvents for LabTarget {
    fn read_events(&self, query: &EventQuery) -> Result<EventLog, Error> {
        let (wire, _) =
            self.round_trip(|file| clients::event_log(file, kmsconf_model::clock::now(), query))?;
        events::parse(&wire).map_err(|e| Error::Remote {
            host: self.host.clone(),
            source: e.into(),
        })
    }

    fn read_winrm_service(&self) -> Result<WinRmService, Error> {
        let (wire, _) = self.round_trip(|file| file.winrm_service())?;
        winrm_service::parse(&wire).map_err(|e| Error::Remote {
            host: self.host.clone(),
            source: e.into(),
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

    /// An OS lock on `PATH.apply.lock`, with the holder's record beside it in
    /// `PATH.apply.holder`: a killed process releases the OS lock with its life, and its record is
    /// then overwritten by the next run. The record has a file of its own because Windows' file
    /// locks are mandatory: no other process can read a file while it is locked.
    fn lock(&self, holder: &LockHolder) -> Result<LockGuard, Error> {
        let (file, path) = self.open_apply_lock()?;
        let record = self.holder_path();
        let asked = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(Error::Io { path, source });
                }
            }
            if let Some(holder) = read_holder(&record) {
                return Err(Error::Locked {
                    host: self.host.clone(),
                    holder: Box::new(holder),
                });
            }
            // the holder writes its record just after taking the lock and clears it just
            // before releasing it: a lock without a record is most likely one of those moments
            if asked.elapsed() >= RECORD_WAIT {
                return Err(Error::Unlock {
                    host: self.host.clone(),
                    source: UnlockError::NoRecord { path },
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        write_holder(&record, Some(holder)).map_err(|source| Error::Io {
            path: record.clone(),
            source,
        })?;
        Ok(LockGuard::new(ApplyLock {
            _file: file,
            record,
        }))
    }

    fn force_unlock(&self, lock_id: &str) -> Result<LockHolder, Error> {
        let (file, _) = self.open_apply_lock()?;
        let record = self.holder_path();
        let err = |source: UnlockError| Error::Unlock {
            host: self.host.clone(),
            source,
        };
        let held = matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock));
        let Some(holder) = read_holder(&record) else {
            return Err(err(UnlockError::NotLocked));
        };
        if holder.id != lock_id {
            return Err(err(UnlockError::OtherLock {
                lock_id: lock_id.to_string(),
                current: Box::new(holder),
            }));
        }
        if held {
            return Err(err(UnlockError::Live {
                holder: Box::new(holder),
            }));
        }
        write_holder(&record, None).map_err(|source| Error::Io {
            path: record,
            source,
        })?;
        Ok(holder)
    }
}

/// How long a run that finds a lab host's apply lock taken waits for a record of who holds it
/// (see [`LabTarget::lock`]) before saying there is none.
const RECORD_WAIT: Duration = Duration::from_secs(2);

/// A lock record is one line of JSON; anything longer is not one.
const HOLDER_LIMIT: kmsconf_engine::read::Limit = kmsconf_engine::read::Limit {
    what: "a lock record",
    bytes: 4 << 10,
};

impl LabTarget {
    /// The record of the apply lock's holder, if there is one.
    fn current_holder(&self) -> Option<LockHolder> {
        read_holder(&self.holder_path())
    }

    /// `PATH.apply.holder`, where the holder of the apply lock keeps its record.
    fn holder_path(&self) -> PathBuf {
        PathBuf::from(format!("{}.apply.holder", self.path.display()))
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
    /// The locked file, kept open: closing it releases the OS lock.
    _file: File,
    record: PathBuf,
}

impl Drop for ApplyLock {
    fn drop(&mut self) {
        if let Err(e) = write_holder(&self.record, None) {
            tracing::warn!(path = %self.record.display(), error = %e, "could not clear the lock record");
        }
    }
}

/// The record at `path`, if it holds one kmsconf wrote.
fn read_holder(path: &Path) -> Option<LockHolder> {
    let bytes = read_bounded(path, HOLDER_LIMIT).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes `holder`'s record to `path`, or empties it.
fn write_holder(path: &Path, holder: Option<&LockHolder>) -> std::io::Result<()> {
    use std::io::Write;
    let text = holder
        .map(|h| serde_json::to_string(h).unwrap_or_default())
        .unwrap_or_default();
    let mut file = File::create(path)?;
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

/// The confirmation ID the phone line gives for an installation ID: eight groups of six digits,
/// each five digits and their check digit ([`check_digit`]). `None` when the text is not an
/// installation ID (63 digits).
pub fn confirmation_id_for(installation_id: &str) -> Option<String> {
    let d = digits(installation_id);
    (d.len() == 63).then(|| {
        digit_groups(fnv1a(format!("cid/{d}").as_bytes()), 8, 5)
            .split('-')
            .map(|five| {
                let values: Vec<u32> = five.chars().filter_map(|c| c.to_digit(10)).collect();
                format!("{five}{}", check_digit(&values))
            })
            .collect::<Vec<_>>()
            .join("-")
    })
}

#[cfg(test)]
mod tests;
