//! Shared test support: the pg-app fixtures, a PostgreSQL server holding the same data, and a
//! runner for the `eddy` binary.

pub mod compare;
pub mod connector;
pub mod eddy;
pub mod kafka;
pub mod postgres;
pub mod server;
pub mod workload;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pg-app");
/// The query most tests run: a grouped count and an exact decimal sum.
pub const COUNT_AND_SUM: &str = "SELECT status, COUNT(*), SUM(amount) FROM orders GROUP BY status";

pub const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pg-app/schema.prisma");

/// One capture per Debezium converter setting (see fixtures/pg-app).
pub const VARIANTS: &[&str] = &[
    "precise_schemas",
    "precise_noschemas",
    "string_schemas",
    "string_noschemas",
    "double_schemas",
    "double_noschemas",
    "timeconnect_schemas",
    "txmeta_noschemas",
];

/// The batch sizes every comparison runs with: one record per batch, and eddy's default.
pub const BATCH_SIZES: &[Option<usize>] = &[Some(1), None];

pub fn variant_path(variant: &str) -> PathBuf {
    Path::new(FIXTURES).join(format!("{variant}.jsonl"))
}

/// A name no other test (or test process) uses at the same time.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = std::env::temp_dir().join(unique_name("eddy-test"));
        std::fs::create_dir_all(&dir).expect("creating a temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// Writes `lines` (each without its newline) to a file in the directory.
    pub fn write_lines(&self, name: &str, lines: &[String]) -> PathBuf {
        let path = self.0.join(name);
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(&path, text).expect("writing a temp file");
        path
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("writing a temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One line of a capture file, with what the tests need to know about it.
#[derive(Debug, Clone)]
pub struct Event {
    /// The line as it is in the file.
    pub line: String,
    pub topic: String,
    /// The envelope's `op` (`r`, `c`, `u`, `d`, `t`); `None` for tombstones and transaction
    /// metadata.
    pub op: Option<String>,
}

impl Event {
    pub fn is(&self, table: &str, op: &str) -> bool {
        self.topic == format!("app.public.{table}") && self.op.as_deref() == Some(op)
    }
}

/// The lines of a capture file, parsed.
pub fn events(variant: &str) -> Vec<Event> {
    let path = variant_path(variant);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: bad line {line}: {e}", path.display()));
            let topic = record["topic"].as_str().expect("topic").to_string();
            let mut value = &record["value"];
            // With schemas enabled, the envelope is the message's payload.
            if value.get("schema").is_some() && value.get("payload").is_some() {
                value = &value["payload"];
            }
            let op = value.get("op").and_then(|o| o.as_str()).map(str::to_string);
            Event {
                line: line.to_string(),
                topic,
                op,
            }
        })
        .collect()
}

/// The index of the first event of `table` with `op`; panics when there is none.
pub fn first(events: &[Event], table: &str, op: &str) -> usize {
    events
        .iter()
        .position(|e| e.is(table, op))
        .unwrap_or_else(|| panic!("no {op:?} event for {table}"))
}

/// The first `n` events written to a file in `dir`.
pub fn prefix_file(dir: &TempDir, variant: &str, events: &[Event], n: usize) -> PathBuf {
    let lines: Vec<String> = events[..n].iter().map(|e| e.line.clone()).collect();
    dir.write_lines(&format!("{variant}-first-{n}.jsonl"), &lines)
}
