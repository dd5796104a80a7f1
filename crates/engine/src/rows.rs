//! Compact row bytes: how state keeps rows, group keys and values.
//!
//! State stores Arrow's row format (`arrow::row`) rather than `ScalarValue`s: one allocation per
//! row instead of one per value, bytes that hash and compare cheaply, and an order that matches
//! the values' SQL order, which is what MIN and MAX keep their multisets sorted by.

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::ScalarValue;

use crate::error::Result;

/// Row bytes as kept in state.
pub type RowBytes = Box<[u8]>;

/// Many rows' bytes in one buffer, as [`RowCodec::encode_rows`] made them.
#[derive(Debug)]
pub enum RowsBytes {
    Encoded(Rows),
    /// Rows of no columns: every row is empty bytes.
    Empty,
}

impl RowsBytes {
    pub fn row(&self, i: usize) -> &[u8] {
        match self {
            RowsBytes::Encoded(rows) => rows.row(i).data(),
            RowsBytes::Empty => &[],
        }
    }
}

/// Encodes rows of fixed column types into bytes and back.
#[derive(Debug)]
pub struct RowCodec {
    converter: RowConverter,
    types: Vec<DataType>,
}

impl RowCodec {
    pub fn new(types: Vec<DataType>) -> Result<Self> {
        let fields = types.iter().cloned().map(SortField::new).collect();
        Ok(Self {
            converter: RowConverter::new(fields)?,
            types,
        })
    }

    pub fn types(&self) -> &[DataType] {
        &self.types
    }

    /// Encodes every row of these columns (one array per type, equal lengths).
    pub fn encode(&self, columns: &[ArrayRef]) -> Result<Rows> {
        Ok(self.converter.convert_columns(columns)?)
    }

    /// Encodes `num_rows` rows of these columns into one buffer.
    pub fn encode_rows(&self, columns: &[ArrayRef], num_rows: usize) -> Result<RowsBytes> {
        if self.types.is_empty() {
            return Ok(RowsBytes::Empty);
        }
        debug_assert!(columns.iter().all(|c| c.len() == num_rows));
        Ok(RowsBytes::Encoded(self.encode(columns)?))
    }

    /// Decodes rows (bytes this codec produced) back into columns.
    pub fn decode<'a>(&self, rows: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<ArrayRef>> {
        if self.types.is_empty() {
            return Ok(Vec::new());
        }
        let parser = self.converter.parser();
        let rows: Vec<&[u8]> = rows.into_iter().collect();
        Ok(self
            .converter
            .convert_rows(rows.iter().map(|bytes| parser.parse(bytes)))?)
    }

    /// Encodes one row of scalars. A row of no columns is empty bytes: all such rows are equal.
    pub fn encode_scalars(&self, values: &[ScalarValue]) -> Result<RowBytes> {
        if values.is_empty() {
            return Ok(RowBytes::default());
        }
        let columns = values
            .iter()
            .map(|v| v.to_array())
            .collect::<Result<Vec<_>, _>>()?;
        let rows = self.encode(&columns)?;
        Ok(rows.row(0).as_ref().into())
    }

    /// Decodes one row into scalars.
    pub fn decode_scalars(&self, bytes: &[u8]) -> Result<Vec<ScalarValue>> {
        self.decode([bytes])?
            .iter()
            .map(|column| Ok(ScalarValue::try_from_array(column, 0)?))
            .collect()
    }
}
