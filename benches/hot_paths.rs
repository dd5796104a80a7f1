//! The data path's hot spots, each on its own: Debezium decoding (per envelope variant), the
//! primary-key normalizer, source-position tracking, every aggregate kind under retraction,
//! and output encoding, over the deterministic `orders` changelog of `eddy_workload`.
//!
//! `cargo bench --bench hot_paths` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use eddy_engine::debezium::position::Position;
use eddy_engine::debezium::{Event, Images, TableDecoder};
use eddy_engine::normalize::Normalizer;
use eddy_engine::{Encoder, Format, JobSpec, Pipeline, Record, ResultChange};
use eddy_workload::{DecimalMode, Options, ReplicaIdentity};
use orders::{Orders, SCHEMA, changelog};

mod orders;

/// The topic of the generator's default prefix.
const TOPIC: &str = "bench.public.orders";
/// Events per changelog a decode or pipeline iteration goes through.
const EVENTS: usize = 50_000;
/// Records per flush: how often the decoder's columns are drained and a batch applied.
const BATCH: usize = 4096;
/// Events applied before the normalizer's timed batch, so it finds the live keys stored.
const WARM: usize = 8 * BATCH;

const AGGREGATES: [(&str, &str); 6] = [
    ("count", "COUNT(*)"),
    ("sum", "SUM(amount)"),
    ("avg", "AVG(amount)"),
    ("min", "MIN(amount)"),
    ("max", "MAX(amount)"),
    ("count_distinct", "COUNT(DISTINCT user_id)"),
];

/// The changes encoded: many groups, a decimal column.
const ENCODED_QUERY: &str = "SELECT country, status, COUNT(*) AS orders, SUM(amount) AS revenue \
                             FROM orders GROUP BY country, status";

/// A normalizer of the columns `orders` reads.
fn normalizer(orders: &Orders) -> Normalizer {
    let schema = orders.table.arrow_schema().project(&orders.columns);
    Normalizer::new(
        &orders.table.name,
        Arc::new(schema.expect("columns exist")),
        orders.key_positions.clone(),
    )
    .expect("normalizer builds")
}

/// One batch of decoded events and the images they index.
struct Decoded {
    events: Vec<Event>,
    images: Images,
}

fn decode(decoder: &mut TableDecoder, records: &[(String, String)]) -> Decoded {
    let events = records
        .iter()
        .filter_map(|(key, value)| {
            decoder
                .decode(TOPIC, Some(key.as_bytes()), Some(value.as_bytes()))
                .expect("record decodes")
        })
        .collect();
    let images = decoder.finish().expect("images build");
    Decoded { events, images }
}

/// Feeds `records` to the pipeline, flushing every `BATCH`; returns every result change.
fn run(pipeline: &mut Pipeline, records: &[(String, String)]) -> Vec<ResultChange> {
    let mut changes = Vec::new();
    for chunk in records.chunks(BATCH) {
        for (key, value) in chunk {
            let record = Record {
                topic: TOPIC,
                key: Some(key.as_bytes()),
                value: Some(value.as_bytes()),
            };
            pipeline.push(record).expect("record decodes");
        }
        let rejected = pipeline.flush().expect("batch applies");
        assert!(rejected.is_empty(), "events rejected: {rejected:?}");
        changes.extend(pipeline.drain());
    }
    changes
}

fn pipeline(sql: &str) -> Pipeline {
    Pipeline::new(JobSpec {
        schema: SCHEMA.into(),
        sql: sql.into(),
        decode: Default::default(),
    })
    .expect("query plans")
}

/// Records per second through `TableDecoder::decode`, drained every `BATCH` records.
fn decoding(c: &mut Criterion) {
    let variants = [
        ("schemaless_precise", Options::default()),
        (
            "schemaless_string",
            Options {
                decimal: DecimalMode::String,
                ..Default::default()
            },
        ),
        (
            "inline_schemas",
            Options {
                schemas: true,
                ..Default::default()
            },
        ),
        (
            "replica_identity_default",
            Options {
                identity: ReplicaIdentity::Default,
                ..Default::default()
            },
        ),
    ];
    let orders = Orders::new();
    let mut group = c.benchmark_group("decode");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EVENTS as u64));
    for (name, options) in variants {
        let mut decoder = orders.decoder(options.decimal);
        let records = changelog(options, EVENTS);
        group.bench_function(name, |b| {
            b.iter(|| {
                for chunk in records.chunks(BATCH) {
                    black_box(decode(&mut decoder, chunk));
                }
            })
        });
    }
    group.finish();
}

/// Events per second through `Normalizer::apply`: one batch on a state warmed with the
/// `WARM` events before it, fresh for every iteration (a batch applied twice would find
/// its rows already stored and change nothing).
fn normalizing(c: &mut Criterion) {
    let orders = Orders::new();
    let records = changelog(Options::default(), WARM + BATCH);
    let mut decoder = orders.decoder(DecimalMode::Precise);
    let warm = decode(&mut decoder, &records[..WARM]);
    let batch = decode(&mut decoder, &records[WARM..]);
    let mut group = c.benchmark_group("normalize");
    group.throughput(Throughput::Elements(batch.events.len() as u64));
    group.bench_function("warm_state", |b| {
        b.iter_batched(
            || {
                let mut normalizer = normalizer(&orders);
                normalizer
                    .apply(warm.events.clone(), &warm.images)
                    .expect("warm batch applies");
                (normalizer, batch.events.clone())
            },
            |(mut normalizer, events)| {
                let out = normalizer.apply(events, &batch.images).expect("applies");
                (normalizer, out)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// What ordering by source position costs: reading `source` into a position per event, the
/// normalizer's batch with positions against the same batch applied in arrival order, and
/// (printed) the snapshot bytes per kept key with and without positions. In memory a key
/// costs 16 bytes more (its position in the row arena's entry).
fn positions(c: &mut Criterion) {
    let records = changelog(Options::default(), WARM + BATCH);
    let sources: Vec<String> = records
        .iter()
        .map(|(_, value)| {
            let envelope: std::collections::HashMap<&str, &serde_json::value::RawValue> =
                serde_json::from_str(value).expect("an envelope");
            envelope["source"].get().to_string()
        })
        .collect();
    let without_source: Vec<(String, String)> = records
        .iter()
        .zip(&sources)
        .map(|((key, value), source)| (key.clone(), value.replace(source.as_str(), "null")))
        .collect();
    let sql = "SELECT status, COUNT(*) FROM orders GROUP BY status";
    for (name, records) in [("positions", &records), ("arrival", &without_source)] {
        let mut pipeline = pipeline(sql);
        run(&mut pipeline, records);
        let size = pipeline.state_size().expect("state measured");
        println!(
            "snapshot bytes per kept key ({name}): {:.2} ({} keys)",
            size.table_bytes as f64 / size.kept_rows as f64,
            size.kept_rows
        );
    }

    let mut group = c.benchmark_group("position");
    group.throughput(Throughput::Elements(sources.len() as u64));
    group.bench_function("of_source", |b| {
        b.iter(|| {
            for source in &sources {
                black_box(Position::of_source(Some(source.as_bytes())));
            }
        })
    });
    group.finish();

    let orders = Orders::new();
    let mut decoder = orders.decoder(DecimalMode::Precise);
    let warm = decode(&mut decoder, &records[..WARM]);
    let batch = decode(&mut decoder, &records[WARM..]);
    let arrival = |events: &[Event]| -> Vec<Event> {
        events
            .iter()
            .map(|e| Event {
                position: Position::Unordered("benchmark".into()),
                ..e.clone()
            })
            .collect()
    };
    let mut group = c.benchmark_group("normalize");
    group.throughput(Throughput::Elements(batch.events.len() as u64));
    group.bench_function("warm_state_arrival_order", |b| {
        b.iter_batched(
            || {
                let mut normalizer = normalizer(&orders);
                normalizer
                    .apply(arrival(&warm.events), &warm.images)
                    .expect("warm batch applies");
                (normalizer, arrival(&batch.events))
            },
            |(mut normalizer, events)| {
                let out = normalizer.apply(events, &batch.images).expect("applies");
                (normalizer, out)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Events per second through a whole pipeline (decode, normalize, aggregate, consolidate)
/// for `SELECT status, <aggregate> FROM orders GROUP BY status`, from an empty state.
fn aggregating(c: &mut Criterion) {
    let records = changelog(Options::default(), EVENTS);
    let mut group = c.benchmark_group("aggregate");
    group.sample_size(10);
    group.throughput(Throughput::Elements(records.len() as u64));
    for (name, aggregate) in AGGREGATES {
        let sql = format!("SELECT status, {aggregate} FROM orders GROUP BY status");
        group.bench_function(name, |b| {
            b.iter_batched(
                || pipeline(&sql),
                |mut pipeline| {
                    let changes = run(&mut pipeline, &records);
                    (pipeline, changes)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// Result changes per second through `Encoder::encode`, per output format.
fn encoding(c: &mut Criterion) {
    let mut pipeline = pipeline(ENCODED_QUERY);
    let changes = run(&mut pipeline, &changelog(Options::default(), EVENTS));
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(changes.len() as u64));
    for (name, format) in [
        ("upsert", Format::Upsert),
        ("debezium", Format::Debezium),
        ("debezium-u", Format::DebeziumUpdate),
    ] {
        let encoder = Encoder::new(format, pipeline.key_fields(), pipeline.value_fields());
        group.bench_function(name, |b| {
            b.iter(|| {
                for change in &changes {
                    black_box(encoder.encode(change));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    decoding,
    normalizing,
    positions,
    aggregating,
    encoding
);
criterion_main!(benches);
