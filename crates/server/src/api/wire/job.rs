//! A job as the API shows it (never with a password), with its connector's progress.

use std::collections::BTreeMap;

use eddy_engine::Format;
use eddy_engine::normalize::TableOrder;
use serde::Serialize;
use utoipa::ToSchema;

use super::NewToken;
use super::external::{FormatName, TableOrderSchema};
use crate::service::Service;
use crate::supervisor::{JobState, JobView};

/// A job: its definition, state and counters.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobBody {
    pub id: String,
    pub name: String,
    pub status: JobState,
    /// Why the job last failed.
    pub error: Option<String>,
    pub restarts: u32,
    pub environment_id: String,
    /// The connection string with its password replaced.
    pub connection: String,
    pub connector: JobConnector,
    #[schema(value_type = FormatName)]
    pub format: Format,
    pub sql_query: String,
    pub input_topics: Vec<String>,
    pub output_topic: String,
    pub dead_letter_topic: String,
    pub records_in: u64,
    pub records_out: u64,
    /// Records sent to the dead-letter topic (poison pills included).
    pub dead_letters: u64,
    /// Dead letters the dead-letter topic refused; those records are skipped.
    pub dead_letter_failures: u64,
    /// Records skipped because they failed the job on every try.
    pub poison_pills: u64,
    /// Messages not read yet, once measured.
    pub lag: Option<i64>,
    /// `lag` per topic, then partition (its number, as JSON keys are strings).
    #[schema(value_type = BTreeMap<String, BTreeMap<String, i64>>)]
    pub lag_by_partition: BTreeMap<String, BTreeMap<i32, i64>>,
    /// When `lag` was measured (milliseconds since the Unix epoch).
    pub lag_measured_ms: Option<u64>,
    /// Milliseconds since the Unix epoch.
    pub last_checkpoint_ms: Option<u64>,
    /// Topic → partition (its number, as JSON keys are strings) → the next offset to read,
    /// as of the last checkpoint.
    #[schema(value_type = BTreeMap<String, BTreeMap<String, i64>>)]
    pub checkpoint_offsets: BTreeMap<String, BTreeMap<i32, i64>>,
    /// Input topics that do not exist yet.
    pub waiting_for_topics: Vec<String>,
    /// Per source table, how its changes are ordered.
    #[schema(value_type = Vec<TableOrderSchema>)]
    pub ordering: Vec<TableOrder>,
}

/// The job's connector and, for one of Eddy's own, its progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobConnector {
    pub name: String,
    /// Kafka Connect's state, the own connector's (`SNAPSHOTTING`, `STREAMING`, `FAILED`),
    /// or `unmanaged`.
    pub state: String,
    #[serde(flatten)]
    #[schema(value_type = ConnectorProgress)]
    pub progress: Option<ConnectorProgress>,
}

/// How far one of Eddy's own connectors has come; there only for one of them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorProgress {
    /// WAL the slot keeps that the connector has not confirmed, in bytes; `null` when the
    /// database cannot be asked.
    pub slot_lag_bytes: Option<i64>,
    pub confirmed_lsn: Option<String>,
    #[schema(required = false)]
    pub snapshot_rows: u64,
    pub error: Option<String>,
}

/// `POST /createJob` and `POST /v1/jobs`: the job, and a token when the environment had
/// none.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobCreated {
    #[serde(flatten)]
    pub job: JobBody,
    #[serde(flatten)]
    #[schema(value_type = NewToken)]
    pub token: Option<NewToken>,
}

impl JobBody {
    /// `job` as the API shows it, with its connector's state asked of whoever runs it.
    pub async fn of(service: &Service, job: &JobView) -> JobBody {
        let definition = &job.definition;
        let state = if definition.managed_connector {
            service.connector_state(&definition.connector).await
        } else {
            "unmanaged".to_string()
        };
        let progress = (service.postgres_connectors())
            .view(&definition.connector)
            .await
            .map(|view| ConnectorProgress {
                slot_lag_bytes: view.slot_lag_bytes,
                confirmed_lsn: view.status.confirmed_lsn,
                snapshot_rows: view.status.snapshot_rows,
                error: view.status.error,
            });
        let metrics = job.metrics.clone();
        JobBody {
            id: definition.id.clone(),
            name: definition.name.clone(),
            status: job.state,
            error: job.error.clone(),
            restarts: job.restarts,
            environment_id: definition.environment_id.clone(),
            connection: definition.connection.clone(),
            connector: JobConnector {
                name: definition.connector.clone(),
                state,
                progress,
            },
            format: definition.format,
            sql_query: definition.spec.sql.clone(),
            input_topics: definition.input_topics.clone(),
            output_topic: definition.output_topic.clone(),
            dead_letter_topic: definition.dead_letter_topic.clone(),
            records_in: metrics.records_in,
            records_out: metrics.records_out,
            dead_letters: metrics.dead_letters,
            dead_letter_failures: metrics.dead_letter_failures,
            poison_pills: metrics.poison_pills,
            lag: metrics.lag,
            lag_by_partition: metrics.lag_by_partition,
            lag_measured_ms: metrics.lag_measured_ms,
            last_checkpoint_ms: metrics.last_checkpoint_ms,
            checkpoint_offsets: metrics.checkpoint_offsets,
            waiting_for_topics: metrics.waiting_for_topics,
            ordering: metrics.ordering,
        }
    }
}
