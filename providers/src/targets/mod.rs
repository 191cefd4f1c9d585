//! Host targets: how kmsconf reaches a host. Each implements the engine's
//! [`Target`](kmsconf_engine::target::Target) with the KMS state and operation types; the DNS
//! server of `[dns]` has its own client ([`dns`]), with no apply lock.

pub mod dns;
pub mod lab;

use kmsconf_engine::config::TargetSpec;
use kmsconf_engine::target::Target;

use crate::ops::TargetOp;
use crate::state::HostState;
use crate::Error;

/// A KMS host target.
pub type DynTarget = dyn Target<State = HostState, Operation = TargetOp, Error = Error>;

/// Opens the target a host is declared with. Opening does not contact the host.
pub fn open(host: &str, spec: &TargetSpec) -> Result<Box<DynTarget>, Error> {
    match spec {
        TargetSpec::Lab { path } => Ok(Box::new(lab::LabTarget::new(host, path.clone()))),
        TargetSpec::Local | TargetSpec::Ssh { .. } => Err(Error::UnsupportedTarget {
            target: spec.to_string(),
            reason: "the PowerShell/CIM target for real Windows hosts is not built yet; use a `lab:` target".into(),
        }),
        TargetSpec::Dns { .. } => Err(Error::UnsupportedTarget {
            target: spec.to_string(),
            reason: "a DNS server is not a KMS host".into(),
        }),
    }
}
