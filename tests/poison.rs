//! Records that could stop a job, through `eddy serve` and a real broker (tansu): an event
//! larger than the producer allows, a poison pill that fails the job on every try, a
//! dead-letter topic that refuses writes, and a flood of malformed records of six kinds
//! mixed into real captured events. Each time the job goes on and the folded output topic is
//! PostgreSQL's answer.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use crate::service::{captured_records, create_job};
use crate::support::eddy::{plain_numbers, text_rows};
use crate::support::kafka::{Broker, Received, fold_debezium};
use crate::support::postgres::pg_app;
use crate::support::server::Server;
use crate::support::{COUNT_AND_SUM, TempDir};

/// A Kafka record whose key and value may be any bytes.
type RawRecord = (String, Option<Vec<u8>>, Option<Vec<u8>>);

/// A little over 1 MiB: larger than a default Kafka producer allows.
const OVERSIZED: usize = 1_500_000;

fn orders_topic(environment: &str) -> String {
    format!("{environment}.public.orders")
}

/// The capture's records as bytes, and the topics they go to.
fn capture(environment: &str) -> (Vec<RawRecord>, Vec<String>) {
    let records: Vec<RawRecord> = captured_records(environment)
        .into_iter()
        .map(|(t, k, v)| (t, k.map(String::into_bytes), v.map(String::into_bytes)))
        .collect();
    let mut topics: Vec<String> = records.iter().map(|r| r.0.clone()).collect();
    topics.sort();
    topics.dedup();
    (records, topics)
}

/// A captured insert of an order, as JSON: the template malformed records are made from.
fn order_insert(records: &[RawRecord], environment: &str) -> Value {
    let topic = orders_topic(environment);
    records
        .iter()
        .filter(|r| r.0 == topic)
        .filter_map(|r| serde_json::from_slice::<Value>(r.2.as_deref()?).ok())
        .find(|v| v["op"] == "c" || v["op"] == "r")
        .expect("the capture inserts orders")
}

/// An insert of a new order `id` (none of the capture's) with `column` set to `value`.
fn insert_with(
    template: &Value,
    environment: &str,
    id: u64,
    column: &str,
    value: Value,
) -> RawRecord {
    let mut event = template.clone();
    event["op"] = json!("c");
    event["after"]["id"] = json!(id);
    event["after"][column] = value;
    record(environment, id, &event)
}

fn record(environment: &str, id: u64, value: &Value) -> RawRecord {
    (
        orders_topic(environment),
        Some(format!(r#"{{"id":{id}}}"#).into_bytes()),
        Some(value.to_string().into_bytes()),
    )
}

fn expected_answer() -> Vec<Vec<String>> {
    let mut expected = pg_app().query(COUNT_AND_SUM).to_vec();
    expected.sort();
    expected
}

/// How many records of the orders topic there are among `records`.
fn orders_count(records: &[RawRecord], environment: &str) -> usize {
    let topic = orders_topic(environment);
    records.iter().filter(|r| r.0 == topic).count()
}

/// The offset of the record at `index` of `records` within its orders topic.
fn offset_in_orders(records: &[RawRecord], environment: &str, index: usize) -> i64 {
    orders_count(&records[..index], environment) as i64
}

fn source_offset(message: &Received) -> i64 {
    message
        .header("eddy.source.offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or_else(|| panic!("a dead letter without its source offset: {message:?}"))
}

/// The crash loop of issue 11: among real events, one whose value is over 1 MiB (a string
/// where a decimal belongs) is dead-lettered, cut to size so that its dead letter can be
/// written; and one whose result is over 1 MiB (a 1.5 MB status, the result's group key)
/// fails the job on every try until it is found and skipped.
#[test]
fn an_oversized_event_and_a_poison_pill_do_not_stop_the_job() {
    let broker = Broker::start();
    let dir = TempDir::new();
    let server = Server::start(&broker.address, &dir.path().join("data"), &[]);
    let environment = "big";
    let (mut records, topics) = capture(environment);
    broker.create_topics(&topics.iter().map(String::as_str).collect::<Vec<_>>());
    let id = create_job(&server, environment, COUNT_AND_SUM, None);

    let template = order_insert(&records, environment);
    let huge_amount = "not a number ".repeat(OVERSIZED / 13);
    let oversized = insert_with(&template, environment, 9_001, "amount", json!(huge_amount));
    let poison = insert_with(
        &template,
        environment,
        9_002,
        "status",
        json!("s".repeat(OVERSIZED)),
    );
    let oversized_size = oversized.2.as_ref().unwrap().len();
    let middle = records.len() / 2;
    records.insert(middle, oversized);
    records.insert(middle + 1, poison);
    let oversized_offset = offset_in_orders(&records, environment, middle);
    broker.produce(&records);

    let orders = orders_count(&records, environment);
    let status = server.wait_until_checkpointed(&id, &orders_topic(environment), orders);
    assert_eq!(status["recordsIn"], orders, "{status}");
    assert_eq!(status["deadLetters"], 2, "{status}");
    assert_eq!(status["poisonPills"], 1, "{status}");
    assert_eq!(status["deadLetterFailures"], 0, "{status}");
    // Three tries of the whole batch, then one record by record that finds the culprit.
    assert_eq!(status["restarts"], 4, "{status}");
    assert_eq!(
        plain_numbers(text_rows(&fold_debezium(&broker.read_all(environment)))),
        plain_numbers(expected_answer()),
        "folded output topic vs PostgreSQL"
    );

    // Dead letters are written at least once: each failed try wrote the oversized one again.
    let dead: BTreeMap<i64, Received> = broker
        .read_all(&format!("{environment}.eddy.dlq"))
        .into_iter()
        .map(|d| (source_offset(&d), d))
        .collect();
    assert_eq!(
        dead.keys().copied().collect::<Vec<_>>(),
        [oversized_offset, oversized_offset + 1]
    );
    let cut = &dead[&oversized_offset];
    assert_eq!(cut.size, 65_536, "the value is cut to the default 64 KiB");
    assert_eq!(
        cut.header("eddy.truncated.value"),
        Some(oversized_size.to_string().as_str())
    );
    assert!(
        cut.header("eddy.error")
            .is_some_and(|e| e.contains("amount")),
        "{:?}",
        cut.headers
    );
    let pill = &dead[&(oversized_offset + 1)];
    assert!(
        pill.header("eddy.error")
            .is_some_and(|e| e.starts_with("poison pill: failed the job 4 times")),
        "{:?}",
        pill.headers
    );
    assert!(pill.header("eddy.truncated.value").is_some());
    assert!(
        server.log().contains("poison pill"),
        "the skip is logged loudly"
    );
}

/// A dead-letter topic that refuses every record (tansu validates it against a schema no
/// dead letter matches) and a dead letter larger than the producer allows (the cap raised
/// above it): both are counted as `deadLetterFailures`, and the job goes on.
#[test]
fn a_dead_letter_topic_that_refuses_writes_does_not_stop_the_job() {
    let dir = TempDir::new();
    let environment = "refusing";
    let schemas = dir.path().join("schemas");
    std::fs::create_dir_all(&schemas).unwrap();
    std::fs::write(
        schemas.join(format!("{environment}.eddy.dlq.json")),
        r#"{"type": "object", "properties": {"value": {"type": "object", "required": ["eddy-never-writes-this"]}}}"#,
    )
    .unwrap();
    let broker = Broker::start_with_schemas(&schemas);
    let uncapped = [("EDDY_DEAD_LETTER_MAX_BYTES", "4000000")];
    let server = Server::start(&broker.address, &dir.path().join("data"), &uncapped);
    let (mut records, topics) = capture(environment);
    broker.create_topics(&topics.iter().map(String::as_str).collect::<Vec<_>>());
    let id = create_job(&server, environment, COUNT_AND_SUM, None);

    let template = order_insert(&records, environment);
    let truncated = template.to_string().as_bytes()[..40].to_vec();
    let middle = records.len() / 2;
    records.insert(middle, (orders_topic(environment), None, Some(truncated)));
    records.insert(
        middle + 1,
        insert_with(
            &template,
            environment,
            9_001,
            "amount",
            json!("not a number ".repeat(OVERSIZED / 13)),
        ),
    );
    broker.produce(&records);

    let orders = orders_count(&records, environment);
    let status = server.wait_until_checkpointed(&id, &orders_topic(environment), orders);
    assert_eq!(status["deadLetters"], 2, "{status}");
    assert_eq!(status["deadLetterFailures"], 2, "{status}");
    assert_eq!(status["poisonPills"], 0, "{status}");
    assert_eq!(status["restarts"], 0, "{status}");
    assert_eq!(
        plain_numbers(text_rows(&fold_debezium(&broker.read_all(environment)))),
        plain_numbers(expected_answer()),
        "folded output topic vs PostgreSQL"
    );
    assert!(
        broker
            .read_all(&format!("{environment}.eddy.dlq"))
            .is_empty()
    );
    let log = server.log();
    assert!(
        log.contains("InvalidRecord") && log.contains("MessageSizeTooLarge"),
        "the broker's refusal and the producer's are both logged"
    );
    assert!(
        log.lines().all(|l| l.len() < 16 * 1024),
        "no log line quotes a whole oversized record"
    );
}

/// The six kinds of malformed record, each refused by the engine.
const KINDS: usize = 6;

/// Malformed record number `n` (its kind is `n % KINDS`), for the orders topic.
fn malformed(rng: &mut StdRng, template: &Value, environment: &str, n: usize) -> RawRecord {
    let id = 100_000 + n as u64;
    let topic = orders_topic(environment);
    match n % KINDS {
        // Random bytes; now and then none at all, or only whitespace: a blank value is no
        // tombstone (that is a null value) and must be counted like any other.
        0 if n.is_multiple_of(600) => (topic, None, Some(Vec::new())),
        0 if n % 600 == 300 => (topic, None, Some(b" \n\t".to_vec())),
        0 => {
            let len = rng.random_range(1..512);
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            (topic, None, Some(bytes))
        }
        1 => {
            let text = template.to_string();
            let cut = rng.random_range(1..text.len());
            (topic, None, Some(text.as_bytes()[..cut].to_vec()))
        }
        2 => {
            let not_envelopes = [
                json!({"id": id, "status": "new", "amount": "B88="}),
                json!({}),
                json!({"before": null, "after": null}),
                json!({"payload": {"after": {"id": id}}}),
                json!([template.clone()]),
            ];
            let pick = rng.random_range(0..not_envelopes.len());
            record(environment, id, &not_envelopes[pick])
        }
        3 => {
            let wrong = [
                ("id", json!(true)),
                ("id", json!([1])),
                ("amount", json!(true)),
                ("amount", json!({"x": 1})),
                ("status", json!([1, 2])),
                ("status", json!({"a": 1})),
            ];
            let (column, value) = wrong[rng.random_range(0..wrong.len())].clone();
            insert_with(template, environment, id, column, value)
        }
        4 => {
            let ops = ["x", "insert", "C", "", "rr", "m"];
            let mut event = template.clone();
            event["after"]["id"] = json!(id);
            event["op"] = json!(ops[rng.random_range(0..ops.len())]);
            record(environment, id, &event)
        }
        _ => {
            let letters: String = (0..2048)
                .map(|_| char::from(rng.random_range(b'a'..=b'z')))
                .collect();
            insert_with(template, environment, id, "id", json!(letters))
        }
    }
}

/// 10,000 malformed records of six kinds among a real capture: every one is dead-lettered
/// and counted, and the answer is PostgreSQL's.
#[test]
fn a_flood_of_malformed_records_is_dead_lettered_and_counted_exactly() {
    let broker = Broker::start();
    let dir = TempDir::new();
    let server = Server::start(&broker.address, &dir.path().join("data"), &[]);
    let environment = "flood";
    let (capture, topics) = capture(environment);
    broker.create_topics(&topics.iter().map(String::as_str).collect::<Vec<_>>());
    let id = create_job(&server, environment, COUNT_AND_SUM, None);

    let template = order_insert(&capture, environment);
    let mut rng = StdRng::seed_from_u64(11);
    let count = 10_000;
    let mut records = Vec::with_capacity(capture.len() + count);
    let mut malformed_offsets = BTreeSet::new();
    let mut bad = (0..count).peekable();
    let events = capture.len();
    for (i, event) in capture.into_iter().enumerate() {
        // Spread the malformed records evenly between the capture's.
        while let Some(&n) = bad.peek() {
            if n * events > i * count {
                break;
            }
            malformed_offsets.insert(orders_count(&records, environment) as i64);
            records.push(malformed(&mut rng, &template, environment, n));
            bad.next();
        }
        records.push(event);
    }
    for n in bad {
        malformed_offsets.insert(orders_count(&records, environment) as i64);
        records.push(malformed(&mut rng, &template, environment, n));
    }
    assert_eq!(malformed_offsets.len(), count);
    broker.produce(&records);

    let orders = orders_count(&records, environment);
    let status = server.wait_until_checkpointed(&id, &orders_topic(environment), orders);
    let dead = broker.read_all(&format!("{environment}.eddy.dlq"));
    let dead_offsets: BTreeSet<i64> = dead.iter().map(source_offset).collect();
    let orders_records: Vec<&RawRecord> = records
        .iter()
        .filter(|r| r.0 == orders_topic(environment))
        .collect();
    let missed: Vec<String> = malformed_offsets
        .difference(&dead_offsets)
        .map(|&o| {
            let value = orders_records[o as usize].2.as_deref().unwrap_or_default();
            format!("offset {o}: {:?}", String::from_utf8_lossy(value))
        })
        .collect();
    assert!(missed.is_empty(), "not dead-lettered: {missed:#?}");
    let extra: Vec<&i64> = dead_offsets.difference(&malformed_offsets).collect();
    assert!(extra.is_empty(), "valid events dead-lettered: {extra:?}");
    assert_eq!(dead.len(), count, "one dead letter per malformed record");
    assert_eq!(status["deadLetters"], count, "{status}");
    assert_eq!(status["recordsIn"], orders, "{status}");
    assert_eq!(status["restarts"], 0, "{status}");
    assert_eq!(
        plain_numbers(text_rows(&fold_debezium(&broker.read_all(environment)))),
        plain_numbers(expected_answer()),
        "folded output topic vs PostgreSQL"
    );
}
