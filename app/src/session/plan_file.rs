//! Plan files: reading one back (checking its seal and what each change shows), saving one, and
//! opening the entries a saved plan names, as it recorded their targets.

use std::path::Path;

use kmsconf_engine::error::IntegrityError;
use kmsconf_engine::plan::Seal;
use kmsconf_engine::secret::Secret;
use kmsconf_model::config::TargetSpec;
use kmsconf_model::{EntryState, KmsPlan};
use kmsconf_providers::shown;
use kmsconf_targets::Connect;

use super::Entry;
use crate::Error;

/// Reads a plan file for `show` or `apply`: its digest (with `key`, its HMAC) vouches that it is
/// the file that was saved, and each change must show what its operation does from the state
/// observed with the plan ([`shown::check`]), which a recomputed digest cannot fake.
pub fn load_plan(path: &Path, key: Option<&Secret>) -> Result<(KmsPlan, Seal), Error> {
    let (plan, seal) = KmsPlan::load(path, key)?;
    let refused = |e: String| kmsconf_engine::Error::PlanIntegrity {
        path: path.to_path_buf(),
        reason: IntegrityError::Content(e),
    };
    for host in &plan.hosts {
        shown::check(host).map_err(|e| refused(e.to_string()))?;
        // what a host reported is checked when a plan is read back, as when it was discovered
        if let EntryState::KmsHost(state) = &host.observed {
            state
                .check_protocol()
                .map_err(|e| refused(format!("host `{}`: {e}", host.name)))?;
        }
    }
    Ok((plan, seal))
}

/// Saves `plan` for `apply PLANFILE`, sealed with its digest (and with `key` its HMAC); refused
/// for a plan that needs a secret written in the config, which a plan file never holds.
pub fn save_plan(plan: &KmsPlan, path: &Path, key: Option<&Secret>) -> Result<Seal, Error> {
    let literal = plan
        .hosts
        .iter()
        .flat_map(|h| &h.changes)
        .find_map(|c| c.operation.literal_secret());
    if let Some(secret) = literal {
        return Err(Error::LiteralSecret {
            declared_at: secret.declared_at.clone(),
        });
    }
    Ok(plan.save(path, key)?)
}

/// Opens the entries of a saved plan: each as the plan recorded its target, the DNS server
/// reading the zones and names the plan saw.
pub fn open_plan(plan: &KmsPlan, connect: &Connect) -> Result<Vec<Entry>, Error> {
    plan.hosts
        .iter()
        .map(|h| {
            let target = match (&h.target, &h.observed) {
                (TargetSpec::Dns { server }, EntryState::DnsServer(seen)) => {
                    let zones = seen.zones.keys().cloned().collect();
                    let names = seen.targets.keys().cloned().collect();
                    kmsconf_targets::open_dns(server, zones, names)
                }
                (spec, _) => kmsconf_targets::open(&h.name, spec, connect)?,
            };
            Ok(Entry {
                name: h.name.clone(),
                target,
            })
        })
        .collect()
}
