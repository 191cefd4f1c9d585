//! Surprises: what a host showed that contradicts a fact of `data/windows.toml`, found before
//! any change. Most of those facts rest on a client export, an older guide or an inference
//! (`verified = false`); discovery reads what it can of them ([`HostReadings`], the firewall
//! rules) and [`surprises`] compares. `plan` warns, `doctor` checks (`windows-facts`), and
//! `apply` refuses the changes whose own assumption is contradicted ([`Surprise::affects`]).

use schemars::JsonSchema;
use serde::Serialize;

use crate::config::RuleGroup;
use crate::facts::{facts, RegistryFact};
use crate::readings::{registry_key_path, HostReadings, RegistryReading};
use crate::state::HostState;

/// One fact the host contradicts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Surprise {
    /// The fact as the table names it: `registry VLActivationInterval`.
    pub fact: String,
    /// The source the table gives for it: its key in `[sources]`.
    pub source: String,
    /// What the table says.
    pub expected: String,
    /// What the host showed (the host's own text: escape it before printing it).
    pub observed: String,
    /// The changes whose assumption this is, by address prefix (`service.activation_interval`;
    /// `""` every change; none: the planner does not rely on it): `apply` refuses them without
    /// `--accept-surprises`.
    pub affects: Vec<String>,
}

impl Surprise {
    /// Whether the change at `address` relies on this fact.
    pub fn affects(&self, address: &str) -> bool {
        self.affects.iter().any(|prefix| {
            prefix.is_empty()
                || address == prefix
                || address
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|rest| prefix.ends_with('.') || rest.starts_with('.'))
        })
    }
}

/// Every fact `state` contradicts, in the table's order.
pub fn surprises(state: &HostState) -> Vec<Surprise> {
    let mut found = agent(&state.readings);
    found.extend(product_key_channel(&state.readings));
    if let Some(readings) = &state.readings.registry {
        found.extend(registry(readings));
    }
    found.extend(firewall_rules(state));
    if let Some(filters) = &state.readings.rule_filters {
        found.extend(rule_filters(filters));
    }
    found
}

/// The PowerShell the agent runs in: the language mode it needs, the version its CIM cmdlets
/// came with. Every change goes through the agent, so each affects all of them.
fn agent(readings: &HostReadings) -> Vec<Surprise> {
    let table = facts();
    let mut found = Vec::new();
    let row = |name: &str| table.agent.iter().find(|a| a.name == name);
    if let (Some(mode), Some(row)) = (&readings.language_mode, row("language-mode")) {
        if *mode != row.value {
            found.push(Surprise {
                fact: "agent language-mode".into(),
                source: row.source.clone(),
                expected: format!("PowerShell in `{}`", row.value),
                observed: format!("`{mode}`"),
                affects: vec![String::new()],
            });
        }
    }
    if let (Some(version), Some(row)) = (&readings.powershell_version, row("powershell-version")) {
        if older(version, &row.value) {
            found.push(Surprise {
                fact: "agent powershell-version".into(),
                source: row.source.clone(),
                expected: format!("PowerShell {} or later", row.value),
                observed: format!("PowerShell `{version}`"),
                affects: vec![String::new()],
            });
        }
    }
    found
}

/// Whether dotted version `version` is below `minimum` (text that is no version is not).
fn older(version: &str, minimum: &str) -> bool {
    let parse =
        |v: &str| -> Option<Vec<u32>> { v.trim().split('.').map(|p| p.parse().ok()).collect() };
    match (parse(version), parse(minimum)) {
        (Some(v), Some(m)) => v < m,
        _ => false,
    }
}

/// `SoftwareLicensingProduct.ProductKeyChannel`, which the table lists on every host kmsconf
/// accepts (6.2 and later) and the product operations read.
fn product_key_channel(readings: &HostReadings) -> Option<Surprise> {
    if readings.product_key_channel != Some(false) {
        return None;
    }
    let class = facts()
        .class
        .iter()
        .find(|c| c.name == "SoftwareLicensingProduct")?;
    Some(Surprise {
        fact: "class SoftwareLicensingProduct.ProductKeyChannel".into(),
        source: class.source.clone(),
        expected: "the property on Windows 8 / Windows Server 2012 and later".into(),
        observed: "no such property".into(),
        affects: vec!["products.".into()],
    })
}

/// Registry values of a type, or under a key, other than the table's rows say.
fn registry(readings: &[RegistryReading]) -> Vec<Surprise> {
    let mut found = Vec::new();
    for reading in readings {
        let rows: Vec<&RegistryFact> = facts()
            .registry
            .iter()
            .filter(|r| r.name == reading.name)
            .collect();
        let Some(first) = rows.first() else {
            continue;
        };
        let at_key = rows.iter().find(|r| r.key == reading.key);
        let observed = format!(
            "{} under `{}`",
            reading.kind,
            registry_key_path(&reading.key)
        );
        let (row, expected) = match at_key {
            Some(row) if row.kind == reading.kind => continue,
            Some(row) => (*row, format!("{} there", row.kind)),
            None => {
                let keys: Vec<String> = rows
                    .iter()
                    .map(|r| format!("{} under `{}`", r.kind, registry_key_path(&r.key)))
                    .collect();
                (*first, keys.join(" or "))
            }
        };
        found.push(Surprise {
            fact: format!("registry {}", reading.name),
            source: row.source.clone(),
            expected,
            observed,
            affects: settings_of(&reading.name),
        });
    }
    found
}

/// The service settings whose registry value is `name`.
fn settings_of(name: &str) -> Vec<String> {
    crate::settings::table()
        .iter()
        .filter(|s| s.write.registry().is_some_and(|r| r.name == name))
        .map(|s| format!("service.{}", s.key))
        .collect()
}

/// Built-in rules the table lists for a group the host shows without them: one surprise per
/// group (a host missing one rule names it; one missing several lists them). The planner opens a
/// profile whose rule is missing on the group's other rule (Microsoft's documented command), so
/// no change relies on the missing rules: a warning only.
fn firewall_rules(state: &HostState) -> Vec<Surprise> {
    let mut found = Vec::new();
    for group in RuleGroup::ALL {
        let (Some(info), Some(seen)) = (
            crate::facts::rule_group(group),
            state.firewall.groups.get(&group),
        ) else {
            continue;
        };
        let missing: Vec<_> = info
            .rules
            .iter()
            .filter(|r| !seen.rules.contains_key(&r.name))
            .collect();
        let Some(first) = missing.first() else {
            continue;
        };
        let mut sources: Vec<&str> = missing.iter().map(|r| r.source.as_str()).collect();
        sources.dedup();
        let described: Vec<String> = missing.iter().map(|r| describe_rule(r)).collect();
        found.push(match missing.as_slice() {
            [rule] => Surprise {
                fact: format!("firewall rule {}", rule.name),
                source: rule.source.clone(),
                expected: format!(
                    "a built-in rule of the {} group ({})",
                    group.display_name(),
                    described[0]
                ),
                observed: "no such rule".into(),
                affects: Vec::new(),
            },
            _ => Surprise {
                fact: format!("firewall rules of the {} group", group.display_name()),
                source: if sources.len() == 1 {
                    first.source.clone()
                } else {
                    sources.join(", ")
                },
                expected: format!(
                    "{} of its built-in rules, among them {} ({})",
                    missing.len(),
                    first.name,
                    described[0]
                ),
                observed: format!(
                    "none of {}",
                    missing
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                affects: Vec::new(),
            },
        });
    }
    found
}

/// Built-in rules whose protocol or local port is not the table's. kmsconf never changes either,
/// so the host shows the rule as Windows ships it; enabling the rule is what opens the port, so
/// the change to that rule relies on it. A keyword port is compared without case or `-`
/// (the rule store writes `RPC-EPMap`, the NetSecurity cmdlets `RPCEPMap`); an ICMP rule, whose
/// table row has no port, by its protocol alone.
fn rule_filters(filters: &[crate::readings::RuleFilterReading]) -> Vec<Surprise> {
    let mut found = Vec::new();
    for group in RuleGroup::ALL {
        let Some(info) = crate::facts::rule_group(group) else {
            continue;
        };
        for rule in &info.rules {
            let Some(seen) = filters.iter().find(|f| f.name == rule.name) else {
                continue;
            };
            let protocol_ok = seen.protocol.eq_ignore_ascii_case(&rule.protocol);
            let port_ok = rule.local_port.as_deref().is_none_or(|port| {
                let ports: Vec<String> = seen.local_ports.iter().map(|p| port_word(p)).collect();
                ports == [port_word(port)]
            });
            if protocol_ok && port_ok {
                continue;
            }
            let shown = if seen.local_ports.is_empty() {
                seen.protocol.clone()
            } else {
                format!("{} {}", seen.protocol, seen.local_ports.join(", "))
            };
            found.push(Surprise {
                fact: format!("firewall rule {}", rule.name),
                source: rule.source.clone(),
                expected: format!(
                    "a built-in rule of the {} group for {}",
                    group.display_name(),
                    describe_rule(rule)
                ),
                observed: format!("`{shown}`"),
                affects: vec![format!("firewall.{group}.{}", rule.name)],
            });
        }
    }
    found
}

/// A port as compared: a number as it is, a keyword without case or `-`.
fn port_word(port: &str) -> String {
    let port = port.trim();
    if port.chars().all(|c| c.is_ascii_digit()) {
        port.to_string()
    } else {
        port.chars()
            .filter(|c| *c != '-')
            .collect::<String>()
            .to_ascii_lowercase()
    }
}

/// `TCP 445, profiles private, public`: a rule's filter and profiles, as the table gives them.
fn describe_rule(rule: &crate::facts::RuleInfo) -> String {
    let profiles: Vec<String> = rule.profiles.iter().map(ToString::to_string).collect();
    let filter = match (&rule.local_port, &rule.icmp_type) {
        (Some(port), _) => format!("{} {port}", rule.protocol),
        (None, Some(icmp)) => format!("{} {icmp}", rule.protocol),
        (None, None) => rule.protocol.clone(),
    };
    format!("{filter}, profiles {}", profiles.join(", "))
}

#[cfg(test)]
mod tests;
