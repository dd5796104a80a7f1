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

use std::borrow::Cow;

use foldhash::{HashMap, HashMapExt};

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use serde::{Deserialize, Serialize};

use crate::change::ChangeBatch;
use crate::debezium::{Event, Image, Images, Op};
use crate::error::{Error, Result};
use crate::keyed::{KeyedRows, Upsert};
use crate::rows::{RowBytes, RowCodec, RowsBytes};

/// The rows a normalizer keeps, as row bytes of the columns the job reads.
#[derive(Debug, Serialize, Deserialize)]
pub enum TableState {
    /// Primary key bytes → row bytes.
    Keyed(KeyedRows),
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
            TableState::Keyed(KeyedRows::default())
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

    /// Applies events in order, their images being rows of `images` (the decoder's
    /// columns); returns the resulting row changes and the events it rejected (which changed
    /// nothing).
    pub fn apply(
        &mut self,
        events: Vec<Event>,
        images: &Images,
    ) -> Result<(ChangeBatch, Vec<Rejected>)> {
        let mut out = Changes::default();
        let mut rejected = Vec::new();
        let encoded = self.encode(images)?;
        let images = images.columns.as_slice();
        for (index, event) in events.into_iter().enumerate() {
            let result = match &self.state {
                TableState::Keyed(_) => self.apply_keyed(event, images, &encoded, &mut out),
                TableState::Multiset(_) => self.apply_multiset(event, images, &encoded, &mut out),
            };
            if let Err(error) = result {
                rejected.push(Rejected { index, error });
            }
        }
        let columns = if out.rows.is_empty() {
            self.schema
                .fields()
                .iter()
                .map(|f| datafusion::arrow::array::new_empty_array(f.data_type()))
                .collect()
        } else {
            self.rows.decode(out.rows.iter().map(|r| r.as_ref()))?
        };
        let batch = ChangeBatch::try_from_columns(self.schema.clone(), columns, out.weights)?;
        Ok((batch, rejected))
    }

    fn fail(&self, message: impl Into<String>) -> Error {
        Error::event(&self.topic_table, message)
    }

    /// Every image's row and key bytes, encoded column-wise in one pass (encoding rows one
    /// by one costs more than the rest of the normalizer).
    fn encode(&self, images: &Images) -> Result<Encoded> {
        let key_columns: Vec<_> = self
            .key_positions
            .iter()
            .map(|&p| images.columns[p].clone())
            .collect();
        Ok(Encoded {
            rows: self.rows.encode_rows(&images.columns, images.rows)?,
            keys: self.keys.encode_rows(&key_columns, images.rows)?,
        })
    }

    fn check_key(&self, image: &Image, images: &[ArrayRef]) -> Result<()> {
        if self
            .key_positions
            .iter()
            .any(|&p| images[p].is_null(image.row))
        {
            return Err(self.fail("primary key column is null"));
        }
        Ok(())
    }

    fn apply_keyed<'e>(
        &mut self,
        event: Event,
        images: &[ArrayRef],
        encoded: &'e Encoded,
        out: &mut Changes<'e>,
    ) -> Result<()> {
        match event.op {
            Op::Read | Op::Create | Op::Update => {
                let Some(after) = event.after else {
                    return Err(self.fail("change without an `after` image"));
                };
                self.check_key(&after, images)?;
                let key = encoded.keys.row(after.row);
                let mut row = Cow::Borrowed(encoded.rows.row(after.row));
                let TableState::Keyed(rows) = &self.state else {
                    return Ok(());
                };
                if !after.unavailable.is_empty() {
                    let stored = rows.get(key).ok_or_else(|| {
                        self.fail(
                            "unchanged TOAST value for a row Eddy has not seen; \
                             use REPLICA IDENTITY FULL or re-snapshot the table",
                        )
                    })?;
                    let stored = self.rows.decode_scalars(stored)?;
                    let mut values = scalars(images, after.row)?;
                    for &p in &after.unavailable {
                        values[p] = stored[p].clone();
                    }
                    row = Cow::Owned(self.rows.encode_scalars(&values)?.into());
                }
                let moved_from = match &event.before {
                    Some(before) if event.op == Op::Update => {
                        self.check_key(before, images)?;
                        Some(encoded.keys.row(before.row)).filter(|old| *old != key)
                    }
                    _ => None,
                };
                let TableState::Keyed(rows) = &mut self.state else {
                    return Ok(());
                };
                if let Some(old) = moved_from.and_then(|old_key| rows.remove(old_key)) {
                    out.push(Cow::Owned(old), -1);
                }
                match rows.upsert(key, &row) {
                    Upsert::Unchanged => {}
                    Upsert::Replaced(old) => {
                        out.push(Cow::Owned(old), -1);
                        out.push(row, 1);
                    }
                    Upsert::Inserted => out.push(row, 1),
                }
            }
            Op::Delete => {
                let Some(image) = event.before.as_ref().or(event.key.as_ref()) else {
                    return Err(self.fail("delete without a key"));
                };
                self.check_key(image, images)?;
                let key = encoded.keys.row(image.row);
                if let TableState::Keyed(rows) = &mut self.state
                    && let Some(old) = rows.remove(key)
                {
                    out.push(Cow::Owned(old), -1);
                }
            }
            Op::Truncate => {
                if let TableState::Keyed(rows) = &mut self.state {
                    for old in rows.drain() {
                        out.push(Cow::Owned(old), -1);
                    }
                }
            }
        }
        Ok(())
    }

    fn apply_multiset<'e>(
        &mut self,
        event: Event,
        images: &[ArrayRef],
        encoded: &'e Encoded,
        out: &mut Changes<'e>,
    ) -> Result<()> {
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
        let encoded_after = match event.after {
            Some(after) if !after.unavailable.is_empty() => {
                let Some(before) = before.as_ref() else {
                    return Err(self.fail("unchanged TOAST value without a `before` image"));
                };
                let mut values = scalars(images, after.row)?;
                let old = scalars(images, before.row)?;
                for &p in &after.unavailable {
                    values[p] = old[p].clone();
                }
                Some(Cow::Owned(self.rows.encode_scalars(&values)?.into()))
            }
            Some(after) if event.op != Op::Delete => {
                Some(Cow::Borrowed(encoded.rows.row(after.row)))
            }
            _ => None,
        };
        let encoded_before = match &before {
            Some(b) if needs_before => Some(encoded.rows.row(b.row)),
            _ => None,
        };
        let TableState::Multiset(rows) = &mut self.state else {
            return Ok(());
        };
        if event.op == Op::Truncate {
            for (row, count) in rows.drain() {
                out.push(Cow::Owned(row.into()), -count);
            }
            return Ok(());
        }
        if let Some(old) = encoded_before
            && let Some(count) = rows.get_mut(old)
        {
            *count -= 1;
            if *count == 0 {
                rows.remove(old);
            }
            out.push(Cow::Borrowed(old), -1);
        }
        if let Some(new) = encoded_after {
            *rows.entry(new.as_ref().into()).or_insert(0) += 1;
            out.push(new, 1);
        }
        Ok(())
    }
}

/// Row `row` of `columns` as scalars.
fn scalars(columns: &[ArrayRef], row: usize) -> Result<Vec<ScalarValue>> {
    Ok(columns
        .iter()
        .map(|c| ScalarValue::try_from_array(c, row))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Row and key bytes of every image of a batch, by row.
struct Encoded {
    rows: RowsBytes,
    keys: RowsBytes,
}

/// Row changes collected during one `apply`.
#[derive(Default)]
struct Changes<'e> {
    rows: Vec<Cow<'e, [u8]>>,
    weights: Vec<i64>,
}

impl<'e> Changes<'e> {
    fn push(&mut self, row: Cow<'e, [u8]>, weight: i64) {
        self.rows.push(row);
        self.weights.push(weight);
    }
}
