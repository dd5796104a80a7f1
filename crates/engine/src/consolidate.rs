//! Consolidation: a step's output change, netted into at most one change per result row.
//!
//! Within a step a result row may be retracted and re-inserted several times (a replayed
//! event, two updates of one key, a group that empties and refills). The consolidator sums weights
//! per (key, row) and keeps what is left: at most one row leaving and one entering per key,
//! which is a delete, an insert, an update, or nothing at all. Order within the step does not
//! matter, only the net weights.

use std::collections::HashMap;

use arrow::array::ArrayRef;
use datafusion_common::ScalarValue;

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
#[derive(Debug)]
pub struct Consolidator {
    visible: usize,
    keys: RowCodec,
    values: RowCodec,
}

/// Per key: distinct rows (by bytes) seen this step, with a sample row index and net weight.
type Tally = Vec<(Box<[u8]>, usize, i64)>;

impl Consolidator {
    pub fn new(keys: RowCodec, values: RowCodec) -> Self {
        Self {
            visible: values.types().len(),
            keys,
            values,
        }
    }

    pub fn consolidate(&self, batch: &ChangeBatch) -> Result<Vec<ResultChange>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let columns = batch.data.columns();
        let (value_columns, key_columns) = columns.split_at(self.visible);
        // A global aggregate has no key columns: its one row has the empty key.
        let keys = (!key_columns.is_empty())
            .then(|| self.keys.encode(key_columns))
            .transpose()?;
        let values = self.values.encode(value_columns)?;
        let mut order: Vec<Box<[u8]>> = Vec::new();
        let mut tallies: HashMap<Box<[u8]>, Tally> = HashMap::new();
        for (row, &weight) in batch.weights.values().iter().enumerate() {
            let key: &[u8] = keys.as_ref().map_or(&[], |k| k.row(row).data());
            let tally = match tallies.get_mut(key) {
                Some(t) => t,
                None => {
                    order.push(key.into());
                    tallies.entry(key.into()).or_default()
                }
            };
            let value = values.row(row);
            match tally
                .iter_mut()
                .find(|(v, _, _)| v.as_ref() == value.as_ref())
            {
                Some((_, _, w)) => *w += weight,
                None => tally.push((value.as_ref().into(), row, weight)),
            }
        }
        let mut changes = Vec::new();
        for key in order {
            let tally = tallies.remove(&key).unwrap_or_default();
            let leaving = tally.iter().find(|(_, _, w)| *w < 0).map(|(_, r, _)| *r);
            let entering = tally.iter().find(|(_, _, w)| *w > 0).map(|(_, r, _)| *r);
            if tally.iter().any(|(_, _, w)| w.abs() > 1) {
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
            let sample = entering.or(leaving).unwrap_or(0);
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
