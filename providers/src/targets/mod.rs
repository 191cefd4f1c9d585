//! Host targets: how kmsconf reaches a host. Each implements the engine's
//! [`Target`](kmsconf_engine::target::Target) with the KMS state and operation types: the
//! simulated [`lab`] host, and real Windows hosts through PowerShell ([`powershell`], [`cim`])
//! carried by [`ssh`] or run [`local`]ly. The DNS server of `[dns]` has its own client
//! ([`dns`]), with no apply lock.

pub mod cim;
pub mod dns;
pub mod lab;
pub mod local;
pub mod powershell;
mod process;
pub mod ssh;
mod windows;

use std::time::Duration;

use kmsconf_engine::config::TargetSpec;
use kmsconf_engine::target::Target;

use crate::ops::TargetOp;
use crate::state::HostState;
use crate::Error;

pub use windows::{Transport, WindowsTarget};

/// A KMS host target.
pub type DynTarget = dyn Target<State = HostState, Operation = TargetOp, Error = Error>;

/// How to reach real hosts; the CLI fills it from its environment variables.
#[derive(Debug, Clone)]
pub struct Connect {
    /// The ssh program and any arguments before kmsconf's own (default `ssh`).
    pub ssh_command: Vec<String>,
    /// Longest wait for one round trip (discovery, or one batch).
    pub timeout: Duration,
    /// Longest wait for the SSH connection itself.
    pub connect_timeout: Duration,
}

impl Default for Connect {
    fn default() -> Self {
        Self {
            ssh_command: vec!["ssh".into()],
            timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(15),
        }
    }
}

/// Opens the target a host is declared with. Opening does not contact the host.
pub fn open(host: &str, spec: &TargetSpec, connect: &Connect) -> Result<Box<DynTarget>, Error> {
    match spec {
        TargetSpec::Lab { path } => Ok(Box::new(lab::LabTarget::new(host, path.clone()))),
        TargetSpec::Local => Ok(Box::new(WindowsTarget::new(
            host,
            local::LocalShell::new(connect.timeout),
        ))),
        TargetSpec::Ssh {
            user,
            host: h,
            port,
        } => {
            let shell = ssh::SshShell::new(connect, user.clone(), h.clone(), *port);
            Ok(Box::new(WindowsTarget::new(host, shell)))
        }
        TargetSpec::Dns { .. } => Err(Error::UnsupportedTarget {
            target: spec.to_string(),
            reason: "a DNS server is not a KMS host".into(),
        }),
    }
}
