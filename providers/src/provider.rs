//! The contract every KMS host provider meets (licensing, service, firewall): plan its part of a
//! host, contribute its part of the exported config, fill its part of `status`. The planner,
//! `export` and `status` iterate [`Providers`] rather than naming each provider.

use kmsconf_model::config::HostConfig;
use kmsconf_model::settings::{Setting, SETTINGS};
use kmsconf_model::state::HostState;
use kmsconf_model::KmsChange;

use crate::export::ExportDoc;
use crate::firewall::Firewall;
use crate::licensing::Licensing;
use crate::service::Service;
use crate::status::HostStatus;
use crate::Error;

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

/// The KMS host providers.
pub struct Providers {
    licensing: Licensing,
    service: Service,
    firewall: Firewall,
}

impl Default for Providers {
    fn default() -> Self {
        Self::with_settings(SETTINGS)
    }
}

impl Providers {
    /// The providers, the service provider managing `settings` (tests add a row here).
    pub fn with_settings(settings: &'static [Setting]) -> Self {
        Self {
            licensing: Licensing,
            service: Service::new(settings),
            firewall: Firewall,
        }
    }

    /// In dependency order: the service settings wait for the host key and its activation, the
    /// firewall's port rule for the port setting.
    pub fn plan_order(&self) -> [&dyn Provider; 3] {
        [&self.licensing, &self.service, &self.firewall]
    }

    /// In the order an exported config lists them: the host's settings, then its products.
    pub fn export_order(&self) -> [&dyn Provider; 3] {
        [&self.service, &self.firewall, &self.licensing]
    }
}
