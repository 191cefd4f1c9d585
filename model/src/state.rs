//! The observed state of a KMS host: what one discovery round trip returns, in the terms of the
//! Software Licensing Service's CIM classes (not slmgr's localized text).
//!
//! Some of it changes by itself while nobody configures anything (the host's clock, the client
//! count and request counters, the grace minutes left): [`HostState::stable`] leaves those out,
//! so a saved plan is stale only when something kmsconf manages changed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::config::{ProductId, Profile, RuleGroup};
use crate::dns::DnsState;
pub use crate::error::{NotAKmsHost, ProtocolValue};
pub use crate::readings::{HostReadings, RegistryReading, RuleFilterReading};
pub use crate::settings::ServiceState;
use crate::settings::{SettingValue, DEFAULT_PORT};
use serde::{Deserialize, Serialize};

/// What discovery read for one entry of a plan: a KMS host, or the DNS server of `[dns]` (which
/// a plan holds as one more entry, named `dns`). Tagged with its kind in a plan file:
/// `{"kind": "kms_host", "state": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "state", rename_all = "snake_case")]
// one value per plan entry, never in a hot collection: boxing the host would only add a hop
#[allow(clippy::large_enum_variant)]
pub enum EntryState {
    KmsHost(HostState),
    DnsServer(DnsState),
    ActiveDirectory(crate::adba::AdState),
}

impl EntryState {
    /// The KMS host's state; a DNS server's entry is an error saying so.
    pub fn into_host(self) -> Result<HostState, NotAKmsHost> {
        match self {
            Self::KmsHost(host) => Ok(host),
            Self::DnsServer(_) | Self::ActiveDirectory(_) => Err(NotAKmsHost),
        }
    }

    /// Whether this is the DNS server entry of a plan (`dns`) rather than a KMS host.
    pub fn is_dns_server(&self) -> bool {
        matches!(self, Self::DnsServer(_))
    }

    /// The state without what changes by itself over time (see [`HostState::stable`]).
    pub fn stable(&self) -> Self {
        match self {
            Self::KmsHost(host) => Self::KmsHost(host.stable()),
            Self::DnsServer(dns) => Self::DnsServer(dns.clone()),
            Self::ActiveDirectory(ad) => Self::ActiveDirectory(ad.clone()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostState {
    pub computer_name: String,
    pub os: String,
    pub service: ServiceState,
    pub firewall: FirewallState,
    /// Catalogue products that have a key installed or a license pack present.
    pub products: BTreeMap<ProductId, ProductState>,
    /// Products whose KMS host license pack is installed.
    pub license_packs: BTreeSet<ProductId>,
    /// The host's clock when it answered, seconds since the Unix epoch (UTC); `None` when the
    /// target cannot tell. Volatile.
    #[serde(default)]
    pub clock: Option<i64>,
    /// `SoftwareLicensingService.ClientMachineID`: the host's own CMID.
    #[serde(default)]
    pub client_machine_id: Option<String>,
    /// `SoftwareLicensingService.RemainingWindowsReArmCount`: how many `slmgr.vbs /rearm` are left.
    #[serde(default)]
    pub remaining_rearm_count: Option<u32>,
    /// `Win32_OperatingSystem.OperatingSystemSKU`: the edition as a number on every display
    /// language (the `os` caption is localized). `None` when the host did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_sku: Option<u32>,
    /// `Win32_OperatingSystem.BuildNumber`: `20348`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_build: Option<u32>,
    /// What discovery read of the Windows facts no source confirms ([`HostReadings`]).
    #[serde(default, skip_serializing_if = "HostReadings::is_empty")]
    pub readings: HostReadings,
}

impl ServiceState {
    /// The port the KMS service listens on: the `port` row's value in effect.
    pub fn effective_port(&self) -> u16 {
        match self.value("port") {
            Some(SettingValue::U16(port)) => port,
            _ => DEFAULT_PORT,
        }
    }

    /// The listening port as the host holds it: 0 when it was never set.
    pub fn port(&self) -> u16 {
        match crate::settings::find("port").map(|row| self.stored(row)) {
            Some(SettingValue::U16(port)) => port,
            _ => 0,
        }
    }

    /// What `ClearKeyManagementServiceListeningPort` does: the port back to not set.
    pub fn clear_port(&mut self) {
        if let Some(row) = crate::settings::find("port") {
            self.store(row, row.default.clone());
        }
    }

    /// Whether the host publishes itself in DNS: the `dns_publishing` row's value.
    pub fn dns_publishing(&self) -> bool {
        self.value("dns_publishing") == Some(SettingValue::Bool(true))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallState {
    pub groups: BTreeMap<RuleGroup, RuleGroupState>,
    /// kmsconf's own inbound rule for a custom KMS port, when present.
    pub port_rule: Option<PortRule>,
}

impl FirewallState {
    /// The managed groups as Windows installs them: every rule disabled, the Key Management
    /// Service rules with their built-in profiles and scopes (the facts table,
    /// `data/windows.toml`).
    pub fn windows_default() -> Self {
        let groups = RuleGroup::ALL
            .into_iter()
            .map(|g| {
                let rules: BTreeMap<String, RuleState> = crate::facts::rule_group(g)
                    .map(|info| {
                        info.rules
                            .iter()
                            .map(|r| (r.name.clone(), RuleState::built_in(r)))
                            .collect()
                    })
                    .unwrap_or_default();
                let state = if rules.is_empty() {
                    RuleGroupState {
                        enabled: false,
                        remote_addresses: Vec::new(),
                        rules,
                    }
                } else {
                    RuleGroupState::from_rules(rules)
                };
                (g, state)
            })
            .collect();
        Self {
            groups,
            port_rule: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleGroupState {
    /// Every rule of the group is enabled.
    pub enabled: bool,
    /// Remote address scope the rules share; empty = any (or no one scope).
    pub remote_addresses: Vec<String>,
    /// Each rule by its `Name`, for a group whose rules kmsconf manages one by one (the Key
    /// Management Service group); empty for a group it enables whole.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<String, RuleState>,
}

impl RuleGroupState {
    /// The group's state from its rules: enabled when all are, the scope when they share one.
    pub fn from_rules(rules: BTreeMap<String, RuleState>) -> Self {
        let scopes: BTreeSet<&Vec<String>> = rules.values().map(|r| &r.remote_addresses).collect();
        Self {
            enabled: !rules.is_empty() && rules.values().all(|r| r.enabled),
            remote_addresses: match scopes.into_iter().collect::<Vec<_>>().as_slice() {
                [one] => (*one).clone(),
                _ => Vec::new(),
            },
            rules,
        }
    }
}

/// One built-in firewall rule, as `Get-NetFirewallRule` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleState {
    pub enabled: bool,
    /// The profiles the rule applies to, sorted.
    pub profiles: Vec<Profile>,
    /// Remote address scope; empty = any.
    pub remote_addresses: Vec<String>,
}

impl RuleState {
    /// Rule `rule` on a fresh host: disabled, with its built-in profiles and scope.
    pub fn built_in(rule: &crate::facts::RuleInfo) -> Self {
        let mut profiles = rule.profiles.clone();
        profiles.sort();
        Self {
            enabled: false,
            profiles,
            remote_addresses: rule.remote_addresses.clone(),
        }
    }

    /// Whether the rule lets traffic in on `profile`.
    pub fn open_on(&self, profile: Profile) -> bool {
        self.enabled && self.profiles.contains(&profile)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRule {
    pub port: u16,
    /// Remote address scope; empty = any.
    pub remote_addresses: Vec<String>,
    /// The profiles the rule applies to, sorted; a rule from before kmsconf managed profiles
    /// reads as all three (what `New-NetFirewallRule` gives without `-Profile`).
    #[serde(default = "all_profiles")]
    pub profiles: Vec<Profile>,
}

fn all_profiles() -> Vec<Profile> {
    Profile::ALL.to_vec()
}

/// `SoftwareLicensingProduct` for one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductState {
    /// `ID`: the activation ID of the SKU that holds the key, which `UninstallProductKey` (as
    /// `slmgr.vbs /upk <activation ID>`) acts on; `None` where the target did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_id: Option<String>,
    /// `PartialProductKey`: the last five characters of the installed key.
    pub partial_key: Option<String>,
    pub channel: Channel,
    pub license_status: LicenseStatus,
    /// `OfflineInstallationId`, what `slmgr.vbs /dti` shows for phone activation.
    pub installation_id: Option<String>,
    /// `GracePeriodRemaining`, minutes. Volatile.
    pub grace_minutes: u32,
    /// `KeyManagementServiceCurrentCount`: distinct clients the KMS host counts now; `None` where
    /// CIM says -1 (not a KMS host for this product, or no request yet). Volatile.
    #[serde(default)]
    pub current_count: Option<u32>,
    /// `RequiredClientCount`: the count this KMS host product needs before it activates clients;
    /// `None` when the product is not a KMS host.
    #[serde(default)]
    pub required_count: Option<u32>,
    /// The cumulative request counters of this KMS host product (`slmgr.vbs /dli`). Volatile.
    #[serde(default)]
    pub requests: RequestCounters,
    /// `Description` (`Windows(R) Operating System, VOLUME_KMS_WS22 channel`): for a KMS host key,
    /// the channel text that tells which clients it activates (`kmsconf_model::coverage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `KeyManagementServiceTotalRequests`, `...FailedRequests` and the per-license-status request
/// counters: what clients asked since the counters were last reset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestCounters {
    pub total: u64,
    pub failed: u64,
    pub unlicensed: u64,
    pub licensed: u64,
    pub initial_grace: u64,
    pub out_of_tolerance_grace: u64,
    pub non_genuine_grace: u64,
    pub notification: u64,
}

impl RequestCounters {
    /// Counts one request from a client in `status`.
    pub fn record(&mut self, status: LicenseStatus, failed: bool) {
        self.total += 1;
        if failed {
            self.failed += 1;
        }
        match status {
            LicenseStatus::Unlicensed => self.unlicensed += 1,
            LicenseStatus::Licensed => self.licensed += 1,
            LicenseStatus::InitialGrace => self.initial_grace += 1,
            LicenseStatus::OutOfToleranceGrace | LicenseStatus::ExtendedGrace => {
                self.out_of_tolerance_grace += 1
            }
            LicenseStatus::NonGenuineGrace => self.non_genuine_grace += 1,
            LicenseStatus::Notification => self.notification += 1,
        }
    }
}

/// Whether `value` is a GUID as CIM writes one: 8-4-4-4-12 hex digits, braces allowed.
fn is_guid(value: &str) -> bool {
    let bare = value
        .strip_prefix('{')
        .and_then(|v| v.strip_suffix('}'))
        .unwrap_or(value);
    let groups: Vec<&str> = bare.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `Ok` when `value` is absent or `valid`; else what is wrong with property `property`.
fn check(
    property: &'static str,
    value: Option<&str>,
    valid: fn(&str) -> bool,
    expected: &'static str,
) -> Result<(), ProtocolValue> {
    match value {
        Some(v) if !valid(v) => Err(ProtocolValue {
            property,
            value: v.to_string(),
            expected,
        }),
        _ => Ok(()),
    }
}

impl HostState {
    /// Refuses a state holding a value the licensing service never reports: a client machine
    /// ID or activation ID that is no GUID, a partial key that is not five key characters, an
    /// installation ID that is not 63 digits. What a host says is shown, planned and put in a
    /// pull-request comment, so it is checked where it is read (discovery, a saved plan).
    pub fn check_protocol(&self) -> Result<(), ProtocolValue> {
        check(
            "ClientMachineID",
            self.client_machine_id.as_deref(),
            is_guid,
            "a GUID",
        )?;
        self.products
            .values()
            .try_for_each(ProductState::check_protocol)
    }
}

impl ProductState {
    /// See [`HostState::check_protocol`].
    pub fn check_protocol(&self) -> Result<(), ProtocolValue> {
        check("ID", self.activation_id.as_deref(), is_guid, "a GUID")?;
        check(
            "PartialProductKey",
            self.partial_key.as_deref(),
            |k| k.len() == 5 && k.bytes().all(|b| b.is_ascii_alphanumeric()),
            "the last five characters of a product key",
        )?;
        check(
            "OfflineInstallationId",
            self.installation_id.as_deref(),
            // bare as CIM sends it, or in the groups `slmgr.vbs /dti` shows
            |i| {
                i.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                    && i.bytes().filter(u8::is_ascii_digit).count() == 63
            },
            "an installation ID of 63 digits",
        )
    }

    /// A product with nothing installed yet (a license pack only).
    pub fn empty() -> Self {
        Self {
            activation_id: None,
            partial_key: None,
            channel: Channel::None,
            license_status: LicenseStatus::Unlicensed,
            installation_id: None,
            grace_minutes: 0,
            current_count: None,
            required_count: None,
            requests: RequestCounters::default(),
            description: None,
        }
    }

    /// An installed and activated KMS host key (`IsKeyManagementServiceMachine`).
    pub fn is_activated_kms_host(&self) -> bool {
        self.channel == Channel::KmsHost && self.license_status == LicenseStatus::Licensed
    }
}

/// The key channel, from `ProductKeyChannel` / `Description`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// `Volume:CSVLK`, description `VOLUME_KMS`: a KMS host key.
    KmsHost,
    /// `Volume:GVLK`, description `VOLUME_KMSCLIENT`: a public KMS client setup key.
    KmsClient,
    Mak,
    Retail,
    /// No key installed.
    None,
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::KmsHost => "KMS host key",
            Self::KmsClient => "KMS client key",
            Self::Mak => "MAK",
            Self::Retail => "retail key",
            Self::None => "no key",
        })
    }
}

/// `LicenseStatus` 0..=6, in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LicenseStatus {
    Unlicensed,
    Licensed,
    InitialGrace,
    OutOfToleranceGrace,
    NonGenuineGrace,
    Notification,
    ExtendedGrace,
}

impl LicenseStatus {
    pub fn from_cim(value: u32) -> Option<Self> {
        Some(match value {
            0 => Self::Unlicensed,
            1 => Self::Licensed,
            2 => Self::InitialGrace,
            3 => Self::OutOfToleranceGrace,
            4 => Self::NonGenuineGrace,
            5 => Self::Notification,
            6 => Self::ExtendedGrace,
            _ => return None,
        })
    }

    pub fn word(self) -> &'static str {
        match self {
            Self::Unlicensed => "unlicensed",
            Self::Licensed => "licensed",
            Self::InitialGrace => "initial-grace",
            Self::OutOfToleranceGrace => "out-of-tolerance-grace",
            Self::NonGenuineGrace => "non-genuine-grace",
            Self::Notification => "notification",
            Self::ExtendedGrace => "extended-grace",
        }
    }
}

impl fmt::Display for LicenseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

impl HostState {
    /// A Windows Server as installed from volume media: the public KMS client key of Windows
    /// Server 2022 Datacenter (`...-6VM33`, from Microsoft's published table), in its initial
    /// grace period; firewall rule groups off; every KMS setting at Windows' default.
    pub fn fresh_windows_server(computer_name: &str) -> Self {
        let windows = ProductState {
            activation_id: None,
            partial_key: Some("6VM33".into()),
            channel: Channel::KmsClient,
            license_status: LicenseStatus::InitialGrace,
            installation_id: None,
            grace_minutes: 43200,
            current_count: None,
            required_count: None,
            requests: RequestCounters::default(),
            description: None,
        };
        Self {
            computer_name: computer_name.to_string(),
            os: "Windows Server 2022 Datacenter".into(),
            service: ServiceState::windows_default(),
            firewall: FirewallState::windows_default(),
            products: [(ProductId::Windows, windows)].into_iter().collect(),
            license_packs: BTreeSet::new(),
            clock: None,
            client_machine_id: None,
            remaining_rearm_count: None,
            os_sku: Some(8),
            os_build: Some(20348),
            readings: HostReadings::default(),
        }
    }

    /// The state without what changes by itself over time (clock, counts, request counters,
    /// grace minutes): what a saved plan must still match when it is applied.
    pub fn stable(&self) -> Self {
        let mut s = self.clone();
        s.clock = None;
        for p in s.products.values_mut() {
            p.grace_minutes = 0;
            p.current_count = None;
            p.requests = RequestCounters::default();
        }
        s
    }

    /// Whether a KMS host key is installed for any product: what slmgr.vbs checks
    /// (`IsKeyManagementServiceMachine` of a keyed product) before it sets a KMS setting.
    pub fn has_kms_host_key(&self) -> bool {
        self.products
            .values()
            .any(|p| p.partial_key.is_some() && p.channel == Channel::KmsHost)
    }

    /// The Windows product as a KMS host, if it is an activated one.
    pub fn windows_is_activated_kms_host(&self) -> bool {
        self.products
            .get(&ProductId::Windows)
            .is_some_and(ProductState::is_activated_kms_host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_states_are_tagged_with_their_kind() {
        let dns = EntryState::DnsServer(crate::dns::DnsState::default());
        let text = serde_json::to_string(&dns).expect("json");
        assert_eq!(text, r#"{"kind":"dns_server","state":{"zones":{}}}"#);
        assert_eq!(
            serde_json::from_str::<EntryState>(&text).expect("back"),
            dns
        );
        let host = EntryState::KmsHost(HostState::fresh_windows_server("KMS01"));
        let text = serde_json::to_string(&host).expect("json");
        assert!(
            text.starts_with(r#"{"kind":"kms_host","state":{"#),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<EntryState>(&text).expect("back"),
            host
        );
        // the untagged form of format version 1 is refused, not guessed at
        let untagged = serde_json::to_string(&HostState::fresh_windows_server("K")).expect("j");
        assert!(serde_json::from_str::<EntryState>(&untagged).is_err());
    }
}
