//! Refuses `IN (subquery)` where SQL's unknown (NULL) answer would be read as false.
//!
//! DataFusion decorrelates an `IN` that is not a top-level conjunct of `WHERE` into a mark
//! join, whose mark is true or false, never NULL. SQL's `x IN (SELECT y …)` is NULL when `x`
//! is NULL or when no `y` equals `x` but some `y` is NULL. Where only truth matters (an `IN`
//! under `AND`s and `OR`s of a `WHERE`, where NULL and false both drop the row), the mark is
//! exact; under `NOT`, in a select list, a `CASE` or a comparison, the two differ
//! (`NOT (NULL)` is NULL, `NOT false` is true). Those uses are refused when either side of the
//! `IN` can be NULL. A top-level `NOT IN` conjunct is planned as a null-aware anti join, which
//! is exact; a `NOT IN` under `OR` is a negated mark, refused like `NOT (… IN …)`.

use datafusion_common::DFSchemaRef;
use datafusion_common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion_expr::expr::InSubquery;
use datafusion_expr::{Expr, ExprSchemable, LogicalPlan, Operator};

use crate::error::{Error, Result};

/// Where an expression sits in a `WHERE` predicate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Only `AND`s above it: false and NULL both drop the row, and the conjunct becomes a
    /// semi or (null-aware) anti join.
    Conjunct,
    /// `AND`s and `OR`s above it: false and NULL still both drop the row.
    Disjunct,
    /// Anywhere else (under `NOT`, in a select list, a `CASE`, a comparison): NULL matters.
    Valued,
}

/// Refuses an `IN (subquery)` whose NULL answer the plan would turn into false.
pub(super) fn refuse_unknown_in(plan: &LogicalPlan) -> Result<()> {
    let mut found: Option<String> = None;
    plan.apply_with_subqueries(|node| {
        let schema: DFSchemaRef = match node.inputs().as_slice() {
            [input] => input.schema().clone(),
            _ => node.schema().clone(),
        };
        let position = match node {
            LogicalPlan::Filter(_) => Position::Conjunct,
            _ => Position::Valued,
        };
        node.apply_expressions(|expr| {
            visit(expr, position, &schema, &mut found);
            Ok(if found.is_some() {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        })
    })
    .map_err(|e| Error::Query(e.strip_backtrace()))?;
    match found {
        Some(construct) => Err(Error::not_incremental(
            construct,
            Some(
                "where a NULL could make it unknown, Eddy would answer false; make both sides \
                 NOT NULL (e.g. COALESCE, or WHERE y IS NOT NULL in the subquery) or move it to \
                 a top-level condition of WHERE"
                    .into(),
            ),
        )),
        None => Ok(()),
    }
}

fn visit(expr: &Expr, position: Position, schema: &DFSchemaRef, found: &mut Option<String>) {
    if found.is_some() {
        return;
    }
    match expr {
        Expr::BinaryExpr(b) if position != Position::Valued && b.op == Operator::And => {
            visit(&b.left, position, schema, found);
            visit(&b.right, position, schema, found);
        }
        Expr::BinaryExpr(b) if position != Position::Valued && b.op == Operator::Or => {
            visit(&b.left, Position::Disjunct, schema, found);
            visit(&b.right, Position::Disjunct, schema, found);
        }
        Expr::InSubquery(in_subquery) => {
            let exact = matches!(
                (in_subquery.negated, position),
                (false, Position::Conjunct | Position::Disjunct) | (true, Position::Conjunct)
            );
            if !exact && may_be_null(in_subquery, schema) {
                let what = if in_subquery.negated { "NOT IN" } else { "IN" };
                *found = Some(format!(
                    "`{what} (subquery)` under NOT, OR or in a value, over a nullable column"
                ));
                return;
            }
            visit(&in_subquery.expr, Position::Valued, schema, found);
        }
        other => {
            let _ = other.apply_children(|child| {
                visit(child, Position::Valued, schema, found);
                Ok(TreeNodeRecursion::Continue)
            });
        }
    }
}

/// Whether the probe or the subquery's column can be NULL (unknown counts as nullable).
fn may_be_null(in_subquery: &InSubquery, schema: &DFSchemaRef) -> bool {
    let probe = in_subquery.expr.nullable(schema.as_ref()).unwrap_or(true);
    let column = in_subquery
        .subquery
        .subquery
        .schema()
        .fields()
        .first()
        .is_none_or(|f| f.is_nullable());
    probe || column
}
