//! Functions whose result types follow PostgreSQL where DataFusion's would lose values.
//!
//! DataFusion's SUM of a `bigint` is a `bigint`, which wraps (batch) or overflows past
//! 2^63; PostgreSQL's is `numeric`, and so is MySQL's for every integer. [`ExactSum`] is
//! DataFusion's SUM with PostgreSQL's result types: arguments are coerced to a type whose sum
//! DataFusion's own SUM types wide enough, and the incremental accumulators
//! ([`crate::ops::accumulator`]) produce exactly those types.

use arrow::datatypes::{DataType, FieldRef};
use datafusion_common::{Result, plan_err};
use datafusion_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion_expr::utils::AggregateOrderSensitivity;
use datafusion_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, GroupsAccumulator, ReversedUDAF, SetMonotonicity,
    Signature, Volatility,
};
use datafusion_functions_aggregate::sum::Sum;

/// Eddy's replacements of DataFusion's aggregate functions: what the engine plans with, and
/// what a batch computation must register to give the same answers.
pub fn udafs() -> Vec<AggregateUDF> {
    vec![AggregateUDF::from(ExactSum::new())]
}

/// SUM exact as PostgreSQL's: integers of any width (MySQL's unsigned ones too) →
/// `decimal(38,0)` (PostgreSQL's `numeric` for `bigint`; its `bigint` for `integer`, which
/// prints the same digits and here cannot overflow), `decimal(p,s)` → `decimal(p+10,s)` (at most 38
/// digits in 128 bits, 76 in 256), floats → `double`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ExactSum {
    inner: Sum,
    signature: Signature,
}

impl ExactSum {
    pub fn new() -> Self {
        Self {
            inner: Sum::new(),
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for ExactSum {
    fn default() -> Self {
        Self::new()
    }
}

/// The type SUM's argument is cast to; DataFusion's SUM of it has PostgreSQL's result type.
pub fn exact_sum_input(data_type: &DataType) -> Option<DataType> {
    use DataType as T;
    Some(match data_type {
        // decimal(28,0) holds every 64-bit integer; its SUM is decimal(38,0). Every integer
        // type goes there, not only `bigint`: coercion must be idempotent (it runs again on
        // its own casts), and an `Int64` cast from an `int` cannot be told from a `bigint`.
        T::Null
        | T::Int8
        | T::Int16
        | T::Int32
        | T::Int64
        | T::UInt8
        | T::UInt16
        | T::UInt32
        | T::UInt64 => T::Decimal128(28, 0),
        T::Float16 | T::Float32 | T::Float64 => T::Float64,
        T::Decimal32(p, s) | T::Decimal64(p, s) => T::Decimal128(*p, *s),
        // DataFusion's `decimal(min(38, p+10), s)`: a sum past 38 digits is an error in the
        // accumulators, never wrapped (widening here would change the type of a SUM of SUMs,
        // which DataFusion's optimizer rewrites some aggregates into).
        T::Decimal128(..) | T::Decimal256(..) | T::Duration(_) | T::Interval(_) => {
            data_type.clone()
        }
        _ => return None,
    })
}

impl AggregateUDFImpl for ExactSum {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t] => match exact_sum_input(t) {
                Some(input) => Ok(vec![input]),
                None => plan_err!("SUM of {t} is not supported"),
            },
            _ => plan_err!("SUM takes one argument, not {}", arg_types.len()),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.accumulator(args)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        self.inner.create_groups_accumulator(args)
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.create_sliding_accumulator(args)
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.order_sensitivity()
    }

    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner.set_monotonicity(data_type)
    }
}
