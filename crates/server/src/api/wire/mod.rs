//! The API's answers as typed structs: what each route puts on the wire, and its schema in
//! the OpenAPI document. Jobs in [`job`], their results, history and logs in [`observe`];
//! the schemas of types other crates serialize in
//! [`external`].

pub mod external;
pub mod job;
pub mod observe;

use eddy_postgres::preflight::{Outcome, Report};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Issued;
use crate::supervisor::JobState;
use external::CheckSchema;
pub use job::{JobBody, JobCreated};
pub use observe::{JobLogLines, JobResults, JobRuns};

/// `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` while the process answers.
    pub status: String,
}

/// A token just issued, shown this once (also in the `X-Eddy-Token` header); its fields
/// are there only when a token was issued (always, for `POST /v1/environments/{id}/tokens`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewToken {
    /// The bearer credential: `Authorization: Bearer <token>`.
    #[schema(required = false)]
    pub token: String,
    /// Names the token for listing and revoking it.
    #[schema(required = false)]
    pub token_id: String,
    /// Milliseconds since the Unix epoch; `null`: it does not expire.
    pub token_expires_at_ms: Option<u64>,
}

impl From<&Issued> for NewToken {
    fn from(issued: &Issued) -> Self {
        NewToken {
            token: issued.token.clone(),
            token_id: issued.info.token_id.clone(),
            token_expires_at_ms: issued.info.expires_at_ms,
        }
    }
}

/// `POST /createConnector`: the connector, and a token when the environment had none.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorCreated {
    /// The connector's name, `<environmentId>-connector`.
    pub id: String,
    pub name: String,
    /// The connector's state (`unmanaged` when the service runs none).
    pub status: String,
    #[serde(flatten)]
    #[schema(value_type = NewToken)]
    pub token: Option<NewToken>,
}

/// `DELETE /v1/connectors/{name}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorDeleted {
    pub name: String,
    /// `DELETED`.
    pub status: String,
}

/// `POST /deleteJob`: the environment's first job, and every job deleted.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobsDeleted {
    pub id: String,
    pub name: String,
    pub status: JobState,
    pub jobs: Vec<JobBody>,
}

/// `POST /v1/connectors/test`: every preflight check, pass or fail, with its reason.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreflightReport {
    /// Whether no check failed.
    pub ok: bool,
    #[schema(value_type = Vec<CheckSchema>)]
    pub checks: Vec<eddy_postgres::preflight::Check>,
    /// How many checks passed with a warning.
    pub warnings: usize,
}

impl From<Report> for PreflightReport {
    fn from(report: Report) -> Self {
        PreflightReport {
            ok: report.failure().is_none(),
            warnings: (report.checks.iter())
                .filter(|c| c.outcome == Outcome::Warn)
                .count(),
            checks: report.checks,
        }
    }
}

/// `POST /v1/environments/{id}/tokens`: the new token.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenCreated {
    pub environment_id: String,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    #[serde(flatten)]
    pub token: NewToken,
}

/// `DELETE /v1/environments/{id}/tokens/{tokenId}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenRevoked {
    pub token_id: String,
    pub environment_id: String,
    /// `REVOKED`.
    pub status: String,
}
