//! Reads what the PowerShell scripts send back: CIM objects (`SoftwareLicensingService`,
//! `SoftwareLicensingProduct`, `MSFT_NetFirewallRule` with its filters), the
//! `SoftwareProtectionPlatform` registry values and the host clock, as JSON with the property
//! names and types of Microsoft's class reference, and turns them into a [`HostState`] plus the
//! volatile [`Observations`] (counters, clock) that do not take part in planning.
//!
//! Each CIM class has its own wire struct with every property optional (older Windows lacks
//! some), and one conversion function per part of the state, so a new property is one field in
//! a wire struct and one line in a conversion. The KMS settings are the exception: `settings`
//! reads them by the names their table rows give.

use std::collections::{BTreeMap, BTreeSet};

mod readings;
mod settings;

pub use readings::{CimReadings, CimRegistryReading};
pub use settings::{publish_domain, service};

/// What in a host's CIM document kmsconf cannot read; each names the property that is wrong.
#[derive(Debug, thiserror::Error)]
pub enum CimError {
    #[error("line {} column {}: {}", .0.line(), .0.column(), .0)]
    Json(#[from] serde_json::Error),
    #[error("product `{product}`: `LicenseStatus` = `{status}` is not 0 to 6")]
    LicenseStatus { product: String, status: i64 },
    #[error("firewall rule `{rule}`: `Profile` = `{profile}` is not a profile")]
    Profile { rule: String, profile: String },
    /// A KMS setting's registry value or CIM property (`name`) holds no `meaning`.
    #[error("`{name}` = `{value}` is not {meaning}")]
    Setting {
        name: String,
        value: serde_json::Value,
        meaning: &'static str,
    },
    /// A value the licensing service never reports (an installation ID that is not 63 digits).
    #[error(transparent)]
    Protocol(Box<kmsconf_model::state::ProtocolValue>),
    /// `Clock.Utc` is not an RFC 3339 time.
    #[error("the host's clock `Clock.Utc` = {} is not an RFC 3339 time", kmsconf_engine::diagnostic::quoted(.0))]
    Clock(String),
    /// A `DnsDomainPublishList` entry's `field` (priority, weight) is no 16-bit number.
    #[error("DnsDomainPublishList entry `{entry}` has {field} `{value}`, not 0 to 65535")]
    PublishEntry {
        entry: String,
        field: &'static str,
        value: String,
    },
}

use kmsconf_model::config::{ProductId, Profile, RuleGroup};
use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};

use kmsconf_model::catalog;
use kmsconf_model::catalog::PORT_RULE_NAME;
use kmsconf_model::state::{
    Channel, FirewallState, HostState, LicenseStatus, PortRule, ProductState, RuleGroupState,
    RuleState,
};

/// `SoftwareLicensingService` (root/cimv2), the properties discovery selects.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CimService {
    pub version: Option<String>,
    pub is_key_management_service_machine: Option<i64>,
    pub key_management_service_current_count: Option<i64>,
    pub required_client_count: Option<i64>,
    #[serde(flatten)]
    pub requests: CimRequestCounters,
    #[serde(rename = "ClientMachineID")]
    pub client_machine_id: Option<String>,
    #[serde(rename = "RemainingWindowsReArmCount")]
    pub remaining_windows_rearm_count: Option<i64>,
    /// Every other property, by name: the KMS settings' ([`Setting::property`]), read as their
    /// rows say.
    ///
    /// [`Setting::property`]: kmsconf_model::settings::Setting::property
    #[serde(flatten)]
    pub properties: serde_json::Map<String, serde_json::Value>,
}

/// The KMS request counters, which `SoftwareLicensingService` and `SoftwareLicensingProduct`
/// both carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct CimRequestCounters {
    #[serde(rename(deserialize = "KeyManagementServiceTotalRequests"))]
    pub total: Option<i64>,
    #[serde(rename(deserialize = "KeyManagementServiceFailedRequests"))]
    pub failed: Option<i64>,
    #[serde(rename(deserialize = "KeyManagementServiceUnlicensedRequests"))]
    pub unlicensed: Option<i64>,
    #[serde(rename(deserialize = "KeyManagementServiceLicensedRequests"))]
    pub licensed: Option<i64>,
    #[serde(rename(deserialize = "KeyManagementServiceOOBGraceRequests"))]
    pub oob_grace: Option<i64>,
    #[serde(rename(deserialize = "KeyManagementServiceOOTGraceRequests"))]
    pub oot_grace: Option<i64>,
    #[serde(rename(deserialize = "KeyManagementServiceNonGenuineGraceRequests"))]
    pub non_genuine_grace: Option<i64>,
    #[serde(rename(deserialize = "KeyManagementServiceNotificationRequests"))]
    pub notification: Option<i64>,
}

/// `SoftwareLicensingProduct` (root/cimv2), the properties discovery selects.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CimProduct {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "ApplicationID")]
    pub application_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub partial_product_key: Option<String>,
    /// Not in the Windows 7 era class; present on Windows 8 / Server 2012 and later.
    pub product_key_channel: Option<String>,
    pub license_status: Option<i64>,
    pub grace_period_remaining: Option<i64>,
    pub offline_installation_id: Option<String>,
    pub license_is_addon: Option<bool>,
    pub is_key_management_service_machine: Option<i64>,
    pub key_management_service_current_count: Option<i64>,
    pub required_client_count: Option<i64>,
    #[serde(flatten)]
    pub requests: CimRequestCounters,
}

/// The `SoftwareProtectionPlatform` registry values kmsconf manages, as `Get-ItemProperty`
/// returns them (absent values are `null`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct CimRegistry(pub serde_json::Map<String, serde_json::Value>);

/// One `MSFT_NetFirewallRule` with the parts of its port and address filters kmsconf reads.
/// `Enabled` and `Direction` are enums, sent as their names (`True`, `Inbound`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CimFirewallRule {
    pub name: String,
    pub group: Option<String>,
    pub direction: Option<String>,
    pub enabled: Option<String>,
    /// `MSFT_NetFirewallRule.Profile` as its enum's text: `Domain, Private`, `Any`.
    pub profile: Option<String>,
    pub protocol: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub local_port: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub remote_address: Vec<String>,
}

impl CimFirewallRule {
    fn is_enabled(&self) -> bool {
        self.enabled.as_deref() == Some("True")
    }
    fn is_inbound(&self) -> bool {
        self.direction.as_deref().is_none_or(|d| d == "Inbound")
    }
}

/// `Win32_OperatingSystem`, for the reader only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CimOperatingSystem {
    pub caption: Option<String>,
    pub version: Option<String>,
    /// Text in CIM (`"20348"`).
    pub build_number: Option<String>,
    #[serde(rename = "OperatingSystemSKU")]
    pub operating_system_sku: Option<u32>,
}

/// The host clock, which KMS activation depends on (0xC004F06C when client and host disagree).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CimClock {
    /// `[DateTime]::UtcNow.ToString('o')`.
    pub utc: Option<String>,
    /// `[TimeZoneInfo]::Local.Id`.
    pub time_zone: Option<String>,
    pub utc_offset_minutes: Option<i64>,
}

/// Everything the discovery script sends.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CimDiscovery {
    pub computer_name: String,
    pub operating_system: Option<CimOperatingSystem>,
    pub software_licensing_service: CimService,
    #[serde(default, deserialize_with = "one_or_many")]
    pub software_licensing_product: Vec<CimProduct>,
    #[serde(default)]
    pub software_protection_platform: CimRegistry,
    #[serde(default, deserialize_with = "one_or_many")]
    pub firewall_rules: Vec<CimFirewallRule>,
    /// Absent from an agent older than the readings (a recording made before them).
    pub readings: Option<CimReadings>,
    pub clock: Option<CimClock>,
}

/// What discovery sees that changes on its own (counters, clock) and so takes no part in
/// planning or in the staleness check of a saved plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Observations {
    /// `KeyManagementServiceCurrentCount`; `None` for -1 (not a KMS host or no requests yet).
    pub current_count: Option<u32>,
    pub required_client_count: Option<u32>,
    pub requests: CimRequestCounters,
    pub client_machine_id: Option<String>,
    pub rearm_count: Option<u32>,
    pub clock: CimClock,
    pub products: BTreeMap<ProductId, ProductObservations>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProductObservations {
    pub is_kms_host: bool,
    pub current_count: Option<u32>,
    pub required_client_count: Option<u32>,
    pub requests: CimRequestCounters,
}

/// Reads the discovery document. Errors name the property that is wrong.
pub fn parse_discovery(json: &str) -> Result<(HostState, Observations), CimError> {
    let doc: CimDiscovery = from_json(json)?;
    let (products, license_packs) = products(&doc.software_licensing_product)?;
    let os = doc.operating_system.as_ref();
    let mut state = HostState {
        computer_name: doc.computer_name.clone(),
        os: doc
            .operating_system
            .as_ref()
            .and_then(|o| o.caption.clone())
            .map_or_else(|| "Windows".to_string(), |c| c.trim().to_string()),
        service: service(
            &doc.software_licensing_service,
            &doc.software_protection_platform,
        )?,
        firewall: firewall(&doc.firewall_rules)?,
        products,
        license_packs,
        clock: None,
        client_machine_id: None,
        remaining_rearm_count: None,
        os_sku: os.and_then(|o| o.operating_system_sku),
        os_build: os
            .and_then(|o| o.build_number.as_deref())
            .and_then(|b| b.trim().parse().ok()),
        readings: doc
            .readings
            .as_ref()
            .map(|r| r.state(&doc.firewall_rules))
            .unwrap_or_default(),
    };
    let seen = observations(&doc);
    state.clock = match seen.clock.utc.as_deref() {
        Some(utc) => Some(
            kmsconf_engine::lock::parse_rfc3339(utc).ok_or_else(|| CimError::Clock(utc.into()))?,
        ),
        None => None,
    };
    state.client_machine_id = seen.client_machine_id.clone().filter(|c| !c.is_empty());
    state.remaining_rearm_count = seen.rearm_count;
    for (id, product) in &mut state.products {
        if let Some(p) = seen.products.get(id) {
            product.current_count = p.current_count;
            product.required_count = p.required_client_count.filter(|_| p.is_kms_host);
            product.requests = counters(&p.requests);
        }
    }
    state.check_protocol()?;
    Ok((state, seen))
}

impl From<kmsconf_model::state::ProtocolValue> for CimError {
    fn from(e: kmsconf_model::state::ProtocolValue) -> Self {
        Self::Protocol(Box::new(e))
    }
}

/// Deserializes JSON, saying where it failed.
pub fn from_json<T: DeserializeOwned>(json: &str) -> Result<T, CimError> {
    Ok(serde_json::from_str(json)?)
}

type Products = (BTreeMap<ProductId, ProductState>, BTreeSet<ProductId>);

fn products(all: &[CimProduct]) -> Result<Products, CimError> {
    let mut products = BTreeMap::new();
    let mut packs = BTreeSet::new();
    for id in ProductId::ALL {
        let Some(p) = select_product(id, all) else {
            continue;
        };
        if id.is_office() {
            packs.insert(id);
        }
        products.insert(id, product_state(p)?);
    }
    Ok((products, packs))
}

/// The CIM product that stands for a catalogue product: for Windows the keyed, non-add-on
/// product of the Windows application (a KMS host key first); for Office the KMS host SKU by its
/// activation ID, present once its license pack is installed.
pub fn select_product(id: ProductId, all: &[CimProduct]) -> Option<&CimProduct> {
    let info = catalog::product(id)?;
    if let Some(activation_id) = &info.activation_id {
        return all
            .iter()
            .find(|p| p.id.eq_ignore_ascii_case(activation_id));
    }
    let keyed = all.iter().filter(|p| {
        p.application_id.eq_ignore_ascii_case(&info.application_id)
            && p.partial_product_key
                .as_deref()
                .is_some_and(|k| !k.is_empty())
            && p.license_is_addon != Some(true)
    });
    let keyed: Vec<&CimProduct> = keyed.collect();
    keyed
        .iter()
        .find(|p| channel(p) == Channel::KmsHost)
        .or(keyed.first())
        .copied()
}

pub fn product_state(p: &CimProduct) -> Result<ProductState, CimError> {
    let status = p.license_status.unwrap_or(0);
    let license_status = u32::try_from(status)
        .ok()
        .and_then(LicenseStatus::from_cim)
        .ok_or_else(|| CimError::LicenseStatus {
            product: p.id.clone(),
            status,
        })?;
    let grace = p.grace_period_remaining.unwrap_or(0);
    let channel = channel(p);
    let state = ProductState {
        activation_id: Some(p.id.to_ascii_lowercase()).filter(|id| !id.is_empty()),
        partial_key: p.partial_product_key.clone().filter(|k| !k.is_empty()),
        channel,
        license_status,
        installation_id: p.offline_installation_id.clone().filter(|i| !i.is_empty()),
        grace_minutes: u32::try_from(grace.max(0)).unwrap_or(u32::MAX),
        current_count: None,
        required_count: None,
        requests: kmsconf_model::state::RequestCounters::default(),
        // kept for a KMS host key only: its channel text says which clients it activates
        description: p
            .description
            .clone()
            .filter(|d| channel == Channel::KmsHost && !d.is_empty() && d.len() <= 512),
    };
    state.check_protocol()?;
    Ok(state)
}

/// The key channel: `ProductKeyChannel` where Windows has it, else the `Description` text
/// slmgr.vbs itself tests (`VOLUME_KMS` but not `VOLUME_KMSCLIENT` is a KMS host key).
pub fn channel(p: &CimProduct) -> Channel {
    if p.partial_product_key.as_deref().is_none_or(str::is_empty) {
        return Channel::None;
    }
    if let Some(c) = p.product_key_channel.as_deref() {
        match c {
            "Volume:CSVLK" => return Channel::KmsHost,
            "Volume:GVLK" => return Channel::KmsClient,
            "Volume:MAK" => return Channel::Mak,
            _ if c.starts_with("Retail") || c.starts_with("OEM") => return Channel::Retail,
            _ => {}
        }
    }
    let d = p
        .description
        .as_deref()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if d.contains("VOLUME_KMSCLIENT") {
        Channel::KmsClient
    } else if d.contains("VOLUME_KMS") {
        Channel::KmsHost
    } else if d.contains("VOLUME_MAK") {
        Channel::Mak
    } else {
        Channel::Retail
    }
}

/// The inbound rules of a managed group, by its group resource string.
pub fn group_rules(group: RuleGroup, rules: &[CimFirewallRule]) -> Vec<&CimFirewallRule> {
    let Some(info) = catalog::rule_group(group) else {
        return Vec::new();
    };
    rules
        .iter()
        .filter(|r| {
            r.is_inbound()
                && r.group
                    .as_deref()
                    .is_some_and(|g| g.eq_ignore_ascii_case(&info.group))
        })
        .collect()
}

/// One rule's state; `Err` names a `Profile` Windows would not send.
fn rule_state(r: &CimFirewallRule) -> Result<RuleState, CimError> {
    let text = r.profile.as_deref().unwrap_or("Any");
    let profiles = Profile::parse_windows(text).ok_or_else(|| CimError::Profile {
        rule: r.name.clone(),
        profile: text.to_string(),
    })?;
    Ok(RuleState {
        enabled: r.is_enabled(),
        profiles,
        remote_addresses: remote_addresses(&r.remote_address),
    })
}

/// The managed groups (each rule by name for a group the table lists rules of) and kmsconf's
/// own port rule.
pub fn firewall(rules: &[CimFirewallRule]) -> Result<FirewallState, CimError> {
    let mut groups = BTreeMap::new();
    for group in RuleGroup::ALL {
        let matched = group_rules(group, rules);
        if matched.is_empty() {
            continue;
        }
        let per_rule = catalog::rule_group(group).is_some_and(|i| !i.rules.is_empty());
        let mut states = BTreeMap::new();
        for r in &matched {
            states.insert(r.name.clone(), rule_state(r)?);
        }
        let mut state = RuleGroupState::from_rules(states);
        if !per_rule {
            state.rules.clear();
        }
        groups.insert(group, state);
    }
    let port_rule = rules
        .iter()
        .find(|r| r.name.eq_ignore_ascii_case(PORT_RULE_NAME) && r.is_enabled())
        .map(|r| -> Result<PortRule, CimError> {
            Ok(PortRule {
                port: r
                    .local_port
                    .first()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
                remote_addresses: remote_addresses(&r.remote_address),
                profiles: rule_state(r)?.profiles,
            })
        })
        .transpose()?;
    Ok(FirewallState { groups, port_rule })
}

/// Windows shows `Any` for no scope and subnets with a mask (`10.0.0.0/255.0.0.0`); kmsconf
/// writes `[]` and prefixes (`10.0.0.0/8`), and a single address without `/32`.
pub fn remote_addresses(list: &[String]) -> Vec<String> {
    if list.iter().any(|a| a.eq_ignore_ascii_case("any")) {
        return Vec::new();
    }
    list.iter().map(|a| normalize_address(a)).collect()
}

fn normalize_address(address: &str) -> String {
    let Some((ip, mask)) = address.split_once('/') else {
        return address.to_string();
    };
    let prefix = match mask.parse::<std::net::Ipv4Addr>() {
        Ok(m) => {
            let bits = u32::from(m);
            if bits.leading_ones() + bits.trailing_zeros() != 32 {
                return address.to_string();
            }
            bits.leading_ones()
        }
        Err(_) => match mask.parse::<u32>() {
            Ok(p) => p,
            Err(_) => return address.to_string(),
        },
    };
    let full = if ip.contains(':') { 128 } else { 32 };
    if prefix == full {
        ip.to_string()
    } else {
        format!("{ip}/{prefix}")
    }
}

fn count(value: Option<i64>) -> Option<u32> {
    value
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| *v != u32::MAX)
}

fn observations(doc: &CimDiscovery) -> Observations {
    let svc = &doc.software_licensing_service;
    let products = ProductId::ALL
        .into_iter()
        .filter_map(|id| {
            let p = select_product(id, &doc.software_licensing_product)?;
            let seen = ProductObservations {
                is_kms_host: p.is_key_management_service_machine == Some(1),
                current_count: count(p.key_management_service_current_count),
                required_client_count: count(p.required_client_count),
                requests: p.requests.clone(),
            };
            Some((id, seen))
        })
        .collect();
    Observations {
        current_count: count(svc.key_management_service_current_count),
        required_client_count: count(svc.required_client_count),
        requests: svc.requests.clone(),
        client_machine_id: svc.client_machine_id.clone(),
        rearm_count: count(svc.remaining_windows_rearm_count),
        clock: doc.clock.clone().unwrap_or_default(),
        products,
    }
}

/// The request counters in the state's terms; a missing or negative counter (CIM's -1, or
/// 4294967295 when PowerShell reads it unsigned) is 0.
fn counters(c: &CimRequestCounters) -> kmsconf_model::state::RequestCounters {
    let n = |v: Option<i64>| {
        v.filter(|v| *v >= 0 && *v != i64::from(u32::MAX))
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(0)
    };
    kmsconf_model::state::RequestCounters {
        total: n(c.total),
        failed: n(c.failed),
        unlicensed: n(c.unlicensed),
        licensed: n(c.licensed),
        initial_grace: n(c.oob_grace),
        out_of_tolerance_grace: n(c.oot_grace),
        non_genuine_grace: n(c.non_genuine_grace),
        notification: n(c.notification),
    }
}

/// PowerShell's `ConvertTo-Json` writes a one-element collection as the element itself and an
/// absent one as `null`: accept a list, a single value or `null`. An entry that does not read
/// names its position and its property (an untagged enum would only say no variant matched).
pub fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let entries = match Option::<serde_json::Value>::deserialize(d)? {
        None => return Ok(Vec::new()),
        Some(serde_json::Value::Array(entries)) => entries,
        Some(one) => vec![one],
    };
    entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            T::deserialize(&entry).map_err(|e| {
                serde::de::Error::custom(format!("entry {}{}: {e}", i + 1, culprit::<T>(&entry)))
            })
        })
        .collect()
}

/// The property of an object `entry` that makes it unreadable as `T`: the one whose removal
/// makes it read (every CIM property kmsconf reads but the keys is optional), as ` property
/// `Name` = value`; empty when no one property does.
fn culprit<T: DeserializeOwned>(entry: &serde_json::Value) -> String {
    let Some(object) = entry.as_object() else {
        return String::new();
    };
    object
        .iter()
        .find(|(name, _)| {
            let mut without = object.clone();
            without.remove(name.as_str());
            T::deserialize(&serde_json::Value::Object(without)).is_ok()
        })
        .map(|(name, value)| {
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_string);
            let shown = kmsconf_engine::diagnostic::quoted(&text);
            format!(", property `{name}` = {shown}")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
