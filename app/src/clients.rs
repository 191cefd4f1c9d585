//! `kmsconf clients`: who asks each KMS host, from its event log. One discovery (which products
//! this host is a KMS host for) and one read of its events (12290 per request answered, 12293
//! per failed DNS publishing, the Software Protection service's state) per host; [`summarize`]
//! turns them into the clients, the distinct clients per product against the threshold, the
//! duplicate CMIDs and the clients no KMS host key of the host activates. Nothing is printed here.

mod summary;

use kmsconf_model::config::{ActivationNames, Config, HostConfig};
use kmsconf_model::events::EventQuery;
use kmsconf_model::state::{HostState, LicenseStatus};
use kmsconf_targets::{Connect, DynHostTarget};
use schemars::JsonSchema;
use serde::Serialize;

use crate::failure::{self, HostFailure};
use crate::{session, Error};

pub use summary::{day_start, summarize, unnamed, DAY};

/// The version of the `clients --json` document.
pub const FORMAT_VERSION: u32 = 1;

/// `clients --json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ClientsOutput {
    pub format_version: u32,
    /// The start of the window read, RFC 3339 (UTC).
    pub since: String,
    pub hosts: Vec<HostClients>,
    /// The activation IDs clients asked with that neither `[fleet.activation_ids]` nor the lab
    /// names (their clients' `product` is `null`), sorted, each once.
    pub unnamed_activation_ids: Vec<String>,
    /// Why the command produced no result at all (the config does not load).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<HostFailure>,
}

/// One host's clients, or why they could not be read.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct HostClients {
    pub host: String,
    /// Set when the host or its event log could not be read; the rest is then empty.
    pub error: Option<HostFailure>,
    /// The host's clock when it read its log (RFC 3339, UTC).
    pub clock: Option<String>,
    /// The Software Protection service (`sppsvc`); `None` when the host has none.
    pub service: Option<Service>,
    /// The newest request in the window (RFC 3339, UTC).
    pub last_request: Option<String>,
    /// Requests (events 12290) in the window.
    pub requests: u64,
    /// The log held more than kmsconf reads at once (20000 events or 4 MiB): older events
    /// are missing.
    pub truncated: bool,
    /// Events whose data is not what Windows writes there, not counted anywhere else.
    pub rejected_events: u64,
    /// Why, for the first few.
    pub rejections: Vec<String>,
    pub clients: Vec<Client>,
    pub products: Vec<ProductClients>,
    pub duplicates: Vec<DuplicateCmid>,
    pub uncovered: Vec<Uncovered>,
    /// Events 12293 in the window, oldest first.
    pub dns_failures: Vec<DnsFailure>,
}

/// The Software Protection service as `Win32_Service` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Service {
    pub running: bool,
    /// `Auto`, `Manual`, `Disabled`, ...
    pub start_mode: String,
    /// Not `Disabled`.
    pub set_to_start: bool,
}

/// One client: a CMID asking from one name for one license.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Client {
    pub cmid: String,
    pub fqdn: String,
    /// The KMS host product that activates what it asked for; `None` when kmsconf does not know
    /// the activation ID.
    pub product: Option<String>,
    /// The edition (`client-script --list-editions` id), when kmsconf knows it.
    pub edition: Option<String>,
    pub activation_id: String,
    pub vm: bool,
    pub license_status: LicenseStatus,
    pub minutes_to_expiry: u32,
    /// RFC 3339, UTC.
    pub last_request: String,
    pub requests: u64,
    /// What the host answered last: `0x00000000`, or the HRESULT of a refusal.
    pub last_result: String,
    /// Its CMID also asks from another name (a cloned image).
    pub duplicate: bool,
    /// No KMS host key of this host activates its product.
    pub uncovered: bool,
}

/// The distinct clients of one product against the count its clients need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ProductClients {
    /// A product id, or `unknown` for activation IDs kmsconf does not know.
    pub product: String,
    pub name: String,
    /// Distinct CMIDs the host answered with success in the window (clones count once).
    pub distinct_clients: u64,
    /// Distinct names asking: more than `distinct_clients` when images share a CMID.
    pub distinct_names: u64,
    /// The count the clients need (the highest minimum count they reported).
    pub threshold: u32,
    pub meets_threshold: bool,
    /// The count as the host keeps it (distinct CMIDs of the 30 days before), at the end of each
    /// day of the window, oldest first.
    pub daily: Vec<DayCount>,
}

/// The count at the end of one day (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct DayCount {
    /// `2026-12-06`.
    pub day: String,
    pub count: u64,
    /// Requests that day.
    pub requests: u64,
}

/// One CMID asking from two or more names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct DuplicateCmid {
    pub cmid: String,
    pub fqdns: Vec<String>,
}

/// Clients of a product no KMS host key of this host activates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Uncovered {
    pub product: String,
    pub clients: u64,
    /// The first ten names.
    pub fqdns: Vec<String>,
}

/// An activation ID that neither `[fleet.activation_ids]` nor the lab names, over every host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unnamed {
    pub activation_id: String,
    /// The clients (CMID and name) asking with it.
    pub clients: u64,
    /// The first of their names: a machine whose `slmgr /dlv` shows what the ID is.
    pub example: String,
}

/// An event 12293.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct DnsFailure {
    /// RFC 3339, UTC.
    pub at: String,
    pub code: String,
    pub domain: String,
}

/// Every selected host's clients of the last `window` seconds (by each host's clock).
pub fn run(
    config: &Config,
    only: &[String],
    connect: &Connect,
    parallelism: usize,
    window: i64,
) -> Result<Vec<HostClients>, Error> {
    let names = config.activation_names();
    session::each_host(config, only, parallelism, |host| {
        read_host(host, connect, window, names)
    })
}

/// One host's event log of the last `window` seconds, read through `target` (doctor's, which
/// has discovered the host already: one session) and summarized against `state`, its requests
/// named by `names` (`[fleet.activation_ids]`).
pub fn read_log(
    name: &str,
    target: &DynHostTarget,
    state: &HostState,
    window: i64,
    names: &ActivationNames,
) -> HostClients {
    let read = || -> Result<HostClients, HostFailure> {
        let log = target
            .read_events(&EventQuery::window(window))
            .map_err(failure::of_target)?;
        let since = log.clock.saturating_sub(window);
        Ok(summarize(name, state, &log, since, names))
    };
    read().unwrap_or_else(|error| HostClients {
        host: name.to_string(),
        error: Some(error),
        ..HostClients::default()
    })
}

/// One host's discovery and event log, summarized.
pub fn read_host(
    host: &HostConfig,
    connect: &Connect,
    window: i64,
    names: &ActivationNames,
) -> HostClients {
    let opened = kmsconf_targets::open_host(&host.name, &host.target, connect)
        .map_err(failure::of_target)
        .and_then(|t| {
            let state = t.discover().map_err(failure::of_target)?.state;
            Ok((t, state))
        });
    match opened {
        Ok((target, state)) => read_log(&host.name, target.as_ref(), &state, window, names),
        Err(error) => HostClients {
            host: host.name.clone(),
            error: Some(error),
            ..HostClients::default()
        },
    }
}
