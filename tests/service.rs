//! `eddy serve` end to end: a real broker (tansu), the seed's API, real captured Debezium
//! events in, the output topic folded and compared with PostgreSQL's answer; `kill -9` at
//! random points; bad requests.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use crate::support::eddy::text_rows;
use crate::support::kafka::{Broker, fold_debezium};
use crate::support::postgres::pg_app;
use crate::support::server::Server;
use crate::support::workload::{KafkaRecord, count_and_sum_by_status, orders};
use crate::support::{SCHEMA, TempDir, events};

const PASSWORD: &str = "Sup3r-s3cret-pw";
const COUNT_AND_SUM: &str = "SELECT status, COUNT(*), SUM(amount) FROM orders GROUP BY status";

fn connection_string() -> String {
    format!("postgresql://app:{PASSWORD}@db.example:5432/app")
}

fn schema() -> String {
    std::fs::read_to_string(SCHEMA).unwrap()
}

fn create_job(server: &Server, environment: &str, sql: &str) -> String {
    let (code, body) = server.post_form(
        "/createJob",
        &[
            ("connectionString", &connection_string()),
            ("environmentId", environment),
            ("schema", &schema()),
            ("sqlQuery", sql),
        ],
    );
    assert_eq!(code, 201, "createJob: {body}");
    assert_eq!(body["status"], "CREATED", "{body}");
    body["id"].as_str().expect("an id").to_string()
}

/// The capture's records, under `environment`'s topic prefix instead of `app`.
fn captured_records(environment: &str) -> Vec<KafkaRecord> {
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

    // The job starts before its topics exist, as it may before its connector has run.
    let id = create_job(&server, environment, COUNT_AND_SUM);
    let waiting = server.wait_for_job(&id, Duration::from_secs(60), |s| s["status"] == "RUNNING");
    assert_eq!(waiting["waitingForTopics"], json!(["shop.public.orders"]), "{waiting}");
    assert_eq!(waiting["connector"]["state"], "unmanaged");

    broker.create_topics(&topics);
    let (first, rest) = records.split_at(records.len() / 2);
    broker.produce(first);
    // A malformed event goes to the dead-letter topic and the job goes on.
    broker.produce(&[("shop.public.orders".into(), None, Some(r#"{"op":"c","after":{"id":"#.into()))]);
    broker.produce(rest);
    let orders_events = records.iter().filter(|r| r.0 == "shop.public.orders").count() as u64;
    let status = server.wait_until_checkpointed(&id, "shop.public.orders", orders_events as usize + 1);

    assert_eq!(status["recordsIn"], orders_events + 1, "{status}");
    assert_eq!(status["deadLetters"], 1, "{status}");
    assert!(status["recordsOut"].as_u64().unwrap() > 0, "{status}");
    assert!(status["lastCheckpointMs"].as_u64().is_some(), "{status}");

    let output = broker.read_all(environment);
    let folded = fold_debezium(&output);
    let mut expected = pg_app().query(COUNT_AND_SUM).to_vec();
    expected.sort();
    assert_eq!(text_rows(&folded), expected, "folded output topic vs PostgreSQL");

    let dead = broker.read_all("shop.eddy.dlq");
    assert_eq!(dead.len(), 1);
    let reason = dead[0].headers.iter().find(|(k, _)| k == "eddy.error").map(|(_, v)| v.clone());
    assert!(reason.as_deref().is_some_and(|r| r.contains("shop.public.orders")), "{:?}", dead[0]);

    let (code, body) = server.post_form(
        "/deleteJob",
        &[("connectionString", &connection_string()), ("environmentId", environment)],
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

/// Produces `records` in chunks and kills the server with `kill -9` at a random moment after
/// each chunk, restarting it at once; returns the folded output topic.
fn run_with_crashes(broker: &Broker, server: &mut Server, id: &str, records: &[KafkaRecord], seed: u64) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut kills = 0;
    for chunk in records.chunks(records.len() / 6 + 1) {
        broker.produce(chunk);
        std::thread::sleep(Duration::from_millis(rng.random_range(0..400)));
        server.kill();
        kills += 1;
        server.restart();
    }
    server.wait_until_checkpointed(id, &records[0].0, records.len());
    kills
}

#[test]
fn kill_9_at_random_points_folds_to_the_uninterrupted_output() {
    let broker = Broker::start();
    let dir = TempDir::new();
    let small_batches = [("EDDY_BATCH_MAX", "200")];
    let mut server = Server::start(&broker.address, &dir.path().join("data"), &small_batches);
    let (steady, crashing) = ("steady", "crashing");
    broker.create_topics(&["steady.public.orders", "crashing.public.orders"]);
    let (records, final_rows) = orders("steady.public.orders", 30_000, 2_000, 7);
    let expected = count_and_sum_by_status(&final_rows);

    let steady_id = create_job(&server, steady, COUNT_AND_SUM);
    broker.produce(&records);
    server.wait_until_checkpointed(&steady_id, "steady.public.orders", records.len());
    let uninterrupted = fold_debezium(&broker.read_all(steady));
    assert_eq!(text_rows(&uninterrupted), expected, "uninterrupted run vs the workload's own answer");

    let crashing_id = create_job(&server, crashing, COUNT_AND_SUM);
    let renamed: Vec<KafkaRecord> = records
        .iter()
        .map(|(_, k, v)| ("crashing.public.orders".to_string(), k.clone(), v.clone()))
        .collect();
    let kills = run_with_crashes(&broker, &mut server, &crashing_id, &renamed, 11);
    let input = broker.read_all("crashing.public.orders");
    let same = input.iter().zip(&renamed).take_while(|(a, b)| a.value == b.2).count();
    eprintln!("DEBUG input {} produced {} same prefix {same}", input.len(), renamed.len());
    let output = broker.read_all(crashing);
    let crashed = fold_debezium(&output);
    assert_eq!(
        text_rows(&crashed),
        text_rows(&uninterrupted),
        "after {kills} kills, {} output messages\n{}",
        output.len(),
        server.log()
    );
    assert!(server.log().contains("eddy serve ready"));
}

#[test]
fn debug_seek() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let broker = Broker::start();
    broker.create_topics(&["t"]);
    let (records, _) = orders("t", 10_000, 2_000, 7);
    for chunk in records.chunks(1700) { broker.produce(chunk); }
    for start in [0i64, 1, 100, 1699, 1700, 1701, 4800, 7000] {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &broker.address)
            .set("group.id", format!("g{start}"))
            .create().unwrap();
        let mut list = TopicPartitionList::new();
        list.add_partition_offset("t", 0, Offset::Offset(start)).unwrap();
        consumer.assign(&list).unwrap();
        let mut got = Vec::new();
        while got.len() < 5 {
            if let Some(m) = consumer.poll(Duration::from_millis(500)) {
                let m = m.unwrap();
                let v = m.payload().map(|p| String::from_utf8_lossy(p).into_owned());
                got.push((m.offset(), v == records[m.offset() as usize].2, v == records[start as usize + got.len()].2));
            }
        }
        eprintln!("DEBUG start {start}: {got:?}");
    }
}
