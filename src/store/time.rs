//! Wall-clock times as stored (Unix seconds) and as shown (UTC, `YYYY-MM-DD HH:MM:SS`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix seconds.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Unix seconds as UTC `YYYY-MM-DD HH:MM:SS`.
pub fn format_utc(secs: f64) -> String {
    let total = secs.max(0.0) as i64;
    let (days, rest) = (total.div_euclid(86_400), total.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// A UTC date `YYYY-MM-DD`, or a time `YYYY-MM-DD HH:MM[:SS]` (or with `T`), as Unix seconds.
pub fn parse_utc(text: &str) -> Option<f64> {
    let text = text.trim();
    let (date, clock) = match text.split_once([' ', 'T']) {
        Some((d, c)) => (d, Some(c.trim_end_matches('Z'))),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || date.len() != 10 {
        return None;
    }
    let mut secs = 0;
    if let Some(clock) = clock {
        let fields: Vec<i64> = clock
            .split(':')
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        let (h, min, s) = match fields.as_slice() {
            [h, min] => (*h, *min, 0),
            [h, min, s] => (*h, *min, *s),
            _ => return None,
        };
        if h > 23 || min > 59 || s > 60 || h < 0 || min < 0 || s < 0 {
            return None;
        }
        secs = h * 3600 + min * 60 + s;
    }
    let days = days_from_civil(y, m, d);
    (civil_from_days(days) == (y, m, d)).then_some((days * 86_400 + secs) as f64)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(format_utc(0.0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(951_782_400.0), "2000-02-29 00:00:00");
        assert_eq!(format_utc(1_795_708_800.5), "2026-11-26 16:00:00");
    }

    #[test]
    fn dates_parse_back() {
        assert_eq!(parse_utc("1970-01-01"), Some(0.0));
        assert_eq!(parse_utc("2000-02-29"), Some(951_782_400.0));
        assert_eq!(parse_utc("2026-11-26 16:00"), Some(1_795_708_800.0));
        assert_eq!(parse_utc("2026-11-26T16:00:00Z"), Some(1_795_708_800.0));
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "yesterday",
            "2026-1-1",
            "2026-01-01 25:00",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }
}
