//! The real capture over topics of 1, 3 and 8 partitions, keyed as Debezium keys it (Kafka's
//! default partitioner; a truncate, which has no key, on any partition), produced in a random
//! interleaving of the partitions with a replayed tail: `eddy serve`'s folded output equals
//! PostgreSQL's answer for every query, and the job's status says its changes were ordered
//! by their source positions.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use crate::service::{PAID, captured_records, create_job};
use crate::support::eddy::{plain_numbers, text_rows};
use crate::support::kafka::{Broker, default_partition, fold_debezium};
use crate::support::postgres::pg_app;
use crate::support::server::Server;
use crate::support::workload::KafkaRecord;
use crate::support::{COUNT_AND_SUM, TempDir};

/// The service tests' queries, and two over tables where partitioning matters: `users` has
/// primary-key changes (a delete and a create on two keys), `docs_full` a truncate.
const QUERIES: &[(&str, &str)] = &[
    (COUNT_AND_SUM, "orders"),
    (PAID, "orders"),
    (
        "SELECT country, COUNT(*) FROM users GROUP BY country",
        "users",
    ),
    ("SELECT COUNT(*) FROM docs_full", "docs_full"),
];

/// A record with the partition it goes to.
type Placed = (String, Option<String>, Option<String>, i32);

/// `records` placed on `partitions` partitions of their topics, in an order that keeps each
/// partition's records in capture order but interleaves the partitions at random, then a
/// replayed tail of each of a few partitions (a connector restarting re-sends what it
/// sent since its last committed offset).
fn partitioned(records: &[KafkaRecord], partitions: i32, rng: &mut StdRng) -> Vec<Placed> {
    let mut queues: BTreeMap<(String, i32), Vec<Placed>> = BTreeMap::new();
    for (topic, key, value) in records {
        let partition = match key {
            Some(key) => default_partition(key.as_bytes(), partitions),
            None => rng.random_range(0..partitions),
        };
        queues.entry((topic.clone(), partition)).or_default().push((
            topic.clone(),
            key.clone(),
            value.clone(),
            partition,
        ));
    }
    let queues: Vec<Vec<Placed>> = queues.into_values().collect();
    let mut picks: Vec<usize> = queues
        .iter()
        .enumerate()
        .flat_map(|(q, records)| std::iter::repeat_n(q, records.len()))
        .collect();
    picks.shuffle(rng);
    // The order a truncate read before the rows it removed and after those written later:
    // always over 8 partitions, at random over 3, the partitions holding a truncate first.
    if partitions == 8 || (partitions > 1 && rng.random_bool(0.5)) {
        picks.sort_by_key(|&q| !queues[q].iter().any(|r| r.1.is_none()));
    }
    let mut next = vec![0; queues.len()];
    let mut out: Vec<Placed> = picks
        .into_iter()
        .map(|q| {
            next[q] += 1;
            queues[q][next[q] - 1].clone()
        })
        .collect();
    for _ in 0..3 {
        let queue = &queues[rng.random_range(0..queues.len())];
        let tail = rng.random_range(1..=queue.len().min(5));
        out.extend_from_slice(&queue[queue.len() - tail..]);
    }
    out
}

/// The test's own partitioning is Kafka's: a producer with librdkafka's `murmur2_random`
/// partitioner (Java's default for keyed records) puts each key where
/// [`default_partition`] says.
fn check_default_partitioner(broker: &Broker) {
    let topic = "partitioner.check".to_string();
    broker.create_partitioned_topics(&[&topic], 8);
    let keys: Vec<String> = (0..200).map(|id| format!(r#"{{"id":{id}}}"#)).collect();
    let records: Vec<_> = keys
        .iter()
        .map(|k| (&topic, Some(k.as_str()), Some("x"), None))
        .collect();
    broker.produce_placed(&records);
    let read = broker.read_partitions(&topic, 8);
    assert_eq!(read.len(), keys.len());
    for message in read {
        let key = message.key.expect("keyed");
        assert_eq!(
            message.partition,
            default_partition(key.as_bytes(), 8),
            "{key}"
        );
    }
}

#[test]
fn the_capture_over_partitioned_topics_folds_to_postgres_answers() {
    let broker = Broker::start();
    check_default_partitioner(&broker);
    let dir = TempDir::new();
    let server = Server::start(&broker.address, &dir.path().join("data"), &[]);
    let seed: u64 = rand::random();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut runs = Vec::new();
    for partitions in [1, 3, 8] {
        let environment = format!("parts{partitions}");
        let records = captured_records(&environment);
        let mut topics: Vec<&str> = records.iter().map(|r| r.0.as_str()).collect();
        topics.sort();
        topics.dedup();
        broker.create_partitioned_topics(&topics, partitions);
        let jobs: Vec<_> = QUERIES
            .iter()
            .enumerate()
            .map(|(i, (sql, table))| {
                let output = format!("{environment}.q{i}");
                let id = create_job(&server, &environment, sql, Some(&output));
                (id, *sql, *table, output)
            })
            .collect();
        let placed = partitioned(&records, partitions, &mut rng);
        // In small chunks, so that the jobs read the partitions in many batches.
        for chunk in placed.chunks(7) {
            let chunk: Vec<_> = chunk
                .iter()
                .map(|(t, k, v, p)| (t, k.as_deref(), v.as_deref(), Some(*p)))
                .collect();
            broker.produce_placed(&chunk);
            std::thread::sleep(Duration::from_millis(rng.random_range(0..20)));
        }
        runs.push((environment, partitions, placed, jobs));
    }
    for (environment, partitions, placed, jobs) in &runs {
        for (id, sql, table, output) in jobs {
            let topic = format!("{environment}.public.{table}");
            let count = placed.iter().filter(|r| r.0 == topic).count();
            let status = server.wait_until_checkpointed(id, &topic, count);
            let folded = fold_debezium(&broker.read_all(output));
            let mut expected = pg_app().query(sql).to_vec();
            expected.sort();
            assert_eq!(
                plain_numbers(text_rows(&folded)),
                plain_numbers(expected),
                "{environment}: {sql} (seed {seed})"
            );
            // The lag is measured per partition, each of the topic's partitions named.
            let by_partition = status["lagByPartition"][&topic]
                .as_object()
                .unwrap_or_else(|| panic!("no lag for {topic}: {status}"));
            let named: Vec<i32> = by_partition.keys().map(|p| p.parse().unwrap()).collect();
            assert_eq!(named, (0..*partitions).collect::<Vec<_>>(), "{status}");
            assert!(
                by_partition.values().all(|lag| lag.as_i64() >= Some(0)),
                "{status}"
            );
            let ordering = &status["ordering"][0];
            assert_eq!(ordering["table"], *table, "{status}");
            assert_eq!(ordering["by"], "sourcePosition", "{status}");
        }
    }

    // The jobs timed their batches and checkpoints as they ran.
    let (code, metrics) = server.get("/metrics");
    assert_eq!(code, 200);
    let metrics = metrics.as_str().unwrap();
    let sample = |family: &str, id: &str| -> f64 {
        let prefix = format!("{family}{{job=\"{id}\",");
        let line = (metrics.lines().find(|l| l.starts_with(&prefix)))
            .unwrap_or_else(|| panic!("no {family} of {id}:\n{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    for (_, _, _, jobs) in &runs {
        for (id, ..) in jobs {
            assert!(sample("eddy_job_batches_total", id) >= 1.0, "{metrics}");
            assert!(
                sample("eddy_job_batch_duration_seconds_count", id) >= 1.0,
                "{metrics}"
            );
            assert!(
                sample("eddy_job_checkpoint_duration_seconds", id) > 0.0,
                "{metrics}"
            );
            assert!(sample("eddy_job_state_bytes", id) > 0.0, "{metrics}");
        }
    }
}
