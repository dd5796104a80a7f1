//! A/B of what getting out of a Debezium record what Eddy's decoder needs costs, on the same
//! records: Eddy's `TableDecoder`, `simd-json`'s borrowed DOM and `sonic-rs`'s lazy iterators.
//!
//! `cargo bench --bench decode_ab -- --quick`
//!
//! The records are `eddy_workload`'s `orders` changelog (decimals as strings, the bare envelope
//! with its `source` block), the columns those of `hot_paths`' decode benchmarks. Eddy's decoder
//! also converts and checks every value into its column's Arrow builder and reads the whole
//! `before` image; `simd-json` validates and builds the whole record (on a copy, since a Kafka
//! payload is immutable, the copy counted); `sonic-rs` validates the envelope while skipping
//! and returns the fields read as raw JSON text, unconverted.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use eddy_engine::debezium::{Op, TableDecoder};
use eddy_workload::{DecimalMode, Options};
use orders::{COLUMNS, Orders, changelog};
use simd_json::BorrowedValue;
use simd_json::prelude::*;
use sonic_rs::{JsonValueTrait, LazyValue};

mod orders;

/// The topic of the generator's default prefix.
const TOPIC: &str = "bench.public.orders";
/// Records per iteration.
const EVENTS: usize = 50_000;
/// Records per flush of the decoder's columns, as in `hot_paths`.
const BATCH: usize = 4096;
/// Records on which the three are checked to agree before anything is timed.
const CHECKED: usize = 1000;

/// A decoder of `orders`' `COLUMNS`, as a query's plan would make it.
fn decoder() -> TableDecoder {
    Orders::new().decoder(DecimalMode::String)
}

/// Decodes `records` a batch at a time; the events decoded.
fn eddy(decoder: &mut TableDecoder, records: &[(String, String)]) -> usize {
    let mut events = 0;
    for chunk in records.chunks(BATCH) {
        for (key, value) in chunk {
            let event = decoder
                .decode(TOPIC, Some(key.as_bytes()), Some(value.as_bytes()))
                .expect("record decodes");
            events += usize::from(black_box(event).is_some());
        }
        black_box(decoder.finish().expect("images build"));
    }
    events
}

/// `op` and the after image's `id` of each of `records`, by Eddy's decoder.
fn eddy_checked(records: &[(String, String)]) -> Vec<(String, Option<i64>)> {
    let mut decoder = decoder();
    let events: Vec<_> = records
        .iter()
        .map(|(key, value)| {
            decoder
                .decode(TOPIC, Some(key.as_bytes()), Some(value.as_bytes()))
                .expect("record decodes")
                .expect("not a tombstone")
        })
        .collect();
    let images = decoder.finish().expect("images build");
    let ids = cast(&images.columns[0], &DataType::Int64).expect("ids are integers");
    let ids = ids.as_primitive::<Int64Type>();
    events
        .iter()
        .map(|event| {
            let op = match event.op {
                Op::Read => "r",
                Op::Create => "c",
                Op::Update => "u",
                Op::Delete => "d",
                Op::Truncate => "t",
            };
            let id = event.after.as_ref().map(|image| ids.value(image.row));
            (op.to_string(), id)
        })
        .collect()
}

/// What the parsers read of a record, each field as the parser yields it.
#[derive(Debug)]
struct Fields<V> {
    op: Option<V>,
    after: [Option<V>; 4],
    before_id: Option<V>,
    connector: Option<V>,
    snapshot: Option<V>,
    lsn: Option<V>,
}

impl<V> Default for Fields<V> {
    fn default() -> Self {
        Self {
            op: None,
            after: [None, None, None, None],
            before_id: None,
            connector: None,
            snapshot: None,
            lsn: None,
        }
    }
}

/// `simd-json`'s buffers, reused from record to record.
struct Simd {
    input: Vec<u8>,
    buffers: simd_json::Buffers,
}

impl Simd {
    fn new() -> Self {
        Self {
            input: Vec::with_capacity(1024),
            buffers: simd_json::Buffers::new(1024),
        }
    }

    /// Parses a copy of `value` and hands `read` the fields.
    fn read<R>(&mut self, value: &[u8], read: impl FnOnce(&Fields<&BorrowedValue<'_>>) -> R) -> R {
        self.input.clear();
        self.input.extend_from_slice(value);
        let envelope =
            simd_json::to_borrowed_value_with_buffers(&mut self.input, &mut self.buffers)
                .expect("record parses");
        let mut fields = Fields {
            op: envelope.get("op"),
            ..Default::default()
        };
        if let Some(after) = envelope.get("after").filter(|v| v.is_object()) {
            for (field, name) in fields.after.iter_mut().zip(COLUMNS) {
                *field = after.get(name);
            }
        }
        if let Some(before) = envelope.get("before").filter(|v| v.is_object()) {
            fields.before_id = before.get("id");
        }
        if let Some(source) = envelope.get("source").filter(|v| v.is_object()) {
            fields.connector = source.get("connector");
            fields.snapshot = source.get("snapshot");
            fields.lsn = source.get("lsn");
        }
        read(&fields)
    }
}

/// The fields of `value` as raw JSON text, by `sonic-rs`'s lazy object iterators: the envelope's
/// (validated as it is skipped), then those of `after`, `before` and `source` (already validated).
fn sonic(value: &[u8]) -> Fields<LazyValue<'_>> {
    let mut fields = Fields::default();
    for entry in sonic_rs::to_object_iter(value) {
        let (key, value) = entry.expect("record parses");
        match &*key {
            "op" => fields.op = Some(value),
            "after" => {
                for entry in value.into_object_iter().into_iter().flatten() {
                    let (key, value) = entry.expect("after parses");
                    if let Some(i) = COLUMNS.iter().position(|c| *c == key) {
                        fields.after[i] = Some(value);
                    }
                }
            }
            "before" => {
                for entry in value.into_object_iter().into_iter().flatten() {
                    let (key, value) = entry.expect("before parses");
                    if key == "id" {
                        fields.before_id = Some(value);
                    }
                }
            }
            "source" => {
                for entry in value.into_object_iter().into_iter().flatten() {
                    let (key, value) = entry.expect("source parses");
                    match &*key {
                        "connector" => fields.connector = Some(value),
                        "snapshot" => fields.snapshot = Some(value),
                        "lsn" => fields.lsn = Some(value),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    fields
}

/// Checks on the first `CHECKED` records that the three find the same `op` and after `id`.
fn check(records: &[(String, String)]) {
    let records = &records[..CHECKED];
    let expected = eddy_checked(records);
    let mut simd = Simd::new();
    let mut ops = std::collections::BTreeMap::<&str, usize>::new();
    for ((_, value), (op, id)) in records.iter().zip(&expected) {
        let (simd_op, simd_id) = simd.read(value.as_bytes(), |f| {
            let op = f.op.and_then(|v| v.as_str()).expect("op is a string");
            (op.to_string(), f.after[0].and_then(|v| v.as_i64()))
        });
        let f = sonic(value.as_bytes());
        let sonic_op =
            f.op.as_ref()
                .and_then(|v| v.as_str())
                .expect("op is a string");
        let sonic_id = f.after[0].as_ref().map(|v| {
            let raw = v.as_raw_str();
            raw.parse::<i64>().expect("id is an integer")
        });
        assert_eq!(
            (&simd_op, simd_id),
            (op, *id),
            "simd-json disagrees on {value}"
        );
        assert_eq!(
            (sonic_op, sonic_id),
            (op.as_str(), *id),
            "sonic-rs disagrees on {value}"
        );
        assert!(f.lsn.is_some() && f.connector.is_some() && f.snapshot.is_some());
        *ops.entry(op.as_str()).or_default() += 1;
    }
    println!("decode_ab: the three agree on op and after.id of {CHECKED} records: {ops:?}");
}

fn decode_ab(c: &mut Criterion) {
    let records = changelog(
        Options {
            decimal: DecimalMode::String,
            ..Default::default()
        },
        EVENTS,
    );
    check(&records);
    let bytes: usize = records.iter().map(|(_, value)| value.len()).sum();
    println!(
        "decode_ab: {EVENTS} records, {bytes} bytes of values ({:.0} B each)",
        bytes as f64 / EVENTS as f64
    );

    let mut group = c.benchmark_group("decode_ab");
    group.sample_size(10);
    group.throughput(Throughput::ElementsAndBytes {
        elements: EVENTS as u64,
        bytes: bytes as u64,
    });
    let mut decoder = decoder();
    group.bench_function("eddy", |b| {
        b.iter(|| assert_eq!(eddy(&mut decoder, &records), EVENTS))
    });
    let mut simd = Simd::new();
    group.bench_function("simd_json", |b| {
        b.iter(|| {
            for (_, value) in &records {
                simd.read(black_box(value.as_bytes()), |fields| {
                    black_box(fields);
                });
            }
        })
    });
    group.bench_function("sonic_rs", |b| {
        b.iter(|| {
            for (_, value) in &records {
                black_box(sonic(black_box(value.as_bytes())));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, decode_ab);
criterion_main!(benches);
