//! Compact row bytes: how state keeps rows, group keys and values.
//!
//! State stores Arrow's row format (`arrow::row`) rather than `ScalarValue`s: one allocation per
//! row instead of one per value, bytes that hash and compare cheaply, and an order that matches
//! the values' SQL order, which is what MIN and MAX keep their multisets sorted by.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, new_null_array};
use arrow::compute::is_not_null;
use arrow::compute::kernels::zip::zip;
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use arrow::row::{RowConverter, Rows, SortField};
use datafusion_common::ScalarValue;

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
    /// Whether floats are encoded as the value SQL compares (see [`RowCodec::for_equality`]).
    canonical: bool,
}

impl RowCodec {
    /// A codec whose bytes keep every value as it is (stored rows).
    pub fn new(types: Vec<DataType>) -> Result<Self> {
        let fields = types.iter().cloned().map(SortField::new).collect();
        Ok(Self {
            converter: RowConverter::new(fields)?,
            types,
            canonical: false,
        })
    }

    /// A codec for values grouped or compared for equality (group keys, distinct and MIN/MAX
    /// multisets, consolidation): `-0.0` is encoded as `0.0` and every NaN as one NaN, since
    /// PostgreSQL and MySQL hold them equal, where Arrow's bytes would keep them apart.
    pub fn for_equality(types: Vec<DataType>) -> Result<Self> {
        Ok(Self {
            canonical: true,
            ..Self::new(types)?
        })
    }

    pub fn types(&self) -> &[DataType] {
        &self.types
    }

    /// Encodes every row of these columns (one array per type, equal lengths).
    pub fn encode(&self, columns: &[ArrayRef]) -> Result<Rows> {
        if !self.canonical {
            return Ok(self.converter.convert_columns(columns)?);
        }
        let columns: Vec<ArrayRef> = columns.iter().map(canonical_floats).collect();
        Ok(self.converter.convert_columns(&columns)?)
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
        self.converter
            .convert_rows(rows.iter().map(|bytes| parser.parse(bytes)))?
            .into_iter()
            .map(zero_null_slots)
            .collect()
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

/// A temporal column with its null slots holding 0. Arrow's row format decodes a null
/// integer as `i64::MIN` (its sign-flipped zero bytes), and DataFusion's date functions
/// compute on null slots too (`date_trunc` subtracts from them): near `i64::MIN` that
/// overflows, which debug builds abort on.
fn zero_null_slots(column: ArrayRef) -> Result<ArrayRef> {
    if column.null_count() == 0 || !crate::temporal::is_temporal(column.data_type()) {
        return Ok(column);
    }
    let valid = is_not_null(&column)?;
    let nulls = new_null_array(column.data_type(), column.len());
    Ok(zip(&valid, &column, &nulls)?)
}

/// A float column with `-0.0` as `0.0` and every NaN as the one canonical NaN; any other
/// column as it is.
fn canonical_floats(column: &ArrayRef) -> ArrayRef {
    match column.data_type() {
        DataType::Float64 => {
            let values = column.as_primitive::<Float64Type>();
            let odd = |v: &f64| {
                (*v == 0.0 || v.is_nan()) && v.to_bits() != 0 && v.to_bits() != f64::NAN.to_bits()
            };
            if !values.values().iter().any(odd) {
                return column.clone();
            }
            let fixed = values.unary::<_, Float64Type>(|v| {
                if v == 0.0 {
                    0.0
                } else if v.is_nan() {
                    f64::NAN
                } else {
                    v
                }
            });
            Arc::new(fixed)
        }
        DataType::Float32 => {
            let values = column.as_primitive::<Float32Type>();
            let odd = |v: &f32| {
                (*v == 0.0 || v.is_nan()) && v.to_bits() != 0 && v.to_bits() != f32::NAN.to_bits()
            };
            if !values.values().iter().any(odd) {
                return column.clone();
            }
            let fixed = values.unary::<_, Float32Type>(|v| {
                if v == 0.0 {
                    0.0
                } else if v.is_nan() {
                    f32::NAN
                } else {
                    v
                }
            });
            Arc::new(fixed)
        }
        _ => column.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Float64Array;

    #[test]
    fn equality_codec_holds_negative_zero_and_every_nan_equal() {
        let column: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(0.0),
            Some(-0.0),
            Some(f64::NAN),
            Some(-f64::NAN),
            None,
        ]));
        let codec = RowCodec::for_equality(vec![DataType::Float64]).unwrap();
        let rows = codec.encode(std::slice::from_ref(&column)).unwrap();
        assert_eq!(rows.row(0), rows.row(1));
        assert_eq!(rows.row(2), rows.row(3));
        assert_ne!(rows.row(0), rows.row(4));
        let stored = RowCodec::new(vec![DataType::Float64]).unwrap();
        let rows = stored.encode(&[column]).unwrap();
        assert_ne!(rows.row(0), rows.row(1));
    }
}
