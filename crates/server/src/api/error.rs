//! `ApiError`: every failure as a status, a stable code and a message that names the problem,
//! answered as one typed shape, [`ErrorBody`].

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::WWW_AUTHENTICATE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{AuthFailure, Error};

/// A failure as the API answers it: a status, a stable code, and a message.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError(error)
    }
}

/// Every `4xx` and `5xx` answer: `{"error": {"code", "message", "field"?}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What failed: a stable code to branch on, a message for people, and the request field
/// at fault when there is one.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// Names the field and the problem; a `500` says only `internal error`.
    pub message: String,
    /// The request field at fault (`connectionString`, `sqlQuery`, `outputTopic`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The stable error codes, by status: `400` `invalid_request` (a missing or wrong field or
/// body), `invalid_schema` (the Prisma schema), `invalid_query` (the SQL); `401`
/// `missing_credential`, `invalid_token` (unknown, revoked or malformed), `expired_token`;
/// `403` `forbidden` (another environment's resource, or an origin not allowed); `404`
/// `not_found`; `405` `method_not_allowed`; `409` `conflict` (e.g. resuming a canceled job), `output_topic_in_use`;
/// `413` `payload_too_large`; `429` `rate_limited`; `500` `internal`; `502`
/// `connect_failed` (Kafka Connect), `postgres_failed`; `503` `request_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidSchema,
    InvalidQuery,
    MissingCredential,
    InvalidToken,
    ExpiredToken,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    OutputTopicInUse,
    PayloadTooLarge,
    RateLimited,
    Internal,
    ConnectFailed,
    PostgresFailed,
    RequestTimeout,
}

impl ApiError {
    /// The HTTP status and the stable code of this failure.
    pub fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match &self.0 {
            Error::Invalid { .. } => (StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest),
            Error::Job {
                field: "schema", ..
            } => (StatusCode::BAD_REQUEST, ErrorCode::InvalidSchema),
            Error::Job { .. } => (StatusCode::BAD_REQUEST, ErrorCode::InvalidQuery),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            Error::MethodNotAllowed(_) => {
                (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed)
            }
            Error::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            Error::OutputTopicTaken { .. } => (StatusCode::CONFLICT, ErrorCode::OutputTopicInUse),
            Error::Unauthenticated(AuthFailure::Missing) => {
                (StatusCode::UNAUTHORIZED, ErrorCode::MissingCredential)
            }
            Error::Unauthenticated(AuthFailure::Invalid) => {
                (StatusCode::UNAUTHORIZED, ErrorCode::InvalidToken)
            }
            Error::Unauthenticated(AuthFailure::Expired) => {
                (StatusCode::UNAUTHORIZED, ErrorCode::ExpiredToken)
            }
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            Error::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge),
            Error::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited),
            Error::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::RequestTimeout),
            Error::Connect(_) => (StatusCode::BAD_GATEWAY, ErrorCode::ConnectFailed),
            Error::Postgres(_) => (StatusCode::BAD_GATEWAY, ErrorCode::PostgresFailed),
            Error::Registry(_) | Error::State(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal)
            }
        }
    }

    /// The request field at fault, if the failure names one.
    fn field(&self) -> Option<String> {
        match &self.0 {
            Error::Invalid { field, .. } => Some(field.clone()),
            Error::Job { field, .. } => Some(field.to_string()),
            Error::OutputTopicTaken { .. } => Some("outputTopic".to_string()),
            _ => None,
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
        let field = self.field();
        let body = Json(ErrorBody {
            error: ErrorDetail {
                code,
                message,
                field,
            },
        });
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750: the scheme to use, and which of its errors this is.
            let challenge = match code {
                ErrorCode::MissingCredential => r#"Bearer realm="eddy""#,
                _ => r#"Bearer realm="eddy", error="invalid_token""#,
            };
            return (status, [(WWW_AUTHENTICATE, challenge)], body).into_response();
        }
        (status, body).into_response()
    }
}
