//! Debezium change events: the key, the envelope (`before`, `after`, `source`, `op`,
//! `ts_ms`) and the headers the PostgreSQL connector writes, in JSON without schemas.

use serde_json::{Map, Value, json};

use crate::catalog::Table;
use crate::error::{Error, Result};
use crate::lsn::Lsn;
use crate::pgoutput::Cell;
use crate::values::{Modes, encode};

/// What Debezium writes for a TOASTed value an update did not touch.
pub const UNAVAILABLE: &str = "__debezium_unavailable_value";

/// The `source.version` Eddy's connector writes: its own, so that a reader can tell it
/// from Debezium's.
pub const VERSION: &str = concat!("eddy-", env!("CARGO_PKG_VERSION"));

/// One Kafka record of a change topic.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// `<environment>.<schema>.<table>`.
    pub topic: String,
    /// The primary-key struct, `None` for a table without one.
    pub key: Option<Value>,
    /// The envelope; `None` for the tombstone after a delete.
    pub value: Option<Value>,
    /// `__debezium.oldkey` / `__debezium.newkey` on a primary-key change.
    pub headers: Vec<(String, String)>,
}

/// Where an event comes from, for its `source` block.
#[derive(Debug, Clone)]
pub struct Position {
    /// Unix microseconds: the snapshot's start, or the transaction's commit.
    pub ts_micros: i64,
    /// `first`, `first_in_data_collection`, `true`, `last_in_data_collection`, `last`
    /// while snapshotting; `false` when streaming.
    pub snapshot: &'static str,
    pub tx_id: u32,
    pub lsn: Lsn,
    /// The LSN of the last commit before this event (Debezium's `sequence`).
    pub last_commit: Option<Lsn>,
}

/// Builds the events of one environment.
#[derive(Debug, Clone)]
pub struct Encoder {
    pub environment: String,
    pub database: String,
    pub modes: Modes,
}

/// Which image a tuple is, for the columns it lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Image {
    /// A whole row.
    Row,
    /// A key-only old image: NOT NULL columns it lacks take their type's zero, as
    /// Debezium fills them.
    Key,
}

impl Encoder {
    /// A row's JSON: each cell encoded by its column's kind; unchanged TOAST values taken
    /// from `old` when it has them, else Debezium's placeholder.
    pub fn row(
        &self,
        table: &Table,
        cells: &[Cell],
        image: Image,
        old: Option<&Map<String, Value>>,
    ) -> Result<Map<String, Value>> {
        if cells.len() != table.columns.len() {
            return Err(Error::Value {
                table: table.name.to_string(),
                column: "*".into(),
                detail: format!(
                    "a row of {} columns for a table of {}: its columns changed",
                    cells.len(),
                    table.columns.len()
                ),
            });
        }
        let mut row = Map::with_capacity(cells.len());
        for (column, cell) in table.columns.iter().zip(cells) {
            let value = match cell {
                Cell::Null if image == Image::Key && column.not_null => {
                    column.kind.zero(self.modes)
                }
                Cell::Null => Value::Null,
                Cell::UnchangedToast => match old.and_then(|o| o.get(&column.name)) {
                    Some(value) if value.as_str() != Some(UNAVAILABLE) => value.clone(),
                    _ => Value::String(UNAVAILABLE.into()),
                },
                Cell::Text(text) => {
                    encode(&column.kind, text, self.modes).map_err(|detail| Error::Value {
                        table: table.name.to_string(),
                        column: column.name.clone(),
                        detail,
                    })?
                }
            };
            row.insert(column.name.clone(), value);
        }
        Ok(row)
    }

    /// The Kafka key of a row: its primary-key columns.
    pub fn key(&self, table: &Table, row: &Map<String, Value>) -> Option<Value> {
        if table.key.is_empty() {
            return None;
        }
        let key: Map<String, Value> = table
            .key
            .iter()
            .map(|&i| {
                let name = &table.columns[i].name;
                (name.clone(), row.get(name).cloned().unwrap_or(Value::Null))
            })
            .collect();
        Some(Value::Object(key))
    }

    fn topic(&self, table: &Table) -> String {
        format!(
            "{}.{}.{}",
            self.environment, table.name.schema, table.name.name
        )
    }

    fn envelope(
        &self,
        table: &Table,
        op: &str,
        before: Option<Map<String, Value>>,
        after: Option<Map<String, Value>>,
        at: &Position,
    ) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let sequence = json!([
            at.last_commit.map(|l| l.0.to_string()),
            at.lsn.0.to_string()
        ]);
        json!({
            "before": before,
            "after": after,
            "source": {
                "version": VERSION,
                "connector": "postgresql",
                "name": self.environment,
                "ts_ms": at.ts_micros.div_euclid(1000),
                "snapshot": at.snapshot,
                "db": self.database,
                "sequence": sequence.to_string(),
                "ts_us": at.ts_micros,
                "ts_ns": at.ts_micros * 1000,
                "schema": table.name.schema,
                "table": table.name.name,
                "txId": at.tx_id,
                "lsn": at.lsn.0,
                "xmin": null,
                "origin": null,
                "origin_lsn": null,
            },
            "transaction": null,
            "op": op,
            "ts_ms": now.div_euclid(1_000_000),
            "ts_us": now.div_euclid(1000),
            "ts_ns": now,
        })
    }

    /// A snapshot read (`op: r`) or an insert (`op: c`).
    pub fn created(
        &self,
        table: &Table,
        op: &str,
        after: Map<String, Value>,
        at: &Position,
    ) -> ChangeEvent {
        ChangeEvent {
            topic: self.topic(table),
            key: self.key(table, &after),
            value: Some(self.envelope(table, op, None, Some(after), at)),
            headers: Vec::new(),
        }
    }

    /// An update: one `u` event, or, when the primary key changed, a delete of the old key
    /// and its tombstone (headed `__debezium.newkey`) then a create (headed
    /// `__debezium.oldkey`).
    pub fn updated(
        &self,
        table: &Table,
        before: Option<Map<String, Value>>,
        after: Map<String, Value>,
        at: &Position,
    ) -> Vec<ChangeEvent> {
        let new_key = self.key(table, &after);
        let old_key = before.as_ref().and_then(|b| self.key(table, b));
        match old_key {
            Some(old_key) if Some(&old_key) != new_key.as_ref() => {
                let new_text = new_key.as_ref().map(Value::to_string).unwrap_or_default();
                let mut events = self.deleted(table, before.unwrap_or_default(), at);
                for event in &mut events {
                    event.headers = vec![("__debezium.newkey".into(), new_text.clone())];
                }
                let mut create = self.created(table, "c", after, at);
                create.headers = vec![("__debezium.oldkey".into(), old_key.to_string())];
                events.push(create);
                events
            }
            _ => vec![ChangeEvent {
                topic: self.topic(table),
                key: new_key,
                value: Some(self.envelope(table, "u", before, Some(after), at)),
                headers: Vec::new(),
            }],
        }
    }

    /// A delete and the tombstone after it.
    pub fn deleted(
        &self,
        table: &Table,
        before: Map<String, Value>,
        at: &Position,
    ) -> Vec<ChangeEvent> {
        let key = self.key(table, &before);
        let topic = self.topic(table);
        vec![
            ChangeEvent {
                topic: topic.clone(),
                key: key.clone(),
                value: Some(self.envelope(table, "d", Some(before), None, at)),
                headers: Vec::new(),
            },
            ChangeEvent {
                topic,
                key,
                value: None,
                headers: Vec::new(),
            },
        ]
    }

    /// A TRUNCATE of one table (`op: t`, no key).
    pub fn truncated(&self, table: &Table, at: &Position) -> ChangeEvent {
        ChangeEvent {
            topic: self.topic(table),
            key: None,
            value: Some(self.envelope(table, "t", None, None, at)),
            headers: Vec::new(),
        }
    }
}
