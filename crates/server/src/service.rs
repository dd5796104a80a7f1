//! What the API's endpoints do, independent of HTTP: create connectors and jobs, delete them,
//! report their state.
//!
//! Every request is validated in full before anything is created: the connection string,
//! the environment id, the Prisma schema and the query (planned by the engine), the format
//! and the output topic. Only then is the connector registered and the job stored.
//!
//! Every call names its [`Caller`]: an environment's token reaches only that environment.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use eddy_engine::schema::Catalog;
use eddy_engine::{Format, JobSpec, Pipeline};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{Auth, Caller, Issued};
use crate::connect::ConnectClient;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::live_schema;
use crate::pg_connectors::PgConnectors;
use crate::registry::{Desired, JobDefinition};
use crate::supervisor::{JobView, Supervisor};
use eddy_postgres::preflight::Report;

/// The fields of `createJob` (and `POST /v1/jobs`), as the seed named them.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateJob {
    /// The source database: a PostgreSQL or MySQL URL, or libpq's `key=value` form.
    #[schema(example = "postgresql://app:secret@127.0.0.1:1/shop")]
    pub connection_string: Option<String>,
    /// The environment (a legal Kafka topic name); an environment's token acts for its own.
    #[schema(example = "shop")]
    pub environment_id: Option<String>,
    /// The Prisma schema of the source tables.
    #[schema(example = "model Order {\n  id BigInt @id\n  status String?\n  @@map(\"orders\")\n}")]
    pub schema: Option<String>,
    /// One `SELECT` over the schema's tables.
    #[schema(example = "SELECT status, COUNT(*) AS orders FROM orders GROUP BY status")]
    pub sql_query: Option<String>,
    /// `debezium` (the default), `debezium-u` or `upsert`.
    #[schema(example = "upsert")]
    pub format: Option<String>,
    /// The topic the results go to; the environment's first job defaults to `environmentId`.
    #[schema(example = "shop.orders-by-status")]
    pub output_topic: Option<String>,
}

/// The fields of `createConnector` and `deleteJob`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    /// The source database: a PostgreSQL or MySQL URL, or libpq's `key=value` form.
    #[schema(example = "postgresql://app:secret@127.0.0.1:1/shop")]
    pub connection_string: Option<String>,
    /// The environment (a legal Kafka topic name); an environment's token acts for its own.
    #[schema(example = "shop")]
    pub environment_id: Option<String>,
}

/// A connector and what Kafka Connect says of it.
#[derive(Debug, Clone, serde::Serialize, ToSchema)]
pub struct ConnectorView {
    pub name: String,
    /// Connect's state, `unmanaged` when the service has no Connect URL, `NOT_FOUND` or
    /// `UNREACHABLE` when Connect cannot tell.
    pub state: String,
}

pub struct Service {
    supervisor: Arc<Supervisor>,
    auth: Auth,
    /// Held from the output-topic check to the job's registration, so that two racing
    /// createJobs cannot both take one topic.
    creating: parking_lot::Mutex<()>,
    connect: Option<ConnectClient>,
    brokers: String,
    postgres: PgConnectors,
    /// Without Kafka Connect: whether PostgreSQL connectors are Eddy's own (else Debezium
    /// runs elsewhere and connectors are `unmanaged`).
    own_connectors: bool,
}

impl Service {
    pub fn new(
        supervisor: Supervisor,
        connect: Option<ConnectClient>,
        brokers: String,
        auth: Auth,
    ) -> Self {
        Service {
            supervisor: Arc::new(supervisor),
            auth,
            creating: parking_lot::Mutex::new(()),
            connect,
            brokers,
            postgres: PgConnectors::default(),
            own_connectors: true,
        }
    }

    /// Keeps Eddy's own connectors under `data_dir`, so that a restart resumes them; their
    /// connection strings sealed with `key`.
    pub fn with_connector_store(
        mut self,
        data_dir: &std::path::Path,
        key: crate::sealed::SecretKey,
    ) -> Result<Self> {
        self.postgres = PgConnectors::stored_in(data_dir, key)?;
        Ok(self)
    }

    /// Starts the stored connectors again (after a restart); returns how many.
    pub fn resume_connectors(&self) -> Result<usize> {
        if !self.own_connectors || self.connect.is_some() {
            return Ok(0);
        }
        self.postgres.resume_all(&self.brokers)
    }

    /// Connectors run elsewhere (Debezium operated by someone else): without Kafka
    /// Connect, createConnector and createJob start none and only read their topics.
    pub fn with_external_connectors(mut self) -> Self {
        self.own_connectors = false;
        self
    }

    /// Eddy's own PostgreSQL connectors (used without a Kafka Connect URL).
    pub fn postgres_connectors(&self) -> &PgConnectors {
        &self.postgres
    }

    /// Whether the connector of `connection` is one this service runs or registers.
    fn manages(&self, connection: &Connection) -> bool {
        self.connect.is_some() || (self.own_connectors && connection.postgres().is_some())
    }

    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// How callers are authenticated, and their tokens.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// A job the caller may see and control; 404 when there is none, 403 when it belongs to
    /// another environment.
    pub fn job_for(&self, caller: &Caller, id: &str) -> Result<JobView> {
        let job = self
            .supervisor
            .get(id)
            .ok_or_else(|| Error::NotFound(format!("job `{id}`")))?;
        caller.may_act_for(&job.definition.environment_id)?;
        Ok(job)
    }

    /// Refuses (403) a caller that may not use connector `name`: an environment's token
    /// uses only its own, `<environmentId>-connector`.
    pub fn may_use_connector(&self, caller: &Caller, name: &str) -> Result<()> {
        match name.strip_suffix(CONNECTOR_SUFFIX) {
            Some(environment) => caller.may_act_for(environment),
            None if caller.is_admin() => Ok(()),
            None => Err(Error::Forbidden(format!(
                "connector `{name}` belongs to no environment of this token"
            ))),
        }
    }

    /// Registers the environment's Debezium connector (unless Connect is not configured);
    /// called by the admin, also issues a token for the environment.
    pub async fn create_connector(
        &self,
        caller: &Caller,
        request: Environment,
    ) -> Result<(ConnectorView, Option<Issued>)> {
        let environment = authorized_environment(caller, request.environment_id)?;
        let connection =
            Connection::parse(&required("connectionString", request.connection_string)?)?;
        tracing::info!(%environment, connection = %connection.redacted(), "create connector");
        let connector = self.ensure_connector(&connection, &environment).await?;
        Ok((connector, self.auth.issue_for(caller, &environment)?))
    }

    async fn ensure_connector(
        &self,
        connection: &Connection,
        environment: &str,
    ) -> Result<ConnectorView> {
        let name = connector_name(environment);
        let Some(connect) = &self.connect else {
            let Some(postgres) = connection.postgres().filter(|_| self.own_connectors) else {
                return Ok(ConnectorView {
                    name,
                    state: "unmanaged".into(),
                });
            };
            self.postgres
                .ensure(&name, postgres, environment, &self.brokers)
                .await?;
            let state = self.connector_state(&name).await;
            return Ok(ConnectorView { name, state });
        };
        let config =
            connection.connector_config(environment, &self.brokers, server_id(environment));
        connect.create(&name, config).await?;
        let state = self.connector_state(&name).await;
        Ok(ConnectorView { name, state })
    }

    /// The connector's state as Kafka Connect reports it.
    pub async fn connector_state(&self, name: &str) -> String {
        let Some(connect) = &self.connect else {
            return match self.postgres.view(name).await {
                Some(view) => serde_json::to_value(view.status.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                None => "unmanaged".into(),
            };
        };
        match connect.state(name).await {
            Ok(Some(state)) => state,
            Ok(None) => "NOT_FOUND".into(),
            Err(e) => {
                tracing::warn!(connector = name, error = %e, "connector status unavailable");
                "UNREACHABLE".into()
            }
        }
    }

    /// The preflight checks of a PostgreSQL connection string, for `environmentId`.
    pub async fn test_connector(&self, caller: &Caller, request: Environment) -> Result<Report> {
        let environment = authorized_environment(caller, request.environment_id)?;
        let connection =
            Connection::parse(&required("connectionString", request.connection_string)?)?;
        let postgres = connection.postgres().ok_or_else(|| {
            Error::invalid(
                "connectionString",
                "only PostgreSQL connections are tested here (MySQL runs on Kafka Connect)",
            )
        })?;
        Ok(PgConnectors::test(postgres, &environment).await)
    }

    /// Validates and plans the job, ensures its connector, stores and starts it; called by
    /// the admin for an environment without a token, also issues one.
    pub async fn create_job(
        &self,
        caller: &Caller,
        request: CreateJob,
    ) -> Result<(JobView, Option<Issued>)> {
        let environment = authorized_environment(caller, request.environment_id)?;
        let connection =
            Connection::parse(&required("connectionString", request.connection_string)?)?;
        let schema = required("schema", request.schema)?;
        let sql = required("sqlQuery", request.sql_query)?;
        let format = match request.format.as_deref().map(str::trim) {
            None | Some("") => Format::Debezium,
            Some(text) => text
                .parse()
                .map_err(|e: String| Error::invalid("format", e))?,
        };
        let output_topic = match request.output_topic {
            Some(topic) if !topic.trim().is_empty() => {
                let topic = topic.trim().to_string();
                check_topic_name("outputTopic", &topic)?;
                check_topic_owner(caller, &environment, &topic)?;
                topic
            }
            _ => environment.clone(),
        };
        self.check_output_topic_free(caller, &environment, &output_topic)?;
        let spec = JobSpec {
            schema,
            sql,
            decode: Default::default(),
        };
        let planned = spec.clone();
        // Planning is CPU work (a large query takes a while): off the async workers.
        let pipeline = blocking(move || {
            Pipeline::new(planned).map_err(|source| Error::Job {
                field: engine_field(&source),
                source,
            })
        })
        .await?;
        let input_topics = pipeline
            .tables()
            .map(|table| format!("{environment}.{}.{table}", connection.topic_schema()))
            .collect();
        if let Some(postgres) = connection
            .postgres()
            .filter(|_| self.own_connectors && self.connect.is_none())
        {
            let prisma = Catalog::from_prisma(&spec.schema).map_err(|source| Error::Job {
                field: "schema",
                source,
            })?;
            let tables: Vec<String> = pipeline.tables().map(str::to_string).collect();
            live_schema::check(postgres, &prisma, &tables, connection.topic_schema()).await?;
        }
        tracing::info!(%environment, connection = %connection.redacted(), "create job");
        let connector = self.ensure_connector(&connection, &environment).await?;
        let id = format!("{:032x}", rand::random::<u128>());
        let definition = JobDefinition {
            name: format!("eddy-{environment}-{}", &id[..8]),
            id,
            dead_letter_topic: format!("{environment}.eddy.dlq"),
            environment_id: environment,
            connection: connection.redacted(),
            connector: connector.name,
            managed_connector: self.manages(&connection),
            spec,
            format,
            input_topics,
            output_topic: output_topic.clone(),
            desired: Desired::Running,
            created_at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        };
        let job = {
            let _creating = self.creating.lock();
            self.check_output_topic_free(caller, &definition.environment_id, &output_topic)?;
            self.supervisor.add(definition)?
        };
        let issued = self
            .auth
            .issue_first_for(caller, &job.definition.environment_id)?;
        Ok((job, issued))
    }

    /// Refuses (409) a topic another live job writes, naming that job when the caller may
    /// see it, and suggests a free one.
    fn check_output_topic_free(
        &self,
        caller: &Caller,
        environment: &str,
        topic: &str,
    ) -> Result<()> {
        let live: Vec<JobView> = self
            .supervisor
            .list()
            .into_iter()
            .filter(|j| j.definition.desired != Desired::Canceled)
            .collect();
        let Some(writer) = live.iter().find(|j| j.definition.output_topic == topic) else {
            return Ok(());
        };
        let writer = if caller.sees(&writer.definition.environment_id) {
            format!(
                "job `{}` ({})",
                writer.definition.id, writer.definition.name
            )
        } else {
            "a job of another environment".to_string()
        };
        let suggestion = (2..)
            .map(|n| format!("{environment}.job{n}"))
            .find(|t| live.iter().all(|j| &j.definition.output_topic != t))
            .expect("some name is free");
        Err(Error::OutputTopicTaken {
            topic: topic.to_string(),
            writer,
            suggestion,
        })
    }

    /// Cancels the environment's jobs and deletes its connector; the output topic stays.
    pub async fn delete_environment(
        &self,
        caller: &Caller,
        request: Environment,
    ) -> Result<Vec<JobView>> {
        let environment = authorized_environment(caller, request.environment_id)?;
        Connection::parse(&required("connectionString", request.connection_string)?)?;
        let ids: Vec<String> = self
            .supervisor
            .list()
            .into_iter()
            .filter(|job| {
                job.definition.environment_id == environment
                    && job.definition.desired != Desired::Canceled
            })
            .map(|job| job.definition.id)
            .collect();
        if ids.is_empty() {
            return Err(Error::NotFound(format!(
                "a job for environment `{environment}`"
            )));
        }
        let mut canceled = Vec::new();
        for id in ids {
            canceled.push(self.set_desired(id, Desired::Canceled).await?);
        }
        match &self.connect {
            Some(connect) => connect.delete(&connector_name(&environment)).await?,
            None => {
                self.postgres.delete(&connector_name(&environment)).await?;
            }
        }
        Ok(canceled)
    }

    /// Pauses, resumes or cancels a job; waits for it to checkpoint.
    pub async fn set_desired(&self, id: String, desired: Desired) -> Result<JobView> {
        let supervisor = Arc::clone(&self.supervisor);
        blocking(move || supervisor.set_desired(&id, desired)).await
    }

    /// Cancels a job and forgets it.
    pub async fn remove(&self, id: String) -> Result<JobView> {
        let supervisor = Arc::clone(&self.supervisor);
        blocking(move || supervisor.remove(&id)).await
    }

    /// Connectors the caller may see: Connect's list when it is configured, else those the
    /// jobs name.
    pub async fn connectors(&self, caller: &Caller) -> Result<Vec<ConnectorView>> {
        let names = match &self.connect {
            Some(connect) => connect.list().await?,
            None => {
                let mut names: Vec<String> = self
                    .supervisor
                    .list()
                    .into_iter()
                    .map(|j| j.definition.connector)
                    .chain(self.postgres.names())
                    .collect();
                names.sort();
                names.dedup();
                names
            }
        };
        let mut connectors = Vec::with_capacity(names.len());
        for name in names {
            if self.may_use_connector(caller, &name).is_err() {
                continue;
            }
            let state = self.connector_state(&name).await;
            connectors.push(ConnectorView { name, state });
        }
        Ok(connectors)
    }
}

/// Runs `work` (which waits for a job's thread to checkpoint) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Registry(format!("job control task failed: {e}")))?
}

fn required(field: &str, value: Option<String>) -> Result<String> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(Error::invalid(field, "is required")),
    }
}

/// A valid environment id the caller may act for (else 400, or 403).
pub(crate) fn authorized_environment(caller: &Caller, value: Option<String>) -> Result<String> {
    let environment = environment_id(value)?;
    caller.may_act_for(&environment)?;
    Ok(environment)
}

/// A valid environment id (a legal topic name), trimmed.
fn environment_id(value: Option<String>) -> Result<String> {
    let id = required("environmentId", value)?.trim().to_string();
    check_topic_name("environmentId", &id)?;
    Ok(id)
}

/// Refuses (403) an environment's token asking for an output topic outside its own names
/// (`<environmentId>` or `<environmentId>.…`): it could write into another environment's
/// topics. The admin may name any topic.
fn check_topic_owner(caller: &Caller, environment: &str, topic: &str) -> Result<()> {
    let own = topic == environment || topic.starts_with(&format!("{environment}."));
    if caller.is_admin() || own {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "outputTopic `{topic}` is outside environment `{environment}`'s topics \
         (`{environment}` or `{environment}.…`)"
    )))
}

/// Kafka topic names: at most 249 of `[A-Za-z0-9._-]`; 200 leaves room for suffixes.
fn check_topic_name(field: &str, name: &str) -> Result<()> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.len() > 200 || !name.chars().all(legal) || name == "." || name == ".." {
        return Err(Error::invalid(
            field,
            format!(
                "`{name}` is not a valid Kafka topic name (letters, digits, `.`, `_`, `-`; at most 200)"
            ),
        ));
    }
    Ok(())
}

/// Which request field an engine error is about.
fn engine_field(error: &eddy_engine::Error) -> &'static str {
    match error {
        eddy_engine::Error::Schema { .. } | eddy_engine::Error::Unsupported { .. } => "schema",
        _ => "sqlQuery",
    }
}

/// What an environment's connector name ends with.
const CONNECTOR_SUFFIX: &str = "-connector";

pub fn connector_name(environment: &str) -> String {
    format!("{environment}{CONNECTOR_SUFFIX}")
}

/// MySQL's replica id for an environment's connector: stable for the environment (so the
/// same connector keeps it) and spread over 2^31 values so that environments differ.
fn server_id(environment: &str) -> u32 {
    let hash = environment.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    184_000 + (hash % (i32::MAX as u64 - 184_000)) as u32
}
