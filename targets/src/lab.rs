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
//!
//! This module holds the state file's types and the target; the file on disk ([`store`]), the
//! apply lock's record ([`apply_lock`]) and the IDs a lab host makes up ([`ids`]) are submodules.

pub mod agent;
mod apply_lock;
mod cim;
pub mod clients;
mod groups;
mod ids;
pub mod listen;
mod operations;
mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kmsconf_engine::lock::{LockGuard, LockHolder};
use kmsconf_engine::target::{ChangeStatus, Discovery, Target};
use serde::{Deserialize, Serialize};

use crate::{Error, UnlockError};
use kmsconf_model::catalog;
use kmsconf_model::events::{self, EventLog, EventQuery};
use kmsconf_model::ops::{OpKind, TargetOp};
use kmsconf_model::state::{HostState, ServiceState};
use kmsconf_model::winrm_service::{self, WinRmService, WireWinRmService};

use apply_lock::{read_holder, write_holder, ApplyLock, RECORD_WAIT};
pub use ids::confirmation_id_for;
use ids::{activation_id, digit_groups, digits, fnv1a, installation_id};
use store::with_locked;
pub use store::{load, with_lab_file, MAX_LATENCY_MS};

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

#[cfg(test)]
mod tests;
