//! `kmsconf export`: the config that reproduces a host's discovered state, so an existing KMS host
//! can be brought under Git. Keys are never read back from a host (Windows keeps only their last
//! five characters), so each appears as an `{ env = "..." }` placeholder the user fills.
//!
//! What the config cannot say is written as comments (a KMS client key, settings that need an
//! activated KMS host, a pending restart), so that `plan` against the exported config shows no
//! changes wherever the config language can express the host.

use std::fmt::Write as _;

use kmsconf_model::config::{ProductId, PublishDomain, RuleGroup, DEFAULT_PORT};

use kmsconf_model::catalog;
use kmsconf_model::state::{Channel, HostState, LicenseStatus};

/// An exported config and the variables it expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub toml: String,
    /// `(variable, last five characters of the key it must hold)`.
    pub variables: Vec<(String, String)>,
}

/// A host name for the config from a computer name: lowercase, `-` for anything else.
pub fn host_name(computer_name: &str) -> String {
    let name: String = computer_name
        .trim()
        .chars()
        .map(|c| {
            if kmsconf_model::config::is_host_name_char(c) {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "kms".into()
    } else {
        name
    }
}

/// The environment variable an exported host key is read from: `KMS01_OFFICE_2019_HOST_KEY`.
pub fn key_variable(host: &str, product: ProductId) -> String {
    format!("{host}_{product}_HOST_KEY")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// `name` as a TOML key: bare when TOML allows it, else a quoted string.
fn table_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if bare {
        name.to_string()
    } else {
        string(name)
    }
}

fn strings(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| string(i)).collect();
    format!("[{}]", quoted.join(", "))
}

fn domain(d: &PublishDomain) -> String {
    if d.priority == 0 && d.weight == 0 {
        string(&d.domain)
    } else {
        format!(
            "{{ domain = {}, priority = {}, weight = {} }}",
            string(&d.domain),
            d.priority,
            d.weight
        )
    }
}

/// The config for one host named `name`, reached as `target` (as the user wrote it).
pub fn export(host: &str, target: &str, state: &HostState) -> Export {
    // the name as a TOML key: a name with a `.` is quoted, or it would be a dotted key
    let name = &table_key(host);
    let mut out = String::new();
    let mut variables = Vec::new();
    let _ = writeln!(
        out,
        "# Exported by kmsconf from `{target}` ({}, {}).\n# Host keys are never read back from a host: set each variable below to the key installed\n# there (Windows shows only its last five characters, given beside it).\n",
        state.computer_name, state.os
    );
    let _ = writeln!(out, "[hosts.{name}]\ntarget = {}", string(target));
    service(&mut out, name, state);
    firewall(&mut out, name, state);
    for (id, p) in &state.products {
        let product = catalog::product_name(*id);
        match (&p.partial_key, p.channel) {
            (Some(partial), Channel::KmsHost) => {
                let variable = key_variable(host, *id);
                let activation = if p.license_status == LicenseStatus::Licensed {
                    "\"online\"   # licensed".to_string()
                } else {
                    format!(
                        "\"none\"   # {}: set \"online\" or \"phone\" to activate it",
                        p.license_status
                    )
                };
                let _ = writeln!(
                    out,
                    "\n[hosts.{name}.products.{id}]\nhost_key = {{ env = {} }}   # the installed key ends in {partial}\nactivation = {activation}",
                    string(&variable)
                );
                variables.push((variable, partial.clone()));
            }
            (Some(partial), channel) => {
                let _ = writeln!(
                    out,
                    "\n# {product}: a {channel} ending in {partial} is installed, not a KMS host key;\n# declare [hosts.{name}.products.{id}] with the KMS host key to make this a KMS host."
                );
            }
            (None, _) => {
                let _ = writeln!(
                    out,
                    "\n# {product}: the KMS host license pack is installed, but no key."
                );
            }
        }
    }
    Export {
        toml: out,
        variables,
    }
}

fn service(out: &mut String, name: &str, state: &HostState) {
    if !state.windows_is_activated_kms_host() {
        let _ = writeln!(
            out,
            "\n# KMS service settings are left out: Windows accepts them only on an activated KMS host,\n# and this host is not one yet."
        );
        return;
    }
    let s = &state.service;
    let domains: Vec<String> = s.publish_domains.iter().map(domain).collect();
    // an empty list on a host that does not publish itself says nothing, and `validate` warns
    // that a publish list has no effect while publishing is off
    let publish_domains = if !s.dns_publishing && domains.is_empty() {
        String::new()
    } else {
        format!("publish_domains = [{}]\n", domains.join(", "))
    };
    let _ = writeln!(
        out,
        "\n[hosts.{name}.service]\nport = {}\ndns_publishing = {}\n{publish_domains}low_priority = {}\nactivation_interval = {}\nrenewal_interval = {}\nhost_caching = {}",
        s.effective_port(),
        s.dns_publishing,
        s.low_priority,
        s.activation_interval,
        s.renewal_interval,
        s.host_caching
    );
    if s.restart_pending {
        let _ = writeln!(
            out,
            "# A restart of the Software Protection service is pending on the host: the first plan\n# shows it."
        );
    }
}

fn firewall(out: &mut String, name: &str, state: &HostState) {
    let fw = &state.firewall;
    let enabled: Vec<RuleGroup> = RuleGroup::ALL
        .into_iter()
        .filter(|g| fw.groups.get(g).is_some_and(|s| s.enabled))
        .collect();
    if enabled.is_empty() {
        let _ = writeln!(
            out,
            "\n# Firewall: no managed rule group is enabled, so none is declared."
        );
        return;
    }
    let ids: Vec<String> = enabled.iter().map(|g| g.id().to_string()).collect();
    let _ = writeln!(
        out,
        "\n[hosts.{name}.firewall]\nrule_groups = {}",
        strings(&ids)
    );
    let kms = fw.groups.get(&RuleGroup::KeyManagementService);
    let scope = kms
        .filter(|g| g.enabled)
        .map(|g| g.remote_addresses.clone())
        .unwrap_or_default();
    if !scope.is_empty() {
        let _ = writeln!(out, "remote_addresses = {}", strings(&scope));
    }
    let kms_enabled = enabled.contains(&RuleGroup::KeyManagementService);
    let port = state.service.effective_port();
    let wanted = (kms_enabled && port != DEFAULT_PORT).then_some((port, &scope));
    let present = fw.port_rule.as_ref().map(|r| (r.port, &r.remote_addresses));
    if wanted != present {
        let _ = writeln!(
            out,
            "# kmsconf's own rule for the KMS port ({}) does not match this config: the first plan\n# changes it.",
            kmsconf_model::catalog::PORT_RULE_NAME
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsconf_model::state::ProductState;

    #[test]
    fn names_and_variables_are_valid_config_names() {
        assert_eq!(host_name("WIN-7Q2 LAB"), "win-7q2-lab");
        assert_eq!(
            key_variable("kms-01", ProductId::Office2019),
            "KMS_01_OFFICE_2019_HOST_KEY"
        );
    }

    #[test]
    fn a_host_that_is_not_a_kms_host_yet_exports_what_it_can_as_comments() {
        let state = HostState::fresh_windows_server("KMS01");
        let e = export("kms01", "lab:kms01.json", &state);
        assert!(e.variables.is_empty());
        assert!(
            e.toml.contains("KMS client key ending in 6VM33"),
            "{}",
            e.toml
        );
        assert!(e.toml.contains("settings are left out"), "{}", e.toml);
        assert!(!e.toml.contains("[hosts.kms01.service]"));
    }

    #[test]
    fn an_unactivated_host_key_exports_as_not_activated() {
        let mut state = HostState::fresh_windows_server("KMS01");
        state.products.insert(
            ProductId::Windows,
            ProductState {
                partial_key: Some("6789B".into()),
                channel: Channel::KmsHost,
                license_status: LicenseStatus::Unlicensed,
                installation_id: None,
                grace_minutes: 0,
                current_count: None,
                required_count: None,
                requests: Default::default(),
            },
        );
        let e = export("kms01", "lab:kms01.json", &state);
        assert_eq!(
            e.variables,
            [("KMS01_WINDOWS_HOST_KEY".to_string(), "6789B".to_string())]
        );
        assert!(e.toml.contains("activation = \"none\""), "{}", e.toml);
    }
}
