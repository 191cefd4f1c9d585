//! Service provider: the KMS settings of the Software Licensing Service and the one service
//! restart they need. Every setting is a row of [`SETTINGS`](kmsconf_model::settings::SETTINGS);
//! this module reads the rows and names none of them.

use kmsconf_model::config::{Activation, HostConfig, ProductId};
use kmsconf_model::settings::{ServiceSetting, Setting};
use kmsconf_model::state::HostState;
use kmsconf_model::{Action, KmsChange};
use serde_json::json;
use toml_edit::Table;

use crate::export::ExportDoc;
use crate::planner::ChangeSpec;
use crate::provider::{Planned, Provider};
use crate::status::{HostStatus, ServiceStatus};
use crate::Error;
use kmsconf_model::ops::PlanOp;

pub const RESTART: &str = "service.restart";
/// The change that sets the KMS port, which the firewall's port rule and the published SRV
/// records wait for.
pub const PORT: &str = "service.port";

/// The address of a setting's change: `service.port`.
pub fn address(setting: &Setting) -> String {
    format!("service.{}", setting.key)
}

/// The service provider, over a table of settings.
pub struct Service {
    settings: &'static [Setting],
}

impl Service {
    pub fn new(settings: &'static [Setting]) -> Self {
        Self { settings }
    }
}

impl Provider for Service {
    fn plan(
        &self,
        cfg: &HostConfig,
        state: &HostState,
        earlier: &[KmsChange],
    ) -> Result<Planned, Error> {
        let managed = self
            .settings
            .iter()
            .any(|s| (s.desired)(&cfg.service).is_some());
        let ready = prerequisites(cfg, state, earlier, managed)?;
        Ok(Planned {
            changes: self.plan_settings(cfg, state, &ready),
            notices: Vec::new(),
        })
    }

    fn export(&self, state: &HostState, doc: &mut ExportDoc) {
        if !state.windows_is_activated_kms_host() {
            doc.comment_block("KMS service settings are left out: Windows accepts them only on an activated KMS host,\nand this host is not one yet.");
            return;
        }
        let s = &state.service;
        let mut table = Table::new();
        for setting in self.settings.iter().filter(|r| (r.exported)(s)) {
            table.insert(setting.key, crate::export::value(&(setting.current)(s)));
        }
        doc.insert_table(&["service"], table);
        if s.restart_pending {
            doc.comment_after("A restart of the Software Protection service is pending on the host: the first plan\nshows it.");
        }
    }

    fn status(&self, _cfg: &HostConfig, state: &HostState, status: &mut HostStatus) {
        status.service = Some(ServiceStatus::new(self.settings, &state.service));
    }
}

impl Service {
    /// Plans every managed setting that differs, and the restart they need; `ready` are the
    /// changes that make the host an activated KMS host, which every setting waits for.
    fn plan_settings(
        &self,
        cfg: &HostConfig,
        state: &HostState,
        ready: &[String],
    ) -> Vec<KmsChange> {
        let mut changes: Vec<KmsChange> = self
            .settings
            .iter()
            .filter_map(|row| row.desired_setting(&cfg.service))
            .filter_map(|desired| {
                let now = desired.current(&state.service);
                (desired != now).then(|| setting_change(desired, &now, ready))
            })
            .collect();
        let needing: Vec<String> = changes
            .iter()
            .filter(|c| matches!(&c.operation, PlanOp::SetService(s) if s.needs_restart()))
            .map(|c| c.address.clone())
            .collect();
        if !needing.is_empty() || state.service.restart_pending {
            changes.push(restart_change(&needing, &changes, ready));
        }
        changes
    }
}

pub(crate) fn setting_change(
    desired: ServiceSetting,
    now: &ServiceSetting,
    ready: &[String],
) -> KmsChange {
    ChangeSpec::new(
        address(desired.setting()),
        Action::Update,
        now.value().plan_json(),
        desired.value().plan_json(),
    )
    .equivalent(desired.equivalent())
    .depends_on_all(ready)
    .into_change(PlanOp::SetService(desired))
}

/// The one restart, after every setting; `needing` are the settings that take effect only then.
pub(crate) fn restart_change(
    needing: &[String],
    changes: &[KmsChange],
    ready: &[String],
) -> KmsChange {
    let why = if needing.is_empty() {
        "settings written earlier are waiting for this restart".to_string()
    } else {
        format!("applies {}", needing.join(", "))
    };
    let all: Vec<String> = changes.iter().map(|c| c.address.clone()).collect();
    ChangeSpec::new(
        RESTART,
        Action::Restart,
        json!("running"),
        json!("restarted"),
    )
    .equivalent("net stop sppsvc && net start sppsvc")
    .depends_on_all(&all)
    .depends_on_all(ready)
    .note(why)
    .into_change(PlanOp::RestartService)
}

/// The changes service settings must wait for: Windows applies KMS settings only on an
/// installed and activated KMS host key. `managed`: the config sets any service setting.
fn prerequisites(
    cfg: &HostConfig,
    state: &HostState,
    earlier: &[KmsChange],
    managed: bool,
) -> Result<Vec<String>, Error> {
    let prefix = format!("products.{}.", ProductId::Windows);
    let windows_changes: Vec<String> = earlier
        .iter()
        .filter(|c| c.address.starts_with(&prefix))
        .map(|c| c.address.clone())
        .collect();
    if !managed {
        return Ok(windows_changes);
    }
    let activated_after_apply = match cfg.products.get(&ProductId::Windows) {
        None => state.windows_is_activated_kms_host(),
        Some(p) if p.activation == Activation::None => {
            state.windows_is_activated_kms_host() && windows_changes.is_empty()
        }
        Some(_) => true,
    };
    if !activated_after_apply {
        let message = match cfg.products.get(&ProductId::Windows) {
            None => format!("KMS service settings can only be set on an activated KMS host, and this host has no activated Windows KMS host key: declare `[hosts.{}.products.windows]` with its `host_key`", cfg.name),
            Some(_) => "KMS service settings need an activated Windows KMS host key, but `windows` has `activation = \"none\"` and is not activated".to_string(),
        };
        return Err(Error::Plan {
            host: cfg.name.clone(),
            message,
        });
    }
    Ok(windows_changes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_port_change_is_the_port_rows() {
        let port = kmsconf_model::settings::find("port").expect("row");
        assert_eq!(super::address(port), super::PORT);
    }
}
