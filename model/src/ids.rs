//! The closed sets of ids the config names and the knowledge tables are keyed by (the KMS host
//! products, the firewall profiles and the firewall rule groups) and the GUID form activation IDs
//! and CMIDs take. A leaf below `config`, `facts`, `events` and `catalog`, so that config
//! validation can check a name against a knowledge table without a module cycle.

use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;

/// A Windows Firewall profile (the network a connection arrives on).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    JsonSchema,
    serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// A network where the host authenticates to its domain controller.
    Domain,
    /// A network the administrator marked private.
    Private,
    /// Any other network.
    Public,
}

impl Profile {
    pub const ALL: [Profile; 3] = [Self::Domain, Self::Private, Self::Public];

    /// The id in the config: `domain`.
    pub fn id(self) -> &'static str {
        match self {
            Self::Domain => "domain",
            Self::Private => "private",
            Self::Public => "public",
        }
    }

    /// The name Windows uses (`Set-NetFirewallRule -Profile Domain`, `netsh profile=domain`).
    pub fn windows_name(self) -> &'static str {
        match self {
            Self::Domain => "Domain",
            Self::Private => "Private",
            Self::Public => "Public",
        }
    }

    /// Reads Windows' `Profile` of a rule (`Domain, Private`, `Any`); `None` for a word it is not.
    pub fn parse_windows(text: &str) -> Option<Vec<Profile>> {
        let mut out = Vec::new();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if word.eq_ignore_ascii_case("Any") {
                return Some(Self::ALL.to_vec());
            }
            out.push(
                Self::ALL
                    .into_iter()
                    .find(|p| p.windows_name().eq_ignore_ascii_case(word))?,
            );
        }
        out.sort();
        out.dedup();
        Some(out)
    }

    /// A list as `Set-NetFirewallRule -Profile` takes it: `Domain,Private`.
    pub fn windows_list(profiles: &[Profile]) -> String {
        profiles
            .iter()
            .map(|p| p.windows_name())
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// The built-in firewall rule groups kmsconf manages, by locale-independent id.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    JsonSchema,
    serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum RuleGroup {
    /// "Key Management Service" (group `@FirewallAPI.dll,-28002`: rules `SPPSVC-In-TCP` and
    /// `SPPSVC-In-TCP-NoScope`, TCP 1688 in).
    KeyManagementService,
    /// "File and Printer Sharing" (group `@FirewallAPI.dll,-28502`: its inbound rules for SMB 445,
    /// NetBIOS 137-139, ICMP echo, the print spooler, the RPC endpoint mapper and LLMNR 5355).
    FileAndPrinterSharing,
}

impl RuleGroup {
    pub const ALL: [RuleGroup; 2] = [Self::KeyManagementService, Self::FileAndPrinterSharing];

    pub fn id(self) -> &'static str {
        match self {
            Self::KeyManagementService => "key-management-service",
            Self::FileAndPrinterSharing => "file-and-printer-sharing",
        }
    }

    /// The English display name of the group, as `netsh` and the guide use it.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::KeyManagementService => "Key Management Service",
            Self::FileAndPrinterSharing => "File and Printer Sharing",
        }
    }
}

/// KMS host products kmsconf knows.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    JsonSchema,
    serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ProductId {
    Windows,
    #[serde(rename = "office-2010")]
    Office2010,
    #[serde(rename = "office-2013")]
    Office2013,
    #[serde(rename = "office-2016")]
    Office2016,
    #[serde(rename = "office-2019")]
    Office2019,
    #[serde(rename = "office-2021")]
    Office2021,
    #[serde(rename = "office-2024")]
    Office2024,
}

impl ProductId {
    pub const ALL: [ProductId; 7] = [
        Self::Windows,
        Self::Office2010,
        Self::Office2013,
        Self::Office2016,
        Self::Office2019,
        Self::Office2021,
        Self::Office2024,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Self::Windows => "windows",
            Self::Office2010 => "office-2010",
            Self::Office2013 => "office-2013",
            Self::Office2016 => "office-2016",
            Self::Office2019 => "office-2019",
            Self::Office2021 => "office-2021",
            Self::Office2024 => "office-2024",
        }
    }

    pub fn is_office(self) -> bool {
        self != Self::Windows
    }
}

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl fmt::Display for RuleGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A GUID, 8-4-4-4-12 hex digits (braces allowed), in lower case.
pub fn guid(text: &str) -> Option<String> {
    let t = text.trim();
    let bare = t
        .strip_prefix('{')
        .and_then(|v| v.strip_suffix('}'))
        .unwrap_or(t);
    let lengths: Vec<usize> = bare.split('-').map(str::len).collect();
    let hex = bare.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    (lengths == [8, 4, 4, 4, 12] && hex).then(|| bare.to_ascii_lowercase())
}
