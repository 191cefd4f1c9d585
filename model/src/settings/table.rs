//! The rows: one per KMS service setting. Sources: Microsoft's `SoftwareLicensingService` class
//! reference (methods and properties), the Volume Activation Technical Reference (registry values
//! and the minute interval range WMI enforces, [`INTERVAL_RANGE`]), and `slmgr.vbs` itself (its switches,
//! and which of them warn that the Software Protection service must restart); see
//! `kms-facts.md`.

use super::{
    CimMethod, Kind, OnRetire, RegistryKind, RegistryValue, Setting, SettingValue, Shown, Slmgr,
    ValueRange, Write,
};
use crate::config::{INTERVAL_RANGE, PORT_RANGE};

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
    refused_by_windows: true,
};

/// Every KMS service setting, in the order the config, plans, export and status list them.
pub static SETTINGS: &[Setting] = &[
    Setting {
        key: "port",
        kind: Kind::U16,
        meaning: "a TCP port",
        range: Some(ValueRange {
            min: *PORT_RANGE.start(),
            max: *PORT_RANGE.end(),
            unit: "",
            refused_by_windows: false,
        }),
        desired: |c| c.port.map(SettingValue::U16),
        current: |s| SettingValue::U16(s.effective_port()),
        store: |s, v| {
            if let SettingValue::U16(p) = v {
                s.port = p;
            }
        },
        write: Write::Method {
            method: CimMethod {
                name: "SetKeyManagementServiceListeningPort",
                argument: "PortNumber",
                inverted: false,
            },
            slmgr: Slmgr::Value("/sprt"),
            registry: Some(RegistryValue {
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
        kind: Kind::Bool,
        meaning: "true or false",
        range: None,
        desired: |c| c.dns_publishing.map(SettingValue::Bool),
        current: |s| SettingValue::Bool(s.dns_publishing),
        store: |s, v| {
            if let SettingValue::Bool(b) = v {
                s.dns_publishing = b;
            }
        },
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
        kind: Kind::List,
        meaning: "a list of `domain, priority, weight` entries",
        range: None,
        desired: |c| c.publish_domains.clone().map(SettingValue::List),
        current: |s| SettingValue::List(s.publish_domains.clone()),
        store: |s, v| {
            if let SettingValue::List(list) = v {
                s.publish_domains = list;
            }
        },
        // `/sdns` takes no domain list: this registry value is the only way to publish to
        // several domains
        write: Write::Registry(RegistryValue {
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
        exported: |s| s.dns_publishing || !s.publish_domains.is_empty(),
        on_retire: OnRetire::Set(SettingValue::List(Vec::new())),
    },
    Setting {
        key: "low_priority",
        kind: Kind::Bool,
        meaning: "true or false",
        range: None,
        desired: |c| c.low_priority.map(SettingValue::Bool),
        current: |s| SettingValue::Bool(s.low_priority),
        store: |s, v| {
            if let SettingValue::Bool(b) = v {
                s.low_priority = b;
            }
        },
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
        kind: Kind::U32,
        meaning: "a number of minutes",
        range: Some(INTERVAL),
        desired: |c| c.activation_interval.map(SettingValue::U32),
        current: |s| SettingValue::U32(s.activation_interval),
        store: |s, v| {
            if let SettingValue::U32(m) = v {
                s.activation_interval = m;
            }
        },
        write: Write::Method {
            method: CimMethod {
                name: "SetVLActivationInterval",
                argument: "ActivationInterval",
                inverted: false,
            },
            slmgr: Slmgr::Value("/sai"),
            registry: None,
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
        kind: Kind::U32,
        meaning: "a number of minutes",
        range: Some(INTERVAL),
        desired: |c| c.renewal_interval.map(SettingValue::U32),
        current: |s| SettingValue::U32(s.renewal_interval),
        store: |s, v| {
            if let SettingValue::U32(m) = v {
                s.renewal_interval = m;
            }
        },
        write: Write::Method {
            method: CimMethod {
                name: "SetVLRenewalInterval",
                argument: "RenewalInterval",
                inverted: false,
            },
            slmgr: Slmgr::Value("/sri"),
            registry: None,
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
        kind: Kind::Bool,
        meaning: "true or false",
        range: None,
        desired: |c| c.host_caching.map(SettingValue::Bool),
        current: |s| SettingValue::Bool(s.host_caching),
        store: |s, v| {
            if let SettingValue::Bool(b) = v {
                s.host_caching = b;
            }
        },
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
