//! Deterministic Debezium changelogs of a shop's `orders` (and `customers`), for Eddy's benchmarks.
//!
//! [`Generator`] produces the change events a PostgreSQL connector (Debezium 3.x, JSON
//! converter) emits for a busy `orders` table: inserts, updates and deletes in a chosen mix
//! over a bounded set of live keys; with [`Options::customers`], interleaved with those of
//! the `customers` the orders' `user_id`s refer to. The same options and seed always give the
//! same bytes, so two engines (or two runs) can be fed identical input. The tables are
//! `benches/orders.prisma`:
//!
//! | `orders` column | type | JSON |
//! |---|---|---|
//! | `id` | `integer`, primary key | number |
//! | `user_id` | `integer` | number, 1..=[`Options::users`] |
//! | `country` | `text` | one of 20 codes, skewed towards the first |
//! | `status` | `text` | `new` → `paid` → `shipped` → `delivered`, or `cancelled` |
//! | `amount` | `numeric(12,2)` | base64 unscaled bytes (`precise`) or text (`string`) |
//! | `created_at`, `updated_at` | `timestamp(3)` | epoch milliseconds |
//!
//! | `customers` column | type | JSON |
//! |---|---|---|
//! | `id` | `integer`, primary key | number, 1..=[`Options::users`] |
//! | `name` | `text` | a first and a last name |
//! | `country` | `text` | one of 20 codes, skewed like the orders' |

mod customers;
mod json;
mod options;
mod orders;
mod rng;

use std::fmt::Write;

pub use options::{DecimalMode, Mix, Options, ReplicaIdentity};
pub use rng::SplitMix64;

use customers::Customers;
use orders::Orders;

/// The tables' Prisma schema.
pub const SCHEMA: &str = include_str!("../../../benches/orders.prisma");

/// A benchmark query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub name: &'static str,
    pub sql: &'static str,
    /// The tables it reads: a changelog for it needs [`Options::customers`] if it reads
    /// `customers`.
    pub tables: &'static [Table],
}

/// The benchmark queries.
pub const QUERIES: [Query; 5] = [
    Query {
        name: "q1",
        sql: "SELECT country, COUNT(*) AS n, SUM(amount) AS total, AVG(amount) AS mean \
              FROM orders GROUP BY country",
        tables: &[Table::Orders],
    },
    Query {
        name: "q2",
        sql: "SELECT status, MIN(amount) AS lo, MAX(amount) AS hi, \
              COUNT(DISTINCT user_id) AS users FROM orders GROUP BY status",
        tables: &[Table::Orders],
    },
    Query {
        name: "q3",
        sql: "SELECT country, status, SUM(amount) AS total FROM orders WHERE amount > 100 \
              GROUP BY country, status HAVING COUNT(*) > 10",
        tables: &[Table::Orders],
    },
    Query {
        name: "q4",
        sql: "SELECT c.country, COUNT(*) AS n, SUM(o.amount) AS total \
              FROM orders o JOIN customers c ON o.user_id = c.id GROUP BY c.country",
        tables: &[Table::Orders, Table::Customers],
    },
    Query {
        name: "q5",
        sql: "SELECT user_id, SUM(amount) AS spent FROM orders GROUP BY user_id \
              ORDER BY spent DESC LIMIT 10",
        tables: &[Table::Orders],
    },
];

/// The query named `name`.
pub fn query(name: &str) -> Option<&'static Query> {
    QUERIES.iter().find(|q| q.name == name)
}

/// Countries, most frequent first.
pub const COUNTRIES: [&str; 20] = [
    "US", "DE", "GB", "FR", "IN", "BR", "JP", "CA", "AU", "ES", "IT", "NL", "MX", "SE", "PL", "KR",
    "CH", "BE", "AR", "ZA",
];

/// Order statuses; the first four are a lifecycle, the last leaves it.
pub const STATUSES: [&str; 5] = ["new", "paid", "shipped", "delivered", "cancelled"];

/// 2026-01-01T00:00:00Z, where the changelog's clock starts.
const EPOCH_MS: i64 = 1_767_225_600_000;

/// A table of the changelog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Orders,
    /// Customers by id (the orders' `user_id`), with a country; see [`Options::customers`].
    Customers,
}

impl Table {
    /// The table's database name, the last part of its topic.
    pub fn name(self) -> &'static str {
        match self {
            Table::Orders => "orders",
            Table::Customers => "customers",
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

/// What an event was: the table it changed and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub table: Table,
    pub op: Op,
}

/// A row of one of the tables, as a change event's `before` or `after` holds it.
trait Image: Copy {
    fn id(&self) -> u32;
    fn write(&self, out: &mut String, decimal: DecimalMode);
    /// A delete's `before` under `REPLICA IDENTITY DEFAULT`: the key, every other column null.
    fn write_key_only(&self, out: &mut String);
}

/// An endless, deterministic changelog; see the crate docs.
pub struct Generator {
    options: Options,
    /// The orders' random stream; the customers have their own.
    rng: SplitMix64,
    orders: Orders,
    customers: Option<Customers>,
    events: u64,
    /// The inline Connect schemas of keys and values by table, when `schemas` is on.
    schemas: Vec<(String, String)>,
}

impl Generator {
    pub fn new(options: Options) -> Self {
        let schemas = if options.schemas {
            let orders = orders::schema_fields(options.decimal);
            [
                (Table::Orders, orders.as_str()),
                (Table::Customers, customers::SCHEMA_FIELDS),
            ]
            .iter()
            .map(|(table, fields)| {
                (
                    json::key_schema(&options.prefix, table.name()),
                    json::value_schema(&options.prefix, table.name(), fields),
                )
            })
            .collect()
        } else {
            Vec::new()
        };
        Self {
            rng: SplitMix64::new(options.seed),
            orders: Orders::new(options.users),
            customers: options
                .customers
                .then(|| Customers::new(options.seed, options.users)),
            options,
            events: 0,
            schemas,
        }
    }

    /// The tables the events belong to.
    pub fn tables(&self) -> &'static [Table] {
        if self.customers.is_some() {
            &[Table::Orders, Table::Customers]
        } else {
            &[Table::Orders]
        }
    }

    /// The topic of `table`'s events.
    pub fn topic(&self, table: Table) -> String {
        format!("{}.public.{}", self.options.prefix, table.name())
    }

    /// Rows of `table` alive after the events generated so far.
    pub fn live_rows(&self, table: Table) -> usize {
        match (table, &self.customers) {
            (Table::Orders, _) => self.orders.live_rows(),
            (Table::Customers, Some(customers)) => customers.live_rows(),
            (Table::Customers, None) => 0,
        }
    }

    /// Writes the next event's Kafka key and value (both JSON) into the buffers, replacing
    /// what they held, and says which table it changed and how. A delete's tombstone, which
    /// Debezium sends next by default, is the caller's to write (same key, null value).
    pub fn next_into(&mut self, key: &mut String, value: &mut String) -> Change {
        key.clear();
        value.clear();
        let now = EPOCH_MS + self.events as i64 * 7;
        self.events += 1;
        let customer = self.customers.as_mut().and_then(Customers::next);
        match customer {
            Some(change) => self.write(key, value, Table::Customers, change, now),
            None => {
                let change =
                    self.orders
                        .next(&mut self.rng, self.options.mix, self.options.live_keys, now);
                self.write(key, value, Table::Orders, change, now)
            }
        }
    }

    /// Writes `table`'s change (its operation and images) at `now` as Debezium sends it.
    fn write<R: Image>(
        &self,
        key: &mut String,
        value: &mut String,
        table: Table,
        (op, before, after): (Op, Option<R>, Option<R>),
        now: i64,
    ) -> Change {
        let id = before.or(after).map_or(0, |r| r.id());
        let schemas = self.schemas.get(table as usize);
        match schemas {
            Some((key_schema, _)) => {
                let _ = write!(key, r#"{{"schema":{key_schema},"payload":{{"id":{id}}}}}"#);
            }
            None => {
                let _ = write!(key, r#"{{"id":{id}}}"#);
            }
        }
        if let Some((_, value_schema)) = schemas {
            value.push_str(r#"{"schema":"#);
            value.push_str(value_schema);
            value.push_str(r#","payload":"#);
        }
        value.push_str(r#"{"before":"#);
        match (before, op, self.options.identity) {
            (Some(_), Op::Update, ReplicaIdentity::Default) | (None, _, _) => {
                value.push_str("null")
            }
            (Some(row), Op::Delete, ReplicaIdentity::Default) => row.write_key_only(value),
            (Some(row), _, _) => row.write(value, self.options.decimal),
        }
        value.push_str(r#","after":"#);
        match after {
            Some(row) => row.write(value, self.options.decimal),
            None => value.push_str("null"),
        }
        let lsn = 30_000_000 + self.events * 312;
        let _ = write!(
            value,
            r#","source":{{"version":"3.6.3.Final","connector":"postgresql","name":"{prefix}","ts_ms":{now},"snapshot":"false","db":"shop","sequence":"[\"{prev}\",\"{lsn}\"]","ts_us":{now}000,"ts_ns":{now}000000,"schema":"public","table":"{table}","txId":{tx},"lsn":{lsn},"xmin":null}},"transaction":null,"op":"{op}","ts_ms":{seen},"ts_us":{seen}000,"ts_ns":{seen}000000}}"#,
            prefix = self.options.prefix,
            prev = lsn - 312,
            table = table.name(),
            tx = 800 + self.events,
            op = op.code(),
            seen = now + 3,
        );
        if schemas.is_some() {
            value.push('}');
        }
        Change { table, op }
    }
}

#[cfg(test)]
mod tests;
