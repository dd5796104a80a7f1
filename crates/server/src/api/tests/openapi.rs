//! The OpenAPI document against the router: it is OpenAPI 3.1, lists every route the router
//! serves with exactly the methods it serves, and each of its operations refuses a request
//! without a credential (`401`) and, for another environment's token, anything of
//! environment B (`403`), or shows none of B's data.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use super::auth::{job_of, onboard};
use super::*;

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

async fn document(router: &Router) -> Value {
    let (status, headers, document) = exchange(router, None, get_request("/openapi.json")).await;
    assert_eq!(status, StatusCode::OK, "{document}");
    assert_eq!(headers["content-type"], "application/json");
    document
}

/// The operation's path with each `{parameter}` given by `value`.
fn concrete(path: &str, value: impl Fn(&str) -> String) -> String {
    let mut concrete = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest.find('}').unwrap();
        concrete.push_str(&rest[..start]);
        concrete.push_str(&value(&rest[start + 1..end]));
        rest = &rest[end + 1..];
    }
    concrete + rest
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                found.push(target);
            }
            map.values().for_each(|v| refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

fn is_public(operation: &Value) -> bool {
    operation["security"] == json!([{}])
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_route_with_the_methods_it_serves() {
    let fixture = fixture(None);
    let router = &fixture.router;
    let document = document(router).await;
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        document["openapi"]
    );
    serde_json::from_value::<utoipa::openapi::OpenApi>(document.clone())
        .expect("the document reads as OpenAPI");
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"]["bearer"]["description"]})
    );
    let mut targets = Vec::new();
    refs(&document, &mut targets);
    for target in targets {
        let name = target.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            document["components"]["schemas"].get(name).is_some(),
            "{target} is not in the document"
        );
    }

    let paths = document["paths"].as_object().unwrap();
    let routes = crate::api::routes();
    assert_eq!(paths.len(), routes.len(), "{:?}", paths.keys());
    for (path, _) in routes {
        let item = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not in the document"));
        let uri = concrete(path, |name| format!("some-{name}"));
        for method in METHODS {
            let request = Request::builder()
                .method(method.clone())
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let (status, answer) = send_as(router, None, request).await;
            let key = method.as_str().to_ascii_lowercase();
            let Some(operation) = item.get(&key) else {
                assert_eq!(
                    (status, answer["error"]["code"].as_str()),
                    (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")),
                    "{method} {path}"
                );
                continue;
            };
            let responses = &operation["responses"];
            for failure in ["403", "429", "503"] {
                assert_eq!(
                    responses[failure]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {failure}"
                );
            }
            for (status, response) in responses.as_object().unwrap() {
                let headers = &response["headers"];
                assert_eq!(
                    headers["X-Request-Id"]["schema"]["type"], "string",
                    "{method} {path} {status}"
                );
                assert_eq!(
                    headers["X-RateLimit-Remaining"]["schema"]["type"], "integer",
                    "{method} {path} {status}"
                );
                let retry_after = headers.get("Retry-After").is_some();
                assert_eq!(retry_after, status == "429", "{method} {path} {status}");
            }
            if let Some(body) = operation.get("requestBody") {
                let types: Vec<&String> = body["content"].as_object().unwrap().keys().collect();
                assert_eq!(
                    types,
                    ["application/json", "application/x-www-form-urlencoded"],
                    "{method} {path}"
                );
            }
            if is_public(operation) {
                assert_eq!(status, StatusCode::OK, "{method} {path}");
                continue;
            }
            assert_eq!(
                (status, answer["error"]["code"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("missing_credential")),
                "{method} {path}: {answer}"
            );
            assert!(responses.get("401").is_some(), "{method} {path}");
        }
    }
}

#[tokio::test]
async fn an_unknown_route_is_a_404_in_the_one_error_shape() {
    let fixture = fixture(None);
    let (status, answer) = send(&fixture.router, get_request("/v2/jobs")).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "{answer}"
    );
}

/// What a request of environment B puts in a parameter the document names.
fn of_b(name: &str, path: &str, job: &str, token_id: &str) -> String {
    match name {
        "id" if path.starts_with("/v1/environments/") => "b".into(),
        "id" => job.into(),
        "name" => "b-connector".into(),
        "tokenId" => token_id.into(),
        "environmentId" => "b".into(),
        "schema" => "public".into(),
        "table" => "orders".into(),
        "expiresInSeconds" => "60".into(),
        "offset" => "0".into(),
        "limit" => "10".into(),
        other => panic!("{path}: no value of B for parameter `{other}`"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_of_the_document_refuses_environment_b_to_a_token_of_a() {
    let fixture = fixture(None);
    let router = &fixture.router;
    let token_a = onboard(router, "a").await;
    let token_b = onboard(router, "b").await;
    job_of(router, &token_a, "a").await;
    let job_b = job_of(router, &token_b, "b").await;
    let (_, tokens_b) = send(router, get_request("/v1/environments/b/tokens")).await;
    let token_id_b = tokens_b[0]["tokenId"].as_str().unwrap().to_string();
    let mut body_b = job_fields(&[("outputTopic", Some("b.other"))]);
    body_b["environmentId"] = json!("b");

    let document = document(router).await;
    let (mut refused, mut listed) = (0, 0);
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let value = |name: &str| of_b(name, path, &job_b, &token_id_b);
            let query: Vec<String> = (operation["parameters"].as_array().into_iter().flatten())
                .filter(|p| p["in"] == "query")
                .map(|p| {
                    format!(
                        "{0}={1}",
                        p["name"].as_str().unwrap(),
                        value(p["name"].as_str().unwrap())
                    )
                })
                .collect();
            let mut uri = concrete(path, value);
            if !query.is_empty() {
                uri = format!("{uri}?{}", query.join("&"));
            }
            let names_b = uri != *path || operation.get("requestBody").is_some();
            let request = match operation.get("requestBody") {
                Some(_) => json_request(&method.to_uppercase(), &uri, &body_b),
                None => Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(&uri)
                    .body(Body::empty())
                    .unwrap(),
            };
            let (status, answer) = send_as(router, Some(&token_a), request).await;
            if names_b {
                assert_eq!(
                    (status, answer["error"]["code"].as_str()),
                    (StatusCode::FORBIDDEN, Some("forbidden")),
                    "token A: {method} {uri}: {answer}"
                );
                refused += 1;
                continue;
            }
            // A listing, or the service's own: none of B in it.
            assert_eq!(status, StatusCode::OK, "token A: {method} {uri}: {answer}");
            let text = answer.to_string();
            for b in [job_b.as_str(), "b-connector", "environment=\\\"b\\\""] {
                assert!(
                    !text.contains(b),
                    "token A: {method} {uri} shows {b}: {text}"
                );
            }
            listed += 1;
        }
    }
    // Seed and /v1 operations of an environment; /v1/jobs, /v1/connectors, /metrics,
    // /healthz and /openapi.json list or need none.
    assert_eq!((refused, listed), (22, 5));
}
