//! Atomic file writes: a reader sees the old file or the new one, never half of either, even
//! when the writer is killed in the middle.

use std::io::Write;
use std::path::Path;

use crate::Error;

/// Writes `contents` to `path` through a temporary file in the same directory and a rename,
/// flushed to disk first so a power loss keeps the old file or the new one.
pub fn atomic_write(path: &Path, contents: &[u8]) -> Result<(), Error> {
    replace(path, contents, true)
}

/// As [`atomic_write`], without waiting for the disk: a killed writer still leaves the old file
/// or the new one, but a power loss may keep neither's data. For files that are cheap to lose
/// and written on every round trip (lab hosts), where a flush per write dominated a 10,000-host
/// plan.
pub fn atomic_write_unflushed(path: &Path, contents: &[u8]) -> Result<(), Error> {
    replace(path, contents, false)
}

fn replace(path: &Path, contents: &[u8], flush: bool) -> Result<(), Error> {
    let err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".kmsconf-")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(contents).map_err(err)?;
    if flush {
        tmp.as_file().sync_all().map_err(err)?;
    }
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/state.json");
        atomic_write(&path, b"one").expect("first write");
        atomic_write(&path, b"two").expect("second write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "two");
        let entries = std::fs::read_dir(dir.path().join("sub"))
            .expect("dir")
            .count();
        assert_eq!(entries, 1);
    }
}
