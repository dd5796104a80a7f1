//! Projection: computes the select list on change rows, carrying the key columns along.
//!
//! Like a filter it is linear and stateless. Expressions are DataFusion physical expressions
//! planned against the visible input columns; the input's key columns (after them) are
//! appended unchanged so the consolidator can still tell which result row a change belongs to.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion_physical_expr::PhysicalExpr;

use super::{Operator, single};
use crate::change::ChangeBatch;
use crate::error::Result;

/// Evaluates expressions, then appends the input columns at `carried`.
#[derive(Debug)]
pub struct ProjectOp {
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    carried: Vec<usize>,
    schema: SchemaRef,
}

impl ProjectOp {
    pub fn new(exprs: Vec<Arc<dyn PhysicalExpr>>, carried: Vec<usize>, schema: SchemaRef) -> Self {
        Self {
            exprs,
            carried,
            schema,
        }
    }
}

impl Operator for ProjectOp {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn explain(&self) -> String {
        let columns: Vec<&str> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .filter(|n| !n.starts_with("__key."))
            .collect();
        if self.exprs.is_empty() {
            return format!("Project: ({}) as read; no state", columns.join(", "));
        }
        let exprs: Vec<String> = self.exprs.iter().map(ToString::to_string).collect();
        format!(
            "Project: ({}) = [{}]; no state",
            columns.join(", "),
            exprs.join(", ")
        )
    }

    fn step(&mut self, inputs: Vec<ChangeBatch>) -> Result<ChangeBatch> {
        let input = single(inputs);
        let rows = input.len();
        let mut columns = Vec::with_capacity(self.exprs.len() + self.carried.len());
        for expr in &self.exprs {
            columns.push(expr.evaluate(&input.data)?.into_array(rows)?);
        }
        for &i in &self.carried {
            columns.push(input.column(i).clone());
        }
        input.with_columns(self.schema.clone(), columns)
    }
}
