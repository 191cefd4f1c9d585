//! The kmsconf application: joins the pure planners of `kmsconf-providers` with the host
//! targets of `kmsconf-targets`. It opens, locks and discovers hosts, plans them, executes plans
//! ([`execute`]) and runs the troubleshooting checks ([`doctor`]). It never prints: the binary
//! renders what it returns.

pub mod doctor;
pub mod error;
pub mod execute;
pub mod failure;
pub mod output;
pub mod session;

pub use error::Error;

/// The report of one host's apply run.
pub type KmsHostRun = kmsconf_engine::apply::HostRun<kmsconf_model::Action>;
