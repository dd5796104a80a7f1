//! The job routes: the seed's `createJob`, `deleteJob` and `jobStatus`, and `/v1/jobs`
//! (whose `POST` and `GET /v1/jobs/{id}` are the seed's `createJob` and `jobStatus/{id}`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ErrorBody};
use super::fields::{Fields, Params};
use super::tokens::with_token;
use super::wire::{JobBody, JobCreated, JobsDeleted};
use super::{Answer, ok};
use crate::auth::Caller;
use crate::error::Error;
use crate::registry::Desired;
use crate::service::{CreateJob, Environment, Service};
use crate::supervisor::JobView;

/// Called by the admin for an environment without a token, the answer carries one.
#[utoipa::path(
    post, path = "/createJob", tag = "seed",
    request_body = CreateJob,
    responses(
        (status = 201, description = "The job, created and started; a token when its environment had none", body = JobCreated),
        (status = 409, description = "`output_topic_in_use`: another live job writes the output topic", body = ErrorBody),
        (status = 502, description = "`connect_failed`, `postgres_failed`: the connector could not be registered", body = ErrorBody),
    ),
)]
pub async fn create_job(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Fields(request): Fields<CreateJob>,
) -> Result<Response, ApiError> {
    let (job, issued) = service.create_job(&caller, request).await?;
    let body = JobCreated {
        job: JobBody::of(&service, &job).await,
        token: issued.as_ref().map(Into::into),
    };
    Ok(with_token(StatusCode::CREATED, body, issued.as_ref()))
}

/// Deletes every job of the environment and its connector.
#[utoipa::path(
    post, path = "/deleteJob", tag = "seed",
    request_body = Environment,
    responses(
        (status = 201, description = "The environment's jobs, deleted", body = JobsDeleted),
        (status = 404, description = "`not_found`: the environment has no job", body = ErrorBody),
        (status = 502, description = "`connect_failed`: the connector could not be deleted", body = ErrorBody),
    ),
)]
pub async fn delete_job(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Fields(request): Fields<Environment>,
) -> Answer<JobsDeleted> {
    let jobs = service.delete_environment(&caller, request).await?;
    let mut views = Vec::with_capacity(jobs.len());
    for job in &jobs {
        views.push(JobBody::of(&service, job).await);
    }
    let first = &jobs[0];
    let body = JobsDeleted {
        id: first.definition.id.clone(),
        name: first.definition.name.clone(),
        status: first.state,
        jobs: views,
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// The job with this id.
#[utoipa::path(
    get, path = "/jobStatus/{id}", tag = "seed",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job", body = JobBody),
    ),
)]
pub async fn job_status(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Answer<JobBody> {
    let job = service.job_for(&caller, &id)?;
    ok(JobBody::of(&service, &job).await)
}

/// The environment whose job `GET /jobStatus` shows.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct EnvironmentQuery {
    /// Required: the environment whose newest job is shown.
    environment_id: Option<String>,
}

/// The environment's newest job that is not canceled, else its newest job.
#[utoipa::path(
    get, path = "/jobStatus", tag = "seed",
    params(EnvironmentQuery),
    responses(
        (status = 200, description = "The environment's newest live job", body = JobBody),
        (status = 400, description = "`invalid_request`: no `environmentId`", body = ErrorBody),
        (status = 404, description = "`not_found`: the environment has no job", body = ErrorBody),
    ),
)]
pub async fn job_status_of_environment(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Params(query): Params<EnvironmentQuery>,
) -> Answer<JobBody> {
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
    ok(JobBody::of(&service, job).await)
}

/// The jobs the caller may see: an environment's token sees its environment's only.
#[utoipa::path(
    get, path = "/v1/jobs", tag = "jobs",
    responses((status = 200, description = "The jobs the caller may see", body = Vec<JobBody>)),
)]
pub async fn list_jobs(
    State(service): State<Arc<Service>>,
    caller: Caller,
) -> Answer<Vec<JobBody>> {
    let mut views = Vec::new();
    for job in service.supervisor().list() {
        if caller.sees(&job.definition.environment_id) {
            views.push(JobBody::of(&service, &job).await);
        }
    }
    ok(views)
}

/// Stops the job and deletes it for good.
#[utoipa::path(
    delete, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job, deleted", body = JobBody),
    ),
)]
pub async fn remove_job(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Answer<JobBody> {
    control_job(&service, &caller, id, None).await
}

/// Stops the job after a checkpoint; it stays paused across restarts.
#[utoipa::path(
    post, path = "/v1/jobs/{id}/pause", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job, paused", body = JobBody),
        (status = 409, description = "`conflict`: the job is canceled", body = ErrorBody),
    ),
)]
pub async fn pause_job(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Answer<JobBody> {
    control_job(&service, &caller, id, Some(Desired::Paused)).await
}

/// Starts a paused or failed job again from its checkpoint.
#[utoipa::path(
    post, path = "/v1/jobs/{id}/resume", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job, running", body = JobBody),
        (status = 409, description = "`conflict`: the job is canceled", body = ErrorBody),
    ),
)]
pub async fn resume_job(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Answer<JobBody> {
    control_job(&service, &caller, id, Some(Desired::Running)).await
}

/// Pauses or resumes (`desired`) or deletes (`None`) one of the caller's jobs.
async fn control_job(
    service: &Service,
    caller: &Caller,
    id: String,
    desired: Option<Desired>,
) -> Answer<JobBody> {
    service.job_for(caller, &id)?;
    let job = match desired {
        Some(desired) => service.set_desired(id, desired).await?,
        None => service.remove(id).await?,
    };
    ok(JobBody::of(service, &job).await)
}
