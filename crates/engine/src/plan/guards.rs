//! Which temporal source columns a query computes on, and what their values must satisfy.
//!
//! Eddy keeps dates and timestamps at their own unit over the sources' whole range, and
//! `infinity` as the type's extreme value. Comparisons, GROUP BY, MIN/MAX and output are exact
//! for all of them; computing on them is not always: `infinity + 1 day` has no value, and some
//! DataFusion functions go through 64-bit nanoseconds (1677..2262) and fail beyond. The plan
//! finds the columns under such computations; the decoder then refuses a record whose value
//! the query cannot compute with ([`Guard`]), naming the column, instead of failing the batch.

use std::collections::BTreeMap;

use arrow::datatypes::{DataType, TimeUnit};
use datafusion_common::DFSchema;
use datafusion_common::ScalarValue;
use datafusion_common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion_expr::{Expr, LogicalPlan, Operator};

use crate::error::{Error, Result};
use crate::schema::TableDef;
use crate::temporal::{Guard, is_temporal};

/// `date_trunc` granularities DataFusion truncates at the value's own unit, for timestamps
/// without a time zone; it goes through nanoseconds for the others, and for every
/// granularity above a minute on a timestamp with a time zone.
const FINE_GRANULARITIES: [&str; 6] = [
    "microsecond",
    "millisecond",
    "second",
    "minute",
    "hour",
    "day",
];

/// Functions that convert their temporal input to nanoseconds.
const NANOSECOND_FUNCTIONS: [&str; 3] = ["date_bin", "to_timestamp", "to_timestamp_nanos"];

/// The guard of each of `table`'s temporal columns that `plan` computes on, by column index.
pub fn guards(plan: &LogicalPlan, table: &TableDef) -> Result<BTreeMap<usize, Guard>> {
    let mut found: BTreeMap<usize, Guard> = BTreeMap::new();
    plan.apply(|node| {
        let input = node.inputs().first().map(|i| i.schema().clone());
        let scope = Scope {
            table,
            input: input.as_deref(),
        };
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Some(guard) = guard_of(e, &scope) {
                    for column in scope.columns_under(e) {
                        let entry = found.entry(column).or_insert_with(|| guard.clone());
                        if guard > *entry {
                            *entry = guard.clone();
                        }
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })
    .map_err(|e| Error::Query(e.strip_backtrace()))?;
    Ok(found)
}

/// What `expr` demands of the temporal columns under it, when it computes on them.
fn guard_of(expr: &Expr, scope: &Scope<'_>) -> Option<Guard> {
    let what = || expr.schema_name().to_string();
    match expr {
        Expr::ScalarFunction(f) => {
            let name = f.func.name();
            if NANOSECOND_FUNCTIONS.contains(&name) {
                return Some(Guard::Nanoseconds(what()));
            }
            if name == "date_trunc" {
                let fine = match f.args.first() {
                    Some(Expr::Literal(ScalarValue::Utf8(Some(g)), _)) => {
                        let g = g.to_lowercase();
                        let zoned = scope.columns_under(expr).into_iter().any(|c| {
                            matches!(
                                scope.table.columns[c].data_type,
                                DataType::Timestamp(_, Some(_))
                            )
                        });
                        let allowed = if zoned {
                            &FINE_GRANULARITIES[..4]
                        } else {
                            &FINE_GRANULARITIES[..]
                        };
                        allowed.contains(&g.as_str())
                    }
                    _ => false,
                };
                return Some(if fine {
                    Guard::Finite(what())
                } else {
                    Guard::Nanoseconds(what())
                });
            }
            Some(Guard::Finite(what()))
        }
        Expr::Cast(c) => Some(cast_guard(c.field.data_type(), what())),
        Expr::TryCast(c) => Some(cast_guard(c.field.data_type(), what())),
        Expr::Negative(_) => Some(Guard::Finite(what())),
        Expr::BinaryExpr(b) => matches!(
            b.op,
            Operator::Plus
                | Operator::Minus
                | Operator::Multiply
                | Operator::Divide
                | Operator::Modulo
        )
        .then(|| Guard::Finite(what())),
        _ => None,
    }
}

fn cast_guard(to: &DataType, what: String) -> Guard {
    match to {
        DataType::Timestamp(TimeUnit::Nanosecond, _)
        | DataType::Time64(TimeUnit::Nanosecond)
        | DataType::Date64 => Guard::Nanoseconds(what),
        _ => Guard::Finite(what),
    }
}

/// Where an expression's column names resolve: the source table, or the node's input.
struct Scope<'a> {
    table: &'a TableDef,
    input: Option<&'a DFSchema>,
}

impl Scope<'_> {
    /// The table's temporal columns that `expr` reads. A temporal name the table does not
    /// have (a subquery's alias) may stand for any of them, so it stands for all.
    fn columns_under(&self, expr: &Expr) -> Vec<usize> {
        let mut columns: Vec<usize> = Vec::new();
        let temporal = |i: &usize| is_temporal(&self.table.columns[*i].data_type);
        let _ = expr.apply(|e| {
            if let Expr::Column(c) = e {
                match self.table.column_index(&c.name) {
                    Some(i) => columns.push(i),
                    None => {
                        let derived_temporal = self
                            .input
                            .and_then(|s| s.qualified_field_from_column(c).ok())
                            .map(|(_, f)| f)
                            .is_none_or(|f| is_temporal(f.data_type()));
                        if derived_temporal {
                            columns.extend(0..self.table.columns.len());
                        }
                    }
                }
            }
            Ok(TreeNodeRecursion::Continue)
        });
        columns.retain(temporal);
        columns.sort_unstable();
        columns.dedup();
        columns
    }
}
