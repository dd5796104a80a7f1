//! Hostile input: bodies that are not UTF-8 or too large, queries too deep, too broad or
//! not queries at all, and racing requests. Each is answered cleanly (a 4xx naming the
//! problem), never by a panic, a stack overflow or a stall, and changes nothing it should not.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use super::*;
use crate::registry::Registry;

fn raw(content_type: &str, body: Vec<u8>) -> Request<Body> {
    Request::post("/createJob")
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap()
}

fn multipart_body(value: &[u8]) -> Vec<u8> {
    let mut body = b"--XyZ\r\ncontent-disposition: form-data; name=\"sqlQuery\"\r\n\r\n".to_vec();
    body.extend_from_slice(value);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    body
}

const MULTIPART: &str = "multipart/form-data; boundary=XyZ";

/// `value` as one field of a JSON, a URL-encoded and a multipart body.
fn bodies(field: &str, value: &[u8]) -> [Request<Body>; 3] {
    let mut json = format!("{{\"{field}\": \"").into_bytes();
    json.extend_from_slice(value);
    json.extend_from_slice(b"\"}");
    let mut form = format!("{field}=").into_bytes();
    form.extend_from_slice(value);
    [
        raw("application/json", json),
        raw("application/x-www-form-urlencoded", form),
        raw(MULTIPART, multipart_body(value)),
    ]
}

#[tokio::test]
async fn bodies_that_are_not_utf8_or_too_large_are_refused_and_create_nothing() {
    let fixture = fixture(None);
    let not_utf8 = b"\xff\xfe\xc3\x28 \x80".to_vec();
    let big = vec![b'a'; 8 * 1024 * 1024];
    let [json, form, multipart] = bodies("environmentId", &not_utf8);
    let bare = raw("application/json", not_utf8.clone());
    let refused = [json, form, multipart, bare]
        .map(|r| (r, StatusCode::BAD_REQUEST, "invalid_request"))
        .into_iter()
        .chain(
            bodies("sqlQuery", &big)
                .map(|r| (r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")),
        );
    for (request, status, code) in refused {
        let (got, body) = send(&fixture.router, request).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    let (_, jobs) = send(&fixture.router, get_request("/v1/jobs")).await;
    assert_eq!(jobs, json!([]));
}

/// Runs on a 2 MiB stack (the test's thread, and the blocking pool's): planning these
/// without limits overflows it.
#[tokio::test]
async fn deep_broad_and_non_query_sql_is_refused_quickly_and_touches_no_file() {
    let fixture = fixture(None);
    let dir = std::env::temp_dir().join(format!("eddy-hostile-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("secret.csv");
    std::fs::write(&secret, "s3cr3t-file-content\n").unwrap();
    let (secret, copy) = (
        secret.display().to_string(),
        dir.join("copy.csv").display().to_string(),
    );
    let cases = [
        (
            format!(
                "SELECT COUNT(*) FROM orders WHERE {}status = 'x'{}",
                "(".repeat(5_000),
                ")".repeat(5_000)
            ),
            "nest more than 50 deep",
        ),
        (
            format!(
                "SELECT COUNT(*) FROM orders WHERE id = 0{}",
                " OR id = 1".repeat(5_000)
            ),
            "nest more than 64",
        ),
        (
            format!(
                "SELECT COUNT(*) FROM orders WHERE id IN (0{})",
                ", 1".repeat(30_000)
            ),
            "at most 65536",
        ),
        (
            format!(
                "SELECT status{} FROM orders GROUP BY status",
                (0..2_000)
                    .map(|i| format!(", SUM(amount + {i})"))
                    .collect::<String>()
            ),
            "more than 256 functions",
        ),
        (
            format!("SELECT * FROM read_csv('{secret}')"),
            "Table Functions are not supported",
        ),
        (format!("SELECT COUNT(*) FROM '{secret}'"), "not found"),
        (format!("COPY orders TO '{copy}'"), "not COPY"),
        (
            format!("COPY (SELECT status FROM orders) TO '{copy}' STORED AS CSV"),
            "not COPY",
        ),
        (
            format!("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '{secret}'"),
            "CREATE EXTERNAL TABLE",
        ),
        ("CREATE TABLE t AS SELECT 1".to_string(), "not CREATE TABLE"),
        (
            "INSERT INTO orders (id) VALUES (1)".to_string(),
            "not INSERT",
        ),
        ("DROP TABLE orders".to_string(), "not DROP"),
        (
            "SELECT COUNT(*) FROM orders; DROP TABLE orders".to_string(),
            "single SQL statement",
        ),
    ];
    for (sql, words) in cases {
        let started = Instant::now();
        let mut fields = job_fields(&[]);
        fields["sqlQuery"] = json!(sql);
        let (status, body) =
            send(&fixture.router, json_request("POST", "/createJob", &fields)).await;
        let shown = &sql[..sql.len().min(60)];
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_query")),
            "{shown}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(words),
            "{shown}: `{message}` should say `{words}`"
        );
        assert!(!message.contains("s3cr3t"), "{message}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{shown} took {:?}",
            started.elapsed()
        );
    }
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["secret.csv"], "no file is written");
    std::fs::remove_dir_all(&dir).unwrap();
    let (_, jobs) = send(&fixture.router, get_request("/v1/jobs")).await;
    assert_eq!(jobs, json!([]));
}

/// Forty createJobs at once, half with their own output topic and half on the environment's
/// default: every one of the first half is created, exactly one of the second, and the other
/// nineteen are told which job took the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_concurrent_create_jobs_each_get_a_clean_answer_and_one_default_topic_writer() {
    let fixture = fixture(None);
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let router = fixture.router.clone();
            let mut fields = job_fields(&[]);
            if i % 2 == 0 {
                fields["outputTopic"] = json!(format!("shop.q{i}"));
            }
            tokio::spawn(
                async move { send(&router, json_request("POST", "/createJob", &fields)).await },
            )
        })
        .collect();
    let mut created = Vec::new();
    let mut conflicts = Vec::new();
    for call in calls {
        let (status, body) = call.await.unwrap();
        match status {
            StatusCode::CREATED => created.push(body),
            StatusCode::CONFLICT => conflicts.push(body),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!((created.len(), conflicts.len()), (21, 19));
    let default: Vec<&Value> = created
        .iter()
        .filter(|j| j["outputTopic"] == "shop")
        .collect();
    assert_eq!(default.len(), 1);
    let winner = default[0]["id"].as_str().unwrap();
    for conflict in &conflicts {
        assert!(
            conflict["error"]["message"]
                .as_str()
                .unwrap()
                .contains(winner),
            "{conflict}"
        );
    }
    let issued = created.iter().filter(|j| j.get("token").is_some()).count();
    assert_eq!(
        issued, 1,
        "one first token for the environment, however many raced"
    );
    let (_, jobs) = send(&fixture.router, get_request("/v1/jobs")).await;
    assert_eq!(jobs.as_array().unwrap().len(), 21);
    let stored = Registry::open(&fixture.data_dir)
        .unwrap()
        .load_all()
        .unwrap();
    assert_eq!(stored.len(), 21);
}

/// Pauses, resumes and a delete racing over HTTP on one job: clean answers only, and the
/// registry on disk agrees with the API afterwards (the job stays deleted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_pause_resume_and_delete_answer_cleanly_and_the_job_stays_deleted() {
    let fixture = fixture(None);
    let (status, job) = send(
        &fixture.router,
        json_request("POST", "/createJob", &job_fields(&[])),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let calls: Vec<_> = (0..9)
        .map(|i| {
            let router = fixture.router.clone();
            let (method, path) = match i {
                4 => ("DELETE", format!("/v1/jobs/{id}")),
                i if i % 2 == 0 => ("POST", format!("/v1/jobs/{id}/pause")),
                _ => ("POST", format!("/v1/jobs/{id}/resume")),
            };
            tokio::spawn(async move {
                let request = Request::builder()
                    .method(method)
                    .uri(&path)
                    .body(Body::empty())
                    .unwrap();
                (method, send(&router, request).await)
            })
        })
        .collect();
    for call in calls {
        let (method, (status, body)) = call.await.unwrap();
        let clean = [StatusCode::OK, StatusCode::NOT_FOUND, StatusCode::CONFLICT];
        assert!(clean.contains(&status), "{method}: {status} {body}");
        if method == "DELETE" {
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    assert_eq!(
        send(&fixture.router, get_request(&format!("/v1/jobs/{id}")))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let stored = Registry::open(&fixture.data_dir)
        .unwrap()
        .load_all()
        .unwrap();
    assert!(stored.is_empty(), "{stored:?}");
}
