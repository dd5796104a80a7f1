//! Callers and tenancy: the admin gets environments their tokens; a token reaches only its
//! environment (403 elsewhere), no credential is a 401 on every route but `/healthz`, and
//! tokens rotate, expire and are never shown again after their issue.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use super::*;

/// Creates `environment`'s connector as the admin; returns the token it issues.
pub(super) async fn onboard(router: &Router, environment: &str) -> String {
    let request = form(
        "/createConnector",
        &[
            ("connectionString", &connection()),
            ("environmentId", environment),
        ],
    );
    let (status, headers, body) = exchange(router, Some(ADMIN), request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["token"]
        .as_str()
        .expect("a token in the body")
        .to_string();
    assert_eq!(headers[crate::api::TOKEN_HEADER], token.as_str());
    assert_eq!(headers["cache-control"], "no-store");
    assert!(body["tokenId"].is_string(), "{body}");
    token
}

/// Creates a job of `environment` as its token; returns the job's id.
pub(super) async fn job_of(router: &Router, token: &str, environment: &str) -> String {
    let fields = json!({
        "connectionString": connection(),
        "environmentId": environment,
        "schema": SCHEMA,
        "sqlQuery": SQL,
    });
    let (status, job) = send_as(
        router,
        Some(token),
        json_request("POST", "/createJob", &fields),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert!(
        job.get("token").is_none(),
        "the environment has a token: {job}"
    );
    job["id"].as_str().unwrap().to_string()
}

fn request(method: &str, path: &str, body: Option<&Value>) -> Request<Body> {
    match body {
        Some(body) => json_request(method, path, body),
        None => Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap(),
    }
}

/// Every route that touches environment `b`: method, path and body.
fn routes_of_b(job: &str, token_id: &str) -> Vec<(&'static str, String, Option<Value>)> {
    let environment = json!({"connectionString": connection(), "environmentId": "b"});
    let mut create = job_fields(&[]);
    create["environmentId"] = json!("b");
    create["outputTopic"] = json!("b.other");
    vec![
        ("POST", "/createConnector".into(), Some(environment.clone())),
        ("POST", "/createJob".into(), Some(create.clone())),
        ("POST", "/v1/jobs".into(), Some(create)),
        ("POST", "/deleteJob".into(), Some(environment.clone())),
        ("GET", format!("/jobStatus/{job}"), None),
        ("GET", "/jobStatus?environmentId=b".into(), None),
        ("GET", format!("/v1/jobs/{job}"), None),
        ("POST", format!("/v1/jobs/{job}/pause"), None),
        ("POST", format!("/v1/jobs/{job}/resume"), None),
        ("DELETE", format!("/v1/jobs/{job}"), None),
        ("POST", "/v1/connectors/test".into(), Some(environment)),
        ("GET", "/v1/connectors/b-connector".into(), None),
        ("DELETE", "/v1/connectors/b-connector".into(), None),
        ("GET", "/v1/connectors/b-connector/schemas".into(), None),
        (
            "GET",
            "/v1/connectors/b-connector/tables?schema=public".into(),
            None,
        ),
        (
            "GET",
            "/v1/connectors/b-connector/columns?schema=public&table=orders".into(),
            None,
        ),
        ("POST", "/v1/environments/b/tokens".into(), None),
        ("GET", "/v1/environments/b/tokens".into(), None),
        (
            "DELETE",
            format!("/v1/environments/b/tokens/{token_id}"),
            None,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_reaches_its_environment_only_and_no_credential_reaches_anything() {
    let fixture = fixture(None);
    let router = &fixture.router;
    let token_a = onboard(router, "a").await;
    let token_b = onboard(router, "b").await;
    let job_a = job_of(router, &token_a, "a").await;
    let job_b = job_of(router, &token_b, "b").await;
    let (_, tokens_b) = send(router, request("GET", "/v1/environments/b/tokens", None)).await;
    let token_id_b = tokens_b[0]["tokenId"].as_str().unwrap().to_string();

    for (method, path, body) in routes_of_b(&job_b, &token_id_b) {
        let (status, answer) = send_as(
            router,
            Some(&token_a),
            request(method, &path, body.as_ref()),
        )
        .await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "token A: {method} {path}: {answer}"
        );
    }
    let every_route = routes_of_b(&job_b, &token_id_b).into_iter().chain([
        ("GET", "/v1/jobs".to_string(), None),
        ("POST", "/v1/jobs".to_string(), Some(job_fields(&[]))),
        ("GET", "/v1/connectors".to_string(), None),
    ]);
    for (method, path, body) in every_route {
        for (token, code) in [
            (None, "missing_credential"),
            (Some("eddy_0123456789abcdef_00"), "invalid_token"),
            (Some("not-even-a-token"), "invalid_token"),
        ] {
            let (status, headers, answer) =
                exchange(router, token, request(method, &path, body.as_ref())).await;
            assert_eq!(
                (status, answer["error"]["code"].as_str()),
                (StatusCode::UNAUTHORIZED, Some(code)),
                "{token:?}: {method} {path}: {answer}"
            );
            assert!(
                headers["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer")
            );
        }
    }

    // Nothing of B changed, and B's token still works on B.
    let (status, b) = send_as(
        router,
        Some(&token_b),
        get_request(&format!("/v1/jobs/{job_b}")),
    )
    .await;
    assert_eq!(
        (status, &b["status"]),
        (StatusCode::OK, &json!("CREATED")),
        "{b}"
    );
    // Each token lists its own environment's jobs and connector; the admin lists all.
    for (token, jobs, connectors) in [
        (token_a.as_str(), vec![job_a.clone()], vec!["a-connector"]),
        (token_b.as_str(), vec![job_b.clone()], vec!["b-connector"]),
        (
            ADMIN,
            vec![job_a.clone(), job_b.clone()],
            vec!["a-connector", "b-connector"],
        ),
    ] {
        let (_, listed) = send_as(router, Some(token), get_request("/v1/jobs")).await;
        let mut ids: Vec<String> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        let mut expected = jobs;
        expected.sort();
        assert_eq!(ids, expected);
        let (_, listed) = send_as(router, Some(token), get_request("/v1/connectors")).await;
        let names: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, connectors);
    }
    // A token may not write into another environment's topics, even where no job writes.
    let mut into_b = job_fields(&[]);
    into_b["environmentId"] = json!("a");
    into_b["outputTopic"] = json!("b.public.orders");
    let (status, body) = send_as(
        router,
        Some(&token_a),
        json_request("POST", "/createJob", &into_b),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // With its own token, A controls its job.
    let (status, paused) = send_as(
        router,
        Some(&token_a),
        request("POST", &format!("/v1/jobs/{job_a}/pause"), None),
    )
    .await;
    assert_eq!(
        (status, &paused["status"]),
        (StatusCode::OK, &json!("PAUSED")),
        "{paused}"
    );
}

#[tokio::test]
async fn tokens_rotate_expire_and_are_shown_only_when_issued() {
    let fixture = fixture(None);
    let router = &fixture.router;
    // createJob for an environment without a token issues one; the next does not.
    let (status, headers, first) = exchange(
        router,
        Some(ADMIN),
        json_request("POST", "/createJob", &job_fields(&[])),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let old = first["token"]
        .as_str()
        .expect("the first job's token")
        .to_string();
    assert_eq!(headers[crate::api::TOKEN_HEADER], old.as_str());
    let job = first["id"].as_str().unwrap().to_string();

    // Rotation: a new token, then the old one revoked.
    let (status, issued) = send_as(
        router,
        Some(&old),
        request("POST", "/v1/environments/shop/tokens", None),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let new = issued["token"].as_str().unwrap().to_string();
    let old_id = first["tokenId"].as_str().unwrap();
    let revoke_old = || {
        request(
            "DELETE",
            &format!("/v1/environments/shop/tokens/{old_id}"),
            None,
        )
    };
    let (status, revoked) = send_as(router, Some(&new), revoke_old()).await;
    assert_eq!(
        (status, &revoked["status"]),
        (StatusCode::OK, &json!("REVOKED")),
        "{revoked}"
    );
    let status_path = format!("/jobStatus/{job}");
    let (status, body) = send_as(router, Some(&old), get_request(&status_path)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );
    let (status, shown) = send_as(router, Some(&new), get_request(&status_path)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, again) = send_as(router, Some(&new), revoke_old()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{again}");

    // An expiring token works until it expires, then is a 401 that says so.
    let (status, short) = send(
        router,
        request(
            "POST",
            "/v1/environments/shop/tokens?expiresInSeconds=1",
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{short}");
    let short = short["token"].as_str().unwrap().to_string();
    assert_eq!(
        send_as(router, Some(&short), get_request(&status_path))
            .await
            .0,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, body) = send_as(router, Some(&short), get_request(&status_path)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("expired_token"))
    );

    // After their issue, no answer shows a token's secret.
    let (_, listed) = send(router, request("GET", "/v1/environments/shop/tokens", None)).await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let (_, jobs) = send(router, get_request("/v1/jobs")).await;
    for answer in [listed, jobs, shown] {
        for token in [&old, &new, &short] {
            assert!(
                !answer.to_string().contains(&token[token.len() - 64..]),
                "{answer}"
            );
        }
    }
}

#[tokio::test]
async fn without_authentication_everyone_is_the_admin_and_no_token_is_issued() {
    let fixture = fixture_with(None, Auth::off());
    let (status, job) = send_as(
        &fixture.router,
        None,
        json_request("POST", "/createJob", &job_fields(&[])),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert!(job.get("token").is_none(), "{job}");
    let (status, listed) = send_as(&fixture.router, None, get_request("/v1/jobs")).await;
    assert_eq!(
        (status, listed.as_array().map(Vec::len)),
        (StatusCode::OK, Some(1))
    );
    let (status, body) = send_as(
        &fixture.router,
        None,
        request("POST", "/v1/environments/shop/tokens", None),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--auth none")
    );
}
