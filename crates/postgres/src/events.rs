//! Debezium change events: the key, the envelope (`before`, `after`, `source`, `op`,
//! `ts_ms`) and the headers the PostgreSQL connector writes, in JSON without schemas.
//!
//! Events are written straight into bytes: a row's JSON once, with where each column's
//! value lies in it, and from it the key, the envelope and, for an update that leaves a
//! TOASTed value unchanged, the old value. The parts of an envelope that are the same for
//! every event of a table (its topic, the quoted column names, the `source` fields naming
//! it) are written once, when the table is [`Encoder::table`]d. Building a JSON tree for
//! each event and serializing it was most of the connector's time.

use std::ops::Range;
use std::sync::Arc;

use crate::catalog::Table;
use crate::error::{Error, Result};
use crate::lsn::Lsn;
use crate::values::{Modes, integer, string, write};

/// What Debezium writes for a TOASTed value an update did not touch.
pub const UNAVAILABLE: &str = "__debezium_unavailable_value";
const UNAVAILABLE_JSON: &[u8] = b"\"__debezium_unavailable_value\"";

/// The `source.version` Eddy's connector writes: its own, so that a reader can tell it
/// from Debezium's.
pub const VERSION: &str = concat!("eddy-", env!("CARGO_PKG_VERSION"));

/// One Kafka record of a change topic.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// `<environment>.<schema>.<table>`.
    pub topic: Arc<str>,
    /// The primary-key struct's JSON, `None` for a table without one.
    pub key: Option<Vec<u8>>,
    /// The envelope's JSON; `None` for the tombstone after a delete.
    pub value: Option<Vec<u8>>,
    /// `__debezium.oldkey` / `__debezium.newkey` on a primary-key change.
    pub headers: Vec<(String, String)>,
}

impl ChangeEvent {
    /// The key, parsed.
    pub fn key_json(&self) -> Option<serde_json::Value> {
        self.key.as_deref().map(parse)
    }

    /// The envelope, parsed.
    pub fn value_json(&self) -> Option<serde_json::Value> {
        self.value.as_deref().map(parse)
    }
}

fn parse(json: &[u8]) -> serde_json::Value {
    serde_json::from_slice(json).expect("the encoder writes valid JSON")
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

/// A captured table with the parts of its events written once.
#[derive(Debug, Clone)]
pub struct CapturedTable {
    pub table: Table,
    topic: Arc<str>,
    /// `"name":` of each column, with the comma before it for all but the first.
    fields: Vec<Vec<u8>>,
    /// `,"schema":…,"table":…,"txId":` of the `source` block.
    source_table: Vec<u8>,
}

/// One column's value in a row image, as its text form.
#[derive(Debug, Clone, Copy)]
pub enum Field<'a> {
    Null,
    /// A TOASTed value the change did not touch: not sent.
    UnchangedToast,
    Text(&'a str),
}

/// A row's JSON object and where each column's value lies in it.
#[derive(Debug, Clone, Default)]
pub struct Row {
    json: Vec<u8>,
    values: Vec<Range<usize>>,
}

impl Row {
    fn value(&self, column: usize) -> &[u8] {
        &self.json[self.values[column].clone()]
    }
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

/// Builds the events of one environment.
#[derive(Debug, Clone)]
pub struct Encoder {
    environment: String,
    modes: Modes,
    /// `{"version":…,"connector":"postgresql","name":…,"ts_ms":` of the `source` block.
    source_head: Vec<u8>,
    /// `,"db":…,"sequence":` of the `source` block.
    source_db: Vec<u8>,
}

impl Encoder {
    /// The encoder of `environment`'s events from `database`.
    pub fn new(environment: &str, database: &str, modes: Modes) -> Self {
        let mut source_head = b"{\"version\":".to_vec();
        string(&mut source_head, VERSION);
        source_head.extend_from_slice(b",\"connector\":\"postgresql\",\"name\":");
        string(&mut source_head, environment);
        source_head.extend_from_slice(b",\"ts_ms\":");
        let mut source_db = b",\"db\":".to_vec();
        string(&mut source_db, database);
        source_db.extend_from_slice(b",\"sequence\":");
        Encoder {
            environment: environment.to_string(),
            modes,
            source_head,
            source_db,
        }
    }

    /// `table` with the constant parts of its events written.
    pub fn table(&self, table: Table) -> CapturedTable {
        let fields = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                let mut field = if i == 0 { Vec::new() } else { vec![b','] };
                string(&mut field, &column.name);
                field.push(b':');
                field
            })
            .collect();
        let mut source_table = b",\"schema\":".to_vec();
        string(&mut source_table, &table.name.schema);
        source_table.extend_from_slice(b",\"table\":");
        string(&mut source_table, &table.name.name);
        source_table.extend_from_slice(b",\"txId\":");
        CapturedTable {
            topic: format!(
                "{}.{}.{}",
                self.environment, table.name.schema, table.name.name
            )
            .into(),
            table,
            fields,
            source_table,
        }
    }

    /// A row's JSON: each field encoded by its column's kind; unchanged TOAST values taken
    /// from `old` when it has them, else Debezium's placeholder.
    pub fn row<'a>(
        &self,
        captured: &CapturedTable,
        fields: impl ExactSizeIterator<Item = Field<'a>>,
        image: Image,
        old: Option<&Row>,
    ) -> Result<Row> {
        let table = &captured.table;
        if fields.len() != table.columns.len() {
            return Err(Error::Value {
                table: table.name.to_string(),
                column: "*".into(),
                detail: format!(
                    "a row of {} columns for a table of {}: its columns changed",
                    fields.len(),
                    table.columns.len()
                ),
            });
        }
        let mut row = Row {
            json: Vec::with_capacity(16 * table.columns.len() + 2),
            values: Vec::with_capacity(table.columns.len()),
        };
        row.json.push(b'{');
        for (i, (column, field)) in table.columns.iter().zip(fields).enumerate() {
            row.json.extend_from_slice(&captured.fields[i]);
            let start = row.json.len();
            match field {
                Field::Null if image == Image::Key && column.not_null => {
                    column.kind.write_zero(self.modes, &mut row.json)
                }
                Field::Null => row.json.extend_from_slice(b"null"),
                Field::UnchangedToast => match old.map(|o| o.value(i)) {
                    Some(value) if value != UNAVAILABLE_JSON => row.json.extend_from_slice(value),
                    _ => row.json.extend_from_slice(UNAVAILABLE_JSON),
                },
                Field::Text(text) => {
                    write(&column.kind, text, self.modes, &mut row.json).map_err(|detail| {
                        Error::Value {
                            table: table.name.to_string(),
                            column: column.name.clone(),
                            detail,
                        }
                    })?
                }
            }
            row.values.push(start..row.json.len());
        }
        row.json.push(b'}');
        Ok(row)
    }

    /// The Kafka key of a row: its primary-key columns.
    fn key(&self, captured: &CapturedTable, row: &Row) -> Option<Vec<u8>> {
        let key = &captured.table.key;
        if key.is_empty() {
            return None;
        }
        let mut json = Vec::with_capacity(32);
        json.push(b'{');
        for (n, &i) in key.iter().enumerate() {
            let field = &captured.fields[i];
            // Column names carry a leading comma except the first column's.
            let name = if i == 0 { &field[..] } else { &field[1..] };
            if n > 0 {
                json.push(b',');
            }
            json.extend_from_slice(name);
            json.extend_from_slice(row.value(i));
        }
        json.push(b'}');
        Some(json)
    }

    fn envelope(
        &self,
        captured: &CapturedTable,
        op: &str,
        before: Option<&Row>,
        after: Option<&Row>,
        at: &Position,
    ) -> Vec<u8> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let before = before.map_or(&b"null"[..], |r| &r.json[..]);
        let after = after.map_or(&b"null"[..], |r| &r.json[..]);
        let mut out = Vec::with_capacity(before.len() + after.len() + 512);
        out.extend_from_slice(b"{\"before\":");
        out.extend_from_slice(before);
        out.extend_from_slice(b",\"after\":");
        out.extend_from_slice(after);
        out.extend_from_slice(b",\"source\":");
        out.extend_from_slice(&self.source_head);
        integer(&mut out, at.ts_micros.div_euclid(1000));
        out.extend_from_slice(b",\"snapshot\":");
        string(&mut out, at.snapshot);
        out.extend_from_slice(&self.source_db);
        // A JSON array of LSN strings, itself a JSON string.
        out.extend_from_slice(b"\"[");
        match at.last_commit {
            Some(lsn) => {
                out.extend_from_slice(b"\\\"");
                integer(&mut out, lsn.0 as i64);
                out.extend_from_slice(b"\\\"");
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\\\"");
        integer(&mut out, at.lsn.0 as i64);
        out.extend_from_slice(b"\\\"]\",\"ts_us\":");
        integer(&mut out, at.ts_micros);
        out.extend_from_slice(b",\"ts_ns\":");
        integer(&mut out, at.ts_micros * 1000);
        out.extend_from_slice(&captured.source_table);
        integer(&mut out, i64::from(at.tx_id));
        out.extend_from_slice(b",\"lsn\":");
        integer(&mut out, at.lsn.0 as i64);
        out.extend_from_slice(
            b",\"xmin\":null,\"origin\":null,\"origin_lsn\":null},\"transaction\":null,\"op\":",
        );
        string(&mut out, op);
        out.extend_from_slice(b",\"ts_ms\":");
        integer(&mut out, now.div_euclid(1_000_000));
        out.extend_from_slice(b",\"ts_us\":");
        integer(&mut out, now.div_euclid(1000));
        out.extend_from_slice(b",\"ts_ns\":");
        integer(&mut out, now);
        out.push(b'}');
        out
    }

    /// A snapshot read (`op: r`) or an insert (`op: c`).
    pub fn created(
        &self,
        captured: &CapturedTable,
        op: &str,
        after: &Row,
        at: &Position,
    ) -> ChangeEvent {
        ChangeEvent {
            topic: captured.topic.clone(),
            key: self.key(captured, after),
            value: Some(self.envelope(captured, op, None, Some(after), at)),
            headers: Vec::new(),
        }
    }

    /// An update: one `u` event, or, when the primary key changed, a delete of the old key
    /// and its tombstone (headed `__debezium.newkey`) then a create (headed
    /// `__debezium.oldkey`).
    pub fn updated(
        &self,
        captured: &CapturedTable,
        before: Option<&Row>,
        after: &Row,
        at: &Position,
        events: &mut Vec<ChangeEvent>,
    ) {
        let new_key = self.key(captured, after);
        let old_key = before.and_then(|b| self.key(captured, b));
        match (before, old_key) {
            (Some(before), Some(old_key)) if Some(&old_key) != new_key.as_ref() => {
                let text = |key: &[u8]| String::from_utf8_lossy(key).into_owned();
                let new_text = new_key.as_deref().map(text).unwrap_or_default();
                let first = events.len();
                self.deleted(captured, before, at, events);
                for event in &mut events[first..] {
                    event.headers = vec![("__debezium.newkey".into(), new_text.clone())];
                }
                let mut create = self.created(captured, "c", after, at);
                create.headers = vec![("__debezium.oldkey".into(), text(&old_key))];
                events.push(create);
            }
            _ => events.push(ChangeEvent {
                topic: captured.topic.clone(),
                key: new_key,
                value: Some(self.envelope(captured, "u", before, Some(after), at)),
                headers: Vec::new(),
            }),
        }
    }

    /// A delete and the tombstone after it.
    pub fn deleted(
        &self,
        captured: &CapturedTable,
        before: &Row,
        at: &Position,
        events: &mut Vec<ChangeEvent>,
    ) {
        let key = self.key(captured, before);
        events.push(ChangeEvent {
            topic: captured.topic.clone(),
            key: key.clone(),
            value: Some(self.envelope(captured, "d", Some(before), None, at)),
            headers: Vec::new(),
        });
        events.push(ChangeEvent {
            topic: captured.topic.clone(),
            key,
            value: None,
            headers: Vec::new(),
        });
    }

    /// A TRUNCATE of one table (`op: t`, no key).
    pub fn truncated(&self, captured: &CapturedTable, at: &Position) -> ChangeEvent {
        ChangeEvent {
            topic: captured.topic.clone(),
            key: None,
            value: Some(self.envelope(captured, "t", None, None, at)),
            headers: Vec::new(),
        }
    }
}
