//! Service provider: the KMS settings of the Software Licensing Service and the one service
//! restart they need. Every setting is a row of the [`table`](kmsconf_model::settings::table);
//! this module reads the rows and names none of them.

use kmsconf_model::config::{HostConfig, ProductId};
use kmsconf_model::settings::{ServiceSetting, Setting};
use kmsconf_model::state::HostState;
use kmsconf_model::KmsChange;
use serde_json::json;
use toml_edit::Table;

use crate::contract::{ChangeSpec, Planned, Provider};
use crate::error::PlanError;
use crate::export::ExportDoc;
use crate::status::{HostStatus, ServiceStatus};
use crate::Error;
use kmsconf_model::ops::PlanOp;

use crate::contract::RESTART;

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

    pub fn settings(&self) -> &'static [Setting] {
        self.settings
    }
}

impl Provider for Service {
    fn plan(
        &self,
        cfg: &HostConfig,
        state: &HostState,
        earlier: &[KmsChange],
    ) -> Result<Planned, Error> {
        let gated: Vec<&str> = self
            .settings
            .iter()
            .filter(|s| s.needs_kms_host_key && cfg.service.desired(s).is_some())
            .map(|s| s.key)
            .collect();
        let key = key_install(cfg, state, earlier, &gated)?;
        Ok(Planned {
            changes: self.plan_settings(cfg, state, &key),
            notices: Vec::new(),
        })
    }

    fn export(&self, state: &HostState, doc: &mut ExportDoc) {
        if !state.has_kms_host_key() {
            doc.comment_block("KMS service settings are left out: Windows takes them only once a KMS host key is\ninstalled, and this host has none yet.");
            return;
        }
        let s = &state.service;
        let mut table = Table::new();
        for setting in self.settings.iter().filter(|r| (r.exported)(s)) {
            table.insert(setting.key, crate::export::value(&s.current(setting)));
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
    /// Plans every managed setting that differs, and the restart they need; `key` are the
    /// changes that install a KMS host key, which the settings slmgr.vbs gates on one wait for.
    fn plan_settings(&self, cfg: &HostConfig, state: &HostState, key: &[String]) -> Vec<KmsChange> {
        let mut changes: Vec<KmsChange> = self
            .settings
            .iter()
            .filter_map(|row| {
                let value = cfg.service.desired(row)?.clone();
                ServiceSetting::new(row, value).ok()
            })
            .filter_map(|desired| {
                let now = desired.current(&state.service);
                let deps = if desired.setting().needs_kms_host_key {
                    key
                } else {
                    &[]
                };
                (desired != now).then(|| setting_change(desired, &now, deps))
            })
            .collect();
        let needing: Vec<String> = changes
            .iter()
            .filter(|c| matches!(&c.operation, PlanOp::SetService(s) if s.needs_restart()))
            .map(|c| c.address.clone())
            .collect();
        if !needing.is_empty() || state.service.restart_pending {
            changes.push(restart_change(&needing, &changes, key));
        }
        changes
    }
}

pub(crate) fn setting_change(
    desired: ServiceSetting,
    now: &ServiceSetting,
    deps: &[String],
) -> KmsChange {
    ChangeSpec::new(address(desired.setting()), now.value().plan_json())
        .depends_on_all(deps)
        .into_change(PlanOp::SetService(desired))
}

/// The one restart, after every setting and key install; `needing` are the settings that take
/// effect only then.
pub(crate) fn restart_change(
    needing: &[String],
    changes: &[KmsChange],
    key: &[String],
) -> KmsChange {
    let why = if needing.is_empty() {
        "settings written earlier are waiting for this restart".to_string()
    } else {
        format!("applies {}", needing.join(", "))
    };
    let all: Vec<String> = changes.iter().map(|c| c.address.clone()).collect();
    ChangeSpec::new(RESTART, json!("running"))
        .depends_on_all(&all)
        .depends_on_all(key)
        .note(why)
        .into_change(PlanOp::RestartService)
}

/// The changes the `gated` settings (the ones slmgr.vbs sets only once a KMS host key is
/// installed) must wait for: none when the host has a KMS host key now, else the key installs
/// this plan makes (Windows' when it has one). Activation is not waited for: slmgr.vbs does not
/// check it, so a phone activation still pending holds nothing back.
fn key_install(
    cfg: &HostConfig,
    state: &HostState,
    earlier: &[KmsChange],
    gated: &[&str],
) -> Result<Vec<String>, Error> {
    if gated.is_empty() || state.has_kms_host_key() {
        return Ok(Vec::new());
    }
    let installs: Vec<&KmsChange> = earlier
        .iter()
        .filter(|c| matches!(c.operation, PlanOp::InstallProductKey { .. }))
        .collect();
    let windows = format!("products.{}.host_key", ProductId::Windows);
    let deps: Vec<String> = match installs.iter().find(|c| c.address == windows) {
        Some(c) => vec![c.address.clone()],
        None => installs.iter().map(|c| c.address.clone()).collect(),
    };
    if deps.is_empty() {
        let settings = gated.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>();
        return Err(PlanError::SettingsNeedHostKey {
            settings: settings.join(", "),
            host: cfg.name.clone(),
        }
        .on(&cfg.name));
    }
    Ok(deps)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_port_change_is_the_port_rows() {
        let port = kmsconf_model::settings::find("port").expect("row");
        assert_eq!(super::address(port), crate::contract::PORT);
    }
}
