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
