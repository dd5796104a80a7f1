//! Aggregate: GROUP BY with retractable aggregates, emitting each touched group's change.
//!
//! State per group is its weighted input row count and one [`Accumulator`] per aggregate;
//! nothing else of the input rows is kept. A step updates the groups its rows touch, then
//! for each touched group compares the output row before and after the step and emits the
//! difference (`-old`, `+new`), so what leaves the operator is already net per group.
//!
//! A grouped aggregate's group exists while its row count is positive. A global aggregate
//! (no GROUP BY) has exactly one group, always: its first step emits it even on no input,
//! since `SELECT COUNT(*) FROM t` is one row (`0`) over an empty table.

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::physical_expr::PhysicalExpr;
use serde::{Deserialize, Serialize};

use super::accumulator::{Accumulator, Prepared, Spec};
use super::{Operator, single};
use crate::change::ChangeBatch;
use crate::error::{Error, Result};
use crate::rows::{RowBytes, RowCodec};

pub use super::accumulator::{Function, Spec as AggregateSpec, SumKind};

/// One aggregate call: its argument, FILTER clause and accumulator spec.
#[derive(Debug)]
pub struct AggregateCall {
    pub arg: Arc<dyn PhysicalExpr>,
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    pub spec: Spec,
}

#[derive(Debug, Serialize, Deserialize)]
struct Group {
    rows: i64,
    accumulators: Vec<Accumulator>,
}

/// A group a step works on.
struct Touched {
    key: RowBytes,
    /// The group's output before the step.
    before: Option<Vec<ScalarValue>>,
    group: Group,
}

#[derive(Deserialize)]
struct State {
    groups: Vec<(RowBytes, Group)>,
    started: bool,
}

/// [`State`] borrowed from the operator, so a snapshot does not copy the groups first.
#[derive(Serialize)]
struct StateRef<'a> {
    groups: Vec<(&'a RowBytes, &'a Group)>,
    started: bool,
}

#[derive(Debug)]
pub struct AggregateOp {
    group_exprs: Vec<Arc<dyn PhysicalExpr>>,
    group_codec: RowCodec,
    calls: Vec<AggregateCall>,
    groups: HashMap<RowBytes, Group>,
    /// Whether a step has run: a global aggregate's first step emits its row.
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
        Self {
            group_exprs,
            group_codec,
            calls,
            groups: HashMap::new(),
            started: false,
            schema,
        }
    }

    fn is_global(&self) -> bool {
        self.group_exprs.is_empty()
    }

    fn new_group(&self) -> Group {
        Group {
            rows: 0,
            accumulators: self.calls.iter().map(|c| c.spec.new_state()).collect(),
        }
    }

    /// The group's output values (aggregates only), or `None` when the group is absent.
    fn output(&self, group: Option<&Group>) -> Result<Option<Vec<ScalarValue>>> {
        match group {
            Some(g) if g.rows > 0 || self.is_global() => g
                .accumulators
                .iter()
                .zip(&self.calls)
                .map(|(acc, call)| acc.evaluate(&call.spec))
                .collect::<Result<Vec<_>>>()
                .map(Some),
            _ => Ok(None),
        }
    }

    /// Prepared arguments and FILTER masks of every call for one batch.
    fn prepare(&self, input: &ChangeBatch) -> Result<Vec<(Prepared, Option<Vec<bool>>)>> {
        let rows = input.len();
        self.calls
            .iter()
            .map(|call| {
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

    fn build_output(&self, changes: Vec<(RowBytes, Vec<ScalarValue>, i64)>) -> Result<ChangeBatch> {
        if changes.is_empty() {
            return Ok(ChangeBatch::empty(self.schema.clone()));
        }
        let keys: Vec<ArrayRef> = if self.is_global() {
            Vec::new()
        } else {
            self.group_codec
                .decode(changes.iter().map(|(k, _, _)| k.as_ref()))?
        };
        let mut columns = keys.clone();
        for i in 0..self.calls.len() {
            let values = changes.iter().map(|(_, v, _)| v[i].clone());
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
            .map(|c| {
                let distinct = if c.spec.distinct { "DISTINCT " } else { "" };
                let kept = if c.spec.values.is_some() {
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
        // The groups this step touches, taken out of the map while the step works on them,
        // in first-touch order, with their output before the step.
        let mut touched: Vec<Touched> = Vec::new();
        if !self.started && self.is_global() {
            let group = self
                .groups
                .remove(&[][..])
                .unwrap_or_else(|| self.new_group());
            touched.push(Touched {
                key: RowBytes::default(),
                before: None,
                group,
            });
        }
        self.started = true;
        if rows > 0 {
            let group_columns = self
                .group_exprs
                .iter()
                .map(|e| Ok(e.evaluate(&input.data)?.into_array(rows)?))
                .collect::<Result<Vec<_>>>()?;
            let keys = self.group_codec.encode_rows(&group_columns, rows)?;
            let prepared = self.prepare(&input)?;
            let weights = input.weights.values();
            let mut slots: HashMap<&[u8], usize> = HashMap::new();
            if !touched.is_empty() {
                // The global group of a first step.
                slots.insert(&[], 0);
            }
            for (row, &weight) in weights.iter().enumerate() {
                let key = keys.row(row);
                let slot = match slots.get(key) {
                    Some(&slot) => slot,
                    None => {
                        let stored = self.groups.remove(key);
                        let before = self.output(stored.as_ref())?;
                        let group = stored.unwrap_or_else(|| self.new_group());
                        touched.push(Touched {
                            key: key.into(),
                            before,
                            group,
                        });
                        slots.insert(key, touched.len() - 1);
                        touched.len() - 1
                    }
                };
                let group = &mut touched[slot].group;
                group.rows += weight;
                for ((call, (arg, mask)), acc) in self
                    .calls
                    .iter()
                    .zip(&prepared)
                    .zip(&mut group.accumulators)
                {
                    if mask.as_ref().is_none_or(|m| m[row]) {
                        acc.update(&call.spec, arg, row, weight)?;
                    }
                }
            }
        }
        let mut changes = Vec::new();
        for Touched { key, before, group } in touched {
            let after = self.output(Some(&group))?;
            if after.is_some() {
                self.groups.insert(key.clone(), group);
            }
            if before == after {
                continue;
            }
            if let Some(before) = before {
                changes.push((key.clone(), before, -1));
            }
            if let Some(after) = after {
                changes.push((key, after, 1));
            }
        }
        self.build_output(changes)
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        let state = StateRef {
            groups: self.groups.iter().collect(),
            started: self.started,
        };
        postcard::to_allocvec(&state).map_err(|e| Error::Snapshot(e.to_string()))
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let state: State =
            postcard::from_bytes(bytes).map_err(|e| Error::Snapshot(e.to_string()))?;
        self.groups = state.groups.into_iter().collect();
        self.started = state.started;
        Ok(())
    }
}
