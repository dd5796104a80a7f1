//! Differential test: random changelogs, folded Eddy output vs DataFusion in batch.
//!
//! Each case generates a random history of a small database (a keyed table and a table
//! without a primary key), emits the Debezium records a connector would (REPLICA IDENTITY
//! DEFAULT and FULL, TOAST placeholders, primary-key changes as delete + create, tombstones,
//! truncates, replayed tails of at-least-once delivery, decimals in all three encodings),
//! feeds them to Eddy in random batches with snapshots and restores in between, and checks
//! that folding Eddy's changes gives exactly what DataFusion computes in batch over the
//! final tables; the keyed table's queries again with the records spread over Kafka
//! partitions by key (a truncate on any) and read in a random interleaving. A failure prints the case's seed: `EDDY_DIFF_SEED=<seed>` replays it.

use base64::Engine;
use datafusion::common::ScalarValue;
use eddy_engine::schema::Catalog;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use crate::common::{Model, Sent, interleave, run_cases, run_incremental, sorted};

const SCHEMA: &str = r#"
datasource db { provider = "postgresql" url = env("DATABASE_URL") }
model Item {
  id    Int      @id
  grp   String?
  qty   Int?
  price Decimal? @db.Decimal(10, 2)
  note  String?
  score Float?
  seen  DateTime? @db.Timestamp(6)
  big   BigInt?
  @@map("items")
}
model Event {
  kind String?
  n    Int?
  @@map("events")
}
"#;

const QUERIES: &[&str] = &[
    "SELECT grp, COUNT(*), SUM(qty), SUM(price), MIN(price), MAX(note), COUNT(DISTINCT qty) FROM items GROUP BY grp",
    "SELECT COUNT(*), COUNT(note), AVG(price), AVG(qty), MIN(qty), MAX(qty) FROM items",
    "SELECT id, grp, price, note FROM items WHERE qty > 3",
    "SELECT CASE WHEN qty > 5 THEN 'hi' ELSE 'lo' END AS band, SUM(price) FILTER (WHERE grp = 'a'), COUNT(*) FROM items GROUP BY 1 HAVING COUNT(*) > 1",
    "SELECT kind, COUNT(*), SUM(n), MIN(n), MAX(n), COUNT(DISTINCT n) FROM events GROUP BY kind",
    "SELECT COUNT(*), SUM(score), MAX(score), MIN(grp) FROM items WHERE note IS NOT NULL",
    "SELECT DISTINCT grp, note FROM items",
    "SELECT note, COUNT(DISTINCT grp), SUM(DISTINCT qty) FROM items GROUP BY note",
    "SELECT grp, MIN(seen), MAX(seen), COUNT(DISTINCT seen), SUM(big), MIN(big), MAX(big) FROM items GROUP BY grp",
    "SELECT seen, COUNT(*), SUM(big) FROM items WHERE seen > '1970-01-01' GROUP BY seen",
];

/// Timestamps (µs, as Debezium's `MicroTimestamp`) at the edges: years 1, 1000, 1677 and 2262
/// just outside 64-bit nanoseconds, 9999, and `infinity`/`-infinity` as Debezium sends them.
const SEEN: &[Option<i64>] = &[
    Some(-62_135_596_800_000_000),
    Some(-30_610_224_000_000_000),
    Some(-9_223_372_036_854_776),
    Some(1_686_832_200_000_000),
    Some(9_223_372_036_854_776),
    Some(253_402_300_799_999_999),
    Some(9_223_372_036_825_200_000),
    Some(-9_223_372_036_832_400_000),
    None,
];

/// Bigints whose sums pass 2^63 either way.
const BIG: &[Option<i64>] = &[Some(i64::MAX), Some(i64::MIN), Some(-1), Some(7), None];

/// A `seen` value as the engine holds it: Debezium's infinities as the extreme values.
fn decoded_seen(sent: i64) -> i64 {
    match sent {
        9_223_372_036_825_200_000 => i64::MAX,
        -9_223_372_036_832_400_000 => i64::MIN,
        v => v,
    }
}

/// How a case's decimals travel (`decimal.handling.mode`).
#[derive(Clone, Copy, Debug)]
enum DecimalMode {
    Precise,
    String,
    Double,
}

#[derive(Clone, Debug, PartialEq)]
struct Item {
    id: i32,
    grp: Option<&'static str>,
    qty: Option<i32>,
    cents: Option<i64>,
    note: Option<&'static str>,
    score: Option<f64>,
    seen: Option<i64>,
    big: Option<i64>,
}

struct History {
    rng: StdRng,
    decimals: DecimalMode,
    model: Model,
    items: Vec<Item>,
    events: Vec<(Option<&'static str>, Option<i32>)>,
    sent: Vec<Sent>,
    /// Indices into `sent` of the keyed table's records, for replays.
    item_records: Vec<usize>,
}

impl History {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let decimals = match rng.random_range(0..3) {
            0 => DecimalMode::Precise,
            1 => DecimalMode::String,
            _ => DecimalMode::Double,
        };
        let catalog = Catalog::from_prisma(SCHEMA).expect("schema parses");
        Self {
            rng,
            decimals,
            model: Model::new(catalog),
            items: Vec::new(),
            events: Vec::new(),
            sent: Vec::new(),
            item_records: Vec::new(),
        }
    }

    fn pick<T: Copy>(&mut self, options: &[T]) -> T {
        options[self.rng.random_range(0..options.len())]
    }

    fn random_item(&mut self, id: i32) -> Item {
        Item {
            id,
            grp: self.pick(&[Some("a"), Some("b"), Some("c"), None]),
            qty: self
                .rng
                .random_bool(0.85)
                .then(|| self.rng.random_range(-5..20)),
            cents: self
                .rng
                .random_bool(0.8)
                .then(|| self.rng.random_range(-100_000..10_000_000)),
            note: self.pick(&[Some("x"), Some("y"), Some("long text"), None]),
            score: self.pick(&[Some(0.5), Some(1.25), Some(-2.0), None]),
            seen: self.pick(SEEN),
            big: self.pick(BIG),
        }
    }

    fn decimal_json(&self, cents: Option<i64>) -> Value {
        let Some(cents) = cents else {
            return Value::Null;
        };
        match self.decimals {
            DecimalMode::String => json!(format!(
                "{}{}.{:02}",
                if cents < 0 { "-" } else { "" },
                cents.abs() / 100,
                cents.abs() % 100
            )),
            DecimalMode::Double => json!(cents as f64 / 100.0),
            DecimalMode::Precise => {
                let bytes = cents.to_be_bytes();
                let skip = (0..7)
                    .take_while(|&i| {
                        (bytes[i] == 0x00 && bytes[i + 1] & 0x80 == 0)
                            || (bytes[i] == 0xff && bytes[i + 1] & 0x80 != 0)
                    })
                    .count();
                json!(base64::engine::general_purpose::STANDARD.encode(&bytes[skip..]))
            }
        }
    }

    fn item_json(&self, item: &Item, toast_note: bool) -> Value {
        json!({
            "id": item.id,
            "grp": item.grp,
            "qty": item.qty,
            "price": self.decimal_json(item.cents),
            "note": if toast_note { json!("__debezium_unavailable_value") } else { json!(item.note) },
            "score": item.score,
            "seen": item.seen,
            "big": item.big,
        })
    }

    /// The `before` of a DEFAULT-identity delete: the key, other columns null.
    fn key_only(id: i32) -> Value {
        json!({"id": id, "grp": null, "qty": null, "price": null, "note": null, "score": null, "seen": null, "big": null})
    }

    fn model_row(item: &Item) -> Vec<ScalarValue> {
        vec![
            ScalarValue::Int32(Some(item.id)),
            ScalarValue::Utf8(item.grp.map(str::to_string)),
            ScalarValue::Int32(item.qty),
            ScalarValue::Decimal128(item.cents.map(i128::from), 10, 2),
            ScalarValue::Utf8(item.note.map(str::to_string)),
            ScalarValue::Float64(item.score),
            ScalarValue::TimestampMicrosecond(item.seen.map(decoded_seen), None),
            ScalarValue::Int64(item.big),
        ]
    }

    fn send_item(&mut self, id: i32, value: Option<Value>) {
        self.item_records.push(self.sent.len());
        self.sent.push(Sent {
            topic: "app.public.items",
            key: Some(json!({"id": id}).to_string()),
            value: value.map(|v| v.to_string()),
            replay: false,
        });
    }

    fn send_event(&mut self, value: Value) {
        self.sent.push(Sent {
            topic: "app.public.events",
            key: None,
            value: Some(value.to_string()),
            replay: false,
        });
    }

    /// An envelope with the PostgreSQL connector's `source`: its LSN grows with every
    /// record sent, and a replay repeats it.
    fn envelope(&self, op: &str, before: Value, after: Value) -> Value {
        let source = json!({
            "connector": "postgresql",
            "snapshot": if op == "r" { "last" } else { "false" },
            "lsn": 8 * (self.sent.len() + 1),
        });
        json!({"before": before, "after": after, "op": op, "source": source})
    }

    fn upsert_model(&mut self, item: &Item) {
        self.model.upsert("items", Self::model_row(item));
    }

    fn step(&mut self) {
        let full_identity = self.rng.random_bool(0.5);
        match self.rng.random_range(0..100) {
            0..=29 => {
                let id = self.rng.random_range(0..14);
                if self.items.iter().any(|i| i.id == id) {
                    return;
                }
                let item = self.random_item(id);
                let op = if self.sent.is_empty() { "r" } else { "c" };
                let after = self.item_json(&item, false);
                self.send_item(id, Some(self.envelope(op, Value::Null, after)));
                self.upsert_model(&item);
                self.items.push(item);
            }
            30..=49 if !self.items.is_empty() => {
                let at = self.rng.random_range(0..self.items.len());
                let old = self.items[at].clone();
                let mut new = self.random_item(old.id);
                if self.rng.random_bool(0.4) {
                    new.note = old.note;
                }
                let toast = !full_identity && new.note == old.note && self.rng.random_bool(0.5);
                let before = if full_identity {
                    self.item_json(&old, false)
                } else {
                    Value::Null
                };
                let after = self.item_json(&new, toast);
                self.send_item(old.id, Some(self.envelope("u", before, after)));
                self.upsert_model(&new);
                self.items[at] = new;
            }
            50..=57 if !self.items.is_empty() => {
                let at = self.rng.random_range(0..self.items.len());
                let new_id = self.rng.random_range(0..14);
                if self.items.iter().any(|i| i.id == new_id) {
                    return;
                }
                let old = self.items[at].clone();
                self.delete_item(at, full_identity);
                let moved = Item { id: new_id, ..old };
                let after = self.item_json(&moved, false);
                self.send_item(new_id, Some(self.envelope("c", Value::Null, after)));
                self.upsert_model(&moved);
                self.items.push(moved);
            }
            58..=69 if !self.items.is_empty() => {
                let at = self.rng.random_range(0..self.items.len());
                self.delete_item(at, full_identity);
            }
            70..=72 => {
                self.send_item(0, Some(self.envelope("t", Value::Null, Value::Null)));
                self.sent.last_mut().expect("just sent").key = None;
                self.items.clear();
                self.model.truncate("items");
            }
            73..=79 => {
                // At-least-once delivery: the keyed table's latest records arrive again.
                let k = self.rng.random_range(1..6).min(self.item_records.len());
                let tail: Vec<Sent> = self.item_records[self.item_records.len() - k..]
                    .iter()
                    .map(|&i| Sent {
                        replay: true,
                        ..self.sent[i].clone()
                    })
                    .collect();
                self.sent.extend(tail);
            }
            80..=89 => {
                let kind = self.pick(&[Some("click"), Some("view"), None]);
                let n = self
                    .rng
                    .random_bool(0.8)
                    .then(|| self.rng.random_range(0..5));
                self.send_event(self.envelope("c", Value::Null, json!({"kind": kind, "n": n})));
                self.model.append("events", event_row(kind, n));
                self.events.push((kind, n));
            }
            90..=96 if !self.events.is_empty() => {
                let at = self.rng.random_range(0..self.events.len());
                let (kind, n) = self.events[at];
                let before = json!({"kind": kind, "n": n});
                self.model.remove_one("events", &event_row(kind, n));
                if self.rng.random_bool(0.5) {
                    self.events.remove(at);
                    self.send_event(self.envelope("d", before, Value::Null));
                } else {
                    let n2 = Some(self.rng.random_range(0..5));
                    self.events[at] = (kind, n2);
                    self.model.append("events", event_row(kind, n2));
                    let after = json!({"kind": kind, "n": n2});
                    self.send_event(self.envelope("u", before, after));
                }
            }
            97..=99 => {
                self.send_event(self.envelope("t", Value::Null, Value::Null));
                self.events.clear();
                self.model.truncate("events");
            }
            _ => {}
        }
    }

    fn delete_item(&mut self, at: usize, full_identity: bool) {
        let old = self.items.remove(at);
        let before = if full_identity {
            self.item_json(&old, false)
        } else {
            Self::key_only(old.id)
        };
        self.send_item(old.id, Some(self.envelope("d", before, Value::Null)));
        self.send_item(old.id, None);
        self.model
            .delete("items", &[ScalarValue::Int32(Some(old.id))]);
    }
}

fn event_row(kind: Option<&str>, n: Option<i32>) -> Vec<ScalarValue> {
    vec![
        ScalarValue::Utf8(kind.map(str::to_string)),
        ScalarValue::Int32(n),
    ]
}

/// Feeds the records in random batches, snapshotting and restoring at random, and folds.
/// The records spread over 2 to 8 partitions of their topic, by key (a record without one
/// on any partition), and read in a random interleaving that keeps each partition's order.
fn across_partitions(sent: &[Sent], rng: &mut StdRng) -> Vec<Sent> {
    let count = rng.random_range(2..=8);
    let mut partitions = vec![Vec::new(); count];
    for record in sent {
        let partition = match &record.key {
            Some(key) => {
                key.bytes().fold(0usize, |h, b| {
                    h.wrapping_mul(31).wrapping_add(usize::from(b))
                }) % count
            }
            None => rng.random_range(0..count),
        };
        partitions[partition].push(record.clone());
    }
    interleave(&partitions, rng)
}

fn check_case(seed: u64) -> Result<(), String> {
    check_queries(seed, QUERIES)
}

/// One random history (from `seed`) checked for each query: folded Eddy output against
/// DataFusion in batch over the tables the history leaves. Other differential modules run
/// their queries over these histories.
pub(crate) fn check_queries(seed: u64, queries: &[&str]) -> Result<(), String> {
    let mut history = History::new(seed);
    let length = history.rng.random_range(0..70);
    for _ in 0..length {
        history.step();
    }
    for sql in queries {
        let expected = sorted(history.model.batch_query(sql)?);
        let got = run_incremental(SCHEMA, sql, &history.sent, 12, &mut history.rng)?;
        // Over several partitions, for the keyed table only (events without a key, those
        // of the table without a primary key, keep no order across partitions); for a
        // third of the queries, which keeps the test's time.
        let partitioned = if sql.contains("events") || !history.rng.random_bool(1.0 / 3.0) {
            got.clone()
        } else {
            let shuffled = across_partitions(&history.sent, &mut history.rng);
            run_incremental(SCHEMA, sql, &shuffled, 12, &mut history.rng)?
        };
        if got != expected || partitioned != expected {
            return Err(format!(
                "{sql}\n  decimals: {:?}\n  eddy:  {got:?}\n  over partitions: {partitioned:?}\n  batch: {expected:?}\n  records:\n{}",
                history.decimals,
                history
                    .sent
                    .iter()
                    .map(|s| format!("    {} {}", s.topic, s.value.as_deref().unwrap_or("null")))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
    }
    Ok(())
}

#[test]
fn random_changelogs_fold_to_batch_results() {
    run_cases(300, check_case);
}
