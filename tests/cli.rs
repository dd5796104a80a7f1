//! `eddy run` error handling: bad input lines, bad schemas, bad or unsupported queries.
//! Every run here also asserts eddy did not panic (see `support::eddy::Run`).

use crate::support::compare::table_mismatches;
use crate::support::eddy::{Eddy, text_rows};
use crate::support::postgres::pg_app;
use crate::support::{COUNT_AND_SUM, TempDir, events, variant_path};

const VARIANT: &str = "precise_noschemas";

/// precise_noschemas with two bad lines in the middle: `{not json`, then a real users update
/// whose op is changed to "x" (and whose country to 'XX', so applying it would show). Returns
/// the file and the two bad lines' 1-based numbers.
fn input_with_bad_lines(dir: &TempDir) -> (std::path::PathBuf, usize, usize) {
    let events = events(VARIANT);
    let half = events.len() / 2;
    let update = events
        .iter()
        .find(|e| e.is("users", "u"))
        .expect("a users update");
    let mut bad_op: serde_json::Value = serde_json::from_str(&update.line).unwrap();
    bad_op["value"]["op"] = "x".into();
    bad_op["value"]["after"]["country"] = "XX".into();
    let mut lines: Vec<String> = events[..half].iter().map(|e| e.line.clone()).collect();
    lines.push("{not json".to_string());
    lines.push(bad_op.to_string());
    lines.extend(events[half..].iter().map(|e| e.line.clone()));
    let path = dir.write_lines("bad-lines.jsonl", &lines);
    (path, half + 1, half + 2)
}

#[test]
fn malformed_line_fails_run_and_names_line() {
    let dir = TempDir::new();
    let (input, not_json, _) = input_with_bad_lines(&dir);
    for batch in [None, Some(1)] {
        let eddy = Eddy::new("SELECT COUNT(*) FROM users", &input)
            .arg("--on-error")
            .arg("fail")
            .batch_size(batch);
        let run = eddy.run();
        run.assert_failure(&eddy);
        assert!(
            run.stderr.contains(&format!("line {not_json}")),
            "stderr should name line {not_json}:\n{}",
            run.stderr
        );
    }
}

#[test]
fn unknown_op_fails_run_and_names_line() {
    let dir = TempDir::new();
    let (input, not_json, bad_op) = input_with_bad_lines(&dir);
    // Only the unknown-op line: drop the `{not json` one (every line after it moves up one).
    let text = std::fs::read_to_string(&input).unwrap();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| i + 1 != not_json)
        .map(|(_, l)| l.to_string())
        .collect();
    let input = dir.write_lines("bad-op.jsonl", &lines);
    let bad_op = bad_op - 1;
    // The default batch size finds the bad event when the batch is applied, not when the line
    // is read: the error must still name the right line.
    for batch in [None, Some(1), Some(7)] {
        let eddy = Eddy::new("SELECT COUNT(*) FROM users", &input).batch_size(batch);
        let run = eddy.run();
        run.assert_failure(&eddy);
        assert!(
            run.stderr.contains(&format!("line {bad_op}")) && run.stderr.contains("op"),
            "stderr should name line {bad_op} and the op:\n{}",
            run.stderr
        );
    }
}

#[test]
fn malformed_lines_skipped_and_reported_nothing_else_lost() {
    let dir = TempDir::new();
    let (input, not_json, bad_op) = input_with_bad_lines(&dir);
    let pg = pg_app();
    for batch in [None, Some(1), Some(5)] {
        let skip = |sql: &str| {
            Eddy::new(sql, &input)
                .arg("--on-error")
                .arg("skip")
                .batch_size(batch)
        };

        let eddy = skip("SELECT * FROM users");
        let run = eddy.run();
        run.assert_success(&eddy);
        for line in [not_json, bad_op] {
            assert!(
                run.stderr.contains(&format!("line {line}")),
                "{}: stderr should report line {line}:\n{}",
                eddy.describe(),
                run.stderr
            );
        }
        let folded = crate::support::eddy::fold(&run.stdout).unwrap();
        // `plan` is left out for the reason given in pg_app::users_match_postgres_every_column.
        let problems = table_mismatches(VARIANT, "users", &folded, pg.table("users"), &["plan"]);
        assert!(
            problems.is_empty(),
            "{}: after skipping the bad lines:\n{}",
            eddy.describe(),
            problems.join("\n")
        );

        for sql in [
            "SELECT COUNT(*) FROM users",
            "SELECT status, COUNT(*), SUM(amount) FROM orders GROUP BY status",
            "SELECT c_mood, COUNT(*) FROM all_types GROUP BY c_mood",
        ] {
            let eddy = skip(sql);
            let mut expected = pg.query(sql).to_vec();
            expected.sort();
            assert_eq!(text_rows(&eddy.fold()), expected, "{}", eddy.describe());
        }
    }
}

/// The threads of `--threads` decode batches side by side but apply them in the input's
/// order: output and error reports are byte for byte those of one thread, bad lines included.
#[test]
fn every_thread_count_writes_what_one_thread_writes() {
    let dir = TempDir::new();
    let (input, _, _) = input_with_bad_lines(&dir);
    for sql in [
        "SELECT * FROM users",
        "SELECT status, COUNT(*), SUM(amount) FROM orders GROUP BY status",
    ] {
        for batch in [None, Some(1), Some(7)] {
            let run = |threads: u8| {
                let eddy = Eddy::new(sql, &input)
                    .arg("--on-error")
                    .arg("skip")
                    .arg("--threads")
                    .arg(&threads.to_string())
                    .batch_size(batch);
                let run = eddy.run();
                run.assert_success(&eddy);
                (eddy.describe(), run.stdout, run.stderr)
            };
            let (_, one_stdout, one_stderr) = run(1);
            assert!(one_stderr.contains("skipped"), "{one_stderr}");
            assert!(!one_stdout.is_empty());
            for threads in [2, 3] {
                let (describe, stdout, stderr) = run(threads);
                assert_eq!(stdout, one_stdout, "{describe}");
                // The last line is the run's timing.
                let reports = |s: &str| {
                    s.lines()
                        .filter(|l| l.contains("line "))
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                };
                assert_eq!(reports(&stderr), reports(&one_stderr), "{describe}");
            }
        }
    }
}

#[test]
fn stdin_input_dash_reads_stdin() {
    let sql = "SELECT status, COUNT(*), SUM(amount) FROM orders GROUP BY status";
    let bytes = std::fs::read(variant_path(VARIANT)).unwrap();
    let from_stdin = Eddy::stdin(sql, bytes);
    let run = from_stdin.run();
    run.assert_success(&from_stdin);
    let from_file = Eddy::new(sql, variant_path(VARIANT)).run();
    assert_eq!(
        run.stdout, from_file.stdout,
        "stdin and file runs print the same"
    );
    let mut expected = pg_app().query(sql).to_vec();
    expected.sort();
    assert_eq!(
        text_rows(&crate::support::eddy::fold(&run.stdout).unwrap()),
        expected
    );
}

#[test]
fn missing_input_file_is_an_error() {
    let dir = TempDir::new();
    let missing = dir
        .write("placeholder", "")
        .with_file_name("does-not-exist.jsonl");
    let eddy = Eddy::new("SELECT COUNT(*) FROM users", &missing);
    let run = eddy.run();
    run.assert_failure(&eddy);
    assert!(
        run.stderr.contains("does-not-exist.jsonl"),
        "stderr should name the file:\n{}",
        run.stderr
    );
}

#[test]
fn prisma_syntax_error_names_line() {
    let dir = TempDir::new();
    let schema = dir.write(
        "bad.prisma",
        "model User {\n  id    Int    @id\n  email String @@@\n}\n\nmodel Order {\n  id Int @id\n  {\n}\n",
    );
    let eddy = Eddy::new("SELECT COUNT(*) FROM users", variant_path(VARIANT)).schema(&schema);
    let run = eddy.run();
    run.assert_failure(&eddy);
    assert!(
        run.stderr.contains("line 3"),
        "the message should name line 3 (`email String @@@`):\n{}",
        run.stderr
    );
    assert!(
        run.stdout.is_empty(),
        "no output for a bad schema: {}",
        run.stdout
    );
}

/// Asserts `sql` is refused before any output, with a message that contains `needle`
/// (case-insensitive).
fn assert_query_refused(sql: &str, needle: &str) {
    let eddy = Eddy::new(sql, variant_path(VARIANT));
    let run = eddy.run();
    run.assert_failure(&eddy);
    assert!(
        run.stderr.to_lowercase().contains(&needle.to_lowercase()),
        "{sql}: the message should name {needle:?}:\n{}",
        run.stderr
    );
    assert!(
        run.stdout.is_empty(),
        "{sql}: no output expected, got {}",
        run.stdout
    );
}

#[test]
fn unknown_column_is_named() {
    assert_query_refused("SELECT nope FROM users", "nope");
}

#[test]
fn unknown_table_is_named() {
    assert_query_refused("SELECT COUNT(*) FROM nope_table", "nope_table");
}

#[test]
fn join_without_equality_is_refused() {
    assert_query_refused(
        "SELECT * FROM users u CROSS JOIN orders o",
        "a join without an equality condition",
    );
}

#[test]
fn limit_is_refused() {
    assert_query_refused("SELECT COUNT(*) FROM users LIMIT 1", "LIMIT");
}

#[test]
fn window_function_is_refused() {
    assert_query_refused("SELECT ROW_NUMBER() OVER () FROM users", "window");
}

/// The messages of `--format FORMAT --batch-size 1` over the fixture, parsed, after checking
/// each opens with `before`, then `after`, then `op` (Flink's field order).
fn debezium_messages(format: &str) -> Vec<serde_json::Value> {
    let eddy = Eddy::new(COUNT_AND_SUM, variant_path(VARIANT))
        .arg("--format")
        .arg(format)
        .batch_size(Some(1));
    let run = eddy.run();
    run.assert_success(&eddy);
    run.stdout
        .lines()
        .map(|line| {
            let (before, after, op) = (
                line.find(r#""before":"#),
                line.find(r#","after":"#),
                line.find(r#","op":"#),
            );
            assert!(
                before == Some(1) && after.is_some() && after < op,
                "{}: fields out of order: {line}",
                eddy.describe()
            );
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))
        })
        .collect()
}

/// Numbers as f64, so `25.50` and Flink's `25.5` (or `1.2E+3` and `1200.00`) compare equal.
fn numbers_as_f64(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(n) => n.as_f64().map(Value::from).unwrap_or(Value::Null),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), numbers_as_f64(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `debezium` writes what Flink's debezium-json does: a changed group is a `d` of the old row
/// then a `c` of the new, never a `u`. `debezium-u` writes the same change as one `u`.
#[test]
fn debezium_writes_an_update_as_delete_then_create_and_debezium_u_as_one_update() {
    use serde_json::{Value, json};
    let flink = debezium_messages("debezium");
    let one_u = debezium_messages("debezium-u");
    assert!(
        one_u.iter().any(|m| m["op"] == "u"),
        "debezium-u should update a group in one message: {one_u:?}"
    );
    for m in &flink {
        match m["op"].as_str() {
            Some("c") => assert!(m["before"].is_null() && m["after"].is_object(), "{m}"),
            Some("d") => assert!(m["before"].is_object() && m["after"].is_null(), "{m}"),
            _ => panic!("debezium writes only c and d: {m}"),
        }
    }
    let split: Vec<Value> = one_u
        .iter()
        .flat_map(|m| match m["op"].as_str() {
            Some("u") => vec![
                json!({"before": m["before"], "after": null, "op": "d"}),
                json!({"before": null, "after": m["after"], "op": "c"}),
            ],
            _ => vec![m.clone()],
        })
        .collect();
    let numeric = |messages: &[Value]| messages.iter().map(numbers_as_f64).collect::<Vec<_>>();
    assert_eq!(
        numeric(&flink),
        numeric(&split),
        "debezium should be debezium-u with each u as a d then a c"
    );
}

#[test]
fn explain_prints_operators_state_and_keys() {
    let sql = "SELECT status, n FROM (SELECT status, COUNT(*) AS n, MAX(amount) FROM orders \
               WHERE amount > 1 GROUP BY status) ORDER BY n DESC, status LIMIT 2";
    let eddy = Eddy::new(sql, variant_path(VARIANT)).arg("--explain");
    let run = eddy.run();
    run.assert_success(&eddy);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let find = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{}", run.stdout))
    };
    assert!(lines[find("orders: keeps (id, amount, status); key (id)")].starts_with("  "));
    let top = find("TopN: ORDER BY ");
    assert!(
        lines[top].contains("n DESC NULLS FIRST, "),
        "{}",
        lines[top]
    );
    assert!(lines[top].contains("rows 1..=2; state: every input row of each partition"));
    assert!(lines[top].ends_with("key (status)"));
    let aggregate = find("Aggregate: group by [status@");
    assert!(lines[aggregate].contains("state per group: row count, Count("));
    let filter = find("Filter: amount@");
    assert!(
        lines[filter].ends_with("no state; key (id)"),
        "{}",
        lines[filter]
    );
    assert!(top < aggregate && aggregate < filter);
    assert_eq!(lines[find("<- source orders")].trim(), "<- source orders");
    assert_eq!(*lines.last().unwrap(), "result key: (status)");
}
