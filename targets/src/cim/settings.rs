//! Reads the KMS settings from what the host sent, each as its row in the
//! [`table`](kmsconf_model::settings::table) says: the registry value that holds what was
//! set wins over the CIM property that shows what the running service uses.

use kmsconf_model::config::PublishDomain;
use kmsconf_model::settings::{self, Kind, Setting, SettingValue};
use kmsconf_model::state::ServiceState;
use serde_json::Value;

use super::{CimError, CimRegistry, CimService};

/// The KMS settings; a registry value that differs from its property means a restart is
/// pending. A value the host does not show stays at Windows' default.
pub fn service(svc: &CimService, reg: &CimRegistry) -> Result<ServiceState, CimError> {
    let mut state = ServiceState::windows_default();
    for row in settings::table() {
        let configured = match row.write.registry() {
            Some(r) => read(row, r.name, reg.0.get(r.name), r.inverted)?,
            None => None,
        };
        let running = match row.property {
            Some(name) => read(row, name, svc.properties.get(name), false)?,
            None => None,
        };
        if matches!((&configured, &running), (Some(c), Some(r)) if c != r) {
            state.restart_pending = true;
        }
        if let Some(value) = configured.or(running) {
            state.store(row, value);
        }
    }
    Ok(state)
}

/// The value of `row` in the host's `name` (`inverted`: it says the opposite); `None` when the
/// host sent none. A REG_SZ number arrives as text, a DWORD switch as a number, a REG_MULTI_SZ
/// of one entry as that entry.
fn read(
    row: &Setting,
    name: &str,
    json: Option<&Value>,
    inverted: bool,
) -> Result<Option<SettingValue>, CimError> {
    let Some(json) = json.filter(|j| !j.is_null()) else {
        return Ok(None);
    };
    if json.as_str().is_some_and(|t| t.trim().is_empty()) && row.kind != Kind::List {
        return Ok(None);
    }
    let bad = || CimError::Setting {
        name: name.to_string(),
        value: json.clone(),
        meaning: row.meaning,
    };
    let number = || {
        json.as_i64()
            .or_else(|| json.as_str().and_then(|t| t.trim().parse().ok()))
    };
    let value = match row.kind {
        Kind::U16 => SettingValue::U16(
            number()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(bad)?,
        ),
        Kind::U32 => SettingValue::U32(
            number()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(bad)?,
        ),
        Kind::Bool => {
            let on = json.as_bool().or_else(|| number().map(|n| n != 0));
            SettingValue::Bool(on.ok_or_else(bad)? != inverted)
        }
        Kind::List => SettingValue::List(publish_list(json).ok_or_else(bad)??),
    };
    Ok(Some(value))
}

/// A REG_MULTI_SZ publish list; `None` when it is not text.
fn publish_list(json: &Value) -> Option<Result<Vec<PublishDomain>, CimError>> {
    let entries: Vec<&str> = match json {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().map(Value::as_str).collect::<Option<_>>()?,
        _ => return None,
    };
    Some(
        entries
            .into_iter()
            .filter(|e| !e.trim().is_empty())
            .map(publish_domain)
            .collect(),
    )
}

/// One `DnsDomainPublishList` entry: `domain[, priority[, weight]]`, both defaulting to 0.
pub fn publish_domain(entry: &str) -> Result<PublishDomain, CimError> {
    let mut parts = entry.split(',').map(str::trim);
    let domain = parts.next().unwrap_or_default().to_string();
    let mut number = |field: &'static str| -> Result<u16, CimError> {
        match parts.next() {
            None | Some("") => Ok(0),
            Some(n) => n.parse().map_err(|_| CimError::PublishEntry {
                entry: entry.to_string(),
                field,
                value: n.to_string(),
            }),
        }
    };
    let priority = number("priority")?;
    let weight = number("weight")?;
    Ok(PublishDomain {
        domain,
        priority,
        weight,
    })
}
