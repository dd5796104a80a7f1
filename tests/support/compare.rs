//! Compares eddy's rows with PostgreSQL's, value by value, per column type.
//!
//! eddy prints decimals as JSON numbers at the column's scale, timestamps as ISO-8601 (`…Z` with
//! a time zone), bytes as base64, json/jsonb as a string holding the document, arrays as JSON
//! arrays. PostgreSQL's side is each value's text (see `postgres::text_expression`). Both are
//! brought to the same meaning before comparing: instants for timestamps, bytes for bytea,
//! parsed documents for json, exact decimal text for numeric.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde_json::{Map, Value};

use super::eddy::{Fields, Folded, plain_text};
use super::postgres::{Column, Kind, Table};

/// Columns of the capture database that schema.prisma does not describe, so eddy has no
/// such column: Prisma has no interval type (`prisma db pull` would print
/// `Unsupported("interval")`, which a Prisma schema cannot query either).
pub const NOT_IN_PRISMA: &[(&str, &str)] = &[("all_types", "c_interval")];

/// How the capture's converter settings change what can be compared exactly.
#[derive(Debug, Clone, Copy)]
pub struct Variant<'a> {
    pub name: &'a str,
}

impl Variant<'_> {
    /// `decimal.handling.mode=double`: decimals travelled as doubles, so they are compared as
    /// numbers with a relative tolerance of 1e-9 (an unconstrained numeric may lose digits).
    fn decimals_as_doubles(&self) -> bool {
        self.name.starts_with("double_")
    }

    /// `time.precision.mode=connect`: times and timestamps travelled in milliseconds, so
    /// PostgreSQL's microseconds are cut to milliseconds (Debezium floors them).
    fn millisecond_times(&self) -> bool {
        self.name.starts_with("timeconnect_")
    }
}

/// Differences between eddy's folded `SELECT * FROM table` and PostgreSQL's rows; empty when
/// they agree. `ignore` lists columns left out of the comparison (each caller says why).
pub fn table_mismatches(
    variant: &str,
    table: &str,
    eddy: &Folded,
    pg: &Table,
    ignore: &[&str],
) -> Vec<String> {
    let variant = Variant { name: variant };
    let mut problems = Vec::new();
    let here = |what: String| format!("{} {table}: {what}", variant.name);
    assert!(
        !pg.primary_key.is_empty(),
        "{table} has no primary key: compare it with queries"
    );

    let pg_key = |row: &Map<String, Value>| -> String {
        pg.primary_key
            .iter()
            .map(|k| format!("{k}={}", pg_text(row, k).unwrap_or("NULL")))
            .collect::<Vec<_>>()
            .join(",")
    };
    let pg_rows: std::collections::BTreeMap<String, &Map<String, Value>> =
        pg.rows.iter().map(|r| (pg_key(r), r)).collect();

    let mut eddy_rows = std::collections::BTreeMap::new();
    for (key, row) in eddy {
        let key_fields: Fields = match serde_json::from_str(key) {
            Ok(k) => k,
            Err(e) => {
                problems.push(here(format!("key {key} is not an object: {e}")));
                continue;
            }
        };
        if key_fields.names() != pg.primary_key {
            problems.push(here(format!(
                "key {key} should have exactly the primary key {:?}",
                pg.primary_key
            )));
        }
        let k = key_fields
            .0
            .iter()
            .map(|(n, v)| format!("{n}={}", plain_text(v.get())))
            .collect::<Vec<_>>()
            .join(",");
        eddy_rows.insert(k, row);
    }

    for k in pg_rows.keys().filter(|k| !eddy_rows.contains_key(*k)) {
        problems.push(here(format!(
            "row {k} is in PostgreSQL but not in eddy's result"
        )));
    }
    for k in eddy_rows.keys().filter(|k| !pg_rows.contains_key(*k)) {
        problems.push(here(format!(
            "row {k} is in eddy's result ({}) but not in PostgreSQL",
            eddy_rows[k]
        )));
    }

    let expected_columns: Vec<&str> = pg
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .filter(|c| !NOT_IN_PRISMA.contains(&(table, *c)) && !ignore.contains(c))
        .collect();
    for (k, pg_row) in &pg_rows {
        let Some(eddy_row) = eddy_rows.get(k) else {
            continue;
        };
        let eddy_columns: Vec<&str> = eddy_row
            .names()
            .into_iter()
            .filter(|c| !ignore.contains(c))
            .collect();
        if eddy_columns != expected_columns {
            problems.push(here(format!(
                "row {k}: eddy's columns {eddy_columns:?} differ from the table's {expected_columns:?}"
            )));
        }
        for column in &pg.columns {
            if NOT_IN_PRISMA.contains(&(table, column.name.as_str()))
                || ignore.contains(&column.name.as_str())
            {
                continue;
            }
            let Some(eddy_value) = eddy_row.get(&column.name) else {
                continue; // reported with the column lists above
            };
            let pg_value = pg_text(pg_row, &column.name);
            if let Err(why) = compare_value(variant, column, eddy_value, pg_value) {
                problems.push(here(format!(
                    "row {k} column {} ({}): eddy {eddy_value} vs PostgreSQL {}: {why}",
                    column.name,
                    column.pg_type,
                    pg_value.map_or("NULL".to_string(), |v| format!("{v:?}"))
                )));
            }
        }
    }
    problems
}

fn pg_text<'a>(row: &'a Map<String, Value>, column: &str) -> Option<&'a str> {
    match row.get(column) {
        Some(Value::String(s)) => Some(s),
        Some(Value::Null) => None,
        other => panic!("PostgreSQL row has {other:?} for {column}; expected text or null"),
    }
}

/// Whether eddy's value (its JSON text) means PostgreSQL's value (its text, `None` = NULL).
pub fn compare_value(
    variant: Variant<'_>,
    column: &Column,
    eddy: &str,
    pg: Option<&str>,
) -> Result<(), String> {
    let eddy_json: Value =
        serde_json::from_str(eddy).map_err(|e| format!("eddy's value is not JSON: {e}"))?;
    let pg = match (eddy_json.is_null(), pg) {
        (true, None) => return Ok(()),
        (true, Some(_)) => return Err("eddy has NULL".into()),
        (false, None) => return Err("PostgreSQL has NULL".into()),
        (false, Some(pg)) => pg,
    };
    let eddy_string = || -> Result<&str, String> {
        eddy_json
            .as_str()
            .ok_or_else(|| "eddy should print this type as a JSON string".to_string())
    };
    let same = |equal: bool| {
        if equal {
            Ok(())
        } else {
            Err("values differ".to_string())
        }
    };
    match column.kind {
        Kind::Int => same(eddy == pg),
        Kind::Real => {
            // real is a float4: eddy may print it widened to a double; it must be the same
            // float4.
            let e = number(eddy)? as f32;
            let p: f32 = pg
                .parse()
                .map_err(|e| format!("PostgreSQL real {pg}: {e}"))?;
            same(e == p || (e.is_nan() && p.is_nan()))
        }
        Kind::Double => {
            let e = number(eddy)?;
            let p: f64 = pg
                .parse()
                .map_err(|e| format!("PostgreSQL double {pg}: {e}"))?;
            same(e == p || (e.is_nan() && p.is_nan()))
        }
        Kind::Numeric | Kind::NumericVar if variant.decimals_as_doubles() => {
            let e = number(eddy)?;
            let p: f64 = pg
                .parse()
                .map_err(|e| format!("PostgreSQL numeric {pg}: {e}"))?;
            let tolerance = 1e-9 * e.abs().max(p.abs());
            if (e - p).abs() <= tolerance {
                Ok(())
            } else {
                Err(format!("differ by more than 1e-9 relative ({e} vs {p})"))
            }
        }
        // numeric(p,s): eddy prints the column's scale, as PostgreSQL does: same text.
        Kind::Numeric => same(eddy == pg),
        // Unconstrained numeric: PostgreSQL keeps each value's own scale (`100`, `3.14…846`),
        // while eddy holds the column at Prisma's default `Decimal` type, decimal(65,30), and
        // prints every value at scale 30. The value must be exactly the same number.
        Kind::NumericVar => {
            if !eddy.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
                return Err("eddy should print a decimal as a JSON number".into());
            }
            same(exact_decimal(eddy) == exact_decimal(pg))
        }
        Kind::Bool => same(eddy == pg),
        Kind::Text | Kind::Char | Kind::Enum | Kind::Uuid => same(eddy_string()? == pg),
        Kind::Date => {
            let e = NaiveDate::parse_from_str(eddy_string()?, "%Y-%m-%d")
                .map_err(|e| format!("eddy date: {e}"))?;
            let p = NaiveDate::parse_from_str(pg, "%Y-%m-%d")
                .map_err(|e| format!("PostgreSQL date: {e}"))?;
            same(e == p)
        }
        Kind::Time => {
            let e = NaiveTime::parse_from_str(eddy_string()?, "%H:%M:%S%.f")
                .map_err(|e| format!("eddy time: {e}"))?;
            let mut p = NaiveTime::parse_from_str(pg, "%H:%M:%S%.f")
                .map_err(|e| format!("PostgreSQL time: {e}"))?;
            if variant.millisecond_times() {
                p = p
                    .with_nanosecond(p.nanosecond() / 1_000_000 * 1_000_000)
                    .unwrap();
            }
            same(e == p)
        }
        Kind::Timestamp => {
            let e = NaiveDateTime::parse_from_str(eddy_string()?, "%Y-%m-%dT%H:%M:%S%.f")
                .map_err(|e| format!("eddy timestamp (ISO, no zone): {e}"))?;
            let mut p = NaiveDateTime::parse_from_str(pg, "%Y-%m-%d %H:%M:%S%.f")
                .map_err(|e| format!("PostgreSQL timestamp: {e}"))?;
            if variant.millisecond_times() {
                p = p
                    .with_nanosecond(p.nanosecond() / 1_000_000 * 1_000_000)
                    .unwrap();
            }
            same(e == p)
        }
        Kind::TimestampTz => {
            let text = eddy_string()?;
            if !text.ends_with('Z') {
                return Err("eddy should print timestamptz in UTC with a Z".into());
            }
            let e =
                DateTime::parse_from_rfc3339(text).map_err(|e| format!("eddy timestamptz: {e}"))?;
            let p = DateTime::parse_from_str(pg, "%Y-%m-%d %H:%M:%S%.f%#z")
                .map_err(|e| format!("PostgreSQL timestamptz: {e}"))?;
            same(e.to_utc() == p.to_utc())
        }
        Kind::Bytea => {
            let e = BASE64
                .decode(eddy_string()?)
                .map_err(|e| format!("eddy bytea is not base64: {e}"))?;
            let p = pg
                .strip_prefix("\\x")
                .and_then(unhex)
                .ok_or("PostgreSQL bytea is not \\x hex")?;
            same(e == p)
        }
        Kind::Json => {
            let e: Value = serde_json::from_str(eddy_string()?)
                .map_err(|e| format!("eddy's json string is not a JSON document: {e}"))?;
            let p: Value = serde_json::from_str(pg).map_err(|e| format!("PostgreSQL json: {e}"))?;
            same(e == p)
        }
        Kind::Array => {
            if !eddy_json.is_array() {
                return Err("eddy should print an array as a JSON array".into());
            }
            let p: Value =
                serde_json::from_str(pg).map_err(|e| format!("PostgreSQL array: {e}"))?;
            same(eddy_json == p)
        }
        Kind::Interval => Err("intervals are not compared (see NOT_IN_PRISMA)".into()),
        Kind::Duration => same(microseconds(eddy_string()?)? == microseconds(pg)?),
    }
}

/// A duration written `[-]H:MM:SS[.f]`, hours unbounded, in microseconds.
fn microseconds(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a duration [-]H:MM:SS[.f]");
    let (sign, rest) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text),
    };
    let (clock, fraction) = rest.split_once('.').unwrap_or((rest, ""));
    let parts: Vec<i64> = clock
        .split(':')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [h, m, s] = parts[..] else {
        return Err(bad());
    };
    let micros: i64 = format!("{fraction:0<6}")
        .get(..6)
        .and_then(|f| f.parse().ok())
        .ok_or_else(bad)?;
    Ok(sign * (((h * 60 + m) * 60 + s) * 1_000_000 + micros))
}

fn number(json: &str) -> Result<f64, String> {
    json.parse::<f64>()
        .map_err(|e| format!("eddy should print a JSON number, found {json}: {e}"))
}

/// A decimal's text without insignificant zeros: `100.000` and `100` are both `100`.
fn exact_decimal(text: &str) -> String {
    let text = text.trim();
    match text.split_once('.') {
        Some((int, frac)) => {
            let frac = frac.trim_end_matches('0');
            let int = if int.is_empty() || int == "-" {
                format!("{int}0")
            } else {
                int.to_string()
            };
            let s = if frac.is_empty() {
                int
            } else {
                format!("{int}.{frac}")
            };
            if s == "-0" { "0".into() } else { s }
        }
        None => text.to_string(),
    }
}

fn unhex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}
