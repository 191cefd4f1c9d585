//! `kmsconf force-unlock`: breaks a host's apply lock left behind by a run that died, when the
//! caller gives that lock's ID.

use kmsconf_engine::lock::LockHolder;
use kmsconf_model::config::Config;
use kmsconf_targets::Connect;

use crate::Error;

/// Removes the lock `lock_id` of the config's host `host`; returns the holder that was removed.
pub fn force_unlock(
    config: &Config,
    host: &str,
    lock_id: &str,
    connect: &Connect,
) -> Result<LockHolder, Error> {
    let Some(declared) = config.hosts.get(host) else {
        let known: Vec<&str> = config.hosts.keys().map(String::as_str).collect();
        return Err(Error::NoSuchHost {
            name: host.to_string(),
            config: config.path.clone(),
            known: known.join(", "),
        });
    };
    let target = kmsconf_targets::open(&declared.name, &declared.target, connect)?;
    Ok(target.force_unlock(lock_id)?)
}
