//! The contract the KMS host providers meet and what they share, importing none of them: the
//! [`Provider`] trait, the [`Planned`] changes it returns, the [`ChangeSpec`] each change is built
//! from, and the addresses of the changes that others wait for. The concrete providers sit above
//! this module; [`crate::registry`] alone names them.

use kmsconf_engine::plan::Change;
use kmsconf_model::config::HostConfig;
use kmsconf_model::ops::PlanOp;
use kmsconf_model::state::HostState;
use kmsconf_model::KmsChange;
use serde_json::Value;

use crate::export::ExportDoc;
use crate::shown;
use crate::status::HostStatus;
use crate::Error;

/// The change that restarts the Software Protection service.
pub const RESTART: &str = "service.restart";
/// The change that sets the KMS port, which the firewall's port rule and the published SRV
/// records wait for.
pub const PORT: &str = "service.port";
/// The address of the change that installs the Windows KMS client key.
pub const CLIENT_KEY: &str = "products.windows.client_key";

/// One provider's part of a host's plan.
#[derive(Debug, Default)]
pub struct Planned {
    pub changes: Vec<KmsChange>,
    /// What the user should know about the plan (a pending phone activation).
    pub notices: Vec<String>,
}

/// What one provider manages on a KMS host.
pub trait Provider {
    /// This provider's changes for `cfg` on a host in `state`. `earlier` are the changes of the
    /// providers planned before it, which its changes may wait for.
    fn plan(
        &self,
        cfg: &HostConfig,
        state: &HostState,
        earlier: &[KmsChange],
    ) -> Result<Planned, Error>;

    /// Writes the part of the config that reproduces `state` (or comments saying what the
    /// config cannot express).
    fn export(&self, state: &HostState, doc: &mut ExportDoc);

    /// Fills this provider's part of a host's status.
    fn status(&self, cfg: &HostConfig, state: &HostState, status: &mut HostStatus);
}

/// Builds one change; providers fill in the fields that differ. What it shows besides `before`
/// (its verb, `after` and equivalent) is rendered from its operation by [`shown::describe`].
pub struct ChangeSpec {
    pub address: String,
    pub before: Value,
    pub depends_on: Vec<String>,
    pub note: Option<String>,
}

impl ChangeSpec {
    /// A change of `address`, which is `before` as the host was observed.
    pub fn new(address: impl Into<String>, before: Value) -> Self {
        Self {
            address: address.into(),
            before,
            depends_on: Vec::new(),
            note: None,
        }
    }

    /// The change runs after every one of `deps`.
    pub fn depends_on_all(mut self, deps: &[String]) -> Self {
        self.depends_on.extend(deps.iter().cloned());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// The change that carries out `operation`.
    pub fn into_change(mut self, operation: PlanOp) -> KmsChange {
        self.depends_on.sort();
        self.depends_on.dedup();
        let shown = shown::describe(&operation, &self.before);
        Change {
            address: self.address,
            action: shown.action,
            before: self.before,
            after: shown.after,
            equivalent: Some(shown.equivalent),
            depends_on: self.depends_on,
            note: self.note,
            operation,
        }
    }
}
