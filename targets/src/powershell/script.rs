//! The agent script kmsconf starts on a Windows host: the fixed `agent.ps1` after a header of
//! the tables it reads by (firewall rule groups and kmsconf's own rule, the product filter, the
//! KMS settings' CIM properties and registry values). The tables come from kmsconf's own data
//! files, never from a config, so the script is the same on every host and every run.

use std::fmt::Write as _;
use std::sync::OnceLock;

use kmsconf_model::catalog;
use kmsconf_model::catalog::PORT_RULE_NAME;
use kmsconf_model::config::{ProductId, RuleGroup};
use kmsconf_model::settings;

use super::{quote, quote_list};

const AGENT: &str = include_str!("agent.ps1");

/// The WQL filter for the products discovery reads: every keyed product, and the Office KMS
/// host SKUs by activation ID (present once their license pack is installed). Equality tests
/// only: no `LIKE`, which makes WMI read every product, as no filter does.
fn product_filter() -> String {
    let mut filter = String::from("PartialProductKey IS NOT NULL");
    for id in ProductId::ALL {
        if let Some(activation_id) = catalog::product(id).and_then(|p| p.activation_id.clone()) {
            let _ = write!(filter, " OR ID = '{activation_id}'");
        }
    }
    filter
}

/// The registry values of the facts table (`[[registry]]` rows), each once: discovery reports
/// under which keys the host holds them, and their types.
fn fact_registry_values() -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for row in &kmsconf_model::facts::facts().registry {
        if !names.contains(&row.name) {
            names.push(row.name.clone());
        }
    }
    names
}

/// The header of tables, then the agent.
fn build() -> String {
    let names = vec![PORT_RULE_NAME.to_string()];
    // each managed group by its resource string: the Key Management Service group's two rules
    let groups: Vec<String> = RuleGroup::ALL
        .into_iter()
        .filter_map(|g| catalog::rule_group(g).map(|info| info.group.clone()))
        .collect();
    let properties: Vec<String> = settings::table()
        .iter()
        .filter_map(|s| s.property.map(String::from))
        .collect();
    let registry: Vec<&settings::RegistryValue> = settings::table()
        .iter()
        .filter_map(|s| s.write.registry())
        .collect();
    let registry_names: Vec<String> = registry.iter().map(|r| r.name.to_string()).collect();
    let registry_keys: Vec<String> = registry.iter().map(|r| r.key.to_string()).collect();
    format!(
        "# kmsconf's tables (from its data files and its table of KMS settings)\n\
         $RuleNames = {}\n$RuleGroups = {}\n$ProductFilter = {}\n$SettingProperties = {}\n$SettingRegistryValues = {}\n$SettingRegistryKeys = {}\n$FactRegistryValues = {}\n{AGENT}",
        quote_list(&names),
        quote_list(&groups),
        quote(&product_filter()),
        quote_list(&properties),
        quote_list(&registry_names),
        quote_list(&registry_keys),
        quote_list(&fact_registry_values())
    )
}

/// The agent script, built once.
pub fn agent_script() -> &'static str {
    static SCRIPT: OnceLock<String> = OnceLock::new();
    SCRIPT.get_or_init(build)
}

/// The SHA-256 of `script`'s UTF-8 bytes, in lowercase hex: what the bootstrap computes from
/// the agent it read.
pub fn sha256(script: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, script)
        .as_ref()
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// The SHA-256 of [`agent_script`], which the bootstrap carries.
pub fn agent_sha256() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| sha256(agent_script().as_bytes()))
}
