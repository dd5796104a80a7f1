//! Aggregate: GROUP BY with retractable aggregates, emitting each touched group's change.
//!
//! State per group is its weighted input row count and one [`Accumulator`] per distinct
//! aggregate state; nothing else of the input rows is kept. Calls that would keep the same
//! state (one argument and FILTER: `MIN(x)` and `MAX(x)`, `SUM(x)` and `AVG(x)`) share one,
//! updated once per row and read by each call. A step updates the groups its rows touch, then
//! for each touched group compares the output row before and after the step and emits the
//! difference (`-old`, `+new`), so what leaves the operator is already net per group.
//!
//! A grouped aggregate's group exists while its row count is positive. A global aggregate
//! (no GROUP BY) has exactly one group, always: its first step emits it even on no input,
//! since `SELECT COUNT(*) FROM t` is one row (`0`) over an empty table.

use std::hash::BuildHasher;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray};
use arrow::datatypes::SchemaRef;
use datafusion_common::ScalarValue;
use datafusion_physical_expr::PhysicalExpr;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::accumulator::{Accumulator, Prepared, Spec};
use super::{Operator, single};
use crate::change::ChangeBatch;
use crate::error::{Error, Result};
use crate::rows::RowCodec;

pub use super::accumulator::{Function, Spec as AggregateSpec, SumKind};

/// One aggregate call: its argument, FILTER clause and accumulator spec.
#[derive(Debug)]
pub struct AggregateCall {
    pub arg: Arc<dyn PhysicalExpr>,
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    pub spec: Spec,
}

impl AggregateCall {
    /// Whether this call's state is `other`'s: the same argument, FILTER and kind of state.
    fn keeps_state_of(&self, other: &AggregateCall) -> bool {
        self.arg.as_ref() == other.arg.as_ref()
            && match (&self.filter, &other.filter) {
                (Some(a), Some(b)) => a.as_ref() == b.as_ref(),
                (a, b) => a.is_none() && b.is_none(),
            }
            && self.spec.keeps_state_of(&other.spec)
    }
}

/// A group's key, inline up to 16 bytes (any one number, or a short string): a lookup then
/// compares it where the hash table holds it, without a pointer to follow.
type GroupKey = SmallVec<[u8; 16]>;

#[derive(Debug, Serialize, Deserialize)]
struct Group {
    rows: i64,
    /// One per shared state ([`AggregateOp::owners`]), inline for up to two, for the same
    /// reason as [`GroupKey`].
    accumulators: SmallVec<[Accumulator; 2]>,
    /// The last step that touched the group: its first touch in a step records the output
    /// before the step. Not state: a restored group was touched by no step of this process.
    #[serde(skip)]
    step: u64,
}

/// A group a step touches: where to find it again, and its output before the step.
struct Touched {
    hash: u64,
    /// A row of the step's batch in this group, whose group key is the group's key; `None`
    /// for the global group of a first step without rows.
    row: Option<usize>,
    /// Where the group's output before the step starts in the step's [`Outputs`].
    before: Option<usize>,
}

/// The output values of the groups a step touches, one call's value after another, in one
/// vector for the whole step rather than one per group.
#[derive(Debug, Default)]
struct Outputs(Vec<ScalarValue>);

impl Outputs {
    /// Appends a group's output values (aggregates only) and returns where they start, or
    /// `None` when the group is absent: a grouped aggregate's group exists while its row
    /// count is positive, the global one always.
    fn push(
        &mut self,
        calls: &[AggregateCall],
        states: &[usize],
        global: bool,
        group: &Group,
    ) -> Result<Option<usize>> {
        if group.rows <= 0 && !global {
            return Ok(None);
        }
        let start = self.0.len();
        for (call, &state) in calls.iter().zip(states) {
            self.0.push(group.accumulators[state].evaluate(&call.spec)?);
        }
        Ok(Some(start))
    }

    fn row(&self, start: usize, calls: usize) -> &[ScalarValue] {
        &self.0[start..start + calls]
    }
}

#[derive(Deserialize)]
struct State {
    groups: Vec<(GroupKey, Group)>,
    started: bool,
}

/// [`State`] borrowed from the operator, so a snapshot does not copy the groups first.
#[derive(Serialize)]
struct StateRef<'a> {
    groups: Vec<(&'a GroupKey, &'a Group)>,
    started: bool,
}

/// Groups by key, updated in place: a step hashes each input row's key once and touches each
/// group's state where it lies, allocating only for groups it creates.
#[derive(Debug)]
pub struct AggregateOp {
    group_exprs: Vec<Arc<dyn PhysicalExpr>>,
    group_codec: RowCodec,
    calls: Vec<AggregateCall>,
    /// Per call, the index of the state it reads in a group's accumulators.
    states: Vec<usize>,
    /// Per state, the call that updates it: the first call keeping that state.
    owners: Vec<usize>,
    groups: HashTable<(GroupKey, Group)>,
    hasher: foldhash::fast::FixedState,
    /// Steps run so far: a global aggregate's first step emits its row.
    steps: u64,
    /// Whether a step has run, in this process or before its snapshot.
    started: bool,
    /// Output: group columns, aggregate columns, then the group columns again as the key.
    schema: SchemaRef,
}

impl AggregateOp {
    pub fn new(
        group_exprs: Vec<Arc<dyn PhysicalExpr>>,
        group_codec: RowCodec,
        calls: Vec<AggregateCall>,
        schema: SchemaRef,
    ) -> Self {
        let (mut states, mut owners) = (Vec::new(), Vec::<usize>::new());
        for (i, call) in calls.iter().enumerate() {
            match owners.iter().position(|&o| call.keeps_state_of(&calls[o])) {
                Some(state) => states.push(state),
                None => {
                    states.push(owners.len());
                    owners.push(i);
                }
            }
        }
        Self {
            group_exprs,
            group_codec,
            calls,
            states,
            owners,
            groups: HashTable::new(),
            hasher: foldhash::fast::FixedState::default(),
            steps: 0,
            started: false,
            schema,
        }
    }

    fn is_global(&self) -> bool {
        self.group_exprs.is_empty()
    }

    /// Prepared arguments and FILTER masks of each state's owning call for one batch.
    fn prepare(&self, input: &ChangeBatch) -> Result<Vec<(Prepared, Option<Vec<bool>>)>> {
        let rows = input.len();
        self.owners
            .iter()
            .map(|&owner| {
                let call = &self.calls[owner];
                let arg = call.arg.evaluate(&input.data)?.into_array(rows)?;
                let mask = match &call.filter {
                    Some(filter) => {
                        let mask = filter.evaluate(&input.data)?.into_array(rows)?;
                        let mask = mask
                            .as_any()
                            .downcast_ref::<BooleanArray>()
                            .ok_or_else(|| Error::Query("FILTER clause is not boolean".into()))?;
                        Some(
                            (0..rows)
                                .map(|i| mask.is_valid(i) && mask.value(i))
                                .collect(),
                        )
                    }
                    None => None,
                };
                Ok((call.spec.prepare(&arg)?, mask))
            })
            .collect()
    }

    /// The step's output: per change, the group key, where its values start in `outputs`,
    /// and its weight.
    fn build_output(
        &self,
        changes: &[(&[u8], usize, i64)],
        outputs: &Outputs,
    ) -> Result<ChangeBatch> {
        if changes.is_empty() {
            return Ok(ChangeBatch::empty(self.schema.clone()));
        }
        let keys: Vec<ArrayRef> = if self.is_global() {
            Vec::new()
        } else {
            self.group_codec
                .decode(changes.iter().map(|(k, _, _)| *k))?
        };
        let mut columns = keys.clone();
        for i in 0..self.calls.len() {
            let values = changes
                .iter()
                .map(|(_, start, _)| outputs.0[start + i].clone());
            columns.push(ScalarValue::iter_to_array(values)?);
        }
        columns.extend(keys);
        let weights = changes.iter().map(|(_, _, w)| *w).collect();
        ChangeBatch::try_from_columns(self.schema.clone(), columns, weights)
    }
}

impl Operator for AggregateOp {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn explain(&self) -> String {
        let groups: Vec<String> = self.group_exprs.iter().map(ToString::to_string).collect();
        let calls: Vec<String> = self
            .calls
            .iter()
            .zip(&self.states)
            .enumerate()
            .map(|(i, (c, &state))| {
                let distinct = if c.spec.distinct { "DISTINCT " } else { "" };
                let kept = if self.owners[state] != i {
                    " (shares the state above)"
                } else if c.spec.values.is_some() {
                    ": ordered multiset of values"
                } else {
                    ""
                };
                format!("{:?}({distinct}{}){kept}", c.spec.function, c.arg)
            })
            .collect();
        format!(
            "Aggregate: group by [{}]; state per group: row count, {}",
            groups.join(", "),
            calls.join(", ")
        )
    }

    fn step(&mut self, inputs: Vec<ChangeBatch>) -> Result<ChangeBatch> {
        let input = single(inputs);
        let rows = input.len();
        self.steps += 1;
        let step = self.steps;
        let global = self.is_global();
        let hasher = self.hasher.clone();
        let rehash = |(key, _): &(GroupKey, Group)| hasher.hash_one(key.as_slice());
        let calls = &self.calls;
        let (states, owners) = (&self.states, &self.owners);
        let new_group = || Group {
            rows: 0,
            accumulators: owners.iter().map(|&o| calls[o].spec.new_state()).collect(),
            step,
        };
        // The groups this step touches, in first-touch order, with their output before it.
        let mut touched: Vec<Touched> = Vec::new();
        let mut outputs = Outputs::default();
        if !self.started && global {
            let hash = hasher.hash_one(&[][..] as &[u8]);
            let entry = self.groups.entry(hash, |(k, _)| k.is_empty(), rehash);
            entry.or_insert_with(|| (GroupKey::new(), new_group()));
            touched.push(Touched {
                hash,
                row: None,
                before: None,
            });
        }
        self.started = true;
        let keys = if rows > 0 {
            let group_columns = self
                .group_exprs
                .iter()
                .map(|e| Ok(e.evaluate(&input.data)?.into_array(rows)?))
                .collect::<Result<Vec<_>>>()?;
            Some(self.group_codec.encode_rows(&group_columns, rows)?)
        } else {
            None
        };
        if let Some(keys) = &keys {
            let prepared = self.prepare(&input)?;
            let weights = input.weights.values();
            for (row, &weight) in weights.iter().enumerate() {
                let key = keys.row(row);
                let hash = hasher.hash_one(key);
                let group = match self.groups.entry(hash, |(k, _)| **k == *key, rehash) {
                    Entry::Occupied(stored) => {
                        let group = &mut stored.into_mut().1;
                        if group.step != step {
                            group.step = step;
                            touched.push(Touched {
                                hash,
                                row: Some(row),
                                before: outputs.push(calls, states, global, group)?,
                            });
                        }
                        group
                    }
                    Entry::Vacant(slot) => {
                        touched.push(Touched {
                            hash,
                            row: Some(row),
                            before: None,
                        });
                        let stored = (GroupKey::from_slice(key), new_group());
                        &mut slot.insert(stored).into_mut().1
                    }
                };
                group.rows += weight;
                for ((&owner, (arg, mask)), acc) in
                    owners.iter().zip(&prepared).zip(&mut group.accumulators)
                {
                    if mask.as_ref().is_none_or(|m| m[row]) {
                        acc.update(&calls[owner].spec, arg, row, weight)?;
                    }
                }
            }
        }
        let mut changes = Vec::new();
        for Touched { hash, row, before } in touched {
            let key: &[u8] = match (row, &keys) {
                (Some(row), Some(keys)) => keys.row(row),
                _ => &[],
            };
            let Ok(stored) = self.groups.find_entry(hash, |(k, _)| **k == *key) else {
                continue;
            };
            let after = outputs.push(calls, states, global, &stored.get().1)?;
            if after.is_none() {
                stored.remove();
            }
            let n = calls.len();
            match (before, after) {
                (Some(b), Some(a)) if outputs.row(b, n) == outputs.row(a, n) => continue,
                (None, None) => continue,
                _ => {}
            }
            if let Some(before) = before {
                changes.push((key, before, -1));
            }
            if let Some(after) = after {
                changes.push((key, after, 1));
            }
        }
        self.build_output(&changes, &outputs)
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        let state = StateRef {
            groups: self.groups.iter().map(|(k, g)| (k, g)).collect(),
            started: self.started,
        };
        postcard::to_allocvec(&state).map_err(|e| Error::Snapshot(e.to_string()))
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let state: State =
            postcard::from_bytes(bytes).map_err(|e| Error::Snapshot(e.to_string()))?;
        let hasher = self.hasher.clone();
        self.groups = HashTable::with_capacity(state.groups.len());
        for (key, group) in state.groups {
            if group.accumulators.len() != self.owners.len() {
                return Err(Error::Snapshot(
                    "aggregate state count differs from the plan".into(),
                ));
            }
            self.groups
                .insert_unique(hasher.hash_one(key.as_slice()), (key, group), |(k, _)| {
                    hasher.hash_one(k.as_slice())
                });
        }
        self.started = state.started;
        Ok(())
    }
}
