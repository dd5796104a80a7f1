//! `Fields<T>`: a request body read as JSON, as URL-encoded form fields or as multipart
//! form fields, whichever its content type says, as the seed service accepted.

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
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
