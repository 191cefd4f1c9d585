//! Host targets: how kmsconf reaches a host. Each implements the engine's
//! [`Target`](kmsconf_engine::target::Target) with the KMS state and operation types of
//! `kmsconf-model`: the simulated [`lab`] host, and real Windows hosts through PowerShell
//! ([`powershell`], [`cim`]) carried by [`ssh`] or run [`local`]ly. The DNS server of `[dns]`
//! has its own client ([`dns`]). Targets never plan: they read and they run what they are sent.

pub mod cim;
mod deadline;
pub mod dns;
pub mod error;
pub mod lab;
pub mod ldap;
pub mod local;
mod output;
pub mod powershell;
mod process;
mod recording;
mod session;
pub mod ssh;
mod windows;
pub mod winrm;

use std::path::PathBuf;
use std::time::Duration;

use kmsconf_engine::target::Target;
use kmsconf_model::config::TargetSpec;

pub use error::{Error, LabStateError, ListenError, RemoteError, UnlockError};
use kmsconf_engine::lock::{LockGuard, LockHolder};
use kmsconf_engine::target::{ChangeStatus, Discovery};
use kmsconf_model::events::{EventLog, EventQuery};
use kmsconf_model::ops::{EntryOp, TargetOp};
use kmsconf_model::state::HostState;
use kmsconf_model::winrm_service::WinRmService;
use kmsconf_model::EntryState;

pub use windows::{Transport, WindowsTarget};

/// The target of a plan entry: a KMS host or the DNS server.
pub type DynTarget = dyn Target<State = EntryState, Operation = EntryOp, Error = Error>;
/// A KMS host's target.
pub type DynHostTarget = dyn HostTarget;

/// A KMS host: a target whose event log can also be read (`kmsconf clients`, doctor).
pub trait HostTarget:
    Target<State = HostState, Operation = TargetOp, Error = Error> + ReadEvents
{
}

impl<T: Target<State = HostState, Operation = TargetOp, Error = Error> + ReadEvents> HostTarget
    for T
{
}

/// Reads a KMS host's event log: its 12290 and 12293 events and the Software Protection
/// service's state, in one round trip; and (for `doctor`'s `winrm-service`) its WinRM
/// service's settings, in another.
pub trait ReadEvents {
    fn read_events(&self, query: &EventQuery) -> Result<EventLog, Error>;
    fn read_winrm_service(&self) -> Result<WinRmService, Error>;
}

/// How to reach real hosts; the CLI fills it from its environment variables.
#[derive(Debug, Clone)]
pub struct Connect {
    /// The ssh program and any arguments before kmsconf's own (default `ssh`).
    pub ssh_command: Vec<String>,
    /// Longest wait for the answers to one round of requests (discovery, or one batch).
    pub timeout: Duration,
    /// Longest wait for the SSH connection itself.
    pub connect_timeout: Duration,
    /// Where each Windows host's agent session is recorded (`DIR/NAME.jsonl`), if anywhere.
    pub record: Option<PathBuf>,
}

impl Default for Connect {
    fn default() -> Self {
        Self {
            ssh_command: vec!["ssh".into()],
            timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(15),
            record: None,
        }
    }
}

/// Opens the target a plan entry is declared with. Opening does not contact the host. A DNS
/// server opened this way reads no zone: [`open_dns`] names what it reads.
pub fn open(host: &str, spec: &TargetSpec, connect: &Connect) -> Result<Box<DynTarget>, Error> {
    Ok(match spec {
        TargetSpec::Dns { server } => open_dns(server, Vec::new(), Vec::new()),
        TargetSpec::ActiveDirectory {
            server,
            dns,
            principal,
            keytab,
        } => Box::new(ldap::AdTarget::new(
            ldap::Bind {
                server: server.clone(),
                dns: dns.clone(),
                principal: principal.clone(),
                keytab: keytab.clone(),
            },
            connect.timeout,
        )),
        _ => Box::new(KmsHost(open_host(host, spec, connect)?)),
    })
}

/// Opens a KMS host's target, with the KMS host's own state and operation types.
pub fn open_host(
    host: &str,
    spec: &TargetSpec,
    connect: &Connect,
) -> Result<Box<DynHostTarget>, Error> {
    match spec {
        TargetSpec::Lab { path } => Ok(Box::new(lab::LabTarget::new(
            host,
            path.clone(),
            connect.timeout,
        ))),
        TargetSpec::Local => Ok(windows(
            host,
            spec,
            local::LocalShell::new(connect.timeout),
            connect,
        )),
        TargetSpec::Ssh {
            user,
            host: h,
            port,
        } => {
            let shell = ssh::SshShell::new(connect, user.clone(), h.clone(), *port);
            Ok(windows(host, spec, shell, connect))
        }
        TargetSpec::Replay { path } => Ok(windows(
            host,
            spec,
            recording::ReplayShell::new(path),
            connect,
        )),
        TargetSpec::WinRm { .. } => {
            let options =
                winrm::WinRmOptions::of(spec).ok_or_else(|| Error::UnsupportedTarget {
                    target: spec.to_string(),
                    reason: "not a WinRM target".into(),
                })?;
            let shell =
                winrm::WinRmShell::new(host, options, connect.timeout, connect.connect_timeout);
            Ok(windows(host, spec, shell, connect))
        }
        TargetSpec::Dns { .. } => Err(Error::UnsupportedTarget {
            target: spec.to_string(),
            reason: "a DNS server is not a KMS host".into(),
        }),
        TargetSpec::ActiveDirectory { .. } => Err(Error::UnsupportedTarget {
            target: spec.to_string(),
            reason: "a directory is not a KMS host".into(),
        }),
    }
}

/// A Windows host through `transport`, its sessions recorded when `connect` says where.
fn windows<T: Transport + 'static>(
    host: &str,
    spec: &TargetSpec,
    transport: T,
    connect: &Connect,
) -> Box<DynHostTarget> {
    match &connect.record {
        Some(dir) => {
            let recorded = recording::Recorded::new(transport, dir, host, spec.to_string());
            Box::new(WindowsTarget::new(host, recorded))
        }
        None => Box::new(WindowsTarget::new(host, transport)),
    }
}

/// Opens the DNS server `server` (`host[:port]`), whose discovery reads the `_vlmcs._tcp` RRset
/// of `zones` and the A/AAAA records of `names`.
pub fn open_dns(server: &str, zones: Vec<String>, names: Vec<String>) -> Box<DynTarget> {
    Box::new(dns::DnsServer::new(server, zones, names))
}

/// A KMS host target as a plan entry's target: its state is a KMS host's, and it takes only KMS
/// host operations (a DNS record change sent to it fails, naming the host).
struct KmsHost(Box<DynHostTarget>);

impl Target for KmsHost {
    type State = EntryState;
    type Operation = EntryOp;
    type Error = Error;

    fn discover(&self) -> Result<Discovery<EntryState>, Error> {
        let d = self.0.discover()?;
        Ok(Discovery {
            state: EntryState::KmsHost(d.state),
            created: d.created,
        })
    }

    fn execute(&self, batch: &[EntryOp]) -> Result<Vec<ChangeStatus>, Error> {
        let ops: Vec<TargetOp> = batch
            .iter()
            .filter_map(|op| match op {
                EntryOp::Host(op) => Some(op.clone()),
                EntryOp::Srv(_) | EntryOp::DeleteActivationObject { .. } => None,
            })
            .collect();
        let mut answers = if ops.is_empty() {
            Vec::new()
        } else {
            self.0.execute(&ops)?
        }
        .into_iter();
        Ok(batch
            .iter()
            .map(|op| match op {
                EntryOp::Host(_) => answers.next().unwrap_or(ChangeStatus::Failed {
                    code: None,
                    message: "the host gave no result for this operation".into(),
                }),
                EntryOp::Srv(change) => ChangeStatus::Failed {
                    code: None,
                    message: format!(
                        "a DNS record change of zone `{}` was sent to a KMS host",
                        change.zone
                    ),
                },
                EntryOp::DeleteActivationObject { dn } => ChangeStatus::Failed {
                    code: None,
                    message: format!(
                        "the deletion of activation object `{dn}` was sent to a KMS host"
                    ),
                },
            })
            .collect())
    }

    fn lock(&self, holder: &LockHolder) -> Result<LockGuard, Error> {
        self.0.lock(holder)
    }

    fn force_unlock(&self, lock_id: &str) -> Result<LockHolder, Error> {
        self.0.force_unlock(lock_id)
    }
}
