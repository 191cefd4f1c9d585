//! A setting's value, and the operation that sets one: what a plan file holds
//! (`{"setting": "port", "value": 1689}`) and the forms a value is written in (plan, `slmgr.vbs`
//! or `reg.exe`, registry data), all derived from the setting's row.

use std::fmt;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value};

use super::{RegistryValue, Setting, Slmgr, Write};
use crate::error::SettingError;

/// One `DnsDomainPublishList` entry.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct PublishDomain {
    pub domain: String,
    pub priority: u16,
    pub weight: u16,
}

impl fmt::Display for PublishDomain {
    /// The registry form: `domain, priority, weight`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {}, {}", self.domain, self.priority, self.weight)
    }
}

/// The type of a setting's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    U16,
    U32,
    Bool,
    /// A DNS publish list.
    List,
}

impl Kind {
    /// Reads a value of this kind from JSON (a plan file).
    pub fn from_json(self, value: Value) -> Result<SettingValue, serde_json::Error> {
        Ok(match self {
            Self::U16 => SettingValue::U16(serde_json::from_value(value)?),
            Self::U32 => SettingValue::U32(serde_json::from_value(value)?),
            Self::Bool => SettingValue::Bool(serde_json::from_value(value)?),
            Self::List => SettingValue::List(serde_json::from_value(value)?),
        })
    }
}

/// Reads a value of a kind from any serde format (a lab state file, a plan file).
impl<'de> serde::de::DeserializeSeed<'de> for Kind {
    type Value = SettingValue;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<SettingValue, D::Error> {
        Ok(match self {
            Self::U16 => SettingValue::U16(u16::deserialize(d)?),
            Self::U32 => SettingValue::U32(u32::deserialize(d)?),
            Self::Bool => SettingValue::Bool(bool::deserialize(d)?),
            Self::List => SettingValue::List(Vec::deserialize(d)?),
        })
    }
}

/// A setting's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SettingValue {
    U16(u16),
    U32(u32),
    Bool(bool),
    List(Vec<PublishDomain>),
}

impl SettingValue {
    pub fn kind(&self) -> Kind {
        match self {
            Self::U16(_) => Kind::U16,
            Self::U32(_) => Kind::U32,
            Self::Bool(_) => Kind::Bool,
            Self::List(_) => Kind::List,
        }
    }

    /// The value as a number, if it is one.
    pub fn number(&self) -> Option<u32> {
        match self {
            Self::U16(n) => Some(u32::from(*n)),
            Self::U32(n) => Some(*n),
            Self::Bool(_) | Self::List(_) => None,
        }
    }

    /// How a plan shows it (a change's `before` and `after`): a publish list as its registry
    /// entries (`domain, priority, weight`).
    pub fn plan_json(&self) -> Value {
        match self {
            Self::U16(n) => json!(n),
            Self::U32(n) => json!(n),
            Self::Bool(b) => json!(b),
            Self::List(list) => json!(list
                .iter()
                .map(PublishDomain::to_string)
                .collect::<Vec<_>>()),
        }
    }

    /// The data of a registry value holding it (`inverted`: the value says the opposite);
    /// `None` for an empty list, which is no value at all.
    pub fn registry_data(&self, inverted: bool) -> Option<Vec<String>> {
        match self {
            Self::U16(n) => Some(vec![n.to_string()]),
            Self::U32(n) => Some(vec![n.to_string()]),
            Self::Bool(b) => Some(vec![u8::from(*b != inverted).to_string()]),
            Self::List(list) if list.is_empty() => None,
            Self::List(list) => Some(list.iter().map(PublishDomain::to_string).collect()),
        }
    }
}

impl fmt::Display for SettingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::U16(n) => write!(f, "{n}"),
            Self::U32(n) => write!(f, "{n}"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::List(list) => {
                let entries: Vec<String> = list.iter().map(PublishDomain::to_string).collect();
                write!(f, "{}", entries.join("; "))
            }
        }
    }
}

/// Setting one KMS service setting to a value: the operation a plan holds.
#[derive(Clone)]
pub struct ServiceSetting {
    setting: &'static Setting,
    value: SettingValue,
}

impl ServiceSetting {
    /// `Err` when the value is not of the setting's kind.
    pub fn new(setting: &'static Setting, value: SettingValue) -> Result<Self, SettingError> {
        if value.kind() != setting.kind {
            return Err(SettingError::WrongKind {
                key: setting.key,
                meaning: setting.meaning,
                value: value.to_string(),
            });
        }
        Ok(Self { setting, value })
    }

    /// Setting the setting `key` of the [`table`](super::table) to `value`.
    pub fn named(key: &str, value: SettingValue) -> Result<Self, SettingError> {
        let setting = super::find(key).ok_or_else(|| SettingError::Unknown { key: key.into() })?;
        Self::new(setting, value)
    }

    pub fn setting(&self) -> &'static Setting {
        self.setting
    }

    pub fn value(&self) -> &SettingValue {
        &self.value
    }

    /// The same setting at `value`, which the caller knows to be of its kind.
    pub(super) fn at(&self, value: SettingValue) -> ServiceSetting {
        Self {
            setting: self.setting,
            value,
        }
    }

    /// What an administrator would type.
    pub fn equivalent(&self) -> String {
        match &self.setting.write {
            Write::Method { slmgr, .. } => match slmgr {
                Slmgr::Value(switch) => format!("slmgr.vbs {switch} {}", self.value),
                Slmgr::Switch { on, off } => {
                    let switch = if matches!(self.value, SettingValue::Bool(true)) {
                        on
                    } else {
                        off
                    };
                    format!("slmgr.vbs {switch}")
                }
            },
            Write::Registry(value) => reg_equivalent(value, &self.value),
        }
    }

    /// Whether Windows applies it only after the Software Protection service restarts.
    pub fn needs_restart(&self) -> bool {
        self.setting.needs_restart
    }
}

/// `reg add` of the value, or `reg delete` when there is nothing to write.
fn reg_equivalent(reg: &RegistryValue, value: &SettingValue) -> String {
    let key = crate::readings::registry_key_path(reg.key);
    match value.registry_data(reg.inverted) {
        None => format!("reg delete \"{key}\" /v {} /f", reg.name),
        Some(data) => format!(
            "reg add \"{key}\" /v {} /t {} /d \"{}\" /f",
            reg.name,
            reg.kind.reg_type(),
            data.join("\\0")
        ),
    }
}

impl PartialEq for ServiceSetting {
    fn eq(&self, other: &Self) -> bool {
        self.setting.key == other.setting.key && self.value == other.value
    }
}

impl Eq for ServiceSetting {}

impl fmt::Debug for ServiceSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceSetting")
            .field("setting", &self.setting.key)
            .field("value", &self.value)
            .finish()
    }
}

impl Serialize for ServiceSetting {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("ServiceSetting", 2)?;
        s.serialize_field("setting", self.setting.key)?;
        s.serialize_field("value", &self.value)?;
        s.end()
    }
}

/// A plan file's form: the setting's key, and a value read as the setting's kind.
#[derive(Deserialize)]
struct PlanForm {
    setting: String,
    value: Value,
}

impl<'de> Deserialize<'de> for ServiceSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let form = PlanForm::deserialize(deserializer)?;
        let setting = super::find(&form.setting)
            .ok_or_else(|| D::Error::custom(format!("unknown setting `{}`", form.setting)))?;
        let value = setting.kind.from_json(form.value).map_err(|e| {
            D::Error::custom(format!("`{}` takes {}: {e}", setting.key, setting.meaning))
        })?;
        Self::new(setting, value).map_err(D::Error::custom)
    }
}
