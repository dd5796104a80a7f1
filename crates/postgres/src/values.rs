//! PostgreSQL values, as their text output, encoded as Debezium's PostgreSQL connector
//! encodes them in JSON without schemas.
//!
//! Sessions run with `DateStyle=ISO`, `TimeZone=UTC`, `IntervalStyle=postgres` and
//! `bytea_output=hex` (see [`SESSION_SETTINGS`]), so each type has one text form to read.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The settings every session this crate opens runs with, as startup parameters.
pub const SESSION_SETTINGS: &[(&str, &str)] = &[
    ("DateStyle", "ISO,MDY"),
    ("TimeZone", "UTC"),
    ("IntervalStyle", "postgres"),
    ("bytea_output", "hex"),
    ("extra_float_digits", "1"),
];

/// Debezium's `decimal.handling.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecimalMode {
    #[default]
    Precise,
    String,
    Double,
}

/// Debezium's `time.precision.mode`: `adaptive` (its default) keeps each column's
/// precision, `connect` uses milliseconds throughout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeMode {
    #[default]
    Adaptive,
    Connect,
}

/// How a column's values are encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int,
    Float,
    /// `numeric(p,s)`: `Some(s)`; unconstrained `numeric`: `None`.
    Numeric(Option<u32>),
    Text,
    Bytea,
    Date,
    /// `time(p)`, `timestamp(p)` with their precision (6 when unspecified).
    Time(u32),
    Timestamp(u32),
    TimestampTz,
    Interval,
    Array(Box<Kind>),
}

impl Kind {
    /// The kind of a built-in type (by OID and modifier); `None` for types the catalog must
    /// describe (enums, arrays of them, domains), which are then text or arrays of text.
    pub fn of_builtin(oid: u32, modifier: i32) -> Option<Kind> {
        let precision = || if modifier < 0 { 6 } else { modifier as u32 };
        Some(match oid {
            16 => Kind::Bool,
            20 | 21 | 23 | 26 => Kind::Int,
            700 | 701 => Kind::Float,
            1700 => Kind::Numeric((modifier >= 4).then(|| ((modifier - 4) & 0xFFFF) as u32)),
            17 => Kind::Bytea,
            1082 => Kind::Date,
            1083 => Kind::Time(precision()),
            1114 => Kind::Timestamp(precision()),
            1184 => Kind::TimestampTz,
            1186 => Kind::Interval,
            18 | 19 | 25 | 114 | 142 | 1042 | 1043 | 2950 | 3802 => Kind::Text,
            1000 => Kind::Array(Box::new(Kind::Bool)),
            1005 | 1007 | 1016 => Kind::Array(Box::new(Kind::Int)),
            1021 | 1022 => Kind::Array(Box::new(Kind::Float)),
            1231 => Kind::Array(Box::new(Kind::Numeric(None))),
            1009 | 1014 | 1015 | 199 | 2951 | 3807 => Kind::Array(Box::new(Kind::Text)),
            1182 => Kind::Array(Box::new(Kind::Date)),
            1115 => Kind::Array(Box::new(Kind::Timestamp(6))),
            1185 => Kind::Array(Box::new(Kind::TimestampTz)),
            _ => return None,
        })
    }

    /// Writes what Debezium writes for a NOT NULL column absent from a key-only old
    /// image: the type's zero.
    pub fn write_zero(&self, modes: Modes, out: &mut Vec<u8>) {
        let zero: &[u8] = match self {
            Kind::Bool => b"false",
            Kind::Int | Kind::Date | Kind::Time(_) | Kind::Timestamp(_) | Kind::Interval => b"0",
            Kind::Float => b"0.0",
            Kind::Numeric(scale) => {
                let text = format!("0{}", zeros_after_point(*scale));
                if write(self, &text, modes, out).is_ok() {
                    return;
                }
                b"null"
            }
            Kind::Text | Kind::Bytea => b"\"\"",
            Kind::TimestampTz => b"\"1970-01-01T00:00:00.000000Z\"",
            Kind::Array(_) => b"[]",
        };
        out.extend_from_slice(zero);
    }
}

fn zeros_after_point(scale: Option<u32>) -> String {
    match scale {
        Some(s) if s > 0 => format!(".{}", "0".repeat(s as usize)),
        _ => String::new(),
    }
}

/// The connector options that change encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Modes {
    pub decimal: DecimalMode,
    pub time: TimeMode,
}

/// Writes one value's text as JSON onto `out`; the error says what the text was expected
/// to be (and `out` may then hold part of the value).
pub fn write(kind: &Kind, text: &str, modes: Modes, out: &mut Vec<u8>) -> Result<(), String> {
    let bad = |what: &str| format!("`{text}` is not {what}");
    match kind {
        Kind::Bool => out.extend_from_slice(if text == "t" { b"true" } else { b"false" }),
        Kind::Int => integer(out, text.parse::<i64>().map_err(|_| bad("an integer"))?),
        Kind::Float => float(out, text).ok_or_else(|| bad("a number"))?,
        Kind::Numeric(scale) => {
            numeric(out, text, *scale, modes.decimal).ok_or_else(|| bad("a decimal"))?
        }
        Kind::Text => string(out, text),
        Kind::Bytea => {
            let hex = text.strip_prefix("\\x").ok_or_else(|| bad("hex bytea"))?;
            let bytes = unhex(hex).ok_or_else(|| bad("hex bytea"))?;
            base64_string(out, &bytes);
        }
        Kind::Date => integer(out, days(text).ok_or_else(|| bad("a date"))?),
        Kind::Time(precision) => {
            let micros = time_micros(text).ok_or_else(|| bad("a time"))?;
            if *precision <= 3 || modes.time == TimeMode::Connect {
                integer(out, micros / 1000);
            } else {
                integer(out, micros);
            }
        }
        Kind::Timestamp(precision) => {
            let micros = timestamp_micros(text).ok_or_else(|| bad("a timestamp"))?;
            if *precision <= 3 || modes.time == TimeMode::Connect {
                integer(out, micros.div_euclid(1000));
            } else {
                integer(out, micros);
            }
        }
        Kind::TimestampTz => zoned(out, text).ok_or_else(|| bad("a UTC timestamptz"))?,
        Kind::Interval => integer(
            out,
            interval_micros(text).ok_or_else(|| bad("an interval"))?,
        ),
        Kind::Array(element) => {
            let items = array_items(text).ok_or_else(|| bad("a one-dimensional array"))?;
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match item {
                    None => out.extend_from_slice(b"null"),
                    Some(item) => write(element, item, modes, out)?,
                }
            }
            out.push(b']');
        }
    }
    Ok(())
}

/// Writes an integer.
pub fn integer(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Writes a JSON string, escaped.
pub fn string(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(out, text).expect("writing to a Vec cannot fail");
}

fn base64_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let start = out.len();
    out.resize(start + bytes.len().div_ceil(3) * 4, 0);
    let written = BASE64
        .encode_slice(bytes, &mut out[start..])
        .expect("the buffer holds the padded length");
    out.truncate(start + written);
    out.push(b'"');
}

/// A finite number; PostgreSQL's `NaN` and infinities have no JSON form.
fn float(out: &mut Vec<u8>, text: &str) -> Option<()> {
    let value: f64 = text.parse().ok()?;
    value.is_finite().then(|| {
        serde_json::to_writer(out, &value).expect("writing to a Vec cannot fail");
    })
}

/// A decimal's text as Debezium writes it: `precise` is the unscaled value's minimal
/// big-endian two's complement in base64 (with the scale beside it when the column has
/// none), `string` its text, `double` a number.
fn numeric(out: &mut Vec<u8>, text: &str, scale: Option<u32>, mode: DecimalMode) -> Option<()> {
    match mode {
        DecimalMode::String => {
            string(out, text);
            return Some(());
        }
        DecimalMode::Double => return float(out, text),
        DecimalMode::Precise => {}
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    if scale.is_none() {
        out.extend_from_slice(b"{\"scale\":");
        integer(out, fraction.len() as i64);
        out.extend_from_slice(b",\"value\":");
    }
    let digits = whole.bytes().chain(fraction.bytes()).map(|b| b - b'0');
    if whole.len() + fraction.len() <= 38 {
        let magnitude = digits.fold(0i128, |n, d| n * 10 + i128::from(d));
        let unscaled = if negative { -magnitude } else { magnitude };
        base64_string(out, minimal_twos_complement(&unscaled.to_be_bytes()));
    } else {
        let digits: Vec<u8> = digits.collect();
        base64_string(out, &twos_complement(&digits, negative));
    }
    if scale.is_none() {
        out.push(b'}');
    }
    Some(())
}

/// A big-endian two's complement without the leading bytes that only repeat the sign, as
/// Java's `BigInteger.toByteArray` writes it.
fn minimal_twos_complement(bytes: &[u8]) -> &[u8] {
    let mut start = 0;
    while start + 1 < bytes.len() {
        let (first, next) = (bytes[start], bytes[start + 1]);
        let redundant = (first == 0 && next & 0x80 == 0) || (first == 0xFF && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    &bytes[start..]
}

/// Decimal digits to the minimal big-endian two's complement, as Java's
/// `BigInteger.toByteArray`.
fn twos_complement(digits: &[u8], negative: bool) -> Vec<u8> {
    // Base-256 magnitude by repeated division of the decimal digits.
    let mut decimal: Vec<u8> = digits.to_vec();
    let mut magnitude = Vec::new();
    while decimal.iter().any(|d| *d != 0) {
        let mut remainder = 0u32;
        for d in decimal.iter_mut() {
            let current = remainder * 10 + u32::from(*d);
            *d = (current / 256) as u8;
            remainder = current % 256;
        }
        magnitude.push(remainder as u8);
    }
    magnitude.reverse();
    if magnitude.is_empty() {
        return vec![0];
    }
    if !negative {
        if magnitude[0] & 0x80 != 0 {
            magnitude.insert(0, 0);
        }
        return magnitude;
    }
    // Negate: invert and add one, then keep the sign bit set with the fewest bytes.
    let mut bytes: Vec<u8> = magnitude.iter().map(|b| !b).collect();
    for b in bytes.iter_mut().rev() {
        let (sum, carry) = b.overflowing_add(1);
        *b = sum;
        if !carry {
            break;
        }
    }
    if bytes[0] & 0x80 == 0 {
        bytes.insert(0, 0xFF);
    }
    while bytes.len() > 1 && bytes[0] == 0xFF && bytes[1] & 0x80 != 0 {
        bytes.remove(0);
    }
    bytes
}

fn unhex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Days from 1970-01-01 of a proleptic Gregorian date (`YYYY-MM-DD`, ` BC` for year ≤ 0).
fn days(text: &str) -> Option<i64> {
    let (text, bc) = match text.strip_suffix(" BC") {
        Some(t) => (t, true),
        None => (text, false),
    };
    let mut parts = text.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    let year = if bc { 1 - year } else { year };
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Microseconds of `HH:MM:SS[.ffffff]`.
fn time_micros(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, ':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let seconds = seconds_micros(parts.next()?)?;
    Some((hours * 60 + minutes) * 60_000_000 + seconds)
}

/// `SS[.f…]` as microseconds.
fn seconds_micros(text: &str) -> Option<i64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let whole: i64 = whole.parse().ok()?;
    if fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fraction: i64 = format!("{fraction:0<6}").parse().ok()?;
    Some(whole * 1_000_000 + fraction)
}

/// Microseconds from the epoch of `YYYY-MM-DD HH:MM:SS[.f][ BC]`.
fn timestamp_micros(text: &str) -> Option<i64> {
    let (text, bc) = match text.strip_suffix(" BC") {
        Some(t) => (t, " BC"),
        None => (text, ""),
    };
    let (date, time) = text.split_once(' ')?;
    Some(days(&format!("{date}{bc}"))? * 86_400_000_000 + time_micros(time)?)
}

/// A UTC `timestamptz` text (`… 11:45:30.123+00`) as Debezium's ISO form with six digits.
fn zoned(out: &mut Vec<u8>, text: &str) -> Option<()> {
    let local = text.strip_suffix("+00")?;
    let (date, time) = local.split_once(' ')?;
    let (whole, fraction) = time.split_once('.').unwrap_or((time, ""));
    if fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    out.push(b'"');
    out.extend_from_slice(date.as_bytes());
    out.push(b'T');
    out.extend_from_slice(whole.as_bytes());
    out.push(b'.');
    out.extend_from_slice(fraction.as_bytes());
    out.extend(std::iter::repeat_n(b'0', 6 - fraction.len()));
    out.extend_from_slice(b"Z\"");
    Some(())
}

/// An interval (`IntervalStyle=postgres`) as Debezium's MicroDuration: a month is 365.25/12
/// days.
fn interval_micros(text: &str) -> Option<i64> {
    const MONTH_MICROS: i64 = 2_629_800_000_000;
    const DAY_MICROS: i64 = 86_400_000_000;
    let mut total = 0i64;
    let mut words = text.split_whitespace();
    while let Some(word) = words.next() {
        if word.contains(':') {
            let (negative, clock) = match word.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, word.strip_prefix('+').unwrap_or(word)),
            };
            let micros = time_micros(clock)?;
            total += if negative { -micros } else { micros };
            continue;
        }
        let amount: i64 = word.parse().ok()?;
        let unit = words.next()?;
        total += amount
            * match unit.trim_end_matches('s') {
                "year" => 12 * MONTH_MICROS,
                "mon" => MONTH_MICROS,
                "day" => DAY_MICROS,
                _ => return None,
            };
    }
    Some(total)
}

/// The items of a one-dimensional array literal (`{1,NULL,"a b"}`); `None` for an item
/// means SQL NULL.
fn array_items(text: &str) -> Option<Vec<Option<String>>> {
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    let mut items = Vec::new();
    if inner.is_empty() {
        return Some(items);
    }
    let mut chars = inner.chars().peekable();
    loop {
        let mut item = String::new();
        let mut quoted = false;
        if chars.peek() == Some(&'"') {
            quoted = true;
            chars.next();
            loop {
                match chars.next()? {
                    '\\' => item.push(chars.next()?),
                    '"' => break,
                    c => item.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                if c == '{' {
                    return None;
                }
                item.push(c);
            }
        }
        items.push(if !quoted && item == "NULL" {
            None
        } else {
            Some(item)
        });
        match chars.next() {
            None => return Some(items),
            Some(',') => {}
            Some(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// The value `write` writes, parsed back.
    fn encode(kind: &Kind, text: &str, modes: Modes) -> Result<Value, String> {
        let mut out = Vec::new();
        write(kind, text, modes, &mut out)?;
        Ok(serde_json::from_slice(&out).expect("valid JSON"))
    }

    fn precise(kind: Kind, text: &str) -> Value {
        encode(&kind, text, Modes::default()).unwrap()
    }

    /// Each expected value is what Debezium 3.6 wrote for the same PostgreSQL value in
    /// fixtures/pg-app (precise decimals, adaptive time precision).
    #[test]
    fn values_match_debeziums_captures() {
        assert_eq!(
            precise(Kind::Numeric(Some(4)), "123456.7891"),
            json!("SZYC0w==")
        );
        assert_eq!(precise(Kind::Numeric(Some(4)), "-0.0001"), json!("/w=="));
        assert_eq!(
            precise(Kind::Numeric(None), "3.14159265358979323846"),
            json!({"scale": 20, "value": "EQfV61tbpNfG"})
        );
        assert_eq!(
            precise(Kind::Numeric(None), "100"),
            json!({"scale": 0, "value": "ZA=="})
        );
        assert_eq!(precise(Kind::Date, "2024-02-29"), json!(19782));
        assert_eq!(
            precise(Kind::Time(6), "13:45:30.123456"),
            json!(49_530_123_456_i64)
        );
        assert_eq!(precise(Kind::Time(3), "13:45:30.123"), json!(49_530_123));
        assert_eq!(precise(Kind::Time(3), "23:59:59.999"), json!(86_399_999));
        assert_eq!(
            precise(Kind::Timestamp(6), "2024-02-29 13:45:30.123456"),
            json!(1_709_214_330_123_456_i64)
        );
        assert_eq!(
            precise(Kind::Timestamp(6), "1969-12-31 23:59:59.999999"),
            json!(-1)
        );
        assert_eq!(
            precise(Kind::Timestamp(3), "2024-02-29 13:45:30.123"),
            json!(1_709_214_330_123_i64)
        );
        assert_eq!(
            precise(Kind::TimestampTz, "2024-02-29 11:45:30.123456+00"),
            json!("2024-02-29T11:45:30.123456Z")
        );
        assert_eq!(
            precise(Kind::TimestampTz, "2038-01-19 03:14:08+00"),
            json!("2038-01-19T03:14:08.000000Z")
        );
        assert_eq!(precise(Kind::Bytea, "\\xdeadbeef00ff"), json!("3q2+7wD/"));
        assert_eq!(precise(Kind::Bytea, "\\x"), json!(""));
        assert_eq!(
            precise(Kind::Interval, "1 year 2 mons 3 days 04:05:06.5"),
            json!(37_091_106_500_000_i64)
        );
        assert_eq!(
            precise(Kind::Interval, "-1 days"),
            json!(-86_400_000_000_i64)
        );
        assert_eq!(
            precise(Kind::Array(Box::new(Kind::Int)), "{1,2,NULL,4}"),
            json!([1, 2, null, 4])
        );
        assert_eq!(
            precise(Kind::Array(Box::new(Kind::Text)), "{x,\"y z\"}"),
            json!(["x", "y z"])
        );
        assert_eq!(precise(Kind::Array(Box::new(Kind::Int)), "{}"), json!([]));
        assert_eq!(precise(Kind::Float, "2.5"), json!(2.5));
        assert_eq!(precise(Kind::Float, "1e-300"), json!(1e-300));
    }

    #[test]
    fn decimal_modes_and_twos_complement_edges() {
        let string = Modes {
            decimal: DecimalMode::String,
            ..Modes::default()
        };
        let double = Modes {
            decimal: DecimalMode::Double,
            ..Modes::default()
        };
        assert_eq!(
            encode(&Kind::Numeric(Some(2)), "19.99", string).unwrap(),
            json!("19.99")
        );
        assert_eq!(
            encode(&Kind::Numeric(Some(2)), "19.99", double).unwrap(),
            json!(19.99)
        );
        for (digits, negative, bytes) in [
            ("0", false, vec![0u8]),
            ("128", false, vec![0, 0x80]),
            ("128", true, vec![0x80]),
            ("129", true, vec![0xFF, 0x7F]),
            ("255", false, vec![0, 0xFF]),
            ("256", true, vec![0xFF, 0x00]),
        ] {
            let d: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
            assert_eq!(twos_complement(&d, negative), bytes, "{negative} {digits}");
        }
        let connect = Modes {
            time: TimeMode::Connect,
            ..Modes::default()
        };
        assert_eq!(
            encode(&Kind::Time(6), "00:00:01.5", connect).unwrap(),
            json!(1500)
        );
        assert!(
            encode(&Kind::Date, "soon", Modes::default())
                .unwrap_err()
                .contains("`soon`")
        );
    }

    /// The fast path (unscaled values of up to 38 digits, through `i128`) writes what the
    /// digit-by-digit conversion writes.
    #[test]
    fn short_decimals_agree_with_the_long_conversion() {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let length = (next() % 38 + 1) as usize;
            let digits: String = (0..length)
                .map(|_| char::from(b'0' + (next() % 10) as u8))
                .collect();
            let negative = next() % 2 == 0;
            let unscaled: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
            let text = format!("{}{digits}", if negative { "-" } else { "" });
            let mut fast = Vec::new();
            numeric(&mut fast, &text, Some(0), DecimalMode::Precise).unwrap();
            let mut long = Vec::new();
            base64_string(&mut long, &twos_complement(&unscaled, negative));
            assert_eq!(fast, long, "{text}");
        }
        let zeros = |kind: Kind| {
            let mut out = Vec::new();
            kind.write_zero(Modes::default(), &mut out);
            serde_json::from_slice::<Value>(&out).unwrap()
        };
        assert_eq!(zeros(Kind::Numeric(Some(2))), json!("AA=="));
        assert_eq!(
            zeros(Kind::TimestampTz),
            json!("1970-01-01T00:00:00.000000Z")
        );
        assert_eq!(zeros(Kind::Text), json!(""));
        assert!(encode(&Kind::Float, "NaN", Modes::default()).is_err());
    }
}
