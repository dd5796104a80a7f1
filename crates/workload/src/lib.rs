//! Deterministic Debezium changelogs of an `orders` table, for Eddy's benchmarks.
//!
//! [`Generator`] produces the change events a PostgreSQL connector (Debezium 3.x, JSON
//! converter) emits for a busy `orders` table: inserts, updates and deletes in a chosen mix
//! over a bounded set of live keys. The same options and seed always give the same bytes, so
//! two engines (or two runs) can be fed identical input. The table is
//! `benches/orders.prisma`:
//!
//! | column | type | JSON |
//! |---|---|---|
//! | `id` | `integer`, primary key | number |
//! | `user_id` | `integer` | number, 1..=100,000 |
//! | `country` | `text` | one of 20 codes, skewed towards the first |
//! | `status` | `text` | `new` → `paid` → `shipped` → `delivered`, or `cancelled` |
//! | `amount` | `numeric(12,2)` | base64 unscaled bytes (`precise`) or text (`string`) |
//! | `created_at`, `updated_at` | `timestamp(3)` | epoch milliseconds |

mod json;
mod rng;

use std::fmt::Write;

pub use rng::SplitMix64;

/// The table's Prisma schema.
pub const SCHEMA: &str = include_str!("../../../benches/orders.prisma");

/// The benchmark queries, by name.
pub const QUERIES: [(&str, &str); 3] = [
    (
        "q1",
        "SELECT country, COUNT(*) AS n, SUM(amount) AS total, AVG(amount) AS mean \
         FROM orders GROUP BY country",
    ),
    (
        "q2",
        "SELECT status, MIN(amount) AS lo, MAX(amount) AS hi, COUNT(DISTINCT user_id) AS users \
         FROM orders GROUP BY status",
    ),
    (
        "q3",
        "SELECT country, status, SUM(amount) AS total FROM orders WHERE amount > 100 \
         GROUP BY country, status HAVING COUNT(*) > 10",
    ),
];

/// Countries, most frequent first.
pub const COUNTRIES: [&str; 20] = [
    "US", "DE", "GB", "FR", "IN", "BR", "JP", "CA", "AU", "ES", "IT", "NL", "MX", "SE", "PL", "KR",
    "CH", "BE", "AR", "ZA",
];

/// Order statuses; the first four are a lifecycle, the last leaves it.
pub const STATUSES: [&str; 5] = ["new", "paid", "shipped", "delivered", "cancelled"];

/// 2026-01-01T00:00:00Z, where the changelog's clock starts.
const EPOCH_MS: i64 = 1_767_225_600_000;

/// How `numeric` values are written (Debezium's `decimal.handling.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecimalMode {
    /// Base64 big-endian unscaled bytes: Debezium's default.
    #[default]
    Precise,
    /// Decimal text such as `"123.45"`.
    String,
}

/// What an update's and a delete's `before` image holds (the table's `REPLICA IDENTITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplicaIdentity {
    /// The whole old row: what Flink's `debezium-json` format needs.
    #[default]
    Full,
    /// Updates carry no `before`; deletes carry the key and nulls.
    Default,
}

/// Percentages of inserts, updates and deletes; they add up to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    pub insert: u32,
    pub update: u32,
    pub delete: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            insert: 60,
            update: 30,
            delete: 10,
        }
    }
}

impl std::str::FromStr for Mix {
    type Err = String;

    /// `"60,30,10"`: inserts, updates, deletes, in percent.
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<u32> = s
            .split(',')
            .map(|p| p.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("mix {s:?}: {e}; expected INSERT,UPDATE,DELETE percentages"))?;
        match parts[..] {
            [insert, update, delete] if insert + update + delete == 100 && insert > 0 => Ok(Self {
                insert,
                update,
                delete,
            }),
            _ => Err(format!(
                "mix {s:?}: expected three percentages (inserts > 0) adding up to 100"
            )),
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub seed: u64,
    /// The most rows alive at once: an insert beyond it becomes an update.
    pub live_keys: u64,
    pub mix: Mix,
    /// Wrap values and keys in `{"schema", "payload"}` (the converter's `schemas.enable`).
    pub schemas: bool,
    pub decimal: DecimalMode,
    pub identity: ReplicaIdentity,
    /// The connector's topic prefix: events belong to `<prefix>.public.orders`.
    pub prefix: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seed: 1,
            live_keys: 500_000,
            mix: Mix::default(),
            schemas: false,
            decimal: DecimalMode::default(),
            identity: ReplicaIdentity::default(),
            prefix: "bench".into(),
        }
    }
}

/// A Debezium operation the generator emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    fn code(self) -> &'static str {
        match self {
            Op::Insert => "c",
            Op::Update => "u",
            Op::Delete => "d",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Row {
    id: u32,
    user_id: u32,
    country: u8,
    status: u8,
    /// Hundredths.
    amount: i64,
    created_at: i64,
    updated_at: i64,
}

/// An endless, deterministic changelog; see the crate docs.
pub struct Generator {
    options: Options,
    rng: SplitMix64,
    /// Live rows in no particular order: a random one is picked by index.
    live: Vec<Row>,
    next_id: u32,
    events: u64,
    /// The inline Connect schemas of keys and values, when `schemas` is on.
    key_schema: String,
    value_schema: String,
}

impl Generator {
    pub fn new(options: Options) -> Self {
        let (key_schema, value_schema) = if options.schemas {
            (
                json::key_schema(&options.prefix),
                json::value_schema(&options.prefix, options.decimal),
            )
        } else {
            Default::default()
        };
        Self {
            rng: SplitMix64::new(options.seed),
            options,
            live: Vec::new(),
            next_id: 1,
            events: 0,
            key_schema,
            value_schema,
        }
    }

    /// The topic the events belong to.
    pub fn topic(&self) -> String {
        format!("{}.public.orders", self.options.prefix)
    }

    /// Rows alive after the events generated so far.
    pub fn live_rows(&self) -> usize {
        self.live.len()
    }

    /// Writes the next event's Kafka key and value (both JSON) into the buffers, replacing
    /// what they held, and says which operation it is. A delete's tombstone, which Debezium
    /// sends next by default, is the caller's to write (same key, null value).
    pub fn next_into(&mut self, key: &mut String, value: &mut String) -> Op {
        key.clear();
        value.clear();
        let op = self.choose_op();
        let now = EPOCH_MS + self.events as i64 * 7;
        self.events += 1;
        let (before, after) = match op {
            Op::Insert => (None, Some(self.insert(now))),
            Op::Update => {
                let index = self.pick_live();
                let old = self.live[index];
                let new = self.update(old, now);
                self.live[index] = new;
                (Some(old), Some(new))
            }
            Op::Delete => {
                let index = self.pick_live();
                (Some(self.live.swap_remove(index)), None)
            }
        };
        let id = before.or(after).map_or(0, |r| r.id);
        self.write_key(key, id);
        self.write_value(value, op, before, after, now);
        op
    }

    fn choose_op(&mut self) -> Op {
        let Mix { insert, update, .. } = self.options.mix;
        let roll = self.rng.below(100) as u32;
        let op = if roll < insert {
            Op::Insert
        } else if roll < insert + update {
            Op::Update
        } else {
            Op::Delete
        };
        match op {
            _ if self.live.is_empty() => Op::Insert,
            Op::Insert if self.live.len() as u64 >= self.options.live_keys => Op::Update,
            op => op,
        }
    }

    fn pick_live(&mut self) -> usize {
        self.rng.below(self.live.len() as u64) as usize
    }

    fn insert(&mut self, now: i64) -> Row {
        let skewed = self.rng.unit() * self.rng.unit();
        let row = Row {
            id: self.next_id,
            user_id: 1 + self.rng.below(100_000) as u32,
            country: (skewed * COUNTRIES.len() as f64) as u8,
            status: 0,
            amount: self.amount(),
            created_at: now,
            updated_at: now,
        };
        self.next_id += 1;
        self.live.push(row);
        row
    }

    /// Half the amounts below 100.00, half up to 1,000.00.
    fn amount(&mut self) -> i64 {
        if self.rng.below(2) == 0 {
            100 + self.rng.below(9_900) as i64
        } else {
            10_000 + self.rng.below(90_000) as i64
        }
    }

    /// Most updates move an order along its lifecycle; the rest change its amount.
    fn update(&mut self, mut row: Row, now: i64) -> Row {
        let roll = self.rng.below(10);
        match row.status {
            0 | 1 if roll == 0 => row.status = 4,
            0..=2 if roll < 7 => row.status += 1,
            _ => row.amount = self.amount(),
        }
        row.updated_at = now;
        row
    }

    fn write_key(&self, out: &mut String, id: u32) {
        if self.options.schemas {
            out.push_str(r#"{"schema":"#);
            out.push_str(&self.key_schema);
            let _ = write!(out, r#","payload":{{"id":{id}}}}}"#);
        } else {
            let _ = write!(out, r#"{{"id":{id}}}"#);
        }
    }

    fn write_value(
        &mut self,
        out: &mut String,
        op: Op,
        before: Option<Row>,
        after: Option<Row>,
        now: i64,
    ) {
        if self.options.schemas {
            out.push_str(r#"{"schema":"#);
            out.push_str(&self.value_schema);
            out.push_str(r#","payload":"#);
        }
        out.push_str(r#"{"before":"#);
        match (before, op, self.options.identity) {
            (Some(_), Op::Update, ReplicaIdentity::Default) | (None, _, _) => out.push_str("null"),
            (Some(row), Op::Delete, ReplicaIdentity::Default) => {
                let _ = write!(
                    out,
                    r#"{{"id":{},"user_id":null,"country":null,"status":null,"amount":null,"created_at":null,"updated_at":null}}"#,
                    row.id
                );
            }
            (Some(row), _, _) => self.write_row(out, &row),
        }
        out.push_str(r#","after":"#);
        match after {
            Some(row) => self.write_row(out, &row),
            None => out.push_str("null"),
        }
        let lsn = 30_000_000 + self.events * 312;
        let _ = write!(
            out,
            r#","source":{{"version":"3.6.3.Final","connector":"postgresql","name":"{prefix}","ts_ms":{now},"snapshot":"false","db":"shop","sequence":"[\"{prev}\",\"{lsn}\"]","ts_us":{now}000,"ts_ns":{now}000000,"schema":"public","table":"orders","txId":{tx},"lsn":{lsn},"xmin":null}},"transaction":null,"op":"{op}","ts_ms":{seen},"ts_us":{seen}000,"ts_ns":{seen}000000}}"#,
            prefix = self.options.prefix,
            prev = lsn - 312,
            tx = 800 + self.events,
            op = op.code(),
            seen = now + 3,
        );
        if self.options.schemas {
            out.push('}');
        }
    }

    fn write_row(&self, out: &mut String, row: &Row) {
        let _ = write!(
            out,
            r#"{{"id":{},"user_id":{},"country":"{}","status":"{}","amount":"#,
            row.id, row.user_id, COUNTRIES[row.country as usize], STATUSES[row.status as usize]
        );
        match self.options.decimal {
            DecimalMode::Precise => {
                out.push('"');
                out.push_str(&json::unscaled_base64(row.amount));
                out.push('"');
            }
            DecimalMode::String => {
                let _ = write!(out, r#""{}.{:02}""#, row.amount / 100, row.amount % 100);
            }
        }
        let _ = write!(
            out,
            r#","created_at":{},"updated_at":{}}}"#,
            row.created_at, row.updated_at
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(options: Options, n: usize) -> Vec<(String, String, Op)> {
        let mut generator = Generator::new(options);
        (0..n)
            .map(|_| {
                let (mut key, mut value) = (String::new(), String::new());
                let op = generator.next_into(&mut key, &mut value);
                (key, value, op)
            })
            .collect()
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = take(Options::default(), 1000);
        assert_eq!(a, take(Options::default(), 1000));
        let other = Options {
            seed: 2,
            ..Options::default()
        };
        assert_ne!(a, take(other, 1000));
    }

    #[test]
    fn mix_and_live_keys_are_honoured() {
        let options = Options {
            live_keys: 300,
            ..Options::default()
        };
        let mut generator = Generator::new(options);
        let (mut key, mut value) = (String::new(), String::new());
        let mut counts = [0usize; 3];
        for _ in 0..10_000 {
            counts[generator.next_into(&mut key, &mut value) as usize] += 1;
            assert!(generator.live_rows() <= 300);
        }
        assert!(counts[Op::Delete as usize] > 800, "{counts:?}");
        let balanced = take(Options::default(), 10_000);
        let inserts = balanced.iter().filter(|e| e.2 == Op::Insert).count();
        assert!((5_700..6_300).contains(&inserts), "{inserts} inserts");
    }

    #[test]
    fn events_are_valid_debezium_json() {
        for schemas in [false, true] {
            let options = Options {
                schemas,
                decimal: DecimalMode::String,
                ..Options::default()
            };
            for (key, value, op) in take(options, 200) {
                let value: serde_json::Value = serde_json::from_str(&value).unwrap();
                let envelope = if schemas { &value["payload"] } else { &value };
                assert_eq!(envelope["op"].as_str(), Some(op.code()));
                let image = if op == Op::Delete { "before" } else { "after" };
                let amount = envelope[image]["amount"].as_str().unwrap_or_default();
                assert!(amount.contains('.'), "{amount}");
                let key: serde_json::Value = serde_json::from_str(&key).unwrap();
                let key = if schemas { &key["payload"] } else { &key };
                assert_eq!(key["id"], envelope[image]["id"]);
            }
        }
    }

    #[test]
    fn default_identity_sends_no_update_before_image() {
        let options = Options {
            identity: ReplicaIdentity::Default,
            ..Options::default()
        };
        for (_, value, op) in take(options, 500) {
            let value: serde_json::Value = serde_json::from_str(&value).unwrap();
            match op {
                Op::Update => assert!(value["before"].is_null()),
                Op::Delete => assert!(value["before"]["status"].is_null()),
                Op::Insert => assert!(value["before"].is_null()),
            }
        }
    }
}
