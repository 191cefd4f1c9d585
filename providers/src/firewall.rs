//! Firewall provider: the built-in rule groups (matched by locale-independent id, never by the
//! localized display name) and kmsconf's own rule for a custom KMS port.

use kmsconf_model::catalog::PORT_RULE_NAME;
use kmsconf_model::config::{FirewallConfig, HostConfig, RuleGroup, DEFAULT_PORT};
use kmsconf_model::Action;
use serde_json::{json, Value};

use crate::export::{strings, ExportDoc};
use crate::planner::ChangeSpec;
use crate::provider::{Planned, Provider};
use crate::status::HostStatus;
use crate::Error;
use kmsconf_model::ops::PlanOp;
use kmsconf_model::state::{FirewallState, HostState, PortRule};
use kmsconf_model::KmsChange;
use toml_edit::Table;

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
        let port = cfg.service.port.unwrap_or(state.service.effective_port());
        let port_change = earlier
            .iter()
            .find(|c| c.address == crate::service::PORT)
            .map(|c| c.address.as_str());
        Ok(Planned {
            changes: plan_firewall(fw, &state.firewall, port, port_change),
            notices: Vec::new(),
        })
    }

    fn export(&self, state: &HostState, doc: &mut ExportDoc) {
        let fw = &state.firewall;
        let enabled: Vec<RuleGroup> = RuleGroup::ALL
            .into_iter()
            .filter(|g| fw.groups.get(g).is_some_and(|s| s.enabled))
            .collect();
        if enabled.is_empty() {
            doc.comment_block("Firewall: no managed rule group is enabled, so none is declared.");
            return;
        }
        let ids: Vec<String> = enabled.iter().map(|g| g.id().to_string()).collect();
        let mut table = Table::new();
        table.insert("rule_groups", strings(&ids));
        let scope = fw
            .groups
            .get(&RuleGroup::KeyManagementService)
            .filter(|g| g.enabled)
            .map(|g| g.remote_addresses.clone())
            .unwrap_or_default();
        if !scope.is_empty() {
            table.insert("remote_addresses", strings(&scope));
        }
        doc.insert_table(&["firewall"], table);
        let kms_enabled = enabled.contains(&RuleGroup::KeyManagementService);
        let port = state.service.effective_port();
        let wanted = (kms_enabled && port != DEFAULT_PORT).then_some((port, &scope));
        let present = fw.port_rule.as_ref().map(|r| (r.port, &r.remote_addresses));
        if wanted != present {
            doc.comment_after(&format!(
                "kmsconf's own rule for the KMS port ({PORT_RULE_NAME}) does not match this config: the first plan\nchanges it."
            ));
        }
    }

    /// `status` shows no firewall state: `doctor` checks it.
    fn status(&self, _cfg: &HostConfig, _state: &HostState, _status: &mut HostStatus) {}
}

fn scope(addresses: &[String]) -> Value {
    if addresses.is_empty() {
        json!("any")
    } else {
        json!(addresses)
    }
}

fn remoteip(addresses: &[String]) -> String {
    if addresses.is_empty() {
        "any".into()
    } else {
        addresses.join(",")
    }
}

/// Plans the rule groups and the port rule. `port` is the KMS port after apply; `port_change`
/// the address of the change that sets it, which the port rule waits for.
fn plan_firewall(
    cfg: &FirewallConfig,
    state: &FirewallState,
    port: u16,
    port_change: Option<&str>,
) -> Vec<KmsChange> {
    let kms_scope: Vec<String> = cfg.remote_addresses.clone().unwrap_or_default();
    let mut changes: Vec<KmsChange> = cfg
        .rule_groups
        .iter()
        .filter_map(|group| rule_group_change(*group, state, &kms_scope))
        .collect();
    let wants_rule =
        cfg.rule_groups.contains(&RuleGroup::KeyManagementService) && port != DEFAULT_PORT;
    let desired = wants_rule.then_some(PortRule {
        port,
        remote_addresses: kms_scope,
    });
    let deps: Vec<String> = port_change.map(str::to_string).into_iter().collect();
    changes.extend(port_rule_change(state.port_rule.as_ref(), desired, &deps));
    changes
}

/// What retiring a host does to its firewall, after `deps`: the Key Management Service group
/// disabled (its scope kept) and kmsconf's port rule removed. Other groups are left as they are
/// (File and Printer Sharing serves other roles).
pub(crate) fn retire(state: &FirewallState, deps: &[String]) -> Vec<KmsChange> {
    let group = RuleGroup::KeyManagementService;
    let mut changes = Vec::new();
    if let Some(current) = state.groups.get(&group).filter(|g| g.enabled) {
        let value = |enabled: bool| json!({ "enabled": enabled, "remote_addresses": scope(&current.remote_addresses) });
        changes.push(
            ChangeSpec::new(
                format!("firewall.{group}"),
                Action::Update,
                value(true),
                value(false),
            )
            .equivalent(format!(
                "netsh advfirewall firewall set rule group=\"{}\" new enable=no",
                group.display_name()
            ))
            .depends_on_all(deps)
            .into_change(PlanOp::SetRuleGroup {
                group,
                enabled: false,
                remote_addresses: current.remote_addresses.clone(),
            }),
        );
    }
    changes.extend(port_rule_change(state.port_rule.as_ref(), None, deps));
    changes
}

/// Enabling `group` (and, for the Key Management Service group, setting its scope to
/// `kms_scope`), unless it already is so.
fn rule_group_change(
    group: RuleGroup,
    state: &FirewallState,
    kms_scope: &[String],
) -> Option<KmsChange> {
    let current = state.groups.get(&group);
    let enabled = current.is_some_and(|g| g.enabled);
    let current_scope = current
        .map(|g| g.remote_addresses.clone())
        .unwrap_or_default();
    // only the KMS rule's scope is managed; other groups keep the scope they have
    let desired_scope = if group == RuleGroup::KeyManagementService {
        kms_scope.to_vec()
    } else {
        current_scope.clone()
    };
    if enabled && current_scope == desired_scope {
        return None;
    }
    let value =
        |enabled: bool, s: &[String]| json!({ "enabled": enabled, "remote_addresses": scope(s) });
    let mut equivalent = format!(
        "netsh advfirewall firewall set rule group=\"{}\" new enable=yes",
        group.display_name()
    );
    if group == RuleGroup::KeyManagementService {
        equivalent.push_str(&format!(" remoteip={}", remoteip(&desired_scope)));
    }
    Some(
        ChangeSpec::new(
            format!("firewall.{group}"),
            Action::Update,
            value(enabled, &current_scope),
            value(true, &desired_scope),
        )
        .equivalent(equivalent)
        .into_change(PlanOp::SetRuleGroup {
            group,
            enabled: true,
            remote_addresses: desired_scope,
        }),
    )
}

/// Adding, changing or removing kmsconf's own port rule so it is `desired`, after `deps`.
fn port_rule_change(
    current: Option<&PortRule>,
    desired: Option<PortRule>,
    deps: &[String],
) -> Option<KmsChange> {
    let rule_value =
        |r: &PortRule| json!({ "port": r.port, "remote_addresses": scope(&r.remote_addresses) });
    match (current, desired) {
        (current, Some(want)) if current != Some(&want) => {
            let (action, verb, new) = if current.is_some() {
                (Action::Update, "set rule name", " new")
            } else {
                (
                    Action::Create,
                    "add rule name",
                    " dir=in action=allow protocol=TCP",
                )
            };
            let before = current.map_or(Value::Null, rule_value);
            Some(
                ChangeSpec::new(PORT_RULE, action, before, rule_value(&want))
                    .equivalent(format!(
                        "netsh advfirewall firewall {verb}=\"{PORT_RULE_NAME}\"{new} localport={} remoteip={}",
                        want.port,
                        remoteip(&want.remote_addresses)
                    ))
                    .depends_on_all(deps)
                    .into_change(PlanOp::SetPortRule { port: want.port, remote_addresses: want.remote_addresses }),
            )
        }
        (Some(current), None) => Some(
            ChangeSpec::new(PORT_RULE, Action::Delete, rule_value(current), Value::Null)
                .equivalent(format!(
                    "netsh advfirewall firewall delete rule name=\"{PORT_RULE_NAME}\""
                ))
                .depends_on_all(deps)
                .into_change(PlanOp::RemovePortRule),
        ),
        _ => None,
    }
}
