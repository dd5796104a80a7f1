//! The planner's session: DataFusion's parser, analyzer, optimizer and functions, no executor.
//!
//! DataFusion's `SessionState` carries the whole batch engine (physical planner, physical
//! optimizer, file formats, object stores, runtime). A job needs none of it, and holding it
//! links all of it into every binary and builds its registries at every plan. This session is
//! what planning reads of a `SessionState` built with DataFusion's default features, the same
//! functions, planners and rules, so SQL means the same here as in DataFusion's batch engine
//! (which the tests run as the oracle).

use std::collections::{HashMap, HashSet};
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

/// Functions, planners and rules for planning one query.
pub struct Session {
    options: Arc<ConfigOptions>,
    scalar: HashMap<String, Arc<ScalarUDF>>,
    aggregate: HashMap<String, Arc<AggregateUDF>>,
    window: HashMap<String, Arc<WindowUDF>>,
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
        let scalar = datafusion_functions::all_default_functions()
            .into_iter()
            .chain(scalar.into_iter().map(Arc::new));
        let aggregate = datafusion_functions_aggregate::all_default_aggregate_functions()
            .into_iter()
            .chain(aggregate.into_iter().map(Arc::new));
        let window = datafusion_functions_window::all_default_window_functions();
        let rules = Optimizer::new()
            .rules
            .into_iter()
            .filter(|rule| !without_rules.contains(&rule.name()))
            .collect();
        Self {
            options: Arc::new(ConfigOptions::default()),
            scalar: by_name(scalar, |f| (f.name(), f.aliases())),
            aggregate: by_name(aggregate, |f| (f.name(), f.aliases())),
            window: by_name(window, |f| (f.name(), f.aliases())),
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
    pub fn scalar_functions(&self) -> &HashMap<String, Arc<ScalarUDF>> {
        &self.scalar
    }

    /// Aggregate functions by name and alias.
    pub fn aggregate_functions(&self) -> &HashMap<String, Arc<AggregateUDF>> {
        &self.aggregate
    }

    /// Window functions by name and alias.
    pub fn window_functions(&self) -> &HashMap<String, Arc<WindowUDF>> {
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

/// Each function under its name and under each of its aliases; a later one replaces an
/// earlier one of the same name.
fn by_name<F>(
    functions: impl IntoIterator<Item = Arc<F>>,
    names: impl Fn(&F) -> (&str, &[String]),
) -> HashMap<String, Arc<F>> {
    let mut map = HashMap::new();
    for function in functions {
        let (name, aliases) = names(&function);
        for alias in aliases {
            map.insert(alias.clone(), Arc::clone(&function));
        }
        map.insert(name.to_string(), function);
    }
    map
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
        self.scalar.keys().cloned().collect()
    }

    fn higher_order_function_names(&self) -> HashSet<String> {
        HashSet::new()
    }

    fn udafs(&self) -> HashSet<String> {
        self.aggregate.keys().cloned().collect()
    }

    fn udwfs(&self) -> HashSet<String> {
        self.window.keys().cloned().collect()
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

fn lookup<F>(functions: &HashMap<String, Arc<F>>, kind: &str, name: &str) -> Result<Arc<F>> {
    functions
        .get(name)
        .cloned()
        .ok_or_else(|| plan_datafusion_err!("there is no {kind} function named '{name}'"))
}
