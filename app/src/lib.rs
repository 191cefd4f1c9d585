//! The kmsconf application: joins the pure planners of `kmsconf-providers` with the host
//! targets of `kmsconf-targets`. It opens, locks and discovers hosts, plans them, executes plans
//! ([`execute`]), reads status ([`status`]), runs the troubleshooting checks ([`doctor`]),
//! exports a host ([`export`]), breaks stale locks ([`unlock`]) and controls lab hosts
//! ([`lab`]). It never prints: the binary renders what it returns, and reaches the engine's and
//! the targets' types only through the re-exports below.

pub mod clients;
pub mod doctor;
pub mod error;
pub mod execute;
pub mod export;
pub mod failure;
pub mod installation_id;
pub mod lab;
pub mod output;
pub mod session;
pub mod status;
pub mod surprises;
pub mod unlock;

pub use error::Error;
/// How to reach real hosts; the binary fills it from its environment variables.
pub use kmsconf_targets::Connect;

/// The engine's types the binary names: diagnostics it draws, the seal and secret of a plan
/// file, the locks a run holds, and what became of a change.
pub mod engine {
    pub use kmsconf_engine::apply::ChangeStatus;
    pub use kmsconf_engine::diagnostic::{quoted, Diagnostic, Location, Severity};
    pub use kmsconf_engine::lock::{LockGuard, LockHolder};
    pub use kmsconf_engine::paths;
    pub use kmsconf_engine::plan::{Seal, Verb};
    pub use kmsconf_engine::secret::{redact_run, redact_run_json, Secret};
}

/// The report of one host's apply run, and the failure that stopped it part-way, if one did.
pub type KmsHostRun = kmsconf_engine::apply::HostRun<kmsconf_model::Action, failure::HostFailure>;
