//! Debezium JSON records decoded into typed row images.
//!
//! Handles the JSON converter's two shapes (`{"schema", "payload"}` and the bare envelope),
//! every op (`r`, `c`, `u`, `d`, `t`), tombstones, and the value encodings of the PostgreSQL
//! and MySQL connectors ([`value`]). Only the columns a job reads are decoded: the rest of a
//! row is never materialized.

pub mod inline_schema;
pub mod value;

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use datafusion::common::ScalarValue;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::schema::TableDef;
use inline_schema::FieldHint;
pub use value::{DecimalHandling, DecodeOptions, TimePrecision};

/// The table a Debezium topic (`<prefix>.<schema>.<table>`) carries: its last part.
pub fn table_of_topic(topic: &str) -> &str {
    topic.rsplit('.').next().unwrap_or(topic)
}

/// A Debezium operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `r`: a row read by a snapshot.
    Read,
    /// `c`
    Create,
    /// `u`
    Update,
    /// `d`
    Delete,
    /// `t`: the whole table was truncated.
    Truncate,
}

/// A row image: the values of the columns a job reads, in the decoder's column order.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub values: Vec<ScalarValue>,
    /// Positions (into `values`) of unchanged TOASTed values the source did not send; their
    /// slot in `values` holds a null until the normalizer fills in the stored value.
    pub unavailable: Vec<usize>,
}

/// One decoded change event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub op: Op,
    pub before: Option<Image>,
    pub after: Option<Image>,
    /// The Kafka key's columns, where the key holds all of them (the primary key).
    pub key: Option<Image>,
}

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    schema: Option<&'a RawValue>,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
    #[serde(borrow)]
    before: Option<RawImage<'a>>,
    #[serde(borrow)]
    after: Option<RawImage<'a>>,
    op: Option<String>,
}

/// A row image's fields borrowed from the message: a value stays raw JSON until a column the
/// job reads asks for it, so the columns it does not read cost a scan and no allocation.
struct RawImage<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl RawImage<'_> {
    fn get(&self, name: &str) -> Option<&RawValue> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

/// A field name, borrowed unless it holds escapes.
#[derive(Deserialize)]
struct FieldName<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for RawImage<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Fields<'a> {
            type Value = RawImage<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a row image object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<RawImage<'a>, M::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(FieldName(name)) = map.next_key()? {
                    fields.push((name, map.next_value()?));
                }
                Ok(RawImage(fields))
            }
        }
        deserializer.deserialize_map(Fields(std::marker::PhantomData))
    }
}

/// Decodes the records of one table, reading only some of its columns.
#[derive(Debug)]
pub struct TableDecoder {
    table: Arc<TableDef>,
    columns: Vec<usize>,
    options: DecodeOptions,
    /// Hints per distinct inline schema, keyed by a hash of its text.
    hints: HashMap<u64, Arc<Vec<Option<FieldHint>>>>,
}

impl TableDecoder {
    /// A decoder producing images of `columns` (indices into the table's columns).
    pub fn new(table: Arc<TableDef>, columns: Vec<usize>, options: DecodeOptions) -> Self {
        Self {
            table,
            columns,
            options,
            hints: HashMap::new(),
        }
    }

    /// Decodes one record; `Ok(None)` for a tombstone (a null value), which carries nothing
    /// the preceding delete did not.
    pub fn decode(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<Option<Event>> {
        let fail = |message: String| Error::event(topic, message);
        let Some(value) = value.filter(|v| !is_json_null(v)) else {
            return Ok(None);
        };
        let outer: Wire =
            serde_json::from_slice(value).map_err(|e| fail(format!("value is not JSON: {e}")))?;
        let (hints, wire) = match (outer.schema, outer.payload) {
            (_, Some(payload)) if payload.get() == "null" => return Ok(None),
            (schema, Some(payload)) => {
                let hints = match schema {
                    Some(schema) => Some(self.hints_for(schema.get()).map_err(fail)?),
                    None => None,
                };
                let inner: Wire = serde_json::from_str(payload.get())
                    .map_err(|e| fail(format!("payload is not an envelope: {e}")))?;
                (hints, inner)
            }
            (_, None) => (None, outer),
        };
        let op = match wire.op.as_deref() {
            Some("r") => Op::Read,
            Some("c") => Op::Create,
            Some("u") => Op::Update,
            Some("d") => Op::Delete,
            Some("t") => Op::Truncate,
            Some(other) => return Err(fail(format!("unknown op {other:?}"))),
            None => return Err(fail("not a Debezium change event: no `op`".into())),
        };
        let hints = hints.as_deref().map(Vec::as_slice);
        // A `before` image may legitimately lack columns (REPLICA IDENTITY DEFAULT sends
        // the key only); it is only ever read for its key or, when complete, as a retraction.
        let image = |row: &Option<RawImage>, which: &str| {
            row.as_ref()
                .map(|row| self.image(row, hints, which == "before"))
                .transpose()
                .map_err(|e| fail(format!("`{which}`: {e}")))
        };
        let before = image(&wire.before, "before")?;
        let after = image(&wire.after, "after")?;
        let key = match key {
            Some(key) if op == Op::Delete && before.is_none() => {
                self.key_image(key).map_err(fail)?
            }
            _ => None,
        };
        let needs_after = matches!(op, Op::Read | Op::Create | Op::Update);
        if needs_after && after.is_none() {
            return Err(fail(format!("op {op:?} without an `after` image")));
        }
        if op == Op::Delete && before.is_none() && key.is_none() {
            return Err(fail("delete without a `before` image or a key".into()));
        }
        Ok(Some(Event {
            op,
            before,
            after,
            key,
        }))
    }

    fn hints_for(&mut self, raw: &str) -> Result<Arc<Vec<Option<FieldHint>>>, String> {
        let mut hasher = DefaultHasher::new();
        raw.hash(&mut hasher);
        let id = hasher.finish();
        if let Some(hints) = self.hints.get(&id) {
            return Ok(Arc::clone(hints));
        }
        let hints = Arc::new(inline_schema::resolve(raw, &self.table, &self.columns)?);
        self.hints.insert(id, Arc::clone(&hints));
        Ok(hints)
    }

    fn image(
        &self,
        row: &RawImage,
        hints: Option<&[Option<FieldHint>]>,
        partial: bool,
    ) -> Result<Image, String> {
        let mut values = Vec::with_capacity(self.columns.len());
        let mut unavailable = Vec::new();
        for (pos, &i) in self.columns.iter().enumerate() {
            let column = &self.table.columns[i];
            let hint = hints.and_then(|h| h.get(pos)).and_then(Option::as_ref);
            let decoded = match row.get(&column.name) {
                Some(raw) => {
                    let json: Value = serde_json::from_str(raw.get())
                        .map_err(|e| format!("column `{}`: {e}", column.name))?;
                    value::decode(&json, &column.data_type, hint, &self.options)
                        .map_err(|e| format!("column `{}`: {e}", column.name))?
                }
                None if column.nullable || partial => value::Decoded::Value(
                    ScalarValue::try_from(&column.data_type).map_err(|e| e.to_string())?,
                ),
                None => return Err(format!("column `{}` is missing", column.name)),
            };
            match decoded {
                value::Decoded::Value(v) => values.push(v),
                value::Decoded::Unavailable => {
                    unavailable.push(pos);
                    values
                        .push(ScalarValue::try_from(&column.data_type).map_err(|e| e.to_string())?);
                }
            }
        }
        Ok(Image {
            values,
            unavailable,
        })
    }

    /// The Kafka key as a partial image, used when a delete comes without `before`.
    fn key_image(&self, key: &[u8]) -> Result<Option<Image>, String> {
        let Ok(outer) = serde_json::from_slice::<RawImage>(key) else {
            return Ok(None);
        };
        match outer.get("payload") {
            Some(payload) => match serde_json::from_str::<RawImage>(payload.get()) {
                Ok(inner) => self.image(&inner, None, true).map(Some),
                Err(_) => Ok(None),
            },
            None => self.image(&outer, None, true).map(Some),
        }
    }
}

fn is_json_null(bytes: &[u8]) -> bool {
    bytes.trim_ascii() == b"null" || bytes.trim_ascii().is_empty()
}
