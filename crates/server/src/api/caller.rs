//! `Caller` as an extractor: the `Authorization: Bearer …` header, authenticated, or a 401
//! saying whether the credential is missing, invalid or expired.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::Service;
use crate::auth::Caller;
use crate::error::{AuthFailure, Error};

impl FromRequestParts<Arc<Service>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &Arc<Service>,
    ) -> Result<Self, ApiError> {
        let header = match parts.headers.get(AUTHORIZATION) {
            None => None,
            Some(value) => Some(
                value
                    .to_str()
                    .map_err(|_| Error::Unauthenticated(AuthFailure::Invalid))?,
            ),
        };
        Ok(service.auth().authenticate(header)?)
    }
}
