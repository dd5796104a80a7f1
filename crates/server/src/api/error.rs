//! `ApiError`: every failure as a status, a stable code and a message that names the problem.

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::WWW_AUTHENTICATE;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{AuthFailure, Error};

/// A failure as the API answers it: a status, a stable code, and a message.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError(error)
    }
}

impl ApiError {
    /// The HTTP status and the stable code of this failure.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match &self.0 {
            Error::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            Error::Job {
                field: "schema", ..
            } => (StatusCode::BAD_REQUEST, "invalid_schema"),
            Error::Job { .. } => (StatusCode::BAD_REQUEST, "invalid_query"),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Error::OutputTopicTaken { .. } => (StatusCode::CONFLICT, "output_topic_in_use"),
            Error::Unauthenticated(AuthFailure::Missing) => {
                (StatusCode::UNAUTHORIZED, "missing_credential")
            }
            Error::Unauthenticated(AuthFailure::Invalid) => {
                (StatusCode::UNAUTHORIZED, "invalid_token")
            }
            Error::Unauthenticated(AuthFailure::Expired) => {
                (StatusCode::UNAUTHORIZED, "expired_token")
            }
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Error::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Error::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "request_timeout"),
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
        let body = Json(json!({ "error": { "code": code, "message": message } }));
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750: the scheme to use, and which of its errors this is.
            let challenge = match code {
                "missing_credential" => r#"Bearer realm="eddy""#,
                _ => r#"Bearer realm="eddy", error="invalid_token""#,
            };
            return (status, [(WWW_AUTHENTICATE, challenge)], body).into_response();
        }
        (status, body).into_response()
    }
}
