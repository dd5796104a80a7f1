//! Flink's group windows (TUMBLE, HOP) rewritten into SQL DataFusion plans and Eddy maintains.
//!
//! Jobs migrated from Flink group by `TUMBLE(ts, size)` or `HOP(ts, slide, size)` and select
//! `TUMBLE_START`/`TUMBLE_END` (`HOP_START`/`HOP_END`). DataFusion knows none of these, so the
//! parsed statement is rewritten before planning:
//!
//! - `TUMBLE(ts, size)` and `TUMBLE_START(ts, size)` become `date_bin(size, ts)` (windows
//!   aligned to the epoch, as Flink's), `TUMBLE_END(ts, size)` becomes `date_bin(size, ts) +
//!   size`: an ordinary group key.
//! - A row belongs to several hopping windows, so a `SELECT` using `HOP` reads its table
//!   through `(SELECT *, unnest(eddy_hop_starts(slide, size, ts)) AS __hop_start FROM t) AS
//!   t`: one row per window the row is in (see [`HopStarts`]), expanded incrementally by the
//!   unnest operator, then grouped by `__hop_start` like any column. `HOP_END` is
//!   `__hop_start + size`.
//!
//! Over CDC tables these are updating results: a late update or delete retracts from the
//! windows it was counted in. No window is ever closed, so no state is dropped.

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, ListArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Int64Type, TimeUnit};
use datafusion_common::{ScalarValue, exec_err};
use datafusion_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion_sql::parser::Statement as DFStatement;
use datafusion_sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Query, Select, SetExpr, Statement,
    TableFactor, visit_expressions_mut,
};
use datafusion_sql::sqlparser::dialect::GenericDialect;
use datafusion_sql::sqlparser::parser::Parser;

use crate::error::{Error, Result};

/// The column a HOP expansion adds: the start of one window the row belongs to.
const HOP_START: &str = "__hop_start";

/// The functions the rewritten SQL calls, for the engine and for a batch computation to
/// register.
pub fn udfs() -> Vec<ScalarUDF> {
    vec![ScalarUDF::new_from_impl(HopStarts::new())]
}

/// Rewrites Flink's group windows in `sql` (see the module docs); other SQL is unchanged.
/// For running the rewritten query elsewhere, e.g. in DataFusion in batch after registering
/// [`udfs`].
pub fn rewrite_sql(sql: &str) -> Result<String> {
    let mut statements =
        Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| Error::Query(e.to_string()))?;
    for statement in &mut statements {
        rewrite_sqlparser(statement)?;
    }
    Ok(statements
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; "))
}

/// Rewrites a parsed statement in place.
pub(super) fn rewrite(mut statement: DFStatement) -> Result<DFStatement> {
    if let DFStatement::Statement(inner) = &mut statement {
        rewrite_sqlparser(inner)?;
    }
    Ok(statement)
}

fn rewrite_sqlparser(statement: &mut Statement) -> Result<()> {
    if let Statement::Query(query) = statement {
        rewrite_query(query)?;
    }
    let mut failure = None;
    let _ = visit_expressions_mut(statement, |expr| {
        match tumble(expr) {
            Ok(Some(new)) => *expr = new,
            Ok(None) => {}
            Err(e) => {
                failure = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    failure.map_or(Ok(()), Err)
}

fn rewrite_query(query: &mut Query) -> Result<()> {
    if let Some(with) = &mut query.with {
        for cte in &mut with.cte_tables {
            rewrite_query(&mut cte.query)?;
        }
    }
    rewrite_set(&mut query.body)
}

fn rewrite_set(set: &mut SetExpr) -> Result<()> {
    match set {
        SetExpr::Select(select) => rewrite_select(select),
        SetExpr::Query(query) => rewrite_query(query),
        SetExpr::SetOperation { left, right, .. } => {
            rewrite_set(left)?;
            rewrite_set(right)
        }
        _ => Ok(()),
    }
}

/// A window call: its lower-case name and argument texts.
fn call(expr: &Expr) -> Option<(String, Vec<String>)> {
    let Expr::Function(function) = expr else {
        return None;
    };
    let name = function.name.to_string().to_lowercase();
    if !matches!(
        name.as_str(),
        "tumble" | "tumble_start" | "tumble_end" | "hop" | "hop_start" | "hop_end"
    ) {
        return None;
    }
    let FunctionArguments::List(list) = &function.args else {
        return Some((name, Vec::new()));
    };
    let args = list
        .args
        .iter()
        .map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => e.to_string(),
            other => other.to_string(),
        })
        .collect();
    Some((name, args))
}

fn parse_expr(text: &str) -> Result<Expr> {
    Parser::new(&GenericDialect {})
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| Error::Query(e.to_string()))
}

fn arity(name: &str, args: &[String], n: usize) -> Result<()> {
    if args.len() == n {
        Ok(())
    } else {
        Err(Error::Query(format!(
            "`{}` takes {n} arguments, not {}",
            name.to_uppercase(),
            args.len()
        )))
    }
}

/// The rewrite of a TUMBLE call, or `None` for any other expression.
fn tumble(expr: &Expr) -> Result<Option<Expr>> {
    let Some((name, args)) = call(expr) else {
        return Ok(None);
    };
    let text = match name.as_str() {
        "tumble" | "tumble_start" => {
            arity(&name, &args, 2)?;
            format!("date_bin({}, {})", args[1], args[0])
        }
        "tumble_end" => {
            arity(&name, &args, 2)?;
            format!("(date_bin({}, {}) + {})", args[1], args[0], args[1])
        }
        _ => {
            return Err(Error::Query(format!(
                "`{}` outside a SELECT over one table",
                name.to_uppercase()
            )));
        }
    };
    parse_expr(&text).map(Some)
}

fn rewrite_select(select: &mut Select) -> Result<()> {
    for from in &mut select.from {
        for factor in std::iter::once(&mut from.relation)
            .chain(from.joins.iter_mut().map(|j| &mut j.relation))
        {
            if let TableFactor::Derived { subquery, .. } = factor {
                rewrite_query(subquery)?;
            }
        }
    }
    // The HOP windows this SELECT uses: (ts, slide, size), all calls alike.
    let mut hop: Option<Vec<String>> = None;
    let mut failure = None;
    let _ = visit_expressions_mut(select, |expr| {
        let Some((name, args)) = call(expr).filter(|(n, _)| n.starts_with("hop")) else {
            return ControlFlow::Continue(());
        };
        let result = arity(&name, &args, 3).and_then(|()| {
            if hop.as_ref().is_some_and(|h| *h != args) {
                return Err(Error::not_incremental(
                    "HOP windows of different sizes in one SELECT",
                    None,
                ));
            }
            let text = if name == "hop_end" {
                format!("({HOP_START} + {})", args[2])
            } else {
                HOP_START.to_string()
            };
            hop = Some(args);
            parse_expr(&text)
        });
        match result {
            Ok(new) => {
                *expr = new;
                ControlFlow::Continue(())
            }
            Err(e) => {
                failure = Some(e);
                ControlFlow::Break(())
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let Some(args) = hop else {
        return Ok(());
    };
    let [from] = select.from.as_mut_slice() else {
        return Err(Error::not_incremental("HOP over several tables", None));
    };
    if !from.joins.is_empty() {
        return Err(Error::not_incremental("HOP over a JOIN", None));
    }
    let TableFactor::Table { name, alias, .. } = &from.relation else {
        return Err(Error::not_incremental("HOP over a subquery", None));
    };
    let visible = match alias {
        Some(alias) => alias.name.to_string(),
        None => name.0.last().map(ToString::to_string).unwrap_or_default(),
    };
    let relation = match alias {
        Some(alias) => format!("{name} AS {}", alias.name),
        None => name.to_string(),
    };
    let expanded = format!(
        "SELECT * FROM (SELECT *, unnest(eddy_hop_starts({}, {}, {})) AS {HOP_START} FROM {relation}) AS {visible}",
        args[1], args[2], args[0]
    );
    let parsed = Parser::parse_sql(&GenericDialect {}, &expanded)
        .map_err(|e| Error::Query(e.to_string()))?;
    let Some(Statement::Query(query)) = parsed.into_iter().next() else {
        return Err(Error::Query("HOP expansion did not parse".into()));
    };
    let SetExpr::Select(mut expanded) = *query.body else {
        return Err(Error::Query("HOP expansion did not parse".into()));
    };
    from.relation = expanded.from.remove(0).relation;
    Ok(())
}

/// `eddy_hop_starts(slide, size, ts)`: the starts of the hopping windows `[s, s + size)`
/// containing `ts`, `s` a multiple of `slide` from the epoch, latest first (Flink's
/// assignment); NULL for a NULL `ts`. Intervals must be fixed lengths (no months).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HopStarts {
    signature: Signature,
}

impl HopStarts {
    fn new() -> Self {
        Self {
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

fn interval_nanos(value: &ColumnarValue, what: &str) -> datafusion_common::error::Result<i128> {
    match value {
        ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(Some(v))) if v.months == 0 => {
            Ok(i128::from(v.days) * 86_400_000_000_000 + i128::from(v.nanoseconds))
        }
        ColumnarValue::Scalar(ScalarValue::IntervalDayTime(Some(v))) => {
            Ok(i128::from(v.days) * 86_400_000_000_000 + i128::from(v.milliseconds) * 1_000_000)
        }
        other => exec_err!("HOP's {what} must be a constant interval of days or less, not {other}"),
    }
}

impl ScalarUDFImpl for HopStarts {
    fn name(&self) -> &str {
        "eddy_hop_starts"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> datafusion_common::error::Result<DataType> {
        match args {
            [_, _, ts @ DataType::Timestamp(_, _)] => Ok(DataType::List(Arc::new(
                Field::new_list_field(ts.clone(), true),
            ))),
            _ => exec_err!(
                "HOP's time column must be a timestamp, not {:?}",
                args.get(2)
            ),
        }
    }

    /// Checks the intervals when the query is planned, so a bad one refuses the job.
    fn return_field_from_args(
        &self,
        args: ReturnFieldArgs,
    ) -> datafusion_common::error::Result<FieldRef> {
        for (value, what) in args.scalar_arguments.iter().take(2).zip(["slide", "size"]) {
            let value = value.cloned().unwrap_or(ScalarValue::Null);
            interval_nanos(&ColumnarValue::Scalar(value), what)?;
        }
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        Ok(Arc::new(Field::new(
            self.name(),
            self.return_type(&types)?,
            true,
        )))
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion_common::error::Result<ColumnarValue> {
        let [slide, size, ts] = args.args.as_slice() else {
            return exec_err!("HOP takes (time, slide, size)");
        };
        let DataType::Timestamp(unit, _) = ts.data_type() else {
            return exec_err!("HOP's time column must be a timestamp");
        };
        let per_unit: i128 = match unit {
            TimeUnit::Second => 1_000_000_000,
            TimeUnit::Millisecond => 1_000_000,
            TimeUnit::Microsecond => 1_000,
            TimeUnit::Nanosecond => 1,
        };
        let (slide, size) = (
            interval_nanos(slide, "slide")?,
            interval_nanos(size, "size")?,
        );
        if slide <= 0 || size <= 0 || slide % per_unit != 0 || size % per_unit != 0 {
            return exec_err!(
                "HOP's slide and size must be positive whole units of the time column"
            );
        }
        let (slide, size) = ((slide / per_unit) as i64, (size / per_unit) as i64);
        let ts = ts.to_array(args.number_rows)?;
        let ts_type = ts.data_type().clone();
        let values = arrow::compute::cast(&ts, &DataType::Int64)?;
        let values = values
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("a timestamp casts to Int64");
        let mut starts: Vec<i64> = Vec::new();
        let mut offsets = vec![0i32];
        for v in values.iter() {
            // In i128, so the extreme values (Debezium's infinities) cannot overflow; a window
            // whose start is not a timestamp is left out.
            if let Some(t) = v.map(i128::from) {
                let mut start = t - t.rem_euclid(i128::from(slide));
                while start > t - i128::from(size) {
                    if let Ok(start) = i64::try_from(start) {
                        starts.push(start);
                    }
                    start -= i128::from(slide);
                }
            }
            offsets.push(starts.len() as i32);
        }
        let starts: ArrayRef = Arc::new(arrow::array::PrimitiveArray::<Int64Type>::from(starts));
        let starts = arrow::compute::cast(&starts, &ts_type)?;
        let list = ListArray::try_new(
            Arc::new(Field::new_list_field(ts_type, true)),
            OffsetBuffer::new(offsets.into()),
            starts,
            values.nulls().cloned(),
        )?;
        Ok(ColumnarValue::Array(Arc::new(list)))
    }
}
