//! The Windows facts table (`data/windows.toml`): every CIM class, property, method and
//! parameter, registry value, built-in firewall rule and HRESULT kmsconf relies on, each with its
//! source. The scripts, the CIM parsing, the lab and the error catalogue are built from it or
//! checked against it; [`Facts::knows`] is what those checks ask.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{Profile, RuleGroup};
use crate::tables::{yes, Table, TableError};

/// The whole table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    /// Source keys to what each source is.
    pub sources: BTreeMap<String, String>,
    pub class: Vec<ClassFact>,
    pub method: Vec<MethodFact>,
    pub registry: Vec<RegistryFact>,
    pub firewall_group: Vec<RuleGroupInfo>,
    pub hresult: Vec<HresultFact>,
    /// What the WinRM transport relies on: ports, URIs, fault codes, the sealed body format.
    #[serde(default)]
    pub winrm: Vec<WinRmFact>,
    /// Firewall cmdlet errors that carry no HRESULT (a rule the host lacks).
    #[serde(default)]
    pub firewall_error: Vec<FirewallErrorFact>,
    /// What the agent and its bootstrap rely on in PowerShell and .NET on the host.
    #[serde(default)]
    pub agent: Vec<AgentFact>,
    /// `Win32_OperatingSystem.OperatingSystemSKU` values and the editions they are.
    #[serde(default)]
    pub sku: Vec<SkuFact>,
    /// The build numbers the SKU rows name.
    #[serde(default)]
    pub os_build: Vec<OsBuildFact>,
    /// Where apply reads each service setting back, and why that is unverified.
    #[serde(default)]
    pub setting_readback: Vec<SettingReadbackFact>,
    /// The events a KMS host logs: the log, the provider and the data each carries, in order.
    #[serde(default)]
    pub event: Vec<EventFact>,
}

/// How a service setting is read back: the registry value that shows what was written, the CIM
/// property that shows what the running service uses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingReadbackFact {
    /// The `[service]` key.
    pub setting: String,
    #[serde(default)]
    pub registry: Option<String>,
    #[serde(default)]
    pub property: Option<String>,
    #[serde(default = "yes")]
    pub verified: bool,
    /// What no source says.
    pub reason: String,
    pub source: String,
}

/// One `OperatingSystemSKU` (PRODUCT_*) value and the GVLK edition it is, by build.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkuFact {
    pub value: u32,
    /// The winnt.h constant: `PRODUCT_DATACENTER_SERVER`.
    pub name: String,
    /// The edition id (`gvlks.toml`) by build number, for a SKU several releases share.
    /// (TOML keys are text: `14393 = "windows-server-2016-datacenter"`.)
    #[serde(default)]
    pub builds: BTreeMap<String, String>,
    /// The edition id for every build from `min_build` on.
    #[serde(default)]
    pub edition: Option<String>,
    #[serde(default)]
    pub min_build: Option<u32>,
    #[serde(default = "yes")]
    pub verified: bool,
    pub source: String,
}

impl SkuFact {
    /// The edition id of this SKU on `build`, if the table has one.
    pub fn edition_on(&self, build: u32) -> Option<&str> {
        if let Some(id) = self.builds.get(&build.to_string()) {
            return Some(id);
        }
        match (&self.edition, self.min_build) {
            (Some(id), Some(min)) if build >= min => Some(id),
            _ => None,
        }
    }
}

/// A Windows build number and the release it is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsBuildFact {
    pub build: u32,
    pub name: String,
    pub source: String,
}

impl Facts {
    /// The row of `OperatingSystemSKU` value `sku`.
    pub fn sku(&self, sku: u32) -> Option<&SkuFact> {
        self.sku.iter().find(|s| s.value == sku)
    }
}

/// One event the Software Protection service logs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFact {
    pub id: u32,
    /// The log's name as `Get-WinEvent -FilterHashtable @{ LogName = ... }` takes it.
    pub log: String,
    pub provider: String,
    /// `kms-host` or `kms-client`.
    pub logged_by: String,
    pub message: String,
    /// The names of its data, in the order the event carries them.
    pub fields: Vec<String>,
    #[serde(default = "yes")]
    pub verified: bool,
    pub source: String,
}

/// One fact the agent relies on: a named value, its source, and whether a source confirms it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentFact {
    pub name: String,
    pub value: String,
    pub source: String,
    #[serde(default)]
    pub note: Option<String>,
    /// `false`: no source confirms it; discovery reads it and reports a host that differs.
    #[serde(default = "yes")]
    pub verified: bool,
}

/// A NetSecurity cmdlet error without an HRESULT: its PowerShell category and English text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallErrorFact {
    pub op: String,
    pub category: String,
    /// `{rule}` stands for the rule's name.
    pub message: String,
    #[serde(default = "yes")]
    pub verified: bool,
    pub source: String,
}

impl Facts {
    /// What `Set-NetFirewallRule -Name RULE` says for a rule the host lacks, with its category.
    pub fn rule_not_found(&self, rule: &str) -> String {
        self.firewall_error
            .iter()
            .find(|e| e.category == "ObjectNotFound")
            .map_or_else(
                || format!("no firewall rule `{rule}`"),
                |e| format!("{} ({})", e.message.replace("{rule}", rule), e.category),
            )
    }
}

/// One WinRM fact: a named value and its source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WinRmFact {
    pub name: String,
    pub value: String,
    pub source: String,
    #[serde(default)]
    pub note: Option<String>,
}

impl Facts {
    /// The value of WinRM fact `name` (empty when the table has no such row: the tests that
    /// compare it with the code then fail).
    pub fn winrm(&self, name: &str) -> &str {
        self.winrm
            .iter()
            .find(|f| f.name == name)
            .map_or("", |f| f.value.as_str())
    }

    /// The value of agent fact `name` (empty when the table has no such row: the tests that
    /// compare it with the agent then fail).
    pub fn agent(&self, name: &str) -> &str {
        self.agent
            .iter()
            .find(|f| f.name == name)
            .map_or("", |f| f.value.as_str())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassFact {
    pub name: String,
    pub properties: Vec<String>,
    pub source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodFact {
    pub class: String,
    pub name: String,
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    /// slmgr.vbs warns that the Software Protection service must restart after it.
    #[serde(default)]
    pub restart: bool,
    /// slmgr.vbs calls it only when a KMS host key is installed.
    #[serde(default)]
    pub gate: bool,
    /// The class reference says it applies to KMS hosts only (an installed KMS host key).
    #[serde(default)]
    pub kms_host_only: bool,
    /// The `slmgr.vbs` switch that makes the same call (`/upk`); `None` when no switch does.
    #[serde(default)]
    pub slmgr: Option<String>,
    pub source: String,
}

impl MethodFact {
    /// What an administrator types for the same call: its `slmgr.vbs` switch, else the CIM call.
    pub fn equivalent(&self) -> String {
        match &self.slmgr {
            Some(switch) => format!("slmgr.vbs {switch}"),
            None => format!("{}.{}()", self.class, self.name),
        }
    }
}

/// A CIM method kmsconf calls outside the settings table, by the class and name of its row (the
/// table's tests check every one has a row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Method {
    pub class: &'static str,
    pub name: &'static str,
}

impl Method {
    pub const INSTALL_PRODUCT_KEY: Self = Self::service("InstallProductKey");
    pub const UNINSTALL_PRODUCT_KEY: Self = Self {
        class: "SoftwareLicensingProduct",
        name: "UninstallProductKey",
    };
    pub const CLEAR_LISTENING_PORT: Self = Self::service("ClearKeyManagementServiceListeningPort");
    pub const REFRESH_LICENSE_STATUS: Self = Self::service("RefreshLicenseStatus");
    pub const ALL: [Self; 4] = [
        Self::INSTALL_PRODUCT_KEY,
        Self::UNINSTALL_PRODUCT_KEY,
        Self::CLEAR_LISTENING_PORT,
        Self::REFRESH_LICENSE_STATUS,
    ];

    const fn service(name: &'static str) -> Self {
        Self {
            class: "SoftwareLicensingService",
            name,
        }
    }

    /// Its row of the table.
    pub fn fact(self) -> Option<&'static MethodFact> {
        facts().method(self.class, self.name)
    }

    /// Its `slmgr.vbs` switch (`slmgr.vbs /upk`), or its CIM call where no switch makes it.
    pub fn equivalent(self) -> String {
        self.fact().map_or_else(
            || format!("{}.{}()", self.class, self.name),
            MethodFact::equivalent,
        )
    }

    /// Windows takes it on a KMS host only (an installed KMS host key).
    pub fn kms_host_only(self) -> bool {
        self.fact().is_some_and(|m| m.kms_host_only)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    pub name: String,
    /// The CIM type: `string`, `uint32`, `boolean`.
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryFact {
    /// `spp` or `spp32` (the Wow6432Node copy).
    pub key: String,
    pub name: String,
    /// As `reg.exe` names it: `REG_SZ`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub restart: bool,
    /// `false`: no source confirms it where kmsconf reads it.
    #[serde(default = "yes")]
    pub verified: bool,
    pub source: String,
}

/// How a built-in firewall rule group is recognised on a host, whatever its display language.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleGroupInfo {
    pub id: RuleGroup,
    /// The resource string in the rules' `Group` property (inbound rules only).
    pub group: String,
    /// Whether kmsconf manages the rules' remote address scope.
    pub scoped: bool,
    /// The rules kmsconf manages one by one (empty: it enables the group whole).
    #[serde(default)]
    pub rules: Vec<RuleInfo>,
    pub source: String,
}

/// A built-in rule as Windows installs it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleInfo {
    pub name: String,
    pub profiles: Vec<Profile>,
    /// Empty = any remote address.
    pub remote_addresses: Vec<String>,
    /// `TCP`, `UDP`, `ICMPv4` or `ICMPv6`, as `Get-NetFirewallPortFilter` shows it.
    pub protocol: String,
    /// The port filter's `LocalPort`: a number or a keyword (`RPC`, `RPC-EPMap`); absent for ICMP.
    #[serde(default)]
    pub local_port: Option<String>,
    /// The ICMP type and code the rule lets in (`8:*`, echo request); ICMP rules only.
    #[serde(default)]
    pub icmp_type: Option<String>,
    /// The service the rule is bound to (`Svc` in the rule store); absent for `System` rules.
    #[serde(default)]
    pub service: Option<String>,
    /// The program the rule is bound to (`App` in the rule store: `System` or a path).
    #[serde(default)]
    pub program: Option<String>,
    /// `false`: the source shows it on a client build only, or not at all.
    #[serde(default = "yes")]
    pub verified: bool,
    pub source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HresultFact {
    pub code: String,
    /// The slerror.h (or winerror.h) symbol.
    pub name: String,
    /// The operation kinds that meet it (`kmsconf lab fault --op` ids).
    pub ops: Vec<String>,
    /// The lab returns it.
    pub lab: bool,
    /// `false`: no source confirms it; the README lists it as unverified.
    #[serde(default = "yes")]
    pub verified: bool,
    pub source: String,
}

static TABLE: Table<Facts> = Table::new(
    "model/data/windows.toml",
    include_str!("../data/windows.toml"),
    toml::from_str,
);

/// The table, parsed once; or why it does not read (a defect of the build: the unit tests parse
/// it). [`crate::load_tables`] calls this before anything else runs.
pub fn load() -> Result<&'static Facts, TableError> {
    TABLE.load()
}

/// The table, parsed once. A table that does not read stops the caller
/// with its file, line and column (see [`crate::tables`]); the binary has loaded it first.
pub fn facts() -> &'static Facts {
    TABLE.get()
}

/// The firewall rule group's row.
pub fn rule_group(group: RuleGroup) -> Option<&'static RuleGroupInfo> {
    facts().firewall_group.iter().find(|g| g.id == group)
}

impl Facts {
    /// Whether `name` is a class, property, method, parameter, registry value or firewall rule
    /// name the table holds.
    pub fn knows(&self, name: &str) -> bool {
        self.class
            .iter()
            .any(|c| c.name == name || c.properties.iter().any(|p| p == name))
            || self.method.iter().any(|m| {
                m.name == name || m.class == name || m.parameters.iter().any(|p| p.name == name)
            })
            || self.registry.iter().any(|r| r.name == name)
            || self
                .firewall_group
                .iter()
                .any(|g| g.group == name || g.rules.iter().any(|r| r.name == name))
    }

    /// The method `name` of `class`.
    pub fn method(&self, class: &str, name: &str) -> Option<&MethodFact> {
        self.method
            .iter()
            .find(|m| m.class == class && m.name == name)
    }

    /// The row of event `id`.
    pub fn event(&self, id: u32) -> Option<&EventFact> {
        self.event.iter().find(|e| e.id == id)
    }

    /// The HRESULT row of `code`.
    pub fn hresult(&self, code: u32) -> Option<&HresultFact> {
        self.hresult
            .iter()
            .find(|h| parse_code(&h.code) == Some(code))
    }
}

/// Reads `0xC004F074`, `C004F074` or a decimal (also negative, as a signed HRESULT).
/// Eight hex digits without `0x` are the code as Windows prints it, also when all are decimal
/// digits (`80070005`): an error HRESULT in decimal has ten digits or a minus sign.
pub fn parse_code(text: &str) -> Option<u32> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).ok();
    }
    if t.len() == 8 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return u32::from_str_radix(t, 16).ok();
    }
    if let Ok(n) = t.parse::<i64>() {
        return u32::try_from(n)
            .ok()
            .or_else(|| i32::try_from(n).ok().map(|n| n as u32));
    }
    u32::from_str_radix(t, 16).ok()
}

#[cfg(test)]
mod tests;
