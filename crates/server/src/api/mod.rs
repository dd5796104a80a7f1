//! The HTTP API: the seed service's endpoints and a resource API beside them.
//!
//! Seed endpoints (form fields or JSON; `201` with `{id, name, status, …}`):
//! `POST /createConnector`, `POST /createJob`, `POST /deleteJob`, `GET /jobStatus/{id}`
//! (or `GET /jobStatus?environmentId=`). Resource API: `GET|POST /v1/jobs`,
//! `GET|DELETE /v1/jobs/{id}`, `POST /v1/jobs/{id}/pause|resume`, `GET /v1/connectors`,
//! `POST /v1/connectors/test` (preflight), `GET|DELETE /v1/connectors/{name}`,
//! `GET /v1/connectors/{name}/schemas|tables?schema=|columns?schema=&table=`,
//! `POST|GET /v1/environments/{id}/tokens`, `DELETE /v1/environments/{id}/tokens/{tokenId}`,
//! `GET /healthz`.
//!
//! Every route but `/healthz` takes a [`Caller`] (401 without a valid credential) and
//! refuses (403) what belongs to another environment than the caller's token.

mod caller;
pub mod edge;
mod error;
mod fields;
mod metrics;
mod rate_limit;
mod tokens;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub use error::ApiError;
use fields::Fields;
pub use tokens::TOKEN_HEADER;

use crate::auth::Caller;
use crate::error::Error;
use crate::pg_connectors::report_json;
use crate::registry::Desired;
use crate::service::{CreateJob, Environment, Service};
use crate::supervisor::JobView;

type Reply = Result<(StatusCode, Json<Value>), ApiError>;

/// The largest request body accepted (a schema and a query fit many times over); larger is
/// a 413.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The service's routes, each answering JSON; bodies over [`BODY_LIMIT`] are refused.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/createConnector", post(create_connector))
        .route("/createJob", post(create_job))
        .route("/deleteJob", post(delete_job))
        .route("/jobStatus", get(job_status_of_environment))
        .route("/jobStatus/{id}", get(job_status))
        .route("/v1/jobs", get(list_jobs).post(create_job))
        .route("/v1/jobs/{id}", get(job_status).delete(remove_job))
        .route("/v1/jobs/{id}/pause", post(pause_job))
        .route("/v1/jobs/{id}/resume", post(resume_job))
        .route("/v1/connectors", get(list_connectors))
        .route("/v1/connectors/test", post(test_connector))
        .route(
            "/v1/connectors/{name}",
            get(get_connector).delete(delete_connector),
        )
        .route("/v1/connectors/{name}/schemas", get(connector_schemas))
        .route("/v1/connectors/{name}/tables", get(connector_tables))
        .route("/v1/connectors/{name}/columns", get(connector_columns))
        .route(
            "/v1/environments/{id}/tokens",
            post(tokens::issue).get(tokens::list),
        )
        .route(
            "/v1/environments/{id}/tokens/{token_id}",
            delete(tokens::revoke),
        )
        .route("/metrics", get(metrics_of_visible_jobs))
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(service)
}

/// Called by the admin, the answer carries a new token for the environment.
async fn create_connector(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Fields(request): Fields<Environment>,
) -> Result<Response, ApiError> {
    let (connector, issued) = service.create_connector(&caller, request).await?;
    let body = json!({ "id": connector.name, "name": connector.name, "status": connector.state });
    Ok(tokens::with_token(StatusCode::CREATED, body, issued))
}

/// Called by the admin for an environment without a token, the answer carries one.
async fn create_job(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Fields(request): Fields<CreateJob>,
) -> Result<Response, ApiError> {
    let (job, issued) = service.create_job(&caller, request).await?;
    let body = job_json(&service, &job).await;
    Ok(tokens::with_token(StatusCode::CREATED, body, issued))
}

async fn delete_job(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Fields(request): Fields<Environment>,
) -> Reply {
    let jobs = service.delete_environment(&caller, request).await?;
    let mut views = Vec::with_capacity(jobs.len());
    for job in &jobs {
        views.push(job_json(&service, job).await);
    }
    let first = &jobs[0];
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": first.definition.id,
            "name": first.definition.name,
            "status": first.state,
            "jobs": views,
        })),
    ))
}

async fn job_status(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply {
    let job = service.job_for(&caller, &id)?;
    Ok((StatusCode::OK, Json(job_json(&service, &job).await)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvironmentQuery {
    environment_id: Option<String>,
}

/// The environment's newest job that is not canceled, else its newest job.
async fn job_status_of_environment(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Query(query): Query<EnvironmentQuery>,
) -> Reply {
    let environment = query.environment_id.ok_or_else(|| {
        Error::invalid(
            "environmentId",
            "is required (…/jobStatus/{id} or ?environmentId=)",
        )
    })?;
    caller.may_act_for(&environment)?;
    let jobs: Vec<JobView> = service
        .supervisor()
        .list()
        .into_iter()
        .filter(|j| j.definition.environment_id == environment)
        .collect();
    let job = jobs
        .iter()
        .rev()
        .find(|j| j.definition.desired != Desired::Canceled)
        .or(jobs.last())
        .ok_or_else(|| Error::NotFound(format!("a job for environment `{environment}`")))?;
    Ok((StatusCode::OK, Json(job_json(&service, job).await)))
}

/// The jobs the caller may see: an environment's token sees its environment's only.
/// The jobs the caller may see, and the process, for Prometheus.
async fn metrics_of_visible_jobs(State(service): State<Arc<Service>>, caller: Caller) -> Response {
    let jobs: Vec<JobView> = (service.supervisor().list().into_iter())
        .filter(|job| caller.sees(&job.definition.environment_id))
        .collect();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        metrics::exposition(&jobs),
    )
        .into_response()
}

async fn list_jobs(State(service): State<Arc<Service>>, caller: Caller) -> Reply {
    let mut views = Vec::new();
    for job in service.supervisor().list() {
        if !caller.sees(&job.definition.environment_id) {
            continue;
        }
        views.push(job_json(&service, &job).await);
    }
    Ok((StatusCode::OK, Json(Value::Array(views))))
}

async fn remove_job(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply {
    control_job(&service, &caller, id, None).await
}

async fn pause_job(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply {
    control_job(&service, &caller, id, Some(Desired::Paused)).await
}

async fn resume_job(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply {
    control_job(&service, &caller, id, Some(Desired::Running)).await
}

/// Pauses or resumes (`desired`) or deletes (`None`) one of the caller's jobs.
async fn control_job(
    service: &Service,
    caller: &Caller,
    id: String,
    desired: Option<Desired>,
) -> Reply {
    service.job_for(caller, &id)?;
    let job = match desired {
        Some(desired) => service.set_desired(id, desired).await?,
        None => service.remove(id).await?,
    };
    Ok((StatusCode::OK, Json(job_json(service, &job).await)))
}

async fn list_connectors(State(service): State<Arc<Service>>, caller: Caller) -> Reply {
    let connectors = service.connectors(&caller).await?;
    Ok((StatusCode::OK, Json(json!(connectors))))
}

/// Runs the preflight checks of a PostgreSQL connection: `200` with every check, pass or
/// fail, and its reason.
async fn test_connector(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Fields(request): Fields<Environment>,
) -> Reply {
    let report = service.test_connector(&caller, request).await?;
    Ok((StatusCode::OK, Json(report_json(&report))))
}

async fn get_connector(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Reply {
    service.may_use_connector(&caller, &name)?;
    let view = service
        .postgres_connectors()
        .view(&name)
        .await
        .ok_or_else(|| Error::NotFound(format!("connector `{name}`")))?;
    Ok((StatusCode::OK, Json(json!(view))))
}

/// Stops one of Eddy's own connectors and drops its slot and publication.
async fn delete_connector(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Reply {
    service.may_use_connector(&caller, &name)?;
    if !service.postgres_connectors().delete(&name).await? {
        return Err(Error::NotFound(format!("connector `{name}`")).into());
    }
    Ok((
        StatusCode::OK,
        Json(json!({ "name": name, "status": "DELETED" })),
    ))
}

#[derive(Deserialize)]
struct CatalogQuery {
    schema: Option<String>,
    table: Option<String>,
}

/// The connection of one of Eddy's own connectors the caller may use, for its catalog
/// endpoints.
fn catalog_of(
    service: &Service,
    caller: &Caller,
    name: &str,
) -> Result<eddy_postgres::PgConfig, ApiError> {
    service.may_use_connector(caller, name)?;
    Ok(service
        .postgres_connectors()
        .postgres(name)
        .ok_or_else(|| Error::NotFound(format!("connector `{name}`")))?)
}

fn catalog_error(e: eddy_postgres::Error) -> ApiError {
    match e {
        eddy_postgres::Error::Postgres(m) if m.ends_with("does not exist") => {
            Error::NotFound(m.trim_end_matches(" does not exist").to_string()).into()
        }
        eddy_postgres::Error::Postgres(m) => Error::Postgres(m).into(),
        other => Error::Postgres(other.to_string()).into(),
    }
}

/// A catalog read's answer: what it read, as JSON, or its error as the API states it.
fn catalog_reply<T: serde::Serialize>(read: eddy_postgres::Result<T>) -> Reply {
    let rows = read.map_err(catalog_error)?;
    Ok((StatusCode::OK, Json(json!(rows))))
}

fn required_query(field: &str, value: Option<String>) -> Result<String, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::invalid(field, "is required (a query parameter)").into())
}

/// The schemas of the connector's database, read live from the catalog.
async fn connector_schemas(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Reply {
    let postgres = catalog_of(&service, &caller, &name)?;
    catalog_reply(eddy_postgres::catalog::schemas(&postgres).await)
}

/// `?schema=`'s tables with their row estimate and size.
async fn connector_tables(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<CatalogQuery>,
) -> Reply {
    let postgres = catalog_of(&service, &caller, &name)?;
    let schema = required_query("schema", query.schema)?;
    catalog_reply(eddy_postgres::catalog::tables(&postgres, &schema).await)
}

/// `?schema=&table=`'s columns: type, nullability, primary key.
async fn connector_columns(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<CatalogQuery>,
) -> Reply {
    let postgres = catalog_of(&service, &caller, &name)?;
    let schema = required_query("schema", query.schema)?;
    let table = required_query("table", query.table)?;
    catalog_reply(eddy_postgres::catalog::columns(&postgres, &schema, &table).await)
}

/// A job as the API shows it: never with a password.
async fn job_json(service: &Service, job: &JobView) -> Value {
    let definition = &job.definition;
    let connector_state = if definition.managed_connector {
        service.connector_state(&definition.connector).await
    } else {
        "unmanaged".to_string()
    };
    let mut connector = json!({ "name": definition.connector, "state": connector_state });
    if let Some(view) = service
        .postgres_connectors()
        .view(&definition.connector)
        .await
    {
        connector["slotLagBytes"] = json!(view.slot_lag_bytes);
        connector["confirmedLsn"] = json!(view.status.confirmed_lsn);
        connector["snapshotRows"] = json!(view.status.snapshot_rows);
        connector["error"] = json!(view.status.error);
    }
    json!({
        "id": definition.id,
        "name": definition.name,
        "status": job.state,
        "error": job.error,
        "restarts": job.restarts,
        "environmentId": definition.environment_id,
        "connection": definition.connection,
        "connector": connector,
        "format": definition.format,
        "sqlQuery": definition.spec.sql,
        "inputTopics": definition.input_topics,
        "outputTopic": definition.output_topic,
        "deadLetterTopic": definition.dead_letter_topic,
        "recordsIn": job.metrics.records_in,
        "recordsOut": job.metrics.records_out,
        "deadLetters": job.metrics.dead_letters,
        "deadLetterFailures": job.metrics.dead_letter_failures,
        "poisonPills": job.metrics.poison_pills,
        "lag": job.metrics.lag,
        "lagMeasuredMs": job.metrics.lag_measured_ms,
        "lastCheckpointMs": job.metrics.last_checkpoint_ms,
        "checkpointOffsets": job.metrics.checkpoint_offsets,
        "waitingForTopics": job.metrics.waiting_for_topics,
        "ordering": job.metrics.ordering,
    })
}

#[cfg(test)]
mod tests;
