//! Differential test of joins, subqueries and set operations: random changelogs of related
//! tables, folded Eddy output vs DataFusion in batch.
//!
//! Each case generates a random history of `users`, `orders` (whose `user_id` may dangle or
//! be NULL, and moves between users) and `tags` (no primary key, duplicates, NULL users),
//! with primary-key moves, deletes and truncates of either side, feeds the records to Eddy in
//! random batches (so both sides of a pair often change in one batch) with snapshots and
//! restores in between, and checks random queries against DataFusion's batch answer.
//! `EDDY_DIFF_SEED=<seed>` replays a case, `EDDY_DIFF_CASES=N` runs more.

use datafusion::common::ScalarValue;
use eddy_engine::schema::Catalog;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use crate::common::{Model, Sent, run_cases, run_incremental, sorted};

const SCHEMA: &str = r#"
datasource db { provider = "postgresql" url = env("DATABASE_URL") }
model User {
  id      Int     @id
  country String?
  plan    String?
  @@map("users")
}
model Order {
  id      Int     @id
  user_id Int?
  amount  Int?
  status  String?
  @@map("orders")
}
model Tag {
  user_id Int?
  label   String?
  @@map("tags")
}
"#;

/// Subqueries, set operations and shapes the random joins below do not produce.
const QUERIES: &[&str] = &[
    "SELECT id FROM orders WHERE user_id IN (SELECT id FROM users WHERE plan = 'pro')",
    "SELECT id, country FROM users u WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.amount > 3)",
    "SELECT id, status FROM orders o WHERE EXISTS (SELECT 1 FROM tags t WHERE t.user_id = o.user_id)",
    "SELECT id FROM orders WHERE user_id NOT IN (SELECT user_id FROM tags)",
    "SELECT status, COUNT(*), (SELECT COUNT(*) FROM users) AS users FROM orders GROUP BY status",
    "SELECT status, CAST(COUNT(*) AS DOUBLE) / (SELECT COUNT(*) FROM orders) FROM orders GROUP BY status",
    "SELECT id FROM orders WHERE amount >= (SELECT AVG(amount) FROM orders)",
    "SELECT country, COUNT(*) FROM (SELECT country FROM users UNION ALL SELECT status FROM orders UNION ALL SELECT label FROM tags) GROUP BY country",
    "SELECT id, country FROM users UNION ALL SELECT id, status FROM orders",
    "SELECT user_id FROM orders INTERSECT SELECT user_id FROM tags",
    "SELECT id FROM users EXCEPT SELECT user_id FROM orders",
    "SELECT country FROM users UNION SELECT label FROM tags",
    "SELECT u.country, COUNT(*) FROM users u WHERE u.id IN (SELECT user_id FROM orders WHERE amount > 2) OR u.plan = 'pro' GROUP BY u.country",
    "SELECT a.id, b.id FROM users a JOIN users b ON a.country = b.country AND a.id < b.id",
    "WITH t AS (SELECT user_id, SUM(amount) AS s FROM orders GROUP BY user_id) SELECT u.plan, SUM(t.s), COUNT(*) FROM users u LEFT JOIN t ON t.user_id = u.id GROUP BY u.plan",
    "SELECT t.label, u.plan, COUNT(*), SUM(o.amount) FROM tags t JOIN users u ON u.id = t.user_id LEFT JOIN orders o ON o.user_id = u.id GROUP BY t.label, u.plan",
];

/// A random two- or three-way join, as plain rows or grouped.
fn random_join(rng: &mut StdRng) -> String {
    let mut pick = |options: &[&'static str]| options[rng.random_range(0..options.len())];
    let join = pick(&["JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN"]);
    let extra = pick(&[
        "",
        "",
        " AND u.plan = 'pro'",
        " AND o.amount > u.id",
        " AND o.status <> 'void'",
    ]);
    let filter = pick(&[
        "",
        "",
        " WHERE o.amount > 2",
        " WHERE u.country IS NOT NULL",
        " WHERE o.status = 'new' OR u.plan = 'free'",
    ]);
    let second = pick(&["JOIN", "LEFT JOIN", "FULL JOIN"]);
    let shape = pick(&["rows", "grouped", "three", "distinct"]);
    let from = format!("FROM orders o {join} users u ON o.user_id = u.id{extra}");
    match shape {
        "rows" => format!("SELECT o.id, u.id, o.amount, u.country {from}{filter}"),
        "grouped" => format!(
            "SELECT u.country, COUNT(*), SUM(o.amount), COUNT(o.id), MAX(u.plan) {from}{filter} GROUP BY u.country"
        ),
        "three" => format!(
            "SELECT u.country, t.label, COUNT(*), SUM(o.amount) {from} {second} tags t ON t.user_id = u.id{filter} GROUP BY u.country, t.label"
        ),
        _ => format!("SELECT DISTINCT u.plan, o.status {from}{filter}"),
    }
}

struct History {
    rng: StdRng,
    model: Model,
    /// Live primary keys.
    users: Vec<i32>,
    orders: Vec<i32>,
    tags: Vec<(Option<i32>, Option<&'static str>)>,
    sent: Vec<Sent>,
}

fn envelope(op: &str, before: Value, after: Value) -> Value {
    json!({"before": before, "after": after, "op": op, "source": {"table": "x"}})
}

impl History {
    fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            model: Model::new(Catalog::from_prisma(SCHEMA).expect("schema parses")),
            users: Vec::new(),
            orders: Vec::new(),
            tags: Vec::new(),
            sent: Vec::new(),
        }
    }

    fn pick<T: Copy>(&mut self, options: &[T]) -> T {
        options[self.rng.random_range(0..options.len())]
    }

    fn send(&mut self, topic: &'static str, key: Option<Value>, value: Option<Value>) {
        self.sent.push(Sent {
            topic,
            key: key.map(|k| k.to_string()),
            value: value.map(|v| v.to_string()),
            replay: false,
        });
    }

    fn user_id(&mut self) -> Option<i32> {
        self.rng
            .random_bool(0.9)
            .then(|| self.rng.random_range(0..8))
    }

    fn put_user(&mut self, id: i32, op: &str) {
        let country = self.pick(&[Some("US"), Some("GB"), Some("FR"), None]);
        let plan = self.pick(&[Some("pro"), Some("free"), None]);
        let after = json!({"id": id, "country": country, "plan": plan});
        self.send(
            "app.public.users",
            Some(json!({"id": id})),
            Some(envelope(op, Value::Null, after)),
        );
        self.users.retain(|&u| u != id);
        self.users.push(id);
        let row = vec![
            ScalarValue::Int32(Some(id)),
            ScalarValue::Utf8(country.map(str::to_string)),
            ScalarValue::Utf8(plan.map(str::to_string)),
        ];
        self.model.upsert("users", row);
    }

    fn delete_user(&mut self, at: usize) {
        let id = self.users.remove(at);
        let before = json!({"id": id, "country": null, "plan": null});
        self.send(
            "app.public.users",
            Some(json!({"id": id})),
            Some(envelope("d", before, Value::Null)),
        );
        self.send("app.public.users", Some(json!({"id": id})), None);
        self.model.delete("users", &[ScalarValue::Int32(Some(id))]);
    }

    fn put_order(&mut self, id: i32, user_id: Option<i32>, op: &str) {
        let amount = self
            .rng
            .random_bool(0.9)
            .then(|| self.rng.random_range(0..8));
        let status = self.pick(&[Some("new"), Some("paid"), Some("void"), None]);
        let after = json!({"id": id, "user_id": user_id, "amount": amount, "status": status});
        self.send(
            "app.public.orders",
            Some(json!({"id": id})),
            Some(envelope(op, Value::Null, after)),
        );
        self.orders.retain(|&o| o != id);
        self.orders.push(id);
        let row = vec![
            ScalarValue::Int32(Some(id)),
            ScalarValue::Int32(user_id),
            ScalarValue::Int32(amount),
            ScalarValue::Utf8(status.map(str::to_string)),
        ];
        self.model.upsert("orders", row);
    }

    fn delete_order(&mut self, at: usize) {
        let id = self.orders.remove(at);
        let before = json!({"id": id, "user_id": null, "amount": null, "status": null});
        self.send(
            "app.public.orders",
            Some(json!({"id": id})),
            Some(envelope("d", before, Value::Null)),
        );
        self.model.delete("orders", &[ScalarValue::Int32(Some(id))]);
    }

    fn tag_row(tag: (Option<i32>, Option<&str>)) -> Vec<ScalarValue> {
        vec![
            ScalarValue::Int32(tag.0),
            ScalarValue::Utf8(tag.1.map(str::to_string)),
        ]
    }

    fn truncate(&mut self, table: &'static str) {
        let topic = match table {
            "users" => "app.public.users",
            "orders" => "app.public.orders",
            _ => "app.public.tags",
        };
        self.send(topic, None, Some(envelope("t", Value::Null, Value::Null)));
        self.model.truncate(table);
        match table {
            "users" => self.users.clear(),
            "orders" => self.orders.clear(),
            _ => self.tags.clear(),
        }
    }

    fn step(&mut self) {
        let op = if self.sent.is_empty() { "r" } else { "c" };
        match self.rng.random_range(0..100) {
            0..=14 => {
                let id = self.rng.random_range(0..8);
                let op = if self.users.contains(&id) { "u" } else { op };
                self.put_user(id, op);
            }
            15..=21 if !self.users.is_empty() => {
                let at = self.rng.random_range(0..self.users.len());
                self.delete_user(at);
            }
            22..=25 if !self.users.is_empty() => {
                // A primary-key move: the user's orders now dangle or find another user.
                let at = self.rng.random_range(0..self.users.len());
                let new_id = self.rng.random_range(0..8);
                if !self.users.contains(&new_id) {
                    self.delete_user(at);
                    self.put_user(new_id, "c");
                }
            }
            26..=47 => {
                let id = self.rng.random_range(0..12);
                let user_id = self.user_id();
                let op = if self.orders.contains(&id) { "u" } else { op };
                self.put_order(id, user_id, op);
            }
            48..=57 if !self.orders.is_empty() => {
                // The order moves to another user (or to none), keeping its key.
                let at = self.rng.random_range(0..self.orders.len());
                let id = self.orders[at];
                let user_id = self.user_id();
                self.put_order(id, user_id, "u");
            }
            58..=65 if !self.orders.is_empty() => {
                let at = self.rng.random_range(0..self.orders.len());
                self.delete_order(at);
            }
            66..=77 => {
                let tag = (self.user_id(), self.pick(&[Some("vip"), Some("new"), None]));
                self.send(
                    "app.public.tags",
                    None,
                    Some(envelope(
                        "c",
                        Value::Null,
                        json!({"user_id": tag.0, "label": tag.1}),
                    )),
                );
                self.model.append("tags", Self::tag_row(tag));
                self.tags.push(tag);
            }
            78..=85 if !self.tags.is_empty() => {
                let at = self.rng.random_range(0..self.tags.len());
                let tag = self.tags.remove(at);
                let before = json!({"user_id": tag.0, "label": tag.1});
                self.send(
                    "app.public.tags",
                    None,
                    Some(envelope("d", before, Value::Null)),
                );
                self.model.remove_one("tags", &Self::tag_row(tag));
            }
            86..=88 => self.truncate("users"),
            89..=91 => self.truncate("orders"),
            92..=93 => self.truncate("tags"),
            _ => {}
        }
    }
}

/// Feeds the records in random batches, snapshotting and restoring at random, and folds.
fn check_case(seed: u64) -> Result<(), String> {
    let mut history = History::new(seed);
    let length = history.rng.random_range(0..80);
    for _ in 0..length {
        history.step();
    }
    let mut queries: Vec<String> = (0..3)
        .map(|_| QUERIES[history.rng.random_range(0..QUERIES.len())].to_string())
        .collect();
    queries.extend((0..3).map(|_| random_join(&mut history.rng)));
    for sql in &queries {
        let expected = sorted(history.model.batch_query(sql)?);
        let got = run_incremental(SCHEMA, sql, &history.sent, 16, &mut history.rng)?;
        if got != expected {
            return Err(format!(
                "{sql}\n  eddy:  {got:?}\n  batch: {expected:?}\n  records:\n{}",
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
fn random_join_changelogs_fold_to_batch_results() {
    run_cases(300, check_case);
}
