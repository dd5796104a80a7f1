//! Acceptance over the real Debezium MySQL-connector captures of fixtures/mysql-app: every
//! variant goes through `eddy run`, and the result must be what MariaDB itself answered on the
//! database the capture came from (fixtures/mysql-app/mariadb.json, recorded by answers.py).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::support::TempDir;
use crate::support::compare::{Variant, compare_value, table_mismatches};
use crate::support::eddy::{Eddy, Folded};
use crate::support::postgres::{Column, Kind, Table};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/mysql-app");

/// A capture and the `eddy run` flags its connector settings call for.
struct Capture {
    name: &'static str,
    args: &'static [&'static str],
    /// Captured with `bigint.unsigned.handling.mode=long` (the shared files): BIGINT UNSIGNED
    /// values above 2^63 - 1 arrive as their bits in a negative int64, read back exactly. They
    /// hold no `edges` table.
    long_bigints: bool,
}

const CAPTURES: &[Capture] = &[
    Capture {
        name: "noschemas",
        args: &[],
        long_bigints: true,
    },
    Capture {
        name: "schemas",
        args: &[],
        long_bigints: true,
    },
    Capture {
        name: "precise_noschemas",
        args: &[],
        long_bigints: false,
    },
    Capture {
        name: "precise_schemas",
        args: &[],
        long_bigints: false,
    },
    Capture {
        name: "hex_noschemas",
        args: &["--binary-handling", "hex"],
        long_bigints: false,
    },
];

fn path(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

fn eddy(sql: &str, input: &Path, capture: &Capture) -> Eddy {
    let mut eddy = Eddy::new(sql, input).schema(path("schema.prisma"));
    for arg in capture.args {
        eddy = eddy.arg(arg);
    }
    eddy
}

#[derive(Deserialize)]
struct Answers {
    before_truncate: State,
    #[serde(rename = "final")]
    end: State,
}

#[derive(Deserialize)]
struct State {
    tables: std::collections::HashMap<String, RecordedTable>,
    queries: Vec<Query>,
}

#[derive(Deserialize)]
struct RecordedTable {
    columns: Vec<RecordedColumn>,
    primary_key: Vec<String>,
    rows: Vec<Map<String, Value>>,
}

#[derive(Deserialize)]
struct RecordedColumn {
    name: String,
    kind: String,
}

#[derive(Deserialize)]
struct Query {
    sql: String,
    kinds: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

fn answers() -> Answers {
    let text = std::fs::read_to_string(path("mariadb.json")).expect("reading mariadb.json");
    serde_json::from_str(&text).expect("mariadb.json")
}

fn kind(name: &str) -> Kind {
    match name {
        "Int" => Kind::Int,
        "Real" => Kind::Real,
        "Double" => Kind::Double,
        "Numeric" => Kind::Numeric,
        "Bool" => Kind::Bool,
        "Text" => Kind::Text,
        "Enum" => Kind::Enum,
        "Json" => Kind::Json,
        "Date" => Kind::Date,
        "Duration" => Kind::Duration,
        "Timestamp" => Kind::Timestamp,
        "TimestampTz" => Kind::TimestampTz,
        "Bytea" => Kind::Bytea,
        other => panic!("mariadb.json names an unknown kind {other}"),
    }
}

fn column(name: &str, kind_name: &str) -> Column {
    Column {
        name: name.to_string(),
        pg_type: format!("MariaDB {kind_name}"),
        kind: kind(kind_name),
    }
}

impl RecordedTable {
    /// The recorded rows as the comparison takes them.
    fn table(&self) -> Table {
        Table {
            columns: self
                .columns
                .iter()
                .map(|c| column(&c.name, &c.kind))
                .collect(),
            primary_key: self.primary_key.clone(),
            rows: self.rows.clone(),
        }
    }
}

/// The capture's records before its TRUNCATE (the items table's last interesting state).
fn before_truncate(dir: &TempDir, capture: &Capture) -> PathBuf {
    let text = std::fs::read_to_string(path(&format!("{}.jsonl", capture.name)))
        .expect("reading a capture");
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let truncate = lines
        .iter()
        .position(|l| l.contains(r#""op": "t""#))
        .expect("the capture has a TRUNCATE");
    dir.write_lines(
        &format!("{}-before-truncate.jsonl", capture.name),
        &lines[..truncate],
    )
}

fn full(capture: &Capture) -> PathBuf {
    path(&format!("{}.jsonl", capture.name))
}

/// `SELECT <columns> FROM table` must fold, with `--on-error fail`, to MariaDB's rows.
fn assert_table(input: &Path, capture: &Capture, table: &str, recorded: &RecordedTable) {
    let sql = format!("SELECT * FROM {table}");
    for batch in [Some(1), None] {
        let run = eddy(&sql, input, capture)
            .arg("--on-error")
            .arg("fail")
            .batch_size(batch);
        let folded = run.fold();
        let problems = table_mismatches(capture.name, table, &folded, &recorded.table(), &[]);
        assert!(
            problems.is_empty(),
            "{}:\n{}",
            run.describe(),
            problems.join("\n")
        );
    }
}

/// Every capture decodes with no refused event, column by column equal to MariaDB's table,
/// before the TRUNCATE and at the end.
#[test]
fn every_capture_decodes_to_mariadbs_tables() {
    let answers = answers();
    let dir = TempDir::new();
    let items_before = &answers.before_truncate.tables["items"];
    assert_eq!(
        items_before.rows.len(),
        5,
        "the state before TRUNCATE has rows"
    );
    for capture in CAPTURES {
        assert_table(
            &before_truncate(&dir, capture),
            capture,
            "items",
            items_before,
        );
        assert_table(
            &full(capture),
            capture,
            "items",
            &answers.end.tables["items"],
        );
        if !capture.long_bigints {
            assert_table(
                &full(capture),
                capture,
                "edges",
                &answers.end.tables["edges"],
            );
        }
    }
}

/// The folded result of a query as rows of JSON texts, in the query's column order.
fn rows_of(folded: &Folded) -> Vec<Vec<String>> {
    folded
        .values()
        .map(|fields| fields.0.iter().map(|(_, v)| v.get().to_string()).collect())
        .collect()
}

fn assert_query(input: &Path, capture: &Capture, query: &Query) {
    let run = eddy(&query.sql, input, capture)
        .arg("--on-error")
        .arg("fail");
    let got = rows_of(&run.fold());
    let variant = Variant { name: capture.name };
    let columns: Vec<Column> = query
        .kinds
        .iter()
        .enumerate()
        .map(|(i, k)| column(&format!("#{i}"), k))
        .collect();
    let matches = |eddy_row: &Vec<String>, maria_row: &Vec<Option<String>>| {
        eddy_row.len() == maria_row.len()
            && columns
                .iter()
                .zip(eddy_row)
                .zip(maria_row)
                .all(|((c, e), m)| compare_value(variant, c, e, m.as_deref()).is_ok())
    };
    let unmatched: Vec<&Vec<Option<String>>> = query
        .rows
        .iter()
        .filter(|m| !got.iter().any(|e| matches(e, m)))
        .collect();
    assert!(
        unmatched.is_empty() && got.len() == query.rows.len(),
        "{}:\n  eddy:   {got:?}\n  MariaDB: {:?}\n  MariaDB rows eddy lacks: {unmatched:?}",
        run.describe(),
        query.rows
    );
}

/// Aggregates over every column type (MIN/MAX of each temporal type at MySQL's extremes,
/// exact sums of unsigned integers, GROUP BY YEAR) equal MariaDB's own answers.
#[test]
fn aggregates_over_every_type_equal_mariadbs() {
    let answers = answers();
    let dir = TempDir::new();
    for capture in CAPTURES.iter().filter(|c| !c.long_bigints) {
        for query in &answers.before_truncate.queries {
            assert_query(&before_truncate(&dir, capture), capture, query);
        }
        for query in &answers.end.queries {
            assert_query(&full(capture), capture, query);
        }
    }
}

/// `time.precision.mode=connect` sends NULL for a TIME outside 00:00..24:00 (838:59:59 and
/// -00:00:01.5 arrive as null in connect_schemas): a TIME column under it is refused, while
/// the table's other columns still decode.
#[test]
fn time_under_connect_precision_is_refused() {
    let capture = Capture {
        name: "connect_schemas",
        args: &[],
        long_bigints: false,
    };
    let run = eddy("SELECT id, t FROM edges", &full(&capture), &capture)
        .arg("--on-error")
        .arg("skip");
    let output = run.run();
    let refusals = output.stderr.matches("time.precision.mode=connect").count();
    // Every edges event but the tombstone carries the column's schema.
    assert_eq!(refusals, 8, "{}:\n{}", run.describe(), output.stderr);
    let others = eddy(
        "SELECT id, u64, bits, y FROM edges",
        &full(&capture),
        &capture,
    )
    .arg("--on-error")
    .arg("fail");
    assert_eq!(others.fold().len(), 5);
    let schemaless = eddy("SELECT id, t FROM edges", &full(&capture), &capture)
        .arg("--time-precision")
        .arg("connect");
    let refused = schemaless.run();
    refused.assert_failure(&schemaless);
    assert!(
        refused
            .stderr
            .contains("column `t` of `edges` is MySQL's TIME"),
        "{}",
        refused.stderr
    );
}

/// The schema-change topic (`shop`), which every capture starts with, is ignored.
#[test]
fn schema_change_topic_is_ignored() {
    for capture in CAPTURES {
        let run = eddy("SELECT COUNT(*) FROM marker", &full(capture), capture)
            .arg("--on-error")
            .arg("fail");
        let output = run.run();
        output.assert_success(&run);
        assert!(
            output.stderr.contains("0 skipped"),
            "{}: {}",
            run.describe(),
            output.stderr
        );
        let schema_changes = std::fs::read_to_string(full(capture))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with(r#"{"topic": "shop", "#))
            .count();
        assert!(schema_changes >= 8, "{}", capture.name);
    }
}
