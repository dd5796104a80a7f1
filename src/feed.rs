//! What `eddy run` and `eddy bench` share: a job over a file of records, fed batch by batch.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use eddy_engine::debezium::{BinaryHandling, DecimalHandling, DecodeOptions, TimePrecision};
use eddy_engine::{BatchDecoder, DecodedBatch, JobSpec, Pipeline, Record, ResultChange};
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
    /// Threads: 2 decodes the next batch on a second thread while this one is applied; 1
    /// does both in turn. The results are the same.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub threads: u8,
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
pub fn open(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            std::io::stdin(),
        )));
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

/// A decoded batch, the line numbers of its records (by ordinal in the batch) and the
/// input's bytes read up to its end.
struct Batch {
    decoded: DecodedBatch,
    lines: Vec<usize>,
    bytes: u64,
}

/// What a malformed or inapplicable record does, and how many were skipped.
#[derive(Clone, Copy)]
struct Errors {
    on_error: OnError,
    skipped: u64,
}

impl Errors {
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
}

/// Feeds a pipeline from lines of records, batch by batch, handing each batch's result
/// changes to `changes` and the bytes read so far to `progress`.
///
/// With two threads, one reads and decodes the next batch while the other applies this
/// one; the batches are the same either way, so the results are too.
pub struct Feeder<'a> {
    pub pipeline: &'a mut Pipeline,
    pub table: Option<String>,
    pub batch_size: usize,
    pub threads: u8,
    errors: Errors,
}

impl<'a> Feeder<'a> {
    pub fn new(pipeline: &'a mut Pipeline, args: &JobArgs) -> Self {
        Self {
            pipeline,
            table: args.table.clone(),
            batch_size: args.batch_size.max(1),
            threads: args.threads,
            errors: Errors {
                on_error: args.on_error,
                skipped: 0,
            },
        }
    }

    /// Records skipped (with `--on-error skip`).
    pub fn skipped(&self) -> u64 {
        self.errors.skipped
    }

    /// Reads every line of `input`.
    pub fn feed(
        &mut self,
        input: impl BufRead + Send,
        mut changes: impl FnMut(Vec<ResultChange>) -> Result<()>,
        mut progress: impl FnMut(u64),
    ) -> Result<()> {
        let mut reader = Reader {
            decoder: self.pipeline.decoder()?,
            table: self.table.clone(),
            batch_size: self.batch_size,
            errors: self.errors,
        };
        if self.threads == 1 {
            reader.read(input, |batch| {
                let bytes = batch.bytes;
                changes(self.apply(batch)?)?;
                progress(bytes);
                Ok(true)
            })?;
            self.errors.skipped += reader.errors.skipped;
            return Ok(());
        }
        // One batch decoded ahead: enough to keep both threads busy, and a bound on memory.
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Batch>(1);
        std::thread::scope(|scope| {
            let decoding = scope.spawn(move || {
                // A closed channel means the applying side stopped on an error, which it
                // reports; this side just ends.
                reader.read(input, |batch| Ok(sender.send(batch).is_ok()))?;
                Ok::<_, anyhow::Error>(reader.errors.skipped)
            });
            let applied = receiver.into_iter().try_for_each(|batch| {
                let bytes = batch.bytes;
                changes(self.apply(batch)?)?;
                progress(bytes);
                Ok::<_, anyhow::Error>(())
            });
            let decoded = decoding
                .join()
                .map_err(|_| anyhow::anyhow!("the decoding thread panicked"))?;
            applied?;
            self.errors.skipped += decoded?;
            Ok(())
        })
    }

    fn apply(&mut self, batch: Batch) -> Result<Vec<ResultChange>> {
        let first_ordinal = self.pipeline.stats().records;
        let rejected = self.pipeline.apply(batch.decoded)?;
        for r in rejected {
            let line = batch.lines[(r.ordinal - first_ordinal) as usize];
            self.errors.bad_record(line, r.error.into())?;
        }
        Ok(self.pipeline.drain())
    }
}

/// Reads lines of records and decodes them into batches.
struct Reader {
    decoder: BatchDecoder,
    table: Option<String>,
    batch_size: usize,
    errors: Errors,
}

impl Reader {
    /// Decodes every line of `input`, handing each batch to `batch`, which says whether to
    /// go on. Lines are decoded where they sit in the reader's buffer; only a line the
    /// buffer's end cuts is copied.
    fn read(
        &mut self,
        mut input: impl BufRead,
        mut batch: impl FnMut(Batch) -> Result<bool>,
    ) -> Result<()> {
        let mut line_number = 0usize;
        let mut lines = Vec::with_capacity(self.batch_size);
        let mut bytes = 0u64;
        let mut cut = Vec::new();
        loop {
            let buffer = input
                .fill_buf()
                .with_context(|| format!("reading line {}", line_number + 1))?;
            if buffer.is_empty() {
                break;
            }
            line_number += 1;
            let length = match memchr::memchr(b'\n', buffer) {
                Some(end) => {
                    let length = end + 1;
                    self.line(line_number, &buffer[..length], &mut lines)?;
                    input.consume(length);
                    length
                }
                None => {
                    cut.clear();
                    input
                        .read_until(b'\n', &mut cut)
                        .with_context(|| format!("reading line {line_number}"))?;
                    self.line(line_number, &cut, &mut lines)?;
                    cut.len()
                }
            };
            bytes += length as u64;
            if lines.len() >= self.batch_size {
                let lines = std::mem::replace(&mut lines, Vec::with_capacity(self.batch_size));
                let decoded = self.decoder.finish()?;
                if !batch(Batch {
                    decoded,
                    lines,
                    bytes,
                })? {
                    return Ok(());
                }
            }
        }
        let decoded = self.decoder.finish()?;
        batch(Batch {
            decoded,
            lines,
            bytes,
        })?;
        Ok(())
    }

    /// Decodes one line into the batch, its line number to `lines` (unless blank).
    fn line(&mut self, line_number: usize, line: &[u8], lines: &mut Vec<usize>) -> Result<()> {
        if line.trim_ascii().is_empty() {
            return Ok(());
        }
        let pushed = match &self.table {
            Some(table) => {
                lines.push(line_number);
                self.decoder.push(Record {
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
                        return self.errors.bad_record(line_number, e);
                    }
                };
                lines.push(line_number);
                self.decoder.push(Record {
                    topic: &record.topic,
                    key: record.key.map(|k| k.get().as_bytes()),
                    value: record.value.map(|v| v.get().as_bytes()),
                })
            }
        };
        match pushed {
            Ok(()) => Ok(()),
            Err(e) => self.errors.bad_record(line_number, e.into()),
        }
    }
}
