//! Firewall provider: the built-in rule groups (matched by locale-independent group resource
//! string and rule name, never by the localized display name) and kmsconf's own rule for a
//! custom KMS port.
//!
//! Each managed group is managed rule by rule, bounded by the configured `profiles`: the Key
//! Management Service group's `SPPSVC-In-TCP` (built in for the private and public profiles,
//! scope `LocalSubnet`) and `SPPSVC-In-TCP-NoScope` (domain, any address), and File and Printer
//! Sharing's inbound rules (SMB, NetBIOS, ICMP echo, spooler, RPC endpoint mapper, each with its
//! `-NoScope` twin, and LLMNR on every profile). Each rule is enabled on the configured profiles it
//! is built for and disabled when it is built for none of them, so the public profile stays
//! closed unless the config lists it; outbound rules are never touched. Only the Key Management
//! Service rules take the scope `remote_addresses` sets.
//!
//! Here: the provider, the export, the port rule, groups managed whole and retirement; the rule
//! by rule planning is in `rules`.

mod rules;

use kmsconf_model::catalog;
use kmsconf_model::config::{FirewallConfig, HostConfig, Profile, RuleGroup, DEFAULT_PORT};
use serde_json::Value;

use crate::contract::{ChangeSpec, Planned, Provider};
use crate::error::PlanError;
use crate::export::{strings, ExportDoc};
use crate::shown::{group_value, port_rule_value};
use crate::status::HostStatus;
use crate::Error;
use kmsconf_model::ops::PlanOp;
use kmsconf_model::state::{FirewallState, HostState, PortRule, RuleState};
use kmsconf_model::KmsChange;
use toml_edit::Table;

use rules::{plan_rules, set_rule_change};

const PORT_RULE: &str = "firewall.kms-port-rule";

/// The firewall provider.
pub struct Firewall;

impl Provider for Firewall {
    fn plan(
        &self,
        cfg: &HostConfig,
        state: &HostState,
        earlier: &[KmsChange],
    ) -> Result<Planned, Error> {
        let Some(fw) = &cfg.firewall else {
            return Ok(Planned::default());
        };
        let port = cfg.service.port().unwrap_or(state.service.effective_port());
        let port_change = earlier
            .iter()
            .find(|c| c.address == crate::contract::PORT)
            .map(|c| c.address.as_str());
        plan_firewall(fw, &state.firewall, port, port_change).map_err(|e| e.on(&cfg.name))
    }

    fn export(&self, state: &HostState, doc: &mut ExportDoc) {
        let Some(cfg) = exported_config(&state.firewall) else {
            doc.comment_block("Firewall: no managed rule group is enabled, so none is declared.");
            return;
        };
        let ids: Vec<String> = cfg.rule_groups.iter().map(|g| g.id().to_string()).collect();
        let mut table = Table::new();
        table.insert("rule_groups", strings(&ids));
        let profiles: Vec<String> = cfg.profiles.iter().map(|p| p.id().to_string()).collect();
        table.insert("profiles", strings(&profiles));
        if let Some(scope) = &cfg.remote_addresses {
            table.insert("remote_addresses", strings(scope));
        }
        doc.insert_table(&["firewall"], table);
        let port = state.service.effective_port();
        let planned = plan_firewall(&cfg, &state.firewall, port, None).unwrap_or_default();
        if !planned.changes.is_empty() {
            let what: Vec<&str> = planned.changes.iter().map(|c| c.address.as_str()).collect();
            doc.comment_after(&format!(
                "The host's firewall differs from what this table can say ({}): the first plan\nchanges it.",
                what.join(", ")
            ));
        }
    }

    /// `status` shows no firewall state: `doctor` checks it.
    fn status(&self, _cfg: &HostConfig, _state: &HostState, _status: &mut HostStatus) {}
}

/// The firewall table that says what the host has: the groups with a rule open (or enabled, for
/// a group managed whole), the profiles their rules are open on, and the Key Management Service
/// rules' scope when they all share one that is not the built-in one.
fn exported_config(fw: &FirewallState) -> Option<FirewallConfig> {
    let open_on = |g: &RuleGroup, p: Profile| {
        fw.groups
            .get(g)
            .is_some_and(|s| s.rules.values().any(|r| r.open_on(p)))
    };
    let open: Vec<Profile> = Profile::ALL
        .into_iter()
        .filter(|p| RuleGroup::ALL.iter().any(|g| open_on(g, *p)))
        .collect();
    let rule_groups: Vec<RuleGroup> = RuleGroup::ALL
        .into_iter()
        .filter(|g| {
            Profile::ALL.into_iter().any(|p| open_on(g, p))
                || fw
                    .groups
                    .get(g)
                    .is_some_and(|s| s.rules.is_empty() && s.enabled)
        })
        .collect();
    if rule_groups.is_empty() {
        return None;
    }
    let kms = fw.groups.get(&RuleGroup::KeyManagementService);
    let kms_rules = kms.map(|g| &g.rules);
    let kms_open = Profile::ALL
        .into_iter()
        .any(|p| open_on(&RuleGroup::KeyManagementService, p));
    let built_in = catalog::rule_group(RuleGroup::KeyManagementService).is_some_and(|info| {
        info.rules.iter().all(|r| {
            kms_rules
                .and_then(|rules| rules.get(&r.name))
                .is_none_or(|s| s.remote_addresses == r.remote_addresses)
        })
    });
    let scope = kms.map(|g| g.remote_addresses.clone()).unwrap_or_default();
    let shared = kms.is_some_and(|g| {
        let scopes: std::collections::BTreeSet<&Vec<String>> =
            g.rules.values().map(|r| &r.remote_addresses).collect();
        scopes.len() == 1
    });
    Some(FirewallConfig {
        remote_addresses: (kms_open && shared && !built_in && !scope.is_empty()).then_some(scope),
        profiles: if open.is_empty() {
            kmsconf_model::config::DEFAULT_PROFILES.to_vec()
        } else {
            open
        },
        rule_groups,
    })
}

/// Plans the rule groups and the port rule. `port` is the KMS port after apply; `port_change`
/// the address of the change that sets it, which the port rule waits for.
fn plan_firewall(
    cfg: &FirewallConfig,
    state: &FirewallState,
    port: u16,
    port_change: Option<&str>,
) -> Result<Planned, PlanError> {
    let mut planned = Planned::default();
    for group in &cfg.rule_groups {
        match catalog::rule_group(*group).filter(|info| !info.rules.is_empty()) {
            Some(info) => plan_rules(*group, info, state, cfg, &mut planned)?,
            None => planned.changes.extend(rule_group_change(*group, state)),
        }
    }
    let wants_rule =
        cfg.rule_groups.contains(&RuleGroup::KeyManagementService) && port != DEFAULT_PORT;
    let desired = wants_rule.then(|| PortRule {
        port,
        remote_addresses: cfg.remote_addresses.clone().unwrap_or_default(),
        profiles: cfg.profiles.clone(),
    });
    let deps: Vec<String> = port_change.map(str::to_string).into_iter().collect();
    planned
        .changes
        .extend(port_rule_change(state.port_rule.as_ref(), desired, &deps));
    Ok(planned)
}

/// What retiring a host does to its firewall, after `deps`: both Key Management Service rules
/// disabled one by one (their profiles and scope kept, as a disabled rule is the same whatever
/// they are) and kmsconf's port rule removed. Other groups are left as they are (File and Printer
/// Sharing serves other roles).
pub(crate) fn retire(state: &FirewallState, deps: &[String]) -> Vec<KmsChange> {
    let group = RuleGroup::KeyManagementService;
    let rules = catalog::rule_group(group).map_or(&[][..], |info| info.rules.as_slice());
    let current = state.groups.get(&group).map(|g| &g.rules);
    let mut changes: Vec<KmsChange> = rules
        .iter()
        .filter_map(|rule| {
            let now = current
                .and_then(|r| r.get(&rule.name))
                .filter(|r| r.enabled)?;
            let off = RuleState {
                enabled: false,
                ..now.clone()
            };
            Some(set_rule_change(group, &rule.name, now, off, None, deps))
        })
        .collect();
    changes.extend(port_rule_change(state.port_rule.as_ref(), None, deps));
    changes
}

/// Enabling a group whose rules the facts table does not list (kmsconf then manages it whole,
/// `Get-NetFirewallRule -Group G -Direction Inbound | Set-NetFirewallRule -Enabled True`), unless
/// it already is; its rules keep their own profiles and scope. Both groups kmsconf knows today are
/// listed rule by rule, so `profiles` bounds them; `set_rule_group` stays in the plan-file format,
/// and the agent and the lab still run it.
fn rule_group_change(group: RuleGroup, state: &FirewallState) -> Option<KmsChange> {
    let current = state.groups.get(&group);
    if current.is_some_and(|g| g.enabled) {
        return None;
    }
    let current_scope = current
        .map(|g| g.remote_addresses.clone())
        .unwrap_or_default();
    Some(
        ChangeSpec::new(
            format!("firewall.{group}"),
            group_value(false, &current_scope),
        )
        .into_change(PlanOp::SetRuleGroup {
            group,
            enabled: true,
            remote_addresses: current_scope,
        }),
    )
}

/// Adding, changing or removing kmsconf's own port rule so it is `desired`, after `deps`.
fn port_rule_change(
    current: Option<&PortRule>,
    desired: Option<PortRule>,
    deps: &[String],
) -> Option<KmsChange> {
    match (current, desired) {
        (current, Some(want)) if current != Some(&want) => {
            let before = current.map_or(Value::Null, port_rule_value);
            Some(
                ChangeSpec::new(PORT_RULE, before)
                    .depends_on_all(deps)
                    .into_change(PlanOp::SetPortRule {
                        port: want.port,
                        remote_addresses: want.remote_addresses,
                        profiles: want.profiles,
                    }),
            )
        }
        (Some(current), None) => Some(
            ChangeSpec::new(PORT_RULE, port_rule_value(current))
                .depends_on_all(deps)
                .into_change(PlanOp::RemovePortRule),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
