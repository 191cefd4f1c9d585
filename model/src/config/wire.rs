//! The config file exactly as written: serde + schemars types with `deny_unknown_fields`.
//!
//! These types are the TOML contract and the source of `schema/kmsconf.schema.json`. They hold
//! what was written, with spans where a later check needs to point at a value; `super::validate`
//! turns them into the domain types.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;

mod adba;
mod secrets;
mod service;
mod winrm;

pub use crate::ids::{ProductId, Profile, RuleGroup};
pub use adba::{ActivationObjectWire, ActiveDirectoryWire, AdActivation, AdGssWire};

pub use secrets::{SecretReferenceWire, SecretWire};
pub use service::{PublishDomainDetail, PublishDomainWire, ServiceValueWire, ServiceWire};
pub use winrm::{WinRmAuth, WinRmWire};

/// A value with the byte range it came from in the config file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(transparent)]
pub struct At<T>(pub toml::Spanned<T>);

impl<T> At<T> {
    pub fn get(&self) -> &T {
        self.0.get_ref()
    }
    pub fn start(&self) -> usize {
        self.0.span().start
    }
}

impl<T: JsonSchema> JsonSchema for At<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

/// What [`check_host_name`](super::check_host_name) accepts, for editors: ASCII letters,
/// digits, `-`, `_` and `.`.
pub const HOST_NAME_PATTERN: &str = "^[A-Za-z0-9._-]+$";

/// The forms of `target` (the port 1..=65535; no `~`, which no shell expands), for editors.
/// A winrm target names its account (`DOMAIN\user` or `user@domain`), never a password.
pub const TARGET_PATTERN: &str = r"^\s*((lab|replay):\s*[^~\s].*|local|(ssh://(\S+@)?|winrm(\+https)?://[^\s:/@\\]+([@\\][^\s:/@\\]+)?@)(\[[0-9A-Fa-f:.]+\]|[^@:\s/\[\]]+)(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?)\s*$";

/// A kmsconf configuration file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "kmsconf configuration")]
pub struct ConfigWire {
    /// One table per KMS host; the key is the host's name.
    #[serde(default)]
    #[schemars(extend("propertyNames" = { "pattern": HOST_NAME_PATTERN }))]
    pub hosts: BTreeMap<String, HostWire>,
    /// The DNS server where kmsconf keeps the `_vlmcs._tcp` SRV records of the published hosts.
    pub dns: Option<DnsWire>,
    /// Active Directory-based activation: the activation objects of the forest.
    pub active_directory: Option<ActiveDirectoryWire>,
    /// What the KMS hosts serve: the client families `doctor` checks the host keys cover.
    pub fleet: Option<FleetWire>,
}

/// The clients the KMS hosts of this config activate.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetWire {
    /// Client families (ids of `model/data/coverage.toml`: `windows-11`, `windows-server-2025`,
    /// `office-ltsc-2024`, ...) that at least one present, licensed KMS host key must activate,
    /// on a host OS that key installs on (`doctor` check `client-coverage`).
    #[serde(default)]
    #[schemars(extend("items" = { "enum": crate::coverage::client_ids() }))]
    pub clients: Vec<At<String>>,
    /// The activation IDs your clients ask with (a client's `slmgr /dlv` shows its "Activation
    /// ID"), each named by its edition (an id of `kmsconf client-script --list-editions`) or, for
    /// a client of no listed edition, by the KMS host product that activates it (`windows`,
    /// `office-2024`). `kmsconf clients` names each client's product by this table; kmsconf
    /// ships none, as Microsoft publishes none.
    #[serde(default)]
    #[schemars(extend(
        "propertyNames" = { "pattern": GUID_PATTERN },
        "additionalProperties" = { "type": "string", "enum": super::ActivationNames::known_names() }
    ))]
    pub activation_ids: BTreeMap<At<String>, At<String>>,
}

/// An activation ID as `[fleet.activation_ids]` takes it: a GUID, braces allowed.
pub const GUID_PATTERN: &str = "^(\\{[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}\\}|[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12})$";

/// The desired state of one KMS host.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = winrm::target_rules)]
pub struct HostWire {
    /// How kmsconf reaches the host: `lab:PATH` (a simulated host in a state file, PATH relative
    /// to this config file), `replay:PATH` (a host that answers from a recording made with
    /// `KMSCONF_RECORD`, PATH relative to this config file), `local`, `ssh://[user@]host[:port]`,
    /// or over WinRM
    /// `winrm://user@host[:port]` (HTTP, messages sealed; port 5985) or
    /// `winrm+https://user@host[:port]` (port 5986), the account as `DOMAIN\user` or
    /// `user@domain`, its password in `winrm`.
    #[schemars(regex(pattern = TARGET_PATTERN))]
    pub target: At<String>,
    /// The name KMS clients use to reach this host (DNS name or IP address).
    pub address: Option<At<String>>,
    /// `present` (default): the host is a KMS host as the tables beside this key declare.
    /// `retired`: kmsconf makes it a KMS client again (stops its DNS publishing, removes its
    /// `_vlmcs._tcp` records, replaces its KMS host keys with its edition's KMS client key,
    /// closes the KMS firewall rules); a retired host declares only `target`, `address`,
    /// `depends_on` and `winrm`.
    #[serde(default)]
    pub state: HostLifecycle,
    /// Hosts that must be converged before this one.
    #[serde(default)]
    pub depends_on: Vec<At<String>>,
    /// KMS service settings; absent = not managed.
    pub service: Option<ServiceWire>,
    /// Windows Firewall rule groups; absent = not managed.
    pub firewall: Option<FirewallWire>,
    /// KMS host products by product id.
    #[serde(default)]
    pub products: BTreeMap<ProductId, ProductWire>,
    /// Present = publish this host in the `_vlmcs._tcp` SRV record of every `[dns]` zone.
    pub dns: Option<At<HostDnsWire>>,
    /// How kmsconf logs on to a `winrm://` or `winrm+https://` target; required with one, and
    /// only with one.
    pub winrm: Option<At<WinRmWire>>,
}

/// Whether a declared host is to be a KMS host or to stop being one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HostLifecycle {
    /// A KMS host, converged to what its tables declare.
    #[default]
    Present,
    /// A former KMS host, converged to a KMS client that neither publishes nor listens.
    Retired,
}

impl HostLifecycle {
    pub fn id(self) -> &'static str {
        match self {
            Self::Present => "present",
            Self::Retired => "retired",
        }
    }
}

/// The authoritative DNS server that takes RFC 2136 updates, and what kmsconf manages there.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsWire {
    /// `host[:port]` of the authoritative server (port 53 by default); IPv6 as `[addr]:port`.
    pub server: At<String>,
    /// Zones in which each published host gets an SRV record (`_vlmcs._tcp.ZONE`).
    pub zones: At<Vec<At<String>>>,
    /// TTL of the SRV records, seconds; default 3600.
    #[schemars(range(min = 0, max = 2147483647))]
    pub ttl: Option<At<i64>>,
    /// true: kmsconf owns the whole `_vlmcs._tcp` RRset and deletes records it does not declare;
    /// false (default): such records are reported and left alone.
    #[serde(default)]
    pub exclusive: bool,
    /// The TSIG key that signs updates (as `tsig-keygen` prints it).
    pub tsig: Option<At<TsigWire>>,
    /// Sign updates with GSS-TSIG (Kerberos, RFC 3645), as Active Directory-integrated zones
    /// require for secure dynamic updates; excludes `tsig`.
    pub gss_tsig: Option<At<GssTsigWire>>,
    /// Allow unsigned updates when no `tsig` is given (discouraged; a validate warning).
    pub insecure_updates: Option<At<bool>>,
    /// Also read the A/AAAA records of the published hosts' addresses and say in the plan when
    /// one has none.
    #[serde(default)]
    pub check_targets: bool,
}

/// A TSIG key: its name, algorithm and base64 secret.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TsigWire {
    /// The key name, as the server knows it (`key "NAME" { ... }` in named.conf).
    pub name: At<String>,
    /// HMAC algorithm; default `hmac-sha256`.
    #[serde(default)]
    pub algorithm: TsigAlgorithm,
    /// The base64 secret: `{ env = "VAR" }` or `{ file = "path" }`.
    pub secret: At<SecretWire>,
}

/// GSS-TSIG: whose Kerberos credentials sign the updates, and for which server principal.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GssTsigWire {
    /// The DNS server's Kerberos principal (`DNS/dc1.corp.example@CORP.EXAMPLE`); default
    /// `DNS/<the zone's SOA primary name>` in the default realm.
    pub server_principal: Option<At<String>>,
    /// The client principal (`svc-kmsconf@CORP.EXAMPLE`); default: the principal of the default
    /// credential cache (`KRB5CCNAME`), as `nsupdate -g` uses it. Required with `keytab`.
    pub principal: Option<At<String>>,
    /// A keytab to take `principal`'s credentials from instead of the cache: `{ file = "path" }`.
    pub keytab: Option<At<SecretWire>>,
}

/// TSIG HMAC algorithms kmsconf signs with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TsigAlgorithm {
    #[default]
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl TsigAlgorithm {
    pub fn id(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac-sha256",
            Self::HmacSha384 => "hmac-sha384",
            Self::HmacSha512 => "hmac-sha512",
        }
    }
}

impl fmt::Display for TsigAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// How a host is published in the `_vlmcs._tcp` SRV record; the port is the host's
/// `[service] port`, else 1688.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostDnsWire {
    /// SRV priority, 0..=65535 (lower is preferred); default 0.
    #[schemars(range(min = 0, max = 65535))]
    pub priority: Option<At<i64>>,
    /// SRV weight among hosts of the same priority, 0..=65535; default 0.
    #[schemars(range(min = 0, max = 65535))]
    pub weight: Option<At<i64>>,
}

/// Windows Firewall: rule groups to enable (others are left untouched).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FirewallWire {
    /// Rule groups that must be enabled for inbound traffic.
    #[serde(default)]
    #[schemars(extend("uniqueItems" = true))]
    pub rule_groups: Vec<At<RuleGroup>>,
    /// Remote addresses the Key Management Service rules accept (IP, CIDR, range `a-b`, or
    /// `LocalSubnet`); absent = each rule keeps the scope it has (built in: `LocalSubnet` for
    /// `SPPSVC-In-TCP`, any address for `SPPSVC-In-TCP-NoScope`).
    #[schemars(length(min = 1), extend("uniqueItems" = true))]
    pub remote_addresses: Option<At<Vec<At<String>>>>,
    /// The firewall profiles every rule group in `rule_groups` (and kmsconf's rule for a custom
    /// KMS port) is opened on: each built-in inbound rule is enabled on the listed profiles it is
    /// built for and disabled when it is built for none; absent = `["domain", "private"]` (as
    /// Microsoft's "Create a KMS activation host" does), so the Public profile stays closed unless
    /// it is listed.
    #[schemars(length(min = 1), extend("uniqueItems" = true))]
    pub profiles: Option<At<Vec<At<Profile>>>>,
}

/// One KMS host product: its host key, license pack and activation.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductWire {
    /// The KMS host key (CSVLK): `{ env = "VAR" }` or `{ file = "path" }`.
    pub host_key: At<SecretWire>,
    /// Where the host gets the product's KMS host license pack from, when it is not installed.
    #[schemars(regex(pattern = r"\S"))]
    pub license_pack: Option<At<String>>,
    /// How the host key is activated with Microsoft; default `online`.
    #[serde(default)]
    pub activation: Activation,
    /// The confirmation ID from the activation phone line (phone activation only).
    pub confirmation_id: Option<At<SecretWire>>,
}

/// How a KMS host key is activated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// Over the internet (`slmgr.vbs /ato`).
    #[default]
    Online,
    /// By phone: installation ID out (`/dti`), confirmation ID in (`/atp`).
    Phone,
    /// Install the key only.
    None,
}
