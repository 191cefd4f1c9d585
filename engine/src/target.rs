//! The contract between the engine and a host: discover everything in one round trip, run a
//! batch of typed operations in one round trip, and hold an apply lock while a run works.

use serde::{Deserialize, Serialize};

use crate::lock::{LockGuard, LockHolder};

/// What became of one operation or planned change. A target answers `Applied`, `Pending` or
/// `Failed` for each operation of a batch; the executor adds `Skipped` for what it did not send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum ChangeStatus {
    /// The host's state now matches; `detail` is shown to the user (never a secret).
    Applied { detail: Option<String> },
    /// Done as far as it can be without the user (waiting for something only a person can
    /// supply); dependents wait too.
    Pending { message: String },
    /// The host refused; `code` is the host's own error code (an HRESULT) where it gave one.
    Failed { code: Option<u32>, message: String },
    /// Not attempted because something it depends on did not happen.
    Skipped { reason: String },
}

impl ChangeStatus {
    pub fn applied() -> Self {
        Self::Applied { detail: None }
    }

    pub fn failed(code: u32, message: impl Into<String>) -> Self {
        Self::Failed {
            code: Some(code),
            message: message.into(),
        }
    }
}

/// The state of a host as discovered, and whether discovery had to create it (lab hosts are
/// created on first use).
#[derive(Debug, Clone)]
pub struct Discovery<S> {
    pub state: S,
    pub created: bool,
}

/// A host kmsconf can converge.
pub trait Target: Send + Sync {
    /// Everything the providers need to know about the host.
    type State;
    /// One typed operation, secrets resolved (never serialized).
    type Operation;
    type Error: std::error::Error + Send + Sync + 'static;

    /// Reads everything about the host in one round trip.
    fn discover(&self) -> Result<Discovery<Self::State>, Self::Error>;

    /// Runs independent operations, in order, in one round trip. Returns one outcome per
    /// operation; an `Err` means the host could not be reached or the batch could not run at all.
    fn execute(&self, batch: &[Self::Operation]) -> Result<Vec<ChangeStatus>, Self::Error>;

    /// Takes the host's apply lock for as long as the guard lives. Fails at once, naming the
    /// holder, when another run holds it.
    fn lock(&self, holder: &LockHolder) -> Result<LockGuard, Self::Error>;

    /// Breaks a lock left behind by a run that died, when `lock_id` is that lock's ID. Returns
    /// the holder that was removed.
    fn force_unlock(&self, lock_id: &str) -> Result<LockHolder, Self::Error>;
}
