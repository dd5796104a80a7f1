//! The API over `oneshot` requests: bad requests are refused with a named problem and create
//! nothing; connectors go to a local server speaking the Kafka Connect REST API. Callers,
//! tokens and tenancy in `auth`, one output topic per job in `output_topic`, hostile input
//! in `hostile`, the OpenAPI document against the router in `openapi`, the schemas of other
//! crates' types in `wire`, a job's results, history and logs in `observe`.

mod auth;
mod edge;
mod hostile;
mod metrics;
mod observe;
mod openapi;
mod output_topic;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Request, StatusCode};
use axum::routing::{self, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::auth::{Admin, Auth, TokenStore};
use crate::connect::ConnectClient;
use crate::{Service, Settings, Supervisor};

/// The admin credential every fixture but `fixture_without_auth`'s uses.
const ADMIN: &str = "admin-token-for-the-api-tests";

const PASSWORD: &str = "pa55-w0rd-xyz";
const SCHEMA: &str = r#"
datasource db { provider = "postgresql" url = env("DATABASE_URL") }
model Order {
  id     BigInt  @id
  status String?
  amount Decimal? @db.Decimal(12, 2)
  @@map("orders")
}"#;
const SQL: &str = "SELECT status, COUNT(*), SUM(amount) FROM orders GROUP BY status";

fn connection() -> String {
    format!("postgresql://app:{PASSWORD}@db.internal:5432/shop")
}

struct Fixture {
    router: Router,
    data_dir: std::path::PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn fixture(connect: Option<&str>) -> Fixture {
    let admin = Admin::given(ADMIN).unwrap();
    fixture_with(connect, Auth::with_tokens(admin, TokenStore::in_memory()))
}

fn fixture_with(connect: Option<&str>, auth: Auth) -> Fixture {
    fixture_of(connect, auth, true)
}

/// A fixture whose PostgreSQL connectors are `external` (run elsewhere) or Eddy's own.
fn fixture_of(connect: Option<&str>, auth: Auth, external: bool) -> Fixture {
    let data_dir = std::env::temp_dir().join(format!("eddy-api-{:x}", rand::random::<u64>()));
    let settings = Settings {
        batch_max: 100,
        linger: Duration::from_millis(10),
        checkpoint_interval: Duration::from_secs(1),
        // Nothing listens here: no test below may reach Kafka.
        ..Settings::new("127.0.0.1:1", data_dir.clone())
    };
    let supervisor = Supervisor::new(settings).unwrap();
    let service = Service::new(
        supervisor,
        connect.map(ConnectClient::new),
        "127.0.0.1:1".into(),
        auth,
    );
    let service = match external {
        true => service.with_external_connectors(),
        false => service,
    };
    Fixture {
        router: crate::router(Arc::new(service)),
        data_dir,
    }
}

/// Sends `request` as the admin.
async fn send(router: &Router, request: Request<Body>) -> (StatusCode, Value) {
    send_as(router, Some(ADMIN), request).await
}

/// Sends `request` with `token` as its bearer credential (none: unauthenticated).
async fn send_as(
    router: &Router,
    token: Option<&str>,
    request: Request<Body>,
) -> (StatusCode, Value) {
    let (status, _, body) = exchange(router, token, request).await;
    (status, body)
}

/// Sends `request` with `token`; the answer's status, headers and body.
async fn exchange(
    router: &Router,
    token: Option<&str>,
    mut request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().unwrap();
        request.headers_mut().insert("authorization", value);
    }
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        !text.contains(PASSWORD),
        "a response shows the password: {text}"
    );
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn form(path: &str, fields: &[(&str, &str)]) -> Request<Body> {
    let body = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

fn json_request(method: &str, path: &str, body: &Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn get_request(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn job_fields(overrides: &[(&'static str, Option<&'static str>)]) -> Value {
    let mut fields = json!({
        "connectionString": connection(),
        "environmentId": "shop",
        "schema": SCHEMA,
        "sqlQuery": SQL,
    });
    for (name, value) in overrides {
        match value {
            Some(v) => fields[*name] = json!(v),
            None => {
                fields.as_object_mut().unwrap().remove(*name);
            }
        }
    }
    fields
}

/// Each bad request: its fields, the status and code, and words the message must contain.
#[tokio::test]
async fn bad_requests_are_refused_with_the_problem_named_and_create_nothing() {
    let fixture = fixture(None);
    let cases: Vec<(Value, StatusCode, &str, &str)> = vec![
        (
            job_fields(&[("sqlQuery", None)]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "sqlQuery: is required",
        ),
        (
            job_fields(&[("schema", Some("  "))]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "schema: is required",
        ),
        (
            job_fields(&[("environmentId", None)]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "environmentId: is required",
        ),
        (
            job_fields(&[("connectionString", None)]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "connectionString: is required",
        ),
        (
            job_fields(&[("sqlQuery", Some("SELEC status FROM orders"))]),
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "sqlQuery",
        ),
        (
            job_fields(&[(
                "sqlQuery",
                Some("SELECT nope, COUNT(*) FROM orders GROUP BY nope"),
            )]),
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "nope",
        ),
        (
            job_fields(&[("sqlQuery", Some("SELECT COUNT(*) FROM missing_table"))]),
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "missing_table",
        ),
        (
            job_fields(&[("schema", Some("model Order { id Int @id"))]),
            StatusCode::BAD_REQUEST,
            "invalid_schema",
            "schema",
        ),
        (
            job_fields(&[("connectionString", Some("mongodb://u:pa55-w0rd-xyz@h/db"))]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unsupported scheme `mongodb`",
        ),
        (
            job_fields(&[("connectionString", Some("postgresql://u:pa55-w0rd-xyz@h"))]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "no database name",
        ),
        (
            job_fields(&[("environmentId", Some("bad env!"))]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "not a valid Kafka topic name",
        ),
        (
            job_fields(&[("format", Some("avro"))]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unknown format",
        ),
        (
            job_fields(&[("outputTopic", Some("a/b"))]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "outputTopic",
        ),
    ];
    for (fields, status, code, words) in cases {
        for path in ["/createJob", "/v1/jobs"] {
            let (got, body) = send(&fixture.router, json_request("POST", path, &fields)).await;
            assert_eq!(
                (got, body["error"]["code"].as_str()),
                (status, Some(code)),
                "{path} {fields}: {body}"
            );
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(words),
                "{path}: `{message}` should name `{words}`"
            );
        }
    }
    let (status, body) = send(
        &fixture.router,
        form("/createJob", &[("environmentId", "shop")]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = send(
        &fixture.router,
        Request::post("/createJob")
            .header("content-type", "application/json")
            .body(Body::from("{not json"))
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "{body}"
    );

    for (request, status) in [
        (get_request("/jobStatus/0123"), StatusCode::NOT_FOUND),
        (get_request("/v1/jobs/0123"), StatusCode::NOT_FOUND),
        (
            get_request("/jobStatus?environmentId=shop"),
            StatusCode::NOT_FOUND,
        ),
        (get_request("/jobStatus"), StatusCode::BAD_REQUEST),
        (
            Request::delete("/v1/jobs/0123")
                .body(Body::empty())
                .unwrap(),
            StatusCode::NOT_FOUND,
        ),
        (
            Request::post("/v1/jobs/0123/pause")
                .body(Body::empty())
                .unwrap(),
            StatusCode::NOT_FOUND,
        ),
        (
            form(
                "/deleteJob",
                &[
                    ("connectionString", &connection()),
                    ("environmentId", "shop"),
                ],
            ),
            StatusCode::NOT_FOUND,
        ),
        (
            form("/deleteJob", &[("environmentId", "shop")]),
            StatusCode::BAD_REQUEST,
        ),
        (
            form("/createConnector", &[("connectionString", "ftp://x/y")]),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let what = format!("{} {}", request.method(), request.uri());
        let (got, body) = send(&fixture.router, request).await;
        assert_eq!(got, status, "{what}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
    }

    let (_, jobs) = send(&fixture.router, get_request("/v1/jobs")).await;
    assert_eq!(jobs, json!([]));
    let stored: Vec<_> = std::fs::read_dir(fixture.data_dir.join("jobs"))
        .unwrap()
        .collect();
    assert!(stored.is_empty(), "bad requests stored {stored:?}");
}

/// What the fake Kafka Connect server was asked, and the connectors it holds.
#[derive(Default)]
struct Connect {
    created: Mutex<Vec<Value>>,
    deleted: Mutex<Vec<String>>,
}

/// A local server implementing the Kafka Connect REST endpoints the client uses, as
/// documented: `POST /connectors` (409 when the name exists), `GET /connectors`,
/// `GET /connectors/{name}/status` (404 when unknown), `DELETE /connectors/{name}`.
async fn fake_connect() -> (String, Arc<Connect>) {
    let state = Arc::new(Connect::default());
    let names = |s: &Connect| -> Vec<String> {
        let deleted = s.deleted.lock().clone();
        s.created
            .lock()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .filter(|n| !deleted.contains(n))
            .collect()
    };
    let router = Router::new()
        .route(
            "/connectors",
            post(move |State(s): State<Arc<Connect>>, Json(body): Json<Value>| async move {
                if names(&s).contains(&body["name"].as_str().unwrap().to_string()) {
                    let error = json!({"error_code": 409, "message": "Connector already exists"});
                    return (StatusCode::CONFLICT, Json(error));
                }
                s.created.lock().push(body.clone());
                (StatusCode::CREATED, Json(json!({"name": body["name"], "config": body["config"], "tasks": []})))
            })
            .get(move |State(s): State<Arc<Connect>>| async move { Json(json!(names(&s))) }),
        )
        .route(
            "/connectors/{name}/status",
            routing::get(move |State(s): State<Arc<Connect>>, Path(name): Path<String>| async move {
                if !names(&s).contains(&name) {
                    let error = json!({"error_code": 404, "message": format!("No status found for connector {name}")});
                    return (StatusCode::NOT_FOUND, Json(error));
                }
                (StatusCode::OK, Json(json!({"name": name, "connector": {"state": "RUNNING", "worker_id": "w:8083"}, "tasks": []})))
            }),
        )
        .route(
            "/connectors/{name}",
            axum::routing::delete(move |State(s): State<Arc<Connect>>, Path(name): Path<String>| async move {
                s.deleted.lock().push(name);
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{address}"), state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_connector_registers_debezium_with_kafka_connect() {
    let (url, connect) = fake_connect().await;
    let fixture = fixture(Some(&url));
    let request = form(
        "/createConnector",
        &[
            ("connectionString", &connection()),
            ("environmentId", "shop"),
        ],
    );
    let (status, mut body) = send(&fixture.router, request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let fields = body.as_object_mut().unwrap();
    assert!(fields.remove("token").is_some_and(|t| t.is_string()));
    fields.retain(|name, _| !name.starts_with("token"));
    assert_eq!(
        body,
        json!({"id": "shop-connector", "name": "shop-connector", "status": "RUNNING"})
    );

    let created = connect.created.lock().clone();
    assert_eq!(created.len(), 1);
    let config = &created[0]["config"];
    assert_eq!(
        config["connector.class"],
        "io.debezium.connector.postgresql.PostgresConnector"
    );
    assert_eq!(config["plugin.name"], "pgoutput");
    assert_eq!(config["topic.prefix"], "shop");
    assert_eq!(config["slot.name"], "eddy_shop");
    assert_eq!(config["publication.name"], "eddy_shop");
    assert_eq!(config["database.dbname"], "shop");
    assert_eq!(
        config["database.password"], PASSWORD,
        "Connect needs the password"
    );

    // Registering again is not an error: the connector exists.
    let request = json_request(
        "POST",
        "/createConnector",
        &json!({"connectionString": connection(), "environmentId": "shop"}),
    );
    let (status, _) = send(&fixture.router, request).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(connect.created.lock().len(), 1);

    let (status, body) = send(&fixture.router, get_request("/v1/connectors")).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!([{"name": "shop-connector", "state": "RUNNING"}])
        )
    );

    // createJob ensures the connector (already there), deleteJob cancels the job and deletes
    // the connector. The job itself cannot reach Kafka here; that does not matter.
    let (status, job) = send(
        &fixture.router,
        json_request("POST", "/createJob", &job_fields(&[])),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(
        job["connector"],
        json!({"name": "shop-connector", "state": "RUNNING"})
    );
    assert_eq!(
        job["connection"],
        "postgresql://app:****@db.internal:5432/shop"
    );
    assert_eq!(connect.created.lock().len(), 1);
    let request = form(
        "/deleteJob",
        &[
            ("connectionString", &connection()),
            ("environmentId", "shop"),
        ],
    );
    let (status, deleted) = send(&fixture.router, request).await;
    assert_eq!(
        (status, &deleted["status"]),
        (StatusCode::CREATED, &json!("CANCELED")),
        "{deleted}"
    );
    assert_eq!(
        connect.deleted.lock().clone(),
        vec!["shop-connector".to_string()]
    );
    let (_, after) = send(
        &fixture.router,
        get_request(&format!("/jobStatus/{}", job["id"].as_str().unwrap())),
    )
    .await;
    assert_eq!(after["status"], "CANCELED");
    assert_eq!(after["connector"]["state"], "NOT_FOUND");

    let mysql = "mysql://root:pa55-w0rd-xyz@mysql.internal:3306/inventory";
    let request = form(
        "/createConnector",
        &[("connectionString", mysql), ("environmentId", "inv")],
    );
    let (status, _) = send(&fixture.router, request).await;
    assert_eq!(status, StatusCode::CREATED);
    let config = connect.created.lock()[1]["config"].clone();
    assert_eq!(config["topic.prefix"], "inv");
    assert_eq!(
        config["connector.class"],
        "io.debezium.connector.mysql.MySqlConnector"
    );
    assert_eq!(config["database.include.list"], "inventory");
    assert!(
        config["database.server.id"]
            .as_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            >= 184_000
    );
}

#[tokio::test]
async fn unreachable_connect_is_a_bad_gateway_and_creates_no_job() {
    let fixture = fixture(Some("http://127.0.0.1:1"));
    let (status, body) = send(
        &fixture.router,
        json_request("POST", "/createJob", &job_fields(&[])),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("connect_failed")),
        "{body}"
    );
    let (_, jobs) = send(&fixture.router, get_request("/v1/jobs")).await;
    assert_eq!(jobs, json!([]));
}

/// Found by schemathesis: a `502` where createConnector's preflight says `400` of the same
/// connection string.
#[tokio::test]
async fn an_unreachable_database_is_a_bad_connection_string_and_creates_no_job() {
    let admin = Admin::given(ADMIN).unwrap();
    let auth = Auth::with_tokens(admin, TokenStore::in_memory());
    let fixture = fixture_of(None, auth, false);
    let mut fields = job_fields(&[]);
    fields["connectionString"] = json!(format!("postgresql://app:{PASSWORD}@127.0.0.1:1/shop"));
    let (status, body) = send(&fixture.router, json_request("POST", "/createJob", &fields)).await;
    assert_eq!(
        (status, &body["error"]["code"], &body["error"]["field"]),
        (
            StatusCode::BAD_REQUEST,
            &json!("invalid_request"),
            &json!("connectionString")
        ),
        "{body}"
    );
    let (_, jobs) = send(&fixture.router, get_request("/v1/jobs")).await;
    assert_eq!(jobs, json!([]));
}

#[tokio::test]
async fn healthz_answers_ok_without_a_credential() {
    let fixture = fixture(None);
    assert_eq!(
        send_as(&fixture.router, None, get_request("/healthz")).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
}
