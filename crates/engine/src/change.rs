//! The Arrow change batch: the unit of data every incremental operator consumes and produces.
//!
//! A change batch is a Z-set delta: each row carries an integer weight, +1 for a row that
//! enters a relation and -1 for one that leaves it. Operators are written against weights, not
//! against "inserts" and "deletes", so a batch may hold any mix of both, in any order, and
//! linear operators (filter, projection) need no state at all.

use arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch};
use arrow::compute::{filter, filter_record_batch};
use arrow::datatypes::SchemaRef;

use crate::error::Result;

/// Rows with their weights; `data.num_rows() == weights.len()`.
#[derive(Debug, Clone)]
pub struct ChangeBatch {
    pub data: RecordBatch,
    pub weights: Int64Array,
}

impl ChangeBatch {
    pub fn new(data: RecordBatch, weights: Int64Array) -> Self {
        debug_assert_eq!(data.num_rows(), weights.len());
        Self { data, weights }
    }

    pub fn empty(schema: SchemaRef) -> Self {
        Self::new(
            RecordBatch::new_empty(schema),
            Int64Array::from(Vec::<i64>::new()),
        )
    }

    /// A batch from columns and weights, checked against the schema.
    pub fn try_from_columns(
        schema: SchemaRef,
        columns: Vec<ArrayRef>,
        weights: Vec<i64>,
    ) -> Result<Self> {
        let data = RecordBatch::try_new_with_options(
            schema,
            columns,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(weights.len())),
        )?;
        Ok(Self::new(data, Int64Array::from(weights)))
    }

    pub fn len(&self) -> usize {
        self.weights.len()
    }

    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    pub fn schema(&self) -> SchemaRef {
        self.data.schema()
    }

    /// Keeps the rows whose mask is true (null counts as false, as in SQL `WHERE`).
    pub fn filter(&self, mask: &BooleanArray) -> Result<Self> {
        let data = filter_record_batch(&self.data, mask)?;
        let weights = filter(&self.weights, mask)?;
        let weights = weights
            .as_any()
            .downcast_ref::<Int64Array>()
            .cloned()
            .unwrap_or_else(|| Int64Array::from(Vec::<i64>::new()));
        Ok(Self::new(data, weights))
    }

    /// The same rows and weights under other columns.
    pub fn with_columns(&self, schema: SchemaRef, columns: Vec<ArrayRef>) -> Result<Self> {
        let data = RecordBatch::try_new_with_options(
            schema,
            columns,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(self.len())),
        )?;
        Ok(Self::new(data, self.weights.clone()))
    }

    pub fn column(&self, i: usize) -> &ArrayRef {
        self.data.column(i)
    }
}
