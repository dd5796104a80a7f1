//! `eddy run`: a job over a file of Kafka records, results as JSON lines on stdout.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use eddy_engine::debezium::{DecimalHandling, DecodeOptions, TimePrecision};
use eddy_engine::{Encoder, Format, JobSpec, Pipeline, Record};
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Args)]
pub struct RunArgs {
    /// The database's Prisma schema.
    #[arg(long)]
    schema: PathBuf,
    /// The query.
    #[arg(
        long,
        required_unless_present = "sql_file",
        conflicts_with = "sql_file"
    )]
    sql: Option<String>,
    /// A file holding the query.
    #[arg(long)]
    sql_file: Option<PathBuf>,
    /// Kafka records as JSON lines (`{"topic", "key", "value"}`); `-` reads stdin.
    #[arg(long)]
    input: PathBuf,
    /// The input holds bare Debezium envelopes of this table, one per line, instead of
    /// Kafka records (the shape Flink's `debezium-json` format reads).
    #[arg(long)]
    table: Option<String>,
    /// Output records: `upsert` (`{"key", "value"}`) or `debezium` (`{"before", "after", "op"}`).
    #[arg(long, default_value = "upsert")]
    format: Format,
    /// What a malformed or inapplicable record does: stop the run, or be reported and skipped.
    #[arg(long, value_enum, default_value_t = OnError::Fail)]
    on_error: OnError,
    /// Records applied per batch; each batch's result changes are consolidated.
    #[arg(long, default_value_t = 4096)]
    batch_size: usize,
    /// How decimal strings are read when messages carry no schema.
    #[arg(long, value_enum, default_value_t = DecimalArg::Auto)]
    decimal_handling: DecimalArg,
    /// How integer times and timestamps are read when messages carry no schema.
    #[arg(long, value_enum, default_value_t = TimeArg::Adaptive)]
    time_precision: TimeArg,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnError {
    Fail,
    Skip,
}

#[derive(Clone, Copy, ValueEnum)]
enum DecimalArg {
    Auto,
    Precise,
    String,
}

#[derive(Clone, Copy, ValueEnum)]
enum TimeArg {
    Adaptive,
    Connect,
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

pub fn run(args: RunArgs) -> Result<()> {
    let schema = std::fs::read_to_string(&args.schema)
        .with_context(|| format!("reading schema {}", args.schema.display()))?;
    let sql = match (&args.sql, &args.sql_file) {
        (Some(sql), _) => sql.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("reading query {}", path.display()))?,
        (None, None) => bail!("give --sql or --sql-file"),
    };
    let decode = DecodeOptions {
        decimal_handling: match args.decimal_handling {
            DecimalArg::Auto => DecimalHandling::Auto,
            DecimalArg::Precise => DecimalHandling::Precise,
            DecimalArg::String => DecimalHandling::String,
        },
        time_precision: match args.time_precision {
            TimeArg::Adaptive => TimePrecision::Adaptive,
            TimeArg::Connect => TimePrecision::Connect,
        },
    };
    let mut pipeline = Pipeline::new(JobSpec {
        schema,
        sql,
        decode,
    })?;
    let encoder = Encoder::new(args.format, pipeline.key_fields(), pipeline.value_fields());
    let mut input: Box<dyn BufRead> = if args.input.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        let file = File::open(&args.input)
            .with_context(|| format!("opening input {}", args.input.display()))?;
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    let mut job = Job {
        pipeline: &mut pipeline,
        encoder: &encoder,
        out: BufWriter::with_capacity(1 << 16, std::io::stdout().lock()),
        on_error: args.on_error,
        table: args.table.clone(),
        lines: Vec::new(),
        skipped: 0,
    };
    let started = Instant::now();
    let mut line_number = 0usize;
    let mut line = Vec::new();
    loop {
        line.clear();
        line_number += 1;
        let read = input
            .read_until(b'\n', &mut line)
            .with_context(|| format!("reading line {line_number}"))?;
        if read == 0 {
            break;
        }
        if line.trim_ascii().is_empty() {
            continue;
        }
        job.push(line_number, &line)?;
        if job.lines.len() >= args.batch_size.max(1) {
            job.flush()?;
        }
    }
    job.flush()?;
    job.out.flush()?;
    let skipped = job.skipped;
    let stats = pipeline.stats();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "eddy: {} records ({} ignored, {} skipped) -> {} result changes in {:.3} s ({:.0} records/s)",
        stats.records,
        stats.ignored,
        skipped,
        stats.changes,
        seconds,
        stats.records as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// The running job: feeds the pipeline and writes its output.
struct Job<'a, W: Write> {
    pipeline: &'a mut Pipeline,
    encoder: &'a Encoder,
    out: W,
    on_error: OnError,
    table: Option<String>,
    /// Line numbers of the records pushed since the last flush, by push order.
    lines: Vec<usize>,
    skipped: u64,
}

impl<W: Write> Job<'_, W> {
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

    fn flush(&mut self) -> Result<()> {
        let first_ordinal = self.pipeline.stats().records - self.lines.len() as u64;
        let rejected = self.pipeline.flush()?;
        let lines = std::mem::take(&mut self.lines);
        for r in rejected {
            let line = lines[(r.ordinal - first_ordinal) as usize];
            self.bad_record(line, r.error.into())?;
        }
        for change in self.pipeline.drain() {
            writeln!(self.out, "{}", self.encoder.line(&change))?;
        }
        Ok(())
    }
}
