//! A lab host's apply lock: an OS lock on `PATH.apply.lock` with the holder's record beside it in
//! `PATH.apply.holder`, read and written here for [`LabTarget::lock`] and
//! [`LabTarget::force_unlock`](kmsconf_engine::target::Target::force_unlock).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kmsconf_engine::lock::LockHolder;
use kmsconf_engine::read::read_bounded;

use super::LabTarget;
use crate::Error;

/// How long a run that finds a lab host's apply lock taken waits for a record of who holds it
/// (see [`LabTarget::lock`]) before saying there is none.
pub(super) const RECORD_WAIT: Duration = Duration::from_secs(2);

/// A lock record is one line of JSON; anything longer is not one.
const HOLDER_LIMIT: kmsconf_engine::read::Limit = kmsconf_engine::read::Limit {
    what: "a lock record",
    bytes: 4 << 10,
};

impl LabTarget {
    /// The record of the apply lock's holder, if there is one.
    pub(super) fn current_holder(&self) -> Option<LockHolder> {
        read_holder(&self.holder_path())
    }

    /// `PATH.apply.holder`, where the holder of the apply lock keeps its record.
    pub(super) fn holder_path(&self) -> PathBuf {
        PathBuf::from(format!("{}.apply.holder", self.path.display()))
    }

    pub(super) fn open_apply_lock(&self) -> Result<(File, PathBuf), Error> {
        let path = PathBuf::from(format!("{}.apply.lock", self.path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        Ok((file, path))
    }
}

/// The held apply lock: clears its record, then the OS releases the lock when the file closes.
pub(super) struct ApplyLock {
    /// The locked file, kept open: closing it releases the OS lock.
    pub(super) _file: File,
    pub(super) record: PathBuf,
}

impl Drop for ApplyLock {
    fn drop(&mut self) {
        if let Err(e) = write_holder(&self.record, None) {
            tracing::warn!(path = %self.record.display(), error = %e, "could not clear the lock record");
        }
    }
}

/// The record at `path`, if it holds one kmsconf wrote.
pub(super) fn read_holder(path: &Path) -> Option<LockHolder> {
    let bytes = read_bounded(path, HOLDER_LIMIT).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes `holder`'s record to `path`, or empties it.
pub(super) fn write_holder(path: &Path, holder: Option<&LockHolder>) -> std::io::Result<()> {
    use std::io::Write;
    let text = holder
        .map(|h| serde_json::to_string(h).unwrap_or_default())
        .unwrap_or_default();
    let mut file = File::create(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
