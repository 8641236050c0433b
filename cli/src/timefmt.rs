//! RFC 3339 text to and from milliseconds since the Unix epoch, for the audit
//! commands' `--since`/`--until`/`--to-time` flags and the TIME column. Parsing text is
//! all this does: no clock is read.

const MS_PER_SECOND: i64 = 1_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2026-11-22T02:34:09.123Z` (always UTC, always milliseconds).
pub fn format_ms(ms: u64) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    let seconds = ms.div_euclid(MS_PER_SECOND);
    let millis = ms.rem_euclid(MS_PER_SECOND);
    let (days, secs) = (
        seconds.div_euclid(SECONDS_PER_DAY),
        seconds.rem_euclid(SECONDS_PER_DAY),
    );
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn number(text: &str, what: &str, range: std::ops::RangeInclusive<i64>) -> Result<i64, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad {what} {text:?}"));
    }
    let value: i64 = text.parse().map_err(|_| format!("bad {what} {text:?}"))?;
    if !range.contains(&value) {
        return Err(format!("{what} {value} out of range"));
    }
    Ok(value)
}

/// Parses RFC 3339 (`2026-11-22T02:34:09Z`, `2026-11-22 02:34:09.5+01:00`) into
/// milliseconds since the Unix epoch. A date alone means its midnight UTC.
pub fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let fail = |why: String| {
        format!("{text:?} is not an RFC 3339 time ({why}); e.g. 2026-11-22T02:34:09Z")
    };
    let text = text.trim();
    let (date, rest) = match text.find(['T', 't', ' ']) {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, ""),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let [y, mo, d] = parts.as_slice() else {
        return Err(fail("date must be YYYY-MM-DD".into()));
    };
    let year = number(y, "year", 1970..=9999).map_err(fail)?;
    let month = number(mo, "month", 1..=12).map_err(fail)?;
    let day = number(d, "day", 1..=31).map_err(fail)?;
    let mut ms = days_from_civil(year, month, day) * SECONDS_PER_DAY * MS_PER_SECOND;
    if !rest.is_empty() {
        let zone_at = rest
            .find(['Z', 'z', '+', '-'])
            .ok_or_else(|| fail("missing time zone (Z or ±HH:MM)".into()))?;
        let (clock, zone) = rest.split_at(zone_at);
        let (hms, fraction) = match clock.split_once('.') {
            Some((hms, f)) => (hms, Some(f)),
            None => (clock, None),
        };
        let hms: Vec<&str> = hms.split(':').collect();
        let [h, mi, s] = hms.as_slice() else {
            return Err(fail("time must be HH:MM:SS".into()));
        };
        let h = number(h, "hour", 0..=23).map_err(fail)?;
        let mi = number(mi, "minute", 0..=59).map_err(fail)?;
        let s = number(s, "second", 0..=60).map_err(fail)?;
        ms += ((h * 60 + mi) * 60 + s) * MS_PER_SECOND;
        if let Some(f) = fraction {
            let digits: String = f.chars().chain("000".chars()).take(3).collect();
            number(f, "fraction", 0..=i64::MAX).map_err(fail)?;
            ms += number(&digits, "fraction", 0..=999).map_err(fail)?;
        }
        if zone != "Z" && zone != "z" {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (zh, zm) = zone[1..]
                .split_once(':')
                .ok_or_else(|| fail("zone must be ±HH:MM".into()))?;
            let offset = number(zh, "zone hour", 0..=23).map_err(fail)? * 60
                + number(zm, "zone minute", 0..=59).map_err(fail)?;
            ms -= sign * offset * 60 * MS_PER_SECOND;
        }
    }
    u64::try_from(ms).map_err(|_| fail("before 1970".into()))
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
}
