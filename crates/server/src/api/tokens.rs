//! Environment tokens over HTTP: issue (rotate), list, revoke; and the answer that carries a
//! new token, in its body and in the `X-Eddy-Token` header, never cached.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::error::{ApiError, ErrorBody};
use super::fields::Params;
use super::wire::{TokenCreated, TokenRevoked};
use super::{Answer, ok};
use crate::Service;
use crate::auth::{Caller, Issued, TokenInfo};
use crate::error::Error;
use crate::service::authorized_environment;

/// The response header carrying a token just issued.
pub const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-eddy-token");

/// `body` with `status`; with the token just issued, if any, in [`TOKEN_HEADER`] too, and
/// the answer marked not to be cached.
pub fn with_token<T: Serialize>(status: StatusCode, body: T, issued: Option<&Issued>) -> Response {
    let Some(issued) = issued else {
        return (status, Json(body)).into_response();
    };
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

/// How long a new token lasts.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct IssueQuery {
    /// How long the token is valid, at least 1; forever without it.
    #[param(minimum = 1)]
    expires_in_seconds: Option<u64>,
}

/// A new token (rotation: issue one, switch clients to it, revoke the old).
#[utoipa::path(
    post, path = "/v1/environments/{id}/tokens", tag = "tokens",
    params(("id" = String, Path, description = "The environment"), IssueQuery),
    responses(
        (status = 201, description = "The new token, shown this once", body = TokenCreated,
            headers(("x-eddy-token" = String, description = "The new token"))),
        (status = 400, description = "`invalid_request`: `expiresInSeconds` is 0", body = ErrorBody),
    ),
)]
pub async fn issue(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(environment): Path<String>,
    Params(query): Params<IssueQuery>,
) -> Result<Response, ApiError> {
    let environment = authorized_environment(&caller, Some(environment))?;
    let ttl = match query.expires_in_seconds {
        Some(0) => return Err(Error::invalid("expiresInSeconds", "must be at least 1").into()),
        seconds => seconds.map(Duration::from_secs),
    };
    let issued = service.auth().issue(&environment, ttl)?;
    let body = TokenCreated {
        environment_id: environment,
        created_at_ms: issued.info.created_at_ms,
        token: (&issued).into(),
    };
    Ok(with_token(StatusCode::CREATED, body, Some(&issued)))
}

/// The environment's tokens, without their secrets.
#[utoipa::path(
    get, path = "/v1/environments/{id}/tokens", tag = "tokens",
    params(("id" = String, Path, description = "The environment")),
    responses((status = 200, description = "The environment's tokens", body = Vec<TokenInfo>)),
)]
pub async fn list(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(environment): Path<String>,
) -> Answer<Vec<TokenInfo>> {
    let environment = authorized_environment(&caller, Some(environment))?;
    ok(service.auth().store()?.list(&environment))
}

/// Revokes the token at once.
#[utoipa::path(
    delete, path = "/v1/environments/{id}/tokens/{tokenId}", tag = "tokens",
    params(
        ("id" = String, Path, description = "The environment"),
        ("tokenId" = String, Path, description = "The token's id"),
    ),
    responses(
        (status = 200, description = "The token, revoked", body = TokenRevoked),
        (status = 404, description = "`not_found`: no such token of the environment", body = ErrorBody),
    ),
)]
pub async fn revoke(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path((environment, token_id)): Path<(String, String)>,
) -> Answer<TokenRevoked> {
    let environment = authorized_environment(&caller, Some(environment))?;
    if !service.auth().store()?.revoke(&environment, &token_id)? {
        return Err(
            Error::NotFound(format!("token `{token_id}` of environment `{environment}`")).into(),
        );
    }
    ok(TokenRevoked {
        token_id,
        environment_id: environment,
        status: "REVOKED".into(),
    })
}
