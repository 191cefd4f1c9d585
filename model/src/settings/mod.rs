//! The KMS service settings of `[service]` as data: one [`Setting`] row per setting ([`SETTINGS`])
//! holding everything kmsconf knows about it, so that planning, the lab, the Windows scripts,
//! export and status all read the same row instead of each matching on the setting.
//!
//! Adding a setting is one row in [`table`] (and its facts rows in `data/windows.toml`): the
//! config key, its schema and range check, the value in the host state, the plan, the lab, the
//! Windows agent, export and status all come from the row. The config
//! ([`ServiceConfig`](crate::config::ServiceConfig)) and the host state ([`ServiceState`]) hold
//! the settings' values by row.

mod service_state;
mod table;
mod value;

use std::sync::OnceLock;

pub use crate::error::SettingError;
pub use service_state::ServiceState;
pub use table::{
    DEFAULT_ACTIVATION_INTERVAL, DEFAULT_PORT, DEFAULT_RENEWAL_INTERVAL, INTERVAL_RANGE,
    PORT_RANGE, SETTINGS,
};
pub use value::{Kind, PublishDomain, ServiceSetting, SettingValue};

/// The registry key of the Software Protection Platform's KMS settings.
pub const REGISTRY_KEY: &str =
    r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform";

/// One KMS service setting.
#[derive(Debug, Clone)]
pub struct Setting {
    /// The key under `[hosts.NAME.service]`, the `setting` of a plan file's operation and the
    /// change address `service.KEY`.
    pub key: &'static str,
    /// What the key does, as the config's JSON Schema describes it.
    pub description: &'static str,
    pub kind: Kind,
    /// What a valid value is, in words, for messages about a value a host sent
    /// (`a TCP port`).
    pub meaning: &'static str,
    /// The valid range of a number.
    pub range: Option<ValueRange>,
    /// What a fresh host holds: Windows' default, and what discovery assumes for a value the
    /// host does not show.
    pub default: SettingValue,
    /// The value in effect while the host holds [`default`](Self::default), when that is not
    /// the value itself (the port: 0, not set, listens on 1688).
    pub default_in_effect: Option<SettingValue>,
    /// How Windows writes it.
    pub write: Write,
    /// The `SoftwareLicensingService` property that shows what the running service uses.
    pub property: Option<&'static str>,
    /// Whether Windows applies it only after the Software Protection service restarts.
    pub needs_restart: bool,
    /// Whether Windows takes it only once a KMS host key is installed (slmgr.vbs calls the
    /// method only when a keyed product has `IsKeyManagementServiceMachine`; it does not check
    /// activation).
    pub needs_kms_host_key: bool,
    /// How `status` shows it.
    pub status: Shown,
    /// Whether `export` writes the setting for this host (a line can be noise, or draw a
    /// `validate` warning, where it says nothing).
    pub exported: fn(&ServiceState) -> bool,
    /// What retiring the host does to it, so that it becomes a KMS client that neither
    /// publishes itself nor listens.
    pub on_retire: OnRetire,
}

/// What a retirement does to a setting.
#[derive(Debug, Clone)]
pub enum OnRetire {
    /// A KMS client keeps it as it is.
    Keep,
    /// Set to this value (DNS publishing off, the publish list empty).
    Set(SettingValue),
    /// Cleared back to Windows' default where it differs from it: the listening port, which
    /// `ClearKeyManagementServiceListeningPort` clears (no value written stands for "not set").
    Clear,
}

/// A number's documented range.
#[derive(Debug, Clone, Copy)]
pub struct ValueRange {
    pub min: u32,
    pub max: u32,
    /// Appended to a number in messages (` minutes`).
    pub unit: &'static str,
    /// The largest value in other words, for messages (`30 days`).
    pub max_in_words: Option<&'static str>,
    /// Windows itself refuses a value outside the range (WMI answers E_INVALIDARG), as the lab
    /// then does; otherwise only config validation checks it.
    pub refused_by_windows: bool,
}

impl ValueRange {
    pub fn contains(&self, n: u32) -> bool {
        (self.min..=self.max).contains(&n)
    }

    /// The range in words: `15 to 43200 minutes (30 days)`.
    pub fn words(&self) -> String {
        let words = self.max_in_words.map(|w| format!(" ({w})"));
        let (min, max, unit) = (self.min, self.max, self.unit);
        format!("{min} to {max}{unit}{}", words.unwrap_or_default())
    }
}

/// How Windows writes a setting, and where it keeps what was written.
#[derive(Debug, Clone)]
pub enum Write {
    /// A `SoftwareLicensingService` method taking the value as its one argument.
    Method {
        method: CimMethod,
        /// What an administrator would type for the same change.
        slmgr: Slmgr,
        /// Where Windows keeps the value the method wrote (it wins over [`Setting::property`];
        /// a difference means a restart is pending). That the method writes it there is
        /// unverified for every row (no source says so: `data/windows.toml`, the
        /// `[[setting_readback]]` rows); apply verifies a write there when the host shows it,
        /// and the running value after the restart.
        registry: Option<RegistryValue>,
    },
    /// A registry value written directly (`reg add`; an empty list is `reg delete`).
    Registry(RegistryValue),
}

impl Write {
    /// The registry value that holds what was set, if there is one.
    pub fn registry(&self) -> Option<&RegistryValue> {
        match self {
            Self::Method { registry, .. } => registry.as_ref(),
            Self::Registry(value) => Some(value),
        }
    }
}

/// A `SoftwareLicensingService` method and its argument.
#[derive(Debug, Clone)]
pub struct CimMethod {
    pub name: &'static str,
    pub argument: &'static str,
    /// The argument says the opposite of the setting (`DisablePublishing` for DNS publishing).
    pub inverted: bool,
}

/// A registry value: under [`REGISTRY_KEY`] (`spp`), or the key its facts row names.
#[derive(Debug, Clone)]
pub struct RegistryValue {
    /// The key as `data/windows.toml` names it: `spp` ([`REGISTRY_KEY`]), or another of
    /// [`crate::readings::REGISTRY_KEYS`] (`sl`: the Volume Activation 2.0 guide's Vista-era
    /// `...\CurrentVersion\SL`).
    pub key: &'static str,
    pub name: &'static str,
    pub kind: RegistryKind,
    /// The value says the opposite of the setting (`DisableDnsPublishing`).
    pub inverted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryKind {
    /// REG_SZ, a number written as text.
    Sz,
    Dword,
    MultiSz,
}

impl RegistryKind {
    /// The type as `reg.exe` names it.
    pub fn reg_type(self) -> &'static str {
        match self {
            Self::Sz => "REG_SZ",
            Self::Dword => "REG_DWORD",
            Self::MultiSz => "REG_MULTI_SZ",
        }
    }

    /// The type as PowerShell's `New-ItemProperty -PropertyType` names it.
    pub fn property_type(self) -> &'static str {
        match self {
            Self::Sz => "String",
            Self::Dword => "DWord",
            Self::MultiSz => "MultiString",
        }
    }
}

/// The `slmgr.vbs` switch that sets a value, shown as the equivalent of a change.
#[derive(Debug, Clone)]
pub enum Slmgr {
    /// `slmgr.vbs SWITCH VALUE`.
    Value(&'static str),
    /// One switch for on, one for off.
    Switch { on: &'static str, off: &'static str },
}

/// How `status` shows a setting: a field of `--json`'s `service` object, and a part of the
/// human `service:` line.
#[derive(Debug, Clone)]
pub struct Shown {
    pub field: &'static str,
    /// Human text: `LABEL VALUE UNIT`.
    pub label: &'static str,
    pub unit: &'static str,
    /// The words a switch shows for on and off.
    pub words: (&'static str, &'static str),
    /// The JSON field holds the word rather than `true`/`false`.
    pub words_in_json: bool,
}

static TABLE: OnceLock<&'static [Setting]> = OnceLock::new();

/// The rows in use: [`SETTINGS`], unless a test declared its own with [`use_table`]. The
/// config, the host state, plans and the targets all read this one table.
pub fn table() -> &'static [Setting] {
    TABLE.get_or_init(|| SETTINGS)
}

/// Makes `rows` the table of this process in place of [`SETTINGS`]: how a test declares a
/// setting of its own (`app/tests/setting_row.rs`). `Err` once anything has read the table.
pub fn use_table(rows: &'static [Setting]) -> Result<(), SettingError> {
    TABLE.set(rows).map_err(|_| SettingError::TableInUse)
}

/// The row of `key` in the [`table`].
pub fn find(key: &str) -> Option<&'static Setting> {
    table().iter().find(|s| s.key == key)
}

/// The keys of the [`table`], in its order.
pub fn keys() -> &'static [&'static str] {
    static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
    KEYS.get_or_init(|| table().iter().map(|s| s.key).collect())
}

impl Setting {
    /// The value in effect on a host holding `stored` for this setting.
    pub fn in_effect(&self, stored: SettingValue) -> SettingValue {
        match &self.default_in_effect {
            Some(value) if stored == self.default => value.clone(),
            _ => stored,
        }
    }
}

#[cfg(test)]
mod tests;
