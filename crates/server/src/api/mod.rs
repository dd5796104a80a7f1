//! The HTTP API: the seed service's endpoints and a resource API beside them, each answering
//! a typed body ([`wire`]) that the OpenAPI document at `GET /openapi.json` describes.
//!
//! Seed endpoints (form fields or JSON; `201` with `{id, name, status, …}`):
//! `POST /createConnector`, `POST /createJob`, `POST /deleteJob`, `GET /jobStatus/{id}`
//! (or `GET /jobStatus?environmentId=`). Resource API: `GET|POST /v1/jobs`,
//! `GET|DELETE /v1/jobs/{id}`, `POST /v1/jobs/{id}/pause|resume`,
//! `GET /v1/jobs/{id}/results?offset=&limit=|runs|logs?limit=`, `GET /v1/connectors`,
//! `POST /v1/connectors/test` (preflight), `GET|DELETE /v1/connectors/{name}`,
//! `GET /v1/connectors/{name}/schemas|tables?schema=|columns?schema=&table=`,
//! `POST|GET /v1/environments/{id}/tokens`, `DELETE /v1/environments/{id}/tokens/{tokenId}`,
//! `GET /metrics`, `GET /healthz`, `GET /openapi.json`.
//!
//! Every route but `/healthz` and `/openapi.json` takes a [`Caller`](crate::auth::Caller) (401 without a valid
//! credential) and refuses (403) what belongs to another environment than the caller's token.

mod caller;
mod connectors;
pub mod edge;
mod error;
mod fields;
mod jobs;
mod metrics;
mod observe;
mod openapi;
mod rate_limit;
mod tokens;
pub mod wire;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode, Uri};
use axum::routing::{MethodRouter, delete, get, post};
use axum::{Json, Router};

pub use error::ApiError;
pub use tokens::TOKEN_HEADER;

use crate::error::Error;
use crate::service::Service;
use wire::Health;

/// A route's answer: a status and a typed JSON body, or the failure.
type Answer<T> = Result<(StatusCode, Json<T>), ApiError>;

/// `200 OK` with `body`.
fn ok<T>(body: T) -> Answer<T> {
    Ok((StatusCode::OK, Json(body)))
}

/// The largest request body accepted (a schema and a query fit many times over); larger is
/// a 413.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Every route the service serves: its path, and its handler per method.
fn routes() -> Vec<(&'static str, MethodRouter<Arc<Service>>)> {
    vec![
        ("/createConnector", post(connectors::create_connector)),
        ("/createJob", post(jobs::create_job)),
        ("/deleteJob", post(jobs::delete_job)),
        ("/jobStatus", get(jobs::job_status_of_environment)),
        ("/jobStatus/{id}", get(jobs::job_status)),
        ("/v1/jobs", get(jobs::list_jobs).post(jobs::create_job)),
        (
            "/v1/jobs/{id}",
            get(jobs::job_status).delete(jobs::remove_job),
        ),
        ("/v1/jobs/{id}/pause", post(jobs::pause_job)),
        ("/v1/jobs/{id}/resume", post(jobs::resume_job)),
        ("/v1/jobs/{id}/results", get(observe::job_results)),
        ("/v1/jobs/{id}/runs", get(observe::job_runs)),
        ("/v1/jobs/{id}/logs", get(observe::job_logs)),
        ("/v1/connectors", get(connectors::list_connectors)),
        ("/v1/connectors/test", post(connectors::test_connector)),
        (
            "/v1/connectors/{name}",
            get(connectors::get_connector).delete(connectors::delete_connector),
        ),
        (
            "/v1/connectors/{name}/schemas",
            get(connectors::connector_schemas),
        ),
        (
            "/v1/connectors/{name}/tables",
            get(connectors::connector_tables),
        ),
        (
            "/v1/connectors/{name}/columns",
            get(connectors::connector_columns),
        ),
        (
            "/v1/environments/{id}/tokens",
            post(tokens::issue).get(tokens::list),
        ),
        (
            "/v1/environments/{id}/tokens/{tokenId}",
            delete(tokens::revoke),
        ),
        ("/metrics", get(metrics::metrics_of_visible_jobs)),
        ("/healthz", get(healthz)),
        ("/openapi.json", get(openapi::serve)),
    ]
}

/// The service's routes, each answering JSON (an unknown route or method too, as a `404` or
/// `405` in the one error shape); bodies over [`BODY_LIMIT`] are refused.
pub fn router(service: Arc<Service>) -> Router {
    (routes().into_iter())
        .fold(Router::new(), |router, (path, handlers)| {
            router.route(path, handlers)
        })
        .fallback(|method: Method, uri: Uri| async move {
            ApiError(Error::NotFound(format!("route `{method} {}`", uri.path())))
        })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            ApiError(Error::MethodNotAllowed(format!(
                "`{method} {}`",
                uri.path()
            )))
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(service)
}

/// Whether the process answers; needs no credential.
#[utoipa::path(
    get, path = "/healthz", tag = "service", security(()),
    responses((status = 200, description = "The process answers", body = Health)),
)]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

#[cfg(test)]
mod tests;
