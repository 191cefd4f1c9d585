//! Time as kmsconf reads and shows it: seconds since the Unix epoch (UTC), RFC 3339 timestamps,
//! and short durations (`90s`, `15m`, `2h`, `31d`) for lab controls and doctor messages. The
//! calendar and the display of durations are jiff's.

use jiff::{RoundMode, Span, SpanRound, Unit};

/// Now, seconds since the Unix epoch; 0 if the system clock is before 1970.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Now in milliseconds, for measuring clock skew finer than a second.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `2026-11-25T11:40:35Z`.
pub use kmsconf_engine::lock::rfc3339;

/// Why a duration does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("`{text}` is not a duration such as `90s`, `15m`, `-2h` or `31d`")]
    Malformed { text: String },
    #[error("`{text}` is outside -{MAX_DAYS}d..=+{MAX_DAYS}d (100 years either way)")]
    OutOfRange { text: String },
}

/// Reads `[+|-]N[s|m|h|d]` (no unit = seconds), e.g. `+2h`, `-10m`, `31d`, `0`. Not jiff's
/// friendly format: that also takes `2 weeks`, `1y` and `2h 30m`, which lab controls refuse.
pub fn parse_duration(text: &str) -> Result<i64, DurationError> {
    let t = text.trim();
    let bad = || DurationError::Malformed { text: text.into() };
    let (sign, body) = match t.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    let split = body
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(body.len());
    let (number, unit) = body.split_at(split);
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    if number.is_empty() {
        return Err(bad());
    }
    // digits only here: a number too large for i64 is out of range, not malformed
    let out_of_range = || DurationError::OutOfRange { text: text.into() };
    let n: i64 = number.parse().map_err(|_| out_of_range())?;
    n.checked_mul(scale)
        .and_then(|v| v.checked_mul(sign))
        .filter(|v| v.abs() <= MAX_DAYS * 86_400)
        .ok_or_else(out_of_range)
}

/// The longest duration [`parse_duration`] takes, in days: 100 years.
const MAX_DAYS: i64 = 100 * 365;

/// A duration as a person reads it: its largest unit and the next one when that is not zero,
/// truncated (`3d 4h`, `1m 30s`, `2h`, `0s`); jiff balances it into 24-hour days and prints it
/// in its friendly format. The sign is dropped: callers say "ahead" or "behind".
pub fn human(seconds: i64) -> String {
    let in_days = SpanRound::new()
        .largest(Unit::Day)
        .mode(RoundMode::Trunc)
        .days_are_24_hours();
    let two_units = |balanced: Span| {
        let smallest = if balanced.get_days() != 0 {
            Unit::Hour
        } else if balanced.get_hours() != 0 {
            Unit::Minute
        } else {
            Unit::Second
        };
        balanced.round(in_days.smallest(smallest)).ok()
    };
    // a span holds about 20,000 years; past that (nothing kmsconf measures) plain seconds
    i64::try_from(seconds.unsigned_abs())
        .ok()
        .and_then(|s| Span::new().try_seconds(s).ok())
        .and_then(|span| span.round(in_days).ok())
        .and_then(two_units)
        .map_or_else(
            || format!("{}s", seconds.unsigned_abs()),
            |shown| format!("{shown:#}"),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn durations_parse_with_sign_and_unit() {
        assert_eq!(parse_duration("+2h"), Ok(7200));
        assert_eq!(parse_duration("-10m"), Ok(-600));
        assert_eq!(parse_duration("31d"), Ok(31 * 86_400));
        assert_eq!(parse_duration("0"), Ok(0));
        assert!(parse_duration("2 weeks").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999d").is_err());
    }

    #[test]
    fn durations_read_in_two_units() {
        assert_eq!(human(0), "0s");
        assert_eq!(human(90), "1m 30s");
        assert_eq!(human(-7200), "2h");
        assert_eq!(human(3 * 86_400 + 4 * 3600 + 5), "3d 4h");
        assert_eq!(human(86_400 + 59 * 60), "1d");
        assert_eq!(human(3600 + 59), "1h");
        assert_eq!(human(31 * 86_400), "31d");
        assert_eq!(human(i64::MIN), "9223372036854775808s");
    }
}
