//! What a user looks at of one job without a Kafka consumer: `GET /v1/jobs/{id}/results`
//! (its current result rows, paged), `…/runs` (its history) and `…/logs` (its recent log
//! lines). Same tenancy as the other job routes: 404 for an unknown job, 403 for another
//! environment's.

use std::sync::Arc;

use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ErrorBody;
use super::fields::Params;
use super::wire::{JobLogLines, JobResults, JobRuns};
use super::{Answer, ok};
use crate::auth::Caller;
use crate::error::Error;
use crate::job_logs::{self, KEPT_LINES};
use crate::service::Service;

/// The rows of results a page holds at most.
pub const MAX_PAGE: usize = 1000;

/// Which rows of the result a page holds.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// The first row, from 0 (default 0).
    offset: Option<usize>,
    /// How many rows, 1 to 1000 (default 100).
    limit: Option<usize>,
}

/// The job's current result rows, read from its last checkpoint (taken every few seconds
/// while it runs), ordered by the result's key.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/results", tag = "jobs",
    params(("id" = String, Path, description = "The job's id"), Page),
    responses(
        (status = 200, description = "One page of the job's result", body = JobResults),
        (status = 500, description = "`internal`: the job's checkpoint cannot be read", body = ErrorBody),
    ),
)]
pub async fn job_results(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    Params(page): Params<Page>,
) -> Answer<JobResults> {
    let job = service.job_for(&caller, &id)?;
    let offset = page.offset.unwrap_or(0);
    let limit = limit(page.limit, MAX_PAGE)?;
    let reader = Arc::clone(&service);
    let result = tokio::task::spawn_blocking(move || reader.supervisor().result(&job))
        .await
        .map_err(|e| Error::State(format!("job `{id}`: {e}")))??;
    ok(JobResults {
        job_id: id,
        as_of_ms: result.as_of_ms,
        columns: result.columns.clone(),
        total: result.rows.len(),
        offset,
        limit,
        rows: (result.rows.iter().skip(offset).take(limit))
            .cloned()
            .collect(),
    })
}

/// The job's history: each start, restart, failure, pause, resume and cancel, with when,
/// the records read by then and the error; its last 100 events, kept across restarts of
/// the service.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/runs", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses((status = 200, description = "The job's history, oldest first", body = JobRuns)),
)]
pub async fn job_runs(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Answer<JobRuns> {
    service.job_for(&caller, &id)?;
    let runs =
        (service.supervisor().runs(&id)).ok_or_else(|| Error::NotFound(format!("job `{id}`")))?;
    ok(JobRuns { job_id: id, runs })
}

/// How many log lines.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogLimit {
    /// The most recent lines to show, 1 to 200 (default 100).
    limit: Option<usize>,
}

/// The job's recent log lines (its last 200 are kept, in memory), passwords masked.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/logs", tag = "jobs",
    params(("id" = String, Path, description = "The job's id"), LogLimit),
    responses((status = 200, description = "The job's recent log lines, oldest first", body = JobLogLines)),
)]
pub async fn job_logs(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    Params(query): Params<LogLimit>,
) -> Answer<JobLogLines> {
    service.job_for(&caller, &id)?;
    let limit = limit(query.limit, KEPT_LINES)?;
    let lines = job_logs::global().recent(&id, limit);
    ok(JobLogLines { job_id: id, lines })
}

/// The `limit` asked for (100 by default), refused unless it is 1 to `max`.
fn limit(asked: Option<usize>, max: usize) -> Result<usize, Error> {
    let limit = asked.unwrap_or(100);
    match (1..=max).contains(&limit) {
        true => Ok(limit),
        false => Err(Error::invalid("limit", format!("is 1 to {max}"))),
    }
}
