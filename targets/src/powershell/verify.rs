//! Checks what the host read back after each operation against what was sent: a call can
//! succeed without the state changing, so an operation counts as applied only when the read-back
//! shows it.

use kmsconf_engine::target::ChangeStatus;
use kmsconf_model::catalog;
use kmsconf_model::catalog::PORT_RULE_NAME;
use kmsconf_model::config::{ProductId, Profile, RuleGroup};
use kmsconf_model::ops::{ServiceSetting, TargetOp};
use kmsconf_model::state::{Channel, LicenseStatus, ProductState, RuleState};
use serde::Deserialize;
use serde_json::Value;

use crate::cim::{self, CimError, CimFirewallRule, CimProduct, CimRegistry, CimService};

/// What the host read back after an operation that shows the operation did not take.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the read-back is unreadable: {0}")]
    Unreadable(#[source] serde_json::Error),
    #[error(transparent)]
    Cim(#[from] CimError),
    #[error("the host shows no {} product", catalog::product_name(*product))]
    NoProduct { product: ProductId },
    #[error("the host shows no installation ID")]
    NoInstallationId,
    #[error("the host read back no service properties")]
    NoServiceProperties,
    /// A service setting reads back other than it was written (each as its slmgr equivalent).
    #[error("it reads back as `{found}`")]
    Mismatch {
        setting: &'static str,
        expected: String,
        found: String,
    },
    #[error("the service still runs with the settings from before the restart")]
    RestartPending,
    /// After the restart the running service shows another value than was written.
    #[error("after the restart the service runs with `{found}`, not `{expected}`")]
    NotRunning {
        setting: &'static str,
        expected: String,
        found: String,
    },
    #[error("the listening port still reads back as {found}")]
    PortNotCleared { found: String },
    #[error("{} is {status}, not licensed", catalog::product_name(*product))]
    NotLicensed {
        product: ProductId,
        status: LicenseStatus,
    },
    #[error("SKU {activation_id} still holds the key ending in {partial_key}")]
    KeyStillInstalled {
        activation_id: String,
        partial_key: String,
    },
    #[error("the installed key ends in {}, not {expected}", found.as_deref().unwrap_or("nothing"))]
    OtherKey {
        expected: String,
        found: Option<String>,
    },
    #[error("the key installed as a {found}, not a {expected}")]
    OtherChannel { expected: Channel, found: Channel },
    #[error("the group's rules are gone")]
    NoRuleGroup { group: RuleGroup },
    #[error("the {} rules are not all {}", group.display_name(), if *enabled { "enabled" } else { "disabled" })]
    RuleGroup { group: RuleGroup, enabled: bool },
    #[error("the host shows no rule `{rule}`")]
    NoRule { rule: String },
    /// The rule reads back as `found` (enabled, profiles, remote addresses).
    #[error("`{rule}` reads back {} on {:?} from {:?}", if found.enabled { "enabled" } else { "disabled" }, found.profiles, found.remote_addresses)]
    Rule { rule: String, found: RuleState },
    #[error("there is no enabled rule {PORT_RULE_NAME}")]
    NoPortRule,
    #[error("{PORT_RULE_NAME} reads back as TCP {port} from {remote_addresses:?}")]
    PortRule {
        port: u16,
        remote_addresses: Vec<String>,
    },
    #[error("{PORT_RULE_NAME} is still there")]
    PortRuleRemains,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReadBack {
    #[serde(default, deserialize_with = "cim::one_or_many")]
    products: Vec<CimProduct>,
    service: Option<CimService>,
    registry: Option<CimRegistry>,
    #[serde(default, deserialize_with = "cim::one_or_many")]
    firewall_rules: Vec<CimFirewallRule>,
    /// `GenerateActiveDirectoryOfflineActivationId`'s `InstallationID` out parameter.
    installation_id: Option<String>,
}

/// Checks what the host read back after an operation; `Err` says what did not take.
pub fn verify(op: &TargetOp, read_back: &Value) -> Result<ChangeStatus, VerifyError> {
    let rb: ReadBack =
        serde_json::from_value(read_back.clone()).map_err(VerifyError::Unreadable)?;
    let product = |id: ProductId| -> Result<ProductState, VerifyError> {
        let p =
            cim::select_product(id, &rb.products).ok_or(VerifyError::NoProduct { product: id })?;
        Ok(cim::product_state(p)?)
    };
    match op {
        TargetOp::InstallLicensePack { product: id, .. } => {
            product(*id)?;
            Ok(ChangeStatus::Applied {
                detail: Some(format!("{} licenses installed", catalog::product_name(*id))),
            })
        }
        TargetOp::InstallProductKey { product: id, key } => verify_key(&product(*id)?, key),
        TargetOp::UninstallProductKey { activation_id, .. } => {
            verify_uninstalled(&rb.products, activation_id)
        }
        TargetOp::ActivateOnline { product: id } => verify_activated(*id, &product(*id)?, "online"),
        TargetOp::ActivateByPhone { product: id, .. } => {
            verify_activated(*id, &product(*id)?, "by phone")
        }
        TargetOp::ShowInstallationId { product: id } => installation_id_pending(*id, product(*id)?),
        TargetOp::SetService(setting) => verify_service(&rb, setting),
        TargetOp::ClearListeningPort => verify_port_cleared(&rb),
        TargetOp::RestartService { expect } => verify_restart(&rb, expect),
        TargetOp::SetRuleGroup { group, enabled, .. } => verify_rule_group(&rb, *group, *enabled),
        TargetOp::SetFirewallRule {
            group,
            rule,
            enabled,
            profiles,
            remote_addresses,
        } => {
            let want = RuleState {
                enabled: *enabled,
                profiles: profiles.clone(),
                remote_addresses: remote_addresses.clone().unwrap_or_default(),
            };
            verify_firewall_rule(&rb, *group, rule, &want, remote_addresses.is_some())
        }
        TargetOp::SetPortRule {
            port,
            remote_addresses,
            profiles,
        } => verify_port_rule(&rb, *port, remote_addresses, profiles),
        TargetOp::RemovePortRule => verify_port_rule_removed(&rb),
        // the object is in the directory, which the plan's next run reads; the agent checked
        // the method's return value
        TargetOp::CreateActivationObject { name, .. } => Ok(ChangeStatus::Applied {
            detail: Some(format!("activation object `{name}` created")),
        }),
        TargetOp::ShowActivationObjectInstallationId { name, .. } => {
            forest_installation_id_pending(name, rb.installation_id)
        }
        TargetOp::CreateActivationObjectByPhone { name, .. } => Ok(ChangeStatus::Applied {
            detail: Some(format!(
                "activation object `{name}` created from the confirmation ID"
            )),
        }),
    }
}

/// The forest's installation ID the host generated for the activation object `name`: 63
/// digits, shown for the user to call the activation line with. Anything else is refused, so
/// no text from the host becomes an installation ID.
fn forest_installation_id_pending(
    name: &str,
    iid: Option<String>,
) -> Result<ChangeStatus, VerifyError> {
    let iid = iid.ok_or(VerifyError::NoInstallationId)?;
    let digits = iid.chars().filter(char::is_ascii_digit).count();
    let grouped = iid.chars().all(|c| c.is_ascii_digit() || c == '-');
    if digits != 63 || !grouped {
        return Err(VerifyError::NoInstallationId);
    }
    Ok(pending_forest_installation_id(name, &iid))
}

/// What apply shows for an activation object waiting for its confirmation ID.
pub fn pending_forest_installation_id(name: &str, iid: &str) -> ChangeStatus {
    ChangeStatus::Pending {
        message: format!(
            "installation ID for activation object `{name}`: {iid}\n  call the activation line with it, then set `confirmation_id` for activation object `{name}` and apply again"
        ),
    }
}

/// The installation ID the host shows for `id`, for the user to call the activation line with.
fn installation_id_pending(id: ProductId, p: ProductState) -> Result<ChangeStatus, VerifyError> {
    let iid = p.installation_id.ok_or(VerifyError::NoInstallationId)?;
    Ok(ChangeStatus::Pending {
        message: format!(
            "installation ID for {}: {iid}\n  call the activation line with it, then set `confirmation_id` for `{id}` and apply again",
            catalog::product_name(id)
        ),
    })
}

/// The service setting reads back as it was written, where the host shows it: its registry
/// value (the row's key), else the CIM property. A setting Windows takes only when the service
/// restarts, whose registry value the host does not show, may show the old value in the property
/// until then (where Windows 8 and later keep the intervals is unsourced): it is verified after
/// the restart the plan makes ([`verify_restart`]).
fn verify_service(rb: &ReadBack, setting: &ServiceSetting) -> Result<ChangeStatus, VerifyError> {
    let now = setting.current(&read_service(rb)?);
    if &now == setting {
        return Ok(ChangeStatus::applied());
    }
    let row = setting.setting();
    if row.needs_restart && !registry_shows(rb, row) {
        return Ok(ChangeStatus::Applied {
            detail: Some(format!(
                "written; the host shows `{}` nowhere until the service restarts, so the restart verifies it",
                setting.equivalent()
            )),
        });
    }
    Err(VerifyError::Mismatch {
        setting: row.key,
        expected: setting.equivalent(),
        found: now.equivalent(),
    })
}

/// Whether the read-back holds a value for the row's registry value.
fn registry_shows(rb: &ReadBack, row: &kmsconf_model::settings::Setting) -> bool {
    let value = row
        .write
        .registry()
        .zip(rb.registry.as_ref())
        .and_then(|(r, reg)| reg.0.get(r.name));
    value.is_some_and(|v| !v.is_null())
}

/// kmsconf's port rule is gone.
fn verify_port_rule_removed(rb: &ReadBack) -> Result<ChangeStatus, VerifyError> {
    let present = rb
        .firewall_rules
        .iter()
        .any(|r| r.name.eq_ignore_ascii_case(PORT_RULE_NAME));
    if present {
        return Err(VerifyError::PortRuleRemains);
    }
    Ok(ChangeStatus::applied())
}

/// The product is licensed after activating it `how` (`online`, `by phone`).
fn verify_activated(
    id: ProductId,
    p: &ProductState,
    how: &str,
) -> Result<ChangeStatus, VerifyError> {
    if p.license_status != LicenseStatus::Licensed {
        return Err(VerifyError::NotLicensed {
            product: id,
            status: p.license_status,
        });
    }
    Ok(ChangeStatus::Applied {
        detail: Some(format!("activated {how}")),
    })
}

/// The running service uses what was written: no setting waits for a restart any more, and the
/// properties (what the running service uses) show each setting the plan wrote.
fn verify_restart(rb: &ReadBack, expect: &[ServiceSetting]) -> Result<ChangeStatus, VerifyError> {
    if read_service(rb)?.restart_pending {
        return Err(VerifyError::RestartPending);
    }
    let svc = rb
        .service
        .as_ref()
        .ok_or(VerifyError::NoServiceProperties)?;
    let running = cim::service(svc, &CimRegistry::default())?;
    for setting in expect.iter().filter(|s| s.setting().property.is_some()) {
        let now = setting.current(&running);
        if &now != setting {
            return Err(VerifyError::NotRunning {
                setting: setting.setting().key,
                expected: setting.equivalent(),
                found: now.equivalent(),
            });
        }
    }
    Ok(ChangeStatus::Applied {
        detail: Some("Software Protection service restarted".into()),
    })
}

/// The SKU uninstalled from holds no key any more.
fn verify_uninstalled(
    products: &[CimProduct],
    activation_id: &str,
) -> Result<ChangeStatus, VerifyError> {
    let still = products.iter().find(|p| {
        p.id.eq_ignore_ascii_case(activation_id)
            && p.partial_product_key
                .as_deref()
                .is_some_and(|k| !k.is_empty())
    });
    if let Some(p) = still {
        return Err(VerifyError::KeyStillInstalled {
            activation_id: activation_id.to_string(),
            partial_key: p.partial_product_key.clone().unwrap_or_default(),
        });
    }
    Ok(ChangeStatus::Applied {
        detail: Some(format!("uninstalled the key of {activation_id}")),
    })
}

/// The port set earlier is gone from the registry (the service listens on 1688 once it
/// restarts, which the plan's restart does).
fn verify_port_cleared(rb: &ReadBack) -> Result<ChangeStatus, VerifyError> {
    let row = kmsconf_model::settings::find("port").and_then(|r| r.write.registry());
    let value = rb
        .registry
        .as_ref()
        .zip(row)
        .and_then(|(reg, r)| reg.0.get(r.name))
        .filter(|v| !v.is_null());
    let cleared = value.is_none_or(|v| {
        let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
        matches!(text.trim(), "" | "0" | "1688")
    });
    if !cleared {
        return Err(VerifyError::PortNotCleared {
            found: value.map(ToString::to_string).unwrap_or_default(),
        });
    }
    Ok(ChangeStatus::Applied {
        detail: Some("listening port cleared (1688 once the service restarts)".into()),
    })
}

/// The installed key is the one sent, and it installed as what it is: a published KMS client
/// setup key as a KMS client key, any other as a KMS host key.
fn verify_key(
    p: &ProductState,
    key: &kmsconf_model::keys::ProductKey,
) -> Result<ChangeStatus, VerifyError> {
    if p.partial_key.as_deref() != Some(key.partial().as_str()) {
        return Err(VerifyError::OtherKey {
            expected: key.partial(),
            found: p.partial_key.clone(),
        });
    }
    let expected = if catalog::is_client_key(key.secret().expose()) {
        Channel::KmsClient
    } else {
        Channel::KmsHost
    };
    if p.channel != expected {
        return Err(VerifyError::OtherChannel {
            expected,
            found: p.channel,
        });
    }
    Ok(ChangeStatus::Applied {
        detail: Some(format!("installed key {}", key.masked())),
    })
}

/// Every rule of the group is enabled (or disabled).
fn verify_rule_group(
    rb: &ReadBack,
    group: RuleGroup,
    enabled: bool,
) -> Result<ChangeStatus, VerifyError> {
    let fw = cim::firewall(&rb.firewall_rules)?;
    let g = fw
        .groups
        .get(&group)
        .ok_or(VerifyError::NoRuleGroup { group })?;
    if g.enabled != enabled {
        return Err(VerifyError::RuleGroup { group, enabled });
    }
    Ok(ChangeStatus::applied())
}

/// The rule reads back enabled on the profiles (and with the scope) sent, or disabled.
fn verify_firewall_rule(
    rb: &ReadBack,
    group: RuleGroup,
    rule: &str,
    want: &RuleState,
    scoped: bool,
) -> Result<ChangeStatus, VerifyError> {
    let fw = cim::firewall(&rb.firewall_rules)?;
    let r = fw
        .groups
        .get(&group)
        .and_then(|g| g.rules.get(rule))
        .ok_or_else(|| VerifyError::NoRule {
            rule: rule.to_string(),
        })?;
    let same = r.enabled == want.enabled
        && (!want.enabled
            || (r.profiles == want.profiles
                && (!scoped || r.remote_addresses == want.remote_addresses)));
    if !same {
        return Err(VerifyError::Rule {
            rule: rule.to_string(),
            found: r.clone(),
        });
    }
    Ok(ChangeStatus::applied())
}

/// kmsconf's own port rule is enabled, on the port and from the addresses sent.
fn verify_port_rule(
    rb: &ReadBack,
    port: u16,
    remote_addresses: &[String],
    profiles: &[Profile],
) -> Result<ChangeStatus, VerifyError> {
    let fw = cim::firewall(&rb.firewall_rules)?;
    let rule = fw.port_rule.ok_or(VerifyError::NoPortRule)?;
    if rule.port != port || rule.remote_addresses != remote_addresses || rule.profiles != profiles {
        return Err(VerifyError::PortRule {
            port: rule.port,
            remote_addresses: rule.remote_addresses,
        });
    }
    Ok(ChangeStatus::applied())
}

fn read_service(rb: &ReadBack) -> Result<kmsconf_model::state::ServiceState, VerifyError> {
    let svc = rb
        .service
        .as_ref()
        .ok_or(VerifyError::NoServiceProperties)?;
    Ok(cim::service(
        svc,
        rb.registry.as_ref().unwrap_or(&CimRegistry::default()),
    )?)
}
