//! A job's results, history and logs over the API: the result rows read from a checkpoint,
//! paged; the history of pauses and resumes; the job's log lines, passwords masked; 404 for
//! an unknown job (another environment's 403 is `openapi`'s test of every route).

use std::path::Path;

use axum::http::StatusCode;
use eddy_engine::{Pipeline, Record};
use eddy_kafka::checkpoint::{Checkpoint, CheckpointMeta, CheckpointStore};
use serde_json::json;

use super::auth::{job_of, onboard};
use super::*;
use crate::job_logs::{self, LogLine};
use crate::registry::JobDefinition;

/// When the checkpoints written here were taken.
pub(super) const TAKEN_AT_MS: u64 = 1_700_000_000_000;

/// Pauses the job (its thread stops) and writes a checkpoint of its query over three
/// orders, two `new` and one `paid`, as the job would have; returns the snapshot's size.
async fn checkpointed(router: &Router, data_dir: &Path, job: &str) -> usize {
    let (status, body) = send(router, post_request(&format!("/v1/jobs/{job}/pause"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let dir = data_dir.join("jobs").join(job);
    let text = std::fs::read_to_string(dir.join("job.json")).unwrap();
    let definition: JobDefinition = serde_json::from_str(&text).unwrap();
    let mut pipeline = Pipeline::new(definition.spec).unwrap();
    for (id, status) in [(1, "new"), (2, "paid"), (3, "new")] {
        let value = json!({"before": null, "after": {"id": id, "status": status, "amount": null}, "op": "c"});
        let value = value.to_string();
        let record = Record {
            topic: "shop.public.orders",
            key: None,
            value: Some(value.as_bytes()),
        };
        pipeline.push(record).unwrap();
    }
    pipeline.flush().unwrap();
    pipeline.drain();
    let snapshot = pipeline.snapshot().unwrap();
    let size = snapshot.len();
    let meta = CheckpointMeta {
        taken_at_ms: TAKEN_AT_MS,
        records_in: 3,
        ..Default::default()
    };
    CheckpointStore::new(dir)
        .save(&Checkpoint { meta, snapshot })
        .unwrap();
    size
}

fn post_request(path: &str) -> Request<Body> {
    Request::post(path).body(Body::empty()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_the_checkpointed_rows_by_key_paged() {
    let fixture = fixture(None);
    let router = &fixture.router;
    let token = onboard(router, "results").await;
    let job = job_of(router, &token, "results").await;

    let path = format!("/v1/jobs/{job}/results");
    let (status, empty) = send_as(router, Some(&token), get_request(&path)).await;
    assert_eq!(status, StatusCode::OK, "{empty}");
    assert_eq!(
        (empty["total"].clone(), empty["asOfMs"].clone()),
        (json!(0), json!(null))
    );

    checkpointed(router, &fixture.data_dir, &job).await;
    let (status, all) = send_as(router, Some(&token), get_request(&path)).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["asOfMs"], TAKEN_AT_MS);
    assert_eq!(
        all["columns"],
        json!(["status", "count(*)", "sum(orders.amount)"])
    );
    assert_eq!(
        all["rows"],
        json!([
            {"status": "new", "count(*)": 2, "sum(orders.amount)": null},
            {"status": "paid", "count(*)": 1, "sum(orders.amount)": null},
        ])
    );
    assert_eq!(
        (
            all["total"].clone(),
            all["offset"].clone(),
            all["limit"].clone()
        ),
        (json!(2), json!(0), json!(100))
    );

    let (_, page) = send_as(
        router,
        Some(&token),
        get_request(&format!("{path}?offset=1&limit=1")),
    )
    .await;
    assert_eq!(
        page["rows"],
        json!([{"status": "paid", "count(*)": 1, "sum(orders.amount)": null}])
    );
    assert_eq!(page["total"], 2);
    let (_, past) = send_as(
        router,
        Some(&token),
        get_request(&format!("{path}?offset=5")),
    )
    .await;
    assert_eq!(past["rows"], json!([]));

    let (status, refused) = send_as(
        router,
        Some(&token),
        get_request(&format!("{path}?limit=0")),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("limit"))
    );
    let (status, missing) = send(router, get_request("/v1/jobs/no-such-job/results")).await;
    assert_eq!(
        (status, missing["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_show_pauses_and_resumes_in_order() {
    let fixture = fixture(None);
    let router = &fixture.router;
    let token = onboard(router, "runs").await;
    let job = job_of(router, &token, "runs").await;
    for control in ["pause", "resume", "pause"] {
        let (status, body) = send(router, post_request(&format!("/v1/jobs/{job}/{control}"))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, runs) = send_as(
        router,
        Some(&token),
        get_request(&format!("/v1/jobs/{job}/runs")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{runs}");
    assert_eq!(runs["jobId"], job.as_str());
    // Nothing listens at the fixture's brokers: the job may also have failed (and said why).
    let events = runs["runs"].as_array().unwrap();
    let controls: Vec<&str> = (events.iter())
        .map(|e| e["kind"].as_str().unwrap())
        .filter(|kind| *kind != "FAILED")
        .collect();
    assert_eq!(controls, ["PAUSED", "RESUMED", "PAUSED"]);
    for event in events {
        assert!(event["atMs"].as_u64().unwrap() > TAKEN_AT_MS, "{event}");
        assert_eq!(event["recordsIn"], 0);
        assert_eq!(
            event["error"].is_string(),
            event["kind"] == "FAILED",
            "{event}"
        );
    }
    let (status, _) = send(router, get_request("/v1/jobs/no-such-job/runs")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn logs_are_the_jobs_last_lines_masked() {
    let fixture = fixture(None);
    let router = &fixture.router;
    let token = onboard(router, "logs").await;
    let job = job_of(router, &token, "logs").await;
    for n in 0..3 {
        let line = LogLine {
            at_ms: TAKEN_AT_MS + n,
            level: "WARN".into(),
            target: "eddy_kafka::job".into(),
            message: format!("line {n} via postgresql://app:{PASSWORD}@db/shop"),
        };
        job_logs::global().push(&job, line);
    }
    let (status, logs) = send_as(
        router,
        Some(&token),
        get_request(&format!("/v1/jobs/{job}/logs?limit=2")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{logs}");
    let messages: Vec<&str> = (logs["lines"].as_array().unwrap().iter())
        .map(|l| l["message"].as_str().unwrap())
        .filter(|m| m.starts_with("line "))
        .collect();
    assert_eq!(
        messages,
        [
            "line 1 via postgresql://app:****@db/shop",
            "line 2 via postgresql://app:****@db/shop"
        ]
    );
    let (status, refused) = send(
        router,
        get_request(&format!("/v1/jobs/{job}/logs?limit=201")),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("limit"))
    );
    let (status, _) = send(router, get_request("/v1/jobs/no-such-job/logs")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
