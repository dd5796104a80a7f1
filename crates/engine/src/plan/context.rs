//! What DataFusion's SQL planner may resolve: the catalog's tables and the session's functions.
//!
//! DataFusion's own `SessionState::create_logical_plan` is async (it resolves tables through
//! async catalogs), and blocking on it panics inside another executor, which is exactly where
//! an embedding program calls the engine from. The catalog is known up front, so planning
//! here is synchronous.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion_common::config::ConfigOptions;
use datafusion_common::{TableReference, plan_datafusion_err};
use datafusion_expr::planner::{ContextProvider, ExprPlanner};
use datafusion_expr::{AggregateUDF, HigherOrderUDF, ScalarUDF, TableSource, WindowUDF};

use super::session::Session;
use crate::schema::Catalog;

pub struct Context<'a> {
    session: &'a Session,
    tables: HashMap<String, Arc<dyn TableSource>>,
}

impl<'a> Context<'a> {
    pub fn new(session: &'a Session, catalog: &Catalog) -> Self {
        let tables = catalog
            .tables
            .iter()
            .map(|t| {
                let source: Arc<dyn TableSource> = Arc::new(Table(t.arrow_schema()));
                (t.name.clone(), source)
            })
            .collect();
        Self { session, tables }
    }
}

/// A table as planning sees it: its columns. Filters are not pushed into its scans (the
/// trait's default), so they stay operators of the plan and the columns they read are kept.
struct Table(SchemaRef);

impl TableSource for Table {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.0)
    }
}

impl ContextProvider for Context<'_> {
    /// Tables resolve by name whatever the schema qualifier (`public.orders` is `orders`):
    /// a job reads one database.
    fn get_table_source(
        &self,
        name: TableReference,
    ) -> datafusion_common::error::Result<Arc<dyn TableSource>> {
        self.tables
            .get(name.table())
            .cloned()
            .ok_or_else(|| plan_datafusion_err!("table '{name}' not found"))
    }

    fn get_expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        self.session.expr_planners()
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.session.scalar_functions().get(name)
    }

    /// DataFusion's higher-order functions are its nested (array) ones, which a job has not.
    fn get_higher_order_meta(&self, _name: &str) -> Option<Arc<HigherOrderUDF>> {
        None
    }

    fn get_aggregate_meta(&self, name: &str) -> Option<Arc<AggregateUDF>> {
        self.session.aggregate_functions().get(name)
    }

    fn get_window_meta(&self, name: &str) -> Option<Arc<WindowUDF>> {
        self.session.window_functions().get(name)
    }

    fn get_variable_type(&self, _variable_names: &[String]) -> Option<DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        self.session.config_options()
    }

    fn udf_names(&self) -> Vec<String> {
        self.session.scalar_functions().names()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udaf_names(&self) -> Vec<String> {
        self.session.aggregate_functions().names()
    }

    fn udwf_names(&self) -> Vec<String> {
        self.session.window_functions().names()
    }
}
