//! `eddy gen` and `eddy bench`: the benchmark changelog is deterministic, Eddy's answer over
//! it equals a plain replay of its rows, it can be produced straight into a topic, and the
//! bench's figures describe the run they measured.

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
    let alive = stderr
        .split(" rows alive")
        .next()
        .and_then(|s| s.rsplit(", ").next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no live row count in {stderr}"));
    assert_eq!(result["live_keys"].as_u64(), Some(alive));
    assert_eq!(result["query"], "q2");
    let deletes = result["events"].as_u64().unwrap() - 3000;
    assert!(deletes > 0, "tombstones follow deletes: {result}");
    assert!(result["events_per_cpu_second"].as_f64().unwrap() > 0.0);
    assert!(
        result["peak_rss_bytes"].as_u64().unwrap()
            >= result["baseline_rss_bytes"].as_u64().unwrap()
    );
    assert!(result["first_result_ms"].as_f64().is_some());
    assert!(stderr.contains("eddy bench q2: "), "{stderr}");
    // Q2 groups by status: at most five groups, each with its MIN/MAX/DISTINCT state.
    let groups = result["result_rows"].as_i64().unwrap();
    assert!((1..=5).contains(&groups), "{result}");
    assert!(result["state_bytes_per_group"].as_f64().unwrap() > 0.0);
}
