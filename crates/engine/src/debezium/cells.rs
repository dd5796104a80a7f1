//! Row images decoded straight into Arrow columns.
//!
//! A record is decoded into [`Cell`]s first, so one that fails half-way leaves the columns
//! untouched; a decoded image is then appended to [`ImageColumns`], one builder per column
//! the job reads. The common encodings (integers, plain strings, decimals) are read from the
//! raw JSON text directly; anything else goes through [`super::value`], the general decoder,
//! which has the last word on every value the fast path does not take.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Decimal128Array, Int64Array, NullBufferBuilder, StringBuilder, new_empty_array,
};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use datafusion_common::ScalarValue;

use super::inline_schema::FieldHint;
use super::value::{self, DecodeOptions, Decoded, UNAVAILABLE};
use crate::error::Result;
use crate::schema::MYSQL_UNSIGNED_BIGINT;

/// An image's cells: on the stack for tables of up to eight columns read, as most are.
pub type Cells<'a> = smallvec::SmallVec<[Cell<'a>; 8]>;

/// One decoded value, borrowing text from the message.
#[derive(Debug)]
pub enum Cell<'a> {
    Null,
    Unavailable,
    Int(i64),
    Text(&'a str),
    OwnedText(String),
    Decimal(i128),
    Scalar(ScalarValue),
}

/// Decodes one raw JSON value (`raw`, as the message holds it) of a column.
pub fn decode<'a>(
    raw: &'a [u8],
    data_type: &DataType,
    hint: Option<&FieldHint>,
    options: &DecodeOptions,
) -> std::result::Result<Cell<'a>, String> {
    if raw == b"null" {
        return Ok(Cell::Null);
    }
    if let Some(cell) = fast(raw, data_type, hint, options) {
        return Ok(cell);
    }
    let json: serde_json::Value = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
    Ok(match value::decode(&json, data_type, hint, options)? {
        Decoded::Unavailable => Cell::Unavailable,
        Decoded::Value(v) if v.is_null() => Cell::Null,
        Decoded::Value(ScalarValue::Utf8(Some(s))) => Cell::OwnedText(s),
        Decoded::Value(ScalarValue::Decimal128(Some(v), ..)) => Cell::Decimal(v),
        Decoded::Value(v) => match int_of(&v) {
            Some(i) if kind(data_type) == Kind::Int => Cell::Int(i),
            _ => Cell::Scalar(v),
        },
    })
}

/// The value's cell when its text is in a common encoding; `None` sends it to the general
/// decoder (which also produces every error).
fn fast<'a>(
    raw: &'a [u8],
    data_type: &DataType,
    hint: Option<&FieldHint>,
    options: &DecodeOptions,
) -> Option<Cell<'a>> {
    match kind(data_type) {
        Kind::Int => {
            let v = parse_i64(raw)?;
            in_range(v, data_type).then_some(Cell::Int(v))
        }
        Kind::Text => {
            let text = plain_string(raw)?;
            if text == UNAVAILABLE {
                return Some(Cell::Unavailable);
            }
            Some(Cell::Text(text))
        }
        Kind::Decimal(precision, scale) => {
            let unscaled = match plain_string(raw) {
                Some(text) => decimal_string(text, scale, hint, options)?,
                // A negative integer here is a BIGINT UNSIGNED above 2^63 - 1 sent as its bits:
                // the general decoder reads them as unsigned.
                None if raw.starts_with(b"-") && *data_type == MYSQL_UNSIGNED_BIGINT => {
                    return None;
                }
                None => plain_decimal(std::str::from_utf8(raw).ok()?, scale)?,
            };
            (unscaled.unsigned_abs() < 10u128.checked_pow(precision as u32)?)
                .then_some(Cell::Decimal(unscaled))
        }
        Kind::Other => None,
    }
}

/// A decimal sent as a string, in the encodings whose reading is unambiguous: base64
/// unscaled bytes at the column's scale, or plain decimal text.
fn decimal_string(
    text: &str,
    scale: i8,
    hint: Option<&FieldHint>,
    options: &DecodeOptions,
) -> Option<i128> {
    // In `Auto`, text that might be a decimal, exponents and all, is for the general
    // decoder to judge; anything else is base64.
    let as_bytes = value::decimal_sent_as_bytes(hint, options).unwrap_or_else(|| {
        !text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    });
    if !as_bytes {
        return plain_decimal(text, scale);
    }
    if hint
        .and_then(|h| h.scale)
        .is_some_and(|s| s != scale as i32)
    {
        return None;
    }
    let mut bytes = [0u8; 16];
    let len = BASE64.decode_slice(text, &mut bytes).ok()?;
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut wide = [fill; 16];
    wide[16 - len..].copy_from_slice(&bytes[..len]);
    (len > 0).then(|| i128::from_be_bytes(wide))
}

/// Decimal text of at most 30 digits with no more fraction digits than `scale`
/// (`-12.5`, `7`) as an unscaled value.
fn plain_decimal(text: &str, scale: i8) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    let pad = (scale as usize).checked_sub(frac_part.len())?;
    if int_part.is_empty() || int_part.len() + frac_part.len() > 30 {
        return None;
    }
    let mut v: i128 = 0;
    for d in int_part.bytes().chain(frac_part.bytes()) {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (d - b'0') as i128;
    }
    v *= 10i128.checked_pow(pad as u32)?;
    Some(if negative { -v } else { v })
}

/// A string without escapes, as text.
fn plain_string(raw: &[u8]) -> Option<&str> {
    let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if inner.contains(&b'\\') {
        return None;
    }
    std::str::from_utf8(inner).ok()
}

/// A JSON integer of at most 18 digits (so it cannot overflow).
fn parse_i64(raw: &[u8]) -> Option<i64> {
    let (negative, digits) = match raw.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, raw),
    };
    if digits.is_empty() || digits.len() > 18 || (digits[0] == b'0' && digits.len() > 1) {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (d - b'0') as i64;
    }
    Some(if negative { -v } else { v })
}

fn in_range(v: i64, data_type: &DataType) -> bool {
    match data_type {
        DataType::Int8 => i8::try_from(v).is_ok(),
        DataType::Int16 => i16::try_from(v).is_ok(),
        DataType::Int32 => i32::try_from(v).is_ok(),
        DataType::UInt8 => u8::try_from(v).is_ok(),
        DataType::UInt16 => u16::try_from(v).is_ok(),
        DataType::UInt32 => u32::try_from(v).is_ok(),
        _ => true,
    }
}

fn int_of(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Int8(Some(v)) => Some(*v as i64),
        ScalarValue::Int16(Some(v)) => Some(*v as i64),
        ScalarValue::Int32(Some(v)) => Some(*v as i64),
        ScalarValue::Int64(Some(v)) => Some(*v),
        ScalarValue::UInt8(Some(v)) => Some(*v as i64),
        ScalarValue::UInt16(Some(v)) => Some(*v as i64),
        ScalarValue::UInt32(Some(v)) => Some(*v as i64),
        _ => None,
    }
}

/// How a column is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Integers that fit `i64`, built as `Int64` and cast to the column's type.
    Int,
    Text,
    Decimal(u8, i8),
    /// Everything else, built from scalars.
    Other,
}

fn kind(data_type: &DataType) -> Kind {
    match data_type {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => Kind::Int,
        DataType::Utf8 => Kind::Text,
        DataType::Decimal128(p, s) => Kind::Decimal(*p, *s),
        _ => Kind::Other,
    }
}

#[derive(Debug)]
enum Builder {
    Int(Vec<i64>, NullBufferBuilder),
    Text(StringBuilder),
    Decimal(Vec<i128>, NullBufferBuilder),
    Other(Vec<ScalarValue>),
}

/// One column of images being built.
#[derive(Debug)]
struct Column {
    data_type: DataType,
    builder: Builder,
}

impl Column {
    fn new(data_type: DataType) -> Self {
        let builder = match kind(&data_type) {
            Kind::Int => Builder::Int(Vec::new(), NullBufferBuilder::new(0)),
            Kind::Text => Builder::Text(StringBuilder::new()),
            Kind::Decimal(..) => Builder::Decimal(Vec::new(), NullBufferBuilder::new(0)),
            Kind::Other => Builder::Other(Vec::new()),
        };
        Self { data_type, builder }
    }

    /// Appends a cell [`decode`] produced for this column (unavailable cells as nulls).
    fn push(&mut self, cell: Cell<'_>) -> Result<()> {
        match (&mut self.builder, cell) {
            (Builder::Int(values, nulls), Cell::Int(v)) => {
                values.push(v);
                nulls.append_non_null();
            }
            (Builder::Int(values, nulls), _) => {
                values.push(0);
                nulls.append_null();
            }
            (Builder::Text(b), Cell::Text(s)) => b.append_value(s),
            (Builder::Text(b), Cell::OwnedText(s)) => b.append_value(s),
            (Builder::Text(b), _) => b.append_null(),
            (Builder::Decimal(values, nulls), Cell::Decimal(v)) => {
                values.push(v);
                nulls.append_non_null();
            }
            (Builder::Decimal(values, nulls), _) => {
                values.push(0);
                nulls.append_null();
            }
            (Builder::Other(values), Cell::Scalar(v)) => values.push(v),
            (Builder::Other(values), _) => values.push(ScalarValue::try_from(&self.data_type)?),
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<ArrayRef> {
        Ok(match &mut self.builder {
            Builder::Int(values, nulls) => {
                let array = Int64Array::new(std::mem::take(values).into(), nulls.finish());
                cast(&array, &self.data_type)?
            }
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::Decimal(values, nulls) => {
                let array = Decimal128Array::new(std::mem::take(values).into(), nulls.finish());
                Arc::new(array.with_data_type(self.data_type.clone()))
            }
            Builder::Other(values) if values.is_empty() => new_empty_array(&self.data_type),
            Builder::Other(values) => ScalarValue::iter_to_array(std::mem::take(values))?,
        })
    }
}

/// A batch's images, column by column; an [`super::Image`] is a row of them.
#[derive(Debug)]
pub struct Images {
    pub columns: Vec<ArrayRef>,
    /// Images in the batch (the columns' length, also when there are no columns).
    pub rows: usize,
}

/// The images of a batch of events being built.
#[derive(Debug)]
pub struct ImageColumns {
    columns: Vec<Column>,
    rows: usize,
}

impl ImageColumns {
    pub fn new(types: impl IntoIterator<Item = DataType>) -> Self {
        Self {
            columns: types.into_iter().map(Column::new).collect(),
            rows: 0,
        }
    }

    /// Appends one image (a cell per column) and returns its row; the positions of
    /// unavailable cells are pushed to `unavailable`.
    pub fn push<'a>(
        &mut self,
        cells: impl IntoIterator<Item = Cell<'a>>,
        unavailable: &mut Vec<usize>,
    ) -> Result<usize> {
        for (pos, (column, cell)) in self.columns.iter_mut().zip(cells).enumerate() {
            if matches!(cell, Cell::Unavailable) {
                unavailable.push(pos);
            }
            column.push(cell)?;
        }
        self.rows += 1;
        Ok(self.rows - 1)
    }

    /// The images pushed since the last call, which start again empty.
    pub fn finish(&mut self) -> Result<Images> {
        let columns = self
            .columns
            .iter_mut()
            .map(Column::finish)
            .collect::<Result<_>>()?;
        Ok(Images {
            columns,
            rows: std::mem::take(&mut self.rows),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;

    fn cell(raw: &str, data_type: DataType) -> std::result::Result<String, String> {
        decode(raw.as_bytes(), &data_type, None, &DecodeOptions::default())
            .map(|c| format!("{c:?}"))
    }

    #[test]
    fn fast_and_general_paths_agree() {
        assert_eq!(cell("42", DataType::Int32).unwrap(), "Int(42)");
        assert_eq!(cell("-7", DataType::Int64).unwrap(), "Int(-7)");
        assert_eq!(cell(r#""DE""#, DataType::Utf8).unwrap(), r#"Text("DE")"#);
        assert_eq!(
            cell(r#""a\"b""#, DataType::Utf8).unwrap(),
            r#"OwnedText("a\"b")"#
        );
        assert_eq!(
            cell(r#""B88=""#, DataType::Decimal128(12, 2)).unwrap(),
            "Decimal(1999)"
        );
        assert_eq!(
            cell(r#""19.99""#, DataType::Decimal128(12, 2)).unwrap(),
            "Decimal(1999)"
        );
        assert_eq!(
            cell("19.99", DataType::Decimal128(12, 2)).unwrap(),
            "Decimal(1999)"
        );
        assert_eq!(
            cell(r#"{"scale":3,"value":"ThY="}"#, DataType::Decimal128(12, 2)).unwrap(),
            "Decimal(1999)"
        );
        assert_eq!(cell("null", DataType::Int32).unwrap(), "Null");
        assert_eq!(
            cell(&format!("\"{UNAVAILABLE}\""), DataType::Utf8).unwrap(),
            "Unavailable"
        );
    }

    #[test]
    fn fast_path_takes_both_decimal_encodings() {
        let auto = DecodeOptions::default();
        let t = DataType::Decimal128(12, 2);
        assert_eq!(
            fast(br#""B88=""#, &t, None, &auto).map(|c| format!("{c:?}")),
            Some("Decimal(1999)".into())
        );
        assert_eq!(
            fast(br#""19.99""#, &t, None, &auto).map(|c| format!("{c:?}")),
            Some("Decimal(1999)".into())
        );
        assert!(
            fast(br#""1e3""#, &t, None, &auto).is_none(),
            "exponents go the general way"
        );
    }

    #[test]
    fn unsigned_bigint_above_i64_reads_its_bits_as_unsigned() {
        let t = crate::schema::MYSQL_UNSIGNED_BIGINT;
        assert_eq!(cell("42", t.clone()).unwrap(), "Decimal(42)");
        assert!(fast(b"-1", &t, None, &DecodeOptions::default()).is_none());
        assert_eq!(cell("-1", t).unwrap(), "Decimal(18446744073709551615)");
    }

    #[test]
    fn bad_values_get_the_general_decoders_errors() {
        assert_eq!(
            cell("70000", DataType::Int16).unwrap_err(),
            "integer 70000 is out of the column's range"
        );
        assert_eq!(
            cell(r#""x""#, DataType::Int32).unwrap_err(),
            "expected an integer, found a string"
        );
        assert!(
            cell(r#""123.45""#, DataType::Decimal128(4, 2))
                .unwrap_err()
                .contains("does not fit decimal(4,2)")
        );
        assert!(cell("12x", DataType::Int32).is_err());
    }

    #[test]
    fn columns_hold_the_pushed_images() {
        let mut columns = ImageColumns::new([DataType::Int32, DataType::Utf8]);
        let mut unavailable = Vec::new();
        let row = columns
            .push(vec![Cell::Int(1), Cell::Text("a")], &mut unavailable)
            .unwrap();
        assert_eq!(row, 0);
        let row = columns
            .push(vec![Cell::Null, Cell::Unavailable], &mut unavailable)
            .unwrap();
        assert_eq!((row, unavailable.as_slice()), (1, [1].as_slice()));
        let arrays = columns.finish().unwrap().columns;
        assert_eq!(arrays[0].data_type(), &DataType::Int32);
        assert_eq!((arrays[0].len(), arrays[0].null_count()), (2, 1));
        assert_eq!(arrays[1].null_count(), 1);
        assert_eq!(columns.finish().unwrap().rows, 0);
    }
}
