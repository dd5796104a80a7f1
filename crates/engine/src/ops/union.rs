//! Union: the branches of a `UNION ALL`, one stream, each row keyed by its branch and key.
//!
//! Like a projection it is linear and stateless: a branch's change is the union's change.
//! Two branches may hold rows with equal keys (the same primary key read twice), so a row's
//! key is its branch's index followed by its branch's key columns; branches whose keys have
//! the same types share those columns, others leave each other's NULL.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, new_null_array};
use arrow::compute::cast;
use arrow::datatypes::SchemaRef;

use super::Operator;
use super::join::concat_changes;
use crate::change::ChangeBatch;
use crate::error::Result;

/// Where one branch's columns go.
#[derive(Debug)]
pub struct Branch {
    /// How many of the branch's columns are visible.
    pub visible: usize,
    /// For each of the branch's key columns, its position among the union's key columns
    /// after the branch index; empty when the union has no key.
    pub key_slots: Vec<usize>,
}

/// `UNION ALL` of its inputs.
///
/// # Guarantee
///
/// A step returns the concatenation of its inputs' changes, each with its visible columns
/// cast to the union's types and keyed by (branch index, branch key): `O(R) + ΔO = O(R + ΔR)`
/// with no state, and distinct result rows have distinct keys.
#[derive(Debug)]
pub struct UnionOp {
    branches: Vec<Branch>,
    /// Whether rows carry a key (every branch has one).
    keyed: bool,
    schema: SchemaRef,
}

impl UnionOp {
    pub fn new(branches: Vec<Branch>, keyed: bool, schema: SchemaRef) -> Self {
        Self {
            branches,
            keyed,
            schema,
        }
    }
}

impl Operator for UnionOp {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn step(&mut self, inputs: Vec<ChangeBatch>) -> Result<ChangeBatch> {
        let fields = self.schema.fields();
        let visible = self.branches.first().map_or(0, |b| b.visible);
        let mut parts = Vec::with_capacity(inputs.len());
        for (index, (input, branch)) in inputs.iter().zip(&self.branches).enumerate() {
            let n = input.len();
            if n == 0 {
                continue;
            }
            let mut columns: Vec<ArrayRef> = (0..visible)
                .map(|c| cast(input.column(c), fields[c].data_type()))
                .collect::<Result<_, _>>()?;
            if self.keyed {
                let branch_index = i32::try_from(index).expect("fewer than 2^31 branches");
                columns.push(Arc::new(Int32Array::from(vec![branch_index; n])));
                let mut keys: Vec<ArrayRef> = fields[visible + 1..]
                    .iter()
                    .map(|f| new_null_array(f.data_type(), n))
                    .collect();
                for (k, &slot) in branch.key_slots.iter().enumerate() {
                    let target = fields[visible + 1 + slot].data_type();
                    keys[slot] = cast(input.column(branch.visible + k), target)?;
                }
                columns.extend(keys);
            }
            parts.push(input.with_columns(self.schema.clone(), columns)?);
        }
        concat_changes(&self.schema, parts)
    }
}
