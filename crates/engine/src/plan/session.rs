//! The planner's session: DataFusion's parser, analyzer, optimizer and functions, no executor.
//!
//! DataFusion's `SessionState` carries the whole batch engine (physical planner, physical
//! optimizer, file formats, object stores, runtime). A job needs none of it, and holding it
//! links all of it into every binary and builds its registries at every plan. This session is
//! what planning reads of a `SessionState` built with DataFusion's default features, the same
//! functions, planners and rules, so SQL means the same here as in DataFusion's batch engine
//! (which the tests run as the oracle); the functions are built as a query names them
//! ([`Registry`]).

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion_common::alias::AliasGenerator;
use datafusion_common::config::{ConfigOptions, Dialect};
use datafusion_common::{DFSchema, Result, not_impl_err, plan_datafusion_err};
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion_expr::planner::ExprPlanner;
use datafusion_expr::registry::FunctionRegistry;
use datafusion_expr::simplify::SimplifyContext;
use datafusion_expr::{AggregateUDF, Expr, HigherOrderUDF, LogicalPlan, ScalarUDF, WindowUDF};
use datafusion_functions::core::planner::CoreFunctionPlanner;
use datafusion_functions::datetime::planner::DatetimeFunctionPlanner;
use datafusion_functions::unicode::planner::UnicodeFunctionPlanner;
use datafusion_functions_aggregate::planner::AggregateFunctionPlanner;
use datafusion_functions_window::planner::WindowFunctionPlanner;
use datafusion_optimizer::simplify_expressions::ExprSimplifier;
use datafusion_optimizer::{Analyzer, Optimizer, OptimizerConfig};
use datafusion_physical_expr::{PhysicalExpr, create_physical_expr};
use datafusion_sql::parser::{DFParserBuilder, Statement};
use datafusion_sql::sqlparser::dialect::dialect_from_str;

use super::function_names::{AGGREGATE_NAMES, SCALAR_NAMES, WINDOW_NAMES};
use super::registry::{AGGREGATE_GROUPS, Named, Registry, SCALAR_GROUPS, WINDOW_GROUPS};

/// Functions, planners and rules for planning one query.
pub struct Session {
    options: Arc<ConfigOptions>,
    scalar: Registry<ScalarUDF>,
    aggregate: Registry<AggregateUDF>,
    window: Registry<WindowUDF>,
    planners: Vec<Arc<dyn ExprPlanner>>,
    analyzer: Analyzer,
    optimizer: Optimizer,
    props: ExecutionProps,
}

impl Session {
    /// DataFusion's defaults, with `scalar` and `aggregate` registered over them (a function
    /// of the same name replaces DataFusion's) and the optimizer rules named in `without_rules`
    /// left out.
    pub fn new(
        scalar: Vec<ScalarUDF>,
        aggregate: Vec<AggregateUDF>,
        without_rules: &[&str],
    ) -> Self {
        let rules = Optimizer::new()
            .rules
            .into_iter()
            .filter(|rule| !without_rules.contains(&rule.name()))
            .collect();
        Self {
            options: Arc::new(ConfigOptions::default()),
            scalar: Registry::new(
                SCALAR_GROUPS,
                SCALAR_NAMES,
                scalar.into_iter().map(Arc::new),
            ),
            aggregate: Registry::new(
                AGGREGATE_GROUPS,
                AGGREGATE_NAMES,
                aggregate.into_iter().map(Arc::new),
            ),
            window: Registry::new(WINDOW_GROUPS, WINDOW_NAMES, []),
            planners: vec![
                Arc::new(CoreFunctionPlanner::default()),
                Arc::new(DatetimeFunctionPlanner),
                Arc::new(UnicodeFunctionPlanner),
                Arc::new(AggregateFunctionPlanner),
                Arc::new(WindowFunctionPlanner),
            ],
            analyzer: Analyzer::new(),
            optimizer: Optimizer::with_rules(rules),
            props: ExecutionProps::new(),
        }
    }

    /// The session's options.
    pub fn config_options(&self) -> &ConfigOptions {
        &self.options
    }

    /// The expression planners SQL planning consults (operators, `extract`, `position`, …).
    pub fn expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        &self.planners
    }

    /// Scalar functions by name and alias.
    pub fn scalar_functions(&self) -> &Registry<ScalarUDF> {
        &self.scalar
    }

    /// Aggregate functions by name and alias.
    pub fn aggregate_functions(&self) -> &Registry<AggregateUDF> {
        &self.aggregate
    }

    /// Window functions by name and alias.
    pub fn window_functions(&self) -> &Registry<WindowUDF> {
        &self.window
    }

    /// Parses exactly one statement of `sql` in the session's dialect.
    pub fn sql_to_statement(&self, sql: &str) -> Result<Statement> {
        let dialect: Dialect = self.options.sql_parser.dialect;
        let dialect = dialect_from_str(dialect).ok_or_else(|| {
            plan_datafusion_err!(
                "Unsupported SQL dialect: {dialect}. Available dialects: {}.",
                Dialect::available()
            )
        })?;
        let mut statements = DFParserBuilder::new(sql)
            .with_dialect(dialect.as_ref())
            .with_recursion_limit(self.options.sql_parser.recursion_limit.get())
            .build()?
            .parse_statements()?;
        if statements.len() > 1 {
            return not_impl_err!("The context currently only supports a single SQL statement");
        }
        statements.pop_front().ok_or_else(|| {
            plan_datafusion_err!("No SQL statements were provided in the query string")
        })
    }

    /// Analyzes (type coercion) then optimizes a logical plan.
    pub fn optimize(&self, plan: &LogicalPlan) -> Result<LogicalPlan> {
        let analyzed = self
            .analyzer
            .execute_and_check(plan.clone(), &self.options, |_, _| {})?;
        self.optimizer.optimize(analyzed, self, |_, _| {})
    }

    /// An expression over `schema` as an evaluable physical expression, coerced and
    /// simplified first.
    pub fn create_physical_expr(
        &self,
        expr: Expr,
        schema: &DFSchema,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let context = SimplifyContext::builder()
            .with_schema(Arc::new(schema.clone()))
            .with_config_options(Arc::clone(&self.options))
            .with_query_execution_start_time(self.props.query_execution_start_time)
            .build();
        let expr = ExprSimplifier::new(context).coerce(expr, schema)?;
        create_physical_expr(
            &expr,
            schema,
            &self.props,
            &PhysicalPlanningContext::default(),
        )
    }
}

/// What optimizer rules ask of the session: the options, the alias generator and, to find
/// the functions a rewrite introduces, the functions.
impl OptimizerConfig for Session {
    fn query_execution_start_time(&self) -> Option<DateTime<Utc>> {
        self.props.query_execution_start_time
    }

    fn alias_generator(&self) -> &Arc<AliasGenerator> {
        &self.props.alias_generator
    }

    fn options(&self) -> Arc<ConfigOptions> {
        Arc::clone(&self.options)
    }

    fn function_registry(&self) -> Option<&dyn FunctionRegistry> {
        Some(self)
    }
}

impl FunctionRegistry for Session {
    fn udfs(&self) -> HashSet<String> {
        self.scalar.names().into_iter().collect()
    }

    fn higher_order_function_names(&self) -> HashSet<String> {
        HashSet::new()
    }

    fn udafs(&self) -> HashSet<String> {
        self.aggregate.names().into_iter().collect()
    }

    fn udwfs(&self) -> HashSet<String> {
        self.window.names().into_iter().collect()
    }

    fn udf(&self, name: &str) -> Result<Arc<ScalarUDF>> {
        lookup(&self.scalar, "scalar", name)
    }

    fn higher_order_function(&self, name: &str) -> Result<Arc<HigherOrderUDF>> {
        Err(plan_datafusion_err!(
            "there is no higher-order function named '{name}'"
        ))
    }

    fn udaf(&self, name: &str) -> Result<Arc<AggregateUDF>> {
        lookup(&self.aggregate, "aggregate", name)
    }

    fn udwf(&self, name: &str) -> Result<Arc<WindowUDF>> {
        lookup(&self.window, "window", name)
    }

    fn expr_planners(&self) -> Vec<Arc<dyn ExprPlanner>> {
        self.planners.clone()
    }
}

fn lookup<F: Named>(functions: &Registry<F>, kind: &str, name: &str) -> Result<Arc<F>> {
    functions
        .get(name)
        .ok_or_else(|| plan_datafusion_err!("there is no {kind} function named '{name}'"))
}
