//! One JSON value of a Debezium row image, decoded into the column's Arrow type.
//!
//! How a value is encoded depends on connector settings (`decimal.handling.mode`,
//! `time.precision.mode`, `binary.handling.mode`, `bigint.unsigned.handling.mode`). An inline
//! Connect schema says which encoding was used; without one, the encoding is read off the JSON
//! shape where that is unambiguous and off [`DecodeOptions`] where it is not.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, TimeUnit, i256};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE};
use datafusion_common::ScalarValue;
use serde_json::Value;

use super::inline_schema::FieldHint;
use crate::schema::{MYSQL_TIME, MYSQL_UNSIGNED_BIGINT, TableDef};
use crate::{decimal, temporal};

/// Debezium's stand-in for an unchanged TOASTed value it could not read.
pub const UNAVAILABLE: &str = "__debezium_unavailable_value";

/// How decimal strings are to be read when no inline schema says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum DecimalHandling {
    /// Decimal-looking text is read as text, anything else as base64 unscaled bytes.
    #[default]
    Auto,
    /// `decimal.handling.mode=precise`: base64 big-endian unscaled bytes.
    Precise,
    /// `decimal.handling.mode=string`: plain decimal text.
    String,
}

/// How integer temporal values are to be read when no inline schema says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum TimePrecision {
    /// `time.precision.mode=adaptive` (Debezium's default): the unit follows the column's
    /// precision, milliseconds up to 3 digits, microseconds above.
    #[default]
    Adaptive,
    /// `time.precision.mode=connect`: always milliseconds.
    Connect,
}

/// How binary columns are read: `binary.handling.mode`. An inline schema's `bytes` type
/// says base64; its `string` type (and a schemaless message) leaves it to this setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum BinaryHandling {
    /// `base64` (Debezium's default).
    #[default]
    Base64,
    /// `base64-url-safe`.
    Base64UrlSafe,
    /// `hex`.
    Hex,
}

/// Decoder settings for what a schemaless message cannot tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct DecodeOptions {
    pub decimal_handling: DecimalHandling,
    pub time_precision: TimePrecision,
    #[serde(default)]
    pub binary_handling: BinaryHandling,
}

/// What Debezium's `time.precision.mode=connect` does to MySQL's `TIME`, which it sends as
/// a Connect time of day: a value outside 00:00:00..24:00:00 arrives as NULL.
const CONNECT_LOSES_TIME: &str = "is MySQL's TIME, which Debezium's time.precision.mode=connect \
     sends as NULL outside 00:00:00..24:00:00; run the connector with \
     time.precision.mode=adaptive_time_microseconds";

/// Refuses, before any event, a column the settings say Debezium cannot send exactly.
pub fn check_settings(
    table: &TableDef,
    columns: &[usize],
    options: &DecodeOptions,
) -> Result<(), String> {
    let lossy = columns
        .iter()
        .map(|&i| &table.columns[i])
        .find(|c| c.data_type == MYSQL_TIME && options.time_precision == TimePrecision::Connect);
    match lossy {
        Some(column) => Err(format!(
            "column `{}` of `{}` {CONNECT_LOSES_TIME}",
            column.name, table.name
        )),
        None => Ok(()),
    }
}

/// Whether an inline schema's hint says the column's values reach Eddy incomplete (see
/// [`check_settings`]); the message says how.
pub fn lossy_hint(data_type: &DataType, hint: &FieldHint) -> Option<&'static str> {
    (*data_type == MYSQL_TIME && hint.name.as_deref() == Some("org.apache.kafka.connect.data.Time"))
        .then_some(CONNECT_LOSES_TIME)
}

/// A decoded value, or the marker that the source did not send it.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Value(ScalarValue),
    Unavailable,
}

/// Decodes one JSON value into `data_type`; the error says what was expected.
pub fn decode(
    json: &Value,
    data_type: &DataType,
    hint: Option<&FieldHint>,
    options: &DecodeOptions,
) -> Result<Decoded, String> {
    if is_unavailable(json) {
        return Ok(Decoded::Unavailable);
    }
    if json.is_null() {
        return ScalarValue::try_from(data_type)
            .map(Decoded::Value)
            .map_err(|e| e.to_string());
    }
    decode_present(json, data_type, hint, options).map(Decoded::Value)
}

fn is_unavailable(json: &Value) -> bool {
    match json {
        Value::String(s) => s == UNAVAILABLE || s == unavailable_base64(),
        Value::Array(items) => items.len() == 1 && is_unavailable(&items[0]),
        _ => false,
    }
}

/// The placeholder as a `bytea` column carries it: the placeholder's bytes, base64-encoded.
fn unavailable_base64() -> &'static str {
    "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=="
}

fn decode_present(
    json: &Value,
    data_type: &DataType,
    hint: Option<&FieldHint>,
    options: &DecodeOptions,
) -> Result<ScalarValue, String> {
    use DataType as T;
    Ok(match data_type {
        T::Boolean => ScalarValue::Boolean(Some(boolean(json)?)),
        T::Int8 => ScalarValue::Int8(Some(integer(json)?)),
        T::Int16 => ScalarValue::Int16(Some(integer(json)?)),
        T::Int32 => ScalarValue::Int32(Some(integer(json)?)),
        T::Int64 => ScalarValue::Int64(Some(integer(json)?)),
        T::UInt8 => ScalarValue::UInt8(Some(integer(json)?)),
        T::UInt16 => ScalarValue::UInt16(Some(integer(json)?)),
        T::UInt32 => ScalarValue::UInt32(Some(integer(json)?)),
        T::UInt64 => ScalarValue::UInt64(Some(integer(json)?)),
        T::Float32 => ScalarValue::Float32(Some(float(json)? as f32)),
        T::Float64 => ScalarValue::Float64(Some(float(json)?)),
        T::Utf8 => ScalarValue::Utf8(Some(text(json)?)),
        T::LargeUtf8 => ScalarValue::LargeUtf8(Some(text(json)?)),
        T::Binary => ScalarValue::Binary(Some(binary_column(json, hint, options)?)),
        T::FixedSizeBinary(width) => {
            ScalarValue::FixedSizeBinary(*width, Some(bits(json, *width)?))
        }
        t if *t == MYSQL_UNSIGNED_BIGINT && is_integer(json) => {
            ScalarValue::try_new_decimal128(unsigned_bigint(json)?, 20, 0)
                .map_err(|e| e.to_string())?
        }
        T::Decimal128(p, s) => {
            let v = decimal_value(json, *p, *s, hint, options)?;
            let v = v.to_i128().ok_or("decimal out of range")?;
            ScalarValue::Decimal128(Some(v), *p, *s)
        }
        T::Decimal256(p, s) => {
            ScalarValue::Decimal256(Some(decimal_value(json, *p, *s, hint, options)?), *p, *s)
        }
        T::Date32 => ScalarValue::Date32(Some(date(json)?)),
        T::Time32(TimeUnit::Millisecond) => {
            let v = time_of_day(json, TimeUnit::Millisecond, hint, options)?;
            ScalarValue::Time32Millisecond(Some(i32::try_from(v).map_err(|_| "time out of range")?))
        }
        T::Time64(TimeUnit::Microsecond) => ScalarValue::Time64Microsecond(Some(time_of_day(
            json,
            TimeUnit::Microsecond,
            hint,
            options,
        )?)),
        T::Duration(TimeUnit::Microsecond) => {
            ScalarValue::DurationMicrosecond(Some(duration(json, hint, options)?))
        }
        T::Timestamp(unit, tz) => {
            let v = Some(timestamp(json, *unit, hint, options)?);
            let tz = tz.clone();
            match unit {
                TimeUnit::Second => ScalarValue::TimestampSecond(v, tz),
                TimeUnit::Millisecond => ScalarValue::TimestampMillisecond(v, tz),
                TimeUnit::Microsecond => ScalarValue::TimestampMicrosecond(v, tz),
                TimeUnit::Nanosecond => ScalarValue::TimestampNanosecond(v, tz),
            }
        }
        T::List(item) => list(json, item, options)?,
        other => return Err(format!("Arrow type {other} cannot be decoded")),
    })
}

fn boolean(json: &Value) -> Result<bool, String> {
    match json {
        Value::Bool(b) => Ok(*b),
        // MySQL's TINYINT(1) arrives as a number.
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        other => Err(format!("expected a boolean, found {}", kind(other))),
    }
}

fn integer<T: TryFrom<i64> + TryFrom<u64>>(json: &Value) -> Result<T, String> {
    let Value::Number(n) = json else {
        return Err(format!("expected an integer, found {}", kind(json)));
    };
    let converted = match (n.as_i64(), n.as_u64()) {
        (Some(v), _) => T::try_from(v).ok(),
        (None, Some(v)) => T::try_from(v).ok(),
        _ => return Err(format!("expected an integer, found {n}")),
    };
    converted.ok_or_else(|| format!("integer {n} is out of the column's range"))
}

fn float(json: &Value) -> Result<f64, String> {
    match json {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("bad number {n}")),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => Err(format!("expected a number, found string {s:?}")),
        },
        other => Err(format!("expected a number, found {}", kind(other))),
    }
}

fn text(json: &Value) -> Result<String, String> {
    match json {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!("expected a string, found {}", kind(other))),
    }
}

fn binary(json: &Value) -> Result<Vec<u8>, String> {
    let Value::String(s) = json else {
        return Err(format!("expected base64 bytes, found {}", kind(json)));
    };
    BASE64
        .decode(s)
        .map_err(|e| format!("invalid base64 bytes {s:?}: {e}"))
}

/// A binary column's bytes in the encoding `binary.handling.mode` chose.
fn binary_column(
    json: &Value,
    hint: Option<&FieldHint>,
    options: &DecodeOptions,
) -> Result<Vec<u8>, String> {
    let sent_as_bytes = hint.is_some_and(|h| h.connect_type == "bytes");
    let handling = if sent_as_bytes {
        BinaryHandling::Base64
    } else {
        options.binary_handling
    };
    let Value::String(s) = json else {
        return Err(format!("expected encoded bytes, found {}", kind(json)));
    };
    match handling {
        BinaryHandling::Base64 => binary(json),
        BinaryHandling::Base64UrlSafe => URL_SAFE
            .decode(s)
            .map_err(|e| format!("invalid base64-url-safe bytes {s:?}: {e}")),
        BinaryHandling::Hex => hex::decode(s).map_err(|e| format!("invalid hex bytes {s:?}: {e}")),
    }
}

/// MySQL's `BIT(n)` (`io.debezium.data.Bits`): Debezium's little-endian bytes, at most
/// `width` of them, as the `width` big-endian bytes MySQL shows.
fn bits(json: &Value, width: i32) -> Result<Vec<u8>, String> {
    let sent = binary(json)?;
    let width = usize::try_from(width).unwrap_or(0);
    if sent.len() > width {
        return Err(format!(
            "BIT value of {} bytes does not fit the column's {width}",
            sent.len()
        ));
    }
    let mut bytes = vec![0; width - sent.len()];
    bytes.extend(sent.iter().rev());
    Ok(bytes)
}

fn is_integer(json: &Value) -> bool {
    matches!(json, Value::Number(n) if n.is_i64() || n.is_u64())
}

/// A `BIGINT UNSIGNED` sent as an integer (`bigint.unsigned.handling.mode=long`). Debezium
/// puts the 64 unsigned bits in its `int64` as they are, so a value above 2^63 - 1 arrives
/// negative; the column being unsigned, those bits read as unsigned are the exact value.
fn unsigned_bigint(json: &Value) -> Result<i128, String> {
    let Value::Number(n) = json else {
        return Err(format!("expected an integer, found {}", kind(json)));
    };
    match (n.as_u64(), n.as_i64()) {
        (Some(v), _) => Ok(i128::from(v)),
        (None, Some(v)) => Ok(i128::from(v as u64)),
        _ => Err(format!("expected an integer, found {n}")),
    }
}

fn decimal_value(
    json: &Value,
    precision: u8,
    scale: i8,
    hint: Option<&FieldHint>,
    options: &DecodeOptions,
) -> Result<i256, String> {
    let scale = scale as i32;
    let value = match json {
        Value::Number(n) => decimal::parse_text(&n.to_string(), scale),
        Value::Object(fields) => variable_scale(fields, scale)?,
        Value::String(s) => return decimal_from_text(s, precision, scale as i8, hint, options),
        other => return Err(format!("expected a decimal, found {}", kind(other))),
    };
    within_precision(value, &json, precision, scale)
}

/// The parsed value if there is one and it fits `precision` digits; errors show `shown`.
fn within_precision(
    value: Option<i256>,
    shown: &dyn std::fmt::Display,
    precision: u8,
    scale: i32,
) -> Result<i256, String> {
    let value = value.ok_or_else(|| format!("invalid decimal {shown}"))?;
    if decimal::fits_precision(value, precision) {
        Ok(value)
    } else {
        Err(format!(
            "decimal {shown} does not fit decimal({precision},{scale})"
        ))
    }
}

/// Whether a decimal sent as a string is base64 unscaled bytes (`precise`) rather than
/// decimal text (`string`), as the inline schema, else the options, say; `None` when
/// neither does (`Auto`) and the text itself must tell.
pub(super) fn decimal_sent_as_bytes(
    hint: Option<&FieldHint>,
    options: &DecodeOptions,
) -> Option<bool> {
    match hint.map(|h| h.connect_type.as_str()) {
        Some(connect_type) => Some(connect_type == "bytes"),
        None => match options.decimal_handling {
            DecimalHandling::Precise => Some(true),
            DecimalHandling::String => Some(false),
            DecimalHandling::Auto => None,
        },
    }
}

/// A decimal sent as a JSON string: base64 unscaled bytes (`precise`) or decimal text
/// (`string`), as the inline schema, else the options, else the text's shape says.
fn decimal_from_text(
    s: &str,
    precision: u8,
    scale: i8,
    hint: Option<&FieldHint>,
    options: &DecodeOptions,
) -> Result<i256, String> {
    let scale = scale as i32;
    let as_bytes = decimal_sent_as_bytes(hint, options)
        .unwrap_or_else(|| decimal::parse_text(s, scale).is_none());
    let value = if as_bytes {
        let bytes = BASE64
            .decode(s)
            .map_err(|e| format!("invalid base64 bytes {s:?}: {e}"))?;
        let unscaled = decimal::from_be_bytes(&bytes)
            .ok_or_else(|| format!("decimal bytes {s:?} exceed 256 bits"))?;
        let source_scale = hint.and_then(|h| h.scale).unwrap_or(scale);
        decimal::rescale(unscaled, source_scale, scale)
    } else {
        decimal::parse_text(s, scale)
    };
    within_precision(value, &format_args!("{s:?}"), precision, scale)
}

/// `io.debezium.data.VariableScaleDecimal`: `{"scale": s, "value": base64 unscaled}`.
fn variable_scale(
    fields: &serde_json::Map<String, Value>,
    scale: i32,
) -> Result<Option<i256>, String> {
    let source_scale = fields
        .get("scale")
        .and_then(Value::as_i64)
        .and_then(|s| i32::try_from(s).ok())
        .ok_or("variable-scale decimal without an integer `scale`")?;
    let bytes = binary(
        fields
            .get("value")
            .ok_or("variable-scale decimal without `value`")?,
    )?;
    let unscaled = decimal::from_be_bytes(&bytes).ok_or("decimal bytes exceed 256 bits")?;
    Ok(decimal::rescale(unscaled, source_scale, scale))
}

/// Debezium's `io.debezium.time.Date` for PostgreSQL's `infinity` and `-infinity`, as
/// Debezium 3.6 sends them (fixtures/pg-edges): `(infinity, -infinity)` day numbers read by
/// a snapshot (pgJDBC's dates) and while streaming (`-5877611-06-21`/`-22`). All lie far
/// before PostgreSQL's first date, so none is a real date.
const DEBEZIUM_DATE_INFINITY: [(i32, i32); 2] = [
    (-622_191_234, -625_821_272),
    (-2_147_472_692, -2_147_472_691),
];

/// Debezium's encodings of PostgreSQL's `infinity` and `-infinity` timestamps, per unit sent:
/// pgJDBC's `DATE_POSITIVE_INFINITY` / `DATE_NEGATIVE_INFINITY` read as microseconds
/// (`MicroTimestamp`), their milliseconds (`Timestamp`), and `Long.MAX/MIN_VALUE` for
/// `NanoTimestamp`; seen in fixtures/pg-edges for the first two.
fn debezium_timestamp_infinity(unit: TimeUnit) -> (i64, i64) {
    match unit {
        TimeUnit::Microsecond => (9_223_372_036_825_200_000, -9_223_372_036_832_400_000),
        TimeUnit::Millisecond | TimeUnit::Second => (9_223_372_036_825_200, -9_223_372_036_832_400),
        TimeUnit::Nanosecond => (i64::MAX, i64::MIN),
    }
}

/// The first day of 4714 BC: before PostgreSQL's first date (4713 BC) and every MySQL date.
/// An integer date or timestamp before it cannot be a source's value: Debezium sends such
/// numbers when its `long` arithmetic wraps (a `timestamp` past 294247 AD).
const FIRST_SOURCE_DAY: i64 = -2_440_915;

fn before_any_source(value: i64, per_day: i64) -> bool {
    value.div_euclid(per_day) < FIRST_SOURCE_DAY
}

fn date(json: &Value) -> Result<i32, String> {
    match json {
        Value::Number(_) => {
            let d = integer::<i32>(json)?;
            if DEBEZIUM_DATE_INFINITY.iter().any(|(pos, _)| *pos == d) {
                Ok(temporal::DATE_POS_INFINITY)
            } else if DEBEZIUM_DATE_INFINITY.iter().any(|(_, neg)| *neg == d) {
                Ok(temporal::DATE_NEG_INFINITY)
            } else if before_any_source(i64::from(d), 1) {
                Err(format!("date {d} (days) is before any source's first date"))
            } else {
                Ok(d)
            }
        }
        Value::String(s) => temporal::parse_date(s).ok_or_else(|| format!("invalid date {s:?}")),
        other => Err(format!("expected a date, found {}", kind(other))),
    }
}

/// The unit an integer temporal value was sent in, from its semantic type or the options.
fn sent_unit(hint: Option<&FieldHint>, column_unit: TimeUnit, options: &DecodeOptions) -> TimeUnit {
    match hint.and_then(|h| h.name.as_deref()) {
        Some("io.debezium.time.MicroTime" | "io.debezium.time.MicroTimestamp") => {
            TimeUnit::Microsecond
        }
        Some("io.debezium.time.NanoTime" | "io.debezium.time.NanoTimestamp") => {
            TimeUnit::Nanosecond
        }
        Some(
            "io.debezium.time.Time"
            | "io.debezium.time.Timestamp"
            | "org.apache.kafka.connect.data.Time"
            | "org.apache.kafka.connect.data.Timestamp",
        ) => TimeUnit::Millisecond,
        _ => match options.time_precision {
            TimePrecision::Connect => TimeUnit::Millisecond,
            TimePrecision::Adaptive => column_unit,
        },
    }
}

fn convert_unit(value: i64, from: TimeUnit, to: TimeUnit) -> Result<i64, String> {
    let per_second = |u: TimeUnit| match u {
        TimeUnit::Second => 1i64,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    let (f, t) = (per_second(from), per_second(to));
    if t >= f {
        value
            .checked_mul(t / f)
            .ok_or_else(|| format!("temporal value {value} out of range"))
    } else {
        Ok(value.div_euclid(f / t))
    }
}

fn time_of_day(
    json: &Value,
    unit: TimeUnit,
    hint: Option<&FieldHint>,
    options: &DecodeOptions,
) -> Result<i64, String> {
    match json {
        Value::Number(_) => convert_unit(integer(json)?, sent_unit(hint, unit, options), unit),
        Value::String(s) => {
            temporal::parse_time(s, unit).ok_or_else(|| format!("invalid time {s:?}"))
        }
        other => Err(format!("expected a time, found {}", kind(other))),
    }
}

/// A MySQL `TIME` in microseconds, negative and past 24 hours included, from `MicroTime`
/// (`time.precision.mode=adaptive_time_microseconds`). Connect's `Time` is refused before
/// decoding ([`check_settings`], [`lossy_hint`]): it has lost the values outside a day.
fn duration(
    json: &Value,
    hint: Option<&FieldHint>,
    options: &DecodeOptions,
) -> Result<i64, String> {
    let Value::Number(_) = json else {
        return Err(format!("expected a duration, found {}", kind(json)));
    };
    let sent = sent_unit(hint, TimeUnit::Microsecond, options);
    convert_unit(integer(json)?, sent, TimeUnit::Microsecond)
}

/// A timestamp in ticks of the column's `unit`; `infinity` and `-infinity` as
/// [`temporal::POS_INFINITY`] and [`temporal::NEG_INFINITY`].
fn timestamp(
    json: &Value,
    unit: TimeUnit,
    hint: Option<&FieldHint>,
    options: &DecodeOptions,
) -> Result<i64, String> {
    match json {
        Value::Number(_) => {
            let sent = sent_unit(hint, unit, options);
            let (positive, negative) = debezium_timestamp_infinity(sent);
            match integer::<i64>(json)? {
                v if v == positive => Ok(temporal::POS_INFINITY),
                v if v == negative => Ok(temporal::NEG_INFINITY),
                // Debezium saturates or wraps what its `long` cannot hold (PostgreSQL
                // timestamps past 294247 AD): the source's value is lost before Eddy.
                v if v == i64::MAX
                    || v == i64::MIN
                    || before_any_source(v, temporal::per_second(sent) * 86_400) =>
                {
                    Err(format!(
                        "timestamp {v} ({sent:?}s) is not a source's value: Debezium sends such \
                         numbers for timestamps its 64 bits cannot hold (past 294247 AD)"
                    ))
                }
                v => convert_unit(v, sent, unit),
            }
        }
        Value::String(s) => temporal::parse_timestamp(s, unit)
            .ok_or_else(|| format!("invalid timestamp {s:?} (or beyond 64 bits of {unit:?}s)")),
        other => Err(format!("expected a timestamp, found {}", kind(other))),
    }
}

fn list(json: &Value, item: &Arc<Field>, options: &DecodeOptions) -> Result<ScalarValue, String> {
    let Value::Array(items) = json else {
        return Err(format!("expected an array, found {}", kind(json)));
    };
    let values = items
        .iter()
        .map(|v| match decode(v, item.data_type(), None, options)? {
            Decoded::Value(v) => Ok(v),
            Decoded::Unavailable => Err("unavailable value inside an array".to_string()),
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(ScalarValue::List(ScalarValue::new_list_nullable(
        &values,
        item.data_type(),
    )))
}

fn kind(json: &Value) -> &'static str {
    match json {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hint(connect_type: &str, name: Option<&str>, scale: Option<i32>) -> FieldHint {
        FieldHint {
            connect_type: connect_type.into(),
            name: name.map(str::to_string),
            scale,
        }
    }

    fn value(json: Value, data_type: DataType, hint: Option<&FieldHint>) -> ScalarValue {
        match decode(&json, &data_type, hint, &DecodeOptions::default()) {
            Ok(Decoded::Value(v)) => v,
            other => panic!("{json} as {data_type}: {other:?}"),
        }
    }

    #[test]
    fn decimals_in_every_mode() {
        let t = DataType::Decimal128(12, 2);
        let precise = hint(
            "bytes",
            Some("org.apache.kafka.connect.data.Decimal"),
            Some(2),
        );
        let expected = ScalarValue::Decimal128(Some(1999), 12, 2);
        assert_eq!(value(json!("B88="), t.clone(), Some(&precise)), expected);
        assert_eq!(value(json!("B88="), t.clone(), None), expected);
        assert_eq!(value(json!("19.99"), t.clone(), None), expected);
        assert_eq!(value(json!(19.99), t.clone(), None), expected);
        let variable = json!({"scale": 3, "value": "ThY="});
        assert_eq!(value(variable, t.clone(), None), expected);
        let wide = DataType::Decimal256(65, 30);
        let v = value(json!("0.5"), wide, None);
        assert_eq!(v.to_string(), "0.500000000000000000000000000000");
    }

    #[test]
    fn decimal_that_does_not_fit_is_an_error() {
        let t = DataType::Decimal128(4, 2);
        let err = decode(&json!("123.45"), &t, None, &DecodeOptions::default());
        assert!(err.unwrap_err().contains("does not fit decimal(4,2)"));
    }

    #[test]
    fn temporal_units_follow_the_semantic_type() {
        let micros = DataType::Timestamp(TimeUnit::Microsecond, None);
        let ts = |v: i64| ScalarValue::TimestampMicrosecond(Some(v), None);
        let h = |name| hint("int64", Some(name), None);
        assert_eq!(
            value(
                json!(1_000),
                micros.clone(),
                Some(&h("io.debezium.time.Timestamp"))
            ),
            ts(1_000_000)
        );
        assert_eq!(
            value(
                json!(1_000),
                micros.clone(),
                Some(&h("io.debezium.time.MicroTimestamp"))
            ),
            ts(1_000)
        );
        assert_eq!(
            value(
                json!(1_999),
                micros.clone(),
                Some(&h("io.debezium.time.NanoTimestamp"))
            ),
            ts(1)
        );
        assert_eq!(
            value(
                json!(5),
                micros.clone(),
                Some(&h("org.apache.kafka.connect.data.Timestamp"))
            ),
            ts(5_000)
        );
        assert_eq!(value(json!(5), micros.clone(), None), ts(5));
        assert_eq!(
            value(json!("1970-01-01T00:00:01.5Z"), micros, None),
            ts(1_500_000)
        );
        let time = DataType::Time64(TimeUnit::Microsecond);
        let micro_time = hint("int64", Some("io.debezium.time.MicroTime"), None);
        let milli_time = hint("int32", Some("io.debezium.time.Time"), None);
        assert_eq!(
            value(json!(7), time.clone(), Some(&micro_time)),
            ScalarValue::Time64Microsecond(Some(7))
        );
        assert_eq!(
            value(json!(7), time, Some(&milli_time)),
            ScalarValue::Time64Microsecond(Some(7_000))
        );
        let connect = DecodeOptions {
            time_precision: TimePrecision::Connect,
            ..Default::default()
        };
        let millis = decode(
            &json!(7),
            &DataType::Timestamp(TimeUnit::Microsecond, None),
            None,
            &connect,
        );
        assert_eq!(
            millis,
            Ok(Decoded::Value(ScalarValue::TimestampMicrosecond(
                Some(7_000),
                None
            )))
        );
        assert_eq!(
            value(json!(19782), DataType::Date32, None),
            ScalarValue::Date32(Some(19782))
        );
        assert_eq!(
            value(json!("2024-02-29"), DataType::Date32, None),
            ScalarValue::Date32(Some(19782))
        );
    }

    #[test]
    fn zoned_timestamps_become_utc_instants() {
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let v = value(json!("2024-02-29T13:45:30.123456+02:00"), utc, None);
        assert_eq!(
            v,
            ScalarValue::TimestampMicrosecond(Some(1_709_207_130_123_456), Some("UTC".into()))
        );
    }

    #[test]
    fn unavailable_placeholders_in_every_shape() {
        let opts = DecodeOptions::default();
        for (json, t) in [
            (json!(UNAVAILABLE), DataType::Utf8),
            (json!(unavailable_base64()), DataType::Binary),
            (
                json!([UNAVAILABLE]),
                DataType::new_list(DataType::Int32, true),
            ),
        ] {
            assert_eq!(decode(&json, &t, None, &opts), Ok(Decoded::Unavailable));
        }
    }

    #[test]
    fn other_types() {
        assert_eq!(
            value(json!("3q2+7wD/"), DataType::Binary, None),
            ScalarValue::Binary(Some(vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0xff]))
        );
        assert_eq!(
            value(json!(1), DataType::Boolean, None),
            ScalarValue::Boolean(Some(true))
        );
        assert_eq!(
            value(json!("NaN"), DataType::Float64, None).to_string(),
            "NaN"
        );
        let list = value(
            json!([1, null, 4]),
            DataType::new_list(DataType::Int32, true),
            None,
        );
        assert_eq!(list.to_string(), "[1, , 4]");
        assert_eq!(
            value(Value::Null, DataType::Int32, None),
            ScalarValue::Int32(None)
        );
    }

    #[test]
    fn wrong_shapes_name_what_was_expected() {
        let opts = DecodeOptions::default();
        let err = |json: Value, t: DataType| decode(&json, &t, None, &opts).unwrap_err();
        assert_eq!(
            err(json!("x"), DataType::Int32),
            "expected an integer, found a string"
        );
        assert_eq!(
            err(json!(70000), DataType::Int16),
            "integer 70000 is out of the column's range"
        );
        assert_eq!(
            err(json!(1), DataType::Utf8),
            "expected a string, found a number"
        );
        assert!(err(json!("not-a-date"), DataType::Date32).starts_with("invalid date"));
    }

    /// MySQL's encodings as fixtures/mysql-app captured them.
    #[test]
    fn mysql_time_bits_and_unsigned_bigints() {
        let micro_time = hint("int64", Some("io.debezium.time.MicroTime"), None);
        let connect_time = hint("int32", Some("org.apache.kafka.connect.data.Time"), None);
        let time = crate::schema::MYSQL_TIME;
        let us = |v: i64| ScalarValue::DurationMicrosecond(Some(v));
        assert_eq!(
            value(
                json!(-3_020_399_000_000i64),
                time.clone(),
                Some(&micro_time)
            ),
            us(-3_020_399_000_000)
        );
        assert_eq!(value(json!(-1_500_000), time.clone(), None), us(-1_500_000));
        assert_eq!(
            value(json!(45_296_000), time, Some(&connect_time)),
            us(45_296_000_000)
        );
        // BIT(16) b'1000000000000011' arrives little-endian.
        assert_eq!(
            value(json!("A4A="), DataType::FixedSizeBinary(2), None),
            ScalarValue::FixedSizeBinary(2, Some(vec![0x80, 0x03]))
        );
        assert_eq!(
            value(json!("AQ=="), DataType::FixedSizeBinary(2), None),
            ScalarValue::FixedSizeBinary(2, Some(vec![0x00, 0x01]))
        );
        let opts = DecodeOptions::default();
        let too_wide = decode(&json!("AAAA"), &DataType::FixedSizeBinary(2), None, &opts);
        assert!(too_wide.unwrap_err().contains("does not fit"));
        let unsigned = crate::schema::MYSQL_UNSIGNED_BIGINT;
        let exact = |v: i128| ScalarValue::Decimal128(Some(v), 20, 0);
        assert_eq!(
            value(json!(18_446_744_073_709_551_615u64), unsigned.clone(), None),
            exact(18_446_744_073_709_551_615)
        );
        assert_eq!(
            value(json!("AP//////////"), unsigned.clone(), None),
            exact(18_446_744_073_709_551_615)
        );
        assert_eq!(
            value(json!(-2), unsigned.clone(), None),
            exact(18_446_744_073_709_551_614)
        );
        assert_eq!(
            value(json!(i64::MIN), unsigned, None),
            exact(9_223_372_036_854_775_808)
        );
    }

    #[test]
    fn binary_in_every_handling_mode() {
        let bytes = ScalarValue::Binary(Some(vec![0xff, 0x00]));
        let with = |binary_handling| DecodeOptions {
            binary_handling,
            ..Default::default()
        };
        for (json, handling) in [
            (json!("/wA="), BinaryHandling::Base64),
            (json!("_wA="), BinaryHandling::Base64UrlSafe),
            (json!("ff00"), BinaryHandling::Hex),
        ] {
            let decoded = decode(&json, &DataType::Binary, None, &with(handling));
            assert_eq!(decoded, Ok(Decoded::Value(bytes.clone())), "{handling:?}");
        }
        let sent_as_bytes = hint("bytes", None, None);
        let decoded = decode(
            &json!("/wA="),
            &DataType::Binary,
            Some(&sent_as_bytes),
            &with(BinaryHandling::Hex),
        );
        assert_eq!(decoded, Ok(Decoded::Value(bytes)));
    }

    /// Debezium 3.6's encodings of PostgreSQL's infinities and of values its `long` cannot
    /// hold, as fixtures/pg-edges captured them.
    #[test]
    fn debezium_infinities_and_lost_timestamps() {
        let opts = DecodeOptions::default();
        let micros = DataType::Timestamp(TimeUnit::Microsecond, None);
        let millis = DataType::Timestamp(TimeUnit::Millisecond, None);
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let ts = |v: i64| ScalarValue::TimestampMicrosecond(Some(v), None);
        assert_eq!(
            value(json!(9_223_372_036_825_200_000i64), micros.clone(), None),
            ts(i64::MAX)
        );
        assert_eq!(
            value(json!(-9_223_372_036_832_400_000i64), micros.clone(), None),
            ts(i64::MIN)
        );
        assert_eq!(
            value(json!(9_223_372_036_825_200i64), millis, None),
            ScalarValue::TimestampMillisecond(Some(i64::MAX), None)
        );
        assert_eq!(
            value(json!("-infinity"), utc.clone(), None),
            ScalarValue::TimestampMicrosecond(Some(i64::MIN), Some("UTC".into()))
        );
        for (snapshot_or_streamed, expected) in [
            (-622_191_234, i32::MAX),
            (-625_821_272, i32::MIN),
            (-2_147_472_692, i32::MAX),
            (-2_147_472_691, i32::MIN),
        ] {
            assert_eq!(
                value(json!(snapshot_or_streamed), DataType::Date32, None),
                ScalarValue::Date32(Some(expected))
            );
        }
        assert_eq!(
            value(json!(-2_440_222), DataType::Date32, None),
            ScalarValue::Date32(Some(-2_440_222))
        );
        for lost in [json!(i64::MAX), json!(-9_223_372_036_853_775_810i64)] {
            let e = decode(&lost, &micros, None, &opts).unwrap_err();
            assert!(e.contains("not a source's value"), "{e}");
        }
        let e = decode(&json!("+294276-12-31T23:59:59.999999Z"), &utc, None, &opts).unwrap_err();
        assert!(e.contains("beyond 64 bits"), "{e}");
    }
}
