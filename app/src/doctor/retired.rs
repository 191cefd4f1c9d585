//! The checks of a retired host: it must look like a KMS client from every side. It holds no
//! KMS host key and nothing accepts connections on its KMS port; that no `_vlmcs._tcp` record
//! of the `[dns]` zones sends clients to it is a DNS check
//! ([`check_unpublished`](super::check_unpublished)).

use kmsconf_model::catalog;
use kmsconf_model::config::HostConfig;
use kmsconf_model::state::{Channel, HostState};

use super::{Check, HostReading, PortProbe, ProbeError, Verdict, NO_HOST_KEY, PORT_CLOSED};

pub(super) const RETIRE: &str =
    "run `kmsconf plan` to see what retiring it still changes and `kmsconf apply` to finish";

/// Every check of a retired host: reachability, then its port and its keys.
pub fn check_retired(cfg: &HostConfig, observed: &HostReading, probe: &PortProbe) -> Vec<Check> {
    let host = cfg.name.as_str();
    let mut checks = Vec::new();
    if let Err(e) = &observed.state {
        checks.push(super::host::unreachable(cfg, e));
    }
    checks.push(port_closed(host, probe));
    if let Ok(state) = &observed.state {
        checks.push(no_host_key(host, state));
    }
    checks
}

/// Nothing answers on the retired host's KMS port: a client sent there by a stale record or a
/// cached host fails instead of being activated by a host that should be gone.
pub fn port_closed(host: &str, probe: &PortProbe) -> Check {
    let endpoint = format!("{}:{}", probe.address, probe.port);
    match &probe.result {
        Ok(_) => Check::new(host, PORT_CLOSED, Verdict::Failed, format!("TCP {endpoint} still accepts connections, so the retired host (or something else on its address) still listens on the KMS port"))
            .fix(RETIRE),
        Err(e @ ProbeError::Resolve { .. }) => Check::new(host, PORT_CLOSED, Verdict::Warning, format!("TCP {endpoint} could not be checked: {e}"))
            .fix("check the port from a machine that resolves the host's address"),
        Err(_) => Check::new(host, PORT_CLOSED, Verdict::Ok, format!("TCP {endpoint} does not accept connections")),
    }
}

/// No product holds a KMS host key: the key no longer counts against the CSVLK's activations,
/// and the host does not publish or serve as a KMS host.
pub fn no_host_key(host: &str, state: &HostState) -> Check {
    let kms: Vec<String> = state
        .products
        .iter()
        .filter(|(_, p)| p.channel == Channel::KmsHost)
        .map(|(id, p)| {
            let key = p.partial_key.as_deref().unwrap_or("?");
            format!("{} (ending in {key})", catalog::product_name(*id))
        })
        .collect();
    if !kms.is_empty() {
        return Check::new(
            host,
            NO_HOST_KEY,
            Verdict::Failed,
            format!(
                "the retired host still holds a KMS host key: {}",
                kms.join(", ")
            ),
        )
        .fix(RETIRE);
    }
    let windows = state
        .products
        .get(&kmsconf_model::config::ProductId::Windows)
        .and_then(|p| p.partial_key.as_deref().map(|k| (p.channel, k)));
    let detail = match windows {
        Some((channel, key)) => {
            format!("no KMS host key; Windows holds a {channel} ending in {key}")
        }
        None => "no KMS host key; Windows holds no key".to_string(),
    };
    Check::new(host, NO_HOST_KEY, Verdict::Ok, detail)
}
