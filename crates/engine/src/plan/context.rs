//! What DataFusion's SQL planner may resolve: the catalog's tables and the session's functions.
//!
//! DataFusion's own `SessionState::create_logical_plan` is async (it resolves tables through
//! async catalogs), and blocking on it panics inside another executor, which is exactly where
//! an embedding program calls the engine from. The catalog is known up front, so planning
//! here is synchronous.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::empty::EmptyTable;
use datafusion::common::config::ConfigOptions;
use datafusion::common::{TableReference, plan_datafusion_err};
use datafusion::datasource::provider_as_source;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::planner::{ContextProvider, ExprPlanner};
use datafusion::logical_expr::{AggregateUDF, HigherOrderUDF, ScalarUDF, TableSource, WindowUDF};

use crate::schema::Catalog;

pub struct Context<'a> {
    state: &'a SessionState,
    tables: HashMap<String, Arc<dyn TableSource>>,
}

impl<'a> Context<'a> {
    pub fn new(state: &'a SessionState, catalog: &Catalog) -> Self {
        let tables = catalog
            .tables
            .iter()
            .map(|t| {
                let source = provider_as_source(Arc::new(EmptyTable::new(t.arrow_schema())));
                (t.name.clone(), source)
            })
            .collect();
        Self { state, tables }
    }
}

impl ContextProvider for Context<'_> {
    /// Tables resolve by name whatever the schema qualifier (`public.orders` is `orders`):
    /// a job reads one database.
    fn get_table_source(
        &self,
        name: TableReference,
    ) -> datafusion::error::Result<Arc<dyn TableSource>> {
        self.tables
            .get(name.table())
            .cloned()
            .ok_or_else(|| plan_datafusion_err!("table '{name}' not found"))
    }

    fn get_expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        self.state.expr_planners()
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.state.scalar_functions().get(name).cloned()
    }

    fn get_higher_order_meta(&self, name: &str) -> Option<Arc<HigherOrderUDF>> {
        self.state.higher_order_functions().get(name).cloned()
    }

    fn get_aggregate_meta(&self, name: &str) -> Option<Arc<AggregateUDF>> {
        self.state.aggregate_functions().get(name).cloned()
    }

    fn get_window_meta(&self, name: &str) -> Option<Arc<WindowUDF>> {
        self.state.window_functions().get(name).cloned()
    }

    fn get_variable_type(&self, _variable_names: &[String]) -> Option<DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        self.state.config_options()
    }

    fn udf_names(&self) -> Vec<String> {
        self.state.scalar_functions().keys().cloned().collect()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        self.state
            .higher_order_functions()
            .keys()
            .cloned()
            .collect()
    }

    fn udaf_names(&self) -> Vec<String> {
        self.state.aggregate_functions().keys().cloned().collect()
    }

    fn udwf_names(&self) -> Vec<String> {
        self.state.window_functions().keys().cloned().collect()
    }
}
