//! The surprises of a plan's hosts ([`kmsconf_model::surprise`]): what a host showed that
//! contradicts kmsconf's Windows facts. `plan` warns of each, `doctor` checks them
//! (`windows-facts`), and `apply` refuses the changes that rely on one ([`refusals`]) unless the
//! user accepts the surprises.

use kmsconf_model::surprise::{self, Surprise};
use kmsconf_model::{EntryState, KmsHostPlan, KmsPlan};

/// What host `host` showed that contradicts the facts table (nothing for the DNS and directory
/// entries).
pub fn of_host(host: &KmsHostPlan) -> Vec<Surprise> {
    match &host.observed {
        EntryState::KmsHost(state) => surprise::surprises(state),
        EntryState::DnsServer(_) | EntryState::ActiveDirectory(_) => Vec::new(),
    }
}

/// A planned change that relies on a fact its host contradicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub host: String,
    pub address: String,
    pub surprise: Surprise,
}

/// Every planned change `apply` refuses without `--accept-surprises`, in plan order.
pub fn refusals(plan: &KmsPlan) -> Vec<Refusal> {
    let mut refused = Vec::new();
    for host in &plan.hosts {
        let found = of_host(host);
        for change in &host.changes {
            if let Some(s) = found.iter().find(|s| s.affects(&change.address)) {
                refused.push(Refusal {
                    host: host.name.clone(),
                    address: change.address.clone(),
                    surprise: s.clone(),
                });
            }
        }
    }
    refused
}

/// What a surprise means for the changes: which of them `apply` holds back.
pub fn consequence(s: &Surprise) -> String {
    match s.affects.as_slice() {
        [] => "no change relies on it".to_string(),
        [all] if all.is_empty() => {
            "`apply` changes nothing on this host without `--accept-surprises`".to_string()
        }
        prefixes => format!(
            "`apply` changes {} only with `--accept-surprises`",
            prefixes
                .iter()
                .map(|p| format!("`{}`", p.trim_end_matches('.')))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// One surprise in words: `the host contradicts FACT (source SOURCE in windows.toml): kmsconf's
/// table says EXPECTED; the host shows OBSERVED; CONSEQUENCE`. The observed part is the host's
/// own text: a renderer escapes it.
pub fn message(s: &Surprise) -> String {
    format!(
        "the host contradicts `{}` (source `{}` in model/data/windows.toml): kmsconf's table says {}; the host shows {}; {}",
        s.fact,
        s.source,
        s.expected,
        s.observed,
        consequence(s)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsconf_model::state::{HostState, RegistryReading};

    #[test]
    fn a_surprise_says_its_fact_source_both_readings_and_what_apply_holds_back() {
        let mut state = HostState::fresh_windows_server("KMS01");
        state.readings.registry = Some(vec![RegistryReading {
            key: "spp".into(),
            name: "VLActivationInterval".into(),
            kind: "REG_SZ".into(),
        }]);
        let found = surprise::surprises(&state);
        assert_eq!(
            message(&found[0]),
            "the host contradicts `registry VLActivationInterval` (source `spp-listing` in model/data/windows.toml): kmsconf's table says REG_DWORD there; the host shows REG_SZ under `HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\SoftwareProtectionPlatform`; `apply` changes `service.activation_interval` only with `--accept-surprises`"
        );
        state.readings.language_mode = Some("ConstrainedLanguage".into());
        let found = surprise::surprises(&state);
        assert!(message(&found[0])
            .ends_with("`apply` changes nothing on this host without `--accept-surprises`"));
    }
}
