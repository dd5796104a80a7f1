//! `eddy serve` end to end: a real broker (tansu), the seed's API, real captured Debezium
//! events in, the output topic folded and compared with PostgreSQL's answer; `kill -9` at
//! random points; bad requests.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use crate::support::eddy::{plain_numbers, text_rows};
use crate::support::kafka::{Broker, fold_debezium, fold_upsert};
use crate::support::postgres::pg_app;
use crate::support::server::Server;
use crate::support::workload::{KafkaRecord, count_and_sum_by_status, orders};
use crate::support::{COUNT_AND_SUM, SCHEMA, TempDir, events};

const PASSWORD: &str = "Sup3r-s3cret-pw";

fn connection_string() -> String {
    format!("postgresql://app:{PASSWORD}@db.example:5432/app")
}

fn schema() -> String {
    std::fs::read_to_string(SCHEMA).unwrap()
}

pub fn create_job(
    server: &Server,
    environment: &str,
    sql: &str,
    output_topic: Option<&str>,
) -> String {
    create_job_with(
        server,
        environment,
        sql,
        output_topic.map(|t| ("outputTopic", t)),
    )
}

fn create_job_with(
    server: &Server,
    environment: &str,
    sql: &str,
    extra: Option<(&str, &str)>,
) -> String {
    let (connection, schema) = (connection_string(), schema());
    let mut fields = vec![
        ("connectionString", connection.as_str()),
        ("environmentId", environment),
        ("schema", schema.as_str()),
        ("sqlQuery", sql),
    ];
    fields.extend(extra);
    let (code, body) = server.post_form("/createJob", &fields);
    assert_eq!(code, 201, "createJob: {body}");
    assert_eq!(body["status"], "CREATED", "{body}");
    body["id"].as_str().expect("an id").to_string()
}

/// The capture's records, under `environment`'s topic prefix instead of `app`.
pub fn captured_records(environment: &str) -> Vec<KafkaRecord> {
    events("precise_noschemas")
        .into_iter()
        .map(|event| {
            let line: Value = serde_json::from_str(&event.line).unwrap();
            let text = |v: &Value| (!v.is_null()).then(|| v.to_string());
            (
                event.topic.replacen("app.", &format!("{environment}."), 1),
                text(&line["key"]),
                text(&line["value"]),
            )
        })
        .collect()
}

#[test]
fn create_job_over_kafka_matches_postgres_and_delete_job_stops_it() {
    let broker = Broker::start();
    let dir = TempDir::new();
    let server = Server::start(&broker.address, &dir.path().join("data"), &[]);
    let environment = "shop";
    let records = captured_records(environment);
    let topics: Vec<&str> = {
        let mut t: Vec<&str> = records.iter().map(|r| r.0.as_str()).collect();
        t.sort();
        t.dedup();
        t
    };

    // A bad request is refused, names the problem, and shows no password.
    let bad_sql = [
        ("connectionString", connection_string()),
        ("environmentId", environment.to_string()),
        ("schema", schema()),
        (
            "sqlQuery",
            "SELECT status, COUNT(*) FROM nowhere GROUP BY status".to_string(),
        ),
    ];
    let fields: Vec<(&str, &str)> = bad_sql.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, body) = server.post_form("/createJob", &fields);
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nowhere"),
        "{body}"
    );
    assert!(!body.to_string().contains(PASSWORD));
    assert_eq!(server.get("/v1/jobs").1, json!([]));

    // The job starts before its topics exist, as it may before its connector has run.
    let id = create_job(&server, environment, COUNT_AND_SUM, None);
    let waiting = server.wait_for_job(&id, Duration::from_secs(60), |s| s["status"] == "RUNNING");
    assert_eq!(
        waiting["waitingForTopics"],
        json!(["shop.public.orders"]),
        "{waiting}"
    );
    assert_eq!(waiting["connector"]["state"], "unmanaged");

    broker.create_topics(&topics);
    let (first, rest) = records.split_at(records.len() / 2);
    broker.produce(first);
    // A malformed event goes to the dead-letter topic and the job goes on.
    broker.produce(&[(
        "shop.public.orders".to_string(),
        None::<String>,
        Some(r#"{"op":"c","after":{"id":"#),
    )]);
    broker.produce(rest);
    let orders_events = records
        .iter()
        .filter(|r| r.0 == "shop.public.orders")
        .count() as u64;
    let status =
        server.wait_until_checkpointed(&id, "shop.public.orders", orders_events as usize + 1);

    assert_eq!(status["recordsIn"], orders_events + 1, "{status}");
    assert_eq!(status["deadLetters"], 1, "{status}");
    assert!(status["recordsOut"].as_u64().unwrap() > 0, "{status}");
    assert!(status["lastCheckpointMs"].as_u64().is_some(), "{status}");

    let output = broker.read_all(environment);
    let folded = fold_debezium(&output);
    let mut expected = pg_app().query(COUNT_AND_SUM).to_vec();
    expected.sort();
    assert_eq!(
        plain_numbers(text_rows(&folded)),
        plain_numbers(expected),
        "folded output topic vs PostgreSQL"
    );

    let dead = broker.read_all("shop.eddy.dlq");
    assert_eq!(dead.len(), 1);
    let reason = dead[0]
        .headers
        .iter()
        .find(|(k, _)| k == "eddy.error")
        .map(|(_, v)| v.clone());
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.contains("shop.public.orders")),
        "{:?}",
        dead[0]
    );

    let (code, body) = server.post_form(
        "/deleteJob",
        &[
            ("connectionString", &connection_string()),
            ("environmentId", environment),
        ],
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["status"], "CANCELED");
    let (_, status) = server.get(&format!("/jobStatus/{id}"));
    assert_eq!(status["status"], "CANCELED", "{status}");
    // A canceled job reads no more.
    broker.produce(&records[..3]);
    std::thread::sleep(Duration::from_millis(500));
    let (_, after) = server.get(&format!("/jobStatus/{id}"));
    assert_eq!(after["recordsIn"], status["recordsIn"]);
    assert!(!server.log().contains(PASSWORD));
}

/// Produces `records` in small chunks, as a database's changes trickle in, while killing the
/// server with `kill -9` at random moments and restarting it at once; returns the number of
/// kills. Trickling makes the first run's batches small and uneven, so that a replay after a
/// kill, which finds everything already there, would batch differently.
fn run_with_crashes(
    broker: &Broker,
    server: &mut Server,
    ids: &[&str],
    records: &[KafkaRecord],
    seed: u64,
) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let kills = 6;
    std::thread::scope(|scope| {
        let producer = scope.spawn(|| {
            for chunk in records.chunks(20) {
                broker.produce(chunk);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        for _ in 0..kills {
            std::thread::sleep(Duration::from_millis(rng.random_range(200..1_500)));
            server.kill();
            server.restart();
        }
        producer.join().unwrap();
    });
    for id in ids {
        server.wait_until_checkpointed(id, &records[0].0, records.len());
    }
    kills
}

/// A keyed row per paid order: an order inserted and deleted within one replayed batch nets
/// out, so a replay that batched differently from the first run would leave the first run's
/// row for it in the topic.
pub const PAID: &str = "SELECT id, amount FROM orders WHERE status = 'paid'";

#[test]
fn kill_9_at_random_points_folds_to_the_uninterrupted_output() {
    let broker = Broker::start();
    let dir = TempDir::new();
    let small_batches = [("EDDY_BATCH_MAX", "200")];
    let mut server = Server::start(&broker.address, &dir.path().join("data"), &small_batches);
    broker.create_topics(&["steady.public.orders", "crashing.public.orders"]);
    let (records, final_rows) = orders("steady.public.orders", 12_000, 800, 7);

    let steady = create_job(&server, "steady", COUNT_AND_SUM, None);
    let steady_paid = create_job(&server, "steady", PAID, Some("steady.paid"));
    broker.produce(&records);
    server.wait_until_checkpointed(&steady, "steady.public.orders", records.len());
    server.wait_until_checkpointed(&steady_paid, "steady.public.orders", records.len());
    let uninterrupted = fold_debezium(&broker.read_all("steady"));
    let uninterrupted_paid = fold_debezium(&broker.read_all("steady.paid"));
    assert_eq!(
        plain_numbers(text_rows(&uninterrupted)),
        plain_numbers(count_and_sum_by_status(&final_rows)),
        "uninterrupted run vs the workload's own answer"
    );

    let crashing = create_job(&server, "crashing", COUNT_AND_SUM, None);
    let crashing_paid = create_job(&server, "crashing", PAID, Some("crashing.paid"));
    let renamed: Vec<KafkaRecord> = records
        .iter()
        .map(|(_, k, v)| ("crashing.public.orders".to_string(), k.clone(), v.clone()))
        .collect();
    let kills = run_with_crashes(
        &broker,
        &mut server,
        &[&crashing, &crashing_paid],
        &renamed,
        11,
    );
    for (topic, expected) in [
        ("crashing", &uninterrupted),
        ("crashing.paid", &uninterrupted_paid),
    ] {
        let output = broker.read_all(topic);
        assert_eq!(
            text_rows(&fold_debezium(&output)),
            text_rows(expected),
            "{topic} after {kills} kills, {} output messages",
            output.len()
        );
    }
}

/// tansu 0.6 answers a fetch from inside a stored batch with the next batch; a job resuming
/// from a checkpoint there must still read every record from the checkpoint's offset on.
#[test]
fn resuming_inside_a_broker_batch_skips_no_record() {
    let broker = Broker::start();
    broker.create_topics(&["resume.public.orders"]);
    let (records, _) = orders("resume.public.orders", 5_000, 500, 3);
    for chunk in records.chunks(1_700) {
        broker.produce(chunk);
    }
    for start in [1_i64, 1_699, 1_701, 4_000] {
        let mut offsets = eddy_kafka::Offsets::new();
        offsets
            .entry("resume.public.orders".into())
            .or_default()
            .insert(0, start);
        let group = format!("resume-{start}");
        let mut source = eddy_kafka::source::Source::new(
            &broker.address,
            &group,
            &["resume.public.orders".into()],
            &offsets,
            std::time::Duration::from_millis(50),
        )
        .unwrap();
        let mut read = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while read.len() < records.len() - start as usize && std::time::Instant::now() < deadline {
            let batch = source
                .poll_batch(1_000, Duration::from_millis(200))
                .unwrap();
            read.extend(batch.messages.iter().map(|m| {
                use rdkafka::message::Message;
                (
                    m.offset(),
                    m.payload().map(|p| String::from_utf8_lossy(p).into_owned()),
                )
            }));
        }
        let expected: Vec<_> = (start..records.len() as i64)
            .map(|o| (o, records[o as usize].2.clone()))
            .collect();
        assert!(
            read == expected,
            "resuming at {start}: first offsets read {:?}",
            &read.iter().map(|r| r.0).take(3).collect::<Vec<_>>()
        );
    }
}

/// Also the `upsert` format: rows as values, and a null value (tombstone) for a row that is
/// gone.
#[test]
fn sigterm_finishes_the_batch_and_checkpoints_before_exit() {
    let broker = Broker::start();
    let dir = TempDir::new();
    // No periodic checkpoint: only the shutdown can write one.
    let rare = [("EDDY_CHECKPOINT_INTERVAL_MS", "3600000")];
    let mut server = Server::start(&broker.address, &dir.path().join("data"), &rare);
    broker.create_topics(&["calm.public.orders"]);
    let (records, final_rows) = orders("calm.public.orders", 3_000, 300, 5);
    let id = create_job_with(&server, "calm", PAID, Some(("format", "upsert")));
    // In two parts, so that paid orders of the first are deleted in a later batch: tombstones.
    let (first, second) = records.split_at(records.len() / 2);
    broker.produce(first);
    server.wait_for_job(&id, Duration::from_secs(60), |s| {
        s["recordsIn"] == first.len()
    });
    broker.produce(second);
    let running = server.wait_for_job(&id, Duration::from_secs(60), |s| {
        s["recordsIn"] == records.len()
    });
    assert_eq!(running["lastCheckpointMs"], Value::Null, "{running}");

    assert!(
        server.terminate(),
        "eddy serve exits cleanly on SIGTERM:\n{}",
        server.log()
    );
    server.restart();
    let resumed = server.wait_for_job(&id, Duration::from_secs(60), |s| s["status"] == "RUNNING");
    assert_eq!(
        resumed["checkpointOffsets"]["calm.public.orders"]["0"],
        records.len(),
        "{resumed}"
    );
    assert_eq!(resumed["recordsIn"], records.len(), "{resumed}");
    let output = broker.read_all("calm");
    assert!(
        output.iter().any(|m| m.value.is_none()),
        "deleted paid orders leave tombstones"
    );
    let mut expected: Vec<Vec<String>> = final_rows
        .iter()
        .filter(|(_, (status, _))| status == "paid")
        .map(|(id, (_, cents))| {
            vec![
                id.to_string(),
                format!("{}.{:02}", cents / 100, cents % 100),
            ]
        })
        .collect();
    expected.sort();
    assert_eq!(text_rows(&fold_upsert(&output)), expected);

    let (code, removed) = server.delete(&format!("/v1/jobs/{id}"));
    assert_eq!(
        (code, &removed["status"]),
        (200, &json!("CANCELED")),
        "{removed}"
    );
    assert_eq!(server.get(&format!("/v1/jobs/{id}")).0, 404);
}

#[test]
fn serve_takes_its_settings_from_a_config_file_and_names_a_bad_one() {
    let dir = TempDir::new();
    let port = crate::support::kafka::free_port();
    let data = dir.path().join("data");
    let config = dir.write(
        "eddy.toml",
        &format!(
            "port = {port}\nbind = \"127.0.0.1\"\nbrokers = \"127.0.0.1:1\"\ndata-dir = \"{}\"\n",
            data.display()
        ),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("EDDY_ADMIN_TOKEN")
        // Where the generated admin token is printed.
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::support::kafka::wait_for_port(port, "eddy serve from its config file");
    let health: Value = reqwest::blocking::get(format!("http://127.0.0.1:{port}/healthz"))
        .unwrap()
        .json()
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(health, json!({"status": "ok"}));
    assert!(
        data.join("jobs").is_dir(),
        "the data directory comes from the file"
    );

    // A config file eddy serve refuses: it stops at once and says why on stderr.
    let refused = |name: &str, text: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_eddy"))
            .args(["serve", "--config"])
            .arg(dir.write(name, text))
            .output()
            .unwrap();
        assert!(!output.status.success(), "{name}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = refused("bad.toml", "port = 7000\nbrokerz = \"x\"\n");
    assert!(
        stderr.contains("bad.toml") && stderr.contains("brokerz"),
        "{stderr}"
    );
    // A [kafka] property librdkafka does not know is named before anything starts.
    let stderr = refused(
        "unknown.toml",
        "port = 7000\n[kafka]\n\"sasl.mechanism\" = \"PLAIN\"\n\"no.such.property\" = \"1\"\n",
    );
    assert!(
        stderr.contains("[kafka]") && stderr.contains("no.such.property"),
        "{stderr}"
    );
}
