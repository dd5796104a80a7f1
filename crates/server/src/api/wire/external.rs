//! The schemas of what other crates serialize into the API's answers (the engine's output
//! format and ordering, the PostgreSQL connector's status, preflight and catalog): those
//! crates know nothing of OpenAPI, so their wire shapes are stated here, and a test holds
//! each to what the type really serializes.

use utoipa::ToSchema;

/// `eddy_engine::Format`: the shape of the job's output records.
#[derive(ToSchema)]
pub enum FormatName {
    #[schema(rename = "upsert")]
    Upsert,
    #[schema(rename = "debezium")]
    Debezium,
    #[schema(rename = "debezium-u")]
    DebeziumUpdate,
}

/// `eddy_engine::normalize::TableOrder`: how one source table's changes were ordered.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct TableOrderSchema {
    pub table: String,
    /// `sourcePosition`, `arrival`, or `noEventsYet`.
    pub by: String,
    /// Why some or all events were applied in arrival order.
    pub reason: Option<String>,
    pub positioned_events: u64,
    pub arrival_events: u64,
    pub superseded_events: u64,
}

/// `eddy_postgres::connector::State`.
#[derive(ToSchema)]
#[schema(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConnectorStateName {
    Starting,
    Snapshotting,
    Streaming,
    Failed,
}

/// `eddy_postgres::connector::Status`: what one of Eddy's own connectors is doing.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct ConnectorStatusSchema {
    pub state: ConnectorStateName,
    pub snapshot_tables: u64,
    pub snapshot_tables_done: u64,
    pub snapshot_rows: u64,
    pub streamed_events: u64,
    /// The last LSN confirmed to PostgreSQL.
    pub confirmed_lsn: Option<String>,
    pub error: Option<String>,
}

/// `eddy_postgres::preflight::Outcome`.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum OutcomeName {
    Pass,
    Warn,
    Fail,
    Skipped,
}

/// `eddy_postgres::preflight::Check`: one preflight check.
#[derive(ToSchema)]
pub struct CheckSchema {
    /// `sslmode`, `reachable`, `authenticated`, `wal_level`, `replication_role`,
    /// `replication_slot`, `publication`, or `table <schema>.<name>`.
    pub name: String,
    pub outcome: OutcomeName,
    pub reason: String,
}

/// `eddy_postgres::catalog::TableSummary`: a table of a connector's database.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct TableSummarySchema {
    pub name: String,
    /// The planner's estimate; `-1` before the table was first analyzed.
    pub row_estimate: i64,
    /// Heap, indexes and TOAST, in bytes.
    pub size_bytes: i64,
}

/// `eddy_postgres::catalog::ColumnSummary`: a column of a connector's table.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct ColumnSummarySchema {
    pub name: String,
    /// As `format_type` prints it: `numeric(12,2)`.
    pub r#type: String,
    pub nullable: bool,
    pub primary_key: bool,
}
