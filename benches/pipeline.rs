//! Pipeline throughput: Debezium records per second through decoding, normalization, the
//! incremental operators and consolidation, for typical aggregate queries; and the state each
//! query keeps afterwards (snapshot bytes), which is its memory bill.
//!
//! `cargo bench --bench pipeline` (add `-- --quick` for a short run).

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use eddy_engine::{JobSpec, Pipeline, Record};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const SCHEMA: &str = include_str!("../fixtures/pg-app/schema.prisma");
const EVENTS: usize = 100_000;
const BATCH: usize = 4096;

const QUERIES: &[(&str, &str)] = &[
    (
        "count_by_status",
        "SELECT status, COUNT(*) FROM orders GROUP BY status",
    ),
    (
        "sum_min_max_by_status",
        "SELECT status, COUNT(*), SUM(amount), MIN(amount), MAX(amount) FROM orders GROUP BY status",
    ),
    (
        "count_distinct_users",
        "SELECT COUNT(DISTINCT user_id) FROM orders",
    ),
    (
        "filtered_rows",
        "SELECT id, amount * 2 AS doubled FROM orders WHERE status = 'paid'",
    ),
];

/// A changelog over 20,000 order ids: inserts, FULL-identity updates, deletes + tombstones.
fn changelog() -> Vec<Option<String>> {
    let mut rng = StdRng::seed_from_u64(7);
    let statuses = ["new", "paid", "shipped", "cancelled"];
    let mut live: Vec<Option<String>> = vec![None; 20_000];
    let mut out = Vec::with_capacity(EVENTS);
    while out.len() < EVENTS {
        let id = rng.random_range(0..live.len());
        let row = format!(
            r#"{{"id":{id},"user_id":{},"amount":"{}.{:02}","status":"{}","created_at":1706429970327569,"meta":null}}"#,
            rng.random_range(0..5000),
            rng.random_range(0..100_000),
            rng.random_range(0..100),
            statuses[rng.random_range(0..statuses.len())]
        );
        let before = live[id].clone();
        if before.is_some() && rng.random_bool(0.2) {
            let before = before.unwrap_or_default();
            out.push(Some(format!(
                r#"{{"before":{before},"after":null,"op":"d"}}"#
            )));
            out.push(None);
            live[id] = None;
        } else {
            let op = if before.is_some() { "u" } else { "c" };
            let before = before.unwrap_or_else(|| "null".into());
            out.push(Some(format!(
                r#"{{"before":{before},"after":{row},"op":"{op}"}}"#
            )));
            live[id] = Some(row);
        }
    }
    out.truncate(EVENTS);
    out
}

fn run(spec: &JobSpec, records: &[Option<String>]) -> Pipeline {
    let mut pipeline = Pipeline::new(spec.clone()).expect("query plans");
    for chunk in records.chunks(BATCH) {
        for value in chunk {
            pipeline
                .push(Record {
                    topic: "app.public.orders",
                    key: None,
                    value: value.as_deref().map(str::as_bytes),
                })
                .expect("record decodes");
        }
        pipeline.flush().expect("batch applies");
        std::hint::black_box(pipeline.drain());
    }
    pipeline
}

fn throughput(c: &mut Criterion) {
    let records = changelog();
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.sample_size(10);
    for (name, sql) in QUERIES {
        let spec = JobSpec {
            schema: SCHEMA.into(),
            sql: (*sql).into(),
            decode: Default::default(),
        };
        let pipeline = run(&spec, &records);
        let state = pipeline.snapshot().expect("snapshot");
        eprintln!(
            "{name}: after {EVENTS} records the state is {} bytes; rows kept {:?}",
            state.len(),
            pipeline.kept_rows()
        );
        group.bench_function(*name, |b| {
            b.iter_batched(|| (), |()| run(&spec, &records), BatchSize::PerIteration)
        });
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
