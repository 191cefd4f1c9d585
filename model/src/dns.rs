//! The DNS side of KMS: the `_vlmcs._tcp` SRV records through which KMS clients find their
//! hosts, what discovery reads of them, and the atomic zone updates a target sends.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::TsigAlgorithm;
use crate::keys::TsigSecret;

/// The owner name of the SRV RRset, relative to the zone (Microsoft's KMS DNS publishing).
pub const SRV_PREFIX: &str = "_vlmcs._tcp";

/// The owner name of the SRV RRset in `zone`: `_vlmcs._tcp.corp.example`.
pub fn srv_name(zone: &str) -> String {
    format!("{SRV_PREFIX}.{zone}")
}

/// One SRV record; names lowercase, without the trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
    pub ttl: u32,
}

impl SrvRecord {
    /// The record as the plan shows it.
    pub fn value(&self) -> Value {
        json!({
            "priority": self.priority,
            "weight": self.weight,
            "port": self.port,
            "target": self.target,
            "ttl": self.ttl,
        })
    }

    /// The record data in zone-file order: `0 100 1688 kms01.corp.example.`
    pub fn rdata(&self) -> String {
        format!(
            "{} {} {} {}.",
            self.priority, self.weight, self.port, self.target
        )
    }
}

impl fmt::Display for SrvRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (ttl {})", self.rdata(), self.ttl)
    }
}

/// What discovery read from the DNS server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsState {
    /// The `_vlmcs._tcp` RRset of each zone, sorted; empty when there is none.
    pub zones: BTreeMap<String, Vec<SrvRecord>>,
    /// With `check_targets`: the A/AAAA addresses of each published target the server answered
    /// for (empty = it has none); a target the server would not answer for is absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, Vec<String>>,
}

/// A TSIG key with its secret read, for the one place that signs.
#[derive(Clone)]
pub struct TsigCredentials {
    pub name: String,
    pub algorithm: TsigAlgorithm,
    pub secret: TsigSecret,
}

impl fmt::Debug for TsigCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TsigCredentials({} {}, <redacted>)",
            self.name, self.algorithm
        )
    }
}

/// GSS-TSIG credentials as apply uses them: the keytab is a path GSS-API reads (kmsconf never
/// reads it), so there is nothing secret here to redact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GssTsigCredentials {
    /// `None`: `DNS/<the zone's SOA primary name>` in the default realm.
    pub server_principal: Option<String>,
    /// `None`: the default credential cache's principal.
    pub principal: Option<String>,
    pub keytab: Option<PathBuf>,
}

/// One atomic RFC 2136 UPDATE of one zone's `_vlmcs._tcp` RRset.
#[derive(Debug, Clone)]
pub struct ZoneUpdate {
    pub zone: String,
    /// The RRset as the plan saw it: the update's prerequisite.
    pub expected: Vec<SrvRecord>,
    pub remove: Vec<SrvRecord>,
    pub add: Vec<SrvRecord>,
    /// `None` with `gss_tsig` or `insecure_updates = true`.
    pub tsig: Option<TsigCredentials>,
    pub gss_tsig: Option<Box<GssTsigCredentials>>,
}
