//! The primary-key normalizer: turns Debezium events into exact row changes.
//!
//! Debezium's `before` image cannot be trusted as a retraction: with `REPLICA IDENTITY DEFAULT`
//! an update carries no `before` at all and a delete carries only the key, other NOT NULL
//! columns filled with type defaults. So the normalizer keeps each table's current rows by
//! primary key (only the columns the job reads) and retracts what it stored.
//!
//! Its invariants, which make at-least-once delivery harmless:
//! - an insert of a stored key replaces the stored row (a replayed insert changes nothing);
//! - an update of a missing key inserts it;
//! - a delete of a missing key is a no-op;
//! - an unavailable (unchanged TOAST) value takes the stored value;
//! - a truncate retracts every stored row.
//!
//! A table without a primary key has no identity to look rows up by: inserts are appended,
//! and updates and deletes are applied only when they carry a full `before` image
//! (`REPLICA IDENTITY FULL`). Such rows are kept as a multiset so truncates can retract them.

use std::collections::HashMap;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use serde::{Deserialize, Serialize};

use crate::change::ChangeBatch;
use crate::debezium::{Event, Image, Op};
use crate::error::{Error, Result};
use crate::rows::{RowBytes, RowCodec};

/// The rows a normalizer keeps, as row bytes of the columns the job reads.
#[derive(Debug, Serialize, Deserialize)]
pub enum TableState {
    /// Primary key bytes → row bytes.
    Keyed(HashMap<RowBytes, RowBytes>),
    /// Row bytes → multiplicity, for tables without a primary key.
    Multiset(HashMap<RowBytes, i64>),
}

impl TableState {
    pub fn len(&self) -> usize {
        match self {
            TableState::Keyed(rows) => rows.len(),
            TableState::Multiset(rows) => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One event the normalizer could not apply, by its position in the input.
#[derive(Debug)]
pub struct Rejected {
    pub index: usize,
    pub error: Error,
}

/// Keeps one table's rows and turns its events into a change batch.
#[derive(Debug)]
pub struct Normalizer {
    topic_table: String,
    /// Schema of the rows kept and emitted: the columns the job reads.
    schema: SchemaRef,
    /// Positions of the primary-key columns within the kept columns.
    key_positions: Vec<usize>,
    rows: RowCodec,
    keys: RowCodec,
    state: TableState,
}

impl Normalizer {
    /// `schema` holds the kept columns; `key_positions` the primary key among them (empty when
    /// the table has none).
    pub fn new(table: &str, schema: SchemaRef, key_positions: Vec<usize>) -> Result<Self> {
        let types: Vec<_> = schema
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let key_types = key_positions.iter().map(|&p| types[p].clone()).collect();
        let state = if key_positions.is_empty() {
            TableState::Multiset(HashMap::new())
        } else {
            TableState::Keyed(HashMap::new())
        };
        Ok(Self {
            topic_table: table.to_string(),
            schema,
            key_positions,
            rows: RowCodec::new(types)?,
            keys: RowCodec::new(key_types)?,
            state,
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn state(&self) -> &TableState {
        &self.state
    }

    pub fn restore(&mut self, state: TableState) {
        self.state = state;
    }

    /// Applies events in order; returns the resulting row changes and the events it rejected
    /// (which changed nothing).
    pub fn apply(&mut self, events: Vec<Event>) -> Result<(ChangeBatch, Vec<Rejected>)> {
        let mut out = Changes::default();
        let mut rejected = Vec::new();
        let encoded = self.encode(&events)?;
        for (index, (event, encoded)) in events.into_iter().zip(encoded).enumerate() {
            let result = match &self.state {
                TableState::Keyed(_) => self.apply_keyed(event, encoded, &mut out),
                TableState::Multiset(_) => self.apply_multiset(event, encoded, &mut out),
            };
            if let Err(error) = result {
                rejected.push(Rejected { index, error });
            }
        }
        let columns = self.rows.decode(out.rows.iter().map(|r| r.as_ref()))?;
        let columns = if out.rows.is_empty() {
            self.schema
                .fields()
                .iter()
                .map(|f| datafusion::arrow::array::new_empty_array(f.data_type()))
                .collect()
        } else {
            columns
        };
        let batch = ChangeBatch::try_from_columns(self.schema.clone(), columns, out.weights)?;
        Ok((batch, rejected))
    }

    fn fail(&self, message: impl Into<String>) -> Error {
        Error::event(&self.topic_table, message)
    }

    /// Every image of a batch as row bytes, encoded column-wise in one pass (encoding rows
    /// one by one costs more than the rest of the normalizer).
    fn encode(&self, events: &[Event]) -> Result<Vec<Encoded>> {
        let mut images: Vec<&Image> = Vec::with_capacity(events.len() * 2);
        fn slot<'a>(image: Option<&'a Image>, images: &mut Vec<&'a Image>) -> Option<usize> {
            image.map(|image| {
                images.push(image);
                images.len() - 1
            })
        }
        let mut slots = Vec::with_capacity(events.len());
        for event in events {
            let before = slot(event.before.as_ref().or(event.key.as_ref()), &mut images);
            let after = slot(event.after.as_ref(), &mut images);
            slots.push((before, after));
        }
        let columns = (0..self.schema.fields().len())
            .map(|c| {
                if images.is_empty() {
                    Ok(datafusion::arrow::array::new_empty_array(
                        self.schema.field(c).data_type(),
                    ))
                } else {
                    ScalarValue::iter_to_array(images.iter().map(|image| image.values[c].clone()))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let key_columns: Vec<_> = self
            .key_positions
            .iter()
            .map(|&p| columns[p].clone())
            .collect();
        let mut rows = self.rows.encode_all(&columns, images.len())?;
        let mut keys = self.keys.encode_all(&key_columns, images.len())?;
        // Each slot names a distinct image, so every image's bytes are moved out exactly once.
        let mut encoded = |slot: Option<usize>| {
            slot.map(|i| EncodedImage {
                row: std::mem::take(&mut rows[i]),
                key: std::mem::take(&mut keys[i]),
            })
        };
        Ok(slots
            .into_iter()
            .map(|(before, after)| Encoded {
                before: encoded(before),
                after: encoded(after),
            })
            .collect())
    }

    fn check_key(&self, image: &Image) -> Result<()> {
        if self
            .key_positions
            .iter()
            .any(|&p| image.values[p].is_null())
        {
            return Err(self.fail("primary key column is null"));
        }
        Ok(())
    }

    fn apply_keyed(&mut self, event: Event, encoded: Encoded, out: &mut Changes) -> Result<()> {
        match event.op {
            Op::Read | Op::Create | Op::Update => {
                let (Some(mut after), Some(encoded_after)) = (event.after, encoded.after) else {
                    return Err(self.fail("change without an `after` image"));
                };
                self.check_key(&after)?;
                let key = encoded_after.key;
                let mut row = encoded_after.row;
                let TableState::Keyed(rows) = &self.state else {
                    return Ok(());
                };
                if !after.unavailable.is_empty() {
                    let stored = rows.get(&key).ok_or_else(|| {
                        self.fail(
                            "unchanged TOAST value for a row Eddy has not seen; \
                             use REPLICA IDENTITY FULL or re-snapshot the table",
                        )
                    })?;
                    let stored = self.rows.decode_scalars(stored)?;
                    for &p in &after.unavailable {
                        after.values[p] = stored[p].clone();
                    }
                    row = self.rows.encode_scalars(&after.values)?;
                }
                let moved_from = match (event.before.as_ref(), encoded.before) {
                    (Some(before), Some(encoded_before)) if event.op == Op::Update => {
                        self.check_key(before)?;
                        Some(encoded_before.key).filter(|old| *old != key)
                    }
                    _ => None,
                };
                let TableState::Keyed(rows) = &mut self.state else {
                    return Ok(());
                };
                if let Some(old) = moved_from.and_then(|old_key| rows.remove(&old_key)) {
                    out.push(old, -1);
                }
                match rows.insert(key, row.clone()) {
                    Some(old) if old == row => {}
                    Some(old) => {
                        out.push(old, -1);
                        out.push(row, 1);
                    }
                    None => out.push(row, 1),
                }
            }
            Op::Delete => {
                let (Some(image), Some(encoded_before)) =
                    (event.before.as_ref().or(event.key.as_ref()), encoded.before)
                else {
                    return Err(self.fail("delete without a key"));
                };
                self.check_key(image)?;
                let key = encoded_before.key;
                if let TableState::Keyed(rows) = &mut self.state
                    && let Some(old) = rows.remove(&key)
                {
                    out.push(old, -1);
                }
            }
            Op::Truncate => {
                if let TableState::Keyed(rows) = &mut self.state {
                    for (_, old) in rows.drain() {
                        out.push(old, -1);
                    }
                }
            }
        }
        Ok(())
    }

    fn apply_multiset(&mut self, event: Event, encoded: Encoded, out: &mut Changes) -> Result<()> {
        let needs_before = matches!(event.op, Op::Update | Op::Delete);
        let before = match event.before {
            Some(before) if before.unavailable.is_empty() => Some(before),
            _ if needs_before => {
                return Err(self.fail(
                    "update or delete on a table without a primary key needs a full `before` \
                     image (REPLICA IDENTITY FULL)",
                ));
            }
            _ => None,
        };
        let encoded_after = match (event.after, encoded.after) {
            (Some(mut after), Some(_)) if !after.unavailable.is_empty() => {
                let Some(before) = before.as_ref() else {
                    return Err(self.fail("unchanged TOAST value without a `before` image"));
                };
                for &p in &after.unavailable {
                    after.values[p] = before.values[p].clone();
                }
                Some(self.rows.encode_scalars(&after.values)?)
            }
            (_, encoded) if event.op != Op::Delete => encoded.map(|e| e.row),
            _ => None,
        };
        let encoded_before = match encoded.before {
            Some(b) if needs_before && before.is_some() => Some(b.row),
            _ => None,
        };
        let TableState::Multiset(rows) = &mut self.state else {
            return Ok(());
        };
        if event.op == Op::Truncate {
            for (row, count) in rows.drain() {
                out.push(row, -count);
            }
            return Ok(());
        }
        if let Some(old) = encoded_before
            && let Some(count) = rows.get_mut(&old)
        {
            *count -= 1;
            if *count == 0 {
                rows.remove(&old);
            }
            out.push(old, -1);
        }
        if let Some(new) = encoded_after {
            *rows.entry(new.clone()).or_insert(0) += 1;
            out.push(new, 1);
        }
        Ok(())
    }
}

/// An image's row and key bytes.
struct EncodedImage {
    row: RowBytes,
    key: RowBytes,
}

/// An event's images as bytes: `before` holds the Kafka key's image when `before` is absent.
struct Encoded {
    before: Option<EncodedImage>,
    after: Option<EncodedImage>,
}

/// Row changes collected during one `apply`.
#[derive(Default)]
struct Changes {
    rows: Vec<RowBytes>,
    weights: Vec<i64>,
}

impl Changes {
    fn push(&mut self, row: RowBytes, weight: i64) {
        self.rows.push(row);
        self.weights.push(weight);
    }
}
