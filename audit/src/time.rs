//! RFC 3339 text to and from milliseconds since the Unix epoch, for the TIME of an
//! entry and the audit commands' `--since`/`--until`/`--to-time` flags. The calendar
//! is `jiff`'s; no clock is read.

use jiff::civil::Date;
use jiff::tz::Offset;
use jiff::Timestamp;

/// Text that is not an RFC 3339 time this audit accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not an RFC 3339 time ({why}); e.g. 2026-11-22T02:34:09Z")]
pub struct TimeError {
    pub text: String,
    pub why: String,
}

/// `2026-11-22T02:34:09.123Z` (always UTC, always milliseconds). A time past the year
/// 9999 (no proposer stamps one) is shown as its milliseconds.
pub fn format_ms(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .map_or_else(
            || format!("{ms} ms after the epoch"),
            |t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        )
}

/// Parses RFC 3339 (`2026-11-22T02:34:09Z`, `2026-11-22 02:34:09.5+01:00`) into
/// milliseconds since the Unix epoch. A date alone means its midnight UTC; a time
/// needs seconds and a zone.
pub fn parse_rfc3339(text: &str) -> Result<u64, TimeError> {
    let fail = |why: String| TimeError {
        text: text.to_string(),
        why,
    };
    let trimmed = text.trim();
    let timestamp = match trimmed.find(['T', 't', ' ']) {
        None => {
            let date: Date = trimmed
                .parse()
                .map_err(|e: jiff::Error| fail(e.to_string()))?;
            Offset::UTC
                .to_timestamp(date.at(0, 0, 0, 0))
                .map_err(|e| fail(e.to_string()))?
        }
        Some(at) => {
            let rest = &trimmed[at + 1..];
            let zone_at = rest
                .find(['Z', 'z', '+', '-'])
                .ok_or_else(|| fail("missing time zone (Z or ±HH:MM)".into()))?;
            if rest[..zone_at].matches(':').count() != 2 {
                return Err(fail("time must be HH:MM:SS".into()));
            }
            trimmed
                .parse::<Timestamp>()
                .map_err(|e| fail(e.to_string()))?
        }
    };
    u64::try_from(timestamp.as_millisecond()).map_err(|_| fail("before 1970".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_zones() {
        let ms = parse_rfc3339("2026-11-22T02:34:09.123Z").unwrap();
        assert_eq!(format_ms(ms), "2026-11-22T02:34:09.123Z");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("1970-01-02"), Ok(86_400_000));
        assert_eq!(parse_rfc3339("2026-11-22T03:34:09.123+01:00"), Ok(ms));
        assert_eq!(parse_rfc3339("2026-11-22 03:34:09.123+01:00"), Ok(ms));
        assert_eq!(parse_rfc3339("2026-11-22t02:34:09.123z"), Ok(ms));
        assert_eq!(parse_rfc3339(" 2026-11-22T02:34:09.123456Z "), Ok(ms));
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z").map(format_ms),
            Ok("2024-02-29T00:00:00.000Z".into())
        );
    }

    #[test]
    fn bad_text_is_refused() {
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-11-22T02:34",
            "2026-11-22T02:34:09",
            "2026-11-22T25:00:00Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    /// The hand-written parser checked a day only against 1..=31, so `2026-02-30`
    /// silently became March 2nd and `2100-02-29` (not a leap year: divisible by 100
    /// but not by 400) became March 1st.
    #[test]
    fn days_that_do_not_exist_are_refused() {
        for bad in [
            "2026-02-30",
            "2026-04-31",
            "2100-02-29T00:00:00Z",
            "2025-02-29",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
        assert!(parse_rfc3339("2000-02-29").is_ok(), "2000 is a leap year");
    }

    #[test]
    fn a_year_boundary_in_another_zone() {
        let new_year = parse_rfc3339("2027-01-01T00:00:00Z").unwrap();
        assert_eq!(parse_rfc3339("2026-12-31T19:00:00-05:00"), Ok(new_year));
        assert_eq!(format_ms(new_year - 1), "2026-12-31T23:59:59.999Z");
    }
}
