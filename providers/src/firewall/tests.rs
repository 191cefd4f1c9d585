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
            Some("Set-NetFirewallRule -Name SPPSVC-In-TCP -Enabled True -Profile Domain,Private")
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
                Some(
                    "Set-NetFirewallRule -Name SPPSVC-In-TCP-NoScope -Enabled True -Profile Domain"
                )
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
