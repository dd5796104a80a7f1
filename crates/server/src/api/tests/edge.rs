//! The edge in front of the routes: request ids, the time limit, CORS for the configured
//! origins only, and the rate limit per caller.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::api::edge::{EdgeOptions, Identify, with_edge};

const UI: &str = "https://ui.example.com";

/// Callers named by their bearer credential as it is (the routes here authenticate nobody).
fn by_bearer() -> Identify {
    Arc::new(|headers: &axum::http::HeaderMap| {
        let value = headers.get("authorization")?.to_str().ok()?;
        Some(value.strip_prefix("Bearer ")?.to_string())
    })
}

fn app(timeout: Duration) -> Router {
    app_with(timeout, 6000)
}

fn app_with(timeout: Duration, requests_per_minute: u32) -> Router {
    let routes = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
    with_edge(
        routes,
        EdgeOptions {
            cors_origins: vec![UI.into()],
            request_timeout: timeout,
            requests_per_minute,
        },
        by_bearer(),
    )
}

async fn send(app: Router, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = app.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status, parts.headers, json)
}

fn get_request(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_plain_one_is_kept() {
    let (_, headers, _) = send(app(Duration::from_secs(5)), get_request("/healthz", &[])).await;
    let id = headers["x-request-id"].to_str().unwrap();
    assert!(
        id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    let (_, headers, _) = send(
        app(Duration::from_secs(5)),
        get_request("/healthz", &[("x-request-id", "caller-7.a_b")]),
    )
    .await;
    assert_eq!(headers["x-request-id"], "caller-7.a_b");
    let (_, headers, _) = send(
        app(Duration::from_secs(5)),
        get_request("/healthz", &[("x-request-id", "forged id \" = 1")]),
    )
    .await;
    assert_ne!(headers["x-request-id"], "forged id \" = 1");
}

#[tokio::test]
async fn a_request_over_the_time_limit_is_a_503_in_the_error_shape() {
    let (status, _, body) = send(app(Duration::from_millis(50)), get_request("/slow", &[])).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
}

#[tokio::test]
async fn a_configured_origin_gets_cors_and_any_other_is_refused() {
    let preflight = |origin: &str| {
        Request::options("/healthz")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization")
            .body(Body::empty())
            .unwrap()
    };
    let (status, headers, _) = send(app(Duration::from_secs(5)), preflight(UI)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(headers["access-control-allow-origin"], UI);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert!(
        headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );

    let (status, headers, _) = send(
        app(Duration::from_secs(5)),
        get_request("/healthz", &[("origin", UI)]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["access-control-allow-origin"], UI);
    assert!(
        headers["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("x-request-id")
    );

    for request in [
        preflight("https://evil.example.com"),
        get_request("/healthz", &[("origin", "https://evil.example.com")]),
    ] {
        let (status, headers, body) = send(app(Duration::from_secs(5)), request).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"]["code"], "forbidden", "{body}");
        assert!(!headers.contains_key("access-control-allow-origin"));
    }

    // Without an Origin (curl, services) nothing changes.
    let (status, headers, _) =
        send(app(Duration::from_secs(5)), get_request("/healthz", &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn a_caller_over_its_rate_is_a_429_with_when_to_retry() {
    let app = app_with(Duration::from_secs(5), 2);
    let as_a = || get_request("/healthz", &[("authorization", "Bearer a")]);
    let (status, headers, _) = send(app.clone(), as_a()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-ratelimit-limit"], "2");
    assert_eq!(headers["x-ratelimit-remaining"], "1");
    let reset: u64 = headers["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&reset), "{reset}");
    let (status, _, _) = send(app.clone(), as_a()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, body) = send(app.clone(), as_a()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    assert!(headers.contains_key("retry-after"));
    // Another caller, and a caller nobody authenticated, are not held back by it.
    let (status, _, _) = send(
        app.clone(),
        get_request("/healthz", &[("authorization", "Bearer b")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, _) = send(app, get_request("/healthz", &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key("x-ratelimit-limit"));
}
