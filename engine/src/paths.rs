//! Paths as a person writes them (`lab/kms01.json` in a config) made into paths of the platform
//! kmsconf runs on, so that every path it prints has one separator style, and two spellings of
//! one file compare as the platform compares them. Not a file system lookup: nothing here needs
//! the file to exist.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `written` with the platform's separator: on Windows, where `/` and `\` both separate, every
/// `/` becomes `\` (`lab/x.json` is `lab\x.json`); elsewhere `\` is a file name character and the
/// path stays as written.
pub fn native(written: &Path) -> PathBuf {
    PathBuf::from(native_os(written.as_os_str().to_owned()))
}

#[cfg(windows)]
fn native_os(text: OsString) -> OsString {
    use std::os::windows::ffi::{OsStrExt, OsStringExt};
    let wide: Vec<u16> = text
        .encode_wide()
        .map(|c| {
            if c == u16::from(b'/') {
                u16::from(b'\\')
            } else {
                c
            }
        })
        .collect();
    OsString::from_wide(&wide)
}

#[cfg(not(windows))]
fn native_os(text: OsString) -> OsString {
    text
}

/// A key under which two paths are equal when the platform takes them for one file: on Windows
/// the native form without case (NTFS, as Windows sets it up, ignores case); elsewhere the path.
pub fn same_file_key(path: &Path) -> PathBuf {
    let native = native(path);
    if cfg!(windows) {
        PathBuf::from(native.to_string_lossy().to_lowercase())
    } else {
        native
    }
}

/// [`std::fs::canonicalize`] as a person reads it. On Windows canonicalize returns a verbatim
/// path (`\\?\C:\p\x.json`, `\\?\UNC\server\share\x.json`); this gives the ordinary form
/// (`C:\p\x.json`, `\\server\share\x.json`) whenever that names the same file: shorter than
/// `MAX_PATH` (260), and no part a reserved device name (`CON`, `NUL`, `COM1`, ...) or ending in
/// `.` or a space, which Windows would read differently without the prefix (Microsoft's
/// "Naming Files, Paths, and Namespaces"). Elsewhere it is canonicalize.
pub fn canonical(path: &Path) -> std::io::Result<PathBuf> {
    std::fs::canonicalize(path).map(without_verbatim)
}

#[cfg(windows)]
fn without_verbatim(path: PathBuf) -> PathBuf {
    let Some(text) = path.to_str() else {
        return path;
    };
    let ordinary = if let Some(rest) = text.strip_prefix(r"\\?\UNC\") {
        format!(r"\\{rest}")
    } else if let Some(rest) = text.strip_prefix(r"\\?\") {
        let drive = rest.as_bytes();
        if drive.len() < 3 || !drive[0].is_ascii_alphabetic() || &drive[1..3] != br":\" {
            return path;
        }
        rest.to_string()
    } else {
        return path;
    };
    let reserved = |part: &str| {
        let stem = part
            .split('.')
            .next()
            .unwrap_or(part)
            .trim_end()
            .to_ascii_uppercase();
        ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"].contains(&stem.as_str())
            || ((stem.starts_with("COM") || stem.starts_with("LPT"))
                && stem.len() == 4
                && stem.as_bytes()[3].is_ascii_digit())
    };
    let plain = ordinary.len() < 260
        && ordinary
            .split('\\')
            .skip(1)
            .all(|part| !part.ends_with('.') && !part.ends_with(' ') && !reserved(part));
    if plain {
        PathBuf::from(ordinary)
    } else {
        path
    }
}

#[cfg(not(windows))]
fn without_verbatim(path: PathBuf) -> PathBuf {
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(windows)]
    #[test]
    fn windows_paths_take_one_separator_and_ignore_case() {
        assert_eq!(
            native(Path::new(r"C:\p/lab/./x.json")).as_os_str(),
            r"C:\p\lab\.\x.json"
        );
        assert_eq!(
            same_file_key(Path::new("lab/X.json")),
            same_file_key(Path::new(r"lab\x.json"))
        );
    }

    #[cfg(windows)]
    #[test]
    fn canonical_paths_are_shown_without_the_verbatim_prefix_when_they_mean_the_same() {
        let plain = |p: &str| without_verbatim(PathBuf::from(p));
        assert_eq!(plain(r"\\?\C:\p\x.json"), PathBuf::from(r"C:\p\x.json"));
        assert_eq!(
            plain(r"\\?\UNC\server\share\x.json"),
            PathBuf::from(r"\\server\share\x.json")
        );
        for kept in [r"\\?\C:\p\nul.txt", r"\\?\C:\p\x.", r"\\?\Volume{1}\x"] {
            assert_eq!(plain(kept), PathBuf::from(kept));
        }
        let long = format!(r"\\?\C:\{}", "a".repeat(300));
        assert_eq!(plain(&long), PathBuf::from(&long));
        let dir = std::env::temp_dir();
        let shown = canonical(&dir).expect("the temp dir");
        assert!(
            !shown.to_string_lossy().starts_with(r"\\?\"),
            "{}",
            shown.display()
        );
    }

    #[cfg(not(windows))]
    #[test]
    fn elsewhere_a_backslash_is_part_of_a_name_and_case_counts() {
        assert_eq!(
            native(Path::new(r"lab/a\b.json")).as_os_str(),
            r"lab/a\b.json"
        );
        assert_ne!(
            same_file_key(Path::new("lab/X.json")),
            same_file_key(Path::new("lab/x.json"))
        );
    }
}
