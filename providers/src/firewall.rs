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

use kmsconf_model::catalog;
use kmsconf_model::config::{FirewallConfig, HostConfig, Profile, RuleGroup, DEFAULT_PORT};
use kmsconf_model::facts::{RuleGroupInfo, RuleInfo};
use serde_json::Value;

use crate::contract::{ChangeSpec, Planned, Provider};
use crate::error::PlanError;
use crate::export::{strings, ExportDoc};
use crate::shown::{group_value, port_rule_value, rule_value};
use crate::status::HostStatus;
use crate::Error;
use kmsconf_model::ops::PlanOp;
use kmsconf_model::state::{FirewallState, HostState, PortRule, RuleState};
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
fn plan_rules(
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
fn set_rule_change(
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
mod tests {
    use super::*;
    use kmsconf_model::config::DEFAULT_PROFILES;
    use serde_json::json;

    fn plan_ok(
        cfg: &FirewallConfig,
        state: &FirewallState,
        port: u16,
        port_change: Option<&str>,
    ) -> Planned {
        plan_firewall(cfg, state, port, port_change).expect("plan")
    }

    /// A host without `SPPSVC-In-TCP-NoScope` (as a Windows Server may be): `SPPSVC-In-TCP` opens
    /// Domain too, keeping its LocalSubnet scope; without either rule a configured profile is a
    /// plan error, never left closed.
    #[test]
    fn a_profile_whose_rule_is_missing_is_opened_by_the_documented_rule_or_refused() {
        let mut server = FirewallState::windows_default();
        if let Some(g) = server.groups.get_mut(&RuleGroup::KeyManagementService) {
            g.rules.remove("SPPSVC-In-TCP-NoScope");
        }
        let planned = plan_ok(&config(&DEFAULT_PROFILES, None), &server, 1688, None);
        assert_eq!(
            addresses(&planned),
            [(
                "firewall.key-management-service.SPPSVC-In-TCP",
                Some(
                    "Set-NetFirewallRule -Name SPPSVC-In-TCP -Enabled True -Profile Domain,Private"
                )
            )]
        );
        assert_eq!(
            planned.changes[0].after,
            json!({ "enabled": true, "profiles": ["domain", "private"], "remote_addresses": ["LocalSubnet"] })
        );
        assert!(
            planned.notices[0].contains("`SPPSVC-In-TCP` opens Domain instead"),
            "{:?}",
            planned.notices
        );
        // once applied, the same plan is empty
        let mut applied = server.clone();
        if let Some(r) = applied
            .groups
            .get_mut(&RuleGroup::KeyManagementService)
            .and_then(|g| g.rules.get_mut("SPPSVC-In-TCP"))
        {
            r.enabled = true;
            r.profiles = vec![Profile::Domain, Profile::Private];
        }
        let again = plan_ok(&config(&DEFAULT_PROFILES, None), &applied, 1688, None);
        assert!(again.changes.is_empty(), "{:?}", again.changes);
        // a scope from the config still applies to it
        let scoped = plan_ok(
            &config(&DEFAULT_PROFILES, Some(&["10.0.0.0/8"])),
            &server,
            1688,
            None,
        );
        assert_eq!(
            scoped.changes[0].equivalent.as_deref(),
            Some("Set-NetFirewallRule -Name SPPSVC-In-TCP -Enabled True -Profile Domain,Private -RemoteAddress 10.0.0.0/8")
        );
        // no SPPSVC-In-TCP: Private has no rule at all
        let mut bare = FirewallState::windows_default();
        if let Some(g) = bare.groups.get_mut(&RuleGroup::KeyManagementService) {
            g.rules.remove("SPPSVC-In-TCP");
        }
        let e = plan_firewall(&config(&DEFAULT_PROFILES, None), &bare, 1688, None)
            .expect_err("private has no rule")
            .to_string();
        assert!(
            e.starts_with("the configured firewall profiles Private have no rule of group `@FirewallAPI.dll,-28002`"),
            "{e}"
        );
        // domain only is still served by -NoScope
        let domain = plan_ok(&config(&[Profile::Domain], None), &bare, 1688, None);
        assert_eq!(domain.changes.len(), 1, "{:?}", domain.changes);
    }

    fn config(profiles: &[Profile], scope: Option<&[&str]>) -> FirewallConfig {
        FirewallConfig {
            rule_groups: vec![RuleGroup::KeyManagementService],
            remote_addresses: scope.map(|s| s.iter().map(|a| a.to_string()).collect()),
            profiles: profiles.to_vec(),
        }
    }

    fn addresses(planned: &Planned) -> Vec<(&str, Option<&str>)> {
        planned
            .changes
            .iter()
            .map(|c| (c.address.as_str(), c.equivalent.as_deref()))
            .collect()
    }

    /// A domain-joined host gets the Domain rule too; Public stays closed; the built-in scopes
    /// stay when the config sets none.
    #[test]
    fn the_default_opens_both_rules_on_domain_and_private_with_their_own_scope() {
        let fresh = FirewallState::windows_default();
        let planned = plan_ok(&config(&DEFAULT_PROFILES, None), &fresh, 1688, None);
        assert_eq!(
            addresses(&planned),
            [
                (
                    "firewall.key-management-service.SPPSVC-In-TCP",
                    Some("Set-NetFirewallRule -Name SPPSVC-In-TCP -Enabled True -Profile Private")
                ),
                (
                    "firewall.key-management-service.SPPSVC-In-TCP-NoScope",
                    Some("Set-NetFirewallRule -Name SPPSVC-In-TCP-NoScope -Enabled True -Profile Domain")
                ),
            ]
        );
        assert!(planned.changes.iter().all(|c| {
            !matches!(
                &c.operation,
                PlanOp::SetFirewallRule {
                    remote_addresses: Some(_),
                    ..
                }
            )
        }));
        assert_eq!(
            planned.changes[0].after,
            json!({ "enabled": true, "profiles": ["private"], "remote_addresses": ["LocalSubnet"] })
        );
    }

    #[test]
    fn public_opens_only_when_asked_and_a_scope_applies_to_both_rules() {
        let fresh = FirewallState::windows_default();
        let all = [Profile::Domain, Profile::Private, Profile::Public];
        let planned = plan_ok(&config(&all, Some(&["10.0.0.0/8"])), &fresh, 1688, None);
        assert_eq!(
            planned.changes[0].equivalent.as_deref(),
            Some("Set-NetFirewallRule -Name SPPSVC-In-TCP -Enabled True -Profile Private,Public -RemoteAddress 10.0.0.0/8")
        );
        assert_eq!(
            planned.changes[1].equivalent.as_deref(),
            Some("Set-NetFirewallRule -Name SPPSVC-In-TCP-NoScope -Enabled True -Profile Domain -RemoteAddress 10.0.0.0/8")
        );
        // domain only: the private/public rule is closed again
        let mut open = fresh.clone();
        if let Some(g) = open.groups.get_mut(&RuleGroup::KeyManagementService) {
            for r in g.rules.values_mut() {
                r.enabled = true;
            }
        }
        let planned = plan_ok(&config(&[Profile::Domain], None), &open, 1688, None);
        assert_eq!(
            addresses(&planned),
            [(
                "firewall.key-management-service.SPPSVC-In-TCP",
                Some("Set-NetFirewallRule -Name SPPSVC-In-TCP -Enabled False")
            )]
        );
    }

    fn fps(profiles: &[Profile], scope: Option<&[&str]>) -> FirewallConfig {
        FirewallConfig {
            rule_groups: vec![RuleGroup::FileAndPrinterSharing],
            ..config(profiles, scope)
        }
    }

    /// Applies `planned`'s rule changes to `state`, as the agent does.
    fn applied(mut state: FirewallState, planned: &Planned) -> FirewallState {
        for c in &planned.changes {
            if let PlanOp::SetFirewallRule {
                group,
                rule,
                enabled,
                profiles,
                remote_addresses,
            } = &c.operation
            {
                let g = state.groups.get_mut(group).expect("group");
                let r = g.rules.get_mut(rule).expect("rule");
                r.enabled = *enabled;
                if *enabled {
                    r.profiles = profiles.clone();
                    if let Some(scope) = remote_addresses {
                        r.remote_addresses = scope.clone();
                    }
                }
            }
        }
        state
    }

    /// `profiles` bounds File and Printer Sharing: each inbound rule opens on the configured
    /// profiles it is built for, Public never unless listed, the scope is never changed, and the
    /// applied state plans nothing.
    #[test]
    fn file_and_printer_sharing_is_bounded_by_profiles_rule_by_rule() {
        let fresh = FirewallState::windows_default();
        let planned = plan_ok(
            &fps(&DEFAULT_PROFILES, Some(&["10.0.0.0/8"])),
            &fresh,
            1688,
            None,
        );
        assert_eq!(planned.changes.len(), 17, "{:?}", addresses(&planned));
        for c in &planned.changes {
            let PlanOp::SetFirewallRule {
                enabled,
                profiles,
                remote_addresses,
                ..
            } = &c.operation
            else {
                panic!("{c:?}");
            };
            assert!(*enabled && !profiles.contains(&Profile::Public), "{c:?}");
            assert_eq!(*remote_addresses, None, "{c:?}");
        }
        let eq = |name: &str| {
            planned
                .changes
                .iter()
                .find(|c| c.address == format!("firewall.file-and-printer-sharing.{name}"))
                .and_then(|c| c.equivalent.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            eq("FPS-SMB-In-TCP"),
            "Set-NetFirewallRule -Name FPS-SMB-In-TCP -Enabled True -Profile Private"
        );
        assert_eq!(
            eq("FPS-SMB-In-TCP-NoScope"),
            "Set-NetFirewallRule -Name FPS-SMB-In-TCP-NoScope -Enabled True -Profile Domain"
        );
        assert_eq!(
            eq("FPS-LLMNR-In-UDP"),
            "Set-NetFirewallRule -Name FPS-LLMNR-In-UDP -Enabled True -Profile Domain,Private"
        );
        let after = applied(fresh.clone(), &planned);
        let again = plan_ok(&fps(&DEFAULT_PROFILES, None), &after, 1688, None);
        assert!(again.changes.is_empty(), "{:?}", again.changes);
        // the whole group enabled by hand (Public open) is closed down to the configured profiles
        let mut by_hand = fresh.clone();
        for r in by_hand
            .groups
            .get_mut(&RuleGroup::FileAndPrinterSharing)
            .expect("fps")
            .rules
            .values_mut()
        {
            r.enabled = true;
        }
        let domain = plan_ok(&fps(&[Profile::Domain], None), &by_hand, 1688, None);
        let after = applied(by_hand, &domain);
        let fps_rules = &after.groups[&RuleGroup::FileAndPrinterSharing].rules;
        assert!(fps_rules
            .values()
            .all(|r| !r.open_on(Profile::Public) && !r.open_on(Profile::Private)));
        assert!(fps_rules["FPS-SMB-In-TCP-NoScope"].open_on(Profile::Domain));
        assert!(!fps_rules["FPS-SMB-In-TCP"].enabled);
    }

    /// A host without the `-NoScope` twins (a Windows Server 2016 rule list shows none): the
    /// scoped rule takes Domain; a pair the host lacks altogether is a notice, not an error.
    #[test]
    fn file_and_printer_sharing_without_twins_opens_domain_on_the_scoped_rule() {
        let mut server = FirewallState::windows_default();
        let g = server
            .groups
            .get_mut(&RuleGroup::FileAndPrinterSharing)
            .expect("fps");
        g.rules
            .retain(|name, _| !name.ends_with("-NoScope") && !name.starts_with("FPS-SpoolSvc"));
        let planned = plan_ok(&fps(&DEFAULT_PROFILES, None), &server, 1688, None);
        let smb = planned
            .changes
            .iter()
            .find(|c| c.address.ends_with(".FPS-SMB-In-TCP"))
            .expect("smb");
        assert_eq!(
            smb.equivalent.as_deref(),
            Some("Set-NetFirewallRule -Name FPS-SMB-In-TCP -Enabled True -Profile Domain,Private")
        );
        assert!(
            planned.notices.iter().any(|n| n.contains(
                "none of the firewall rules `FPS-SpoolSvc-In-TCP`, `FPS-SpoolSvc-In-TCP-NoScope`"
            )),
            "{:?}",
            planned.notices
        );
        let again = plan_ok(
            &fps(&DEFAULT_PROFILES, None),
            &applied(server, &planned),
            1688,
            None,
        );
        assert!(again.changes.is_empty(), "{:?}", again.changes);
    }

    #[test]
    fn the_port_rule_opens_on_the_configured_profiles() {
        let fresh = FirewallState::windows_default();
        let planned = plan_ok(&config(&DEFAULT_PROFILES, None), &fresh, 1689, None);
        let port = planned
            .changes
            .iter()
            .find(|c| c.address == PORT_RULE)
            .expect("port rule");
        assert!(
            port.equivalent
                .as_deref()
                .is_some_and(|e| e.ends_with("localport=1689 remoteip=any profile=domain,private")),
            "{port:?}"
        );
    }
}
