//! Temporal values at their column's own unit over the whole range the sources allow.
//!
//! Dates, times and timestamps are kept as Arrow keeps them (days, or ticks of the column's
//! unit since the Unix epoch) and never pass through nanoseconds, whose 64 bits end in 1677
//! and 2262. Text is computed with integer civil-calendar arithmetic, which covers every `i64`
//! tick count (chrono stops at ±262143 years; PostgreSQL dates reach 5874897 AD).
//!
//! PostgreSQL's `infinity` and `-infinity` are the largest and smallest value of the Arrow
//! type ([`POS_INFINITY`], [`NEG_INFINITY`], and their `i32` twins for dates): they order
//! after and before every date, as in PostgreSQL, and print as `infinity` / `-infinity`.

use std::fmt::Write;

use arrow::datatypes::{DataType, TimeUnit};
use datafusion_common::ScalarValue;

/// `infinity` in a timestamp column, in any unit.
pub const POS_INFINITY: i64 = i64::MAX;
/// `-infinity` in a timestamp column, in any unit.
pub const NEG_INFINITY: i64 = i64::MIN;
/// `infinity` in a date column.
pub const DATE_POS_INFINITY: i32 = i32::MAX;
/// `-infinity` in a date column.
pub const DATE_NEG_INFINITY: i32 = i32::MIN;

const SECONDS_PER_DAY: i64 = 86_400;

/// Ticks of `unit` per second.
pub fn per_second(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

/// The proleptic Gregorian (year, month, day) of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`, exact for every `i64` that cannot overflow below).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The day count since 1970-01-01 of a proleptic Gregorian date (the inverse of
/// [`civil_from_days`]).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// A year as ISO 8601 (and chrono) writes it: four digits, a sign outside 0..=9999.
fn write_year(out: &mut String, year: i64) {
    let _ = match year {
        0..=9999 => write!(out, "{year:04}"),
        10_000.. => write!(out, "+{year}"),
        _ => write!(out, "-{:04}", year.unsigned_abs()),
    };
}

fn write_civil_date(out: &mut String, days: i64) {
    let (year, month, day) = civil_from_days(days);
    write_year(out, year);
    let _ = write!(out, "-{month:02}-{day:02}");
}

/// Seconds within a day and the fraction's nanoseconds, as `HH:MM:SS[.fff[fff[fff]]]`: the
/// fraction in as few groups of three digits as keep it exact.
fn write_clock(out: &mut String, seconds: i64, nanos: i64) {
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        seconds / 3_600,
        seconds / 60 % 60,
        seconds % 60
    );
    let _ = match nanos {
        0 => Ok(()),
        n if n % 1_000_000 == 0 => write!(out, ".{:03}", n / 1_000_000),
        n if n % 1_000 == 0 => write!(out, ".{:06}", n / 1_000),
        n => write!(out, ".{n:09}"),
    };
}

/// A MySQL `TIME`, a signed duration of `micros` microseconds, as MySQL writes it with the
/// fraction [`write_clock`] keeps: `-838:59:59`, `01:02:03.004`.
pub fn duration_text(micros: i64) -> String {
    let mut out = String::new();
    if micros < 0 {
        out.push('-');
    }
    let abs = micros.unsigned_abs();
    write_clock(
        &mut out,
        (abs / 1_000_000) as i64,
        (abs % 1_000_000 * 1_000) as i64,
    );
    out
}

/// Writes a date (days since the epoch) as a JSON string.
pub fn write_date(out: &mut String, days: i32) {
    out.push('"');
    match days {
        DATE_POS_INFINITY => out.push_str("infinity"),
        DATE_NEG_INFINITY => out.push_str("-infinity"),
        days => write_civil_date(out, i64::from(days)),
    }
    out.push('"');
}

/// Writes a time of day (`value` ticks of `unit` since midnight) as a JSON string;
/// PostgreSQL's `24:00:00` included.
pub fn write_time(out: &mut String, value: i64, unit: TimeUnit) {
    let per = per_second(unit);
    let nanos = value.rem_euclid(per) * (1_000_000_000 / per);
    out.push('"');
    write_clock(out, value.div_euclid(per), nanos);
    out.push('"');
}

/// Writes a timestamp (`value` ticks of `unit` since the epoch) as a JSON string, with `Z`
/// when the column has a time zone (its values are UTC instants).
pub fn write_timestamp(out: &mut String, value: i64, unit: TimeUnit, utc: bool) {
    out.push('"');
    match value {
        POS_INFINITY => out.push_str("infinity"),
        NEG_INFINITY => out.push_str("-infinity"),
        value => {
            let per = per_second(unit);
            let seconds = value.div_euclid(per);
            let nanos = value.rem_euclid(per) * (1_000_000_000 / per);
            write_civil_date(out, seconds.div_euclid(SECONDS_PER_DAY));
            out.push('T');
            write_clock(out, seconds.rem_euclid(SECONDS_PER_DAY), nanos);
            if utc {
                out.push('Z');
            }
        }
    }
    out.push('"');
}

/// Parses `[+-]YYYY-MM-DD` (any number of year digits); the rest of the text after it.
fn parse_civil_date(s: &str) -> Option<(i64, &str)> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'-' => (-1, &s[1..]),
        b'+' => (1, &s[1..]),
        _ => (1, s),
    };
    let year_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    if year_len < 4 || rest.len() < year_len + 6 {
        return None;
    }
    let year: i64 = rest[..year_len].parse().ok()?;
    let tail = &rest[year_len..];
    let bytes = tail.as_bytes();
    if bytes[0] != b'-' || bytes[3] != b'-' {
        return None;
    }
    let month: u32 = tail[1..3].parse().ok()?;
    let day: u32 = tail[4..6].parse().ok()?;
    let year = sign * year;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some((days_from_civil(year, month, day), &tail[6..]))
}

/// A date as text (`2024-02-29`, `-4712-01-01`, `+10000-01-01`, `infinity`) as days since
/// the epoch; `None` when it is not one or lies beyond an `i32` of days.
pub fn parse_date(s: &str) -> Option<i32> {
    match s {
        "infinity" => return Some(DATE_POS_INFINITY),
        "-infinity" => return Some(DATE_NEG_INFINITY),
        _ => {}
    }
    let (days, rest) = parse_civil_date(s)?;
    let days = i32::try_from(days).ok()?;
    (rest.is_empty() && days != DATE_POS_INFINITY && days != DATE_NEG_INFINITY).then_some(days)
}

/// `HH:MM:SS[.f…]` (hour up to 24) as nanoseconds since midnight; the rest of the text.
fn parse_clock(s: &str) -> Option<(i64, &str)> {
    let b = s.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let field = |range: std::ops::Range<usize>| -> Option<i64> {
        s.get(range)
            .filter(|t| t.bytes().all(|c| c.is_ascii_digit()))?
            .parse()
            .ok()
    };
    let (h, m, sec) = (field(0..2)?, field(3..5)?, field(6..8)?);
    if h > 24 || m > 59 || sec > 59 {
        return None;
    }
    let mut rest = &s[8..];
    let mut nanos = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = fraction[..digits].parse::<i64>().ok()? * 10i64.pow(9 - digits as u32);
        rest = &fraction[digits..];
    }
    let total = (h * 3_600 + m * 60 + sec) * 1_000_000_000 + nanos;
    (total <= SECONDS_PER_DAY * 1_000_000_000).then_some((total, rest))
}

/// A time of day as text (`13:45:30.123456`, `24:00:00`, a trailing `Z` allowed) in ticks of
/// `unit`, truncated like Debezium's integer encodings.
pub fn parse_time(s: &str, unit: TimeUnit) -> Option<i64> {
    let (nanos, rest) = parse_clock(s)?;
    matches!(rest, "" | "Z").then(|| nanos / (1_000_000_000 / per_second(unit)))
}

/// A timestamp as ISO-8601 text, as Debezium's `ZonedTimestamp` writes it (any year, a `T`
/// or a space, an optional offset `Z`, `±HH`, `±HH:MM` or `±HH:MM:SS`), or `infinity`, in
/// ticks of `unit` since the epoch (UTC); `None` when it is none or beyond an `i64` of ticks.
pub fn parse_timestamp(s: &str, unit: TimeUnit) -> Option<i64> {
    match s {
        "infinity" => return Some(POS_INFINITY),
        "-infinity" => return Some(NEG_INFINITY),
        _ => {}
    }
    let (days, rest) = parse_civil_date(s)?;
    let rest = rest.strip_prefix(['T', ' '])?;
    let (nanos, zone) = parse_clock(rest)?;
    let offset_seconds = parse_offset(zone)?;
    let per = per_second(unit);
    let seconds = days
        .checked_mul(SECONDS_PER_DAY)?
        .checked_add(nanos / 1_000_000_000)?
        .checked_sub(offset_seconds)?;
    let value = seconds
        .checked_mul(per)?
        .checked_add(nanos % 1_000_000_000 / (1_000_000_000 / per))?;
    (value != POS_INFINITY && value != NEG_INFINITY).then_some(value)
}

/// `""`, `Z`, `±HH`, `±HH:MM` or `±HH:MM:SS` as seconds east of UTC.
fn parse_offset(zone: &str) -> Option<i64> {
    let sign = match zone.as_bytes().first() {
        None => return Some(0),
        Some(b'Z') if zone.len() == 1 => return Some(0),
        Some(b'+') => 1,
        Some(b'-') => -1,
        Some(_) => return None,
    };
    let mut seconds = 0;
    for (i, part) in zone[1..].split(':').enumerate() {
        if i > 2 || part.len() != 2 || !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        seconds += part.parse::<i64>().ok()? * [3_600, 60, 1][i];
    }
    Some(sign * seconds)
}

/// The nanosecond timestamps' range, which some DataFusion functions compute in: a value of
/// `unit` inside it converts to nanoseconds without overflow.
pub fn fits_nanoseconds(value: i64, unit: TimeUnit) -> bool {
    value
        .checked_mul(1_000_000_000 / per_second(unit))
        .is_some()
}

/// Whether a temporal scalar is PostgreSQL's `infinity` or `-infinity`.
pub fn is_infinite(value: &ScalarValue) -> bool {
    match value {
        ScalarValue::Date32(Some(d)) => *d == DATE_POS_INFINITY || *d == DATE_NEG_INFINITY,
        ScalarValue::TimestampSecond(Some(v), _)
        | ScalarValue::TimestampMillisecond(Some(v), _)
        | ScalarValue::TimestampMicrosecond(Some(v), _)
        | ScalarValue::TimestampNanosecond(Some(v), _) => *v == POS_INFINITY || *v == NEG_INFINITY,
        _ => false,
    }
}

/// Whether a temporal scalar converts to nanoseconds (null and non-temporal values do).
pub fn scalar_fits_nanoseconds(value: &ScalarValue) -> bool {
    match value {
        ScalarValue::Date32(Some(d)) => {
            fits_nanoseconds(i64::from(*d) * SECONDS_PER_DAY, TimeUnit::Second)
        }
        ScalarValue::TimestampSecond(Some(v), _) => fits_nanoseconds(*v, TimeUnit::Second),
        ScalarValue::TimestampMillisecond(Some(v), _) => {
            fits_nanoseconds(*v, TimeUnit::Millisecond)
        }
        ScalarValue::TimestampMicrosecond(Some(v), _) => {
            fits_nanoseconds(*v, TimeUnit::Microsecond)
        }
        _ => true,
    }
}

/// What a query's expressions demand of a temporal column's values, found at plan time
/// ([`crate::plan`]) and checked per record by the decoder: a value they cannot compute
/// with refuses its record (a dead letter naming the column), never a different date.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Guard {
    /// The column is computed on (arithmetic, casts, functions): `infinity` has no value
    /// there. The string names the computation.
    Finite(String),
    /// The column goes through a DataFusion function that computes in nanoseconds
    /// (`date_trunc` above a day, `date_bin`, a cast to nanoseconds): only 1677-09-21 to
    /// 2262-04-11 can be computed.
    Nanoseconds(String),
}

impl Guard {
    /// Whether the value may be computed on; the error says why not.
    pub fn check(&self, value: &ScalarValue) -> Result<(), String> {
        let (what, finite_only) = match self {
            Guard::Finite(what) => (what, true),
            Guard::Nanoseconds(what) => (what, false),
        };
        if is_infinite(value) {
            return Err(format!(
                "{} is infinite, which `{what}` in this query cannot compute with",
                text(value)
            ));
        }
        if !finite_only && !scalar_fits_nanoseconds(value) {
            return Err(format!(
                "{} is outside 1677-09-21..2262-04-11, the only range `{what}` computes in \
                 (through 64-bit nanoseconds)",
                text(value)
            ));
        }
        Ok(())
    }
}

/// A temporal value as output writes it, for messages.
fn text(value: &ScalarValue) -> String {
    let mut out = String::new();
    crate::output::write_value(&mut out, value);
    out
}

/// Whether values of this type are dates, times or timestamps.
pub fn is_temporal(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Date32 | DataType::Date64 | DataType::Time32(_) | DataType::Time64(_)
    ) || matches!(data_type, DataType::Timestamp(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timestamp(value: i64, unit: TimeUnit, utc: bool) -> String {
        let mut out = String::new();
        write_timestamp(&mut out, value, unit, utc);
        out
    }

    #[test]
    fn civil_days_round_trip_far_beyond_chrono() {
        for days in [
            -2_147_483_648i64,
            -2_440_915,
            -1,
            0,
            1,
            2_932_896,
            2_147_483_647,
        ] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
    }

    #[test]
    fn timestamps_keep_their_value_outside_the_nanosecond_range() {
        let micros = |s: &str| parse_timestamp(s, TimeUnit::Microsecond).unwrap();
        let v = micros("9999-12-31T23:59:59.999999Z");
        assert_eq!(v, 253_402_300_799_999_999);
        assert_eq!(
            timestamp(v, TimeUnit::Microsecond, false),
            "\"9999-12-31T23:59:59.999999\""
        );
        let v = micros("1000-01-01T00:00:00Z");
        assert_eq!(
            timestamp(v, TimeUnit::Microsecond, true),
            "\"1000-01-01T00:00:00Z\""
        );
        let v = micros("-4712-11-24T00:00:00Z");
        assert_eq!(
            timestamp(v, TimeUnit::Microsecond, true),
            "\"-4712-11-24T00:00:00Z\""
        );
        let v = micros("+294246-12-31T23:59:59.5Z");
        assert_eq!(
            timestamp(v, TimeUnit::Microsecond, false),
            "\"+294246-12-31T23:59:59.500\""
        );
        assert_eq!(
            timestamp(1_709_214_330_123, TimeUnit::Millisecond, true),
            "\"2024-02-29T13:45:30.123Z\""
        );
        assert_eq!(
            micros("2024-02-29T15:45:30+02:00"),
            micros("2024-02-29T13:45:30Z")
        );
        assert_eq!(
            micros("2024-02-29 13:45:30.1-00:30"),
            micros("2024-02-29T14:15:30.1Z")
        );
    }

    #[test]
    fn infinities_are_the_extreme_values_and_print_as_postgresql_does() {
        assert_eq!(
            parse_timestamp("infinity", TimeUnit::Millisecond),
            Some(POS_INFINITY)
        );
        assert_eq!(
            timestamp(NEG_INFINITY, TimeUnit::Microsecond, true),
            "\"-infinity\""
        );
        assert_eq!(parse_date("-infinity"), Some(DATE_NEG_INFINITY));
        let mut out = String::new();
        write_date(&mut out, DATE_POS_INFINITY);
        assert_eq!(out, "\"infinity\"");
    }

    #[test]
    fn dates_and_times_over_their_whole_range() {
        let date = |d: i32| {
            let mut out = String::new();
            write_date(&mut out, d);
            out
        };
        assert_eq!(
            date(parse_date("5874897-12-31").unwrap()),
            "\"+5874897-12-31\""
        );
        assert_eq!(date(parse_date("0001-01-01").unwrap()), "\"0001-01-01\"");
        assert_eq!(parse_date("2023-02-29"), None);
        let mut out = String::new();
        write_time(&mut out, 86_400_000_000, TimeUnit::Microsecond);
        assert_eq!(out, "\"24:00:00\"");
        assert_eq!(
            parse_time("24:00:00", TimeUnit::Microsecond),
            Some(86_400_000_000)
        );
        assert_eq!(
            parse_time("13:45:30.123456", TimeUnit::Millisecond),
            Some(49_530_123)
        );
        assert!(!fits_nanoseconds(
            253_402_300_799_999_999,
            TimeUnit::Microsecond
        ));
        assert!(fits_nanoseconds(1_709_214_330_123, TimeUnit::Millisecond));
    }
}
