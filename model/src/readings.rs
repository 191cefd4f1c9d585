//! What discovery read of the Windows facts kmsconf assumes without a source to confirm them
//! (the `verified = false` rows of `data/windows.toml`) and of the registry values its rows name:
//! the host's own readings, kept raw. [`crate::surprise`] compares them with the table.

use serde::{Deserialize, Serialize};

/// The readings of one host; a field the host did not report (an older agent, a recording made
/// before it read them) is `None` and compared with nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostReadings {
    /// `$PSVersionTable.PSVersion` as text: `5.1.17763.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub powershell_version: Option<String>,
    /// `$ExecutionContext.SessionState.LanguageMode`: `FullLanguage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_mode: Option<String>,
    /// Whether the `SoftwareLicensingProduct` class has the `ProductKeyChannel` property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_key_channel: Option<bool>,
    /// The registry values named by the table's `[[registry]]` rows that the host holds, under
    /// each key the agent looked in (`None`: not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<Vec<RegistryReading>>,
    /// The port filter of each built-in rule the table lists that the host holds (`None`: not
    /// read). kmsconf never changes a built-in rule's protocol or port, so whatever the host
    /// shows is the rule as Windows ships it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_filters: Option<Vec<RuleFilterReading>>,
}

impl HostReadings {
    /// Nothing was read (the form a plan file leaves out).
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// One registry value the host holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryReading {
    /// The key, as the table names it: `spp`, `spp32` or `sl`.
    pub key: String,
    pub name: String,
    /// The value's type as `reg.exe` names it (`REG_DWORD`), or the host's own word for a type
    /// kmsconf does not name.
    #[serde(rename = "type")]
    pub kind: String,
}

/// What `Get-NetFirewallPortFilter` shows of one built-in rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFilterReading {
    /// The rule's `Name`: `SPPSVC-In-TCP`.
    pub name: String,
    /// `TCP`, `UDP`, `ICMPv4`, ...
    pub protocol: String,
    /// The filter's `LocalPort` entries: `["1688"]`, `["RPC"]`, `["Any"]`.
    pub local_ports: Vec<String>,
}

/// The registry keys the agent reads values under, by the table's names for them.
pub const REGISTRY_KEYS: [(&str, &str); 3] = [
    (
        "spp",
        r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform",
    ),
    (
        "spp32",
        r"HKLM\SOFTWARE\Wow6432Node\Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform",
    ),
    (
        "sl",
        r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\SL",
    ),
];

/// The full path of a table key name (`sl`), or the name itself when the table has none.
pub fn registry_key_path(key: &str) -> &str {
    REGISTRY_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, path)| path)
}

/// A .NET `RegistryValueKind` name (`DWord`) as `reg.exe` names the type (`REG_DWORD`); any
/// other word is kept as the host sent it.
pub fn reg_type(kind: &str) -> String {
    match kind {
        "String" => "REG_SZ",
        "ExpandString" => "REG_EXPAND_SZ",
        "Binary" => "REG_BINARY",
        "DWord" => "REG_DWORD",
        "MultiString" => "REG_MULTI_SZ",
        "QWord" => "REG_QWORD",
        "None" => "REG_NONE",
        other => other,
    }
    .to_string()
}
