//! Consolidation: a step's output change, netted into at most one change per result row.
//!
//! Within a step a result row may be retracted and re-inserted several times (a replayed
//! event, two updates of one key, a group that empties and refills). The consolidator sums weights
//! per (key, row) and keeps what is left: at most one row leaving and one entering per key,
//! which is a delete, an insert, an update, or nothing at all. Order within the step does not
//! matter, only the net weights.

use std::hash::BuildHasher;

use arrow::array::ArrayRef;
use datafusion_common::ScalarValue;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use smallvec::SmallVec;

use crate::change::ChangeBatch;
use crate::error::{Error, Result};
use crate::rows::RowCodec;

/// What happened to a result row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Update,
    Delete,
}

/// One net change of the query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultChange {
    pub kind: ChangeKind,
    /// Values of the key columns (GROUP BY values, or the source primary key).
    pub key: Vec<ScalarValue>,
    /// The row before the change; `None` for an insert.
    pub before: Option<Vec<ScalarValue>>,
    /// The row after the change; `None` for a delete.
    pub after: Option<Vec<ScalarValue>>,
}

/// Consolidates output changes whose batches hold `visible` value columns then the key.
///
/// Its tables are kept from step to step, emptied, so that a step allocates only the
/// changes it returns.
#[derive(Debug)]
pub struct Consolidator {
    visible: usize,
    keys: RowCodec,
    values: RowCodec,
    hasher: foldhash::fast::FixedState,
    /// Index into `tallies` of each key seen this step.
    slots: HashTable<usize>,
    /// Per key seen this step, in first-seen order.
    tallies: Vec<Tally>,
}

/// One key's rows in a step: a row of the batch holding the key, and each distinct row (by
/// bytes) as a sample row index with its net weight; two inline, for a leaving row and an
/// entering one.
#[derive(Debug)]
struct Tally {
    key_row: usize,
    rows: SmallVec<[(usize, i64); 2]>,
}

impl Consolidator {
    pub fn new(keys: RowCodec, values: RowCodec) -> Self {
        Self {
            visible: values.types().len(),
            keys,
            values,
            hasher: foldhash::fast::FixedState::default(),
            slots: HashTable::new(),
            tallies: Vec::new(),
        }
    }

    pub fn consolidate(&mut self, batch: &ChangeBatch) -> Result<Vec<ResultChange>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let rows = batch.len();
        let columns = batch.data.columns();
        let (value_columns, key_columns) = columns.split_at(self.visible);
        // A global aggregate has no key columns: its one row has the empty key.
        let keys = self.keys.encode_rows(key_columns, rows)?;
        let values = self.values.encode_rows(value_columns, rows)?;
        let (hasher, tallies) = (&self.hasher, &mut self.tallies);
        self.slots.clear();
        tallies.clear();
        for (row, &weight) in batch.weights.values().iter().enumerate() {
            let key = keys.row(row);
            let hash = hasher.hash_one(key);
            let slot = match self.slots.entry(
                hash,
                |&t| keys.row(tallies[t].key_row) == key,
                |&t| hasher.hash_one(keys.row(tallies[t].key_row)),
            ) {
                Entry::Occupied(slot) => *slot.get(),
                Entry::Vacant(slot) => {
                    slot.insert(tallies.len());
                    tallies.push(Tally {
                        key_row: row,
                        rows: SmallVec::new(),
                    });
                    tallies.len() - 1
                }
            };
            let value = values.row(row);
            let tally = &mut tallies[slot].rows;
            match tally.iter_mut().find(|(r, _)| values.row(*r) == value) {
                Some((_, w)) => *w += weight,
                None => tally.push((row, weight)),
            }
        }
        let mut changes = Vec::new();
        for Tally { key_row, rows } in tallies.iter() {
            let leaving = rows.iter().find(|(_, w)| *w < 0).map(|(r, _)| *r);
            let entering = rows.iter().find(|(_, w)| *w > 0).map(|(r, _)| *r);
            if rows.iter().any(|(_, w)| w.abs() > 1) {
                return Err(Error::Query(
                    "result key holds more than one row: the query's key does not identify its rows"
                        .into(),
                ));
            }
            let kind = match (leaving, entering) {
                (None, None) => continue,
                (None, Some(_)) => ChangeKind::Insert,
                (Some(_), None) => ChangeKind::Delete,
                (Some(_), Some(_)) => ChangeKind::Update,
            };
            // The key as the entering row spells it (keys equal as SQL compares them, 0.0 and
            // -0.0, may differ in how they print).
            let sample = entering.or(leaving).unwrap_or(*key_row);
            changes.push(ResultChange {
                kind,
                key: row_values(key_columns, sample)?,
                before: leaving.map(|r| row_values(value_columns, r)).transpose()?,
                after: entering.map(|r| row_values(value_columns, r)).transpose()?,
            });
        }
        Ok(changes)
    }
}

fn row_values(columns: &[ArrayRef], row: usize) -> Result<Vec<ScalarValue>> {
    columns
        .iter()
        .map(|c| Ok(ScalarValue::try_from_array(c, row)?))
        .collect()
}
