//! Window expansion (UNNEST of one list column): each row once per element of its list.
//!
//! HOP windows use it to emit a row once per window it belongs to, with the window's start
//! as a column, before an ordinary aggregate. It is linear and stateless: a row's copies carry
//! its weight, so a retraction retracts exactly the copies its insertion made, as long as the
//! list is a function of the row (DataFusion's immutable functions are).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, UInt64Array};
use arrow::compute::take;
use arrow::datatypes::SchemaRef;
use datafusion_common::NullHandling;

use super::{Operator, single};
use crate::change::ChangeBatch;
use crate::error::{Error, Result};

/// Emits, per input row and element of its list at `list`, the columns `columns` (input
/// indices; `list` itself gives the element), then the input's key and the element's ordinal.
///
/// # Guarantee
///
/// The output is the unnest of the input relation: a row with `k` elements stands for `k`
/// output rows (none for an empty list; a NULL list as `nulls` says), each with the row's
/// weight and keyed by the row's key and the element's position, so it is the change of the
/// unnested relation.
#[derive(Debug)]
pub struct WindowExpandOp {
    list: usize,
    columns: Vec<usize>,
    /// The input's key columns (indices), carried before the ordinal.
    key: Vec<usize>,
    nulls: NullHandling,
    schema: SchemaRef,
}

impl WindowExpandOp {
    pub fn new(
        list: usize,
        columns: Vec<usize>,
        key: Vec<usize>,
        nulls: NullHandling,
        schema: SchemaRef,
    ) -> Self {
        Self {
            list,
            columns,
            key,
            nulls,
            schema,
        }
    }

    fn describe(&self) -> String {
        format!(
            "WindowExpand: one row per element of `{}`, key = input key + ordinal; no state",
            self.schema
                .field(
                    self.columns
                        .iter()
                        .position(|&c| c == self.list)
                        .unwrap_or(0)
                )
                .name()
        )
    }
}

impl Operator for WindowExpandOp {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn explain(&self) -> String {
        self.describe()
    }

    fn step(&mut self, inputs: Vec<ChangeBatch>) -> Result<ChangeBatch> {
        let input = single(inputs);
        let list = input.column(self.list);
        let list = list
            .as_list_opt::<i32>()
            .ok_or_else(|| Error::Query(format!("UNNEST of a {}", list.data_type())))?;
        let offsets = list.value_offsets();
        let mut parents: Vec<u64> = Vec::new();
        let mut elements: Vec<Option<u64>> = Vec::new();
        let mut ordinals: Vec<u64> = Vec::new();
        for row in 0..input.len() {
            let (start, end) = (offsets[row] as u64, offsets[row + 1] as u64);
            let null = list.is_null(row);
            let single_null = match self.nulls {
                NullHandling::Drop => false,
                NullHandling::Preserve => null,
                NullHandling::PreserveAndExpandEmpty => null || start == end,
            };
            if single_null {
                parents.push(row as u64);
                elements.push(None);
                ordinals.push(0);
            } else if !null {
                for (ordinal, element) in (start..end).enumerate() {
                    parents.push(row as u64);
                    elements.push(Some(element));
                    ordinals.push(ordinal as u64);
                }
            }
        }
        let parents = UInt64Array::from(parents);
        let elements = UInt64Array::from(elements);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for &c in &self.columns {
            columns.push(if c == self.list {
                take(list.values(), &elements, None)?
            } else {
                take(input.column(c), &parents, None)?
            });
        }
        if !self.key.is_empty() {
            for &c in &self.key {
                columns.push(take(input.column(c), &parents, None)?);
            }
            columns.push(Arc::new(UInt64Array::from(ordinals)));
        }
        let weights = take(&input.weights, &parents, None)?;
        let weights = weights.as_primitive::<arrow::datatypes::Int64Type>();
        ChangeBatch::try_from_columns(self.schema.clone(), columns, weights.values().to_vec())
    }
}
