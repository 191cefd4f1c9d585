//! What `kmsconf status` reports: per host and per KMS host product, what `slmgr.vbs /dlv` and
//! `/dli all` would show (license status in words, partial key, count against the threshold,
//! KMS settings, cumulative request counters), built from one discovery. Nothing is printed here.

use kmsconf_model::config::{HostConfig, ProductId, PublishDomain};
use schemars::JsonSchema;
use serde::Serialize;

use kmsconf_model::catalog;
use kmsconf_model::state::{Channel, HostState, LicenseStatus, ProductState, RequestCounters};

/// One host's status, or why it could not be read.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HostStatus {
    pub name: String,
    pub target: String,
    pub address: Option<String>,
    /// Set when discovery failed; every other observed field is then absent.
    pub error: Option<String>,
    pub computer_name: Option<String>,
    pub os: Option<String>,
    /// The host's clock when it answered (RFC 3339, UTC).
    pub clock: Option<String>,
    pub client_machine_id: Option<String>,
    pub remaining_rearm_count: Option<u32>,
    pub service: Option<ServiceStatus>,
    pub products: Vec<ProductStatus>,
}

/// The KMS settings in effect.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ServiceStatus {
    pub port: u16,
    pub dns_publishing: bool,
    pub publish_domains: Vec<PublishDomain>,
    /// `normal` or `low`.
    #[schemars(with = "String", extend("enum" = ["normal", "low"]))]
    pub priority: &'static str,
    pub activation_interval: u32,
    pub renewal_interval: u32,
    pub host_caching: bool,
    pub restart_pending: bool,
}

/// One KMS host product: declared in the config, or holding a KMS host key on the host.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProductStatus {
    /// The config's product id.
    pub product: ProductId,
    pub name: String,
    pub declared: bool,
    /// `licensed`, `unlicensed`, `initial-grace`, ...; `unlicensed` when nothing is installed.
    pub license_status: LicenseStatus,
    pub channel: String,
    pub partial_key: Option<String>,
    /// Distinct clients counted; null when the host reports none (-1).
    pub current_count: Option<u32>,
    /// The count the product needs before the host activates clients.
    pub required_count: u32,
    /// For Windows: the lower count that already activates Windows Server.
    pub required_count_server: Option<u32>,
    pub grace_minutes: u32,
    pub requests: RequestCounters,
}

/// Builds one host's status from its config and what discovery returned.
pub fn host_status(
    cfg: &HostConfig,
    target: String,
    observed: Result<&HostState, String>,
) -> HostStatus {
    let mut status = HostStatus {
        name: cfg.name.clone(),
        target,
        address: cfg.address.clone(),
        error: None,
        computer_name: None,
        os: None,
        clock: None,
        client_machine_id: None,
        remaining_rearm_count: None,
        service: None,
        products: Vec::new(),
    };
    let state = match observed {
        Ok(s) => s,
        Err(e) => {
            status.error = Some(e);
            return status;
        }
    };
    status.computer_name = Some(state.computer_name.clone());
    status.os = Some(state.os.clone());
    status.clock = state.clock.map(kmsconf_model::clock::rfc3339);
    status.client_machine_id = state.client_machine_id.clone();
    status.remaining_rearm_count = state.remaining_rearm_count;
    let s = &state.service;
    status.service = Some(ServiceStatus {
        port: s.effective_port(),
        dns_publishing: s.dns_publishing,
        publish_domains: s.publish_domains.clone(),
        priority: if s.low_priority { "low" } else { "normal" },
        activation_interval: s.activation_interval,
        renewal_interval: s.renewal_interval,
        host_caching: s.host_caching,
        restart_pending: s.restart_pending,
    });
    for id in ProductId::ALL {
        let declared = cfg.products.contains_key(&id);
        let observed = state.products.get(&id);
        let is_host = observed.is_some_and(|p| p.channel == Channel::KmsHost);
        if declared || is_host {
            status.products.push(product_status(id, declared, observed));
        }
    }
    status
}

fn product_status(id: ProductId, declared: bool, observed: Option<&ProductState>) -> ProductStatus {
    let info = catalog::product(id);
    let required = observed
        .and_then(|p| p.required_count)
        .or(info.map(|i| i.required_count))
        .unwrap_or(5);
    ProductStatus {
        product: id,
        name: catalog::product_name(id),
        declared,
        license_status: observed.map_or(LicenseStatus::Unlicensed, |p| p.license_status),
        channel: observed.map_or(Channel::None, |p| p.channel).to_string(),
        partial_key: observed.and_then(|p| p.partial_key.clone()),
        // an activated KMS host that no client has asked yet reports -1 (`None`); its count is 0
        current_count: observed
            .and_then(|p| p.current_count.or(p.is_activated_kms_host().then_some(0))),
        required_count: required,
        required_count_server: info.and_then(|i| i.required_count_server),
        grace_minutes: observed.map_or(0, |p| p.grace_minutes),
        requests: observed.map(|p| p.requests.clone()).unwrap_or_default(),
    }
}
