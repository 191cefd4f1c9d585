//! Taking the apply locks of a run's entries: all or none (`lock_all`), or each on its own so an
//! unreachable entry fails only itself (`lock_each`).

use kmsconf_engine::lock::{LockGuard, LockHolder};
use kmsconf_engine::schedule::schedule;

use super::{independent, Entry, Locked};
use crate::failure;
use crate::Error;

/// Takes every entry's apply lock, or none: the first entry locked by another run, or not
/// reachable, is an error (locks taken so far are released).
pub fn lock_all(entries: &[Entry]) -> Result<Vec<LockGuard>, Error> {
    let holder = LockHolder::current("apply")?;
    tracing::debug!(lock_id = %holder.id, "taking apply locks");
    entries
        .iter()
        .map(|e| Ok(e.target.lock(&holder)?))
        .collect()
}

/// Takes each entry's apply lock, `parallelism` at a time. An entry another run holds stops
/// the whole run (an error naming the holder; locks taken so far are released); an entry that
/// cannot be reached only fails itself, so the rest of the fleet goes on.
pub fn lock_each(entries: Vec<Entry>, parallelism: usize) -> Result<Locked, Error> {
    let holder = LockHolder::current("apply")?;
    tracing::debug!(lock_id = %holder.id, "taking apply locks");
    let inputs: Vec<(String, Entry)> = entries.into_iter().map(|e| (e.name.clone(), e)).collect();
    let results = schedule(
        &independent(&inputs),
        inputs,
        parallelism,
        |_, entry: Entry| {
            let r = entry.target.lock(&holder);
            (Some((entry, r)), true)
        },
        |_, _| None,
    );
    let mut locked = Locked {
        entries: Vec::new(),
        guards: Vec::new(),
        failures: Vec::new(),
    };
    let mut held_elsewhere = None;
    for (entry, r) in results.into_iter().filter_map(|(_, r)| r) {
        match r {
            Ok(guard) => {
                locked.guards.push(guard);
                locked.entries.push(entry);
            }
            Err(e @ kmsconf_targets::Error::Locked { .. }) => {
                held_elsewhere.get_or_insert(e);
            }
            Err(e) => locked.failures.push((entry.name, failure::of_target(e))),
        }
    }
    match held_elsewhere {
        Some(e) => Err(e.into()),
        None => Ok(locked),
    }
}
