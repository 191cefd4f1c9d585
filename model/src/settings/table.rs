//! The rows: one per KMS service setting. Sources: Microsoft's `SoftwareLicensingService` class
//! reference (methods and properties), the Volume Activation Technical Reference (registry values
//! and the minute interval range WMI enforces, [`INTERVAL_RANGE`]), and `slmgr.vbs` itself (its switches,
//! and which of them warn that the Software Protection service must restart); see
//! `kms-facts.md`.

use super::{
    CimMethod, Kind, OnRetire, RegistryKind, RegistryValue, Setting, SettingValue, Shown, Slmgr,
    ValueRange, Write,
};

/// The documented valid range of `/sai` and `/sri`, in minutes (15 minutes to 30 days).
pub const INTERVAL_RANGE: std::ops::RangeInclusive<u32> = 15..=43200;
/// The ports `/sprt` takes.
pub const PORT_RANGE: std::ops::RangeInclusive<u32> = 1..=65535;
/// Windows' defaults: `/sai` 120 minutes, `/sri` 10080 minutes (7 days), port 1688.
pub const DEFAULT_ACTIVATION_INTERVAL: u32 = 120;
pub const DEFAULT_RENEWAL_INTERVAL: u32 = 10080;
pub const DEFAULT_PORT: u16 = 1688;

const SWITCH: (&str, &str) = ("on", "off");

const fn shown(field: &'static str, label: &'static str, unit: &'static str) -> Shown {
    Shown {
        field,
        label,
        unit,
        words: SWITCH,
        words_in_json: false,
    }
}

const INTERVAL: ValueRange = ValueRange {
    min: *INTERVAL_RANGE.start(),
    max: *INTERVAL_RANGE.end(),
    unit: " minutes",
    max_in_words: Some("30 days"),
    refused_by_windows: true,
};

/// Every KMS service setting, in the order the config, plans, export and status list them.
pub static SETTINGS: &[Setting] = &[
    Setting {
        key: "port",
        description:
            "TCP port the KMS host listens on (`slmgr.vbs /sprt`); Windows' default is 1688.",
        kind: Kind::U16,
        meaning: "a TCP port",
        range: Some(ValueRange {
            min: *PORT_RANGE.start(),
            max: *PORT_RANGE.end(),
            unit: "",
            max_in_words: None,
            refused_by_windows: false,
        }),
        default: SettingValue::U16(0),
        default_in_effect: Some(SettingValue::U16(DEFAULT_PORT)),
        write: Write::Method {
            method: CimMethod {
                name: "SetKeyManagementServiceListeningPort",
                argument: "PortNumber",
                inverted: false,
            },
            slmgr: Slmgr::Value("/sprt"),
            registry: Some(RegistryValue {
                key: "spp",
                name: "KeyManagementServiceListeningPort",
                kind: RegistryKind::Sz,
                inverted: false,
            }),
        },
        property: Some("KeyManagementServiceListeningPort"),
        needs_restart: true,
        needs_kms_host_key: true,
        status: shown("port", "port", ""),
        exported: |_| true,
        on_retire: OnRetire::Clear,
    },
    Setting {
        key: "dns_publishing",
        description: "Publish the `_vlmcs._tcp` SRV record in DNS (`/sdns` true, `/cdns` false).",
        kind: Kind::Bool,
        meaning: "true or false",
        range: None,
        default: SettingValue::Bool(true),
        default_in_effect: None,
        write: Write::Method {
            method: CimMethod {
                name: "DisableKeyManagementServiceDnsPublishing",
                argument: "DisablePublishing",
                inverted: true,
            },
            slmgr: Slmgr::Switch {
                on: "/sdns",
                off: "/cdns",
            },
            registry: Some(RegistryValue {
                key: "spp",
                name: "DisableDnsPublishing",
                kind: RegistryKind::Dword,
                inverted: true,
            }),
        },
        property: Some("KeyManagementServiceDnsPublishing"),
        needs_restart: true,
        needs_kms_host_key: true,
        status: shown("dns_publishing", "DNS publishing", ""),
        exported: |_| true,
        on_retire: OnRetire::Set(SettingValue::Bool(false)),
    },
    Setting {
        key: "publish_domains",
        description: "Domains to publish in (the `DnsDomainPublishList` registry value).",
        kind: Kind::List,
        meaning: "a list of `domain, priority, weight` entries",
        range: None,
        default: SettingValue::List(Vec::new()),
        default_in_effect: None,
        // `/sdns` takes no domain list: this registry value is the only way to publish to
        // several domains
        write: Write::Registry(RegistryValue {
            key: "spp",
            name: "DnsDomainPublishList",
            kind: RegistryKind::MultiSz,
            inverted: false,
        }),
        property: None,
        needs_restart: true,
        // slmgr.vbs sets it without looking for a KMS host key
        needs_kms_host_key: false,
        status: shown("publish_domains", "", ""),
        // an empty list on a host that does not publish itself says nothing, and `validate`
        // warns that a publish list has no effect while publishing is off
        exported: |s| {
            s.value("dns_publishing") == Some(SettingValue::Bool(true))
                || s.value("publish_domains") != Some(SettingValue::List(Vec::new()))
        },
        on_retire: OnRetire::Set(SettingValue::List(Vec::new())),
    },
    Setting {
        key: "low_priority",
        description: "Run the KMS service at low priority (`slmgr.vbs /cpri` true, `/spri` false).",
        kind: Kind::Bool,
        meaning: "true or false",
        range: None,
        default: SettingValue::Bool(false),
        default_in_effect: None,
        write: Write::Method {
            method: CimMethod {
                name: "EnableKeyManagementServiceLowPriority",
                argument: "EnableLowPriority",
                inverted: false,
            },
            // `/cpri` sets low priority and `/spri` normal (slmgr.vbs reference)
            slmgr: Slmgr::Switch {
                on: "/cpri",
                off: "/spri",
            },
            registry: Some(RegistryValue {
                key: "spp",
                name: "EnableKmsLowPriority",
                kind: RegistryKind::Dword,
                inverted: false,
            }),
        },
        property: Some("KeyManagementServiceLowPriority"),
        needs_restart: true,
        needs_kms_host_key: true,
        status: Shown {
            field: "priority",
            label: "priority",
            unit: "",
            words: ("low", "normal"),
            words_in_json: true,
        },
        exported: |_| true,
        on_retire: OnRetire::Keep,
    },
    Setting {
        key: "activation_interval",
        description: "Minutes an unactivated client waits before retrying (`/sai`), 15..=43200.",
        kind: Kind::U32,
        meaning: "a number of minutes",
        range: Some(INTERVAL),
        default: SettingValue::U32(DEFAULT_ACTIVATION_INTERVAL),
        default_in_effect: None,
        write: Write::Method {
            method: CimMethod {
                name: "SetVLActivationInterval",
                argument: "ActivationInterval",
                inverted: false,
            },
            slmgr: Slmgr::Value("/sai"),
            // under SoftwareProtectionPlatform, as a Server 2012 R2 registry shows it (the Volume
            // Activation 2.0 guide's `SL` is that key's Vista name); no Microsoft page for
            // Windows 8 and later names it, so apply also verifies the value after the restart
            registry: Some(RegistryValue {
                key: "spp",
                name: "VLActivationInterval",
                kind: RegistryKind::Dword,
                inverted: false,
            }),
        },
        property: Some("VLActivationInterval"),
        // slmgr.vbs `/sai` and `/sri` print its "a KMS reboot is needed" warning too
        needs_restart: true,
        needs_kms_host_key: true,
        status: shown("activation_interval", "activation interval", " min"),
        exported: |_| true,
        on_retire: OnRetire::Keep,
    },
    Setting {
        key: "renewal_interval",
        description: "Minutes between an activated client's renewals (`/sri`), 15..=43200.",
        kind: Kind::U32,
        meaning: "a number of minutes",
        range: Some(INTERVAL),
        default: SettingValue::U32(DEFAULT_RENEWAL_INTERVAL),
        default_in_effect: None,
        write: Write::Method {
            method: CimMethod {
                name: "SetVLRenewalInterval",
                argument: "RenewalInterval",
                inverted: false,
            },
            slmgr: Slmgr::Value("/sri"),
            registry: Some(RegistryValue {
                key: "spp",
                name: "VLRenewalInterval",
                kind: RegistryKind::Dword,
                inverted: false,
            }),
        },
        property: Some("VLRenewalInterval"),
        // slmgr.vbs `/sai` and `/sri` print its "a KMS reboot is needed" warning too
        needs_restart: true,
        needs_kms_host_key: true,
        status: shown("renewal_interval", "renewal interval", " min"),
        exported: |_| true,
        on_retire: OnRetire::Keep,
    },
    Setting {
        key: "host_caching",
        description: "Let clients cache this host's address (`/skhc` true, `/ckhc` false).",
        kind: Kind::Bool,
        meaning: "true or false",
        range: None,
        default: SettingValue::Bool(true),
        default_in_effect: None,
        write: Write::Method {
            method: CimMethod {
                name: "DisableKeyManagementServiceHostCaching",
                argument: "DisableCaching",
                inverted: true,
            },
            slmgr: Slmgr::Switch {
                on: "/skhc",
                off: "/ckhc",
            },
            registry: None,
        },
        property: Some("KeyManagementServiceHostCaching"),
        needs_restart: false,
        // slmgr.vbs sets it without looking for a KMS host key
        needs_kms_host_key: false,
        status: shown("host_caching", "host caching", ""),
        exported: |_| true,
        on_retire: OnRetire::Keep,
    },
];
