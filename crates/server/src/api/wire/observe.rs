//! What a job's observation routes answer: its result rows, its history, its log lines.

use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::job_logs::LogLine;
use crate::runs::RunEvent;

/// `GET /v1/jobs/{id}/results`: one page of the job's current result, as of its last
/// checkpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobResults {
    pub job_id: String,
    /// When the checkpoint the rows come from was taken (milliseconds since the Unix
    /// epoch); `null`: the job has none yet, and the rows are the result over no records.
    pub as_of_ms: Option<u64>,
    /// The result's columns, in order.
    pub columns: Vec<String>,
    /// Rows in the whole result.
    pub total: usize,
    /// The first row of this page, from 0.
    pub offset: usize,
    /// The most rows this page could hold.
    pub limit: usize,
    /// This page's rows, each an object keyed by column name, ordered by the result's key.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Box<RawValue>>,
}

/// `GET /v1/jobs/{id}/runs`: the job's history, oldest first (its last 100 events).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobRuns {
    pub job_id: String,
    pub runs: Vec<RunEvent>,
}

/// `GET /v1/jobs/{id}/logs`: the job's recent log lines, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobLogLines {
    pub job_id: String,
    pub lines: Vec<LogLine>,
}
