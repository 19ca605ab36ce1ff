//! Timestamps for messages and state: Unix seconds, written as RFC 3339 in UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in Unix seconds.
pub fn now() -> u64 {
    unix(SystemTime::now())
}

/// A time in Unix seconds (0 before 1970).
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The first second RFC 3339 cannot write (year 10000).
const PAST_RFC3339: u64 = 253_402_300_800;

/// `secs` as `YYYY-MM-DDTHH:MM:SSZ` (UTC); from the year 10000 on, `@` and the seconds.
pub fn rfc3339(secs: u64) -> String {
    if secs >= PAST_RFC3339 {
        return format!("@{secs}");
    }
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
        assert_eq!(super::rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(super::rfc3339(u64::MAX), format!("@{}", u64::MAX));
    }
}
