//! What `eddy run` and `eddy bench` share: a job over a file of records, fed batch by batch.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use eddy_engine::debezium::{BinaryHandling, DecimalHandling, DecodeOptions, TimePrecision};
use eddy_engine::{BatchDecoder, DecodedBatch, JobSpec, Pipeline, Record, ResultChange};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::line_batches::{LineBatch, LineBatcher};

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
    /// Non-blank input lines per batch; each batch's result changes are consolidated.
    #[arg(long, default_value_t = 4096)]
    pub batch_size: usize,
    /// Threads, each decoding a batch of its own while another applies one (batches are
    /// applied one at a time, in order); 1 decodes and applies in turn. The results are the
    /// same.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=16))]
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
/// With `threads` above 1, the others only decode: each takes the input's next batch of
/// lines, decodes it with a decoder of its own and leaves it ready. This thread applies the
/// ready batches in the input's order and, when the next one is not ready yet, decodes one
/// itself rather than wait: applying stays on one thread (the normalizers' and operators'
/// state stays in one core's cache) and decoding, most of the work, spreads over all. At
/// most `threads` batches wait decoded. The batches are cut before they are decoded, so
/// the results are those of one thread.
pub struct Feeder<'a> {
    pipeline: &'a mut Pipeline,
    table: Option<String>,
    batch_size: usize,
    threads: u8,
    errors: Errors,
}

impl<'a> Feeder<'a> {
    pub fn new(pipeline: &'a mut Pipeline, args: &JobArgs) -> Self {
        Self {
            pipeline,
            table: args.table.clone(),
            batch_size: args.batch_size.max(1),
            threads: args.threads.max(1),
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
        let mut decoder = self.pipeline.decoder();
        let helpers: Vec<_> = (1..self.threads).map(|_| self.pipeline.decoder()).collect();
        let table = self.table.clone();
        let shared = Shared {
            batcher: Mutex::new(LineBatcher::new(input, self.batch_size)),
            ready: Mutex::new(Ready {
                batches: BTreeMap::new(),
                decoding: helpers.len(),
                stopped: false,
                helper_panicked: false,
            }),
            changed: Condvar::new(),
            ahead: usize::from(self.threads),
            table: table.as_deref(),
        };
        let shared = &shared;
        std::thread::scope(|scope| {
            let helpers: Vec<_> = helpers
                .into_iter()
                .map(|decoder| scope.spawn(move || shared.help(decoder)))
                .collect();
            let mut apply = |bytes: u64, decoded: Result<Decoded>| {
                changes(self.apply(decoded?)?)?;
                progress(bytes);
                Ok(())
            };
            // The helpers stop however applying ends, a panic included: the scope joins
            // them before it lets a panic go on.
            let stop = StopHelpers(shared);
            let applied = shared.apply_in_order(&mut decoder, &mut apply);
            drop(stop);
            for helper in helpers {
                helper
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            }
            applied
        })
    }

    fn apply(&mut self, decoded: Decoded) -> Result<Vec<ResultChange>> {
        for (line, error) in decoded.refused {
            self.errors.bad_record(line, error)?;
        }
        let first_ordinal = self.pipeline.stats().records;
        let rejected = self.pipeline.apply(decoded.batch)?;
        for r in rejected {
            let line = decoded.lines[(r.ordinal - first_ordinal) as usize];
            self.errors.bad_record(line, r.error.into())?;
        }
        Ok(self.pipeline.drain())
    }
}

/// What the feeding threads share: the input, and the batches decoded ahead.
struct Shared<'t, R> {
    batcher: Mutex<LineBatcher<R>>,
    ready: Mutex<Ready>,
    /// Signalled when a batch is made ready or taken, and when a helper ends.
    changed: Condvar,
    /// How many batches may wait decoded.
    ahead: usize,
    table: Option<&'t str>,
}

struct Ready {
    /// Decoded batches by sequence number, with the input's bytes read up to their end.
    batches: BTreeMap<u64, (u64, Result<Decoded>)>,
    /// Helpers still decoding.
    decoding: usize,
    /// Applying has ended (the input's end or an error): helpers stop.
    stopped: bool,
    /// A helper panicked: the batch it held never comes, so applying stops (and the scope
    /// that joins the helper goes on with its panic).
    helper_panicked: bool,
}

impl<R> Shared<'_, R> {
    fn lock_ready(&self) -> std::sync::MutexGuard<'_, Ready> {
        // Only this module's code holds the lock, and none of it panics while holding it.
        self.ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<R: BufRead> Shared<'_, R> {
    /// Takes and decodes the input's next batch: its sequence number, bytes read and
    /// decoding, or `None` at the input's end.
    fn next(
        &self,
        decoder: &mut BatchDecoder,
        lines: &mut LineBatch,
    ) -> Option<(u64, u64, Result<Decoded>)> {
        let read = match self.batcher.lock() {
            Ok(mut batcher) => batcher.next_into(lines),
            Err(_) => Err(anyhow::anyhow!("a feeding thread panicked while reading")),
        };
        let decoded = match read {
            Ok(false) => return None,
            Ok(true) => decode(decoder, self.table, lines),
            Err(e) => Err(e),
        };
        Some((lines.sequence, lines.bytes, decoded))
    }

    /// A helper thread: decodes batches while fewer than `ahead` wait, until the input
    /// ends or applying stops.
    fn help(&self, mut decoder: BatchDecoder) {
        let _done = HelperDone(self);
        let mut lines = LineBatch::default();
        loop {
            let mut ready = self.lock_ready();
            while ready.batches.len() >= self.ahead && !ready.stopped {
                ready = self
                    .changed
                    .wait(ready)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if ready.stopped {
                break;
            }
            drop(ready);
            let Some((sequence, bytes, decoded)) = self.next(&mut decoder, &mut lines) else {
                break;
            };
            let failed = decoded.is_err();
            self.lock_ready().batches.insert(sequence, (bytes, decoded));
            self.changed.notify_all();
            if failed {
                break;
            }
        }
    }

    /// Applies every batch in the input's order, decoding on this thread the ones no
    /// helper has made ready.
    fn apply_in_order(
        &self,
        decoder: &mut BatchDecoder,
        apply: &mut impl FnMut(u64, Result<Decoded>) -> Result<()>,
    ) -> Result<()> {
        let mut lines = LineBatch::default();
        let mut next = 0u64;
        let mut input_ended = false;
        loop {
            let mut ready = self.lock_ready();
            if ready.helper_panicked {
                return Err(anyhow::anyhow!("a decoding thread panicked"));
            }
            if let Some((bytes, decoded)) = ready.batches.remove(&next) {
                drop(ready);
                self.changed.notify_all();
                apply(bytes, decoded)?;
                next += 1;
                continue;
            }
            if !input_ended && ready.batches.len() < self.ahead {
                drop(ready);
                match self.next(decoder, &mut lines) {
                    None => input_ended = true,
                    Some((sequence, bytes, decoded)) if sequence == next => {
                        apply(bytes, decoded)?;
                        next += 1;
                    }
                    Some((sequence, bytes, decoded)) => {
                        self.lock_ready().batches.insert(sequence, (bytes, decoded));
                    }
                }
                continue;
            }
            if input_ended && ready.decoding == 0 {
                // Every batch taken was applied or is ready, so none is left.
                return Ok(());
            }
            drop(
                self.changed
                    .wait(ready)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
        }
    }
}

/// Counts a helper out when it ends, by a panic too.
struct HelperDone<'s, 't, R>(&'s Shared<'t, R>);

impl<R> Drop for HelperDone<'_, '_, R> {
    fn drop(&mut self) {
        let shared = self.0;
        let mut ready = shared.lock_ready();
        ready.decoding -= 1;
        ready.helper_panicked |= std::thread::panicking();
        drop(ready);
        shared.changed.notify_all();
    }
}

/// Ends the helpers at their next batch when dropped.
struct StopHelpers<'s, 't, R>(&'s Shared<'t, R>);

impl<R> Drop for StopHelpers<'_, '_, R> {
    fn drop(&mut self) {
        let shared = self.0;
        shared.lock_ready().stopped = true;
        shared.changed.notify_all();
    }
}

/// A batch of lines decoded: the pipeline's batch, the line number of each of its records
/// (by ordinal in the batch), and the lines refused, with why.
struct Decoded {
    batch: DecodedBatch,
    lines: Vec<usize>,
    refused: Vec<(usize, anyhow::Error)>,
}

fn decode(decoder: &mut BatchDecoder, table: Option<&str>, lines: &LineBatch) -> Result<Decoded> {
    let mut numbers = Vec::new();
    let mut refused = Vec::new();
    for (number, line) in lines.lines() {
        let pushed = match table {
            Some(table) => decoder.push(Record {
                topic: table,
                key: None,
                value: Some(line),
            }),
            None => match serde_json::from_slice::<Line>(line) {
                Ok(record) => decoder.push(Record {
                    topic: &record.topic,
                    key: record.key.map(|k| k.get().as_bytes()),
                    value: record.value.map(|v| v.get().as_bytes()),
                }),
                Err(e) => {
                    let e = anyhow::anyhow!(
                        "not a Kafka record ({{\"topic\", \"key\", \"value\"}}): {e}"
                    );
                    refused.push((number, e));
                    continue;
                }
            },
        };
        // A record the decoder refused still has its ordinal.
        numbers.push(number);
        if let Err(e) = pushed {
            refused.push((number, e.into()));
        }
    }
    Ok(Decoded {
        batch: decoder.finish()?,
        lines: numbers,
        refused,
    })
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Cursor, Read};

    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pg-app");

    /// The fixture's lines, then a read error.
    struct FailsAtTheEnd(Cursor<Vec<u8>>);

    impl Read for FailsAtTheEnd {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            match self.0.read(buffer)? {
                0 => Err(std::io::Error::other("the disk went away")),
                n => Ok(n),
            }
        }
    }

    /// Feeds the fixture with `threads`; the result changes handed on, and how it ended.
    fn feed(threads: u8, input: impl BufRead + Send) -> (Vec<ResultChange>, Result<()>) {
        let spec = JobSpec {
            schema: std::fs::read_to_string(format!("{FIXTURES}/schema.prisma")).unwrap(),
            sql: "SELECT status, COUNT(*), SUM(amount) FROM orders GROUP BY status".into(),
            decode: DecodeOptions::default(),
        };
        let mut pipeline = Pipeline::new(spec).unwrap();
        let mut feeder = Feeder {
            pipeline: &mut pipeline,
            table: None,
            batch_size: 3,
            threads,
            errors: Errors {
                on_error: OnError::Fail,
                skipped: 0,
            },
        };
        let mut all = Vec::new();
        let ended = feeder.feed(
            input,
            |changes| {
                all.extend(changes);
                Ok(())
            },
            |_| {},
        );
        (all, ended)
    }

    fn fixture() -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/precise_schemas.jsonl")).unwrap()
    }

    #[test]
    fn every_thread_count_applies_the_same_batches() {
        let (one, ended) = feed(1, BufReader::new(Cursor::new(fixture())));
        ended.unwrap();
        assert!(!one.is_empty());
        for threads in [2, 3, 8] {
            let (many, ended) = feed(threads, BufReader::new(Cursor::new(fixture())));
            ended.unwrap();
            assert_eq!(format!("{many:?}"), format!("{one:?}"), "{threads} threads");
        }
    }

    /// A read error ends feeding once every batch before the one it cuts is applied, on any
    /// number of threads, and no thread waits for a batch that will not come.
    #[test]
    fn a_read_error_ends_feeding_in_order_on_any_thread_count() {
        let fixture = fixture();
        let lines: Vec<&[u8]> = fixture.split_inclusive(|&b| b == b'\n').collect();
        // The batches of 3 lines that were whole before the input failed.
        let whole_batches = lines[..lines.len() - lines.len() % 3].concat();
        let (expected, ended) = feed(1, BufReader::new(Cursor::new(whole_batches)));
        ended.unwrap();
        assert!(!expected.is_empty());
        for threads in [1, 2, 3] {
            let input = BufReader::with_capacity(64, FailsAtTheEnd(Cursor::new(fixture.clone())));
            let (applied, ended) = feed(threads, input);
            let error = format!("{:#}", ended.unwrap_err());
            assert!(error.contains("the disk went away"), "{error}");
            assert_eq!(
                format!("{applied:?}"),
                format!("{expected:?}"),
                "{threads} threads"
            );
        }
    }
}
