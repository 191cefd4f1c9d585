//! What a change shows, rendered from its operation: its verb, its `after` and the command an
//! administrator would type. The planners build every change through [`describe`], and a loaded
//! plan file is held to it ([`check`]), so a file cannot show one thing and apply another.
//!
//! A change's `before` is the observed state stored with the plan; [`check`] derives it again
//! from that state ([`before`]), and [`describe`] reads it only for what an operation keeps (a
//! rule's scope) or how it words a change (`add rule` or `set rule`).

use kmsconf_engine::diagnostic::quoted;
use kmsconf_model::catalog::{self, PORT_RULE_NAME};
use kmsconf_model::config::{ProductId, Profile, RuleGroup, DEFAULT_PORT};
use kmsconf_model::dns::{srv_name, SrvRecord};
use kmsconf_model::facts::Method;
use kmsconf_model::ops::{PlanOp, ServiceSetting};
use kmsconf_model::state::{Channel, HostState, LicenseStatus, PortRule, RuleState};
use kmsconf_model::{Action, EntryState, KmsChange, KmsHostPlan};
use serde_json::{json, Value};

/// What a change of one operation shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    pub action: Action,
    pub after: Value,
    /// What an administrator would type for the same change, with any secret masked.
    pub equivalent: String,
}

impl Shown {
    fn new(action: Action, after: Value, equivalent: impl Into<String>) -> Self {
        Self {
            action,
            after,
            equivalent: equivalent.into(),
        }
    }
}

/// What a change of `op` from `before` shows.
pub fn describe(op: &PlanOp, before: &Value) -> Shown {
    match op {
        PlanOp::InstallLicensePack {
            product, source, ..
        } => license_pack(*product, source),
        PlanOp::InstallProductKey { partial, .. } => host_key(partial, before),
        PlanOp::ActivateOnline { product } => activation(*product, "/ato", Licensed),
        PlanOp::ShowInstallationId { product } => activation(*product, "/dti", Pending),
        PlanOp::ActivateByPhone { product, .. } => {
            activation(*product, "/atp <confirmation ID>", Licensed)
        }
        PlanOp::UninstallProductKey { activation_id, .. } => uninstall_key(activation_id),
        PlanOp::InstallClientKey { edition, .. } => client_key(edition, before),
        PlanOp::SetService(setting) => service_setting(setting),
        PlanOp::ClearListeningPort => clear_listening_port(),
        PlanOp::RestartService => restart(),
        PlanOp::SetRuleGroup {
            group,
            enabled,
            remote_addresses,
        } => rule_group(*group, *enabled, remote_addresses),
        PlanOp::SetFirewallRule {
            rule,
            enabled,
            profiles,
            remote_addresses,
            ..
        } => firewall_rule(
            rule,
            *enabled,
            profiles,
            remote_addresses.as_deref(),
            before,
        ),
        PlanOp::SetPortRule {
            port,
            remote_addresses,
            profiles,
        } => port_rule(*port, remote_addresses, profiles, before),
        PlanOp::RemovePortRule => remove_port_rule(),
        PlanOp::UpdateSrvRecord {
            zone, remove, add, ..
        } => srv_record(zone, remove.as_ref(), add.as_ref()),
        PlanOp::DeleteActivationObject { dn, .. } => Shown::new(
            Action::Delete,
            Value::Null,
            format!("slmgr.vbs /del-ao \"{dn}\""),
        ),
        PlanOp::CreateActivationObject { name, partial, .. } => Shown::new(
            Action::Create,
            json!({ "name": name, "partial_key": partial }),
            format!(
                "slmgr.vbs /ad-activation-online {} \"{name}\"",
                kmsconf_model::keys::masked(partial)
            ),
        ),
        PlanOp::ShowActivationObjectInstallationId { name, partial, .. } => Shown::new(
            Action::Activate,
            json!({ "name": name, "partial_key": partial, "activation": "pending-confirmation-id" }),
            format!(
                "slmgr.vbs /ad-activation-get-iid {}",
                kmsconf_model::keys::masked(partial)
            ),
        ),
        PlanOp::CreateActivationObjectByPhone { name, partial, .. } => Shown::new(
            Action::Create,
            json!({ "name": name, "partial_key": partial }),
            format!(
                "slmgr.vbs /ad-activation-apply-cid {} <confirmation ID> \"{name}\"",
                kmsconf_model::keys::masked(partial)
            ),
        ),
    }
}

/// An activation object as a plan shows it: its DN, name, key ending and SKU.
pub fn activation_object(o: &kmsconf_model::adba::ActivationObject) -> Value {
    json!({ "dn": o.dn, "name": o.name, "partial_key": o.partial_key, "sku_id": o.sku_id })
}

fn license_pack(product: ProductId, source: &str) -> Shown {
    Shown::new(
        Action::Create,
        json!(source),
        format!(
            "run the {} KMS host license pack `{source}` (installs its licenses, as slmgr.vbs /ilc)",
            catalog::product_name(product)
        ),
    )
}

/// A product key as a plan shows it: its last five characters and its channel.
pub(crate) fn key_value(partial: &str, channel: Channel) -> Value {
    json!({ "partial_key": partial, "channel": channel })
}

fn host_key(partial: &str, before: &Value) -> Shown {
    let action = if before.is_null() {
        Action::Create
    } else {
        Action::Update
    };
    Shown::new(
        action,
        key_value(partial, Channel::KmsHost),
        format!("slmgr.vbs /ipk {}", kmsconf_model::keys::masked(partial)),
    )
}

/// What an activation leaves the product at.
enum Activated {
    Licensed,
    Pending,
}
use Activated::{Licensed, Pending};

fn activation(product: ProductId, switch: &str, outcome: Activated) -> Shown {
    let after = match outcome {
        Licensed => LicenseStatus::Licensed.word(),
        Pending => "pending-confirmation-id",
    };
    let arg = catalog::slmgr_product_arg(product);
    Shown::new(
        Action::Activate,
        json!(after),
        format!("slmgr.vbs {switch}{arg}"),
    )
}

fn uninstall_key(activation_id: &str) -> Shown {
    let equivalent = format!(
        "{} {activation_id}",
        Method::UNINSTALL_PRODUCT_KEY.equivalent()
    );
    Shown::new(Action::Delete, Value::Null, equivalent)
}

/// The edition's public KMS client key, replacing the key `before` where there is one; an
/// edition kmsconf's table does not hold (which apply refuses) shows as such.
fn client_key(edition: &str, before: &Value) -> Shown {
    let install = Method::INSTALL_PRODUCT_KEY.equivalent();
    let action = if before.is_null() {
        Action::Create
    } else {
        Action::Update
    };
    let Some(known) = catalog::edition(edition) else {
        let equivalent =
            format!("{install} <the key of edition `{edition}`, not in kmsconf's table>");
        return Shown::new(action, Value::Null, equivalent);
    };
    let skip = known.key.chars().count().saturating_sub(5);
    let partial: String = known.key.chars().skip(skip).collect();
    Shown::new(
        action,
        key_value(&partial, Channel::KmsClient),
        format!("{install} {}", known.key),
    )
}

fn service_setting(setting: &ServiceSetting) -> Shown {
    Shown::new(
        Action::Update,
        setting.value().plan_json(),
        setting.equivalent(),
    )
}

fn clear_listening_port() -> Shown {
    Shown::new(
        Action::Update,
        json!(DEFAULT_PORT),
        Method::CLEAR_LISTENING_PORT.equivalent(),
    )
}

fn restart() -> Shown {
    Shown::new(
        Action::Restart,
        json!("restarted"),
        "net stop sppsvc && net start sppsvc",
    )
}

/// A remote address scope as a plan shows it: `any` for none.
fn scope(addresses: &[String]) -> Value {
    if addresses.is_empty() {
        json!("any")
    } else {
        json!(addresses)
    }
}

fn profile_ids(profiles: &[Profile]) -> Value {
    json!(profiles.iter().map(|p| p.id()).collect::<Vec<_>>())
}

/// A group kmsconf manages whole, as a plan shows it.
pub(crate) fn group_value(enabled: bool, remote_addresses: &[String]) -> Value {
    json!({ "enabled": enabled, "remote_addresses": scope(remote_addresses) })
}

/// A built-in rule as a plan shows it.
pub(crate) fn rule_value(rule: &RuleState) -> Value {
    json!({
        "enabled": rule.enabled,
        "profiles": profile_ids(&rule.profiles),
        "remote_addresses": scope(&rule.remote_addresses),
    })
}

/// kmsconf's port rule as a plan shows it.
pub(crate) fn port_rule_value(rule: &PortRule) -> Value {
    json!({
        "port": rule.port,
        "profiles": profile_ids(&rule.profiles),
        "remote_addresses": scope(&rule.remote_addresses),
    })
}

/// What the agent runs: the group's inbound rules, selected by the group's resource string (the
/// display name is localized, and `netsh ... set rule group=` also toggles the outbound rules),
/// piped to `Set-NetFirewallRule` (whose own `-Direction` would set the direction, not filter).
fn rule_group(group: RuleGroup, enabled: bool, remote_addresses: &[String]) -> Shown {
    let switch = if enabled { "True" } else { "False" };
    let select = kmsconf_model::facts::rule_group(group).map_or_else(
        || format!("-DisplayGroup '{}'", group.display_name()),
        |g| format!("-Group '{}'", g.group),
    );
    Shown::new(
        Action::Update,
        group_value(enabled, remote_addresses),
        format!(
            "Get-NetFirewallRule {select} -Direction Inbound | Set-NetFirewallRule -Enabled {switch}"
        ),
    )
}

/// `Set-NetFirewallRule -Name RULE`; without `remote_addresses` the rule keeps the scope `before`
/// shows.
fn firewall_rule(
    rule: &str,
    enabled: bool,
    profiles: &[Profile],
    remote_addresses: Option<&[String]>,
    before: &Value,
) -> Shown {
    let mut equivalent = format!("Set-NetFirewallRule -Name {rule}");
    if enabled {
        equivalent.push_str(&format!(
            " -Enabled True -Profile {}",
            Profile::windows_list(profiles)
        ));
        if let Some(list) = remote_addresses {
            let shown = if list.is_empty() {
                "Any".to_string()
            } else {
                list.join(",")
            };
            equivalent.push_str(&format!(" -RemoteAddress {shown}"));
        }
    } else {
        equivalent.push_str(" -Enabled False");
    }
    let kept = || before.get("remote_addresses").cloned().unwrap_or_default();
    let after = json!({
        "enabled": enabled,
        "profiles": profile_ids(profiles),
        "remote_addresses": remote_addresses.map_or_else(kept, scope),
    });
    Shown::new(Action::Update, after, equivalent)
}

/// Adding kmsconf's port rule, or changing it when `before` shows one.
fn port_rule(
    port: u16,
    remote_addresses: &[String],
    profiles: &[Profile],
    before: &Value,
) -> Shown {
    let (action, verb, new) = if before.is_null() {
        (
            Action::Create,
            "add rule name",
            " dir=in action=allow protocol=TCP",
        )
    } else {
        (Action::Update, "set rule name", " new")
    };
    let remoteip = if remote_addresses.is_empty() {
        "any".to_string()
    } else {
        remote_addresses.join(",")
    };
    let ids: Vec<&str> = profiles.iter().map(|p| p.id()).collect();
    let rule = PortRule {
        port,
        remote_addresses: remote_addresses.to_vec(),
        profiles: profiles.to_vec(),
    };
    Shown::new(
        action,
        port_rule_value(&rule),
        format!(
            "netsh advfirewall firewall {verb}=\"{PORT_RULE_NAME}\"{new} localport={port} remoteip={remoteip} profile={}",
            ids.join(",")
        ),
    )
}

fn remove_port_rule() -> Shown {
    Shown::new(
        Action::Delete,
        Value::Null,
        format!("netsh advfirewall firewall delete rule name=\"{PORT_RULE_NAME}\""),
    )
}

/// What an administrator would type into `nsupdate` for the same record change.
fn srv_record(zone: &str, remove: Option<&SrvRecord>, add: Option<&SrvRecord>) -> Shown {
    let action = match (remove, add) {
        (None, _) => Action::Create,
        (Some(_), Some(_)) => Action::Update,
        (Some(_), None) => Action::Delete,
    };
    let name = srv_name(zone);
    let mut lines = Vec::new();
    if let Some(r) = remove {
        lines.push(format!("update delete {name}. SRV {}", r.rdata()));
    }
    if let Some(r) = add {
        lines.push(format!("update add {name}. {} SRV {}", r.ttl, r.rdata()));
    }
    let after = add.map_or(Value::Null, SrvRecord::value);
    Shown::new(action, after, format!("nsupdate: {}", lines.join("; ")))
}

/// The `before` of a change of `op`, from the state observed with the plan; `changes` are the
/// entry's changes (an activation starts from `unlicensed` where the plan installs a key first).
/// `None` for an operation of the other kind of entry (a KMS host's on a DNS server).
pub fn before(op: &PlanOp, observed: &EntryState, changes: &[KmsChange]) -> Option<Value> {
    match (op, observed) {
        (PlanOp::UpdateSrvRecord { remove, .. }, EntryState::DnsServer(_)) => {
            Some(remove.as_ref().map_or(Value::Null, SrvRecord::value))
        }
        (PlanOp::DeleteActivationObject { dn, .. }, EntryState::ActiveDirectory(ad)) => Some(
            ad.objects
                .iter()
                .find(|o| &o.dn == dn)
                .map_or(Value::Null, activation_object),
        ),
        (PlanOp::UpdateSrvRecord { .. }, EntryState::KmsHost(_)) => None,
        (PlanOp::DeleteActivationObject { .. }, _) => None,
        (_, EntryState::DnsServer(_) | EntryState::ActiveDirectory(_)) => None,
        (op, EntryState::KmsHost(state)) => Some(host_before(op, state, changes)),
    }
}

fn host_before(op: &PlanOp, state: &HostState, changes: &[KmsChange]) -> Value {
    let product = |id: &ProductId| state.products.get(id);
    match op {
        PlanOp::InstallProductKey { product: id, .. }
        | PlanOp::InstallClientKey { product: id, .. } => product(id)
            .and_then(|p| Some(key_value(p.partial_key.as_deref()?, p.channel)))
            .unwrap_or_default(),
        PlanOp::ActivateOnline { product: id }
        | PlanOp::ShowInstallationId { product: id }
        | PlanOp::ActivateByPhone { product: id, .. } => {
            let installs_key = changes.iter().any(|c| {
                matches!(&c.operation, PlanOp::InstallProductKey { product, .. } if product == id)
            });
            let status = product(id)
                .filter(|_| !installs_key)
                .map_or(LicenseStatus::Unlicensed, |p| p.license_status);
            json!(status.word())
        }
        PlanOp::UninstallProductKey { product: id, .. } => product(id)
            .map(|p| key_value(p.partial_key.as_deref().unwrap_or_default(), p.channel))
            .unwrap_or_default(),
        PlanOp::SetService(setting) => setting.current(&state.service).value().plan_json(),
        PlanOp::ClearListeningPort => json!(state.service.port()),
        PlanOp::RestartService => json!("running"),
        PlanOp::SetRuleGroup { group, .. } => {
            let current = state.firewall.groups.get(group);
            let scope = current.map(|g| g.remote_addresses.as_slice());
            group_value(
                current.is_some_and(|g| g.enabled),
                scope.unwrap_or_default(),
            )
        }
        PlanOp::SetFirewallRule { group, rule, .. } => state
            .firewall
            .groups
            .get(group)
            .and_then(|g| g.rules.get(rule))
            .map(rule_value)
            .unwrap_or_default(),
        PlanOp::SetPortRule { .. } | PlanOp::RemovePortRule => state
            .firewall
            .port_rule
            .as_ref()
            .map(port_rule_value)
            .unwrap_or_default(),
        PlanOp::InstallLicensePack { .. }
        | PlanOp::UpdateSrvRecord { .. }
        | PlanOp::DeleteActivationObject { .. }
        | PlanOp::CreateActivationObject { .. }
        | PlanOp::ShowActivationObjectInstallationId { .. }
        | PlanOp::CreateActivationObjectByPhone { .. } => Value::Null,
    }
}

/// A value as a message quotes it: a string without JSON's quotes, anything long cut.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => quoted(s),
        other => quoted(&other.to_string()),
    }
}

/// A change of a loaded plan that does not show what its operation does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShownMismatch {
    #[error("{at}: its operation is not one for this kind of entry")]
    WrongEntry { at: Box<Change> },
    /// `from` is what `derived` came from (the observed state or the operation).
    #[error("{at}: its `{field}` is {file}, but {from} gives {derived}")]
    Field {
        at: Box<Change>,
        field: &'static str,
        file: String,
        from: &'static str,
        derived: String,
    },
}

/// Which change of which plan entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub host: String,
    pub address: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "host `{}`, change `{}`", self.host, self.address)
    }
}

/// Checks that every change of a loaded plan entry shows what its operation does, from the
/// state observed with the plan: an edited `before`, `action`, `after` or `equivalent`, or an
/// operation edited under them, is refused naming the entry and the change.
pub fn check(host: &KmsHostPlan) -> Result<(), ShownMismatch> {
    for change in &host.changes {
        let at = || {
            Box::new(Change {
                host: host.name.clone(),
                address: change.address.clone(),
            })
        };
        let op = &change.operation;
        let before = before(op, &host.observed, &host.changes)
            .ok_or_else(|| ShownMismatch::WrongEntry { at: at() })?;
        let shown = describe(op, &before);
        let shows = |field: &'static str, file: &Value, derived: &Value, source: &'static str| {
            if file == derived {
                return Ok(());
            }
            Err(ShownMismatch::Field {
                at: at(),
                field,
                file: text(file),
                from: source,
                derived: text(derived),
            })
        };
        shows(
            "before",
            &change.before,
            &before,
            "the state observed with the plan",
        )?;
        let action = |a: Action| json!(a);
        shows(
            "action",
            &action(change.action),
            &action(shown.action),
            "its operation",
        )?;
        shows("after", &change.after, &shown.after, "its operation")?;
        shows(
            "equivalent",
            &json!(change.equivalent),
            &json!(shown.equivalent),
            "its operation",
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
