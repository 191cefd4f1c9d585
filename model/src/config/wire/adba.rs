//! `[active_directory]`: the Active Directory forest whose activation objects kmsconf keeps
//! (Active Directory-based activation), as written.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{At, SecretWire};

/// Active Directory-based activation: the directory kmsconf reads the activation objects from
/// (over LDAP, SASL GSSAPI with signing), and the objects it declares.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActiveDirectoryWire {
    /// `ldap://host[:port]` of a domain controller (port 389); absent = a domain controller of
    /// the bind principal's realm, from its `_ldap._tcp.dc._msdcs` SRV records (asked of `[dns]
    /// server`, else of the system's DNS server).
    pub server: Option<At<String>>,
    /// The Kerberos credentials kmsconf binds with; absent = the default credential cache.
    pub gss: Option<At<AdGssWire>>,
    /// true: delete (by exact DN) the activation objects no `activation_objects` entry
    /// declares; false (default): report them and leave them alone.
    #[serde(default)]
    pub exclusive: bool,
    /// The activation objects the forest should hold.
    #[serde(default)]
    pub activation_objects: Vec<At<ActivationObjectWire>>,
}

/// Whose Kerberos credentials bind to the directory.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdGssWire {
    /// The client principal (`svc-kmsconf@CORP.EXAMPLE`); default: the default credential
    /// cache's principal. Required with `keytab`.
    pub principal: Option<At<String>>,
    /// A keytab holding `principal`'s keys, instead of the cache: `{ file = "path" }`.
    pub keytab: Option<At<SecretWire>>,
}

/// One activation object: created by the `via` host's licensing service from the CSVLK.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivationObjectWire {
    /// The object's display name (`WS2025 CSVLK`).
    #[schemars(length(min = 1, max = 64))]
    pub name: At<String>,
    /// The KMS host key (CSVLK): `{ env = "VAR" }` or `{ file = "path" }`; never shown, its
    /// last five characters identify the object.
    pub host_key: At<SecretWire>,
    /// The declared Windows host (`[hosts.NAME]`) whose licensing service creates the object.
    pub via: At<String>,
    /// `online` (default) or `phone` (with `confirmation_id`).
    #[serde(default)]
    pub activation: AdActivation,
    /// The confirmation ID from the activation phone line: `{ env = "VAR" }` or
    /// `{ file = "path" }`; `activation = "phone"` only.
    pub confirmation_id: Option<At<SecretWire>>,
}

/// How an activation object is activated with Microsoft.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AdActivation {
    /// Over the internet (`slmgr.vbs /ad-activation-online KEY NAME`).
    #[default]
    Online,
    /// By phone: the installation ID out (`/ad-activation-get-iid KEY`), the confirmation ID in
    /// (`/ad-activation-apply-cid KEY CID NAME`).
    Phone,
}

impl AdActivation {
    pub fn id(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Phone => "phone",
        }
    }
}
