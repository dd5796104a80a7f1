//! Top-N: the first rows of each partition in a total order (ORDER BY … LIMIT, ranked windows).
//!
//! State is every row of every partition, ordered: a delete or an update that moves a row out
//! of the top promotes the next one, so no row can be forgotten. Each partition is a
//! `BTreeMap` whose entries are one allocation of bytes, `[sort key][row key][values]`: the
//! sort key is Arrow's order-preserving row encoding of the ORDER BY values (with their
//! ASC/DESC and NULLS FIRST/LAST), so byte order is the query's order; the row key (the
//! input's key columns) breaks ties, which makes `ROW_NUMBER()` and `LIMIT` deterministic
//! where PostgreSQL's choice is arbitrary; the values are the input's visible columns, the only
//! ones the plan above reads (projection pushdown has already dropped the rest).
//!
//! A step applies its rows to the partitions they touch, then compares each touched
//! partition's selection before and after and emits the difference. The output is keyed by the
//! row's own key, not by its rank: an upsert consumer sees rows enter and leave the top, and
//! when the rank is a column, a row whose rank changes is updated.

use std::cmp::Ordering;
use std::collections::{BTreeMap, btree_map};
use std::sync::Arc;

use arrow::array::{ArrayRef, UInt64Array};
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use datafusion_physical_expr::PhysicalExpr;
use foldhash::{HashMap, HashMapExt, HashSet};
use serde::{Deserialize, Serialize};

use super::{Operator, single};
use crate::change::ChangeBatch;
use crate::error::{Error, Result};
use crate::rows::{RowBytes, RowCodec};

/// What the bound limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rank {
    /// Positions 1, 2, 3, … (`ROW_NUMBER()`, `LIMIT`); ties in order by row key.
    RowNumber,
    /// 1 + the number of rows strictly before (`RANK()`): peers share a rank, gaps follow.
    Rank,
    /// The number of distinct sort keys up to this row's (`DENSE_RANK()`).
    DenseRank,
}

impl Rank {
    fn name(self) -> &'static str {
        match self {
            Rank::RowNumber => "row_number",
            Rank::Rank => "rank",
            Rank::DenseRank => "dense_rank",
        }
    }
}

/// One ORDER BY term: its expression and direction.
#[derive(Debug)]
pub struct SortKey {
    pub expr: Arc<dyn PhysicalExpr>,
    pub descending: bool,
    pub nulls_first: bool,
}

/// How a [`TopNOp`] selects and lays out its output.
#[derive(Debug)]
pub struct TopNSpec {
    /// PARTITION BY expressions; empty for one partition (ORDER BY … LIMIT).
    pub partition: Vec<Arc<dyn PhysicalExpr>>,
    pub order: Vec<SortKey>,
    pub rank: Rank,
    /// Rows whose rank is at most `skip` are left out (OFFSET).
    pub skip: u64,
    /// Rows whose rank is above `bound` are left out (`skip + LIMIT`, or the filter's bound).
    pub bound: u64,
    /// Whether the output has the rank as a column, after the input's visible columns.
    pub emit_rank: bool,
    /// How the plan spells the selection, for `explain`.
    pub label: String,
}

/// A partition entry's bytes: sort key, row key, values, in that order.
///
/// The first 24 bytes of the sort key are also kept inline, so that most comparisons in a
/// partition's B-tree decide on them without following the pointer to the bytes: a search
/// in a partition of 100,000 rows compares some 40 entries, and each dereference is a cache
/// miss. 24 bytes hold a whole encoded `Decimal128` (17 bytes), whose discriminating bytes
/// are its last, or a 64-bit number with another column. Zero-padding a short sort key keeps
/// the prefix's order consistent with the bytes' (a key that pads equal to another is
/// compared in full).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(from = "StoredEntry")]
struct Entry {
    prefix: Prefix,
    bytes: RowBytes,
    sort_len: u32,
    key_len: u32,
}

/// An [`Entry`] as a snapshot holds it: without the prefix, which its bytes give again.
#[derive(Serialize, Deserialize)]
struct StoredEntry {
    bytes: RowBytes,
    sort_len: u32,
    key_len: u32,
}

/// [`StoredEntry`] borrowed, so that a snapshot does not copy every entry.
#[derive(Serialize)]
struct StoredEntryRef<'a> {
    bytes: &'a RowBytes,
    sort_len: u32,
    key_len: u32,
}

impl From<StoredEntry> for Entry {
    fn from(stored: StoredEntry) -> Self {
        let sort_len = (stored.sort_len as usize).min(stored.bytes.len());
        Self {
            prefix: prefix(&stored.bytes[..sort_len]),
            bytes: stored.bytes,
            sort_len: stored.sort_len,
            key_len: stored.key_len,
        }
    }
}

impl Serialize for Entry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredEntryRef {
            bytes: &self.bytes,
            sort_len: self.sort_len,
            key_len: self.key_len,
        }
        .serialize(serializer)
    }
}

/// The first 24 bytes of a sort key, zero-padded, as big-endian numbers, which compare as the
/// bytes do.
type Prefix = (u128, u64);

fn prefix(sort: &[u8]) -> Prefix {
    let mut bytes = [0u8; 24];
    let n = sort.len().min(24);
    bytes[..n].copy_from_slice(&sort[..n]);
    let (high, low) = bytes.split_at(16);
    (
        u128::from_be_bytes(high.try_into().expect("16 bytes")),
        u64::from_be_bytes(low.try_into().expect("8 bytes")),
    )
}

impl Entry {
    fn new(sort: &[u8], key: &[u8], values: &[u8]) -> Self {
        Self {
            prefix: prefix(sort),
            bytes: [sort, key, values].concat().into(),
            sort_len: sort.len() as u32,
            key_len: key.len() as u32,
        }
    }

    fn sort(&self) -> &[u8] {
        &self.bytes[..self.sort_len as usize]
    }

    fn key(&self) -> &[u8] {
        let at = self.sort_len as usize;
        &self.bytes[at..at + self.key_len as usize]
    }

    fn values(&self) -> &[u8] {
        &self.bytes[(self.sort_len + self.key_len) as usize..]
    }
}

/// Compared part by part: a sort key that is a prefix of another must not let the row key
/// decide, as comparing the concatenated bytes could.
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.prefix
            .cmp(&other.prefix)
            .then_with(|| self.sort().cmp(other.sort()))
            .then_with(|| self.key().cmp(other.key()))
            .then_with(|| self.values().cmp(other.values()))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A partition's rows with their weights (1 for a present keyed row); none has weight 0.
type Partition = BTreeMap<Entry, i64>;

/// Adds `weight` to an entry, removing it when its weight reaches 0: a step costs the rows it
/// changes, not a walk of the whole partition.
fn apply(partition: &mut Partition, entry: Entry, weight: i64) {
    match partition.entry(entry) {
        btree_map::Entry::Occupied(mut stored) => {
            *stored.get_mut() += weight;
            if *stored.get() == 0 {
                stored.remove();
            }
        }
        btree_map::Entry::Vacant(slot) => {
            if weight != 0 {
                slot.insert(weight);
            }
        }
    }
}

/// A selected row: its entry, its rank and how many of its copies are selected.
type Selected = (Entry, u64, i64);

/// Keeps the rows of each partition whose rank lies in `(skip, bound]`.
///
/// # Guarantee
///
/// After every step, folding the output gives, per partition of the input, exactly the rows
/// whose rank (by [`Rank`], over the ORDER BY and then the row key) is above `skip` and at most
/// `bound`, each with its rank when `emit_rank`; whatever the input's deletes and updates,
/// since every input row is kept.
#[derive(Debug)]
pub struct TopNOp {
    spec: TopNSpec,
    partition_codec: RowCodec,
    sort: RowConverter,
    keys: RowCodec,
    values: RowCodec,
    partitions: HashMap<RowBytes, Partition>,
    /// Output: the input's visible columns, the rank if emitted, then the input's key.
    schema: SchemaRef,
}

impl TopNOp {
    /// `input` is the input's batch schema, of which the last `key_columns` are its key.
    pub fn new(
        spec: TopNSpec,
        input: &SchemaRef,
        key_columns: usize,
        schema: SchemaRef,
    ) -> Result<Self> {
        let visible = input.fields().len() - key_columns;
        let types = |range: std::ops::Range<usize>| {
            input.fields()[range]
                .iter()
                .map(|f| f.data_type().clone())
                .collect::<Vec<_>>()
        };
        let partition_types = spec
            .partition
            .iter()
            .map(|e| Ok(e.data_type(input)?))
            .collect::<Result<Vec<_>>>()?;
        let sort_fields = spec
            .order
            .iter()
            .map(|k| {
                let options = arrow::compute::SortOptions {
                    descending: k.descending,
                    nulls_first: k.nulls_first,
                };
                Ok(SortField::new_with_options(
                    k.expr.data_type(input)?,
                    options,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            partition_codec: RowCodec::new(partition_types)?,
            sort: RowConverter::new(sort_fields)?,
            keys: RowCodec::new(types(visible..input.fields().len()))?,
            values: RowCodec::new(types(0..visible))?,
            spec,
            partitions: HashMap::new(),
            schema,
        })
    }

    /// The rows of `partition` in `(skip, bound]`, with their ranks.
    fn select(&self, partition: Option<&Partition>) -> Vec<Selected> {
        let mut out = Vec::new();
        let Some(partition) = partition else {
            return out;
        };
        let (mut position, mut rank, mut dense) = (0u64, 0u64, 0u64);
        let mut previous: Option<&[u8]> = None;
        for (entry, &weight) in partition {
            if weight <= 0 {
                continue;
            }
            let copies = weight as u64;
            if previous != Some(entry.sort()) {
                rank = position + 1;
                dense += 1;
                previous = Some(entry.sort());
            }
            let first = position + 1;
            position += copies;
            let (low, high) = match self.spec.rank {
                Rank::RowNumber => (first, position),
                Rank::Rank => (rank, rank),
                Rank::DenseRank => (dense, dense),
            };
            if low > self.spec.bound {
                break;
            }
            let from = low.max(self.spec.skip + 1);
            let to = high.min(self.spec.bound);
            if from > to {
                continue;
            }
            // Copies of one row share a rank unless rows are numbered: then each copy is its
            // own output row. A rank that is not output is left at 0, so rows moving within
            // the selection change nothing.
            match (self.spec.emit_rank, self.spec.rank) {
                (false, Rank::RowNumber) => out.push((entry.clone(), 0, (to - from + 1) as i64)),
                (false, _) => out.push((entry.clone(), 0, weight)),
                (true, Rank::RowNumber) => {
                    out.extend((from..=to).map(|position| (entry.clone(), position, 1)))
                }
                (true, _) => out.push((entry.clone(), low, weight)),
            }
        }
        out
    }

    fn build_output(&self, changes: Vec<(Entry, u64, i64)>) -> Result<ChangeBatch> {
        if changes.is_empty() {
            return Ok(ChangeBatch::empty(self.schema.clone()));
        }
        let mut columns: Vec<ArrayRef> = self
            .values
            .decode(changes.iter().map(|(e, _, _)| e.values()))?;
        if self.spec.emit_rank {
            let ranks: UInt64Array = changes.iter().map(|(_, r, _)| Some(*r)).collect();
            columns.push(Arc::new(ranks));
        }
        columns.extend(self.keys.decode(changes.iter().map(|(e, _, _)| e.key()))?);
        let weights = changes.into_iter().map(|(_, _, w)| w).collect();
        ChangeBatch::try_from_columns(self.schema.clone(), columns, weights)
    }
}

impl Operator for TopNOp {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn step(&mut self, inputs: Vec<ChangeBatch>) -> Result<ChangeBatch> {
        let input = single(inputs);
        let rows = input.len();
        if rows == 0 {
            return Ok(ChangeBatch::empty(self.schema.clone()));
        }
        let evaluate = |exprs: &mut dyn Iterator<Item = &Arc<dyn PhysicalExpr>>| {
            exprs
                .map(|e| Ok(e.evaluate(&input.data)?.into_array(rows)?))
                .collect::<Result<Vec<_>>>()
        };
        let partitions = evaluate(&mut self.spec.partition.iter())?;
        let partitions = self.partition_codec.encode_rows(&partitions, rows)?;
        let sorts = evaluate(&mut self.spec.order.iter().map(|k| &k.expr))?;
        let sorts = self.sort.convert_columns(&sorts)?;
        let visible = self.values.types().len();
        let columns = input.data.columns();
        let keys = self.keys.encode_rows(&columns[visible..], rows)?;
        let values = self.values.encode_rows(&columns[..visible], rows)?;
        // Rows grouped by partition, partitions in first-touch order.
        let mut order: Vec<&[u8]> = Vec::new();
        let mut touched: HashMap<&[u8], Vec<usize>> = HashMap::new();
        for row in 0..rows {
            let partition = partitions.row(row);
            touched
                .entry(partition)
                .or_insert_with(|| {
                    order.push(partition);
                    Vec::new()
                })
                .push(row);
        }
        let weights = input.weights.values();
        let mut changes = Vec::new();
        for partition_key in order {
            let before = self.select(self.partitions.get(partition_key));
            let mut partition = self.partitions.remove(partition_key).unwrap_or_default();
            for &row in &touched[partition_key] {
                let entry = Entry::new(sorts.row(row).data(), keys.row(row), values.row(row));
                apply(&mut partition, entry, weights[row]);
            }
            let after = self.select(Some(&partition));
            if !partition.is_empty() {
                self.partitions.insert(partition_key.into(), partition);
            }
            let kept: HashSet<&Selected> = before.iter().collect();
            let new: HashSet<&Selected> = after.iter().collect();
            changes.extend(
                before
                    .iter()
                    .filter(|s| !new.contains(s))
                    .map(|(e, r, w)| (e.clone(), *r, -w)),
            );
            changes.extend(after.iter().filter(|s| !kept.contains(s)).cloned());
        }
        self.build_output(changes)
    }

    fn explain(&self) -> String {
        self.describe()
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        let state: Vec<(&RowBytes, Vec<(&Entry, &i64)>)> = self
            .partitions
            .iter()
            .map(|(k, p)| (k, p.iter().collect()))
            .collect();
        postcard::to_allocvec(&state).map_err(|e| Error::Snapshot(e.to_string()))
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let state: Vec<(RowBytes, Vec<(Entry, i64)>)> =
            postcard::from_bytes(bytes).map_err(|e| Error::Snapshot(e.to_string()))?;
        self.partitions = state
            .into_iter()
            .map(|(k, p)| (k, p.into_iter().collect()))
            .collect();
        Ok(())
    }
}

impl TopNOp {
    fn describe(&self) -> String {
        let name = if self.spec.partition.is_empty() {
            "TopN".to_string()
        } else {
            format!("TopN per partition ({})", self.spec.rank.name())
        };
        let kept: Vec<String> = self
            .schema
            .fields()
            .iter()
            .take(self.values.types().len())
            .map(|f| f.name().clone())
            .collect();
        format!(
            "{name}: {}; state: every input row of each partition, as sort key + row key + ({})",
            self.spec.label,
            kept.join(", ")
        )
    }
}
