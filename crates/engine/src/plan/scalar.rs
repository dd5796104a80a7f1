//! Uncorrelated scalar subqueries as joins: `x / (SELECT COUNT(*) FROM t)` becomes a cross
//! join with the subquery's one row, so a change of the subquery's value is a change of every
//! row that reads it.
//!
//! DataFusion decorrelates correlated scalar subqueries into joins itself but leaves
//! uncorrelated ones as expressions, evaluated once per batch query. Here each is joined in
//! below the projection or filter that reads it, under an alias, and read as a column. The
//! join compiler accepts it only when the subquery has exactly one row (a global aggregate).

use std::sync::Arc;

use datafusion_common::tree_node::{Transformed, TreeNode};
use datafusion_common::{Column, Result as DfResult};
use datafusion_expr::{Expr, Filter, LogicalPlan, LogicalPlanBuilder, Projection, SubqueryAlias};

use crate::error::{Error, Result};

/// Rewrites every uncorrelated scalar subquery of projections and filters into a join.
pub(super) fn subqueries_to_joins(plan: LogicalPlan) -> Result<LogicalPlan> {
    let mut next = 0;
    plan.transform_up(|node| rewrite(node, &mut next))
        .map(|t| t.data)
        .map_err(|e| Error::Query(e.strip_backtrace()))
}

fn uncorrelated(expr: &Expr) -> bool {
    matches!(expr, Expr::ScalarSubquery(s) if s.outer_ref_columns.is_empty())
}

fn rewrite(node: LogicalPlan, next: &mut usize) -> DfResult<Transformed<LogicalPlan>> {
    let exprs = match &node {
        LogicalPlan::Projection(p) => p.expr.clone(),
        LogicalPlan::Filter(f) => vec![f.predicate.clone()],
        _ => return Ok(Transformed::no(node)),
    };
    let mut found: Vec<Expr> = Vec::new();
    for expr in &exprs {
        expr.apply(|e| {
            if uncorrelated(e) && !found.contains(e) {
                found.push(e.clone());
            }
            Ok(datafusion_common::tree_node::TreeNodeRecursion::Continue)
        })?;
    }
    if found.is_empty() {
        return Ok(Transformed::no(node));
    }
    let input = node.inputs()[0].clone();
    let mut builder = LogicalPlanBuilder::from(input.clone());
    let mut columns = Vec::new();
    for subquery in &found {
        let Expr::ScalarSubquery(s) = subquery else {
            unreachable!("only scalar subqueries are collected")
        };
        let inner = subqueries_to_joins(s.subquery.as_ref().clone())
            .map_err(|e| datafusion_common::error::DataFusionError::Plan(e.to_string()))?;
        let alias = format!("__scalar_subquery_{next}");
        *next += 1;
        let aliased = SubqueryAlias::try_new(Arc::new(inner), alias.as_str())?;
        let field = aliased.schema.field(0).name().clone();
        columns.push(Expr::Column(Column::new(Some(alias), field)));
        builder = builder.cross_join(LogicalPlan::SubqueryAlias(aliased))?;
    }
    let joined = Arc::new(builder.build()?);
    let replace = |expr: Expr| -> DfResult<Expr> {
        expr.transform(|e| match found.iter().position(|f| *f == e) {
            Some(i) => Ok(Transformed::yes(columns[i].clone())),
            None => Ok(Transformed::no(e)),
        })
        .map(|t| t.data)
    };
    let rewritten = match node {
        LogicalPlan::Projection(p) => {
            let exprs = p
                .expr
                .into_iter()
                .map(replace)
                .collect::<DfResult<Vec<_>>>()?;
            LogicalPlan::Projection(Projection::try_new(exprs, joined)?)
        }
        LogicalPlan::Filter(f) => {
            // The filter keeps its input's columns, not the subquery's.
            let filter = LogicalPlan::Filter(Filter::try_new(replace(f.predicate)?, joined)?);
            let kept = input.schema().columns().into_iter().map(Expr::Column);
            LogicalPlanBuilder::from(filter).project(kept)?.build()?
        }
        other => other,
    };
    Ok(Transformed::yes(rewritten))
}
