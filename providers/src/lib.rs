//! kmsconf providers: what kmsconf knows about KMS hosts.
//!
//! One module per provider turns a host's desired state and its observed [`state::HostState`]
//! into planned changes ([`licensing`], [`service`], [`firewall`]); [`dns`] does the same for the
//! `_vlmcs._tcp` SRV records in a DNS server; [`targets`] reach the hosts (the simulated
//! [`targets::lab`] host now; PowerShell over SSH later) and the DNS server ([`targets::dns`]);
//! [`execute`] runs a planned host through its target. Providers never print.

pub mod catalog;
pub mod clock;
pub mod dns;
pub mod doctor;
pub mod error;
pub mod execute;
pub mod export;
pub mod firewall;
pub mod licensing;
pub mod ops;
pub mod planner;
pub mod service;
pub mod state;
pub mod status;
pub mod targets;

pub use error::Error;
pub use ops::{PlanOp, TargetOp};
pub use state::{HostState, Observed};

/// A plan as the providers make it.
pub type KmsPlan = kmsconf_engine::plan::Plan<PlanOp, Observed>;
/// One host's part of a plan.
pub type KmsHostPlan = kmsconf_engine::plan::HostPlan<PlanOp, Observed>;
/// A planned change.
pub type KmsChange = kmsconf_engine::plan::Change<PlanOp>;
