//! Result changes encoded as JSON records: upsert, Flink's debezium-json, or Debezium's own shape.
//!
//! `upsert` and `debezium-u` write values so a consumer loses nothing: decimals as JSON numbers
//! with their scale (`25.50`), timestamps as ISO-8601 strings (with `Z` when the column has a
//! time zone), bytes as base64, lists as arrays.
//!
//! `debezium` spells values as Flink's JSON formats do with their default options (flink-json's
//! row-to-JSON converters under Flink's Jackson), so a consumer of the Flink job it replaces
//! cannot tell the difference ([`Style::Flink`]; checked against Flink 2.3 by
//! `benches/flink/format_check.sh`).

use std::fmt::Write;

use arrow::array::Array;
use arrow::datatypes::{FieldRef, TimeUnit, i256};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use datafusion_common::ScalarValue;

use crate::consolidate::{ChangeKind, ResultChange};

/// The shape of output records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Format {
    /// Key = the key columns; value = the row, or null (a tombstone) when it is gone.
    #[default]
    #[serde(rename = "upsert")]
    Upsert,
    /// What Flink's `debezium-json` serializer writes, which knows two ops: `{"before": null,
    /// "after": row, "op": "c"}` for a row that enters and `{"before": row, "after": null,
    /// "op": "d"}` for one that leaves; an update is a `d` of the old row then a `c` of the new.
    #[serde(rename = "debezium")]
    Debezium,
    /// Debezium's own shape: an update is one `{"before": old, "after": new, "op": "u"}`.
    #[serde(rename = "debezium-u")]
    DebeziumUpdate,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "upsert" => Ok(Format::Upsert),
            "debezium" => Ok(Format::Debezium),
            "debezium-u" => Ok(Format::DebeziumUpdate),
            other => Err(format!(
                "unknown format {other:?} (expected upsert, debezium or debezium-u)"
            )),
        }
    }
}

impl Format {
    /// How values are spelled in this format's records.
    fn style(self) -> Style {
        match self {
            Format::Debezium => Style::Flink,
            Format::Upsert | Format::DebeziumUpdate => Style::Iso,
        }
    }
}

/// How values are spelled inside a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// Exact, ISO-8601: decimals at their scale (`1200.00`), `"2020-12-30T12:13:14.100"`.
    Iso,
    /// What Flink writes with `json.timestamp-format.standard = SQL` (the default) and
    /// `encode.decimal-as-plain-number = false` (the default): decimals as Java's
    /// `BigDecimal.stripTrailingZeros().toString()` (`1200.00` is `1.2E+3`, `0.10` is `0.1`,
    /// zero is `0`), doubles as Java's `Double.toString` (`1.0`, `1.0E7`, `1.0E-4`),
    /// timestamps as `"2020-12-30 12:13:14.1"` (the fraction in as few digits as keep it, none
    /// when zero; `Z` after a `TIMESTAMP_LTZ`), times to the millisecond (Flink keeps no
    /// more), control characters escaped with upper-case hex (`\u001F`).
    Flink,
}

/// One encoded output record: Kafka key and value bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub key: String,
    /// `None` is a tombstone (upsert deletes).
    pub value: Option<String>,
}

/// Encodes result changes of one query.
#[derive(Debug, Clone)]
pub struct Encoder {
    format: Format,
    key_names: Vec<String>,
    value_names: Vec<String>,
}

impl Encoder {
    pub fn new(format: Format, key_fields: &[FieldRef], value_fields: &[FieldRef]) -> Self {
        let names = |fields: &[FieldRef]| fields.iter().map(|f| f.name().clone()).collect();
        Self {
            format,
            key_names: names(key_fields),
            value_names: names(value_fields),
        }
    }

    /// The records of one result change, in the order they must be published: one, or two
    /// (`d` then `c`) for an update in [`Format::Debezium`].
    pub fn encode(&self, change: &ResultChange) -> Vec<Encoded> {
        let style = self.format.style();
        let key = object(&self.key_names, &change.key, style);
        let row = |r: &Option<Vec<ScalarValue>>| r.as_ref().map(|r| self.row(r));
        let envelope = |before: Option<String>, after: Option<String>, op: &str| {
            let or_null = |r: Option<String>| r.unwrap_or_else(|| "null".into());
            Some(format!(
                r#"{{"before":{},"after":{},"op":"{op}"}}"#,
                or_null(before),
                or_null(after)
            ))
        };
        let values = match (self.format, change.kind) {
            (Format::Upsert, _) => vec![row(&change.after)],
            (_, ChangeKind::Insert) => vec![envelope(None, row(&change.after), "c")],
            (_, ChangeKind::Delete) => vec![envelope(row(&change.before), None, "d")],
            (Format::Debezium, ChangeKind::Update) => vec![
                envelope(row(&change.before), None, "d"),
                envelope(None, row(&change.after), "c"),
            ],
            (Format::DebeziumUpdate, ChangeKind::Update) => {
                vec![envelope(row(&change.before), row(&change.after), "u")]
            }
        };
        values
            .into_iter()
            .map(|value| Encoded {
                key: key.clone(),
                value,
            })
            .collect()
    }

    /// One result row (values of the result's columns) as a JSON object keyed by column
    /// name, as the records' values spell it.
    pub fn row(&self, values: &[ScalarValue]) -> String {
        object(&self.value_names, values, self.format.style())
    }

    /// The change as lines of the CLI's output, one per record.
    pub fn lines(&self, change: &ResultChange) -> Vec<String> {
        self.encode(change)
            .into_iter()
            .map(|encoded| match self.format {
                Format::Upsert => format!(
                    r#"{{"key":{},"value":{}}}"#,
                    encoded.key,
                    encoded.value.as_deref().unwrap_or("null")
                ),
                Format::Debezium | Format::DebeziumUpdate => encoded.value.unwrap_or_default(),
            })
            .collect()
    }
}

fn object(names: &[String], values: &[ScalarValue], style: Style) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in names.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(&mut out, name, style);
        out.push(':');
        write_styled(&mut out, value, style);
    }
    out.push('}');
    out
}

fn write_string(out: &mut String, s: &str, style: Style) {
    match style {
        Style::Iso => out.push_str(&serde_json::Value::from(s).to_string()),
        Style::Flink => flink::write_string(out, s),
    }
}

/// Writes one value as JSON, as `upsert` does.
pub fn write_value(out: &mut String, value: &ScalarValue) {
    write_styled(out, value, Style::Iso);
}

fn write_styled(out: &mut String, value: &ScalarValue, style: Style) {
    use ScalarValue as V;
    if value.is_null() {
        out.push_str("null");
        return;
    }
    let _ = match value {
        V::Boolean(Some(b)) => write!(out, "{b}"),
        V::Int8(Some(v)) => write!(out, "{v}"),
        V::Int16(Some(v)) => write!(out, "{v}"),
        V::Int32(Some(v)) => write!(out, "{v}"),
        V::Int64(Some(v)) => write!(out, "{v}"),
        V::UInt8(Some(v)) => write!(out, "{v}"),
        V::UInt16(Some(v)) => write!(out, "{v}"),
        V::UInt32(Some(v)) => write!(out, "{v}"),
        V::UInt64(Some(v)) => write!(out, "{v}"),
        V::Float32(Some(v)) if style == Style::Flink && v.is_finite() => {
            flink::write_java_float(out, &v.to_string(), &format!("{v:e}"));
            Ok(())
        }
        V::Float64(Some(v)) if style == Style::Flink && v.is_finite() => {
            flink::write_java_float(out, &v.to_string(), &format!("{v:e}"));
            Ok(())
        }
        V::Float32(Some(v)) => write_float(out, f64::from(*v)),
        V::Float64(Some(v)) => write_float(out, *v),
        V::Decimal128(Some(v), _, s) => write_decimal(out, i256::from_i128(*v), *s, style),
        V::Decimal256(Some(v), _, s) => write_decimal(out, *v, *s, style),
        V::Utf8(Some(s)) | V::LargeUtf8(Some(s)) | V::Utf8View(Some(s)) => {
            write_string(out, s, style);
            Ok(())
        }
        V::Binary(Some(b))
        | V::LargeBinary(Some(b))
        | V::BinaryView(Some(b))
        | V::FixedSizeBinary(_, Some(b)) => {
            write_string(out, &BASE64.encode(b), style);
            Ok(())
        }
        V::Date32(Some(days)) => {
            crate::temporal::write_date(out, *days);
            Ok(())
        }
        V::Time32Millisecond(Some(v)) => {
            write_time(out, i64::from(*v), TimeUnit::Millisecond, style)
        }
        V::Time64Microsecond(Some(v)) => write_time(out, *v, TimeUnit::Microsecond, style),
        V::Time64Nanosecond(Some(v)) => write_time(out, *v, TimeUnit::Nanosecond, style),
        V::DurationMicrosecond(Some(v)) => {
            write_string(out, &crate::temporal::duration_text(*v), style);
            Ok(())
        }
        V::TimestampSecond(Some(v), tz) => write_timestamp(out, *v, TimeUnit::Second, tz, style),
        V::TimestampMillisecond(Some(v), tz) => {
            write_timestamp(out, *v, TimeUnit::Millisecond, tz, style)
        }
        V::TimestampMicrosecond(Some(v), tz) => {
            write_timestamp(out, *v, TimeUnit::Microsecond, tz, style)
        }
        V::TimestampNanosecond(Some(v), tz) => {
            write_timestamp(out, *v, TimeUnit::Nanosecond, tz, style)
        }
        V::List(list) => {
            write_list(out, list.as_ref(), style);
            Ok(())
        }
        other => {
            write_string(out, &other.to_string(), style);
            Ok(())
        }
    };
}

fn write_float(out: &mut String, v: f64) -> std::fmt::Result {
    match serde_json::Number::from_f64(v) {
        Some(n) => write!(out, "{n}"),
        None if v.is_nan() => write!(out, "\"NaN\""),
        None if v > 0.0 => write!(out, "\"Infinity\""),
        None => write!(out, "\"-Infinity\""),
    }
}

fn write_decimal(out: &mut String, unscaled: i256, scale: i8, style: Style) -> std::fmt::Result {
    match style {
        Style::Iso => write!(
            out,
            "{}",
            crate::decimal::format(unscaled, i32::from(scale))
        ),
        // A decimal of scale 0 is what SUM of integers gives (exact, as PostgreSQL's); the
        // job Eddy replaces summed integers into Flink's BIGINT, written as plain digits, so
        // that is what its consumers parse. A DECIMAL(p,0) column is written so too, where
        // Flink would write `1.2E+3`.
        Style::Flink if scale == 0 => write!(out, "{unscaled}"),
        Style::Flink => {
            flink::write_decimal(out, unscaled, i32::from(scale));
            Ok(())
        }
    }
}

/// A time of day at its own unit (see [`crate::temporal`]).
fn write_time(out: &mut String, value: i64, unit: TimeUnit, style: Style) -> std::fmt::Result {
    let start = out.len();
    match style {
        Style::Iso => crate::temporal::write_time(out, value, unit),
        Style::Flink => {
            // Flink's TIME is milliseconds of the day, whatever the declared precision.
            let per_milli = (crate::temporal::per_second(unit) / 1_000).max(1);
            crate::temporal::write_time(out, value - value.rem_euclid(per_milli), unit);
            flink::trim_fraction(out, start);
        }
    }
    Ok(())
}

/// A timestamp at its own unit, never through nanoseconds (see [`crate::temporal`]).
fn write_timestamp(
    out: &mut String,
    value: i64,
    unit: TimeUnit,
    tz: &Option<std::sync::Arc<str>>,
    style: Style,
) -> std::fmt::Result {
    let start = out.len();
    crate::temporal::write_timestamp(out, value, unit, tz.is_some());
    if style == Style::Flink {
        flink::sql_timestamp(out, start);
    }
    Ok(())
}

fn write_list(out: &mut String, list: &dyn Array, style: Style) {
    out.push('[');
    if let Some(list) = list.as_any().downcast_ref::<arrow::array::ListArray>()
        && !list.is_empty()
        && list.is_valid(0)
    {
        let items = list.value(0);
        for i in 0..items.len() {
            if i > 0 {
                out.push(',');
            }
            match ScalarValue::try_from_array(&items, i) {
                Ok(v) => write_styled(out, &v, style),
                Err(_) => out.push_str("null"),
            }
        }
    }
    out.push(']');
}

/// Flink's spellings ([`Style::Flink`]): what Jackson writes for the JSON nodes flink-json's
/// row-to-JSON converters build.
mod flink {
    use std::fmt::Write;

    use arrow::datatypes::i256;

    /// A JSON string as Jackson escapes it: `"`, `\` and control characters, those without a
    /// short escape as `\u00XX` in upper-case hex (serde_json writes lower case).
    pub(super) fn write_string(out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if c < ' ' => {
                    let _ = write!(out, "\\u{:04X}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    /// A finite float as Java's `Double.toString` (or `Float.toString`) spells it, from the
    /// shortest digits that read back as the value: `plain` and `exp` are its `{}` and `{:e}`.
    /// Java writes plain digits, with at least one after the point, from 10^-3 up to 10^7, and
    /// `d.dddE±n` outside.
    pub(super) fn write_java_float(out: &mut String, plain: &str, exp: &str) {
        let (mantissa, exponent) = exp.split_once('e').unwrap_or((exp, "0"));
        let exponent: i32 = exponent.parse().unwrap_or(0);
        let zero = mantissa.trim_start_matches('-') == "0";
        let (digits, exponent) = if zero || (-3..7).contains(&exponent) {
            (plain, None)
        } else {
            (mantissa, Some(exponent))
        };
        out.push_str(digits);
        if !digits.contains('.') {
            out.push_str(".0");
        }
        if let Some(exponent) = exponent {
            let _ = write!(out, "E{exponent}");
        }
    }

    /// A decimal as Jackson writes the `BigDecimal` Flink hands it: its node factory strips
    /// the trailing zeros (zero is `0`), then `BigDecimal.toString()` writes plain digits when
    /// the scale is not negative and the exponent of the leading digit is at least -6, and
    /// scientific notation (`1.2E+3`, `1E-7`) otherwise.
    pub(super) fn write_decimal(out: &mut String, unscaled: i256, scale: i32) {
        let text = unscaled.to_string();
        let (sign, digits) = match text.strip_prefix('-') {
            Some(digits) => ("-", digits),
            None => ("", text.as_str()),
        };
        if digits == "0" {
            out.push('0');
            return;
        }
        let kept = digits.trim_end_matches('0');
        let scale = scale - (digits.len() - kept.len()) as i32;
        let digits = kept;
        let len = digits.len() as i32;
        let leading = len - 1 - scale;
        out.push_str(sign);
        if scale == 0 {
            out.push_str(digits);
        } else if scale > 0 && leading >= -6 {
            if len > scale {
                let (int, frac) = digits.split_at((len - scale) as usize);
                let _ = write!(out, "{int}.{frac}");
            } else {
                out.push_str("0.");
                out.extend(std::iter::repeat_n('0', (scale - len) as usize));
                out.push_str(digits);
            }
        } else {
            let (first, rest) = digits.split_at(1);
            out.push_str(first);
            if !rest.is_empty() {
                out.push('.');
                out.push_str(rest);
            }
            let _ = write!(out, "E{leading:+}");
        }
    }

    /// Turns the ISO-8601 timestamp written from `start` into Flink's SQL form: a space
    /// between date and time, the fraction trimmed.
    pub(super) fn sql_timestamp(out: &mut String, start: usize) {
        if let Some(t) = out[start..].find('T') {
            out.replace_range(start + t..start + t + 1, " ");
        }
        trim_fraction(out, start);
    }

    /// Drops the trailing zeros of the second's fraction written from `start` (and the point
    /// when nothing is left), as Java's `appendFraction(NANO_OF_SECOND, 0, 9, true)` prints it.
    pub(super) fn trim_fraction(out: &mut String, start: usize) {
        let Some(point) = out[start..].find('.').map(|p| start + p) else {
            return;
        };
        let digits = out[point + 1..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let kept = out[point + 1..point + 1 + digits]
            .trim_end_matches('0')
            .len();
        let from = if kept == 0 { point } else { point + 1 + kept };
        out.replace_range(from..point + 1 + digits, "");
    }
}

#[cfg(test)]
mod tests {
    //! The Flink spellings here are what Flink 2.3.0 wrote for the same values (a filesystem
    //! sink in `debezium-json`, Java 17); `benches/flink/format_check.sh` compares whole runs.

    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field};

    use super::*;

    fn flink(value: ScalarValue) -> String {
        let mut out = String::new();
        write_styled(&mut out, &value, Style::Flink);
        out
    }

    fn iso(value: ScalarValue) -> String {
        let mut out = String::new();
        write_value(&mut out, &value);
        out
    }

    fn decimal(unscaled: i128, scale: i8) -> ScalarValue {
        ScalarValue::Decimal128(Some(unscaled), 38, scale)
    }

    #[test]
    fn flink_decimals_strip_zeros_as_java_big_decimal() {
        for (unscaled, scale, text) in [
            (0, 18, "0"),
            (0, 2, "0"),
            (2550, 2, "25.5"),
            (123450, 2, "1234.5"),
            (-10, 2, "-0.1"),
            (1000, 2, "1E+1"),
            (-120000, 2, "-1.2E+3"),
            (100_000_000_000, 18, "1E-7"),
            (1, 6, "0.000001"),
            (-123, 7, "-0.0000123"),
            (12300, 10, "0.00000123"),
            (12345678901234567890123, 3, "12345678901234567890.123"),
            (7, -2, "7E+2"),
        ] {
            assert_eq!(
                flink(decimal(unscaled, scale)),
                text,
                "{unscaled} scale {scale}"
            );
        }
        assert_eq!(
            flink(ScalarValue::Decimal256(Some(i256::from_i128(-2550)), 76, 2)),
            "-25.5"
        );
        // Scale 0, a SUM of integers: digits, as Flink writes the BIGINT its SUM gave.
        assert_eq!(flink(decimal(1200, 0)), "1200");
        assert_eq!(
            flink(decimal(-27670116110564327421, 0)),
            "-27670116110564327421"
        );
        assert_eq!(iso(decimal(120000, 2)), "1200.00");
    }

    #[test]
    fn flink_doubles_as_java_double_to_string() {
        for (v, text) in [
            (1.0, "1.0"),
            (1.5, "1.5"),
            (100.0, "100.0"),
            (1e7, "1.0E7"),
            (9999999.0, "9999999.0"),
            (1234567.0, "1234567.0"),
            (0.001, "0.001"),
            (0.00099, "9.9E-4"),
            (1e-4, "1.0E-4"),
            (2.5e-5, "2.5E-5"),
            (1e21, "1.0E21"),
            (1e-300, "1.0E-300"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (-1.5e10, "-1.5E10"),
            (f64::NAN, "\"NaN\""),
            (f64::INFINITY, "\"Infinity\""),
            (f64::NEG_INFINITY, "\"-Infinity\""),
        ] {
            assert_eq!(flink(ScalarValue::Float64(Some(v))), text, "{v}");
        }
        for (v, text) in [
            (0.1f32, "0.1"),
            (1e-5, "1.0E-5"),
            (16777216.0, "1.6777216E7"),
        ] {
            assert_eq!(flink(ScalarValue::Float32(Some(v))), text, "{v}");
        }
        assert_eq!(iso(ScalarValue::Float64(Some(1e7))), "10000000.0");
    }

    #[test]
    fn flink_timestamps_in_sql_form_with_trimmed_fraction() {
        let ms =
            |v, tz: Option<&str>| ScalarValue::TimestampMillisecond(Some(v), tz.map(Arc::from));
        // 2020-12-30 12:13:14.123 UTC
        let t = 1_609_330_394_123;
        assert_eq!(flink(ms(t, None)), "\"2020-12-30 12:13:14.123\"");
        assert_eq!(flink(ms(t - 23, None)), "\"2020-12-30 12:13:14.1\"");
        assert_eq!(flink(ms(t - 123, None)), "\"2020-12-30 12:13:14\"");
        assert_eq!(flink(ms(t, Some("UTC"))), "\"2020-12-30 12:13:14.123Z\"");
        assert_eq!(
            flink(ms(t - 3, Some("+00:00"))),
            "\"2020-12-30 12:13:14.12Z\""
        );
        assert_eq!(flink(ms(-1, None)), "\"1969-12-31 23:59:59.999\"");
        let us = ScalarValue::TimestampMicrosecond(Some(1_609_330_394_000_100), None);
        assert_eq!(flink(us), "\"2020-12-30 12:13:14.0001\"");
        let ns = ScalarValue::TimestampNanosecond(Some(1_609_330_394_123_456_789), None);
        assert_eq!(flink(ns), "\"2020-12-30 12:13:14.123456789\"");
        let s = ScalarValue::TimestampSecond(Some(86_400), Some("UTC".into()));
        assert_eq!(flink(s), "\"1970-01-02 00:00:00Z\"");
        assert_eq!(iso(ms(t - 23, None)), "\"2020-12-30T12:13:14.100\"");
    }

    #[test]
    fn flink_dates_and_times() {
        assert_eq!(flink(ScalarValue::Date32(Some(18626))), "\"2020-12-30\"");
        let time = 12 * 3_600 + 13 * 60 + 14;
        let us = |v| ScalarValue::Time64Microsecond(Some(v));
        assert_eq!(flink(us(time * 1_000_000)), "\"12:13:14\"");
        assert_eq!(flink(us(time * 1_000_000 + 100_000)), "\"12:13:14.1\"");
        // Flink keeps milliseconds only.
        assert_eq!(flink(us(time * 1_000_000 + 123_456)), "\"12:13:14.123\"");
        assert_eq!(
            flink(ScalarValue::Time64Nanosecond(Some(999_999))),
            "\"00:00:00\""
        );
        let ms = ScalarValue::Time32Millisecond(Some((time * 1_000 + 123) as i32));
        assert_eq!(flink(ms), "\"12:13:14.123\"");
        assert_eq!(iso(us(time * 1_000_000 + 100_000)), "\"12:13:14.100\"");
    }

    #[test]
    fn flink_scalars_bytes_strings_and_lists() {
        assert_eq!(flink(ScalarValue::Boolean(Some(true))), "true");
        assert_eq!(
            flink(ScalarValue::Int64(Some(i64::MAX))),
            "9223372036854775807"
        );
        assert_eq!(flink(ScalarValue::Int8(Some(-5))), "-5");
        assert_eq!(flink(ScalarValue::Utf8(None)), "null");
        assert_eq!(flink(ScalarValue::Decimal128(None, 10, 2)), "null");
        assert_eq!(
            flink(ScalarValue::Binary(Some(vec![0, 255, 16]))),
            "\"AP8Q\""
        );
        assert_eq!(flink(ScalarValue::Binary(Some(vec![]))), "\"\"");
        let text = "\u{1}\u{1f}\u{7f}\u{8}\u{c}\n\r\t/\\\"é\u{2028}";
        assert_eq!(
            flink(ScalarValue::Utf8(Some(text.into()))),
            "\"\\u0001\\u001F\u{7f}\\b\\f\\n\\r\\t/\\\\\\\"é\u{2028}\""
        );
        assert_eq!(iso(ScalarValue::Utf8(Some("\u{1f}".into()))), "\"\\u001f\"");
        let list = ScalarValue::List(ScalarValue::new_list_nullable(
            &[decimal(2550, 2), decimal(0, 2)],
            &DataType::Decimal128(38, 2),
        ));
        assert_eq!(flink(list.clone()), "[25.5,0]");
        assert_eq!(iso(list), "[25.50,0.00]");
    }

    fn field(name: &str) -> FieldRef {
        Arc::new(Field::new(name, DataType::Int64, true))
    }

    fn values(change: &ResultChange, format: Format) -> Vec<String> {
        let encoder = Encoder::new(format, &[field("k")], &[field("k"), field("total")]);
        let encoded = encoder.encode(change);
        assert!(encoded.iter().all(|e| e.key == r#"{"k":1}"#));
        encoded
            .into_iter()
            .map(|e| e.value.unwrap_or_default())
            .collect()
    }

    #[test]
    fn debezium_is_flink_ops_and_spelling_debezium_u_is_one_update() {
        let row = |total| Some(vec![ScalarValue::Int64(Some(1)), decimal(total, 2)]);
        let change = |kind, before, after| ResultChange {
            kind,
            key: vec![ScalarValue::Int64(Some(1))],
            before,
            after,
        };
        let update = change(ChangeKind::Update, row(1000), row(2550));
        assert_eq!(
            values(&update, Format::Debezium),
            [
                r#"{"before":{"k":1,"total":1E+1},"after":null,"op":"d"}"#,
                r#"{"before":null,"after":{"k":1,"total":25.5},"op":"c"}"#,
            ]
        );
        assert_eq!(
            values(&update, Format::DebeziumUpdate),
            [r#"{"before":{"k":1,"total":10.00},"after":{"k":1,"total":25.50},"op":"u"}"#]
        );
        let insert = change(ChangeKind::Insert, None, row(0));
        assert_eq!(
            values(&insert, Format::Debezium),
            [r#"{"before":null,"after":{"k":1,"total":0},"op":"c"}"#]
        );
        let delete = change(ChangeKind::Delete, row(-5), None);
        assert_eq!(
            values(&delete, Format::Debezium),
            [r#"{"before":{"k":1,"total":-0.05},"after":null,"op":"d"}"#]
        );
        assert_eq!(values(&delete, Format::Upsert), [""]);
        assert_eq!(
            values(&update, Format::Upsert),
            [r#"{"k":1,"total":25.50}"#]
        );
    }
}
