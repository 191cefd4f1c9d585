//! The built-in rule groups the facts table lists rule by rule, planned rule by rule: each rule's
//! family (the rule and its `-NoScope` twin), what each rule should be under the configured
//! profiles and scope, the notices for rules the host lacks, and the change that sets one rule.

use kmsconf_model::config::{FirewallConfig, Profile, RuleGroup};
use kmsconf_model::facts::{RuleGroupInfo, RuleInfo};
use kmsconf_model::ops::PlanOp;
use kmsconf_model::state::{FirewallState, RuleState};
use kmsconf_model::KmsChange;

use crate::contract::{ChangeSpec, Planned};
use crate::error::PlanError;
use crate::shown::rule_value;

/// A rule's family: the rule and its `-NoScope` twin (the same traffic, for the Domain profile,
/// from any address). When the host lacks one of them, the other, scoped, rule takes its
/// configured profiles, as Microsoft's "Create a KMS activation host" opens the profiles it is
/// given on `SPPSVC-In-TCP` (`Set-NetFirewallRule -Name SPPSVC-In-TCP -Profile Domain,Private`): a
/// Windows Server may have no `-NoScope` rules.
fn family(rule: &str) -> &str {
    rule.strip_suffix("-NoScope").unwrap_or(rule)
}

/// The rules of a group kmsconf manages one by one, planned from what discovery found, family by
/// family ([`family`]): each rule the host has takes the configured profiles it is built for, and
/// a family's scoped rule also those whose twin is missing. A configured profile no rule of a
/// family can open is a plan error, never a profile left closed, unless the host has no rule of
/// that family at all in a group of several families (a host without the print spooler's rules
/// still gets the rest of File and Printer Sharing, with a notice).
pub(super) fn plan_rules(
    group: RuleGroup,
    info: &RuleGroupInfo,
    state: &FirewallState,
    cfg: &FirewallConfig,
    planned: &mut Planned,
) -> Result<(), PlanError> {
    let found = |name: &str| state.groups.get(&group).and_then(|g| g.rules.get(name));
    let mut families: Vec<&str> = info.rules.iter().map(|r| family(&r.name)).collect();
    families.dedup();
    for name in &families {
        let rules: Vec<&RuleInfo> = info
            .rules
            .iter()
            .filter(|r| family(&r.name) == *name)
            .collect();
        let present: Vec<(&RuleInfo, &RuleState)> = rules
            .iter()
            .filter_map(|r| Some((*r, found(&r.name)?)))
            .collect();
        if present.is_empty() && families.len() > 1 {
            planned.notices.push(format!(
                "the host has none of the firewall rules `{}` (group `{}`), so kmsconf leaves them out",
                rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join("`, `"),
                info.group
            ));
            continue;
        }
        let orphaned: Vec<Profile> = cfg
            .profiles
            .iter()
            .copied()
            .filter(|p| !present.iter().any(|(r, _)| r.profiles.contains(p)))
            .collect();
        let takes_over = present.iter().any(|(r, _)| r.name == *name);
        if !orphaned.is_empty() && !takes_over {
            return Err(PlanError::ProfileWithoutRule {
                profiles: Profile::windows_list(&orphaned),
                group: info.group.clone(),
                rule: (*name).into(),
            });
        }
        for missing in rules.iter().filter(|r| found(&r.name).is_none()) {
            planned
                .notices
                .push(missing_rule_notice(info, missing, name, &orphaned));
        }
        for (rule, current) in present {
            let mut built_for = rule.profiles.clone();
            if rule.name == *name {
                built_for.extend(orphaned.iter().copied());
            }
            planned
                .changes
                .extend(rule_change(group, info, rule, &built_for, current, cfg));
        }
    }
    Ok(())
}

/// What the plan says of a rule of family `family` the host lacks: left out, or its profiles
/// (`orphaned` among those it is built for) opened on the family's scoped rule instead.
fn missing_rule_notice(
    info: &RuleGroupInfo,
    missing: &RuleInfo,
    family: &str,
    orphaned: &[Profile],
) -> String {
    let taken: Vec<Profile> = orphaned
        .iter()
        .copied()
        .filter(|p| missing.profiles.contains(p))
        .collect();
    if taken.is_empty() {
        return format!(
            "the host has no firewall rule `{}` (group `{}`), so kmsconf leaves it out",
            missing.name, info.group
        );
    }
    let scope = if info.scoped {
        ", with its own scope unless `remote_addresses` is set"
    } else {
        ", with its own scope"
    };
    format!(
        "the host has no firewall rule `{}` (group `{}`): `{family}` opens {} instead (Microsoft's `Set-NetFirewallRule -Name {family} -Profile`){scope}",
        missing.name,
        info.group,
        Profile::windows_list(&taken)
    )
}

/// What a built-in rule should be: enabled on the configured profiles it opens (`built_for`, with
/// the configured scope, if any), or disabled when it opens none of them.
fn desired_rule(
    built_for: &[Profile],
    current: &RuleState,
    scope: Option<&Vec<String>>,
    cfg: &FirewallConfig,
) -> RuleState {
    let profiles: Vec<Profile> = cfg
        .profiles
        .iter()
        .copied()
        .filter(|p| built_for.contains(p))
        .collect();
    if profiles.is_empty() {
        return RuleState {
            enabled: false,
            ..current.clone()
        };
    }
    RuleState {
        enabled: true,
        profiles,
        remote_addresses: scope
            .cloned()
            .unwrap_or_else(|| current.remote_addresses.clone()),
    }
}

/// Setting one rule of a group as the config wants it, unless it already is so. A disabled rule
/// is the same whatever its profiles and scope.
fn rule_change(
    group: RuleGroup,
    info: &RuleGroupInfo,
    rule: &RuleInfo,
    built_for: &[Profile],
    current: &RuleState,
    cfg: &FirewallConfig,
) -> Option<KmsChange> {
    // `remote_addresses` scopes only a group kmsconf scopes (the Key Management Service rules)
    let scope = cfg.remote_addresses.as_ref().filter(|_| info.scoped);
    let desired = desired_rule(built_for, current, scope, cfg);
    if desired == *current || (!desired.enabled && !current.enabled) {
        return None;
    }
    let remote_addresses = scope.cloned().filter(|_| desired.enabled);
    Some(set_rule_change(
        group,
        &rule.name,
        current,
        desired,
        remote_addresses,
        &[],
    ))
}

/// `Set-NetFirewallRule -Name RULE` from `current` to `desired`, after `deps`; `remote_addresses`
/// is the scope it sets (`None`: the rule keeps its own).
pub(super) fn set_rule_change(
    group: RuleGroup,
    rule: &str,
    current: &RuleState,
    desired: RuleState,
    remote_addresses: Option<Vec<String>>,
    deps: &[String],
) -> KmsChange {
    ChangeSpec::new(format!("firewall.{group}.{rule}"), rule_value(current))
        .depends_on_all(deps)
        .into_change(PlanOp::SetFirewallRule {
            group,
            rule: rule.to_string(),
            enabled: desired.enabled,
            profiles: desired.profiles,
            remote_addresses,
        })
}
