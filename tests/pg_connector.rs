//! Eddy's own PostgreSQL connector against a real PostgreSQL: preflight checks, each failing
//! for its own reason, and the events of the pg-app workload compared field by field with
//! what real Debezium wrote for it (fixtures/pg-app).

use std::path::Path;
use std::time::{Duration, Instant};

use eddy_postgres::PgConfig;
use eddy_postgres::events::ChangeEvent;
use eddy_postgres::preflight::{self, Outcome, Report, TableName, Target};
use eddy_postgres::values::{DecimalMode, Modes, TimeMode};
use serde_json::Value;

use crate::support::connector::{
    InProcess, Records, assert_same_records, comparable, config, event_records,
};
use crate::support::eddy::{plain_numbers, text_rows};
use crate::support::kafka::{Broker, fold_debezium};
use crate::support::postgres::PgServer;
use crate::support::server::Server;
use crate::support::{COUNT_AND_SUM, FIXTURES, SCHEMA, TempDir, variant_path};

const TABLES: &str = "CREATE TABLE keyed (id int PRIMARY KEY, v text); \
    CREATE TABLE full_rows (v text); ALTER TABLE full_rows REPLICA IDENTITY FULL; \
    CREATE TABLE loose (v text);";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

pub(crate) fn preflight(config: &PgConfig, tables: Option<&[TableName]>) -> Report {
    let target = Target {
        slot: "eddy_test",
        publication: "eddy_test",
        tables,
    };
    runtime().block_on(preflight::run(config, &target))
}

pub(crate) fn outcome<'a>(report: &'a Report, name: &str) -> (&'a Outcome, &'a str) {
    let check = report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:?}"));
    (&check.outcome, &check.reason)
}

#[test]
fn preflight_passes_on_a_logical_server_and_warns_about_tables_without_identity() {
    let pg = PgServer::start_logical();
    pg.rows("postgres", "CREATE DATABASE app");
    pg.rows("app", TABLES);
    let report = preflight(&config(&pg, "postgres", "app"), None);
    assert_eq!(report.failure(), None, "{report:#?}");
    let warnings: Vec<&str> = report.warnings().map(|c| c.name.as_str()).collect();
    assert_eq!(warnings, ["table public.loose"], "{report:#?}");
    for name in [
        "sslmode",
        "reachable",
        "authenticated",
        "wal_level",
        "replication_role",
        "replication_slot",
        "publication",
    ] {
        assert_eq!(outcome(&report, name).0, &Outcome::Pass, "{name}");
    }

    let missing = [TableName {
        schema: "public".into(),
        name: "nowhere".into(),
    }];
    let report = preflight(&config(&pg, "postgres", "app"), Some(&missing));
    let failure = report.failure().unwrap();
    assert_eq!(failure.name, "table public.nowhere");
    assert!(failure.reason.contains("does not exist"), "{failure:?}");

    pg.rows("app", "CREATE ROLE plain LOGIN");
    let report = preflight(&config(&pg, "plain", "app"), None);
    let failure = report.failure().unwrap();
    assert_eq!(failure.name, "replication_role", "{report:#?}");
    assert!(failure.reason.contains("`plain`"), "{failure:?}");
    let (publication, why) = outcome(&report, "publication");
    assert_eq!(publication, &Outcome::Fail);
    assert!(why.contains("superuser"), "{why}");

    let report = preflight(&config(&pg, "postgres", "no_such_db"), None);
    let failure = report.failure().unwrap();
    assert_eq!(failure.name, "authenticated");
    assert!(failure.reason.contains("no_such_db"), "{failure:?}");
    assert_eq!(outcome(&report, "wal_level").0, &Outcome::Skipped);

    pg.rows(
        "app",
        "SELECT pg_create_logical_replication_slot('eddy_test', 'test_decoding')",
    );
    let report = preflight(&config(&pg, "postgres", "app"), None);
    let failure = report.failure().unwrap();
    assert_eq!(failure.name, "replication_slot");
    assert!(failure.reason.contains("test_decoding"), "{failure:?}");
}

#[test]
fn preflight_fails_wal_level_on_a_server_without_logical_decoding() {
    let pg = PgServer::start();
    let report = preflight(&config(&pg, "postgres", "postgres"), None);
    let failure = report.failure().unwrap();
    assert_eq!(failure.name, "wal_level", "{report:#?}");
    assert!(
        failure.reason.contains("wal_level = replica"),
        "{failure:?}"
    );
}

/// Debezium's records of a capture, per topic in order, made comparable.
fn debezium_records(variant: &str) -> Records {
    let text = std::fs::read_to_string(variant_path(variant)).unwrap();
    let mut topics = Records::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let record: Value = serde_json::from_str(line).unwrap();
        let topic = record["topic"].as_str().unwrap().to_string();
        let headers: Vec<(String, String)> = record["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_string(),
                    h[1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let entry = comparable(&topic, &record["key"], &record["value"], &headers);
        topics.entry(topic).or_default().push(entry);
    }
    topics
}

/// Runs the pg-app schema (snapshot) and workload (stream) through Eddy's connector with
/// `modes`, until the workload's end marker arrives.
fn capture_pg_app(modes: Modes) -> Vec<ChangeEvent> {
    let pg = PgServer::start_logical();
    let sql = Path::new(FIXTURES).join("sql");
    pg.psql_file("postgres", &sql.join("schema.sql"));
    let connector = InProcess::start(&pg, "app", "app", modes);
    connector.wait_until_streaming();
    pg.psql_file("app", &sql.join("workload.sql"));
    connector.wait_for_insert("app.public.marker");
    let confirmed = connector.status.lock().unwrap().confirmed_lsn.clone();
    assert!(confirmed.is_some(), "no LSN confirmed after the workload");
    connector.stop()
}

fn assert_same_as_debezium(variant: &str, modes: Modes) {
    let ours = event_records(&capture_pg_app(modes));
    assert_same_records(&ours, &debezium_records(variant), variant);
}

#[test]
fn events_equal_debeziums_field_by_field_with_precise_decimals() {
    assert_same_as_debezium("precise_noschemas", Modes::default());
}

#[test]
fn events_equal_debeziums_field_by_field_with_string_and_double_decimals() {
    for (variant, decimal) in [
        ("string_noschemas", DecimalMode::String),
        ("double_noschemas", DecimalMode::Double),
    ] {
        let modes = Modes {
            decimal,
            time: TimeMode::Adaptive,
        };
        assert_same_as_debezium(variant, modes);
    }
}

/// The acceptance path with nothing but PostgreSQL and a broker: `eddy serve`,
/// createConnector, createJob; the workload streams through Eddy's own connector and the
/// folded output equals PostgreSQL's answer.
#[test]
fn serve_with_eddys_connector_folds_to_postgres_answer() {
    const ENVIRONMENT: &str = "own";
    let broker = Broker::start();
    let pg = PgServer::start_logical();
    let sql = Path::new(FIXTURES).join("sql");
    pg.psql_file("postgres", &sql.join("schema.sql"));
    let dir = TempDir::new();
    let server = Server::start(
        &broker.address,
        &dir.path().join("data"),
        &[("EDDY_EXTERNAL_CONNECTORS", "false")],
    );

    // A database without logical decoding is refused before anything is created.
    let plain = PgServer::start();
    let refused = format!(
        "postgresql://postgres:pw@127.0.0.1:{}/postgres",
        plain.port()
    );
    let (code, body) = server.post_form(
        "/createConnector",
        &[
            ("connectionString", refused.as_str()),
            ("environmentId", "plain"),
        ],
    );
    assert_eq!(code, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("`wal_level`"), "{message}");
    let (code, connectors) = server.get("/v1/connectors");
    assert_eq!(code, 200);
    assert_eq!(
        connectors,
        serde_json::json!([]),
        "a refused connector was kept"
    );

    let connection = format!("postgresql://postgres:pw@127.0.0.1:{}/app", pg.port());
    let (code, body) = server.post_form(
        "/v1/connectors/test",
        &[
            ("connectionString", connection.as_str()),
            ("environmentId", ENVIRONMENT),
        ],
    );
    assert_eq!((code, &body["ok"]), (200, &Value::Bool(true)), "{body}");
    let (code, body) = server.post_form(
        "/createConnector",
        &[
            ("connectionString", connection.as_str()),
            ("environmentId", ENVIRONMENT),
        ],
    );
    assert_eq!(code, 201, "createConnector: {body}");
    let name = format!("{ENVIRONMENT}-connector");
    let (code, schemas) = server.get(&format!("/v1/connectors/{name}/schemas"));
    assert_eq!((code, schemas), (200, serde_json::json!(["public"])));
    let (code, tables) = server.get(&format!("/v1/connectors/{name}/tables?schema=public"));
    assert_eq!(code, 200, "{tables}");
    let orders = tables
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "orders")
        .unwrap_or_else(|| panic!("no orders in {tables}"));
    assert!(orders["sizeBytes"].as_i64().unwrap() > 0, "{orders}");
    let (code, columns) = server.get(&format!(
        "/v1/connectors/{name}/columns?schema=public&table=orders"
    ));
    assert_eq!(code, 200, "{columns}");
    assert_eq!(
        columns[0],
        serde_json::json!({"name": "id", "type": "bigint", "nullable": false, "primaryKey": true})
    );
    assert_eq!(columns[2]["type"], "numeric(12,2)", "{columns}");
    let (code, missing) = server.get(&format!(
        "/v1/connectors/{name}/columns?schema=public&table=nowhere"
    ));
    assert_eq!(code, 404, "{missing}");

    // createJob checks the Prisma schema against the live catalog, naming field and column.
    let schema = std::fs::read_to_string(SCHEMA).unwrap();
    let amount = "amount     Decimal?  @db.Decimal(12, 2)";
    assert!(
        schema.contains(amount),
        "the fixture's Order.amount changed"
    );
    for (wrong, problem) in [
        (
            "amount     Int?".to_string(),
            "field `Order.amount` (Int32) cannot hold column public.orders.amount of type numeric(12,2)",
        ),
        (
            format!("{amount}\n  discount   Int?"),
            "field `Order.discount` has no column `discount` in table public.orders",
        ),
    ] {
        let (code, body) = server.post_form(
            "/createJob",
            &[
                ("connectionString", connection.as_str()),
                ("environmentId", ENVIRONMENT),
                ("schema", schema.replace(amount, &wrong).as_str()),
                ("sqlQuery", COUNT_AND_SUM),
            ],
        );
        assert_eq!(code, 400, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(problem), "{message}");
    }
    let id = create_job(&server, &connection, ENVIRONMENT);

    pg.psql_file("app", &sql.join("workload.sql"));
    let status = wait_for_marker(&broker, &server, &id, ENVIRONMENT);
    assert_eq!(status["connector"]["state"], "STREAMING", "{status}");
    assert!(status["connector"]["slotLagBytes"].is_i64(), "{status}");
    assert!(status["connector"]["confirmedLsn"].is_string(), "{status}");
    let (code, connector) = server.get(&format!("/v1/connectors/{ENVIRONMENT}-connector"));
    assert_eq!(
        (code, &connector["state"]),
        (200, &Value::from("STREAMING")),
        "{connector}"
    );
    assert_eq!(
        connector["connection"],
        format!("postgresql://postgres:****@127.0.0.1:{}/app", pg.port())
    );

    assert_output_folds_to_postgres(&broker, &server, &pg, ENVIRONMENT);

    // More of the workload, checked at each of its pauses while everything keeps running.
    for round in 0..3 {
        let workload = paced_orders_workload(&dir, 600);
        pg.psql_file("app", &workload);
        wait_until_output_folds_to_postgres(&broker, &server, &pg, ENVIRONMENT, round);
    }
    let (_, status) = server.get(&format!("/jobStatus/{id}"));
    assert_eq!(status["connector"]["state"], "STREAMING", "{status}");

    let (code, body) = server.post_form(
        "/deleteJob",
        &[
            ("connectionString", connection.as_str()),
            ("environmentId", ENVIRONMENT),
        ],
    );
    assert_eq!(code, 201, "deleteJob: {body}");
    let left = pg.rows(
        "app",
        "SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication)",
    );
    assert_eq!(left, [["0"]], "deleteJob left a slot or publication behind");
}

/// Single-row changes of `orders`, paced so that they last a few seconds.
fn paced_orders_workload(dir: &TempDir, statements: usize) -> std::path::PathBuf {
    let mut lines = Vec::with_capacity(statements + statements / 100);
    for i in 0..statements {
        let id = i % 40 + 1;
        lines.push(match i % 5 {
            0 | 1 => format!(
                "INSERT INTO orders (user_id, amount, status) VALUES ({}, {}.{:02}, '{}');",
                i % 7,
                i % 300,
                i % 100,
                ["new", "paid", "shipped"][i % 3]
            ),
            2 | 3 => format!(
                "UPDATE orders SET amount = amount + 1.25, status = '{}' WHERE id = {id};",
                ["paid", "shipped", "refunded"][i % 3]
            ),
            _ => format!("DELETE FROM orders WHERE id = {};", id + i / 5),
        });
        if i % 100 == 99 {
            lines.push("SELECT pg_sleep(0.05);".into());
        }
    }
    dir.write_lines("paced.sql", &lines)
}

/// `kill -9` of `eddy serve` while its connector streams: restarted, the connector resumes
/// from its slot and the folded output equals PostgreSQL.
#[test]
fn kill_9_while_streaming_resumes_from_the_slot() {
    const ENVIRONMENT: &str = "crash";
    let broker = Broker::start();
    let pg = PgServer::start_logical();
    let sql = Path::new(FIXTURES).join("sql");
    pg.psql_file("postgres", &sql.join("schema.sql"));
    let dir = TempDir::new();
    let mut server = Server::start(
        &broker.address,
        &dir.path().join("data"),
        &[("EDDY_EXTERNAL_CONNECTORS", "false")],
    );
    let connection = format!("postgresql://postgres:pw@127.0.0.1:{}/app", pg.port());
    let id = create_job(&server, &connection, ENVIRONMENT);
    let workload = paced_orders_workload(&dir, 4000);

    std::thread::scope(|scope| {
        let running = scope.spawn(|| pg.psql_file("app", &workload));
        std::thread::sleep(Duration::from_millis(1200));
        assert!(
            !running.is_finished(),
            "the workload ended before the kill: make it longer"
        );
        server.kill();
        server.restart();
        running.join().unwrap();
    });
    pg.rows("app", "INSERT INTO marker (label) VALUES ('done')");
    let status = wait_for_marker(&broker, &server, &id, ENVIRONMENT);
    assert_eq!(status["connector"]["state"], "STREAMING", "{status}");
    let log = without_colours(&server.log());
    assert!(
        log.contains("connectors=1"),
        "the restarted server did not resume the stored connector:\n{}",
        log
    );

    assert_output_folds_to_postgres(&broker, &server, &pg, ENVIRONMENT);
}

/// The log without its terminal colour codes (`ESC [ … m`).
fn without_colours(log: &str) -> String {
    let mut plain = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// createJob of the count-and-sum query over `environment`; returns the job's id.
fn create_job(server: &Server, connection: &str, environment: &str) -> String {
    let schema = std::fs::read_to_string(SCHEMA).unwrap();
    let (code, body) = server.post_form(
        "/createJob",
        &[
            ("connectionString", connection),
            ("environmentId", environment),
            ("schema", schema.as_str()),
            ("sqlQuery", COUNT_AND_SUM),
        ],
    );
    assert_eq!(code, 201, "createJob: {body}");
    body["id"].as_str().unwrap().to_string()
}

/// Waits for the workload's end marker in the change topics, then until the job has
/// checkpointed every orders event; returns the job's status.
fn wait_for_marker(broker: &Broker, server: &Server, id: &str, environment: &str) -> Value {
    let marker = format!("{environment}.public.marker");
    let deadline = Instant::now() + Duration::from_secs(90);
    while broker.read_all(&marker).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the end marker never reached {marker}\nserver log:\n{}",
            server.log()
        );
    }
    let orders_topic = format!("{environment}.public.orders");
    let orders_events = broker.read_all(&orders_topic).len();
    server.wait_until_checkpointed(id, &orders_topic, orders_events)
}

/// The job's output topic, folded by key, is PostgreSQL's answer to the query.
fn assert_output_folds_to_postgres(
    broker: &Broker,
    server: &Server,
    pg: &PgServer,
    environment: &str,
) {
    let folded = fold_debezium(&broker.read_all(environment));
    let mut expected = pg.rows("app", COUNT_AND_SUM);
    expected.sort();
    assert_eq!(
        plain_numbers(text_rows(&folded)),
        plain_numbers(expected),
        "folded output topic `{environment}` (left) vs PostgreSQL (right)\nserver log:\n{}",
        server.log()
    );
}

/// Waits (a minute at most) until the folded output topic is PostgreSQL's answer.
fn wait_until_output_folds_to_postgres(
    broker: &Broker,
    server: &Server,
    pg: &PgServer,
    environment: &str,
    round: usize,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut expected = pg.rows("app", COUNT_AND_SUM);
    expected.sort();
    let expected = plain_numbers(expected);
    loop {
        let folded = plain_numbers(text_rows(&fold_debezium(&broker.read_all(environment))));
        if folded == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pause {round}: folded output `{environment}` (left) never became PostgreSQL's \
             answer (right)\n{folded:?}\n{expected:?}\nserver log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `eddy run --postgres`: the job straight off the replication stream, no broker; its
/// printed changes reach PostgreSQL's answer before and after the workload, and its
/// temporary slot is gone once it stops.
#[test]
fn eddy_run_reads_postgres_without_a_broker() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    const QUERY: &str = "SELECT COUNT(*) FROM users";
    let pg = PgServer::start_logical();
    let sql = Path::new(FIXTURES).join("sql");
    pg.psql_file("postgres", &sql.join("schema.sql"));
    let url = format!("postgresql://postgres@127.0.0.1:{}/app", pg.port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args([
            "run",
            "--postgres",
            &url,
            "--schema",
            SCHEMA,
            "--sql",
            QUERY,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting eddy run --postgres");
    let (send, counts) = std::sync::mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let change: Value = serde_json::from_str(&line).unwrap();
            if send.send(change["value"]["count(*)"].clone()).is_err() {
                break;
            }
        }
    });
    let wait_for = |expected: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match counts.recv_timeout(left) {
                Ok(count) if count.as_u64() == expected.parse().ok() => return,
                Ok(_) => {}
                Err(e) => panic!("eddy run never printed count {expected}: {e}"),
            }
        }
    };
    wait_for(&pg.rows("app", QUERY)[0][0]);
    pg.psql_file("app", &sql.join("workload.sql"));
    wait_for(&pg.rows("app", QUERY)[0][0]);
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg.rows("app", "SELECT count(*) FROM pg_replication_slots") != [["0"]] {
        assert!(
            Instant::now() < deadline,
            "the temporary slot outlived eddy run"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A column added is followed, as Debezium follows it; a column dropped fails the connector
/// for good, naming the column, rather than streaming events without it.
#[test]
fn a_dropped_column_fails_the_connector_and_an_added_one_is_followed() {
    let pg = PgServer::start_logical();
    pg.rows("postgres", "CREATE DATABASE app");
    pg.rows(
        "app",
        "CREATE TABLE kept (id int PRIMARY KEY, v text, w int)",
    );
    let connector = InProcess::start(&pg, "app", "shape", Modes::default());
    connector.wait_until_streaming();
    pg.rows(
        "app",
        "INSERT INTO kept VALUES (1, 'a', 1); ALTER TABLE kept ADD COLUMN x int; \
         INSERT INTO kept VALUES (2, 'b', 2, 3)",
    );
    connector.wait("the row with the added column", |_, events| {
        events
            .iter()
            .any(|e| e.value_json().is_some_and(|v| v["after"]["x"] == 3))
    });
    pg.rows(
        "app",
        "ALTER TABLE kept DROP COLUMN w; INSERT INTO kept VALUES (3, 'c', 4)",
    );
    let status = std::sync::Arc::clone(&connector.status);
    let error = connector.failure();
    assert!(error.is_permanent(), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("column `w` of public.kept was dropped")
            && message.contains("create it again"),
        "{message}"
    );
    let status = status.lock().unwrap().clone();
    assert_eq!(status.state, eddy_postgres::connector::State::Failed);
    assert_eq!(status.error.as_deref(), Some(message.as_str()));
}

/// A captured table dropped while streaming: every change made before the drop is
/// delivered, then the connector fails for good, naming the table.
#[test]
fn a_dropped_table_fails_the_connector_after_its_last_changes() {
    let pg = PgServer::start_logical();
    pg.rows("postgres", "CREATE DATABASE app");
    pg.rows(
        "app",
        "CREATE TABLE gone (id int PRIMARY KEY); CREATE TABLE kept (id int PRIMARY KEY)",
    );
    let connector = InProcess::start(&pg, "app", "dropping", Modes::default());
    connector.wait_until_streaming();
    pg.rows(
        "app",
        "INSERT INTO gone SELECT generate_series(1, 500); DROP TABLE gone",
    );
    let collected = connector.collected.clone();
    let message = connector.failure().to_string();
    assert!(
        message.contains("captured table public.gone was dropped"),
        "{message}"
    );
    let inserted = collected
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| {
            &*e.topic == "dropping.public.gone" && e.value_json().is_some_and(|v| v["op"] == "c")
        })
        .count();
    assert_eq!(inserted, 500, "changes made before the drop were lost");
}

/// A slot whose WAL PostgreSQL removed (`max_slot_wal_keep_size` passed while the connector
/// was away) fails the connector for good on its next start, saying so.
#[test]
fn a_slot_that_lost_its_wal_fails_the_connector() {
    let pg = PgServer::start_logical_with("-c max_slot_wal_keep_size=1MB -c max_wal_size=32MB");
    pg.rows("postgres", "CREATE DATABASE app");
    pg.rows("app", "CREATE TABLE t (id int PRIMARY KEY, v text)");
    let connector = InProcess::start(&pg, "app", "away", Modes::default());
    connector.wait_until_streaming();
    connector.stop();
    let deadline = Instant::now() + Duration::from_secs(60);
    while pg.rows(
        "app",
        "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'eddy_away'",
    ) != [["lost"]]
    {
        assert!(Instant::now() < deadline, "the slot never lost its WAL");
        pg.rows(
            "app",
            "INSERT INTO t SELECT i, repeat('x', 100) FROM generate_series(1, 20000) i \
             ON CONFLICT (id) DO UPDATE SET v = excluded.v || '.'; \
             SELECT pg_switch_wal(); CHECKPOINT;",
        );
    }
    let connector = InProcess::start(&pg, "app", "away", Modes::default());
    let error = connector.failure();
    assert!(error.is_permanent(), "{error}");
    assert!(error.to_string().contains("wal_status = lost"), "{error}");
}

/// The files under `dir` (recursively) whose bytes contain `secret`.
fn files_holding(dir: &Path, secret: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_holding(&path, secret));
        } else if std::fs::read(&path)
            .unwrap()
            .windows(secret.len())
            .any(|w| w == secret.as_bytes())
        {
            found.push(path.display().to_string());
        }
    }
    found
}

/// A connector that failed for good (here: a captured table dropped) is still `FAILED`
/// with its reason after `eddy serve` restarts, instead of streaming on past the loss, and
/// deleting it drops its slot: the documented way to a new snapshot. The restart opens its
/// sealed connection string again; no file under the data directory holds the password.
#[test]
fn a_connector_failed_for_good_stays_failed_across_a_restart() {
    const PASSWORD: &str = "Sup3r-s3cret-Pw";
    const ENVIRONMENT: &str = "doomed";
    let broker = Broker::start();
    let pg = PgServer::start_logical();
    pg.rows(
        "postgres",
        "CREATE TABLE gone (id int PRIMARY KEY); INSERT INTO gone VALUES (1), (2)",
    );
    let dir = TempDir::new();
    let mut server = Server::start(
        &broker.address,
        &dir.path().join("data"),
        &[("EDDY_EXTERNAL_CONNECTORS", "false")],
    );
    // (The server trusts local logins; the password is there to be kept secret.)
    let connection = format!(
        "postgresql://postgres:{PASSWORD}@127.0.0.1:{}/postgres",
        pg.port()
    );
    let (code, body) = server.post_form(
        "/createConnector",
        &[
            ("connectionString", connection.as_str()),
            ("environmentId", ENVIRONMENT),
        ],
    );
    assert!(code < 300, "createConnector: {code} {body}");
    let path = format!("/v1/connectors/{ENVIRONMENT}-connector");
    let state_of = |server: &Server, wanted: &str| {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (code, view) = server.get(&path);
            assert_eq!(code, 200, "{view}");
            if view["state"] == wanted {
                return view;
            }
            assert!(Instant::now() < deadline, "never {wanted}: {view}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    state_of(&server, "STREAMING");
    pg.rows("postgres", "DROP TABLE gone");
    let failed = state_of(&server, "FAILED");
    assert!(
        failed["error"].as_str().unwrap_or("").contains("gone"),
        "{failed}"
    );

    // The status shows FAILED as the connector stops; the definition on disk says so a
    // moment later.
    let stored = dir
        .path()
        .join(format!("data/connectors/{ENVIRONMENT}-connector.json"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&stored)
        .unwrap()
        .contains("\"failed\"")
    {
        assert!(Instant::now() < deadline, "the failure was not recorded");
        std::thread::sleep(Duration::from_millis(50));
    }

    server.kill();
    assert_eq!(
        files_holding(&dir.path().join("data"), PASSWORD),
        Vec::<String>::new()
    );
    server.restart();
    let (code, after) = server.get(&path);
    assert_eq!(code, 200, "{after}");
    assert_eq!(after["state"], "FAILED", "restarted: {after}");
    assert_eq!(after["error"], failed["error"], "restarted: {after}");
    let active = pg.rows(
        "postgres",
        "SELECT count(*) FROM pg_replication_slots WHERE active",
    );
    assert_eq!(
        active,
        vec![vec!["0".to_string()]],
        "the slot is read again"
    );

    let (code, body) = server.delete(&path);
    assert!(code < 300, "delete: {code} {body}");
    let slots = pg.rows("postgres", "SELECT count(*) FROM pg_replication_slots");
    assert_eq!(slots, vec![vec!["0".to_string()]], "the slot was kept");
}
