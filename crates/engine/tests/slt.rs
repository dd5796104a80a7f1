//! Runs the sqllogictest files under `sql/` against Eddy.
//!
//! The files speak a small dialect on top of SQL:
//! - `statement ok` + `schema` and a Prisma schema: starts over with these tables;
//! - `statement ok` + `events` and lines `<op> <table> <json>...`: one batch of Debezium
//!   events. `c`/`r`/`u <table> {after}` (an update with no `before`, as with REPLICA
//!   IDENTITY DEFAULT), `uf <table> {before} {after}` (REPLICA IDENTITY FULL), `d <table>
//!   {before}` (for DEFAULT identity, the key), `t <table>` (truncate), and `raw <table> <text>`
//!   (a record sent as is, e.g. malformed: it must be refused without harm);
//! - any other statement or query is a job's SQL.
//!
//! A query's rows are its result after all events so far, folded from Eddy's changes. Every
//! query runs four ways (one flush per batch, a snapshot and restore after each batch, one
//! flush for everything, one flush per event) and each must equal DataFusion's batch answer
//! over the tables the events leave, before it is compared with the file's expectation.

use std::path::PathBuf;

use datafusion::common::ScalarValue;
use eddy_engine::debezium::value::{self, Decoded};
use eddy_engine::schema::Catalog;
use eddy_engine::{JobSpec, Pipeline, Record};
use serde_json::{Value, json};
use sqllogictest::{DBOutput, DefaultColumnType};

use crate::common::{Folded, Model, display_row, sorted};

#[derive(Debug)]
struct Failure(String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure(s)
    }
}

struct SentRecord {
    topic: String,
    key: Option<String>,
    value: Option<String>,
}

#[derive(Default)]
struct EddyDb {
    schema: String,
    model: Option<Model>,
    batches: Vec<Vec<SentRecord>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    FlushPerBatch,
    RestoreEachBatch,
    SingleFlush,
    FlushPerEvent,
}

impl EddyDb {
    fn model(&mut self) -> Result<&mut Model, Failure> {
        self.model
            .as_mut()
            .ok_or_else(|| Failure("no schema yet".into()))
    }

    fn events(&mut self, text: &str) -> Result<u64, Failure> {
        let mut batch = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (op, rest) = line.split_once(' ').unwrap_or((line, ""));
            let (table, rest) = rest.trim().split_once(' ').unwrap_or((rest.trim(), ""));
            let topic = format!("app.public.{table}");
            if op == "raw" {
                batch.push(SentRecord {
                    topic,
                    key: None,
                    value: Some(rest.to_string()),
                });
                continue;
            }
            let images = parse_images(rest)?;
            let (before, after) = match (op, images.as_slice()) {
                ("c" | "r" | "u", [after]) => (Value::Null, after.clone()),
                ("uf", [before, after]) => (before.clone(), after.clone()),
                ("d", [before]) => (before.clone(), Value::Null),
                ("t", []) => (Value::Null, Value::Null),
                _ => return Err(Failure(format!("bad event line: {line}"))),
            };
            let op_code = if op == "uf" { "u" } else { op };
            self.apply_to_model(op, table, &before, &after)?;
            let key = self.kafka_key(table, if after.is_null() { &before } else { &after });
            let value = json!({"before": before, "after": after, "op": op_code});
            batch.push(SentRecord {
                topic,
                key,
                value: Some(value.to_string()),
            });
        }
        let n = batch.len() as u64;
        self.batches.push(batch);
        Ok(n)
    }

    fn kafka_key(&mut self, table: &str, image: &Value) -> Option<String> {
        let model = self.model.as_ref()?;
        let def = model.table(table);
        if def.primary_key.is_empty() || image.is_null() {
            return None;
        }
        let key: serde_json::Map<String, Value> = def
            .primary_key
            .iter()
            .map(|&i| {
                let name = def.columns[i].name.clone();
                let v = image.get(&name).cloned().unwrap_or(Value::Null);
                (name, v)
            })
            .collect();
        Some(Value::Object(key).to_string())
    }

    /// Applies an event with the database's semantics (never trusting a `before` image
    /// beyond its key, except on tables without one).
    fn apply_to_model(
        &mut self,
        op: &str,
        table: &str,
        before: &Value,
        after: &Value,
    ) -> Result<(), Failure> {
        let model = self.model()?;
        let def = model
            .catalog
            .table(table)
            .ok_or_else(|| Failure(format!("unknown table {table}")))?
            .clone();
        let keyed = !def.primary_key.is_empty();
        let stored = |model: &Model, image: &Value| -> Option<Vec<ScalarValue>> {
            model.tables[table]
                .iter()
                .find(|r| {
                    def.primary_key.iter().all(|&i| {
                        let column = &def.columns[i];
                        let json = image.get(&column.name).unwrap_or(&Value::Null);
                        let decoded =
                            value::decode(json, &column.data_type, None, &Default::default());
                        decoded == Ok(Decoded::Value(r[i].clone()))
                    })
                })
                .cloned()
        };
        match op {
            "t" => model.truncate(table),
            "d" if keyed => {
                let key = row(&def, before, None)?;
                let key: Vec<_> = def.primary_key.iter().map(|&i| key[i].clone()).collect();
                model.delete(table, &key);
            }
            "d" => model.remove_one(table, &row(&def, before, None)?),
            _ if keyed => {
                if op == "uf" {
                    let old = row(&def, before, None)?;
                    let key: Vec<_> = def.primary_key.iter().map(|&i| old[i].clone()).collect();
                    model.delete(table, &key);
                }
                let previous = stored(model, after);
                let new = row(&def, after, previous.as_deref())?;
                model.upsert(table, new);
            }
            "uf" => {
                model.remove_one(table, &row(&def, before, None)?);
                model.append(table, row(&def, after, None)?);
            }
            _ => model.append(table, row(&def, after, None)?),
        }
        Ok(())
    }

    fn query(&mut self, sql: &str) -> Result<Vec<Vec<String>>, Failure> {
        let model = self
            .model
            .as_ref()
            .ok_or_else(|| Failure("no schema yet".into()))?;
        let spec = JobSpec {
            schema: self.schema.clone(),
            sql: sql.to_string(),
            decode: Default::default(),
        };
        // Refusals must come from Eddy's planner, with its message.
        Pipeline::new(spec.clone()).map_err(|e| Failure(e.to_string()))?;
        let expected = sorted(
            model
                .batch_query(sql)
                .map_err(|e| Failure(format!("DataFusion batch: {e}")))?,
        );
        for mode in [
            Mode::FlushPerBatch,
            Mode::RestoreEachBatch,
            Mode::SingleFlush,
            Mode::FlushPerEvent,
        ] {
            let got = self.run_incremental(&spec, mode)?;
            if got != expected {
                return Err(Failure(format!(
                    "{mode:?}: incremental result {got:?} differs from batch result {expected:?}"
                )));
            }
        }
        Ok(expected)
    }

    fn run_incremental(&self, spec: &JobSpec, mode: Mode) -> Result<Vec<Vec<String>>, Failure> {
        let fail = |e: eddy_engine::Error| Failure(format!("{mode:?}: {e}"));
        let mut pipeline = Pipeline::new(spec.clone()).map_err(fail)?;
        let mut folded = Folded::default();
        let step = |pipeline: &mut Pipeline, folded: &mut Folded| -> Result<(), Failure> {
            pipeline.flush().map_err(fail)?;
            folded.apply(&pipeline.drain()).map_err(Failure)
        };
        for batch in &self.batches {
            for record in batch {
                // A refused record must leave everything else intact; the result shows it.
                let _ = pipeline.push(Record {
                    topic: &record.topic,
                    key: record.key.as_deref().map(str::as_bytes),
                    value: record.value.as_deref().map(str::as_bytes),
                });
                if mode == Mode::FlushPerEvent {
                    step(&mut pipeline, &mut folded)?;
                }
            }
            match mode {
                Mode::FlushPerBatch => step(&mut pipeline, &mut folded)?,
                Mode::RestoreEachBatch => {
                    step(&mut pipeline, &mut folded)?;
                    let bytes = pipeline.snapshot().map_err(fail)?;
                    pipeline = Pipeline::restore(&bytes).map_err(fail)?;
                }
                Mode::SingleFlush | Mode::FlushPerEvent => {}
            }
        }
        step(&mut pipeline, &mut folded)?;
        Ok(folded.rows())
    }
}

/// The JSON images of an event line: zero, one or two objects.
fn parse_images(text: &str) -> Result<Vec<Value>, Failure> {
    let mut out = Vec::new();
    let stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    for value in stream {
        out.push(value.map_err(|e| Failure(format!("bad JSON in event: {e}")))?);
    }
    Ok(out)
}

/// A full table row from a JSON image; missing columns are NULL, and an unavailable (TOAST)
/// value takes the stored row's.
fn row(
    def: &eddy_engine::schema::TableDef,
    image: &Value,
    stored: Option<&[ScalarValue]>,
) -> Result<Vec<ScalarValue>, Failure> {
    def.columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let json = image.get(&column.name).unwrap_or(&Value::Null);
            match value::decode(json, &column.data_type, None, &Default::default())? {
                Decoded::Value(v) => Ok(v),
                Decoded::Unavailable => stored
                    .map(|s| s[i].clone())
                    .ok_or_else(|| Failure("TOAST placeholder with no stored row".into())),
            }
        })
        .collect()
}

impl sqllogictest::DB for EddyDb {
    type Error = Failure;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Failure> {
        let text = sql.trim();
        if let Some(schema) = text.strip_prefix("schema") {
            let catalog = Catalog::from_prisma(schema).map_err(|e| Failure(e.to_string()))?;
            self.schema = schema.to_string();
            self.model = Some(Model::new(catalog));
            self.batches.clear();
            return Ok(DBOutput::StatementComplete(0));
        }
        if let Some(events) = text.strip_prefix("events") {
            return Ok(DBOutput::StatementComplete(self.events(events)?));
        }
        let rows = self.query(text)?;
        let width = rows.first().map_or(0, Vec::len);
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; width],
            rows,
        })
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("sql/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    files
}

#[test]
fn sql_logic_tests() {
    let files = slt_files();
    assert!(!files.is_empty(), "no .slt files under sql/");
    let mut failures = Vec::new();
    for file in &files {
        let mut runner = sqllogictest::Runner::new(|| async { Ok(EddyDb::default()) });
        if let Err(e) = runner.run_file(file) {
            failures.push(format!("{}: {}", file.display(), e.display(false)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn display_row_spells_null_and_scale() {
    let row = [
        ScalarValue::Int64(None),
        ScalarValue::Decimal128(Some(2550), 12, 2),
    ];
    assert_eq!(display_row(&row), vec!["NULL", "25.50"]);
}
