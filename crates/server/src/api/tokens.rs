//! Environment tokens over HTTP: issue (rotate), list, revoke; and the answer that carries a
//! new token, in its body and in the `X-Eddy-Token` header, never cached.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use crate::Service;
use crate::auth::{Caller, Issued};
use crate::error::Error;
use crate::service::authorized_environment;

/// The response header carrying a token just issued.
pub const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-eddy-token");

/// `body` with `status`, plus the token just issued, if any: as `token` and `tokenId` in the
/// body and in [`TOKEN_HEADER`].
pub fn with_token(status: StatusCode, mut body: Value, issued: Option<Issued>) -> Response {
    let Some(issued) = issued else {
        return (status, Json(body)).into_response();
    };
    body["token"] = json!(issued.token);
    body["tokenId"] = json!(issued.info.token_id);
    body["tokenExpiresAtMs"] = json!(issued.info.expires_at_ms);
    let header = HeaderValue::from_str(&issued.token).expect("a token is visible ASCII");
    (
        status,
        [
            (TOKEN_HEADER, header),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Json(body),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueQuery {
    /// How long the token is valid; forever without it.
    expires_in_seconds: Option<u64>,
}

/// `POST /v1/environments/{id}/tokens`: a new token (rotation: issue one, switch clients to
/// it, revoke the old).
pub async fn issue(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(environment): Path<String>,
    Query(query): Query<IssueQuery>,
) -> Result<Response, ApiError> {
    let environment = authorized_environment(&caller, Some(environment))?;
    let ttl = match query.expires_in_seconds {
        Some(0) => return Err(Error::invalid("expiresInSeconds", "must be at least 1").into()),
        seconds => seconds.map(Duration::from_secs),
    };
    let issued = service.auth().issue(&environment, ttl)?;
    let body = json!({ "environmentId": environment, "createdAtMs": issued.info.created_at_ms });
    Ok(with_token(StatusCode::CREATED, body, Some(issued)))
}

/// `GET /v1/environments/{id}/tokens`: the environment's tokens, without their secrets.
pub async fn list(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(environment): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let environment = authorized_environment(&caller, Some(environment))?;
    let tokens = service.auth().store()?.list(&environment);
    Ok((StatusCode::OK, Json(json!(tokens))))
}

/// `DELETE /v1/environments/{id}/tokens/{tokenId}`: revokes it at once.
pub async fn revoke(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path((environment, token_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let environment = authorized_environment(&caller, Some(environment))?;
    if !service.auth().store()?.revoke(&environment, &token_id)? {
        return Err(
            Error::NotFound(format!("token `{token_id}` of environment `{environment}`")).into(),
        );
    }
    Ok((
        StatusCode::OK,
        Json(json!({ "tokenId": token_id, "environmentId": environment, "status": "REVOKED" })),
    ))
}
