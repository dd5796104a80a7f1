//! The `orders` table: rows moving along a status lifecycle, with skewed countries.

use std::fmt::Write;

use crate::{COUNTRIES, DecimalMode, Image, Mix, Op, STATUSES, SplitMix64, json};

/// A country index, most often one of the first few.
pub fn skewed_country(rng: &mut SplitMix64) -> u8 {
    let skewed = rng.unit() * rng.unit();
    (skewed * COUNTRIES.len() as f64) as u8
}

#[derive(Debug, Clone, Copy)]
pub struct Row {
    id: u32,
    user_id: u32,
    country: u8,
    status: u8,
    /// Hundredths.
    amount: i64,
    created_at: i64,
    updated_at: i64,
}

/// The live orders and the next id to insert.
pub struct Orders {
    /// Live rows in no particular order: a random one is picked by index.
    live: Vec<Row>,
    next_id: u32,
    users: u32,
}

impl Orders {
    pub fn new(users: u32) -> Self {
        Self {
            live: Vec::new(),
            next_id: 1,
            users,
        }
    }

    pub fn live_rows(&self) -> usize {
        self.live.len()
    }

    /// The next change at `now`: its operation and its images.
    pub fn next(
        &mut self,
        rng: &mut SplitMix64,
        mix: Mix,
        live_keys: u64,
        now: i64,
    ) -> (Op, Option<Row>, Option<Row>) {
        let op = self.choose_op(rng, mix, live_keys);
        match op {
            Op::Insert => (op, None, Some(self.insert(rng, now))),
            Op::Update => {
                let index = self.pick_live(rng);
                let old = self.live[index];
                let new = update(rng, old, now);
                self.live[index] = new;
                (op, Some(old), Some(new))
            }
            Op::Delete => {
                let index = self.pick_live(rng);
                (op, Some(self.live.swap_remove(index)), None)
            }
        }
    }

    fn choose_op(&self, rng: &mut SplitMix64, mix: Mix, live_keys: u64) -> Op {
        let roll = rng.below(100) as u32;
        let op = if roll < mix.insert {
            Op::Insert
        } else if roll < mix.insert + mix.update {
            Op::Update
        } else {
            Op::Delete
        };
        match op {
            _ if self.live.is_empty() => Op::Insert,
            Op::Insert if self.live.len() as u64 >= live_keys => Op::Update,
            op => op,
        }
    }

    fn pick_live(&self, rng: &mut SplitMix64) -> usize {
        rng.below(self.live.len() as u64) as usize
    }

    fn insert(&mut self, rng: &mut SplitMix64, now: i64) -> Row {
        let country = skewed_country(rng);
        let row = Row {
            id: self.next_id,
            user_id: 1 + rng.below(self.users as u64) as u32,
            country,
            status: 0,
            amount: amount(rng),
            created_at: now,
            updated_at: now,
        };
        self.next_id += 1;
        self.live.push(row);
        row
    }
}

/// Half the amounts below 100.00, half up to 1,000.00.
fn amount(rng: &mut SplitMix64) -> i64 {
    if rng.below(2) == 0 {
        100 + rng.below(9_900) as i64
    } else {
        10_000 + rng.below(90_000) as i64
    }
}

/// Most updates move an order along its lifecycle; the rest change its amount.
fn update(rng: &mut SplitMix64, mut row: Row, now: i64) -> Row {
    let roll = rng.below(10);
    match row.status {
        0 | 1 if roll == 0 => row.status = 4,
        0..=2 if roll < 7 => row.status += 1,
        _ => row.amount = amount(rng),
    }
    row.updated_at = now;
    row
}

impl Image for Row {
    fn id(&self) -> u32 {
        self.id
    }

    fn write(&self, out: &mut String, decimal: DecimalMode) {
        let _ = write!(
            out,
            r#"{{"id":{},"user_id":{},"country":"{}","status":"{}","amount":"#,
            self.id, self.user_id, COUNTRIES[self.country as usize], STATUSES[self.status as usize]
        );
        match decimal {
            DecimalMode::Precise => {
                out.push('"');
                out.push_str(&json::unscaled_base64(self.amount));
                out.push('"');
            }
            DecimalMode::String => {
                let _ = write!(out, r#""{}.{:02}""#, self.amount / 100, self.amount % 100);
            }
        }
        let _ = write!(
            out,
            r#","created_at":{},"updated_at":{}}}"#,
            self.created_at, self.updated_at
        );
    }

    fn write_key_only(&self, out: &mut String) {
        let _ = write!(
            out,
            r#"{{"id":{},"user_id":null,"country":null,"status":null,"amount":null,"created_at":null,"updated_at":null}}"#,
            self.id
        );
    }
}

/// The Connect schema fields of a row (`json::value_schema`'s `fields`).
pub fn schema_fields(decimal: DecimalMode) -> String {
    let amount = match decimal {
        DecimalMode::Precise => {
            r#"{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"12"},"field":"amount"}"#
        }
        DecimalMode::String => r#"{"type":"string","optional":true,"field":"amount"}"#,
    };
    format!(
        r#"{{"type":"int32","optional":false,"field":"id"}},{{"type":"int32","optional":false,"field":"user_id"}},{{"type":"string","optional":false,"field":"country"}},{{"type":"string","optional":false,"field":"status"}},{amount},{{"type":"int64","optional":false,"name":"io.debezium.time.Timestamp","version":1,"field":"created_at"}},{{"type":"int64","optional":false,"name":"io.debezium.time.Timestamp","version":1,"field":"updated_at"}}"#
    )
}
