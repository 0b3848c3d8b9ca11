//! The calendar every date in the product is read in: China Standard Time (UTC+8, where the
//! bulletins are read), days `YYYY-MM-DD` from year 1 to 9999, weeks from Monday, months. One
//! reading of every date or time a request or command carries (`at`, `from`, `to`, `--at`).

use crate::error::{ServerError, ServerResult};
use crate::model::now;

/// The first year a date or time may fall in (dates and times in requests and commands).
pub const FIRST_YEAR: i64 = 1;
/// The last year a date or time may fall in.
pub const LAST_YEAR: i64 = 9999;
/// 0001-01-01 00:00 UTC+8 in ms since the epoch: the earliest time accepted.
pub const MIN_TIME_MS: i64 = -62_135_625_600_000;
/// 9999-12-31 23:59:59.999 UTC+8: the latest time accepted.
pub const MAX_TIME_MS: i64 = 253_402_271_999_999;

fn out_of_range(text: &str) -> ServerError {
    ServerError::BadRequest(format!(
        "{text:?} is out of range (dates from {FIRST_YEAR:04}-01-01 to {LAST_YEAR}-12-31)"
    ))
}

/// A day `YYYY-MM-DD` (China Standard Time, UTC+8, where the bulletins are read) or ms since
/// the epoch, between [`MIN_TIME_MS`] and [`MAX_TIME_MS`]; anything else is a typed 400. The one
/// reading of every date or time query value (`at`, `from`, `to`) and command option (`--at`).
pub fn parse_time(text: &str) -> ServerResult<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        if !(MIN_TIME_MS..=MAX_TIME_MS).contains(&ms) {
            return Err(out_of_range(text));
        }
        return Ok(ms);
    }
    let (y, m, d) = parse_date(text)?;
    Ok(day_start_ms(y, m, d))
}

fn parse_date(text: &str) -> ServerResult<(i64, u32, u32)> {
    let bad = || ServerError::BadRequest(format!("{text:?} is not a date (YYYY-MM-DD)"));
    let digits = |p: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
    };
    let mut parts = text.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !digits(y, 4..=5) || !digits(m, 1..=2) || !digits(d, 1..=2) {
        return Err(bad());
    }
    let (y, m, d): (i64, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(FIRST_YEAR..=LAST_YEAR).contains(&y) {
        return Err(out_of_range(text));
    }
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return Err(bad());
    }
    Ok((y, m, d))
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const CST_OFFSET_MS: i64 = 8 * 3_600_000;

fn day_start_ms(y: i64, m: u32, d: u32) -> i64 {
    days_from_civil(y, m, d) * 86_400_000 - CST_OFFSET_MS
}

/// The start (00:00 UTC+8) of the day holding `ms` (clamped to the accepted range).
pub fn day_start(ms: i64) -> i64 {
    let (y, m, d) = civil_of(ms);
    day_start_ms(y, m, d)
}

/// The civil date (UTC+8) of a time (clamped to the accepted range).
pub fn civil_date(ms: i64) -> (i64, u32, u32) {
    civil_of(ms)
}

fn civil_of(ms: i64) -> (i64, u32, u32) {
    // Callers pass checked times; the clamp keeps the arithmetic below in range whatever comes.
    let ms = ms.clamp(MIN_TIME_MS, MAX_TIME_MS);
    let days = (ms + CST_OFFSET_MS).div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

/// The day a request or command asks about (`YYYY-MM-DD` or RFC 3339; now when absent) and the
/// `period` ("week" or "month") holding it, as (at, from, to) in ms — the one reading of `?at=`
/// and `?period=` for every handler and CLI command.
pub fn period_at(period: &str, at: Option<&str>) -> ServerResult<(i64, i64, i64)> {
    let at = at.map(parse_time).transpose()?.unwrap_or_else(now);
    let (from, to) = period_bounds(period, at)?;
    Ok((at, from, to))
}

/// The week (Monday to Monday) or month holding `at`, as [from, to) in ms.
pub fn period_bounds(period: &str, at_ms: i64) -> ServerResult<(i64, i64)> {
    if !(MIN_TIME_MS..=MAX_TIME_MS).contains(&at_ms) {
        return Err(out_of_range(&at_ms.to_string()));
    }
    let (y, m, d) = civil_of(at_ms);
    match period {
        "week" => {
            let days = days_from_civil(y, m, d);
            // 1970-01-01 was a Thursday: Monday-based weekday = (days + 3) mod 7.
            let monday = days - (days + 3).rem_euclid(7);
            let from = monday * 86_400_000 - CST_OFFSET_MS;
            Ok((from, from + 7 * 86_400_000))
        }
        "month" => {
            let from = day_start_ms(y, m, 1);
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            Ok((from, day_start_ms(ny, nm, 1)))
        }
        other => Err(ServerError::BadRequest(format!(
            "period must be week or month, not {other:?}"
        ))),
    }
}

/// The day `YYYY-MM-DD` (UTC+8) of a time.
pub fn day_label(ms: i64) -> String {
    let (y, m, d) = civil_date(ms);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday_in_china_time() {
        // 2026-05-20 is a Wednesday.
        let at = parse_time("2026-05-20").unwrap() + 3_600_000;
        let (from, to) = period_bounds("week", at).unwrap();
        assert_eq!(civil_of(from), (2026, 5, 18));
        assert_eq!(to - from, 7 * 86_400_000);
        let (from, to) = period_bounds("month", at).unwrap();
        assert_eq!(civil_of(from), (2026, 5, 1));
        assert_eq!(civil_of(to), (2026, 6, 1));
        assert!(parse_time("2026-02-30").is_err());
        assert!(period_bounds("year", at).is_err());
    }

    #[test]
    fn the_accepted_range_is_years_1_to_9999_in_china_time() {
        assert_eq!(day_start_ms(FIRST_YEAR, 1, 1), MIN_TIME_MS);
        assert_eq!(day_start_ms(LAST_YEAR + 1, 1, 1) - 1, MAX_TIME_MS);
        assert_eq!(parse_time("0001-01-01").unwrap(), MIN_TIME_MS);
        assert_eq!(civil_date(MAX_TIME_MS), (9999, 12, 31));
        for bad in [
            "9223372036854775807",
            "-9223372036854775808",
            "99999-12-31",
            "0000-12-31",
            "-2026-01-01",
            "+2026-01-01",
            "2026-1-1-1",
            "２０２６-01-01",
            "",
        ] {
            assert!(
                matches!(parse_time(bad), Err(ServerError::BadRequest(_))),
                "{bad}"
            );
        }
        // The last month: its end is the first instant after the range, computed, not refused.
        let (from, to) = period_bounds("month", MAX_TIME_MS).unwrap();
        assert_eq!((civil_date(from), to), ((9999, 12, 1), MAX_TIME_MS + 1));
    }

    use proptest::prelude::*;

    proptest! {
        /// Any text: a time inside the range or a typed 400, for every period; never a panic.
        #[test]
        fn any_text_is_a_time_in_range_or_a_typed_400(text in "\\PC{0,24}") {
            match parse_time(&text) {
                Ok(ms) => prop_assert!((MIN_TIME_MS..=MAX_TIME_MS).contains(&ms)),
                Err(e) => prop_assert!(matches!(e, ServerError::BadRequest(_))),
            }
            for period in ["week", "month", "year"] {
                if let Err(e) = period_at(period, Some(&text)) {
                    prop_assert!(matches!(e, ServerError::BadRequest(_)));
                }
            }
            let _ = crate::domain::split_list(&text);
        }

        /// Any integer, as ms in a query: itself when in range, else a typed 400; the calendar
        /// functions take any integer without overflowing.
        #[test]
        fn any_integer_is_a_time_or_a_typed_400(ms in any::<i64>()) {
            let in_range = (MIN_TIME_MS..=MAX_TIME_MS).contains(&ms);
            match parse_time(&ms.to_string()) {
                Ok(t) => prop_assert!(in_range && t == ms),
                Err(e) => prop_assert!(!in_range && matches!(e, ServerError::BadRequest(_))),
            }
            for period in ["week", "month"] {
                match period_bounds(period, ms) {
                    Ok((from, to)) => prop_assert!(in_range && from <= ms && ms < to),
                    Err(e) => prop_assert!(!in_range && matches!(e, ServerError::BadRequest(_))),
                }
            }
            let start = day_start(ms);
            prop_assert!(start <= ms.clamp(MIN_TIME_MS, MAX_TIME_MS));
            let _ = civil_date(ms);
        }

        /// Date-shaped text with any numbers in it.
        #[test]
        fn any_numbers_in_a_date_are_a_date_or_a_typed_400(
            y in any::<i64>(), m in any::<i64>(), d in any::<i64>()
        ) {
            if let Ok(ms) = parse_time(&format!("{y:04}-{m:02}-{d:02}")) {
                prop_assert_eq!(civil_date(ms), (y, m as u32, d as u32));
            }
        }

        /// Every day of the range reads back as itself and starts its own day.
        #[test]
        fn dates_in_range_round_trip(y in FIRST_YEAR..=LAST_YEAR, m in 1u32..=12, d in 1u32..=31) {
            prop_assume!(d <= days_in_month(y, m));
            let ms = parse_time(&format!("{y:04}-{m:02}-{d:02}")).unwrap();
            prop_assert_eq!(civil_date(ms), (y, m, d));
            prop_assert_eq!(day_start(ms + 86_399_999), ms);
        }
    }
}
