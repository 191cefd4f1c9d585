//! The `[hosts.NAME.winrm]` table as written: how kmsconf logs on to a `winrm://` or
//! `winrm+https://` host.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{At, SecretReferenceWire, SecretWire};

/// How kmsconf logs on to a host reached over WinRM (`winrm://` or `winrm+https://`) as the
/// account its target names.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = credential_rules)]
pub struct WinRmWire {
    /// The password of the target's account: `{ env = "VAR" }` or `{ file = "path" }`; a literal
    /// is refused, since a saved plan carries the target's settings. Required with `ntlm` and
    /// `basic`; without it `kerberos` and `negotiate` use a Kerberos ticket: from `keytab`, or
    /// from the credential cache (`KRB5CCNAME`, else the default cache).
    #[schemars(with = "Option<SecretReferenceWire>")]
    pub password: Option<At<SecretWire>>,
    /// `negotiate` (default: Kerberos where the account's realm has a KDC, else NTLM), `ntlm`,
    /// `kerberos`, or `basic` (only with `winrm+https://`: Basic sends the password in clear).
    pub auth: Option<At<WinRmAuth>>,
    /// PEM file of the certificate authorities trusted for `winrm+https://`, relative to this
    /// file; default the system's roots. Not with `winrm://`, which has no TLS.
    #[schemars(regex(pattern = r"\S"))]
    pub ca_file: Option<At<String>>,
    /// Seconds the host may hold one Receive before answering that nothing came (WS-Management
    /// `OperationTimeout`), 1..=3600; default 20, as pywinrm and pypsrp use.
    #[schemars(range(min = 1, max = 3600))]
    pub operation_timeout: Option<At<i64>>,
    /// The Kerberos principal to log on as without a password (`svc-kmsconf@CORP.EXAMPLE`):
    /// whose ticket is taken from the credential cache, or whose keys `keytab` holds. Default:
    /// the cache's own principal. Not with `ntlm` or `basic`, nor with `password`.
    pub principal: Option<At<String>>,
    /// A keytab to take `principal`'s credentials from instead of the cache:
    /// `{ file = "path" }`, relative to this file. Needs `principal`; not with `password`.
    /// Kerberos reads it; kmsconf never does.
    #[schemars(with = "Option<SecretReferenceWire>")]
    pub keytab: Option<At<SecretWire>>,
    /// The host's Kerberos service principal (`HTTP/kms01.corp.example`); default
    /// `HTTP/<the host as written in the target>`. Not with `basic`.
    pub service_principal: Option<At<String>>,
}

/// How kmsconf authenticates over WinRM: with the account's password, or (Kerberos and
/// Negotiate) with a Kerberos ticket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WinRmAuth {
    /// SPNEGO: Kerberos where it can be used, else NTLM, as Windows' own client does; without a
    /// password, Kerberos from a ticket.
    #[default]
    Negotiate,
    /// NTLM only.
    Ntlm,
    /// Kerberos only.
    Kerberos,
    /// HTTP Basic: a local account, over `winrm+https://` only (the service's `Auth/Basic` must
    /// be enabled).
    Basic,
}

impl WinRmAuth {
    /// The word in the config: `negotiate`.
    pub fn id(self) -> &'static str {
        match self {
            Self::Negotiate => "negotiate",
            Self::Ntlm => "ntlm",
            Self::Kerberos => "kerberos",
            Self::Basic => "basic",
        }
    }

    /// Whether the method can log on with a Kerberos ticket rather than a password.
    pub fn takes_ticket(self) -> bool {
        matches!(self, Self::Negotiate | Self::Kerberos)
    }

    /// Whether the method seals WinRM messages itself, as plain HTTP requires (Basic cannot).
    pub fn seals_messages(self) -> bool {
        self != Self::Basic
    }
}

impl std::fmt::Display for WinRmAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// The rules between a host's `target` and its `winrm` table, for editors: a WinRM target needs
/// the table, any other target has none, and over `winrm://` (HTTP) neither Basic nor `ca_file`.
pub(super) fn target_rules(schema: &mut schemars::Schema) {
    let target = |pattern: serde_json::Value| serde_json::json!({ "properties": { "target": pattern }, "required": ["target"] });
    let rules = serde_json::json!([
        {
            "if": target(serde_json::json!({ "pattern": r"^\s*winrm(\+https)?://" })),
            "then": { "required": ["winrm"] },
            "else": { "not": { "required": ["winrm"] } }
        },
        {
            "if": target(serde_json::json!({ "pattern": r"^\s*winrm://" })),
            "then": {
                "properties": {
                    "winrm": {
                        "properties": { "auth": { "not": { "const": "basic" } } },
                        "not": { "required": ["ca_file"] }
                    }
                }
            }
        }
    ]);
    schema.insert("allOf".into(), rules);
}

/// The rules between the table's credentials, for editors: `ntlm` and `basic` need `password`
/// and take no `principal` (nor `basic` a `service_principal`), `keytab` needs `principal`, and a
/// password excludes both.
fn credential_rules(schema: &mut schemars::Schema) {
    let auth = |methods: &[&str]| serde_json::json!({ "properties": { "auth": { "enum": methods } }, "required": ["auth"] });
    let rules = serde_json::json!([
        {
            "if": auth(&["ntlm", "basic"]),
            "then": { "required": ["password"], "not": { "anyOf": [ { "required": ["principal"] }, { "required": ["keytab"] } ] } }
        },
        {
            "if": auth(&["basic"]),
            "then": { "not": { "required": ["service_principal"] } }
        },
        {
            "if": { "required": ["password"] },
            "then": { "not": { "anyOf": [ { "required": ["principal"] }, { "required": ["keytab"] } ] } }
        }
    ]);
    schema.insert("allOf".into(), rules);
    schema.insert(
        "dependentRequired".into(),
        serde_json::json!({ "keytab": ["principal"] }),
    );
}
