//! What `eddy run` and `eddy bench` share: a job over a file of records, fed batch by batch.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use eddy_engine::debezium::{BinaryHandling, DecimalHandling, DecodeOptions, TimePrecision};
use eddy_engine::{JobSpec, Pipeline, Record, ResultChange};
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Args, Clone)]
pub struct JobArgs {
    /// The database's Prisma schema.
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// The query.
    #[arg(long, conflicts_with = "sql_file")]
    pub sql: Option<String>,
    /// A file holding the query.
    #[arg(long)]
    pub sql_file: Option<PathBuf>,
    /// Kafka records as JSON lines (`{"topic", "key", "value"}`); `-` reads stdin.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// The input holds bare Debezium envelopes of this table, one per line, instead of
    /// Kafka records (the shape Flink's `debezium-json` format reads).
    #[arg(long)]
    pub table: Option<String>,
    /// What a malformed or inapplicable record does: stop the run, or be reported and skipped.
    #[arg(long, value_enum, default_value_t = OnError::Fail)]
    pub on_error: OnError,
    /// Records applied per batch; each batch's result changes are consolidated.
    #[arg(long, default_value_t = 4096)]
    pub batch_size: usize,
    /// How decimal strings are read when messages carry no schema.
    #[arg(long, value_enum, default_value_t = DecimalArg::Auto)]
    pub decimal_handling: DecimalArg,
    /// How integer times and timestamps are read when messages carry no schema.
    #[arg(long, value_enum, default_value_t = TimeArg::Adaptive)]
    pub time_precision: TimeArg,
    /// How binary values are read when messages carry no schema (`binary.handling.mode`).
    #[arg(long, value_enum, default_value_t = BinaryArg::Base64)]
    pub binary_handling: BinaryArg,
    /// Print the incremental plan (operators, their state and keys) and exit; no input is read.
    #[arg(long)]
    pub explain: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnError {
    Fail,
    Skip,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DecimalArg {
    Auto,
    Precise,
    String,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum BinaryArg {
    Base64,
    Base64UrlSafe,
    Hex,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TimeArg {
    Adaptive,
    Connect,
}

fn read(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {what} {}", path.display()))
}

impl JobArgs {
    /// The job's schema and query; `default_schema`/`default_sql` stand in for options not
    /// given, where the command has defaults.
    pub fn spec(&self, default_schema: Option<&str>, default_sql: Option<&str>) -> Result<JobSpec> {
        let schema = match (&self.schema, default_schema) {
            (Some(path), _) => read(path, "schema")?,
            (None, Some(schema)) => schema.to_string(),
            (None, None) => bail!("give --schema"),
        };
        let sql = match (&self.sql, &self.sql_file, default_sql) {
            (Some(sql), _, _) => sql.clone(),
            (None, Some(path), _) => read(path, "query")?,
            (None, None, Some(sql)) => sql.to_string(),
            (None, None, None) => bail!("give --sql or --sql-file"),
        };
        let decode = DecodeOptions {
            decimal_handling: match self.decimal_handling {
                DecimalArg::Auto => DecimalHandling::Auto,
                DecimalArg::Precise => DecimalHandling::Precise,
                DecimalArg::String => DecimalHandling::String,
            },
            time_precision: match self.time_precision {
                TimeArg::Adaptive => TimePrecision::Adaptive,
                TimeArg::Connect => TimePrecision::Connect,
            },
            binary_handling: match self.binary_handling {
                BinaryArg::Base64 => BinaryHandling::Base64,
                BinaryArg::Base64UrlSafe => BinaryHandling::Base64UrlSafe,
                BinaryArg::Hex => BinaryHandling::Hex,
            },
        };
        Ok(JobSpec {
            schema,
            sql,
            decode,
        })
    }
}

/// Opens `path` (`-` is stdin) for reading lines.
pub fn open(path: &Path) -> Result<Box<dyn BufRead>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufReader::new(std::io::stdin().lock())));
    }
    let file = File::open(path).with_context(|| format!("opening input {}", path.display()))?;
    Ok(Box::new(BufReader::with_capacity(1 << 20, file)))
}

/// One input line; other fields (`seq`, `headers`, ...) are ignored.
#[derive(Deserialize)]
struct Line<'a> {
    topic: String,
    #[serde(borrow)]
    key: Option<&'a RawValue>,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
}

/// Feeds a pipeline from lines of records, batch by batch, handing each batch's result
/// changes to `changes` and the bytes read so far to `progress`.
pub struct Feeder<'a> {
    pub pipeline: &'a mut Pipeline,
    pub on_error: OnError,
    pub table: Option<String>,
    pub batch_size: usize,
    /// Line numbers of the records pushed since the last flush, by push order.
    lines: Vec<usize>,
    pub skipped: u64,
}

impl<'a> Feeder<'a> {
    pub fn new(pipeline: &'a mut Pipeline, args: &JobArgs) -> Self {
        Self {
            pipeline,
            on_error: args.on_error,
            table: args.table.clone(),
            batch_size: args.batch_size.max(1),
            lines: Vec::new(),
            skipped: 0,
        }
    }

    /// Reads every line of `input`.
    pub fn feed(
        &mut self,
        mut input: impl BufRead,
        mut changes: impl FnMut(Vec<ResultChange>) -> Result<()>,
        mut progress: impl FnMut(u64),
    ) -> Result<()> {
        let mut line_number = 0usize;
        let mut line = Vec::new();
        let mut bytes = 0u64;
        loop {
            line.clear();
            line_number += 1;
            let read = input
                .read_until(b'\n', &mut line)
                .with_context(|| format!("reading line {line_number}"))?;
            if read == 0 {
                break;
            }
            bytes += read as u64;
            if line.trim_ascii().is_empty() {
                continue;
            }
            self.push(line_number, &line)?;
            if self.lines.len() >= self.batch_size {
                changes(self.flush()?)?;
                progress(bytes);
            }
        }
        changes(self.flush()?)?;
        progress(bytes);
        Ok(())
    }

    fn push(&mut self, line_number: usize, line: &[u8]) -> Result<()> {
        let pushed = match &self.table {
            Some(table) => {
                self.lines.push(line_number);
                self.pipeline.push(Record {
                    topic: table,
                    key: None,
                    value: Some(line),
                })
            }
            None => {
                let record = match serde_json::from_slice::<Line>(line) {
                    Ok(record) => record,
                    Err(e) => {
                        let e = anyhow::anyhow!(
                            "not a Kafka record ({{\"topic\", \"key\", \"value\"}}): {e}"
                        );
                        return self.bad_record(line_number, e);
                    }
                };
                self.lines.push(line_number);
                self.pipeline.push(Record {
                    topic: &record.topic,
                    key: record.key.map(|k| k.get().as_bytes()),
                    value: record.value.map(|v| v.get().as_bytes()),
                })
            }
        };
        match pushed {
            Ok(()) => Ok(()),
            Err(e) => self.bad_record(line_number, e.into()),
        }
    }

    fn bad_record(&mut self, line_number: usize, error: anyhow::Error) -> Result<()> {
        match self.on_error {
            OnError::Fail => Err(error.context(format!("line {line_number}"))),
            OnError::Skip => {
                eprintln!("eddy: line {line_number}: skipped: {error:#}");
                self.skipped += 1;
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> Result<Vec<ResultChange>> {
        let first_ordinal = self.pipeline.stats().records - self.lines.len() as u64;
        let rejected = self.pipeline.flush()?;
        let lines = std::mem::take(&mut self.lines);
        for r in rejected {
            let line = lines[(r.ordinal - first_ordinal) as usize];
            self.bad_record(line, r.error.into())?;
        }
        Ok(self.pipeline.drain())
    }
}
