//! The configuration model: TOML -> wire types (with spans) -> validated domain types.
//!
//! Loading collects every error it can find (each as `FILE:LINE:COL: message`) rather than
//! stopping at the first, so one `kmsconf validate` run shows the whole list.

mod activation_ids;
mod adba;
mod validate;
mod winrm;
pub mod wire;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::error::{HostNameError, TargetError, TimeoutOutOfRange};
pub use crate::settings::{
    PublishDomain, DEFAULT_ACTIVATION_INTERVAL, DEFAULT_PORT, DEFAULT_RENEWAL_INTERVAL,
    INTERVAL_RANGE, PORT_RANGE,
};
use crate::settings::{Setting, SettingValue};
use crate::Error;
pub use activation_ids::{ActivationNames, AskedFor};
pub use adba::{AdActivation, AdConfig, AdObjectConfig, LdapServer, LDAP_PORT};
use kmsconf_engine::diagnostic::{Diagnostic, Location, Severity};
use kmsconf_engine::secret::DeclaredSecret;
pub use winrm::{
    default_winrm_port, OperationTimeout, WinRmSettings, WINRM_HTTPS_PORT, WINRM_HTTP_PORT,
    WINRM_PASSWORD_VARIABLE,
};
pub use wire::{
    Activation, HostLifecycle, ProductId, Profile, RuleGroup, TsigAlgorithm, WinRmAuth,
};

/// The default config file name, looked up in the current directory.
pub const DEFAULT_FILE: &str = "kmsconf.toml";

/// A loaded, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file as given on the command line.
    pub path: PathBuf,
    /// The directory relative paths in the file are taken from.
    pub dir: PathBuf,
    pub hosts: BTreeMap<String, HostConfig>,
    /// The DNS server and zones where the published hosts' SRV records are kept.
    pub dns: Option<DnsConfig>,
    /// Active Directory-based activation: the forest's activation objects.
    pub active_directory: Option<AdConfig>,
    /// `[fleet]`: the clients the hosts must activate; `None` when the config does not say.
    pub fleet: Option<FleetConfig>,
    /// Warnings found while loading (literal secrets, settings that have no effect).
    pub warnings: Vec<Diagnostic>,
}

/// `[fleet]`: what the KMS hosts serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetConfig {
    /// Client family ids of the coverage table, as written, without repeats.
    pub clients: Vec<String>,
    /// `[fleet.activation_ids]`: what the clients asking with each activation ID are.
    pub activation_ids: ActivationNames,
}

/// The desired state of one host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub name: String,
    pub target: TargetSpec,
    pub address: Option<String>,
    /// A KMS host (`present`), or one to retire (`retired`, which declares nothing else).
    pub state: HostLifecycle,
    pub depends_on: Vec<String>,
    pub service: ServiceConfig,
    pub firewall: Option<FirewallConfig>,
    pub products: BTreeMap<ProductId, ProductConfig>,
    /// Present = the host is published in the `_vlmcs._tcp` SRV record of every `[dns]` zone.
    pub dns: Option<HostDnsConfig>,
    /// Where the host's table starts, for messages about the host as a whole.
    pub declared_at: Location,
}

impl HostConfig {
    /// Whether the host is declared `state = "retired"`.
    pub fn is_retired(&self) -> bool {
        self.state == HostLifecycle::Retired
    }

    /// The port KMS clients reach this host on: the managed `[service] port`, else Windows'
    /// default.
    pub fn kms_port(&self) -> u16 {
        self.service.port().unwrap_or(DEFAULT_PORT)
    }
}

/// The DNS server kmsconf sends RFC 2136 updates to, and the zones it manages there.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// `host[:port]` as written (port 53 when absent); resolved when contacted.
    pub server: String,
    /// Zone names, lowercase, without the trailing dot, in the order written.
    pub zones: Vec<String>,
    pub ttl: u32,
    /// kmsconf owns the whole `_vlmcs._tcp` RRset of each zone.
    pub exclusive: bool,
    /// `None` with `gss_tsig` or `insecure_updates = true`.
    pub tsig: Option<TsigKey>,
    /// GSS-TSIG (Kerberos) signing; never together with `tsig`.
    pub gss_tsig: Option<GssTsig>,
    /// Read the A/AAAA records of the published hosts' addresses.
    pub check_targets: bool,
}

/// The default TTL of the SRV records kmsconf writes, seconds.
pub const DEFAULT_DNS_TTL: u32 = 3600;
/// The largest TTL DNS allows (RFC 2181 section 8).
pub const MAX_DNS_TTL: u32 = 2_147_483_647;
/// The name of the plan entry that stands for the DNS server.
pub const DNS_PLAN_HOST: &str = "dns";
/// The name of the plan entry that stands for the directory of `[active_directory]`.
pub const AD_PLAN_HOST: &str = "active_directory";

/// A TSIG key: name, algorithm and where its secret is read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TsigKey {
    /// Lowercase, without the trailing dot.
    pub name: String,
    pub algorithm: TsigAlgorithm,
    pub secret: DeclaredSecret,
}

/// GSS-TSIG (Kerberos) signing: the server principal (`None`: `DNS/<SOA primary name>`) and,
/// with a keytab, the client principal whose keys it holds; with neither, the default credential
/// cache's principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GssTsig {
    pub server_principal: Option<String>,
    pub principal: Option<String>,
    /// Always a `{ file = ... }` reference: GSS-API reads the keytab itself, kmsconf never does.
    pub keytab: Option<DeclaredSecret>,
}

/// How one host is published in the SRV records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostDnsConfig {
    pub priority: u16,
    pub weight: u16,
}

/// How kmsconf reaches a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetSpec {
    /// A simulated host in a JSON state file (absolute path once loaded).
    Lab { path: PathBuf },
    /// The machine kmsconf runs on.
    Local,
    /// A Windows host reached through its OpenSSH server.
    Ssh {
        user: Option<String>,
        host: String,
        port: Option<u16>,
    },
    /// A Windows host reached over WinRM as `user` (`DOMAIN\user` or `user@domain`):
    /// `winrm://` (HTTP, every message sealed) or `winrm+https://` (TLS); `port` as written,
    /// [`default_winrm_port`] when absent.
    #[serde(rename = "winrm")]
    WinRm {
        https: bool,
        user: String,
        host: String,
        port: Option<u16>,
        winrm: Box<WinRmSettings>,
    },
    /// The DNS server of `[dns]` (`host[:port]`), which stands in a plan as one more host.
    Dns { server: String },
    /// The directory of `[active_directory]` (`host:port` of a domain controller; `None`: one
    /// found from the `_ldap._tcp.dc._msdcs` SRV records of the bind identity's domain, asked of
    /// `dns`, `host:port` of `[dns] server`, or `None` for the system's resolver), which stands
    /// in a plan as one more entry, and the Kerberos client that binds to it (`None`: the
    /// default credential cache's principal; the keytab is a path GSS-API reads).
    #[serde(rename = "active_directory")]
    ActiveDirectory {
        server: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dns: Option<String>,
        principal: Option<String>,
        keytab: Option<PathBuf>,
    },
    /// A host that answers from a recording made with `KMSCONF_RECORD` (absolute path once
    /// loaded): the recorded run again, and nothing else.
    Replay { path: PathBuf },
}

impl TargetSpec {
    /// Reads a target as a config in `dir` would hold it (`lab:` and `replay:` paths are
    /// relative to `dir`).
    /// `local` is refused on anything but Windows.
    pub fn parse(text: &str, dir: &Path) -> Result<Self, TargetError> {
        validate::target_from_text(text, dir)
    }

    /// The target as a config in `base` would write it: lab and replay paths relative to `base`.
    pub fn relative_to(&self, base: &Path) -> String {
        match self {
            Self::Lab { path } => {
                let shown = path.strip_prefix(base).unwrap_or(path);
                format!("lab:{}", shown.display())
            }
            Self::Replay { path } => {
                let shown = path.strip_prefix(base).unwrap_or(path);
                format!("replay:{}", shown.display())
            }
            other => other.to_string(),
        }
    }
}

impl fmt::Display for TargetSpec {
    /// The URL form, as a config writes it (a WinRM target's settings, password included, are
    /// not part of it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lab { path } => write!(f, "lab:{}", path.display()),
            Self::Local => f.write_str("local"),
            Self::Ssh { user, host, port } => {
                f.write_str("ssh://")?;
                write_authority(f, user.as_deref(), host, *port)
            }
            Self::WinRm {
                https,
                user,
                host,
                port,
                ..
            } => {
                f.write_str(if *https { "winrm+https://" } else { "winrm://" })?;
                write_authority(f, Some(user), host, *port)
            }
            Self::Dns { server } => write!(f, "dns:{server}"),
            Self::ActiveDirectory {
                server: Some(server),
                ..
            } => write!(f, "ldap://{server}"),
            Self::ActiveDirectory { server: None, .. } => {
                f.write_str("ldap:// (a domain controller found by DNS SRV records)")
            }
            Self::Replay { path } => write!(f, "replay:{}", path.display()),
        }
    }
}

/// `[user@]host[:port]`, an IPv6 host in brackets.
fn write_authority(
    f: &mut fmt::Formatter<'_>,
    user: Option<&str>,
    host: &str,
    port: Option<u16>,
) -> fmt::Result {
    if let Some(u) = user {
        write!(f, "{u}@")?;
    }
    if host.contains(':') {
        write!(f, "[{host}]")?;
    } else {
        f.write_str(host)?;
    }
    if let Some(p) = port {
        write!(f, ":{p}")?;
    }
    Ok(())
}

/// Managed KMS service settings by row; a row not here is left as the host has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceConfig {
    values: BTreeMap<&'static str, SettingValue>,
}

impl ServiceConfig {
    /// The value the config asks for `row`; `None` = not managed.
    pub fn desired(&self, row: &Setting) -> Option<&SettingValue> {
        self.values.get(row.key)
    }

    /// Manages `row` at `value` (of the row's kind: validation made it so).
    pub(crate) fn insert(&mut self, row: &'static Setting, value: SettingValue) {
        self.values.insert(row.key, value);
    }

    /// The managed `port`.
    pub fn port(&self) -> Option<u16> {
        match self.values.get("port") {
            Some(SettingValue::U16(port)) => Some(*port),
            _ => None,
        }
    }

    /// The managed `dns_publishing`.
    pub fn dns_publishing(&self) -> Option<bool> {
        match self.values.get("dns_publishing") {
            Some(SettingValue::Bool(on)) => Some(*on),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallConfig {
    pub rule_groups: Vec<RuleGroup>,
    /// Scope of the Key Management Service rules; `None` = each rule keeps the scope it has.
    pub remote_addresses: Option<Vec<String>>,
    /// The profiles every managed rule group (and the KMS port rule) is opened on, sorted;
    /// [`DEFAULT_PROFILES`] unless the config says otherwise.
    pub profiles: Vec<Profile>,
}

/// The profiles the rule groups are opened on when the config does not say: Domain and Private, as
/// Microsoft's "Create a KMS activation host" does; Public stays closed.
pub const DEFAULT_PROFILES: [Profile; 2] = [Profile::Domain, Profile::Private];

#[derive(Debug, Clone)]
pub struct ProductConfig {
    pub host_key: DeclaredSecret,
    /// The license pack as written in the config.
    pub license_pack: Option<String>,
    /// Where the pack is read from: for a lab host (whose disk is this machine's) relative to the
    /// config's directory, like its state file; for a Windows host the path on that host, as
    /// written.
    pub license_pack_path: Option<PathBuf>,
    pub activation: Activation,
    pub confirmation_id: Option<DeclaredSecret>,
}

/// Whether `c` may appear in a host name (`[hosts.NAME]`): ASCII letters, digits, `-`, `_`, `.`.
pub fn is_host_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Checks a host name as the config and `kmsconf export --name` take it; `Err` says why not.
pub fn check_host_name(name: &str) -> Result<(), HostNameError> {
    if !name.is_empty() && name.chars().all(is_host_name_char) {
        Ok(())
    } else {
        Err(HostNameError { name: name.into() })
    }
}

/// A config of 10,000 hosts is about 2 MiB; anything far larger is not a config.
pub const CONFIG_LIMIT: kmsconf_engine::read::Limit = kmsconf_engine::read::Limit {
    what: "a config file",
    bytes: 16 << 20,
};

impl Config {
    /// `[fleet.activation_ids]`, empty when the config has none.
    pub fn activation_names(&self) -> &ActivationNames {
        self.fleet
            .as_ref()
            .map_or(ActivationNames::none(), |f| &f.activation_ids)
    }

    /// Reads and validates a config file. Errors hold every problem found, in file order.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let bytes = kmsconf_engine::read::read_bounded(path, CONFIG_LIMIT)?;
        let source = String::from_utf8(bytes).map_err(|e| {
            // the place of the first byte that is not UTF-8, as every other config error has
            let valid = e.utf8_error().valid_up_to();
            let text = std::str::from_utf8(&e.as_bytes()[..valid]).unwrap_or_default();
            let at = Location::at(path, text, valid);
            Error::Invalid(vec![Diagnostic::error(
                at,
                "the config is not valid UTF-8 text (TOML files are UTF-8)",
            )])
        })?;
        Self::parse(path, &source)
    }

    /// Validates `source` as if read from `path` (which names the file in messages and anchors
    /// relative paths).
    pub fn parse(path: &Path, source: &str) -> Result<Config, Error> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        let (config, mut diagnostics) = validate::validate(path, &dir, source);
        diagnostics.sort_by(|a, b| {
            a.location
                .cmp(&b.location)
                .then(a.severity.cmp(&b.severity))
        });
        let (errors, warnings): (Vec<_>, Vec<_>) = diagnostics
            .into_iter()
            .partition(|d| d.severity == Severity::Error);
        match config {
            Some((hosts, dns, active_directory, fleet)) if errors.is_empty() => Ok(Config {
                path: path.to_path_buf(),
                dir,
                hosts,
                dns,
                active_directory,
                fleet,
                warnings,
            }),
            _ => Err(Error::Invalid(errors.into_iter().chain(warnings).collect())),
        }
    }

    /// The hosts in the order they must be converged (dependencies first, then by name).
    pub fn host_order(&self) -> Result<Vec<String>, Error> {
        let deps = self
            .hosts
            .values()
            .map(|h| (h.name.clone(), h.depends_on.clone()));
        Ok(kmsconf_engine::graph::Dag::from_deps(deps)?.topological_order()?)
    }
}

/// The JSON Schema of the config file, as published in `schema/kmsconf.schema.json`.
pub fn json_schema() -> String {
    kmsconf_engine::schema::of_input::<wire::ConfigWire>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published schema must be what the config types generate: regenerate it with
    /// `cargo run -- schema > schema/kmsconf.schema.json` when this fails.
    #[test]
    fn checked_in_schema_is_up_to_date() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/kmsconf.schema.json");
        let on_disk = std::fs::read_to_string(&path).expect("schema/kmsconf.schema.json exists");
        assert!(
            on_disk == json_schema(),
            "schema/kmsconf.schema.json is stale: run `cargo run -- schema > schema/kmsconf.schema.json`"
        );
    }
}
