//! Join: inner, outer, semi, anti and mark joins of two change streams on equal keys.
//!
//! Each input is kept as an [`Arrangement`] indexed by join key. A step computes
//! `Δ(L⋈R) = ΔL⋈R_old + L_new⋈ΔR`: the left change probes the right rows as they were, is
//! applied, then the right change probes the left rows as they are now, so the pairs of two
//! changes meeting in one step are counted exactly once. Candidate pairs go through the ON
//! clause's residual condition together, as one Arrow batch.
//!
//! A side whose output depends on whether its rows match (the preserved side of an outer
//! join, the probe side of a semi, anti or mark join) keeps each row's match count: the
//! weighted number of rows of the other side it joins with. Every row whose count or weight a
//! step changes is compared before and after, so a null-padded row is retracted when its first
//! match appears and emitted again when its last match goes.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, UInt32Array, new_null_array};
use arrow::compute::{concat, concat_batches, take_record_batch};
use arrow::datatypes::{Int64Type, SchemaRef};
use datafusion_physical_expr::PhysicalExpr;
use foldhash::{HashMap, HashMapExt};
use serde::{Deserialize, Serialize};

use super::Operator;
use super::arrangement::Arrangement;
use crate::change::ChangeBatch;
use crate::error::{Error, Result};
use crate::memory::StateUsage;
use crate::rows::RowCodec;

/// One input of a join.
#[derive(Debug)]
pub struct JoinSide {
    /// The join key expressions, over the side's visible columns, in the key codec's types.
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Codec of the side's whole input row (visible columns, then key columns).
    pub rows: RowCodec,
    /// How many of the input's columns are visible.
    pub visible: usize,
}

/// What a side-only join emits per row of its side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideEmit {
    /// Rows with a match (`IN`, `EXISTS`, `INTERSECT`).
    Semi,
    /// Rows without a match (`NOT EXISTS`, `EXCEPT`).
    Anti,
    /// `NOT IN`: rows without a match and with a non-NULL key, none at all while the other
    /// side holds a NULL key, and every row while the other side is empty.
    NullAwareAnti,
    /// Every row, with a boolean column saying whether it has a match.
    Mark,
}

/// What a join emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinOutput {
    /// Matching pairs; rows of a padded side without a match too, with NULLs for the other
    /// side (`[left, right]`: LEFT, RIGHT and FULL joins).
    Pairs { pad: [bool; 2] },
    /// Rows of one side only (0 = left, 1 = right).
    Side { side: usize, emit: SideEmit },
}

/// The other side of a NOT IN: whether it is empty or holds a NULL key decides every row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subquery {
    Empty,
    HasNull,
    Plain,
}

/// A join of two inputs on equal keys, with an optional residual condition.
///
/// # Guarantee
///
/// For inputs `L` and `R` (Z-sets) and changes `ΔL`, `ΔR`, a step returns
/// `J(L+ΔL, R+ΔR) - J(L, R)` where `J` is the join the [`JoinOutput`] names, evaluated with
/// SQL semantics: keys with a NULL never match unless `nulls_match` (set operations), a pair
/// joins when the residual condition is true (not NULL), and weights multiply. Outputs keep
/// the input rows' weights, so a multiset input (a table without a primary key) joins with
/// its multiplicities.
#[derive(Debug)]
pub struct JoinOp {
    sides: [JoinSide; 2],
    /// Codec of the join key, shared by both sides.
    keys: RowCodec,
    /// The ON clause's residual condition, over the pair schema's columns.
    filter: Option<Arc<dyn PhysicalExpr>>,
    output: JoinOutput,
    nulls_match: bool,
    arranged: [Arrangement; 2],
    /// For NOT IN: the right side's total weight, and that of its rows with a NULL key.
    right_rows: i64,
    right_nulls: i64,
    /// A pair of rows: left visible, right visible, left key, right key columns.
    pair_schema: SchemaRef,
    /// Codec of output rows, to net a step's output.
    output_rows: RowCodec,
    schema: SchemaRef,
}

/// A consolidated input change row.
struct Delta {
    /// Join key bytes; empty for a key holding a NULL (such rows never probe).
    key: Box<[u8]>,
    row: Box<[u8]>,
    weight: i64,
    null: bool,
}

/// A stored row's identity: its join key and row bytes.
type RowId = (Box<[u8]>, Box<[u8]>);

/// Rows of a counted side that a step touched, with their weight and match count before it.
#[derive(Default)]
struct Touched(HashMap<RowId, (i64, i64)>);

impl Touched {
    fn touch(&mut self, arranged: &Arrangement, key: &[u8], row: &[u8]) {
        self.0
            .entry((Box::from(key), Box::from(row)))
            .or_insert_with(|| arranged.get(key, row).unwrap_or((0, 0)));
    }
}

#[derive(Serialize)]
struct StateRef<'a> {
    arranged: &'a [Arrangement; 2],
    right_rows: i64,
    right_nulls: i64,
}

#[derive(Deserialize)]
struct State {
    arranged: [Arrangement; 2],
    right_rows: i64,
    right_nulls: i64,
}

/// What a counted row contributes to the output: `None` nothing, `Some(mark)` its row (with
/// the mark column's value for a mark join).
type Presence = Option<Option<bool>>;

impl JoinOp {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        sides: [JoinSide; 2],
        keys: RowCodec,
        filter: Option<Arc<dyn PhysicalExpr>>,
        output: JoinOutput,
        nulls_match: bool,
        pair_schema: SchemaRef,
        schema: SchemaRef,
    ) -> Result<Self> {
        let output_rows = RowCodec::new(
            schema
                .fields()
                .iter()
                .map(|f| f.data_type().clone())
                .collect(),
        )?;
        let mut join = Self {
            sides,
            keys,
            filter,
            output,
            nulls_match,
            arranged: Default::default(),
            right_rows: 0,
            right_nulls: 0,
            pair_schema,
            output_rows,
            schema,
        };
        join.arranged = join.counted().map(Arrangement::new);
        Ok(join)
    }

    /// Which sides keep match counts.
    fn counted(&self) -> [bool; 2] {
        match self.output {
            JoinOutput::Pairs { pad } => pad,
            JoinOutput::Side { side, .. } => [side == 0, side == 1],
        }
    }

    fn subquery(rows: i64, nulls: i64) -> Subquery {
        match (rows, nulls) {
            (0, _) => Subquery::Empty,
            (_, 0) => Subquery::Plain,
            _ => Subquery::HasNull,
        }
    }

    fn presence(&self, matches: i64, null: bool, subquery: Subquery) -> Presence {
        let unmatched = matches == 0;
        match self.output {
            JoinOutput::Pairs { .. } => unmatched.then_some(None),
            JoinOutput::Side { emit, .. } => match emit {
                SideEmit::Semi => (!unmatched).then_some(None),
                SideEmit::Anti => unmatched.then_some(None),
                SideEmit::Mark => Some(Some(!unmatched)),
                SideEmit::NullAwareAnti => match subquery {
                    Subquery::Empty => Some(None),
                    Subquery::HasNull => None,
                    Subquery::Plain => (unmatched && !null).then_some(None),
                },
            },
        }
    }

    /// Evaluates the join key and encodes the rows of one input's change, netting equal rows.
    fn prepare(&self, side: usize, batch: &ChangeBatch) -> Result<Vec<Delta>> {
        let n = batch.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let spec = &self.sides[side];
        let key_columns = spec
            .keys
            .iter()
            .map(|e| Ok(e.evaluate(&batch.data)?.into_array(n)?))
            .collect::<Result<Vec<_>>>()?;
        let keys = self.keys.encode_rows(&key_columns, n)?;
        let rows = spec.rows.encode_rows(batch.data.columns(), n)?;
        let mut slots: HashMap<&[u8], usize> = HashMap::new();
        let mut out: Vec<Delta> = Vec::new();
        for (i, &weight) in batch.weights.values().iter().enumerate() {
            let row = rows.row(i);
            if let Some(&slot) = slots.get(row) {
                out[slot].weight += weight;
                continue;
            }
            slots.insert(row, out.len());
            let null = !self.nulls_match && key_columns.iter().any(|c| c.is_null(i));
            out.push(Delta {
                key: if null {
                    Box::default()
                } else {
                    keys.row(i).into()
                },
                row: row.into(),
                weight,
                null,
            });
        }
        out.retain(|d| d.weight != 0);
        Ok(out)
    }

    /// Decodes rows of one side into its columns.
    fn decode<'a>(
        &self,
        side: usize,
        rows: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Vec<ArrayRef>> {
        self.sides[side].rows.decode(rows)
    }

    /// NULL columns standing in for a side's visible and key columns.
    fn nulls(&self, side: usize, n: usize) -> Vec<ArrayRef> {
        self.sides[side]
            .rows
            .types()
            .iter()
            .map(|t| new_null_array(t, n))
            .collect()
    }

    /// Lays out a left and a right side's columns as a pair row.
    fn pair_columns(&self, left: Vec<ArrayRef>, right: Vec<ArrayRef>) -> Vec<ArrayRef> {
        let (lv, rv) = (self.sides[0].visible, self.sides[1].visible);
        let mut columns = Vec::with_capacity(left.len() + right.len());
        columns.extend_from_slice(&left[..lv]);
        columns.extend_from_slice(&right[..rv]);
        columns.extend_from_slice(&left[lv..]);
        columns.extend_from_slice(&right[rv..]);
        columns
    }

    /// Pairs as output rows: without key columns when a side has no key (the pairs have no
    /// identity then, and only an aggregate reads them).
    fn keyless(&self, pairs: ChangeBatch) -> Result<ChangeBatch> {
        let width = self.schema.fields().len();
        if pairs.data.num_columns() == width {
            return Ok(pairs);
        }
        let columns = pairs.data.columns()[..width].to_vec();
        pairs.with_columns(self.schema.clone(), columns)
    }

    /// The batch with equal rows' weights summed and rows of weight zero left out.
    fn net(&self, batch: ChangeBatch) -> Result<ChangeBatch> {
        let rows = self
            .output_rows
            .encode_rows(batch.data.columns(), batch.len())?;
        let mut slots: HashMap<&[u8], usize> = HashMap::new();
        let mut kept: Vec<(u32, i64)> = Vec::new();
        for (i, &weight) in batch.weights.values().iter().enumerate() {
            match slots.get(rows.row(i)) {
                Some(&slot) => kept[slot].1 += weight,
                None => {
                    slots.insert(rows.row(i), kept.len());
                    kept.push((u32::try_from(i).expect("a batch of over 2^32 rows"), weight));
                }
            }
        }
        kept.retain(|(_, w)| *w != 0);
        let indices = UInt32Array::from_iter_values(kept.iter().map(|(i, _)| *i));
        let data = take_record_batch(&batch.data, &indices)?;
        Ok(ChangeBatch::new(
            data,
            kept.iter().map(|(_, w)| *w).collect(),
        ))
    }

    /// Whether each pair satisfies the residual condition (NULL counts as false).
    fn mask(&self, pairs: &ChangeBatch) -> Result<BooleanArray> {
        let Some(filter) = &self.filter else {
            return Ok(BooleanArray::from(vec![true; pairs.len()]));
        };
        let mask = filter.evaluate(&pairs.data)?.into_array(pairs.len())?;
        let mask = mask
            .as_boolean_opt()
            .ok_or_else(|| Error::Query("join condition is not boolean".into()))?;
        Ok(mask.iter().map(|v| Some(v == Some(true))).collect())
    }

    /// The output rows of a counted side's touched rows, from their state before and after.
    fn side_output(
        &self,
        side: usize,
        touched: Touched,
        subquery: [Subquery; 2],
    ) -> Result<Option<ChangeBatch>> {
        let has_key = !self.keys.types().is_empty();
        let mut rows: Vec<(Box<[u8]>, i64, Option<bool>)> = Vec::new();
        for ((key, row), (w0, m0)) in touched.0 {
            let (w1, m1) = self.arranged[side].get(&key, &row).unwrap_or((0, 0));
            let null = has_key && key.is_empty();
            let before = self.presence(m0, null, subquery[0]);
            let after = self.presence(m1, null, subquery[1]);
            if before == after && w0 == w1 {
                continue;
            }
            if let Some(mark) = before.filter(|_| w0 != 0) {
                rows.push((row.clone(), -w0, mark));
            }
            if let Some(mark) = after.filter(|_| w1 != 0) {
                rows.push((row, w1, mark));
            }
        }
        if rows.is_empty() {
            return Ok(None);
        }
        let n = rows.len();
        let decoded = self.decode(side, rows.iter().map(|(r, _, _)| r.as_ref()))?;
        let columns = match self.output {
            JoinOutput::Pairs { .. } if side == 0 => self.pair_columns(decoded, self.nulls(1, n)),
            JoinOutput::Pairs { .. } => self.pair_columns(self.nulls(0, n), decoded),
            JoinOutput::Side { emit, .. } => {
                let visible = self.sides[side].visible;
                let mut columns = decoded[..visible].to_vec();
                if emit == SideEmit::Mark {
                    let marks: BooleanArray = rows.iter().map(|(_, _, m)| *m).collect();
                    columns.push(Arc::new(marks));
                }
                columns.extend_from_slice(&decoded[visible..]);
                columns
            }
        };
        let mut columns = columns;
        columns.truncate(self.schema.fields().len());
        let weights = rows.iter().map(|(_, w, _)| *w).collect();
        ChangeBatch::try_from_columns(self.schema.clone(), columns, weights).map(Some)
    }
}

impl Operator for JoinOp {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn step(&mut self, inputs: Vec<ChangeBatch>) -> Result<ChangeBatch> {
        let [left, right]: [ChangeBatch; 2] = inputs
            .try_into()
            .expect("the plan gives a join exactly two inputs");
        let deltas = [self.prepare(0, &left)?, self.prepare(1, &right)?];
        let counted = self.counted();
        let null_aware = matches!(
            self.output,
            JoinOutput::Side {
                emit: SideEmit::NullAwareAnti,
                ..
            }
        );
        let (rows_after, nulls_after) = deltas[1]
            .iter()
            .fold((self.right_rows, self.right_nulls), |(rows, nulls), d| {
                (rows + d.weight, nulls + if d.null { d.weight } else { 0 })
            });
        let subquery = [
            Self::subquery(self.right_rows, self.right_nulls),
            Self::subquery(rows_after, nulls_after),
        ];
        let mut touched: [Touched; 2] = Default::default();
        if null_aware && subquery[0] != subquery[1] {
            // Every left row's presence depends on the right side as a whole.
            for (key, entry) in self.arranged[0].iter() {
                touched[0].0.insert(
                    (key.into(), entry.row.into()),
                    (entry.weight, entry.matches),
                );
            }
        }
        let mut outputs = Vec::new();
        for s in 0..2 {
            let o = 1 - s;
            let mut probing = Vec::new();
            let mut matched: Vec<(Box<[u8]>, i64)> = Vec::new();
            for (i, d) in deltas[s].iter().enumerate().filter(|(_, d)| !d.null) {
                for e in self.arranged[o].bucket(&d.key) {
                    probing.push(i);
                    matched.push((e.row.into(), e.weight));
                }
            }
            let mut sums = vec![0i64; deltas[s].len()];
            if !probing.is_empty() {
                let own = self.decode(s, probing.iter().map(|&i| deltas[s][i].row.as_ref()))?;
                let other = self.decode(o, matched.iter().map(|(r, _)| r.as_ref()))?;
                let columns = if s == 0 {
                    self.pair_columns(own, other)
                } else {
                    self.pair_columns(other, own)
                };
                let weights = probing
                    .iter()
                    .zip(&matched)
                    .map(|(&i, (_, w))| deltas[s][i].weight * w)
                    .collect();
                let pairs =
                    ChangeBatch::try_from_columns(self.pair_schema.clone(), columns, weights)?;
                let mask = self.mask(&pairs)?;
                for (c, keep) in mask.values().iter().enumerate() {
                    if !keep {
                        continue;
                    }
                    let d = &deltas[s][probing[c]];
                    let (row, weight) = &matched[c];
                    sums[probing[c]] += weight;
                    if counted[o] {
                        touched[o].touch(&self.arranged[o], &d.key, row);
                        self.arranged[o].add_matches(&d.key, row, d.weight);
                    }
                }
                if matches!(self.output, JoinOutput::Pairs { .. }) {
                    outputs.push(self.keyless(pairs.filter(&mask)?)?);
                }
            }
            // Consecutive rows of one join key (an update's retraction and insertion) are
            // stored in one edit of its bucket. Touching first is safe: an edit of one row
            // changes no other row's weight or match count.
            let mut run: Vec<(&[u8], i64, i64)> = Vec::new();
            let mut run_key: Option<&[u8]> = None;
            for (d, sum) in deltas[s].iter().zip(sums) {
                if counted[s] {
                    touched[s].touch(&self.arranged[s], &d.key, &d.row);
                }
                if !counted[s] && d.null {
                    continue;
                }
                if run_key != Some(&d.key[..]) {
                    if let Some(key) = run_key {
                        self.arranged[s].add_all(key, &run);
                    }
                    run.clear();
                    run_key = Some(&d.key);
                }
                run.push((&d.row, d.weight, sum));
            }
            if let Some(key) = run_key {
                self.arranged[s].add_all(key, &run);
            }
        }
        self.right_rows = rows_after;
        self.right_nulls = nulls_after;
        for (side, touched) in touched.into_iter().enumerate() {
            outputs.extend(self.side_output(side, touched, subquery)?);
        }
        let out = concat_changes(&self.schema, outputs)?;
        if deltas.iter().all(|d| !d.is_empty()) {
            // A pair of the old state that the step retracts again (a new left row with the
            // right row a right change replaces) must not reach the operators above: their
            // expressions would be evaluated on a row no state holds (`x / 0` for a count
            // that was 0 only before the step).
            return self.net(out);
        }
        Ok(out)
    }

    fn state_usage(&self) -> Result<Vec<StateUsage>> {
        let (lv, rv) = (self.sides[0].visible, self.sides[1].visible);
        let names = |range: std::ops::Range<usize>| {
            let names: Vec<&str> = self.pair_schema.fields()[range]
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            names.join(", ")
        };
        let labels = [
            format!("join left ({})", names(0..lv)),
            format!("join right ({})", names(lv..lv + rv)),
        ];
        labels
            .into_iter()
            .enumerate()
            .map(|(side, part)| {
                let arranged = &self.arranged[side];
                let (rows, allocated_bytes, value_bytes) = arranged.usage();
                let stored: Vec<&[u8]> = arranged.iter().map(|(_, e)| e.row).collect();
                let mut column_bytes = 0;
                for chunk in stored.chunks(1 << 16) {
                    let columns = self.decode(side, chunk.iter().copied())?;
                    column_bytes += columns
                        .iter()
                        .map(|c| c.get_array_memory_size())
                        .sum::<usize>();
                }
                Ok(StateUsage {
                    part,
                    rows,
                    allocated_bytes,
                    value_bytes,
                    column_bytes,
                })
            })
            .collect()
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        let state = StateRef {
            arranged: &self.arranged,
            right_rows: self.right_rows,
            right_nulls: self.right_nulls,
        };
        postcard::to_allocvec(&state).map_err(|e| Error::Snapshot(e.to_string()))
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let state: State =
            postcard::from_bytes(bytes).map_err(|e| Error::Snapshot(e.to_string()))?;
        self.arranged = state.arranged;
        self.right_rows = state.right_rows;
        self.right_nulls = state.right_nulls;
        Ok(())
    }
}

/// Change batches of one schema as one batch.
pub(super) fn concat_changes(schema: &SchemaRef, batches: Vec<ChangeBatch>) -> Result<ChangeBatch> {
    let batches: Vec<ChangeBatch> = batches.into_iter().filter(|b| !b.is_empty()).collect();
    match batches.len() {
        0 => Ok(ChangeBatch::empty(schema.clone())),
        1 => Ok(batches.into_iter().next().expect("one batch")),
        _ => {
            let data = concat_batches(schema, batches.iter().map(|b| &b.data))?;
            let weights: Vec<&dyn Array> =
                batches.iter().map(|b| &b.weights as &dyn Array).collect();
            let weights = concat(&weights)?.as_primitive::<Int64Type>().clone();
            Ok(ChangeBatch::new(data, weights))
        }
    }
}
