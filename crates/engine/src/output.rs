//! Result changes encoded as JSON records: upsert, Flink's debezium-json, or Debezium's own shape.
//!
//! Values are written so a consumer loses nothing: decimals as JSON numbers with their scale
//! (`25.50`), timestamps as ISO-8601 strings (with `Z` when the column has a time zone),
//! bytes as base64, lists as arrays.

use std::fmt::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::{FieldRef, TimeUnit, i256};
use datafusion::common::ScalarValue;

use crate::sink::{ChangeKind, ResultChange};

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
        let key = object(&self.key_names, &change.key);
        let row = |r: &Option<Vec<ScalarValue>>| r.as_ref().map(|r| object(&self.value_names, r));
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

fn object(names: &[String], values: &[ScalarValue]) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in names.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(&mut out, name);
        out.push(':');
        write_value(&mut out, value);
    }
    out.push('}');
    out
}

fn write_string(out: &mut String, s: &str) {
    out.push_str(&serde_json::Value::from(s).to_string());
}

/// Writes one value as JSON.
pub fn write_value(out: &mut String, value: &ScalarValue) {
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
        V::Float32(Some(v)) => write_float(out, f64::from(*v)),
        V::Float64(Some(v)) => write_float(out, *v),
        V::Decimal128(Some(v), _, s) => {
            write!(
                out,
                "{}",
                crate::decimal::format(i256::from_i128(*v), *s as i32)
            )
        }
        V::Decimal256(Some(v), _, s) => write!(out, "{}", crate::decimal::format(*v, *s as i32)),
        V::Utf8(Some(s)) | V::LargeUtf8(Some(s)) | V::Utf8View(Some(s)) => {
            write_string(out, s);
            Ok(())
        }
        V::Binary(Some(b)) | V::LargeBinary(Some(b)) | V::BinaryView(Some(b)) => {
            write_string(out, &BASE64.encode(b));
            Ok(())
        }
        V::Date32(Some(days)) => {
            crate::temporal::write_date(out, *days);
            Ok(())
        }
        V::Time32Millisecond(Some(v)) => write_time(out, i64::from(*v), TimeUnit::Millisecond),
        V::Time64Microsecond(Some(v)) => write_time(out, *v, TimeUnit::Microsecond),
        V::Time64Nanosecond(Some(v)) => write_time(out, *v, TimeUnit::Nanosecond),
        V::TimestampSecond(Some(v), tz) => write_timestamp(out, *v, TimeUnit::Second, tz),
        V::TimestampMillisecond(Some(v), tz) => {
            write_timestamp(out, *v, TimeUnit::Millisecond, tz)
        }
        V::TimestampMicrosecond(Some(v), tz) => {
            write_timestamp(out, *v, TimeUnit::Microsecond, tz)
        }
        V::TimestampNanosecond(Some(v), tz) => write_timestamp(out, *v, TimeUnit::Nanosecond, tz),
        V::List(list) => {
            write_list(out, list.as_ref());
            Ok(())
        }
        other => {
            write_string(out, &other.to_string());
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

/// A time of day at its own unit (see [`crate::temporal`]).
fn write_time(out: &mut String, value: i64, unit: TimeUnit) -> std::fmt::Result {
    crate::temporal::write_time(out, value, unit);
    Ok(())
}

/// A timestamp at its own unit, never through nanoseconds (see [`crate::temporal`]).
fn write_timestamp(
    out: &mut String,
    value: i64,
    unit: TimeUnit,
    tz: &Option<std::sync::Arc<str>>,
) -> std::fmt::Result {
    crate::temporal::write_timestamp(out, value, unit, tz.is_some());
    Ok(())
}

fn write_list(out: &mut String, list: &dyn Array) {
    out.push('[');
    if let Some(list) = list
        .as_any()
        .downcast_ref::<datafusion::arrow::array::ListArray>()
        && !list.is_empty()
        && list.is_valid(0)
    {
        let items = list.value(0);
        for i in 0..items.len() {
            if i > 0 {
                out.push(',');
            }
            match ScalarValue::try_from_array(&items, i) {
                Ok(v) => write_value(out, &v),
                Err(_) => out.push_str("null"),
            }
        }
    }
    out.push(']');
}
