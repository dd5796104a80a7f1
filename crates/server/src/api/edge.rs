//! The HTTP edge every route sits behind: a request id on each answer (and on the request's
//! tracing span), a time limit on each request, CORS for the origins the operator names, and
//! a rate limit per caller.
//!
//! Written on `axum::middleware::from_fn` rather than taken from tower-http: its `cors`,
//! `request-id` and `timeout` layers are behind features of the tower-http that reqwest
//! (and through it DataFusion's object store) already builds, and turning them on rebuilds
//! that whole stack; each of the three is a few lines here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION, ORIGIN, RETRY_AFTER, VARY,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::error::ApiError;
use super::rate_limit::{RateLimiter, Standing};
use crate::Service;
use crate::auth::Caller;
use crate::error::Error;

/// The header that carries a request's id, in the request (kept when it is a plain token)
/// and in every answer.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the edge allows.
#[derive(Debug, Clone)]
pub struct EdgeOptions {
    /// Origins (`https://ui.example.com`) whose pages may call the API with credentials;
    /// a request from any other origin is refused.
    pub cors_origins: Vec<String>,
    /// How long a request may take before it is answered `503 request_timeout`.
    pub request_timeout: Duration,
    /// Requests each caller may make per minute before it is answered `429`.
    pub requests_per_minute: u32,
}

impl Default for EdgeOptions {
    fn default() -> Self {
        EdgeOptions {
            cors_origins: Vec::new(),
            request_timeout: Duration::from_secs(30),
            requests_per_minute: 6000,
        }
    }
}

/// Names the caller of a request, for its rate limit; `None` for one that did not
/// authenticate (its request is refused by the route, uncounted).
pub type Identify = Arc<dyn Fn(&HeaderMap) -> Option<String> + Send + Sync>;

/// Callers as `service` authenticates them: the admin, or an environment (its tokens share
/// one limit).
pub fn callers_of(service: Arc<Service>) -> Identify {
    Arc::new(move |headers: &HeaderMap| {
        let header = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        match service.auth().authenticate(header).ok()? {
            Caller::Admin => Some("admin".into()),
            Caller::Environment(environment) => Some(format!("environment {environment}")),
        }
    })
}

struct Edge {
    options: EdgeOptions,
    identify: Identify,
    limiter: RateLimiter,
}

/// `router` behind the edge, its callers named by `identify`.
pub fn with_edge(router: Router, options: EdgeOptions, identify: Identify) -> Router {
    let edge_state = Edge {
        limiter: RateLimiter::new(options.requests_per_minute),
        options,
        identify,
    };
    router.layer(middleware::from_fn_with_state(Arc::new(edge_state), edge))
}

async fn edge(State(edge): State<Arc<Edge>>, request: Request, next: Next) -> Response {
    let options = &edge.options;
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| is_plain_id(v.as_bytes()))
        .cloned()
        .unwrap_or_else(new_id);
    let origin = request.headers().get(ORIGIN).cloned();
    let allowed = origin.as_ref().is_some_and(|origin| {
        (options.cors_origins.iter()).any(|allowed| allowed.as_bytes() == origin.as_bytes())
    });
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    let standing = match (&origin, preflight) {
        (Some(_), true) => None,
        _ => (edge.identify)(request.headers()).map(|c| edge.limiter.admit(&c, Instant::now())),
    };
    let mut response = match (&origin, allowed) {
        (Some(origin), false) => ApiError(Error::Forbidden(format!(
            "origin `{}` may not call this API (the server's --cors-origin list)",
            String::from_utf8_lossy(origin.as_bytes())
        )))
        .into_response(),
        (Some(_), true) if preflight => preflight_answer(),
        _ if standing.is_some_and(|s| s.refused) => {
            ApiError(Error::RateLimited(options.requests_per_minute)).into_response()
        }
        _ => {
            let span = tracing::info_span!(
                "request",
                id = %String::from_utf8_lossy(id.as_bytes()),
                method = %request.method(),
                path = request.uri().path(),
            );
            let limit = options.request_timeout;
            match tokio::time::timeout(limit, next.run(request).instrument(span)).await {
                Ok(response) => response,
                Err(_) => ApiError(Error::Timeout(limit)).into_response(),
            }
        }
    };
    let headers = response.headers_mut();
    if let (Some(origin), true) = (origin, allowed) {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(
                "x-request-id, x-eddy-token, x-ratelimit-limit, x-ratelimit-remaining, \
                 x-ratelimit-reset, retry-after",
            ),
        );
    }
    headers.append(VARY, HeaderValue::from_static("origin"));
    headers.insert(REQUEST_ID, id);
    if let Some(standing) = standing {
        rate_limit_headers(headers, standing);
    }
    response
}

/// `X-RateLimit-Limit`, `-Remaining` and `-Reset` (seconds), and `Retry-After` when refused.
fn rate_limit_headers(headers: &mut HeaderMap, standing: Standing) {
    let number = |n: u64| HeaderValue::from(n);
    headers.insert("x-ratelimit-limit", number(standing.limit.into()));
    headers.insert("x-ratelimit-remaining", number(standing.remaining.into()));
    headers.insert("x-ratelimit-reset", number(standing.reset_seconds));
    if standing.refused {
        headers.insert(RETRY_AFTER, number(standing.reset_seconds));
    }
}

/// The answer to an allowed origin's preflight.
fn preflight_answer() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, DELETE"),
            ),
            (
                ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("authorization, content-type, x-request-id"),
            ),
            (ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600")),
        ],
    )
        .into_response()
}

/// A caller's id is kept when it is 1 to 64 letters, digits, `-`, `_` or `.`: anything else
/// could forge log lines.
fn is_plain_id(id: &[u8]) -> bool {
    (1..=64).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn new_id() -> HeaderValue {
    HeaderValue::from_str(&format!("{:016x}", rand::random::<u64>()))
        .expect("hex digits are a valid header value")
}
