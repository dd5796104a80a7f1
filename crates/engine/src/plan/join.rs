//! Joins compiled into [`JoinOp`]s: equi-joins, outer joins, and the semi, anti and mark
//! joins DataFusion decorrelates `IN`, `EXISTS`, `NOT IN` and set operations into.
//!
//! A join's rows are keyed by both inputs' keys (NULL on a padded side); a semi, anti or mark
//! join's rows by its side's key. A join without an equality is maintained only when one
//! input has one row (a global aggregate, as an uncorrelated scalar subquery becomes), since
//! otherwise every change would meet every row of the other side.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion_common::{DFSchema, JoinType, NullEquality};
use datafusion_expr::type_coercion::binary::comparison_coercion;
use datafusion_expr::{Expr, ExprSchemable, Join, LogicalPlan};

use super::{Compiled, Compiler};
use crate::error::{Error, Result};
use crate::ops::join::{JoinOp, JoinOutput, JoinSide, SideEmit};
use crate::ops::{Input, Node};
use crate::rows::RowCodec;

impl Compiler<'_> {
    pub(super) fn join(&self, join: &Join) -> Result<Compiled> {
        let left = self.compile(&join.left)?;
        let right = self.compile(&join.right)?;
        if join.on.is_empty() && !one_row(&left) && !one_row(&right) {
            return Err(Error::not_incremental(
                "a join without an equality condition (CROSS JOIN or a non-equi join)",
                Some("only a cross join with a one-row side, such as a global aggregate, is maintained".into()),
            ));
        }
        let output = match join.join_type {
            JoinType::Inner => JoinOutput::Pairs {
                pad: [false, false],
            },
            JoinType::Left => JoinOutput::Pairs { pad: [true, false] },
            JoinType::Right => JoinOutput::Pairs { pad: [false, true] },
            JoinType::Full => JoinOutput::Pairs { pad: [true, true] },
            JoinType::LeftSemi => side(0, SideEmit::Semi),
            JoinType::RightSemi => side(1, SideEmit::Semi),
            JoinType::LeftAnti if join.null_aware => side(0, SideEmit::NullAwareAnti),
            JoinType::LeftAnti => side(0, SideEmit::Anti),
            JoinType::RightAnti => side(1, SideEmit::Anti),
            JoinType::LeftMark => side(0, SideEmit::Mark),
            JoinType::RightMark => side(1, SideEmit::Mark),
        };
        if join.null_equality == NullEquality::NullEqualsNull
            && matches!(output, JoinOutput::Side { .. })
            && !is_distinct(&join.left)
        {
            // DataFusion keeps every duplicate of a left row that matches (INTERSECT ALL) or
            // none of them (EXCEPT ALL), where SQL keeps min(m, n) and max(m - n, 0) copies.
            return Err(Error::not_incremental(
                "INTERSECT ALL / EXCEPT ALL",
                Some("use INTERSECT or EXCEPT, or a join".into()),
            ));
        }
        if join.null_aware && join.filter.is_some() {
            return Err(Error::not_incremental(
                "NOT IN over a correlated subquery",
                Some("write it as NOT EXISTS".into()),
            ));
        }
        let mut keys = [Vec::new(), Vec::new()];
        let mut key_types = Vec::new();
        for (l, r) in &join.on {
            let lt = self.type_of(l, &left.schema)?;
            let rt = self.type_of(r, &right.schema)?;
            let common = comparison_coercion(&lt, &rt).ok_or_else(|| {
                Error::Query(format!(
                    "cannot compare join keys {l} ({lt}) and {r} ({rt})"
                ))
            })?;
            keys[0].push(self.physical(&cast(l, &lt, &common), &left.schema)?);
            keys[1].push(self.physical(&cast(r, &rt, &common), &right.schema)?);
            key_types.push(common);
        }
        let pair = left
            .schema
            .join(&right.schema)
            .map_err(|e| Error::Query(e.strip_backtrace()))?;
        let filter = join
            .filter
            .as_ref()
            .map(|f| self.physical(f, &pair))
            .transpose()?;
        let [left_keys, right_keys] = keys;
        let sides = [side_of(&left, left_keys)?, side_of(&right, right_keys)?];
        let (key, schema, pair_schema) = match output {
            JoinOutput::Pairs { pad } => {
                let key = pair_key(&left, &right, pad);
                let schema = Compiled::batch_schema(&join.schema, key.as_ref());
                let pairs = match key {
                    Some(_) => schema.clone(),
                    None => pair_schema(&pair, &left, &right),
                };
                (key, schema, pairs)
            }
            JoinOutput::Side { side, .. } => {
                let key = [&left, &right][side].key.clone();
                let schema = Compiled::batch_schema(&join.schema, key.as_ref());
                (key, schema, pair_schema(&pair, &left, &right))
            }
        };
        let op = JoinOp::new(
            sides,
            RowCodec::for_equality(key_types)?,
            filter,
            output,
            join.null_equality == NullEquality::NullEqualsNull,
            pair_schema,
            schema,
        )?;
        Ok(Compiled {
            node: Node::new(
                op,
                vec![
                    Input::Node(Box::new(left.node)),
                    Input::Node(Box::new(right.node)),
                ],
            ),
            schema: join.schema.clone(),
            key,
        })
    }

    fn type_of(&self, expr: &Expr, schema: &DFSchema) -> Result<DataType> {
        expr.get_type(schema)
            .map_err(|e| Error::Query(e.strip_backtrace()))
    }
}

fn side(side: usize, emit: SideEmit) -> JoinOutput {
    JoinOutput::Side { side, emit }
}

/// A global aggregate (and anything above it that keeps its empty key) has one row.
fn one_row(compiled: &Compiled) -> bool {
    compiled.key.as_ref().is_some_and(Vec::is_empty)
}

/// Whether a plan's rows are distinct: a `DISTINCT` (an aggregate without aggregates) under
/// projections, filters and aliases.
fn is_distinct(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Aggregate(a) => a.aggr_expr.is_empty(),
        LogicalPlan::Projection(p) => {
            p.expr.len() == p.input.schema().fields().len()
                && p.expr
                    .iter()
                    .all(|e| matches!(super::unalias(e), Expr::Column(_)))
                && is_distinct(&p.input)
        }
        LogicalPlan::Filter(f) => is_distinct(&f.input),
        LogicalPlan::SubqueryAlias(a) => is_distinct(&a.input),
        _ => false,
    }
}

fn cast(expr: &Expr, from: &DataType, to: &DataType) -> Expr {
    if from == to {
        expr.clone()
    } else {
        Expr::Cast(datafusion_expr::Cast::new(
            Box::new(expr.clone()),
            to.clone(),
        ))
    }
}

fn side_of(
    compiled: &Compiled,
    keys: Vec<Arc<dyn datafusion_physical_expr::PhysicalExpr>>,
) -> Result<JoinSide> {
    let schema = Compiled::batch_schema(&compiled.schema, compiled.key.as_ref());
    Ok(JoinSide {
        keys,
        rows: RowCodec::new(
            schema
                .fields()
                .iter()
                .map(|f| f.data_type().clone())
                .collect(),
        )?,
        visible: compiled.schema.fields().len(),
    })
}

/// The schema of a pair of rows: both sides' visible columns, then both sides' keys.
fn pair_schema(pair: &DFSchema, left: &Compiled, right: &Compiled) -> SchemaRef {
    let keys = left.key.iter().chain(&right.key).flatten();
    let fields: Vec<FieldRef> = pair
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .chain(
            keys.enumerate()
                .map(|(i, f)| Field::new(format!("__key.{i}"), f.data_type().clone(), true)),
        )
        .map(Arc::new)
        .collect();
    Arc::new(Schema::new(fields))
}

/// Both sides' key columns, renamed apart where their names clash; nullable on a side the
/// other pads. No key when a side has none (its rows have no identity).
fn pair_key(left: &Compiled, right: &Compiled, pad: [bool; 2]) -> Option<Vec<FieldRef>> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (compiled, nullable) in [(left, pad[1]), (right, pad[0])] {
        let qualifier = compiled
            .schema
            .iter()
            .find_map(|(q, _)| q.map(|q| q.to_string()));
        for field in compiled.key.as_ref()? {
            let name = unique_name(&mut names, field.name(), qualifier.as_deref());
            let field = Field::new(
                name,
                field.data_type().clone(),
                nullable || field.is_nullable(),
            );
            out.push(Arc::new(field));
        }
    }
    Some(out)
}

/// `name`, or failing that `qualifier.name`, or `name_N`: the first not taken yet.
pub(super) fn unique_name(
    taken: &mut HashSet<String>,
    name: &str,
    qualifier: Option<&str>,
) -> String {
    let candidates = std::iter::once(name.to_string())
        .chain(qualifier.map(|q| format!("{q}.{name}")))
        .chain((2..).map(|n| format!("{name}_{n}")));
    for candidate in candidates {
        if taken.insert(candidate.clone()) {
            return candidate;
        }
    }
    unreachable!("the candidates are endless")
}
