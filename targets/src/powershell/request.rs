//! The requests kmsconf sends the agent: one JSON object per line, `id`, `op` and the
//! operation's arguments as data, secrets as fields of the request. A request shows its secrets
//! only in [`Request::line`], the bytes written to the host; its `Debug` (what a trace shows)
//! names them redacted.

use std::fmt;
use std::path::Path;

use kmsconf_engine::secret::Secret;
use kmsconf_model::catalog;
use kmsconf_model::catalog::PORT_RULE_NAME;
use kmsconf_model::config::{ProductId, Profile, RuleGroup};
use kmsconf_model::events::EventQuery;
use kmsconf_model::keys::{ConfirmationId, ProductKey};
use kmsconf_model::ops::{ServiceSetting, TargetOp};
use kmsconf_model::settings::{SettingValue, Write};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// One request to the agent. Its `id` is given when it is sent: each request of a session has
/// its own.
pub struct Request {
    pub id: u64,
    pub op: &'static str,
    args: Map<String, Value>,
    secrets: Vec<(&'static str, Secret)>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted: Vec<String> = self
            .secrets
            .iter()
            .map(|(name, _)| format!("{name}=<redacted>"))
            .collect();
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("op", &self.op)
            .field("args", &Value::Object(self.args.clone()))
            .field("secrets", &redacted)
            .finish()
    }
}

impl Request {
    fn new(op: &'static str, args: Value) -> Self {
        Self {
            id: 0,
            op,
            args: match args {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            secrets: Vec::new(),
        }
    }

    fn with_secret(mut self, name: &'static str, secret: Secret) -> Self {
        self.secrets.push((name, secret));
        self
    }

    /// The kind of the answer that ends this request (the agent's `$Operations` table): a
    /// request the agent could not read is answered `error` instead.
    pub fn answer_kind(&self) -> &'static str {
        match self.op {
            "discover" => "discovery",
            "lock" | "unlock" => self.op,
            _ => "result",
        }
    }

    pub fn discover() -> Self {
        Self::new("discover", json!({}))
    }

    /// Takes the apply lock for `holder` (its JSON record; not a secret).
    pub fn lock(holder: &str) -> Self {
        Self::new("lock", json!({ "holder": holder }))
    }

    /// Reads the KMS host's events of the window, within its bounds.
    pub fn read_kms_events(query: &EventQuery) -> Self {
        Self::new(
            "read_kms_events",
            json!({
                "window_seconds": query.window_seconds,
                "max_events": query.max_events,
                "max_bytes": query.max_bytes,
            }),
        )
    }

    /// Reads the WinRM service's settings from the `WSMan:` drive.
    pub fn read_winrm_service() -> Self {
        Self::new("read_winrm_service", json!({}))
    }

    /// Releases the apply lock whose record has `lock_id`.
    pub fn unlock(lock_id: &str) -> Self {
        Self::new("unlock", json!({ "lock_id": lock_id }))
    }

    /// The request for one operation.
    pub fn operation(op: &TargetOp) -> Self {
        match op {
            TargetOp::InstallLicensePack { product, path } => {
                Self::new("install_license_pack", license_pack(*product, path))
            }
            TargetOp::InstallProductKey { product, key } => {
                Self::install_product_key(*product, key)
            }
            TargetOp::UninstallProductKey {
                product,
                activation_id,
            } => Self::new(
                "uninstall_product_key",
                json!({ "product": product, "activation_id": activation_id }),
            ),
            TargetOp::ActivateOnline { product } => {
                Self::new("activate_online", product_args(*product))
            }
            TargetOp::ShowInstallationId { product } => {
                Self::new("show_installation_id", product_args(*product))
            }
            TargetOp::ActivateByPhone {
                product,
                confirmation_id,
            } => Self::deposit_confirmation_id(*product, confirmation_id),
            TargetOp::SetService(setting) => Self::new("set_service", set_service(setting)),
            TargetOp::ClearListeningPort => Self::new("clear_listening_port", json!({})),
            TargetOp::RestartService { .. } => Self::new("restart_service", json!({})),
            TargetOp::SetRuleGroup {
                group,
                enabled,
                remote_addresses,
            } => Self::new(
                "set_rule_group",
                rule_group(*group, *enabled, remote_addresses),
            ),
            TargetOp::SetFirewallRule {
                group,
                rule,
                enabled,
                profiles,
                remote_addresses,
            } => Self::new(
                "set_firewall_rule",
                firewall_rule(*group, rule, *enabled, profiles, remote_addresses),
            ),
            TargetOp::SetPortRule {
                port,
                remote_addresses,
                profiles,
            } => Self::new(
                "set_port_rule",
                port_rule(*port, remote_addresses, profiles),
            ),
            TargetOp::RemovePortRule => {
                Self::new("remove_port_rule", json!({ "name": PORT_RULE_NAME }))
            }
            TargetOp::CreateActivationObject { name, key } => {
                Self::new("ad_activation_online", json!({ "object_name": name }))
                    .with_secret("key", key.secret().clone())
            }
            TargetOp::ShowActivationObjectInstallationId { name, key } => {
                Self::new("ad_activation_get_iid", json!({ "object_name": name }))
                    .with_secret("key", key.secret().clone())
            }
            TargetOp::CreateActivationObjectByPhone {
                name,
                key,
                confirmation_id,
            } => Self::new("ad_activation_apply_cid", json!({ "object_name": name }))
                .with_secret("key", key.secret().clone())
                .with_secret(
                    "confirmation_id",
                    Secret::new(confirmation_id.digits().to_string()),
                ),
        }
    }

    /// Installs `key` on `product`; the key travels as a secret.
    fn install_product_key(product: ProductId, key: &ProductKey) -> Self {
        Self::new("install_product_key", product_args(product))
            .with_secret("key", key.secret().clone())
    }

    /// Activates `product` by phone; the confirmation ID travels as a secret.
    fn deposit_confirmation_id(product: ProductId, confirmation_id: &ConfirmationId) -> Self {
        Self::new("deposit_confirmation_id", product_args(product)).with_secret(
            "confirmation_id",
            Secret::new(confirmation_id.digits().to_string()),
        )
    }

    /// The line written to the host, secrets included: never log it. JSON with every character
    /// outside ASCII escaped, so the host's console code page cannot change it.
    pub fn line(&self) -> Secret {
        let mut args = self.args.clone();
        for (name, secret) in &self.secrets {
            args.insert((*name).into(), json!(secret.expose()));
        }
        let wire = Wire {
            id: self.id,
            op: self.op,
            args,
        };
        let text = serde_json::to_string(&wire).unwrap_or_default();
        let mut line = String::with_capacity(text.len() + 1);
        for c in text.chars() {
            if c.is_ascii() {
                line.push(c);
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    line.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
        line.push('\n');
        Secret::new(line)
    }

    /// The request as a recording keeps it: the line without its newline, each secret replaced
    /// by its config reference (`{"secret": "hosts.kms01.products.windows.host_key"}`), never its value.
    pub fn recorded(&self, host: &str) -> String {
        let mut args = self.args.clone();
        let product = args.get("product").and_then(Value::as_str).unwrap_or("?");
        // an activation object's secrets are declared under `[active_directory]`
        let object = args.get("object_name").and_then(Value::as_str);
        let references: Vec<(String, Value)> = self
            .secrets
            .iter()
            .map(|(name, _)| {
                // the config key the secret is declared with
                let key = if *name == "key" { "host_key" } else { name };
                let at = match object {
                    Some(o) => format!("active_directory.activation_objects.{o}.{key}"),
                    None => format!("hosts.{host}.products.{product}.{key}"),
                };
                ((*name).to_string(), json!({ "secret": at }))
            })
            .collect();
        args.extend(references);
        let wire = Wire {
            id: self.id,
            op: self.op,
            args,
        };
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// The values of this request's secrets, which a recording must never hold.
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.secrets.iter().map(|(_, s)| s)
    }

    /// Removes this request's secrets from a text the host sent back.
    pub fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .map(|(_, s)| s.expose())
            .filter(|s| !s.is_empty())
            .fold(text.to_string(), |t, s| t.replace(s, "<redacted>"))
    }
}

/// A request as it is written: `id` and `op` first, then the arguments in name order.
#[derive(Serialize)]
struct Wire {
    id: u64,
    op: &'static str,
    #[serde(flatten)]
    args: Map<String, Value>,
}

/// A product as the agent finds it: by its SKU's activation ID (Office), or by its
/// application's keyed products (Windows).
fn product_args(product: ProductId) -> Value {
    let info = catalog::product(product);
    json!({
        "product": product,
        "application_id": info.map(|p| p.application_id.clone()),
        "activation_id": info.and_then(|p| p.activation_id.clone()),
    })
}

/// A setting as its row writes it: a `SoftwareLicensingService` method with its argument, or a
/// registry value (`data` null removes it).
fn set_service(setting: &ServiceSetting) -> Value {
    let value = setting.value();
    let (method, registry) = match &setting.setting().write {
        Write::Method { method, .. } => {
            let (argument, kind) = argument(value, method.inverted);
            let call = json!({ "name": method.name, "argument": method.argument, "value": argument, "type": kind });
            (call, Value::Null)
        }
        Write::Registry(reg) => {
            let data = value.registry_data(reg.inverted);
            let kind = reg.kind.property_type();
            (
                Value::Null,
                json!({ "name": reg.name, "type": kind, "data": data }),
            )
        }
    };
    json!({
        "setting": setting.setting().key,
        "value": value,
        "method": method,
        "registry": registry,
    })
}

/// A license pack: the product it is for and its path on the host.
fn license_pack(product: ProductId, path: &Path) -> Value {
    let mut args = product_args(product);
    args["path"] = json!(path.display().to_string());
    args
}

/// One built-in rule of a group, by its `Name` (`remote_addresses` null: its own scope stays).
fn firewall_rule(
    group: RuleGroup,
    rule: &str,
    enabled: bool,
    profiles: &[Profile],
    remote_addresses: &Option<Vec<String>>,
) -> Value {
    json!({
        "group": group,
        "rule": rule,
        "enabled": enabled,
        "profiles": windows_profiles(profiles),
        "remote_addresses": remote_addresses,
    })
}

/// kmsconf's own rule that lets the KMS port in.
fn port_rule(port: u16, remote_addresses: &[String], profiles: &[Profile]) -> Value {
    json!({
        "name": PORT_RULE_NAME,
        "port": port,
        "remote_addresses": remote_addresses,
        "profiles": windows_profiles(profiles),
    })
}

/// A value as a CIM method argument and its type (`inverted`: the argument says the opposite).
fn argument(value: &SettingValue, inverted: bool) -> (Value, &'static str) {
    match value {
        SettingValue::U16(n) => (json!(n), "uint32"),
        SettingValue::U32(n) => (json!(n), "uint32"),
        SettingValue::Bool(b) => (json!(*b != inverted), "bool"),
        SettingValue::List(list) => {
            let entries: Vec<String> = list.iter().map(ToString::to_string).collect();
            (json!(entries), "string[]")
        }
    }
}

/// A group kmsconf enables whole, by its group resource string (`null` for a group the facts
/// table does not hold, which the agent refuses).
fn rule_group(group: RuleGroup, enabled: bool, remote_addresses: &[String]) -> Value {
    json!({
        "group": group,
        "display_name": group.display_name(),
        "resource": catalog::rule_group(group).map(|info| info.group.clone()),
        "enabled": enabled,
        "remote_addresses": remote_addresses,
    })
}

/// Profiles by their Windows names (`Domain`), as the NetSecurity cmdlets take them.
fn windows_profiles(profiles: &[Profile]) -> Vec<&'static str> {
    profiles.iter().map(|p| p.windows_name()).collect()
}
