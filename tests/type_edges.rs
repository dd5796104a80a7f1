//! The edges of types against a live PostgreSQL: dates and timestamps from 4713 BC to 294276
//! AD, `infinity`, SUM of bigints past 2^63, and `-0.0` beside `0.0`.
//!
//! The same rows are inserted into a private PostgreSQL and sent to `eddy run` as the
//! Debezium records its PostgreSQL connector writes for them (the encodings of
//! fixtures/pg-edges, a real capture); every query's answer must be PostgreSQL's. Where eddy
//! cannot compute a value (a function through 64-bit nanoseconds, arithmetic on `infinity`),
//! the record is refused naming the column, and PostgreSQL is asked about the other rows.

use std::path::Path;

use crate::support::TempDir;
use crate::support::eddy::{Eddy, text_rows};
use crate::support::postgres::PgServer;

const SCHEMA: &str = r#"
datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

model Edge {
  id   Int       @id
  big  BigInt?
  dbl  Float?
  d    DateTime? @db.Date
  t    DateTime? @db.Time(6)
  t3   DateTime? @db.Time(3)
  ts   DateTime? @db.Timestamp(6)
  ts3  DateTime? @db.Timestamp(3)
  tstz DateTime? @db.Timestamptz(6)

  @@map("edges")
}
"#;

const CREATE: &str = "CREATE TABLE edges (id int PRIMARY KEY, big bigint, dbl double precision, \
    d date, t time, t3 time(3), ts timestamp, ts3 timestamp(3), tstz timestamptz);";

/// Each row as PostgreSQL literals, and as the `after` image Debezium sends for it
/// (schemas off, adaptive time precision: days, µs, ms, ISO text for timestamptz).
const ROWS: &[(&str, &str)] = &[
    (
        "1, 9223372036854775807, 0.0, '0001-01-01', '00:00:00', '00:00:00', '0001-01-01', '0001-01-01', '0001-01-01 00:00:00+00'",
        r#"{"id": 1, "big": 9223372036854775807, "dbl": 0.0, "d": -719162, "t": 0, "t3": 0, "ts": -62135596800000000, "ts3": -62135596800000, "tstz": "0001-01-01T00:00:00.000000Z"}"#,
    ),
    (
        "2, 9223372036854775807, '-0', '1000-01-01', '24:00:00', '23:59:59.999', '1000-01-01 00:00:00.000001', '1000-01-01 00:00:00.001', '1000-01-01 00:00:00+00'",
        r#"{"id": 2, "big": 9223372036854775807, "dbl": -0.0, "d": -354285, "t": 86400000000, "t3": 86399999, "ts": -30610223999999999, "ts3": -30610223999999, "tstz": "1000-01-01T00:00:00.000000Z"}"#,
    ),
    (
        "3, 9223372036854775807, 1.5, '9999-12-31', '13:45:30.123456', '13:45:30.123', '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59.999', '9999-12-31 23:59:59.999999+00'",
        r#"{"id": 3, "big": 9223372036854775807, "dbl": 1.5, "d": 2932896, "t": 49530123456, "t3": 49530123, "ts": 253402300799999999, "ts3": 253402300799999, "tstz": "9999-12-31T23:59:59.999999Z"}"#,
    ),
    (
        "4, -9223372036854775808, '-0', '1677-09-21', NULL, NULL, '1677-09-21 00:12:43.145224', '1677-09-21 00:12:43.145', '1677-09-21 00:12:43.145224+00'",
        r#"{"id": 4, "big": -9223372036854775808, "dbl": -0.0, "d": -106752, "t": null, "t3": null, "ts": -9223372036854776, "ts3": -9223372036855, "tstz": "1677-09-21T00:12:43.145224Z"}"#,
    ),
    (
        "5, -1, 'NaN', '2262-04-12', NULL, NULL, '2262-04-11 23:47:16.854776', '2262-04-11 23:47:16.855', '2262-04-11 23:47:16.854776+00'",
        r#"{"id": 5, "big": -1, "dbl": "NaN", "d": 106752, "t": null, "t3": null, "ts": 9223372036854776, "ts3": 9223372036855, "tstz": "2262-04-11T23:47:16.854776Z"}"#,
    ),
    (
        "6, NULL, 0.0, 'infinity', NULL, NULL, 'infinity', 'infinity', 'infinity'",
        r#"{"id": 6, "big": null, "dbl": 0.0, "d": -2147472692, "t": null, "t3": null, "ts": 9223372036825200000, "ts3": 9223372036825200, "tstz": "infinity"}"#,
    ),
    (
        "7, NULL, NULL, '-infinity', NULL, NULL, '-infinity', '-infinity', '-infinity'",
        r#"{"id": 7, "big": null, "dbl": null, "d": -2147472691, "t": null, "t3": null, "ts": -9223372036832400000, "ts3": -9223372036832400, "tstz": "-infinity"}"#,
    ),
    (
        "8, NULL, NULL, '4713-11-24 BC', NULL, NULL, '4713-11-24 00:00:00 BC', '4713-11-24 00:00:00 BC', '4713-11-24 00:00:00+00 BC'",
        r#"{"id": 8, "big": null, "dbl": null, "d": -2440222, "t": null, "t3": null, "ts": -210835180800000000, "ts3": -210835180800000, "tstz": "-4712-11-24T00:00:00.000000Z"}"#,
    ),
    (
        "9, NULL, NULL, '5874897-12-31', NULL, NULL, NULL, '294276-12-31 23:59:59.999', '294246-12-31 23:59:59.999999+00'",
        r#"{"id": 9, "big": null, "dbl": null, "d": 2145042905, "t": null, "t3": null, "ts": null, "ts3": 9224318015999999, "tstz": "+294246-12-31T23:59:59.999999Z"}"#,
    ),
    (
        "10, 7, 2.25, '2023-06-15', '12:00:00', '12:00:00', '2023-06-15 12:30:00', '2023-06-15 12:30:00.5', '2023-06-15 12:30:00+00'",
        r#"{"id": 10, "big": 7, "dbl": 2.25, "d": 19523, "t": 43200000000, "t3": 43200000, "ts": 1686832200000000, "ts3": 1686832200500, "tstz": "2023-06-15T12:30:00.000000Z"}"#,
    ),
];

/// A query for both; where eddy refuses rows, PostgreSQL is asked only about the others
/// (`pg`), and that many refusals must name the column and say why it cannot be computed.
struct Case {
    sql: &'static str,
    pg: Option<&'static str>,
    refused: Option<(usize, &'static str)>,
}

const fn same(sql: &'static str) -> Case {
    Case {
        sql,
        pg: None,
        refused: None,
    }
}

const CASES: &[Case] = &[
    same("SELECT id, d, t, t3, ts, ts3, tstz FROM edges"),
    same(
        "SELECT MIN(d), MAX(d), MIN(ts), MAX(ts), MIN(ts3), MAX(ts3), MIN(tstz), MAX(tstz), \
         MIN(t), MAX(t3) FROM edges",
    ),
    same("SELECT MIN(ts), MAX(ts), MIN(tstz), MAX(tstz) FROM edges WHERE id <> 6 AND id <> 7"),
    same("SELECT d, COUNT(*) FROM edges GROUP BY d"),
    same("SELECT ts3, COUNT(*), MAX(tstz) FROM edges GROUP BY ts3"),
    same("SELECT tstz, COUNT(*) FROM edges WHERE tstz > '2000-01-01T00:00:00Z' GROUP BY tstz"),
    same("SELECT SUM(big), COUNT(big), MIN(big), MAX(big) FROM edges"),
    same("SELECT SUM(big) FROM edges WHERE id <= 3"),
    same("SELECT dbl, COUNT(*) FROM edges GROUP BY dbl"),
    same("SELECT COUNT(DISTINCT dbl), COUNT(dbl) FROM edges"),
    Case {
        sql: "SELECT date_trunc('day', ts), COUNT(*) FROM edges GROUP BY 1",
        pg: Some(
            "SELECT date_trunc('day', ts), COUNT(*) FROM edges WHERE ts IS NULL OR isfinite(ts) GROUP BY 1",
        ),
        refused: Some((2, "column `ts`")),
    },
    Case {
        sql: "SELECT date_trunc('month', ts3), COUNT(*) FROM edges GROUP BY 1",
        pg: Some(
            "SELECT date_trunc('month', ts3), COUNT(*) FROM edges \
             WHERE ts3 IS NULL OR ts3 BETWEEN '1677-09-22' AND '2262-04-11' GROUP BY 1",
        ),
        // Years 1, 1000, 9999, 4713 BC, 294276, both infinities, and the two values just
        // outside nanoseconds' range (1677-09-21 00:12:43.145 and 2262-04-11 23:47:16.855).
        refused: Some((9, "column `ts3`")),
    },
];

#[test]
fn temporal_edges_sums_and_signed_zeros_match_postgres() {
    let server = PgServer::start();
    let dir = TempDir::new();
    let sql = dir.path().join("edges.sql");
    let values: Vec<String> = ROWS.iter().map(|(pg, _)| format!("({pg})")).collect();
    std::fs::write(
        &sql,
        format!(
            "{CREATE}\nINSERT INTO edges VALUES {};\n",
            values.join(",\n")
        ),
    )
    .expect("writing edges.sql");
    server.psql_file("postgres", &sql);
    let schema = dir.path().join("schema.prisma");
    std::fs::write(&schema, SCHEMA).expect("writing the schema");
    let input = dir.path().join("edges.jsonl");
    let lines: Vec<String> = ROWS
        .iter()
        .enumerate()
        .map(|(i, (_, after))| {
            format!(
                r#"{{"topic": "app.public.edges", "key": {{"id": {}}}, "value": {{"before": null, "after": {after}, "op": "c"}}}}"#,
                i + 1
            )
        })
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").expect("writing edges.jsonl");

    let mut failures = Vec::new();
    for case in CASES {
        if let Err(e) = check(&server, &schema, &input, case) {
            failures.push(format!("{}: {e}", case.sql));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn check(server: &PgServer, schema: &Path, input: &Path, case: &Case) -> Result<(), String> {
    let eddy = Eddy::new(case.sql, input)
        .schema(schema)
        .arg("--on-error")
        .arg("skip");
    let run = eddy.run();
    run.assert_success(&eddy);
    if let Some((count, column)) = case.refused {
        let refusals = run
            .stderr
            .lines()
            .filter(|l| l.contains("skipped") && l.contains(column))
            .filter(|l| l.contains("is infinite") || l.contains("1677-09-21..2262-04-11"))
            .count();
        if refusals != count {
            return Err(format!(
                "expected {count} records refused for {column}, stderr:\n{}",
                run.stderr
            ));
        }
    }
    let folded = crate::support::eddy::fold(&run.stdout)?;
    let got = canonical(text_rows(&folded));
    let expected = canonical(server.rows("postgres", case.pg.unwrap_or(case.sql)));
    if got == expected {
        Ok(())
    } else {
        Err(format!("eddy {got:?}\n  PostgreSQL {expected:?}"))
    }
}

/// Rows as comparable text, sorted: PostgreSQL's temporal text as eddy's ISO-8601 (see
/// [`iso`]) and floats as numbers (`0`, `-0`, `0.0` are one value).
fn canonical(rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|row| {
            row.iter()
                .map(|cell| iso(cell).unwrap_or_else(|| float(cell)))
                .collect()
        })
        .collect();
    rows.sort();
    rows
}

fn float(cell: &str) -> String {
    let looks_float = cell.contains(['.', 'e', 'E']) || cell == "-0" || cell == "NaN";
    match cell.parse::<f64>() {
        Ok(v) if looks_float => format!("{}", v + 0.0),
        _ => cell.to_string(),
    }
}

/// PostgreSQL's text of a date, time or timestamp (DateStyle ISO: `4713-11-24 00:00:00+00
/// BC`) as eddy writes it (`-4712-11-24T00:00:00Z`: astronomical years, a sign past 9999, the
/// fraction in groups of three digits); eddy's own text and other values are `None`.
fn iso(cell: &str) -> Option<String> {
    let (body, bc) = match cell.strip_suffix(" BC") {
        Some(body) => (body, true),
        None => (cell, false),
    };
    if let Some(time) = clock(body) {
        return Some(time);
    }
    let (date, rest) = match body.split_once(' ') {
        Some((date, rest)) => (date, Some(rest)),
        None => (body, None),
    };
    let (year, month_day) = date.split_once('-')?;
    if year.len() < 4 || !year.bytes().all(|b| b.is_ascii_digit()) || month_day.len() != 5 {
        return None;
    }
    let year: i64 = year.parse().ok()?;
    let year = if bc { 1 - year } else { year };
    let year = match year {
        0..=9999 => format!("{year:04}"),
        10_000.. => format!("+{year}"),
        _ => format!("-{:04}", -year),
    };
    let Some(rest) = rest else {
        return Some(format!("{year}-{month_day}"));
    };
    let (time, utc) = match rest.strip_suffix("+00") {
        Some(time) => (time, "Z"),
        None => (rest, ""),
    };
    Some(format!("{year}-{month_day}T{}{utc}", clock(time)?))
}

/// `HH:MM:SS[.f…]` with the fraction padded to a multiple of three digits.
fn clock(text: &str) -> Option<String> {
    let (hms, fraction) = match text.split_once('.') {
        Some((hms, fraction)) => (hms, fraction),
        None => (text, ""),
    };
    let b = hms.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    if fraction.is_empty() {
        return Some(hms.to_string());
    }
    let width = fraction.len().div_ceil(3) * 3;
    Some(format!("{hms}.{fraction:0<width$}"))
}
