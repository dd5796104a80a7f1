//! A deterministic changelog of the pg-app `orders` table, in the JSON real Debezium emits
//! (schemas off, precise decimals), with its expected final state.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const STATUSES: &[&str] = &["new", "paid", "shipped", "canceled"];

/// A Kafka record: topic, key, value (`None` = tombstone).
pub type KafkaRecord = (String, Option<String>, Option<String>);

/// `numeric(12,2)` cents as Debezium's precise encoding: big-endian two's complement, base64.
fn precise(cents: i64) -> String {
    let bytes = cents.to_be_bytes();
    // Leading zero bytes go, as long as the sign bit of what remains stays clear.
    let skip = (0..7)
        .take_while(|&i| bytes[i] == 0 && bytes[i + 1] < 0x80)
        .count();
    STANDARD.encode(&bytes[skip..])
}

/// `events` changes over at most `keys` live orders: inserts, FULL-identity updates, deletes
/// with tombstones. Returns the records and the final rows (id → (status, cents)).
pub fn orders(
    topic: &str,
    events: usize,
    keys: u64,
    seed: u64,
) -> (Vec<KafkaRecord>, BTreeMap<u64, (String, i64)>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut live: BTreeMap<u64, (String, i64)> = BTreeMap::new();
    let mut next_id = 1;
    let mut records = Vec::with_capacity(events + events / 8);
    let row = |id: u64, (status, cents): &(String, i64)| {
        format!(
            r#"{{"id":{id},"user_id":{},"amount":"{}","status":"{status}","created_at":1700000000000000,"meta":null}}"#,
            id % 97,
            precise(*cents)
        )
    };
    let key = |id: u64| Some(format!(r#"{{"id":{id}}}"#));
    while records.len() < events {
        let roll: f64 = rng.random();
        let pick = |rng: &mut StdRng, live: &BTreeMap<u64, (String, i64)>| {
            let n = rng.random_range(0..live.len());
            *live.keys().nth(n).unwrap()
        };
        if live.is_empty() || (roll < 0.6 && (live.len() as u64) < keys) {
            let id = next_id;
            next_id += 1;
            let values = (
                STATUSES[rng.random_range(0..STATUSES.len())].to_string(),
                rng.random_range(1..1_000_000),
            );
            let value = format!(r#"{{"before":null,"after":{},"op":"c"}}"#, row(id, &values));
            records.push((topic.to_string(), key(id), Some(value)));
            live.insert(id, values);
        } else if roll < 0.9 {
            let id = pick(&mut rng, &live);
            let before = row(id, &live[&id]);
            let values = (
                STATUSES[rng.random_range(0..STATUSES.len())].to_string(),
                rng.random_range(1..1_000_000),
            );
            let value = format!(
                r#"{{"before":{before},"after":{},"op":"u"}}"#,
                row(id, &values)
            );
            records.push((topic.to_string(), key(id), Some(value)));
            live.insert(id, values);
        } else {
            let id = pick(&mut rng, &live);
            let before = row(id, &live.remove(&id).unwrap());
            let value = format!(r#"{{"before":{before},"after":null,"op":"d"}}"#);
            records.push((topic.to_string(), key(id), Some(value)));
            records.push((topic.to_string(), key(id), None));
        }
    }
    (records, live)
}

/// `SELECT status, COUNT(*), SUM(amount) FROM orders GROUP BY status` over `rows`, as psql
/// prints it, sorted.
pub fn count_and_sum_by_status(rows: &BTreeMap<u64, (String, i64)>) -> Vec<Vec<String>> {
    let mut groups: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (status, cents) in rows.values() {
        let group = groups.entry(status).or_default();
        group.0 += 1;
        group.1 += cents;
    }
    groups
        .into_iter()
        .map(|(status, (n, cents))| {
            vec![
                status.to_string(),
                n.to_string(),
                format!("{}.{:02}", cents / 100, cents % 100),
            ]
        })
        .collect()
}
