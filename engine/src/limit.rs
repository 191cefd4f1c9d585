//! How much of one kind of file kmsconf reads: the cap [`read`](crate::read) enforces and the
//! engine's error names. Below both, so the error can carry it without importing the reader.

use std::fmt;

/// The most kmsconf reads of one kind of file, and how that kind is named in the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// What the file is, as in "the 64 KiB limit of a secret file".
    pub what: &'static str,
    pub bytes: u64,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bytes {
            b if b >= 1 << 20 && b.is_multiple_of(1 << 20) => write!(f, "{} MiB", b >> 20),
            b if b >= 1 << 10 && b.is_multiple_of(1 << 10) => write!(f, "{} KiB", b >> 10),
            b => write!(f, "{b} bytes"),
        }
    }
}
