//! Ordering by source position: a table's changes spread over partitions, read in any
//! interleaving that keeps each partition's order, fold to the database's answer; what
//! cannot be ordered is reported.

use eddy_engine::{JobSpec, Pipeline, Record};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use crate::common::{Folded, interleave, run_cases};

const SCHEMA: &str = r#"
datasource db { provider = "postgresql" url = env("DATABASE_URL") }
model Item {
  id  Int  @id
  v   Int?
  @@map("items")
}
"#;

const TOPIC: &str = "app.public.items";

fn pipeline(sql: &str) -> Pipeline {
    Pipeline::new(JobSpec {
        schema: SCHEMA.into(),
        sql: sql.into(),
        decode: Default::default(),
    })
    .expect("the job plans")
}

/// A record of the PostgreSQL connector: `key` (None for a truncate), `op`, `after`, `source`.
fn record(id: Option<i32>, op: &str, after: Value, source: Value) -> (Option<String>, String) {
    let key = id.map(|id| json!({ "id": id }).to_string());
    let before = match (op, id) {
        ("d", Some(id)) => json!({ "id": id, "v": null }),
        _ => Value::Null,
    };
    let value = json!({"before": before, "after": after, "op": op, "source": source});
    (key, value.to_string())
}

fn pg(lsn: u64, snapshot: &str) -> Value {
    json!({"connector": "postgresql", "snapshot": snapshot, "lsn": lsn, "txId": 1})
}

/// Pushes `records` in batches of random sizes and returns the folded result.
fn fold(
    pipeline: &mut Pipeline,
    records: &[(Option<String>, String)],
    rng: &mut StdRng,
) -> Vec<Vec<String>> {
    let mut folded = Folded::default();
    for chunk in records.chunks(rng.random_range(1..5)) {
        for (key, value) in chunk {
            pipeline
                .push(Record {
                    topic: TOPIC,
                    key: key.as_deref().map(str::as_bytes),
                    value: Some(value.as_bytes()),
                })
                .expect("pushed");
        }
        let rejected = pipeline.flush().expect("flushed");
        assert!(rejected.is_empty(), "{rejected:?}");
        folded.apply(&pipeline.drain()).expect("coherent changes");
        if rng.random_bool(0.3) {
            *pipeline = Pipeline::restore(&pipeline.snapshot().unwrap()).unwrap();
        }
    }
    folded.rows()
}

#[test]
fn a_truncate_on_another_partition_folds_the_same_in_any_interleaving() {
    // Snapshot 1, 2; stream: update 1, insert 3, TRUNCATE, insert 2 and 4, update 4,
    // delete 2. The database ends with 4 = 41.
    let history = [
        record(Some(1), "r", json!({"id": 1, "v": 10}), pg(100, "first")),
        record(Some(2), "r", json!({"id": 2, "v": 20}), pg(100, "last")),
        record(Some(1), "u", json!({"id": 1, "v": 11}), pg(110, "false")),
        record(Some(3), "c", json!({"id": 3, "v": 30}), pg(120, "false")),
        record(None, "t", Value::Null, pg(130, "false")),
        record(Some(2), "c", json!({"id": 2, "v": 21}), pg(140, "false")),
        record(Some(4), "c", json!({"id": 4, "v": 40}), pg(150, "false")),
        record(Some(4), "u", json!({"id": 4, "v": 41}), pg(160, "false")),
        record(Some(2), "d", Value::Null, pg(170, "false")),
    ];
    run_cases(200, |seed| {
        let mut rng = StdRng::seed_from_u64(seed);
        let count = rng.random_range(1..=4);
        let mut partitions = vec![Vec::new(); count];
        for record in &history {
            let partition = match &record.0 {
                Some(key) => key.bytes().map(usize::from).sum::<usize>() % count,
                None => rng.random_range(0..count),
            };
            partitions[partition].push(record.clone());
        }
        // At-least-once: a partition's tail arrives again.
        let replayed = rng.random_range(0..count);
        let tail = partitions[replayed].len().min(rng.random_range(0..4));
        let again = partitions[replayed][partitions[replayed].len() - tail..].to_vec();
        partitions[replayed].extend(again);
        let records = interleave(&partitions, &mut rng);
        let mut pipeline = pipeline("SELECT id, v FROM items");
        let got = fold(&mut pipeline, &records, &mut rng);
        let expected = vec![vec!["4".to_string(), "41".to_string()]];
        let ordering = &pipeline.ordering()[0];
        if got != expected || ordering.by != "sourcePosition" {
            return Err(format!("{got:?} {ordering:?} from {records:#?}"));
        }
        Ok(())
    });
}

#[test]
fn a_change_from_before_a_truncate_read_later_is_dropped_and_counted() {
    let mut pipeline = pipeline("SELECT COUNT(*) AS n FROM items");
    let records = [
        record(None, "t", Value::Null, pg(200, "false")),
        record(Some(1), "c", json!({"id": 1, "v": 1}), pg(150, "false")),
        record(Some(2), "c", json!({"id": 2, "v": 2}), pg(250, "false")),
        record(Some(1), "u", json!({"id": 1, "v": 3}), pg(190, "false")),
    ];
    let got = fold(&mut pipeline, &records, &mut StdRng::seed_from_u64(1));
    assert_eq!(got, [["1"]]);
    let ordering = &pipeline.ordering()[0];
    assert_eq!(
        (
            ordering.by.as_str(),
            ordering.positioned_events,
            ordering.superseded_events
        ),
        ("sourcePosition", 4, 2),
        "{ordering:?}"
    );
}

#[test]
fn an_incremental_snapshot_read_follows_its_key_in_arrival_order() {
    let mut pipeline = pipeline("SELECT id, v FROM items");
    // Debezium emits an incremental read after the streamed changes of its key it has
    // seen; its position says where the window closed, not where the row was written.
    let records = [
        record(Some(1), "c", json!({"id": 1, "v": 1}), pg(500, "false")),
        record(
            Some(1),
            "r",
            json!({"id": 1, "v": 2}),
            pg(450, "incremental"),
        ),
        record(
            Some(2),
            "r",
            json!({"id": 2, "v": 5}),
            pg(450, "incremental"),
        ),
        record(None, "t", Value::Null, pg(460, "false")),
    ];
    let got = fold(&mut pipeline, &records, &mut StdRng::seed_from_u64(2));
    // The truncate at 460 removes the read of 2 (at 450), not row 1 (its read kept 500).
    assert_eq!(got, [["1", "2"]]);
}

#[test]
fn events_without_positions_go_in_arrival_order_and_say_why() {
    let mut pipeline = pipeline("SELECT COUNT(*) AS n FROM items");
    assert_eq!(pipeline.ordering()[0].by, "noEventsYet");
    let records = [
        record(
            Some(1),
            "c",
            json!({"id": 1, "v": 1}),
            json!({"table": "items"}),
        ),
        record(None, "t", Value::Null, Value::Null),
        record(Some(2), "c", json!({"id": 2, "v": 1}), Value::Null),
    ];
    let got = fold(&mut pipeline, &records, &mut StdRng::seed_from_u64(3));
    assert_eq!(got, [["1"]]);
    let ordering = &pipeline.ordering()[0];
    assert_eq!(
        (ordering.by.as_str(), ordering.arrival_events),
        ("arrival", 3)
    );
    assert!(
        ordering
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("no `source`")),
        "{ordering:?}"
    );
}

#[test]
fn mysql_positions_of_another_server_switch_the_table_to_arrival_order() {
    let mysql = |server: u64, pos: u64| {
        json!({"connector": "mysql", "snapshot": "false", "server_id": server,
               "file": "binlog.000002", "pos": pos, "row": 0})
    };
    let mut pipeline = pipeline("SELECT id, v FROM items");
    let records = [
        record(Some(1), "c", json!({"id": 1, "v": 1}), mysql(7, 900)),
        // After a failover the new primary's binlog starts lower: applied as it arrives.
        record(Some(1), "u", json!({"id": 1, "v": 2}), mysql(8, 300)),
    ];
    let got = fold(&mut pipeline, &records, &mut StdRng::seed_from_u64(4));
    assert_eq!(got, [["1", "2"]]);
    let ordering = &pipeline.ordering()[0];
    assert_eq!(ordering.by, "arrival");
    assert!(
        ordering
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("another server")),
        "{ordering:?}"
    );
}
