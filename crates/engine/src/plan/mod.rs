//! SQL → incremental plan: DataFusion plans and optimizes, Eddy compiles the result.
//!
//! The query is planned by DataFusion against the catalog's tables (its SQL planner, type
//! coercion and optimizer, so names, types and semantics are DataFusion's), and the optimized
//! `LogicalPlan` is compiled node by node into [`ops`](crate::ops). Every node type is either
//! compiled into an operator that maintains it exactly or refused with an error naming the
//! construct: a query is never half-supported.
//!
//! Projection pushdown decides the state: a source keeps only the columns its scans read,
//! plus its primary key.

pub mod admit;
mod context;
mod function_names;
pub mod functions;
mod guards;
mod in_nulls;
mod join;
mod registry;
mod scalar;
mod session;
pub mod time_windows;
mod topn;
mod union;
mod unnest;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion_common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion_common::{DFSchema, DFSchemaRef};
use datafusion_expr::expr::AggregateFunction;
use datafusion_expr::{Expr, ExprSchemable, LogicalPlan, Volatility};
use datafusion_physical_expr::PhysicalExpr;

use crate::error::{Error, Result};
use crate::ops::aggregate::{AggregateCall, AggregateOp, AggregateSpec, Function, SumKind};
use crate::ops::filter::FilterOp;
use crate::ops::project::ProjectOp;
use crate::ops::{Input, Node};
use crate::rows::RowCodec;
use crate::schema::Catalog;
use crate::temporal::Guard;
use session::Session;

/// A source table as the plan reads it.
#[derive(Debug, Clone)]
pub struct Source {
    /// Index into the catalog's tables.
    pub table: usize,
    /// Columns kept (indices into the table's columns, ascending): those read, plus the key.
    pub columns: Vec<usize>,
    /// Positions of the primary key within `columns`; empty when the table has none.
    pub key_positions: Vec<usize>,
    /// Per kept column, what the query's computations demand of its values (temporal
    /// columns it computes on; see `guards`).
    pub guards: Vec<Option<Guard>>,
}

/// A compiled query.
#[derive(Debug)]
pub struct Plan {
    pub root: Node,
    pub sources: Vec<Source>,
    /// The result's columns.
    pub value_fields: Vec<FieldRef>,
    /// The columns identifying a result row.
    pub key_fields: Vec<FieldRef>,
}

/// Plans `sql` over `catalog` into an incremental plan, or says what makes it impossible.
pub fn plan(catalog: &Catalog, sql: &str) -> Result<Plan> {
    let state = session();
    let logical = logical_plan(&state, catalog, sql)?;
    refuse_time_dependent(&logical)?;
    in_nulls::refuse_unknown_in(&logical)?;
    let optimized = state
        .optimize(&logical)
        .map_err(|e| Error::Query(e.strip_backtrace()))?;
    let optimized = scalar::subqueries_to_joins(optimized)?;
    let mut sources = sources(catalog, &optimized)?;
    for source in &mut sources {
        let mut found = guards::guards(&optimized, &catalog.tables[source.table])?;
        source.guards = source.columns.iter().map(|c| found.remove(c)).collect();
    }
    let compiler = Compiler {
        state: &state,
        catalog,
        sources: &sources,
    };
    let compiled = compiler.compile(&optimized)?;
    let key_fields = compiled.key.ok_or_else(|| {
        Error::not_incremental(
            "a query without GROUP BY over a table without a primary key",
            Some("its result rows have no key to update or delete them by".into()),
        )
    })?;
    Ok(Plan {
        root: compiled.node,
        sources,
        value_fields: compiled.schema.fields().iter().cloned().collect(),
        key_fields,
    })
}

fn session() -> Session {
    // Its rewrite of COUNT(DISTINCT x) into two aggregations is right, but the distinct
    // multiset per group that the aggregate keeps is smaller state.
    Session::new(
        time_windows::udfs(),
        functions::udafs(),
        &["single_distinct_aggregation_to_group_by"],
    )
}

/// Parses one SQL statement and plans it against the catalog.
fn logical_plan(state: &Session, catalog: &Catalog, sql: &str) -> Result<LogicalPlan> {
    let query_error =
        |e: datafusion_common::error::DataFusionError| Error::Query(e.strip_backtrace());
    admit::check_length(sql)?;
    let statement = state.sql_to_statement(sql).map_err(admit::parse_error)?;
    admit::check(&statement)?;
    let statement = time_windows::rewrite(statement)?;
    let context = context::Context::new(state, catalog);
    let options = datafusion_sql::planner::ParserOptions {
        enable_ident_normalization: state.config_options().sql_parser.enable_ident_normalization,
        ..Default::default()
    };
    datafusion_sql::planner::SqlToRel::new_with_options(&context, options)
        .statement_to_plan(statement)
        .map_err(query_error)
}

/// Refuses functions whose value depends on when they are evaluated (`now()`, `random()`):
/// a retraction must recompute exactly what its insertion computed.
fn refuse_time_dependent(plan: &LogicalPlan) -> Result<()> {
    let mut found = None;
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::ScalarFunction(f) = e
                    && f.func.signature().volatility != Volatility::Immutable
                {
                    found = Some(f.func.name().to_string());
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })
    .map_err(|e| Error::Query(e.strip_backtrace()))?;
    match found {
        Some(name) => Err(Error::not_incremental(
            format!("function `{name}()`"),
            Some("its value depends on when it is evaluated".into()),
        )),
        None => Ok(()),
    }
}

/// One source per scanned table, keeping the union of what its scans read.
fn sources(catalog: &Catalog, plan: &LogicalPlan) -> Result<Vec<Source>> {
    let mut read: HashMap<usize, BTreeSet<usize>> = HashMap::new();
    plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let table = catalog
                .table_index(scan.table_name.table())
                .map_err(|e| datafusion_common::error::DataFusionError::Plan(e.to_string()))?;
            let columns = read.entry(table).or_default();
            match &scan.projection {
                Some(projection) => columns.extend(projection.iter().copied()),
                None => columns.extend(0..catalog.tables[table].columns.len()),
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(|e| Error::Query(e.strip_backtrace()))?;
    let mut sources: Vec<Source> = read
        .into_iter()
        .map(|(table, mut columns)| {
            let pk = &catalog.tables[table].primary_key;
            columns.extend(pk.iter().copied());
            let columns: Vec<usize> = columns.into_iter().collect();
            let key_positions = pk
                .iter()
                .filter_map(|k| columns.iter().position(|c| c == k))
                .collect();
            Source {
                table,
                guards: vec![None; columns.len()],
                columns,
                key_positions,
            }
        })
        .collect();
    sources.sort_by_key(|s| s.table);
    Ok(sources)
}

/// A compiled subtree: its operator tree, visible schema and key columns.
struct Compiled {
    node: Node,
    schema: DFSchemaRef,
    /// `None` when rows have no identity (a scan of a table without a primary key).
    key: Option<Vec<FieldRef>>,
}

impl Compiled {
    fn width(&self) -> usize {
        self.schema.fields().len() + self.key.as_ref().map_or(0, Vec::len)
    }

    /// The batch schema: visible columns then key columns.
    fn batch_schema(schema: &DFSchema, key: Option<&Vec<FieldRef>>) -> SchemaRef {
        let mut fields: Vec<FieldRef> = schema.fields().iter().cloned().collect();
        fields.extend(key.into_iter().flatten().map(|f| {
            Arc::new(Field::new(
                format!("__key.{}", f.name()),
                f.data_type().clone(),
                true,
            ))
        }));
        Arc::new(Schema::new(fields))
    }
}

struct Compiler<'a> {
    state: &'a Session,
    catalog: &'a Catalog,
    sources: &'a [Source],
}

impl Compiler<'_> {
    fn compile(&self, plan: &LogicalPlan) -> Result<Compiled> {
        match plan {
            LogicalPlan::TableScan(scan) => self.scan(scan),
            LogicalPlan::Projection(p) => {
                let input = self.compile(&p.input)?;
                let exprs = self.physical_all(&p.expr, input.schema.as_ref())?;
                let visible = input.schema.fields().len();
                let carried = (visible..input.width()).collect();
                let schema = Compiled::batch_schema(&p.schema, input.key.as_ref());
                Ok(Compiled {
                    node: Node::new(
                        ProjectOp::new(exprs, carried, schema),
                        vec![Input::Node(Box::new(input.node))],
                    ),
                    schema: p.schema.clone(),
                    key: input.key,
                })
            }
            LogicalPlan::Filter(f) if topn::over_window(f) => self.ranked(f),
            LogicalPlan::Filter(f) => {
                let input = self.compile(&f.input)?;
                self.filter(input, f.predicate.clone())
            }
            LogicalPlan::Aggregate(a) => self.aggregate(a),
            LogicalPlan::SubqueryAlias(alias) => {
                let input = self.compile(&alias.input)?;
                Ok(Compiled {
                    schema: alias.schema.clone(),
                    ..input
                })
            }
            LogicalPlan::Sort(sort) if sort.fetch.is_none() => self.compile(&sort.input),
            LogicalPlan::Sort(sort) => self.top_n(sort, 0, sort.fetch),
            LogicalPlan::Limit(limit) => self.limit(limit),
            LogicalPlan::Join(join) => self.join(join),
            LogicalPlan::Window(window) => self.window(window),
            LogicalPlan::Union(union) => self.union(union),
            LogicalPlan::Distinct(_) => Err(Error::not_incremental("DISTINCT ON", None)),
            LogicalPlan::Subquery(_) => Err(Error::not_incremental("subqueries", None)),
            LogicalPlan::Unnest(unnest) => self.unnest(unnest),
            LogicalPlan::RecursiveQuery(_) => Err(Error::not_incremental(
                "recursive queries (WITH RECURSIVE)",
                None,
            )),
            LogicalPlan::EmptyRelation(_) | LogicalPlan::Values(_) => Err(Error::not_incremental(
                "a query that reads no source table",
                None,
            )),
            other => Err(Error::Query(format!(
                "only SELECT queries can run as jobs, not {}",
                other.display()
            ))),
        }
    }

    fn physical(&self, expr: &Expr, schema: &DFSchema) -> Result<Arc<dyn PhysicalExpr>> {
        let has_subquery = expr
            .exists(|e| {
                Ok(matches!(
                    e,
                    Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)
                ))
            })
            .unwrap_or(false);
        if has_subquery {
            return Err(Error::not_incremental("subqueries", None));
        }
        self.state
            .create_physical_expr(expr.clone(), schema)
            .map_err(|e| Error::Query(e.strip_backtrace()))
    }

    fn physical_all(
        &self,
        exprs: &[Expr],
        schema: &DFSchema,
    ) -> Result<Vec<Arc<dyn PhysicalExpr>>> {
        exprs.iter().map(|e| self.physical(e, schema)).collect()
    }

    fn filter(&self, input: Compiled, predicate: Expr) -> Result<Compiled> {
        let predicate = self.physical(&predicate, input.schema.as_ref())?;
        let schema = Compiled::batch_schema(&input.schema, input.key.as_ref());
        Ok(Compiled {
            node: Node::new(
                FilterOp::new(predicate, schema),
                vec![Input::Node(Box::new(input.node))],
            ),
            schema: input.schema,
            key: input.key,
        })
    }

    fn scan(&self, scan: &datafusion_expr::TableScan) -> Result<Compiled> {
        if scan.fetch.is_some() {
            return Err(Error::not_incremental("LIMIT", None));
        }
        let table_index = self.catalog.table_index(scan.table_name.table())?;
        let table = &self.catalog.tables[table_index];
        let (source_index, source) = self
            .sources
            .iter()
            .enumerate()
            .find(|(_, s)| s.table == table_index)
            .ok_or_else(|| Error::Query(format!("table `{}` has no source", table.name)))?;
        let projection: Vec<usize> = match &scan.projection {
            Some(p) => p.clone(),
            None => (0..table.columns.len()).collect(),
        };
        let position = |column: usize| source.columns.iter().position(|c| *c == column);
        let mut carried: Vec<usize> = projection.iter().filter_map(|&c| position(c)).collect();
        let key = if table.primary_key.is_empty() {
            None
        } else {
            carried.extend(source.key_positions.iter().copied());
            Some(
                table
                    .primary_key
                    .iter()
                    .map(|&c| {
                        let column = &table.columns[c];
                        Arc::new(Field::new(&column.name, column.data_type.clone(), false))
                    })
                    .collect::<Vec<FieldRef>>(),
            )
        };
        let schema = Compiled::batch_schema(&scan.projected_schema, key.as_ref());
        let compiled = Compiled {
            node: Node::new(
                ProjectOp::new(Vec::new(), carried, schema),
                vec![Input::Source(source_index)],
            ),
            schema: scan.projected_schema.clone(),
            key,
        };
        match datafusion_expr::utils::conjunction(scan.filters.iter().cloned()) {
            Some(predicate) => self.filter(compiled, predicate),
            None => Ok(compiled),
        }
    }

    fn aggregate(&self, a: &datafusion_expr::Aggregate) -> Result<Compiled> {
        if a.group_expr
            .iter()
            .any(|e| matches!(e, Expr::GroupingSet(_)))
        {
            return Err(Error::not_incremental(
                "GROUPING SETS / ROLLUP / CUBE",
                None,
            ));
        }
        let input = self.compile(&a.input)?;
        let input_schema = input.schema.as_ref();
        let group_exprs = self.physical_all(&a.group_expr, input_schema)?;
        let group_fields: Vec<FieldRef> = a
            .schema
            .fields()
            .iter()
            .take(a.group_expr.len())
            .cloned()
            .collect();
        let group_codec =
            RowCodec::for_equality(group_fields.iter().map(|f| f.data_type().clone()).collect())?;
        let calls = a
            .aggr_expr
            .iter()
            .enumerate()
            .map(|(i, expr)| {
                let field = a.schema.field(a.group_expr.len() + i);
                self.aggregate_call(expr, input_schema, field)
            })
            .collect::<Result<Vec<_>>>()?;
        let key = Some(group_fields);
        let schema = Compiled::batch_schema(&a.schema, key.as_ref());
        Ok(Compiled {
            node: Node::new(
                AggregateOp::new(group_exprs, group_codec, calls, schema),
                vec![Input::Node(Box::new(input.node))],
            ),
            schema: a.schema.clone(),
            key,
        })
    }

    fn aggregate_call(
        &self,
        expr: &Expr,
        input: &DFSchema,
        field: &Field,
    ) -> Result<AggregateCall> {
        let output = field.data_type().clone();
        let Expr::AggregateFunction(AggregateFunction { func, params }) = unalias(expr) else {
            return Err(Error::Query(format!(
                "unexpected aggregate expression {expr}"
            )));
        };
        let name = func.name();
        let function = match name {
            "count" => Function::Count,
            "sum" => Function::Sum,
            "avg" => Function::Avg,
            "min" | "bool_and" => Function::Min,
            "max" | "bool_or" => Function::Max,
            other => {
                return Err(Error::not_incremental(
                    format!("aggregate function `{other}`"),
                    Some("supported: COUNT, SUM, AVG, MIN, MAX, BOOL_AND, BOOL_OR".into()),
                ));
            }
        };
        if !params.order_by.is_empty() {
            return Err(Error::not_incremental(
                format!("`{name}(... ORDER BY ...)`"),
                None,
            ));
        }
        let [arg] = params.args.as_slice() else {
            return Err(Error::not_incremental(
                format!("`{name}` with {} arguments", params.args.len()),
                None,
            ));
        };
        let arg_type = arg
            .get_type(input)
            .map_err(|e| Error::Query(e.strip_backtrace()))?;
        // Integers and `Decimal128`s order and compare as `i128`s: MIN, MAX and DISTINCT keep
        // those, not row bytes.
        let ints = SumKind::for_type(&arg_type).is_some_and(|(kind, _)| kind == SumKind::Int);
        let sum_kind = match function {
            Function::Sum | Function::Avg => Some(
                SumKind::for_type(&arg_type)
                    .ok_or_else(|| Error::Query(format!("`{name}` of type {arg_type}")))?
                    .0,
            ),
            Function::Min | Function::Max => ints.then_some(SumKind::Int),
            Function::Count => None,
        };
        let keeps_values = match function {
            Function::Min | Function::Max => !ints,
            _ => params.distinct && !ints,
        };
        let values = keeps_values
            .then(|| RowCodec::for_equality(vec![arg_type.clone()]))
            .transpose()?;
        let input_scale = match arg_type {
            DataType::Decimal128(_, s) | DataType::Decimal256(_, s) => s,
            _ => 0,
        };
        let filter = params
            .filter
            .as_ref()
            .map(|f| self.physical(f, input))
            .transpose()?;
        Ok(AggregateCall {
            arg: self.physical(arg, input)?,
            filter,
            spec: AggregateSpec {
                function,
                distinct: params.distinct,
                sum_kind,
                output,
                values,
                int_values: params.distinct && ints,
                input_scale,
                label: field.name().clone(),
            },
        })
    }
}

fn unalias(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => unalias(&alias.expr),
        other => other,
    }
}
