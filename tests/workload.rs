//! `eddy gen` and `eddy bench`: the benchmark changelog is deterministic, Eddy's answer over
//! it equals a plain replay of its rows (with the customers joined too), the customers leave
//! the orders' rows alone, it can be produced straight into a topic, and the bench's figures
//! describe the run they measured.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::TempDir;
use crate::support::eddy::{Eddy, text_rows};
use crate::support::kafka::Broker;

const SCHEMA: &str = "benches/orders.prisma";

fn eddy(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(args)
        .output()
        .expect("eddy runs");
    assert!(
        output.status.success(),
        "eddy {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Table → (events, rows alive at the end), from `eddy gen`'s summary on stderr.
fn summary(stderr: &str) -> BTreeMap<String, (u64, u64)> {
    let line = stderr
        .lines()
        .find(|l| l.contains(" rows alive at the end"))
        .unwrap_or_else(|| panic!("no summary in {stderr}"));
    let (_, tables) = line.split_once(" events: ").expect("a summary");
    tables
        .split(", ")
        .map(|part| {
            // "N of PREFIX.public.TABLE (M rows alive at the end)"
            let words: Vec<&str> = part.split([' ', '(']).collect();
            let table = words[2].rsplit('.').next().expect("a topic").to_string();
            (
                table,
                (words[0].parse().unwrap(), words[4].parse().unwrap()),
            )
        })
        .collect()
}

fn alive(stderr: &str) -> BTreeMap<String, u64> {
    summary(stderr)
        .into_iter()
        .map(|(table, (_, alive))| (table, alive))
        .collect()
}

fn generate(path: &Path, extra: &[&str]) -> Vec<u8> {
    let path = path.to_str().expect("a UTF-8 path");
    let mut args = vec!["gen", "--events", "3000", "--live-keys", "500"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--output", path]);
    eddy(&args);
    std::fs::read(path).expect("the generated file")
}

/// Country → (orders, total in cents) over the rows alive after replaying the envelopes.
fn replay(envelopes: &[u8]) -> BTreeMap<String, (i64, i64)> {
    let mut rows: BTreeMap<i64, (String, i64)> = BTreeMap::new();
    for line in String::from_utf8_lossy(envelopes).lines() {
        let event: serde_json::Value = serde_json::from_str(line).expect("JSON");
        let image = |side: &str| event[side]["id"].as_i64().expect("an id");
        match event["op"].as_str() {
            Some("d") => {
                rows.remove(&image("before"));
            }
            _ => {
                let after = &event["after"];
                let amount = after["amount"].as_str().expect("a decimal string");
                let cents = amount.replace('.', "").parse::<i64>().expect("cents");
                let country = after["country"].as_str().expect("a country").to_string();
                rows.insert(image("after"), (country, cents));
            }
        }
    }
    let mut groups = BTreeMap::new();
    for (country, cents) in rows.into_values() {
        let group: &mut (i64, i64) = groups.entry(country).or_default();
        group.0 += 1;
        group.1 += cents;
    }
    groups
}

#[test]
fn generated_changelog_is_deterministic_and_eddy_answers_like_a_replay() {
    let dir = TempDir::new();
    let options = ["--shape", "envelope", "--decimal", "string"];
    let first = generate(&dir.path().join("a.jsonl"), &options);
    assert_eq!(first, generate(&dir.path().join("b.jsonl"), &options));
    let reseeded = [&options[..], &["--seed", "2"]].concat();
    assert_ne!(first, generate(&dir.path().join("c.jsonl"), &reseeded));

    let folded = Eddy::new(
        "SELECT country, COUNT(*) AS n, SUM(amount) AS total FROM orders GROUP BY country",
        dir.path().join("a.jsonl"),
    )
    .schema(SCHEMA)
    .arg("--table")
    .arg("orders")
    .fold();
    let mut eddy: Vec<Vec<String>> = text_rows(&folded);
    eddy.sort();
    let expected: Vec<Vec<String>> = replay(&first)
        .into_iter()
        .map(|(country, (n, cents))| {
            vec![
                country,
                n.to_string(),
                format!("{}.{:02}", cents / 100, cents % 100),
            ]
        })
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(eddy, expected);
}

#[test]
fn generated_changelog_goes_straight_into_a_topic() {
    let broker = Broker::start();
    let dir = TempDir::new();
    let file = generate(&dir.path().join("kafka.jsonl"), &["--prefix", "genk"]);
    eddy(&[
        "gen",
        "--events",
        "3000",
        "--live-keys",
        "500",
        "--prefix",
        "genk",
        "--kafka",
        &broker.address,
    ]);
    let received = broker.read_all("genk.public.orders");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&file)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a Kafka record"))
        .collect();
    assert_eq!(received.len(), lines.len(), "one message per record line");
    for (message, line) in received.iter().zip(&lines) {
        let json = |text: &Option<String>| {
            text.as_deref().map_or(serde_json::Value::Null, |t| {
                serde_json::from_str(t).expect("JSON")
            })
        };
        assert_eq!(json(&message.key), line["key"]);
        assert_eq!(json(&message.value), line["value"]);
    }
}

#[test]
fn bench_reports_the_run_it_measured() {
    let dir = TempDir::new();
    let input = dir.path().join("bench.jsonl");
    let output = eddy(&[
        "bench",
        "--query",
        "q2",
        "--events",
        "3000",
        "--live-keys",
        "500",
        "--seed",
        "5",
        "--output",
        input.to_str().expect("a UTF-8 path"),
    ]);
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The generator says how many rows it left alive; the pipeline must hold exactly those.
    assert_eq!(result["live_keys"].as_u64(), Some(alive(&stderr)["orders"]));
    assert_eq!(result["query"], "q2");
    let deletes = result["events"].as_u64().unwrap() - 3000;
    assert!(deletes > 0, "tombstones follow deletes: {result}");
    assert!(result["events_per_cpu_second"].as_f64().unwrap() > 0.0);
    assert!(
        result["peak_rss_bytes"].as_u64().unwrap()
            >= result["baseline_rss_bytes"].as_u64().unwrap()
    );
    assert!(result["first_result_ms"].as_f64().is_some());
    assert!(stderr.contains("eddy bench q2 (2 threads): "), "{stderr}");
    assert_eq!(result["threads"], 2, "the default");
    // Q2 groups by status: at most five groups, each with its MIN/MAX/DISTINCT state.
    let groups = result["result_rows"].as_i64().unwrap();
    assert!((1..=5).contains(&groups), "{result}");
    assert!(result["state_bytes_per_group"].as_f64().unwrap() > 0.0);
}

/// The Kafka records of a generated file, as (table, value) with tombstones left out.
fn records(file: &[u8]) -> Vec<(String, serde_json::Value)> {
    String::from_utf8_lossy(file)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a Kafka record"))
        .filter(|r| !r["value"].is_null())
        .map(|r| {
            let topic = r["topic"].as_str().expect("a topic");
            let table = topic.rsplit('.').next().expect("a table");
            (table.to_string(), r["value"].clone())
        })
        .collect()
}

#[test]
fn customers_interleave_without_changing_the_orders_answer() {
    let dir = TempDir::new();
    let shop_path = dir.path().join("shop.jsonl");
    let options = ["--customers", "--users", "300", "--decimal", "string"];
    let shop = generate(&shop_path, &options);
    assert_eq!(shop, generate(&dir.path().join("again.jsonl"), &options));
    let tables: Vec<String> = records(&shop).into_iter().map(|(t, _)| t).collect();
    let customers = tables.iter().filter(|t| *t == "customers").count();
    assert!(
        (300..1500).contains(&customers),
        "{customers} customer events"
    );

    // The orders-only changelog with as many order events holds the same order rows.
    let orders = (tables.len() - customers).to_string();
    let path = dir.path().join("orders.jsonl");
    let path = path.to_str().expect("a UTF-8 path");
    eddy(&[
        "gen",
        "--events",
        &orders,
        "--live-keys",
        "500",
        "--users",
        "300",
        "--decimal",
        "string",
        "--output",
        path,
    ]);
    let sql = "SELECT country, COUNT(*) AS n, SUM(amount) AS total FROM orders GROUP BY country";
    let answer = |input: &Path| {
        let mut rows = text_rows(&Eddy::new(sql, input).schema(SCHEMA).fold());
        rows.sort();
        rows
    };
    assert_eq!(answer(&shop_path), answer(Path::new(path)));
}

#[test]
fn envelopes_of_two_tables_go_to_a_file_each() {
    let dir = TempDir::new();
    let options = ["--customers", "--users", "300"];
    let records = records(&generate(&dir.path().join("kafka.jsonl"), &options));
    let envelopes = dir.path().join("envelopes.jsonl");
    let orders = generate(
        &envelopes,
        &[&options[..], &["--shape", "envelope"]].concat(),
    );
    let customers = std::fs::read(dir.path().join("envelopes.jsonl.customers")).expect("a file");
    for (table, file) in [("orders", orders), ("customers", customers)] {
        let expected: Vec<&serde_json::Value> = records
            .iter()
            .filter(|(t, _)| t == table)
            .map(|(_, value)| value)
            .collect();
        let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&file)
            .lines()
            .map(|l| serde_json::from_str(l).expect("an envelope"))
            .collect();
        assert!(!lines.is_empty());
        assert_eq!(lines.iter().collect::<Vec<_>>(), expected, "{table}");
    }
}

/// Q4 by replaying both tables: country → (orders, total in cents).
fn joined(records: &[(String, serde_json::Value)]) -> Vec<Vec<String>> {
    let mut orders: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    let mut customers: BTreeMap<i64, String> = BTreeMap::new();
    for (table, event) in records {
        let id = |side: &str| event[side]["id"].as_i64().expect("an id");
        let after = &event["after"];
        match (table.as_str(), event["op"].as_str()) {
            ("orders", Some("d")) => {
                orders.remove(&id("before"));
            }
            ("customers", Some("d")) => {
                customers.remove(&id("before"));
            }
            ("orders", _) => {
                let amount = after["amount"].as_str().expect("a decimal string");
                let cents = amount.replace('.', "").parse::<i64>().expect("cents");
                let user = after["user_id"].as_i64().expect("a user");
                orders.insert(id("after"), (user, cents));
            }
            _ => {
                let country = after["country"].as_str().expect("a country");
                customers.insert(id("after"), country.to_string());
            }
        }
    }
    let mut groups: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (user, cents) in orders.into_values() {
        if let Some(country) = customers.get(&user) {
            let group = groups
                .entry(country.trim_matches('"').to_string())
                .or_default();
            group.0 += 1;
            group.1 += cents;
        }
    }
    groups
        .into_iter()
        .map(|(country, (n, cents))| {
            let total = format!("{}.{:02}", cents / 100, cents % 100);
            vec![country, n.to_string(), total]
        })
        .collect()
}

#[test]
fn q4_joins_like_a_replay_of_both_tables_and_its_bench_counts_both() {
    let dir = TempDir::new();
    let input = dir.path().join("shop.jsonl");
    let options = ["--customers", "--users", "300", "--decimal", "string"];
    let file = generate(&input, &options);
    let q4 = eddy_workload::query("q4").expect("q4").sql;
    let mut rows = text_rows(&Eddy::new(q4, &input).schema(SCHEMA).fold());
    rows.sort();
    let expected = joined(&records(&file));
    assert!(expected.len() > 5, "{expected:?}");
    assert_eq!(rows, expected);

    // Without --customers: q4 turns them on.
    let output = eddy(&[
        "bench",
        "--query",
        "q4",
        "--events",
        "3000",
        "--live-keys",
        "500",
        "--users",
        "300",
        "--decimal",
        "string",
        "--output",
        input.to_str().expect("a UTF-8 path"),
    ]);
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let alive = alive(&String::from_utf8_lossy(&output.stderr));
    assert!(alive["customers"] > 200, "{alive:?}");
    for (table, rows) in &alive {
        assert_eq!(
            result["live_keys_by_table"][table].as_u64(),
            Some(*rows),
            "{table}"
        );
    }
    assert_eq!(std::fs::read(&input).expect("the changelog"), file);
    assert!(result["operator_state_bytes"].as_u64().unwrap() > 0);
}
