//! The agent's readings of the Windows facts no source confirms (`Get-KmsconfReadings` in
//! `agent.ps1`), turned into the host state's [`HostReadings`].

use kmsconf_model::readings::reg_type;
use kmsconf_model::state::{HostReadings, RegistryReading, RuleFilterReading};
use serde::Deserialize;

use super::{one_or_many, CimFirewallRule};

/// What the agent read of the Windows facts no source confirms (`Get-KmsconfReadings`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CimReadings {
    pub power_shell_version: Option<String>,
    pub language_mode: Option<String>,
    pub product_key_channel: Option<bool>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub registry: Vec<CimRegistryReading>,
}

/// One registry value the host holds, its type as .NET's `RegistryValueKind` names it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CimRegistryReading {
    pub key: String,
    pub name: String,
    #[serde(rename = "Type")]
    pub kind: String,
}

impl CimReadings {
    /// The readings, with the port filter of each built-in rule the facts table lists among
    /// `rules` (what discovery read of the managed groups).
    pub fn state(&self, rules: &[CimFirewallRule]) -> HostReadings {
        let mut registry: Vec<RegistryReading> = self
            .registry
            .iter()
            .map(|r| RegistryReading {
                key: r.key.clone(),
                name: r.name.clone(),
                kind: reg_type(&r.kind),
            })
            .collect();
        registry.sort();
        HostReadings {
            powershell_version: self.power_shell_version.clone(),
            language_mode: self.language_mode.clone(),
            product_key_channel: self.product_key_channel,
            registry: Some(registry),
            rule_filters: Some(rule_filters(rules)),
        }
    }
}

/// The protocol and local ports of each rule in `rules` that a `[[firewall_group.rules]]` row of
/// the facts table names, in name order.
fn rule_filters(rules: &[CimFirewallRule]) -> Vec<RuleFilterReading> {
    let table = &kmsconf_model::facts::facts().firewall_group;
    let mut filters: Vec<RuleFilterReading> = rules
        .iter()
        .filter(|r| {
            table
                .iter()
                .any(|g| g.rules.iter().any(|row| row.name == r.name))
        })
        .map(|r| RuleFilterReading {
            name: r.name.clone(),
            protocol: r.protocol.clone().unwrap_or_default(),
            local_ports: r.local_port.clone(),
        })
        .collect();
    filters.sort();
    filters.dedup_by(|a, b| a.name == b.name);
    filters
}
