//! The primary-key normalizer: turns Debezium events into exact row changes.
//!
//! Debezium's `before` image cannot be trusted as a retraction: with `REPLICA IDENTITY DEFAULT`
//! an update carries no `before` at all and a delete carries only the key, other NOT NULL
//! columns filled with type defaults. So the normalizer keeps each table's current rows by
//! primary key (only the columns the job reads) and retracts what it stored.
//!
//! Each row is kept with the source position of the change that wrote it (see
//! [`crate::debezium::position`]), and each table with the position of its latest truncate,
//! so the result does not depend on how Kafka's partitions interleave: one key's changes
//! share a partition and arrive in order, but a truncate (which has no key) may arrive before
//! or after rows written on either side of it.
//!
//! Its invariants, which make at-least-once delivery and any interleaving of partitions
//! harmless:
//! - a change positioned before the row stored for its key, or before the table's latest
//!   truncate, is superseded: dropped (and counted);
//! - an insert of a stored key replaces the stored row (a replayed insert changes nothing);
//! - an update of a missing key inserts it;
//! - a delete of a missing key is a no-op;
//! - an unavailable (unchanged TOAST) value takes the stored value;
//! - a truncate at position T retracts every stored row written before T and keeps the
//!   others (written after T, arrived first); one without a position retracts every row.
//!
//! An event without a comparable position is applied in arrival order, exact when a table's
//! topic has one partition; [`Normalizer::ordering`] reports it.
//!
//! A table without a primary key has no identity to look rows up by: inserts are appended,
//! and updates and deletes are applied only when they carry a full `before` image
//! (`REPLICA IDENTITY FULL`). Such rows are kept as a multiset so truncates can retract them;
//! their events have no Kafka key, so only a one-partition topic keeps them in order, and
//! they are applied in arrival order.

use std::borrow::Cow;

use foldhash::{HashMap, HashMapExt};

use arrow::array::ArrayRef;
use arrow::datatypes::SchemaRef;
use datafusion_common::ScalarValue;
use serde::{Deserialize, Serialize};

use crate::change::ChangeBatch;
use crate::debezium::position::{Position, Read};
use crate::debezium::{Event, Image, Images, Op};
use crate::error::{Error, Result};
use crate::keyed::{KeyedRows, Upsert};
use crate::rows::{RowBytes, RowCodec, RowsBytes};

/// The rows a normalizer keeps, as row bytes of the columns the job reads, and what orders
/// the changes applied to them.
#[derive(Debug, Serialize, Deserialize)]
pub struct TableState {
    kept: Kept,
    order: Order,
}

#[derive(Debug, Serialize, Deserialize)]
enum Kept {
    /// Primary key bytes → row bytes and the position that wrote them.
    Keyed(KeyedRows),
    /// Row bytes → multiplicity, for tables without a primary key.
    Multiset(HashMap<RowBytes, i64>),
}

impl TableState {
    pub fn len(&self) -> usize {
        match &self.kept {
            Kept::Keyed(rows) => rows.len(),
            Kept::Multiset(rows) => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a table's changes are ordered: by their source positions, or as they arrived.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Order {
    /// The latest truncate's position (0 for none): changes before it are superseded.
    truncated_at: u128,
    /// The log streamed positions come from (see [`Position::Ordered`]).
    origin: Option<u64>,
    /// Why positions are no longer compared, once they cannot be.
    fallback: Option<String>,
    /// Why the last event without a position had none.
    unpositioned_reason: Option<String>,
    positioned: u64,
    unpositioned: u64,
    superseded: u64,
}

/// Where an event is applied: at a position (0: in arrival order).
#[derive(Clone, Copy)]
struct Located {
    at: u128,
    /// An incremental snapshot's read, applied in arrival order against its key's row.
    incremental: bool,
}

const ARRIVAL: Located = Located {
    at: 0,
    incremental: false,
};

impl Order {
    fn locate(&mut self, position: &Position) -> Located {
        if self.fallback.is_some() {
            self.unpositioned += 1;
            return ARRIVAL;
        }
        match position {
            Position::Unordered(why) => {
                self.unpositioned += 1;
                if self.unpositioned_reason.as_deref() != Some(why.as_ref()) {
                    self.unpositioned_reason = Some(why.to_string());
                }
                ARRIVAL
            }
            Position::Ordered { at, read, origin } => {
                if *read != Read::Snapshot && *self.origin.get_or_insert(*origin) != *origin {
                    self.fallback = Some(
                        "the source's log changed (another server or binlog name), and \
                         positions in different logs are not comparable: applied in arrival \
                         order since"
                            .into(),
                    );
                    self.unpositioned += 1;
                    return ARRIVAL;
                }
                self.positioned += 1;
                Located {
                    at: *at,
                    incremental: *read == Read::Incremental,
                }
            }
        }
    }

    /// Whether a change at `event` is older than the table's truncate or than `stored`,
    /// the position of its key's row.
    fn is_superseded(&self, event: Located, stored: u128) -> bool {
        event.at > 0 && (event.at < self.truncated_at || (!event.incremental && event.at < stored))
    }
}

/// How one table's changes were ordered, as the job's status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableOrder {
    pub table: String,
    /// `sourcePosition`, `arrival`, or `noEventsYet`.
    pub by: String,
    /// Why some or all events were applied in arrival order.
    pub reason: Option<String>,
    /// Events applied at their source position.
    pub positioned_events: u64,
    /// Events applied in arrival order.
    pub arrival_events: u64,
    /// Changes dropped because the table held a later one: replays, and changes a
    /// truncate read earlier from another partition had removed.
    pub superseded_events: u64,
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
        let kept = if key_positions.is_empty() {
            Kept::Multiset(HashMap::new())
        } else {
            Kept::Keyed(KeyedRows::default())
        };
        let state = TableState {
            kept,
            order: Order::default(),
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

    /// How the table's changes have been ordered so far.
    pub fn ordering(&self) -> TableOrder {
        let order = &self.state.order;
        let keyless = matches!(self.state.kept, Kept::Multiset(_));
        let by = if order.positioned + order.unpositioned == 0 {
            "noEventsYet"
        } else if keyless || order.fallback.is_some() || order.positioned == 0 {
            "arrival"
        } else {
            "sourcePosition"
        };
        let reason = if keyless {
            Some(
                "no primary key: events have no Kafka key, so only a one-partition topic keeps \
                 them in order"
                    .to_string(),
            )
        } else {
            order.fallback.clone().or_else(|| {
                (order.unpositioned > 0)
                    .then(|| order.unpositioned_reason.clone())
                    .flatten()
            })
        };
        TableOrder {
            table: self.topic_table.clone(),
            by: by.to_string(),
            reason,
            positioned_events: order.positioned,
            arrival_events: order.unpositioned,
            superseded_events: order.superseded,
        }
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
            let result = match &self.state.kept {
                Kept::Keyed(_) => self.apply_keyed(event, images, &encoded, &mut out),
                Kept::Multiset(_) => self.apply_multiset(event, images, &encoded, &mut out),
            };
            if let Err(error) = result {
                rejected.push(Rejected { index, error });
            }
        }
        Ok((self.batch(out)?, rejected))
    }

    /// Every row the normalizer keeps as one insertion (a row without a primary key with its
    /// multiplicity as weight): the table's current contents, as a change from empty.
    pub fn contents(&self) -> Result<ChangeBatch> {
        let mut out = Changes::default();
        match &self.state.kept {
            Kept::Keyed(rows) => {
                for (_, row, _) in rows.iter() {
                    out.push(Cow::Borrowed(row), 1);
                }
            }
            Kept::Multiset(rows) => {
                for (row, &count) in rows {
                    out.push(Cow::Borrowed(row.as_ref()), count);
                }
            }
        }
        self.batch(out)
    }

    fn batch(&self, out: Changes<'_>) -> Result<ChangeBatch> {
        let columns = if out.rows.is_empty() {
            self.schema
                .fields()
                .iter()
                .map(|f| arrow::array::new_empty_array(f.data_type()))
                .collect()
        } else {
            self.rows.decode(out.rows())?
        };
        ChangeBatch::try_from_columns(self.schema.clone(), columns, out.weights)
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
        let located = self.state.order.locate(&event.position);
        match event.op {
            Op::Read | Op::Create | Op::Update => {
                let Some(after) = event.after else {
                    return Err(self.fail("change without an `after` image"));
                };
                self.check_key(&after, images)?;
                let key = encoded.keys.row(after.row);
                let mut row = Cow::Borrowed(encoded.rows.row(after.row));
                let Kept::Keyed(rows) = &self.state.kept else {
                    return Ok(());
                };
                let stored = rows.get(key);
                let stored_at = stored.map_or(0, |(_, at)| at);
                if self.state.order.is_superseded(located, stored_at) {
                    self.state.order.superseded += 1;
                    return Ok(());
                }
                if !after.unavailable.is_empty() {
                    let (stored, _) = stored.ok_or_else(|| {
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
                let position = if located.incremental {
                    located.at.max(stored_at)
                } else {
                    located.at
                };
                let TableState { kept, order } = &mut self.state;
                let Kept::Keyed(rows) = kept else {
                    return Ok(());
                };
                if let Some(old_key) = moved_from
                    && let Some((_, old_at)) = rows.get(old_key)
                    && !order.is_superseded(located, old_at)
                {
                    let start = out.copied.len();
                    if rows.remove(old_key, &mut out.copied) {
                        out.retract_copied(start);
                    }
                }
                let start = out.copied.len();
                match rows.upsert(key, &row, position, &mut out.copied) {
                    Upsert::Unchanged => {}
                    Upsert::Replaced => {
                        out.retract_copied(start);
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
                let TableState { kept, order } = &mut self.state;
                let Kept::Keyed(rows) = kept else {
                    return Ok(());
                };
                match rows.get(key) {
                    None => {}
                    Some((_, stored_at)) if order.is_superseded(located, stored_at) => {
                        order.superseded += 1;
                    }
                    Some(_) => {
                        let start = out.copied.len();
                        if rows.remove(key, &mut out.copied) {
                            out.retract_copied(start);
                        }
                    }
                }
            }
            Op::Truncate => {
                let TableState { kept, order } = &mut self.state;
                let Kept::Keyed(rows) = kept else {
                    return Ok(());
                };
                let before = match located.at {
                    0 => u128::MAX,
                    at if at > order.truncated_at => {
                        order.truncated_at = at;
                        at
                    }
                    _ => {
                        order.superseded += 1;
                        return Ok(());
                    }
                };
                for old in rows.drain_before(before) {
                    out.push(Cow::Owned(old), -1);
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
        self.state.order.unpositioned += 1;
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
        let Kept::Multiset(rows) = &mut self.state.kept else {
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
    rows: Vec<Changed<'e>>,
    weights: Vec<i64>,
    /// The rows copied out of the state (those an event replaced or deleted), end to end:
    /// one buffer for the batch rather than an allocation per row.
    copied: Vec<u8>,
}

/// A changed row: the batch's own (or one built from it), or one copied out of the state.
enum Changed<'e> {
    Row(Cow<'e, [u8]>),
    /// `Changes::copied[start..end]`.
    Copied(usize, usize),
}

impl<'e> Changes<'e> {
    fn push(&mut self, row: Cow<'e, [u8]>, weight: i64) {
        self.rows.push(Changed::Row(row));
        self.weights.push(weight);
    }

    /// Retracts the row appended to `copied` since it was `start` long.
    fn retract_copied(&mut self, start: usize) {
        self.rows.push(Changed::Copied(start, self.copied.len()));
        self.weights.push(-1);
    }

    fn rows(&self) -> impl Iterator<Item = &[u8]> {
        self.rows.iter().map(|row| match row {
            Changed::Row(row) => row.as_ref(),
            Changed::Copied(start, end) => &self.copied[*start..*end],
        })
    }
}
