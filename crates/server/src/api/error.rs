//! `ApiError`: every failure as a status, a stable code and a message that names the problem.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::Error;

#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError(error)
    }
}

impl ApiError {
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match &self.0 {
            Error::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            Error::Job {
                field: "schema", ..
            } => (StatusCode::BAD_REQUEST, "invalid_schema"),
            Error::Job { .. } => (StatusCode::BAD_REQUEST, "invalid_query"),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Error::Connect(_) => (StatusCode::BAD_GATEWAY, "connect_failed"),
            Error::Postgres(_) => (StatusCode::BAD_GATEWAY, "postgres_failed"),
            Error::Registry(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Paths and OS errors stay in the log.
            tracing::error!(error = %self.0, "request failed");
            "internal error".to_string()
        } else {
            self.0.to_string()
        };
        (
            status,
            Json(json!({ "error": { "code": code, "message": message } })),
        )
            .into_response()
    }
}
