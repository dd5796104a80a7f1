//! Retractable accumulators: per-group aggregate state that accepts negative weights.
//!
//! DataFusion's accumulators are built for batch (and sliding windows, whose MIN/MAX assume
//! values leave in arrival order), so none of them may see a retraction here. Each state
//! below is exact under any interleaving of inserts and deletes:
//! - COUNT and SUM keep a count of non-null inputs and an exact sum (integers and decimals in
//!   128/256-bit integers; floats in `f64`, the one place rounding can drift);
//! - MIN and MAX keep an ordered multiset of values: integers and decimals as `i128`s,
//!   anything else as row bytes (which sort like the values);
//! - DISTINCT keeps a multiset of values ([`Multiset`]: integers and `Decimal128`s as
//!   `i128`s, anything else as row bytes) and feeds the inner state only when a value's
//!   multiplicity moves between zero and non-zero. MIN and MAX need no DISTINCT state: the
//!   extremes of the distinct values are the extremes of all of them.

use std::collections::BTreeMap;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Decimal128Type, Decimal256Type, Float64Type, Int64Type, UInt64Type, i256,
};
use arrow::row::Rows;
use datafusion_common::ScalarValue;
use serde::{Deserialize, Serialize};

use super::multiset::Multiset;
use crate::error::{Error, Result};
use crate::rows::{RowBytes, RowCodec};

/// What an aggregate computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

/// How SUM/AVG accumulate: chosen from the argument type at plan time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SumKind {
    /// Signed integers, unsigned integers and `Decimal128`, exact in `i128`.
    Int,
    /// `Decimal256`, exact in `i256`.
    Wide,
    Float,
}

/// One input value, prepared per batch for the accumulator kind that reads it.
pub enum Prepared {
    /// Whether each row's argument is non-null (COUNT).
    Presence(ArrayRef),
    /// The argument cast to the sum's accumulation type.
    Numbers(ArrayRef, SumKind),
    /// Row bytes of the argument (MIN/MAX/DISTINCT), and the argument for its nulls.
    Encoded(Rows, ArrayRef),
}

impl SumKind {
    /// The accumulation type for an argument type, or `None` when SUM/AVG cannot take it.
    pub fn for_type(data_type: &DataType) -> Option<(SumKind, DataType)> {
        match data_type {
            t if t.is_signed_integer() => Some((SumKind::Int, DataType::Int64)),
            t if t.is_unsigned_integer() => Some((SumKind::Int, DataType::UInt64)),
            DataType::Float16 | DataType::Float32 | DataType::Float64 => {
                Some((SumKind::Float, DataType::Float64))
            }
            DataType::Decimal128(..) => Some((SumKind::Int, data_type.clone())),
            DataType::Decimal256(..) => Some((SumKind::Wide, data_type.clone())),
            _ => None,
        }
    }

    pub fn prepare(self, arg: &ArrayRef, accumulation: &DataType) -> Result<Prepared> {
        Ok(Prepared::Numbers(cast(arg, accumulation)?, self))
    }
}

/// Row `row` of an `Int64`, `UInt64` or `Decimal128` array (unscaled) as an `i128`.
fn int_at(numbers: &ArrayRef, row: usize) -> i128 {
    match numbers.data_type() {
        DataType::Int64 => numbers.as_primitive::<Int64Type>().value(row) as i128,
        DataType::UInt64 => numbers.as_primitive::<UInt64Type>().value(row) as i128,
        _ => numbers.as_primitive::<Decimal128Type>().value(row),
    }
}

/// An exact sum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum SumValue {
    Int(i128),
    /// An `i256` as (low, high) parts.
    Wide(u128, i128),
    Float(f64),
}

impl SumValue {
    pub fn zero(kind: SumKind) -> Self {
        match kind {
            SumKind::Int => SumValue::Int(0),
            SumKind::Wide => SumValue::Wide(0, 0),
            SumKind::Float => SumValue::Float(0.0),
        }
    }

    fn wide(self) -> i256 {
        match self {
            SumValue::Wide(low, high) => i256::from_parts(low, high),
            SumValue::Int(v) => i256::from_i128(v),
            SumValue::Float(_) => i256::ZERO,
        }
    }

    /// Adds `weight` times row `row` of `numbers` (already non-null). A 128-bit sum that
    /// would overflow continues in 256 bits; one past 256 bits is an error.
    fn add(&mut self, numbers: &ArrayRef, row: usize, weight: i64) -> Result<(), String> {
        match self {
            SumValue::Int(_) => self.add_int(int_at(numbers, row), weight)?,
            SumValue::Wide(..) => {
                let v = match numbers.data_type() {
                    DataType::Decimal256(..) => numbers.as_primitive::<Decimal256Type>().value(row),
                    _ => i256::from_i128(int_at(numbers, row)),
                };
                let total = v
                    .checked_mul(i256::from_i128(weight as i128))
                    .and_then(|t| self.wide().checked_add(t))
                    .ok_or("sum exceeds 256 bits")?;
                self.set_wide(total);
            }
            SumValue::Float(sum) => {
                *sum += numbers.as_primitive::<Float64Type>().value(row) * weight as f64;
            }
        }
        Ok(())
    }

    /// Adds `weight` times the integer or unscaled decimal `v` to an `Int` or `Wide` sum.
    fn add_int(&mut self, v: i128, weight: i64) -> Result<(), String> {
        if let SumValue::Int(sum) = self
            && let Some(total) = v
                .checked_mul(weight as i128)
                .and_then(|t| sum.checked_add(t))
        {
            *sum = total;
            return Ok(());
        }
        let total = i256::from_i128(v)
            .checked_mul(i256::from_i128(weight as i128))
            .and_then(|t| self.wide().checked_add(t))
            .ok_or("sum exceeds 256 bits")?;
        self.set_wide(total);
        Ok(())
    }

    fn set_wide(&mut self, value: i256) {
        let (low, high) = value.to_parts();
        *self = SumValue::Wide(low, high);
    }
}

/// Per-group state of one aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Accumulator {
    /// Weighted count of non-null inputs.
    Count(i64),
    Sum {
        sum: SumValue,
        count: i64,
    },
    /// Value bytes → multiplicity, sorted like the values.
    Ordered(BTreeMap<RowBytes, i64>),
    /// Integer or unscaled decimal values → multiplicity (MIN and MAX of those types).
    OrderedInts(BTreeMap<i128, i64>),
    /// Distinct values as row bytes → multiplicity, and the state of the distinct values.
    Distinct {
        values: Multiset<RowBytes>,
        inner: Box<Accumulator>,
    },
    /// Distinct integers or unscaled decimals → multiplicity, and the state of those.
    DistinctInts {
        values: Multiset<i128>,
        inner: Box<Accumulator>,
    },
}

/// The parts of an aggregate that do not change per group.
#[derive(Debug)]
pub struct Spec {
    pub function: Function,
    pub distinct: bool,
    pub sum_kind: Option<SumKind>,
    /// Output type as DataFusion planned it.
    pub output: DataType,
    /// Codec of the argument's values (MIN and MAX but of integers and decimals; DISTINCT
    /// but of those and of MIN and MAX).
    pub values: Option<RowCodec>,
    /// Whether DISTINCT keeps its values as `i128`s: COUNT, SUM and AVG of integers and
    /// `Decimal128`s.
    pub int_values: bool,
    /// Scale of a decimal argument (AVG's rescaling).
    pub input_scale: i8,
    /// The aggregate as the result column names it, for errors.
    pub label: String,
}

impl Spec {
    /// Whether this aggregate keeps the state `other` keeps, given the same argument: COUNT
    /// a count, SUM and AVG a sum and count, MIN and MAX one ordered multiset, each under
    /// DISTINCT or not.
    pub fn keeps_state_of(&self, other: &Spec) -> bool {
        let kind = |f: Function| match f {
            Function::Count => 0,
            Function::Sum | Function::Avg => 1,
            Function::Min | Function::Max => 2,
        };
        kind(self.function) == kind(other.function)
            && self.distinct == other.distinct
            && self.sum_kind == other.sum_kind
    }

    pub fn new_state(&self) -> Accumulator {
        let base = match (self.function, self.sum_kind) {
            (Function::Count, _) => Accumulator::Count(0),
            (Function::Min | Function::Max, Some(SumKind::Int)) => {
                Accumulator::OrderedInts(BTreeMap::new())
            }
            (Function::Min | Function::Max, _) => Accumulator::Ordered(BTreeMap::new()),
            (Function::Sum | Function::Avg, kind) => Accumulator::Sum {
                sum: SumValue::zero(kind.unwrap_or(SumKind::Float)),
                count: 0,
            },
        };
        match base {
            Accumulator::Ordered(_) | Accumulator::OrderedInts(_) => base,
            _ if self.distinct && self.int_values => Accumulator::DistinctInts {
                values: Multiset::default(),
                inner: Box::new(base),
            },
            _ if self.distinct => Accumulator::Distinct {
                values: Multiset::default(),
                inner: Box::new(base),
            },
            _ => base,
        }
    }

    /// Prepares a batch's argument column for [`Accumulator::update`].
    pub fn prepare(&self, arg: &ArrayRef) -> Result<Prepared> {
        if let Some(codec) = &self.values {
            let rows = codec.encode(std::slice::from_ref(arg))?;
            return Ok(Prepared::Encoded(rows, arg.clone()));
        }
        match (self.sum_kind, self.int_values) {
            (Some(kind), _) => kind.prepare(arg, &self.accumulation(arg)?),
            (None, true) => SumKind::Int.prepare(arg, &self.accumulation(arg)?),
            (None, false) => Ok(Prepared::Presence(arg.clone())),
        }
    }

    /// The type an argument is summed or kept as an integer in.
    fn accumulation(&self, arg: &ArrayRef) -> Result<DataType> {
        SumKind::for_type(arg.data_type())
            .map(|(_, accumulation)| accumulation)
            .ok_or_else(|| Error::Query(format!("cannot sum {}", arg.data_type())))
    }
}

impl Accumulator {
    /// Adds `weight` copies of row `row` of the prepared argument.
    pub fn update(&mut self, spec: &Spec, arg: &Prepared, row: usize, weight: i64) -> Result<()> {
        match (self, arg) {
            (Accumulator::Count(n), Prepared::Presence(values)) => {
                if values.is_valid(row) {
                    *n = spec.count_add(*n, weight)?;
                }
            }
            (Accumulator::Sum { sum, count }, Prepared::Numbers(values, _)) => {
                if values.is_valid(row) {
                    sum.add(values, row, weight)
                        .map_err(|e| spec.out_of_range(e))?;
                    *count = spec.count_add(*count, weight)?;
                }
            }
            (Accumulator::Ordered(values), Prepared::Encoded(encoded, arg)) => {
                if arg.is_valid(row) {
                    add_multiplicity(values, encoded.row(row).data(), weight, |v| v.into());
                }
            }
            (Accumulator::OrderedInts(values), Prepared::Numbers(numbers, _)) => {
                if numbers.is_valid(row) {
                    add_multiplicity(values, &int_at(numbers, row), weight, |v| *v);
                }
            }
            (Accumulator::Distinct { values, inner }, Prepared::Encoded(encoded, arg)) => {
                if arg.is_null(row) {
                    return Ok(());
                }
                let value = encoded.row(row).data();
                if let Some(weight) = moved(values.add(value, weight, |v| v.into())) {
                    inner.update_distinct(spec, value, weight)?;
                }
            }
            (Accumulator::DistinctInts { values, inner }, Prepared::Numbers(numbers, _)) => {
                if numbers.is_null(row) {
                    return Ok(());
                }
                let value = int_at(numbers, row);
                if let Some(weight) = moved(values.add(&value, weight, |v| *v)) {
                    inner.update_distinct_int(spec, value, weight)?;
                }
            }
            _ => {
                return Err(Error::Query(
                    "aggregate state does not match its input".into(),
                ));
            }
        }
        Ok(())
    }

    /// Feeds one distinct value (as row bytes) to the state under a DISTINCT.
    fn update_distinct(&mut self, spec: &Spec, value: &[u8], weight: i64) -> Result<()> {
        match self {
            Accumulator::Count(n) => *n = spec.count_add(*n, weight)?,
            Accumulator::Sum { sum, count } => {
                let codec = spec.values.as_ref().ok_or_else(|| {
                    Error::Query("DISTINCT aggregate without a value codec".into())
                })?;
                let decoded = codec.decode([value])?;
                let (_, accumulation) = SumKind::for_type(decoded[0].data_type())
                    .ok_or_else(|| Error::Query("cannot sum this type".into()))?;
                let numbers = cast(&decoded[0], &accumulation)?;
                sum.add(&numbers, 0, weight)
                    .map_err(|e| spec.out_of_range(e))?;
                *count = spec.count_add(*count, weight)?;
            }
            Accumulator::Ordered(values) => add_multiplicity(values, value, weight, |v| v.into()),
            Accumulator::OrderedInts(_)
            | Accumulator::Distinct { .. }
            | Accumulator::DistinctInts { .. } => {}
        }
        Ok(())
    }

    /// Feeds one distinct integer or unscaled decimal to the state under a DISTINCT.
    fn update_distinct_int(&mut self, spec: &Spec, value: i128, weight: i64) -> Result<()> {
        match self {
            Accumulator::Count(n) => *n = spec.count_add(*n, weight)?,
            Accumulator::Sum { sum, count } => {
                sum.add_int(value, weight)
                    .map_err(|e| spec.out_of_range(e))?;
                *count = spec.count_add(*count, weight)?;
            }
            // MIN and MAX keep no DISTINCT state: see the module's docs.
            Accumulator::OrderedInts(_)
            | Accumulator::Ordered(_)
            | Accumulator::Distinct { .. }
            | Accumulator::DistinctInts { .. } => {}
        }
        Ok(())
    }

    /// The aggregate's current value, in the output type.
    pub fn evaluate(&self, spec: &Spec) -> Result<ScalarValue> {
        match self {
            Accumulator::Distinct { inner, .. } | Accumulator::DistinctInts { inner, .. } => {
                inner.evaluate(spec)
            }
            Accumulator::Count(n) => Ok(ScalarValue::Int64(Some(*n))),
            Accumulator::Sum { count: 0, .. } => Ok(ScalarValue::try_from(&spec.output)?),
            Accumulator::Sum { sum, count } => match spec.function {
                Function::Avg => average(spec, *sum, *count),
                _ => sum_value(spec, *sum),
            },
            Accumulator::OrderedInts(values) => {
                let extreme = match spec.function {
                    Function::Min => values.iter().find(|(_, n)| **n > 0),
                    _ => values.iter().rev().find(|(_, n)| **n > 0),
                };
                let Some((&v, _)) = extreme else {
                    return Ok(ScalarValue::try_from(&spec.output)?);
                };
                let value = match &spec.output {
                    DataType::Decimal128(p, s) => ScalarValue::Decimal128(Some(v), *p, *s),
                    t if t.is_unsigned_integer() => ScalarValue::UInt64(Some(v as u64)),
                    _ => ScalarValue::Int64(Some(v as i64)),
                };
                Ok(value.cast_to(&spec.output)?)
            }
            Accumulator::Ordered(values) => {
                let extreme = match spec.function {
                    Function::Min => values.iter().find(|(_, n)| **n > 0),
                    _ => values.iter().rev().find(|(_, n)| **n > 0),
                };
                match (extreme, &spec.values) {
                    (Some((bytes, _)), Some(codec)) => {
                        let value = codec.decode_scalars(bytes)?.remove(0);
                        Ok(value.cast_to(&spec.output)?)
                    }
                    _ => Ok(ScalarValue::try_from(&spec.output)?),
                }
            }
        }
    }
}

/// The weight to feed the state under a DISTINCT when a value's multiplicity moved from
/// `before` to `after`: `1` as it becomes positive, `-1` as it stops being, else none.
fn moved((before, after): (i64, i64)) -> Option<i64> {
    match (before > 0, after > 0) {
        (false, true) => Some(1),
        (true, false) => Some(-1),
        _ => None,
    }
}

/// Adds `weight` to a value's multiplicity; `own` makes the key when the value is new.
fn add_multiplicity<K, Q>(
    values: &mut BTreeMap<K, i64>,
    value: &Q,
    weight: i64,
    own: impl FnOnce(&Q) -> K,
) where
    K: Ord + std::borrow::Borrow<Q>,
    Q: Ord + ?Sized,
{
    match values.get_mut(value) {
        Some(n) => {
            *n += weight;
            if *n == 0 {
                values.remove(value);
            }
        }
        None => {
            values.insert(own(value), weight);
        }
    }
}

/// The sum in the output type; a sum the type cannot hold is an error, never wrapped.
fn sum_value(spec: &Spec, sum: SumValue) -> Result<ScalarValue> {
    if let SumValue::Float(v) = sum {
        return match spec.output {
            DataType::Float64 => Ok(ScalarValue::Float64(Some(v))),
            ref other => Err(Error::Query(format!("SUM cannot produce {other}"))),
        };
    }
    let wide = sum.wide();
    let too_big = || spec.out_of_range(format!("sum {wide} does not fit {}", spec.output));
    Ok(match &spec.output {
        DataType::Int64 => ScalarValue::Int64(Some(
            wide.to_i128()
                .and_then(|v| i64::try_from(v).ok())
                .ok_or_else(too_big)?,
        )),
        DataType::UInt64 => ScalarValue::UInt64(Some(
            wide.to_i128()
                .and_then(|v| u64::try_from(v).ok())
                .ok_or_else(too_big)?,
        )),
        DataType::Decimal128(p, s) => {
            let v = wide
                .to_i128()
                .filter(|_| crate::decimal::fits_precision(wide, *p))
                .ok_or_else(too_big)?;
            ScalarValue::Decimal128(Some(v), *p, *s)
        }
        DataType::Decimal256(p, s) if crate::decimal::fits_precision(wide, *p) => {
            ScalarValue::Decimal256(Some(wide), *p, *s)
        }
        DataType::Decimal256(..) => return Err(too_big()),
        other => return Err(Error::Query(format!("SUM cannot produce {other}"))),
    })
}

impl Spec {
    fn out_of_range(&self, message: impl Into<String>) -> Error {
        Error::OutOfRange {
            aggregate: self.label.clone(),
            message: message.into(),
        }
    }

    /// A row count plus a weight; 2^63 rows is an error, never a wrapped count.
    fn count_add(&self, count: i64, weight: i64) -> Result<i64> {
        count
            .checked_add(weight)
            .ok_or_else(|| self.out_of_range("count exceeds 64 bits"))
    }
}

/// AVG as DataFusion computes it: `f64` division, or for decimals the sum rescaled to the
/// output scale and divided with truncation.
fn average(spec: &Spec, sum: SumValue, count: i64) -> Result<ScalarValue> {
    let scale_up = |target: i8| {
        crate::decimal::pow10((target - spec.input_scale).max(0) as u32)
            .ok_or_else(|| Error::Query("AVG scale out of range".into()))
    };
    Ok(match (&spec.output, sum) {
        (DataType::Float64, SumValue::Int(v)) => {
            ScalarValue::Float64(Some(v as f64 / count as f64))
        }
        (DataType::Float64, SumValue::Float(v)) => ScalarValue::Float64(Some(v / count as f64)),
        (DataType::Float64, sum) => {
            // An integer sum that went on in 256 bits: high × 2^128 + low.
            let (low, high) = sum.wide().to_parts();
            let v = high as f64 * 2f64.powi(128) + low as f64;
            ScalarValue::Float64(Some(v / count as f64))
        }
        (DataType::Decimal128(p, s) | DataType::Decimal256(p, s), sum) => {
            // In 256 bits: the sum scaled up to the output scale can pass 128.
            let too_big = || spec.out_of_range(format!("average does not fit {}", spec.output));
            let v = sum
                .wide()
                .checked_mul(scale_up(*s)?)
                .ok_or_else(too_big)?
                .wrapping_div(i256::from_i128(count as i128));
            if !crate::decimal::fits_precision(v, *p) {
                return Err(too_big());
            }
            match spec.output {
                DataType::Decimal128(..) => {
                    ScalarValue::Decimal128(Some(v.to_i128().ok_or_else(too_big)?), *p, *s)
                }
                _ => ScalarValue::Decimal256(Some(v), *p, *s),
            }
        }
        (other, _) => return Err(Error::Query(format!("AVG cannot produce {other}"))),
    })
}
