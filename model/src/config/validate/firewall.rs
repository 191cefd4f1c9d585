//! The `[hosts.NAME.firewall]` table: the rule groups to enable, the profiles every one of them is
//! opened on (and the KMS port rule), and the remote addresses the KMS rules are scoped to, kept in
//! the form discovery reads back from Windows.

use kmsconf_engine::diagnostic::quoted;
use std::net::IpAddr;

use super::Ctx;
use crate::config::wire;
use crate::config::FirewallConfig;

/// Firewall remote-address keywords Windows accepts besides addresses, subnets and ranges.
const ADDRESS_KEYWORDS: &[&str] = &[
    "Any",
    "LocalSubnet",
    "DNS",
    "DHCP",
    "WINS",
    "DefaultGateway",
    "Internet",
    "Intranet",
    "IntranetRemoteAccess",
    "PlayToDevice",
];

pub(super) fn convert_firewall(ctx: &mut Ctx, f: wire::FirewallWire) -> FirewallConfig {
    let mut groups = Vec::new();
    for g in &f.rule_groups {
        if groups.contains(g.get()) {
            ctx.error(
                g.start(),
                format!("rule group `{}` is listed twice", g.get()),
            );
        } else {
            groups.push(*g.get());
        }
    }
    let remote_addresses = f.remote_addresses.as_ref().map(|list| {
        if list.get().is_empty() {
            ctx.error(list.start(), "`remote_addresses` is empty; leave it out to keep the rules' own scope");
        }
        if !groups.contains(&wire::RuleGroup::KeyManagementService) {
            ctx.error(
                list.start(),
                "`remote_addresses` scopes the `key-management-service` rule group, which is not in `rule_groups`",
            );
        }
        let mut canonical: Vec<String> = Vec::new();
        for a in list.get() {
            match remote_address(a.get()) {
                // Windows keeps one of each, so a repeated entry would read back as drift
                Ok(c) if canonical.contains(&c) => ctx.error(
                    a.start(),
                    format!("remote address `{}` is listed twice", a.get()),
                ),
                Ok(c) => canonical.push(c),
                Err(e) => ctx.error(a.start(), e.to_string()),
            }
        }
        // discovery reads a rule open to `Any` as no scope at all
        if canonical.iter().any(|a| a == "Any") {
            Vec::new()
        } else {
            canonical
        }
    });
    let profiles = f.profiles.as_ref().map_or_else(
        || crate::config::DEFAULT_PROFILES.to_vec(),
        |list| profiles(ctx, list, &groups),
    );
    FirewallConfig {
        rule_groups: groups,
        remote_addresses,
        profiles,
    }
}

/// The `profiles` list, sorted: not empty, each profile once, and only with a rule group to bound.
fn profiles(
    ctx: &mut Ctx,
    list: &wire::At<Vec<wire::At<wire::Profile>>>,
    groups: &[wire::RuleGroup],
) -> Vec<wire::Profile> {
    if list.get().is_empty() {
        ctx.error(
            list.start(),
            "`profiles` is empty; leave it out to open the rule groups on the domain and private profiles",
        );
    }
    if groups.is_empty() {
        ctx.error(
            list.start(),
            "`profiles` bounds the rule groups in `rule_groups`, and none is listed",
        );
    }
    let mut out: Vec<wire::Profile> = Vec::new();
    for p in list.get() {
        if out.contains(p.get()) {
            ctx.error(p.start(), format!("profile `{}` is listed twice", p.get()));
        } else {
            out.push(*p.get());
        }
    }
    out.sort();
    out
}

/// Why an entry of `remote_addresses` is not one Windows takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum RemoteAddressError {
    #[error("remote address {} is not an IP address, a subnet `a.b.c.d/n`, a range `a-b` or one of {}", quoted(.address), ADDRESS_KEYWORDS.join(", "))]
    Malformed { address: String },
    #[error("remote address range {} must go from a lower to a higher address of one family", quoted(.address))]
    Range { address: String },
}

/// Checks a remote address and returns it in the form discovery reads it back from Windows
/// (keywords in their own spelling, IPs as Rust prints them, a one-address subnet as the bare
/// address), so a scope written another way does not show as a change on every plan.
fn remote_address(text: &str) -> Result<String, RemoteAddressError> {
    if let Some(keyword) = ADDRESS_KEYWORDS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(text))
    {
        return Ok((*keyword).to_string());
    }
    let bad = || RemoteAddressError::Malformed {
        address: text.into(),
    };
    if let Some((ip, prefix)) = text.split_once('/') {
        let ip: IpAddr = ip.parse().map_err(|_| bad())?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = prefix
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(bad)?;
        return Ok(if prefix == max {
            ip.to_string()
        } else {
            format!("{ip}/{prefix}")
        });
    }
    if let Some((a, b)) = text.split_once('-') {
        let (a, b): (IpAddr, IpAddr) =
            (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a.is_ipv4() != b.is_ipv4() || a > b {
            return Err(RemoteAddressError::Range {
                address: text.into(),
            });
        }
        return Ok(format!("{a}-{b}"));
    }
    text.parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn remote_addresses_take_the_form_discovery_reads_back() {
        let canonical = |text: &str| remote_address(text).expect(text);
        assert_eq!(canonical("localsubnet"), "LocalSubnet");
        assert_eq!(canonical("10.1.2.3/32"), "10.1.2.3");
        assert_eq!(canonical("10.0.0.0/08"), "10.0.0.0/8");
        assert_eq!(canonical("FE80:0::1/128"), "fe80::1");
        assert_eq!(canonical("FE80::/64"), "fe80::/64");
        assert_eq!(canonical("10.0.0.1-10.0.0.9"), "10.0.0.1-10.0.0.9");
        assert!(remote_address("10.0.0.0/33").is_err());
        let scope = |list: &str| {
            let text = format!("[hosts.kms01]\ntarget = \"lab:kms01.json\"\n[hosts.kms01.firewall]\nrule_groups = [\"key-management-service\"]\nremote_addresses = {list}\n");
            let config =
                crate::config::Config::parse(Path::new("kmsconf.toml"), &text).expect("valid");
            config.hosts["kms01"]
                .firewall
                .as_ref()
                .and_then(|f| f.remote_addresses.clone())
        };
        assert_eq!(
            scope("[\"localsubnet\", \"10.1.2.3/32\"]"),
            Some(vec!["LocalSubnet".to_string(), "10.1.2.3".to_string()])
        );
        // a rule open to `Any` reads back with no scope at all
        assert_eq!(scope("[\"any\"]"), Some(Vec::new()));
    }
}
