//! Runs the `eddy` binary and folds its upsert output into the query's current result.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::SCHEMA;

/// One `eddy run`.
pub struct Eddy {
    schema: PathBuf,
    sql: String,
    input: Input,
    args: Vec<String>,
}

enum Input {
    File(PathBuf),
    Stdin(Vec<u8>),
}

/// What a run printed.
pub struct Run {
    pub output: Output,
    pub stdout: String,
    pub stderr: String,
}

impl Eddy {
    /// `eddy run --schema fixtures/pg-app/schema.prisma --sql SQL --input INPUT`.
    pub fn new(sql: &str, input: impl AsRef<Path>) -> Eddy {
        Eddy {
            schema: PathBuf::from(SCHEMA),
            sql: sql.to_string(),
            input: Input::File(input.as_ref().to_path_buf()),
            args: Vec::new(),
        }
    }

    /// Feeds `bytes` on stdin with `--input -`.
    pub fn stdin(sql: &str, bytes: Vec<u8>) -> Eddy {
        Eddy {
            schema: PathBuf::from(SCHEMA),
            sql: sql.to_string(),
            input: Input::Stdin(bytes),
            args: Vec::new(),
        }
    }

    pub fn schema(mut self, schema: impl AsRef<Path>) -> Eddy {
        self.schema = schema.as_ref().to_path_buf();
        self
    }

    pub fn arg(mut self, arg: &str) -> Eddy {
        self.args.push(arg.to_string());
        self
    }

    pub fn batch_size(self, n: Option<usize>) -> Eddy {
        match n {
            Some(n) => self.arg("--batch-size").arg(&n.to_string()),
            None => self,
        }
    }

    /// A printable form of the command, for assertion messages.
    pub fn describe(&self) -> String {
        let input = match &self.input {
            Input::File(p) => p.display().to_string(),
            Input::Stdin(_) => "-".to_string(),
        };
        format!(
            "eddy run --schema {} --sql {:?} --input {input} {}",
            self.schema.display(),
            self.sql,
            self.args.join(" ")
        )
    }

    /// Runs eddy; whatever the exit status, it must not have panicked.
    pub fn run(&self) -> Run {
        let mut c = Command::new(env!("CARGO_BIN_EXE_eddy"));
        c.arg("run")
            .arg("--schema")
            .arg(&self.schema)
            .arg("--sql")
            .arg(&self.sql)
            .arg("--input");
        match &self.input {
            Input::File(p) => c.arg(p).stdin(Stdio::null()),
            Input::Stdin(_) => c.arg("-").stdin(Stdio::piped()),
        };
        c.args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.describe()));
        if let Input::Stdin(bytes) = &self.input {
            let mut stdin = child.stdin.take().expect("piped stdin");
            let bytes = bytes.clone();
            // Written from another thread so a full stdout pipe cannot deadlock us.
            let writer = std::thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            });
            let output = child.wait_with_output().expect("waiting for eddy");
            writer.join().expect("stdin writer");
            return Run::new(output, self);
        }
        let output = child.wait_with_output().expect("waiting for eddy");
        Run::new(output, self)
    }

    /// Runs eddy, asserts it succeeded, and folds its upsert output.
    pub fn fold(&self) -> Folded {
        let run = self.run();
        run.assert_success(self);
        fold(&run.stdout)
            .unwrap_or_else(|e| panic!("{}: {e}\nstdout:\n{}", self.describe(), run.stdout))
    }

    /// Like [`Eddy::fold`], but a failed run is an `Err` with its stderr, so one test can
    /// gather the failures of many runs before asserting.
    pub fn try_fold(&self) -> Result<Folded, String> {
        let run = self.run();
        if !run.output.status.success() {
            return Err(format!(
                "{} exited with {}: {}",
                self.describe(),
                run.output.status,
                run.stderr.trim()
            ));
        }
        fold(&run.stdout).map_err(|e| format!("{}: {e}", self.describe()))
    }
}

impl Run {
    fn new(output: Output, eddy: &Eddy) -> Run {
        let stdout = String::from_utf8(output.stdout.clone()).expect("eddy's stdout is UTF-8");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            !stderr.contains("panicked"),
            "{} panicked:\n{stderr}",
            eddy.describe()
        );
        Run {
            output,
            stdout,
            stderr,
        }
    }

    pub fn assert_success(&self, eddy: &Eddy) {
        assert!(
            self.output.status.success(),
            "{} exited with {}:\n{}",
            eddy.describe(),
            self.output.status,
            self.stderr
        );
    }

    pub fn assert_failure(&self, eddy: &Eddy) {
        assert!(
            !self.output.status.success(),
            "{} should have failed, but exited with {}\nstdout:\n{}\nstderr:\n{}",
            eddy.describe(),
            self.output.status,
            self.stdout,
            self.stderr
        );
        assert!(
            matches!(self.output.status.code(), Some(code) if code != 0),
            "{} should exit with a non-zero status (not be killed by a signal)\nstderr:\n{}",
            eddy.describe(),
            self.stderr
        );
    }
}

/// A JSON object with its fields in order, each value as its exact JSON text (so `25.50`
/// stays `25.50`).
#[derive(Debug)]
pub struct Fields(pub Vec<(String, Box<RawValue>)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.get())
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The values as `psql -At -P null=NULL` would print them: strings unquoted, NULL as
    /// `NULL`, numbers and booleans as their JSON text.
    pub fn texts(&self) -> Vec<String> {
        self.0.iter().map(|(_, v)| plain_text(v.get())).collect()
    }
}

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(n, v)| format!("{n:?}:{}", v.get()))
            .collect();
        write!(f, "{{{}}}", parts.join(","))
    }
}

/// A JSON value's text the way psql prints it (see [`Fields::texts`]).
pub fn plain_text(raw: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Null) => "NULL".to_string(),
        Ok(serde_json::Value::String(s)) => s,
        _ => raw.to_string(),
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Fields, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut fields = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, Box<RawValue>>()? {
                    fields.push((name, value));
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(Ordered)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpsertLine {
    key: Box<RawValue>,
    value: Option<Fields>,
}

/// The query's current result: key (its JSON text, as eddy printed it) → row.
pub type Folded = BTreeMap<String, Fields>;

/// Folds upsert lines in order: a value replaces the key's row, null removes it. A null for a
/// key that is not in the result is an error: eddy would be deleting a row it never emitted.
pub fn fold(stdout: &str) -> Result<Folded, String> {
    let mut result = Folded::new();
    for (i, line) in stdout.lines().enumerate() {
        let parsed: UpsertLine = serde_json::from_str(line).map_err(|e| {
            format!(
                "output line {} is not an upsert record ({e}): {line}",
                i + 1
            )
        })?;
        let key = parsed.key.get().to_string();
        match parsed.value {
            Some(row) => {
                result.insert(key, row);
            }
            None => {
                if result.remove(&key).is_none() {
                    return Err(format!(
                        "output line {} deletes key {key}, which is not in the result",
                        i + 1
                    ));
                }
            }
        }
    }
    Ok(result)
}

/// Folds `debezium`-format lines as a multiset of rows: a `c` adds its `after`, a `d` takes
/// one equal `before` away (an error when there is none: eddy would be deleting a row it never
/// emitted). Rows as [`Fields::texts`] spells them, sorted.
pub fn fold_debezium_lines(stdout: &str) -> Result<Vec<Vec<String>>, String> {
    #[derive(Deserialize)]
    struct Envelope {
        before: Option<Fields>,
        after: Option<Fields>,
        op: String,
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (i, line) in stdout.lines().enumerate() {
        let envelope: Envelope = serde_json::from_str(line)
            .map_err(|e| format!("output line {} is not debezium-json ({e}): {line}", i + 1))?;
        match (envelope.op.as_str(), envelope.before, envelope.after) {
            ("c", None, Some(after)) => rows.push(after.texts()),
            ("d", Some(before), None) => {
                let before = before.texts();
                let at = rows.iter().position(|r| *r == before).ok_or_else(|| {
                    format!(
                        "output line {} deletes a row not in the result: {line}",
                        i + 1
                    )
                })?;
                rows.swap_remove(at);
            }
            _ => return Err(format!("output line {} is not a c or a d: {line}", i + 1)),
        }
    }
    rows.sort();
    Ok(rows)
}

/// Rows with every number spelled plainly and without trailing fractional zeros (`25.50`,
/// `25.5` and `2.55E+1` are all `25.5`), sorted: the `debezium` format spells decimals as
/// Flink does, PostgreSQL at their scale, and the two answers compare so.
pub fn plain_numbers(rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|cell| plain_number(&cell).unwrap_or(cell))
                .collect()
        })
        .collect();
    rows.sort();
    rows
}

/// `text` as a plain decimal without trailing fractional zeros, if it is a number.
fn plain_number(text: &str) -> Option<String> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['E', 'e']) {
        Some((m, e)) => (m, e.parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let point = int.len() as i64 + exponent;
    let (whole, fraction) = if point <= 0 {
        (String::from("0"), "0".repeat((-point) as usize) + &digits)
    } else if point as usize >= digits.len() {
        (
            digits.clone() + &"0".repeat(point as usize - digits.len()),
            String::new(),
        )
    } else {
        let (w, f) = digits.split_at(point as usize);
        (w.to_string(), f.to_string())
    };
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let fraction = fraction.trim_end_matches('0');
    let zero = whole == "0" && fraction.is_empty();
    let sign = if negative && !zero { "-" } else { "" };
    Some(if fraction.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction}")
    })
}

/// The folded rows as text rows ([`Fields::texts`]), sorted, for comparison with psql.
pub fn text_rows(folded: &Folded) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = folded.values().map(Fields::texts).collect();
    rows.sort();
    rows
}

#[test]
fn plain_numbers_spell_decimals_one_way() {
    let rows = |cells: &[&str]| vec![cells.iter().map(|c| c.to_string()).collect::<Vec<_>>()];
    assert_eq!(
        plain_numbers(rows(&[
            "25.50", "1.2E+3", "-0.00", "1E-7", "new", "NULL", "12"
        ])),
        rows(&["25.5", "1200", "0", "0.0000001", "new", "NULL", "12"])
    );
}
