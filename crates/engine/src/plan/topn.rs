//! Top-N compilation: ORDER BY … LIMIT/OFFSET and ranking windows bounded by a filter.
//!
//! DataFusion plans `ORDER BY … LIMIT n OFFSET m` as `Limit(skip m) ← Sort(fetch m+n)`, and
//! `WHERE rn <= n` over `ROW_NUMBER() OVER (…) AS rn` as `Filter ← Projection ← Window`. Both
//! become one [`TopNOp`]. A limit or a filter separated from its sort or window by
//! projections and aliases (row-wise, so they commute) is first moved down next to it.
//! What has no bound (a window function whose value is not filtered, `LIMIT` without
//! `ORDER BY`) is refused, named.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion_common::tree_node::{Transformed, TreeNode};
use datafusion_common::{Column, DFSchema, ScalarValue};
use datafusion_expr::expr::{WindowFunction, WindowFunctionParams};
use datafusion_expr::{
    BinaryExpr, Expr, FetchType, Filter, Limit, LogicalPlan, Operator, Projection, SkipType,
    SortExpr, SubqueryAlias, Window, WindowFunctionDefinition,
};

use super::{Compiled, Compiler, unalias};
use crate::error::{Error, Result};
use crate::ops::topn::{Rank, SortKey, TopNOp, TopNSpec};
use crate::ops::{Input, Node};

const RANKED: &str =
    "only ROW_NUMBER(), RANK() and DENSE_RANK() filtered by `<= n`, `< n` or `= n` are maintained";

/// Whether `filter` sits over a window, through projections and aliases.
pub(super) fn over_window(filter: &Filter) -> bool {
    let mut plan = filter.input.as_ref();
    loop {
        match plan {
            LogicalPlan::Window(_) => return true,
            LogicalPlan::Projection(p) => plan = &p.input,
            LogicalPlan::SubqueryAlias(a) => plan = &a.input,
            _ => return false,
        }
    }
}

impl Compiler<'_> {
    /// `LIMIT`/`OFFSET` over an ORDER BY: a top-N. Without an ORDER BY it is refused.
    pub(super) fn limit(&self, limit: &Limit) -> Result<Compiled> {
        let query =
            |e: datafusion_common::error::DataFusionError| Error::Query(e.strip_backtrace());
        let constant = || Error::not_incremental("LIMIT / OFFSET with a computed count", None);
        let SkipType::Literal(skip) = limit.get_skip_type().map_err(query)? else {
            return Err(constant());
        };
        let FetchType::Literal(fetch) = limit.get_fetch_type().map_err(query)? else {
            return Err(constant());
        };
        let pushed = |input: &Arc<LogicalPlan>| {
            LogicalPlan::Limit(Limit {
                skip: limit.skip.clone(),
                fetch: limit.fetch.clone(),
                input: input.clone(),
            })
        };
        let plan = match limit.input.as_ref() {
            LogicalPlan::Sort(sort) => {
                let end = fetch.map(|f| skip.saturating_add(f));
                let bound = match (sort.fetch, end) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                return self.top_n(sort, skip, bound);
            }
            LogicalPlan::Projection(p) => LogicalPlan::Projection(
                Projection::try_new_with_schema(
                    p.expr.clone(),
                    Arc::new(pushed(&p.input)),
                    p.schema.clone(),
                )
                .map_err(query)?,
            ),
            LogicalPlan::SubqueryAlias(a) => LogicalPlan::SubqueryAlias(
                SubqueryAlias::try_new(Arc::new(pushed(&a.input)), a.alias.clone())
                    .map_err(query)?,
            ),
            _ => {
                return Err(Error::not_incremental(
                    "LIMIT / OFFSET without ORDER BY",
                    Some("which rows it keeps is arbitrary".into()),
                ));
            }
        };
        self.compile(&plan)
    }

    /// `ORDER BY … LIMIT`: rows `skip + 1 ..= bound` of the input in the sort's order.
    pub(super) fn top_n(
        &self,
        sort: &datafusion_expr::Sort,
        skip: usize,
        bound: Option<usize>,
    ) -> Result<Compiled> {
        let input = self.compile(&sort.input)?;
        let bound = bound.map_or(u64::MAX, |b| b as u64);
        let label = format!(
            "ORDER BY {}, rows {}..={}",
            spell(&sort.expr),
            skip + 1,
            if bound == u64::MAX {
                "end".to_string()
            } else {
                bound.to_string()
            }
        );
        let spec = TopNSpec {
            partition: Vec::new(),
            order: self.sort_keys(&sort.expr, input.schema.as_ref())?,
            rank: Rank::RowNumber,
            skip: skip as u64,
            bound,
            emit_rank: false,
            label,
        };
        let schema = input.schema.clone();
        self.top_n_node(input, spec, schema)
    }

    /// A filter over a window: the window's bounded ranking, then the filter as written.
    pub(super) fn ranked(&self, filter: &Filter) -> Result<Compiled> {
        let query =
            |e: datafusion_common::error::DataFusionError| Error::Query(e.strip_backtrace());
        let plan = match filter.input.as_ref() {
            LogicalPlan::Window(window) => return self.window_top(filter, window),
            LogicalPlan::Projection(p) => {
                let inner: Vec<Expr> = p.expr.iter().map(|e| unalias(e).clone()).collect();
                let below = substitute(&filter.predicate, &p.schema, inner)?;
                let pushed = Filter::try_new(below, p.input.clone()).map_err(query)?;
                LogicalPlan::Projection(
                    Projection::try_new_with_schema(
                        p.expr.clone(),
                        Arc::new(LogicalPlan::Filter(pushed)),
                        p.schema.clone(),
                    )
                    .map_err(query)?,
                )
            }
            LogicalPlan::SubqueryAlias(a) => {
                let inner = a.input.schema().columns().into_iter().map(Expr::Column);
                let below = substitute(&filter.predicate, &a.schema, inner.collect())?;
                let pushed = Filter::try_new(below, a.input.clone()).map_err(query)?;
                LogicalPlan::SubqueryAlias(
                    SubqueryAlias::try_new(Arc::new(LogicalPlan::Filter(pushed)), a.alias.clone())
                        .map_err(query)?,
                )
            }
            other => {
                return Err(Error::Query(format!(
                    "unexpected plan under a window filter: {}",
                    other.display()
                )));
            }
        };
        self.compile(&plan)
    }

    /// A window whose value no filter bounds: refused, naming its function.
    pub(super) fn window(&self, window: &Window) -> Result<Compiled> {
        let names: Vec<String> = window
            .window_expr
            .iter()
            .map(|e| match unalias(e) {
                Expr::WindowFunction(f) => f.fun.name().to_string(),
                other => other.to_string(),
            })
            .collect();
        let construct = match names
            .iter()
            .find(|n| !matches!(n.as_str(), "row_number" | "rank" | "dense_rank"))
        {
            Some(other) => format!("window function `{other}` OVER (…)"),
            None => format!(
                "window function `{}` OVER (…) without a bound on its rank",
                names.join("`, `")
            ),
        };
        Err(Error::not_incremental(construct, Some(RANKED.into())))
    }

    fn window_top(&self, filter: &Filter, window: &Window) -> Result<Compiled> {
        let [expr] = window.window_expr.as_slice() else {
            return Err(Error::not_incremental(
                "several window functions in one query",
                Some(RANKED.into()),
            ));
        };
        let Expr::WindowFunction(function) = unalias(expr) else {
            return Err(Error::Query(format!("unexpected window expression {expr}")));
        };
        let WindowFunction {
            fun,
            params:
                WindowFunctionParams {
                    args,
                    partition_by,
                    order_by,
                    filter: function_filter,
                    distinct,
                    ..
                },
        } = function.as_ref();
        let rank = match fun {
            WindowFunctionDefinition::WindowUDF(udf) if udf.name() == "row_number" => {
                Rank::RowNumber
            }
            WindowFunctionDefinition::WindowUDF(udf) if udf.name() == "rank" => Rank::Rank,
            WindowFunctionDefinition::WindowUDF(udf) if udf.name() == "dense_rank" => {
                Rank::DenseRank
            }
            other => {
                return Err(Error::not_incremental(
                    format!("window function `{}` OVER (…)", other.name()),
                    Some(RANKED.into()),
                ));
            }
        };
        let name = fun.name();
        if !args.is_empty() || function_filter.is_some() || *distinct {
            return Err(Error::not_incremental(
                format!("`{name}` with arguments, FILTER or DISTINCT"),
                None,
            ));
        }
        if order_by.is_empty() {
            return Err(Error::not_incremental(
                format!("`{name}() OVER` without ORDER BY"),
                Some("which rows rank first is arbitrary".into()),
            ));
        }
        let visible = window.input.schema().fields().len();
        let rank_column = window.schema.columns().swap_remove(visible);
        let bound = bound_of(&filter.predicate, &rank_column).ok_or_else(|| {
            Error::not_incremental(
                format!("`{name}()` OVER (…) without a bound on its value in WHERE"),
                Some(RANKED.into()),
            )
        })?;
        let input = self.compile(&window.input)?;
        let partition = self.physical_all(partition_by, input.schema.as_ref())?;
        let label = format!(
            "{name}() PARTITION BY [{}] ORDER BY {} <= {bound}",
            partition_by
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            spell(order_by)
        );
        let spec = TopNSpec {
            partition,
            order: self.sort_keys(order_by, input.schema.as_ref())?,
            rank,
            skip: 0,
            bound,
            emit_rank: true,
            label,
        };
        let ranked = self.top_n_node(input, spec, window.schema.clone())?;
        self.filter(ranked, filter.predicate.clone())
    }

    fn sort_keys(&self, exprs: &[SortExpr], schema: &DFSchema) -> Result<Vec<SortKey>> {
        exprs
            .iter()
            .map(|s| {
                Ok(SortKey {
                    expr: self.physical(&s.expr, schema)?,
                    descending: !s.asc,
                    nulls_first: s.nulls_first,
                })
            })
            .collect()
    }

    fn top_n_node(
        &self,
        input: Compiled,
        spec: TopNSpec,
        schema: datafusion_common::DFSchemaRef,
    ) -> Result<Compiled> {
        let key_columns = input.key.as_ref().map_or(0, Vec::len);
        let batch_schema = Compiled::batch_schema(&schema, input.key.as_ref());
        let op = TopNOp::new(
            spec,
            input.node.operator.schema(),
            key_columns,
            batch_schema,
        )?;
        Ok(Compiled {
            node: Node::new(op, vec![Input::Node(Box::new(input.node))]),
            schema,
            key: input.key,
        })
    }
}

/// `ORDER BY` terms as the plan prints them.
fn spell(exprs: &[SortExpr]) -> String {
    exprs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `predicate` over `outer`'s columns rewritten over the expressions producing them.
fn substitute(predicate: &Expr, outer: &DFSchema, inner: Vec<Expr>) -> Result<Expr> {
    let map: HashMap<Column, Expr> = outer.columns().into_iter().zip(inner).collect();
    predicate
        .clone()
        .transform(|e| match &e {
            Expr::Column(c) => Ok(match map.get(c) {
                Some(inner) => Transformed::yes(inner.clone()),
                None => Transformed::no(e),
            }),
            _ => Ok(Transformed::no(e)),
        })
        .map(|t| t.data)
        .map_err(|e| Error::Query(e.strip_backtrace()))
}

/// The tightest bound the predicate's conjuncts put on `ranked`: `<= n` is `n`, `< n` is
/// `n - 1`, `= n` is `n`; `None` when no conjunct bounds it from above.
fn bound_of(predicate: &Expr, ranked: &Column) -> Option<u64> {
    datafusion_expr::utils::split_conjunction(predicate)
        .into_iter()
        .filter_map(|conjunct| {
            let Expr::BinaryExpr(BinaryExpr { left, op, right }) = conjunct else {
                return None;
            };
            let (op, literal) = if is_column(left, ranked) {
                (*op, right)
            } else if is_column(right, ranked) {
                (op.swap()?, left)
            } else {
                return None;
            };
            let n = integer(literal)?;
            let bound = match op {
                Operator::LtEq | Operator::Eq => n,
                Operator::Lt => n - 1,
                _ => return None,
            };
            Some(bound.clamp(0, i128::from(u64::MAX)) as u64)
        })
        .min()
}

/// Whether `expr` is the column, possibly cast (ranks are small: casts keep their value).
fn is_column(expr: &Expr, column: &Column) -> bool {
    match expr {
        Expr::Column(c) => c == column,
        Expr::Cast(cast) => is_column(&cast.expr, column),
        Expr::TryCast(cast) => is_column(&cast.expr, column),
        _ => false,
    }
}

fn integer(expr: &Expr) -> Option<i128> {
    match expr {
        Expr::Literal(value, _) => match value {
            ScalarValue::Int8(Some(v)) => Some(i128::from(*v)),
            ScalarValue::Int16(Some(v)) => Some(i128::from(*v)),
            ScalarValue::Int32(Some(v)) => Some(i128::from(*v)),
            ScalarValue::Int64(Some(v)) => Some(i128::from(*v)),
            ScalarValue::UInt8(Some(v)) => Some(i128::from(*v)),
            ScalarValue::UInt16(Some(v)) => Some(i128::from(*v)),
            ScalarValue::UInt32(Some(v)) => Some(i128::from(*v)),
            ScalarValue::UInt64(Some(v)) => Some(i128::from(*v)),
            _ => None,
        },
        Expr::Cast(cast) => integer(&cast.expr),
        _ => None,
    }
}
