//! Filter: keeps the change rows its predicate holds for (`WHERE`, `HAVING`).
//!
//! A filter is linear, so filtering a change is the change of the filtered relation: a
//! retracted row is dropped exactly when its insertion was.

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::SchemaRef;
use datafusion_physical_expr::PhysicalExpr;

use super::{Operator, single};
use crate::change::ChangeBatch;
use crate::error::{Error, Result};

#[derive(Debug)]
pub struct FilterOp {
    predicate: Arc<dyn PhysicalExpr>,
    schema: SchemaRef,
}

impl FilterOp {
    pub fn new(predicate: Arc<dyn PhysicalExpr>, schema: SchemaRef) -> Self {
        Self { predicate, schema }
    }
}

impl Operator for FilterOp {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn explain(&self) -> String {
        format!("Filter: {}; no state", self.predicate)
    }

    fn step(&mut self, inputs: Vec<ChangeBatch>) -> Result<ChangeBatch> {
        let input = single(inputs);
        if input.is_empty() {
            return Ok(input);
        }
        let mask = self
            .predicate
            .evaluate(&input.data)?
            .into_array(input.len())?;
        let mask = mask
            .as_boolean_opt()
            .ok_or_else(|| Error::Query("filter predicate is not boolean".into()))?;
        input.filter(mask)
    }
}
