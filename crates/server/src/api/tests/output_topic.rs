//! One job, one output topic: a second live job writing a topic is a 409 naming the first
//! (when the caller may see it) and suggesting `outputTopic`; a canceled job frees its topic.

use axum::http::StatusCode;
use serde_json::json;

use super::*;

async fn create(router: &Router, token: &str, fields: &Value) -> (StatusCode, Value) {
    send_as(
        router,
        Some(token),
        json_request("POST", "/createJob", fields),
    )
    .await
}

#[tokio::test]
async fn a_topic_written_by_a_live_job_is_refused_with_that_job_named() {
    let fixture = fixture(None);
    let router = &fixture.router;
    let (status, first) = create(router, ADMIN, &job_fields(&[])).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(
        first["outputTopic"], "shop",
        "the first job keeps the seed's default"
    );
    let token = first["token"].as_str().unwrap().to_string();
    let first_id = first["id"].as_str().unwrap();

    for path in ["/createJob", "/v1/jobs"] {
        let (status, body) = send_as(
            router,
            Some(&token),
            json_request("POST", path, &job_fields(&[])),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("output_topic_in_use")),
            "{body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(first_id)
                && message.contains("outputTopic")
                && message.contains("shop.job2"),
            "{message}"
        );
    }
    let (status, second) = create(
        router,
        &token,
        &job_fields(&[("outputTopic", Some("shop.job2"))]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let (_, shown) = send_as(
        router,
        Some(&token),
        get_request(&format!("/jobStatus/{}", second["id"].as_str().unwrap())),
    )
    .await;
    assert_eq!(shown["outputTopic"], "shop.job2");

    // Another environment's job on a topic of this one is refused without being named.
    let mut other = job_fields(&[("outputTopic", Some("shop.shared"))]);
    other["environmentId"] = json!("other");
    let (status, written) = create(router, ADMIN, &other).await;
    assert_eq!(status, StatusCode::CREATED, "{written}");
    let (status, body) = create(
        router,
        &token,
        &job_fields(&[("outputTopic", Some("shop.shared"))]),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("a job of another environment"),
        "{message}"
    );
    assert!(
        !message.contains(written["id"].as_str().unwrap()),
        "{message}"
    );

    // deleteJob cancels the environment's jobs: their topics are free again.
    let delete = json!({"connectionString": connection(), "environmentId": "shop"});
    let (status, _) = send_as(
        router,
        Some(&token),
        json_request("POST", "/deleteJob", &delete),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, again) = create(router, &token, &job_fields(&[])).await;
    assert_eq!(
        (status, &again["outputTopic"]),
        (StatusCode::CREATED, &json!("shop")),
        "{again}"
    );
}
