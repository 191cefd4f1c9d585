//! Reading the files a user names (configs, secrets, plan and lab files): regular files only,
//! after symlinks are resolved, never more than a stated cap, and never blocking on a FIFO or
//! a device (`/dev/zero` would otherwise fill memory, a FIFO would wait for a writer forever).

use std::fs::File;
use std::io::Read;
use std::path::Path;

pub use crate::limit::Limit;
use crate::Error;

/// A secret (a product key, a confirmation ID, a TSIG key) is a line of text.
pub const SECRET: Limit = Limit {
    what: "a secret file",
    bytes: 64 << 10,
};

/// A plan file holds each host's observed state: about 4 KiB a host, so 10,000 hosts fit with
/// a wide margin.
pub const PLAN: Limit = Limit {
    what: "a plan file",
    bytes: 256 << 20,
};

/// Reads the whole of `path` if it is a regular file (symlinks followed) no larger than
/// `limit`. A FIFO, a socket or a device is refused without being waited on.
pub fn read_bounded(path: &Path, limit: Limit) -> Result<Vec<u8>, Error> {
    let io = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = open_nonblocking(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
            kind: kind_of(&meta.file_type()),
        });
    }
    let too_large = || Error::TooLarge {
        path: path.to_path_buf(),
        limit,
    };
    if meta.len() > limit.bytes {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // the file may grow between the check and the read: never read past the cap
    file.take(limit.bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit.bytes {
        return Err(too_large());
    }
    Ok(bytes)
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // opening a FIFO for reading blocks until a writer comes, unless non-blocking; on a regular
    // file the flag changes nothing
    File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

fn kind_of(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Limit = Limit {
        what: "a test file",
        bytes: 8,
    };

    #[test]
    fn reads_a_regular_file_through_a_symlink() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("a"), "12345678").expect("write");
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("a"), dir.path().join("link")).expect("ln");
        #[cfg(unix)]
        assert_eq!(
            read_bounded(&dir.path().join("link"), SMALL).expect("read"),
            b"12345678"
        );
    }

    #[test]
    fn a_file_over_the_limit_is_refused_naming_the_limit() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("big");
        std::fs::write(&p, "123456789").expect("write");
        let e = read_bounded(&p, SMALL).expect_err("too large");
        assert!(
            e.to_string()
                .ends_with("is over the 8 bytes limit of a test file"),
            "{e}"
        );
        assert_eq!(SECRET.to_string(), "64 KiB");
        assert_eq!(PLAN.to_string(), "256 MiB");
    }

    #[cfg(unix)]
    #[test]
    fn devices_fifos_and_directories_are_refused_without_waiting() {
        let dir = tempfile::tempdir().expect("tmp");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        for (path, kind) in [
            (fifo.as_path(), "a FIFO"),
            (Path::new("/dev/zero"), "a device"),
            (dir.path(), "a directory"),
        ] {
            let e = read_bounded(path, SECRET).expect_err("not a file");
            assert!(
                e.to_string()
                    .ends_with(&format!("is not a regular file: it is {kind}")),
                "{e}"
            );
        }
    }
}
