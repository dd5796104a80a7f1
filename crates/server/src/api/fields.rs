//! `Fields<T>`: a request body read as JSON, as URL-encoded form fields or as multipart
//! form fields, whichever its content type says, as the seed service accepted; and
//! `Params<T>`, a query string, whose failures are the API's `400` too.

use axum::extract::{FromRequest, FromRequestParts, Multipart, Query, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::{Form, Json};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::BODY_LIMIT;
use super::error::ApiError;
use crate::error::Error;

/// A request's fields, read from whichever body encoding it used.
pub struct Fields<T>(pub T);

impl<S, T> FromRequest<S> for Fields<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let body = |status: StatusCode, detail: String| {
            ApiError(if status == StatusCode::PAYLOAD_TOO_LARGE {
                Error::TooLarge(BODY_LIMIT)
            } else {
                Error::invalid("body", detail)
            })
        };
        if content_type.starts_with("application/x-www-form-urlencoded") {
            let Form(fields) = Form::<T>::from_request(request, state)
                .await
                .map_err(|e| body(e.status(), e.body_text()))?;
            return Ok(Fields(fields));
        }
        if content_type.starts_with("multipart/form-data") {
            let mut multipart = Multipart::from_request(request, state)
                .await
                .map_err(|e| body(e.status(), e.body_text()))?;
            let mut fields = Map::new();
            while let Some(field) = multipart
                .next_field()
                .await
                .map_err(|e| body(e.status(), e.body_text()))?
            {
                let name = field.name().unwrap_or_default().to_string();
                let text = field
                    .text()
                    .await
                    .map_err(|e| body(e.status(), e.body_text()))?;
                fields.insert(name, Value::String(text));
            }
            let fields = serde_json::from_value(Value::Object(fields))
                .map_err(|e| body(StatusCode::BAD_REQUEST, e.to_string()))?;
            return Ok(Fields(fields));
        }
        let Json(fields) = Json::<T>::from_request(request, state).await.map_err(|e| {
            body(
                e.status(),
                format!("{} (send JSON or form fields)", e.body_text()),
            )
        })?;
        Ok(Fields(fields))
    }
}

/// A request's query parameters; a query string that does not read as `T` is a `400
/// invalid_request` naming the problem.
pub struct Params<T>(pub T);

impl<S, T> FromRequestParts<S> for Params<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(params) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError(Error::invalid("query", e.body_text())))?;
        Ok(Params(params))
    }
}
