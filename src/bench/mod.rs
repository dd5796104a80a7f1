//! `eddy bench`: a query over a changelog, measured: throughput, CPU, memory, state, latency.
//!
//! In-process (the default), the changelog comes from a file (`--input`) or is generated
//! first (`eddy gen`'s options), and the figures cover reading the lines, decoding,
//! normalizing, the operators and consolidation. With `--kafka`, the same runs through a
//! broker ([`kafka`]).

mod kafka;
mod usage;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use eddy_engine::{ChangeKind, Pipeline, StateUsage};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use eddy_workload::Table;

use crate::feed::{Feeder, JobArgs, open};
use crate::generate::{self, GenArgs, Shape};
use usage::Usage;

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    job: JobArgs,
    /// A built-in query over the benchmark tables (`q1`…`q5`; `q4` joins the customers,
    /// which it generates), when no `--sql` is given.
    #[arg(long, default_value = "q1")]
    query: String,
    /// Generates the changelog with these options when no `--input` is given; `--output`
    /// names where it is kept (default: a temporary file).
    #[command(flatten)]
    generate: GenArgs,
    /// With `--kafka`: events per second offered; without it, as fast as possible.
    #[arg(long)]
    rate: Option<u64>,
    /// Also write the JSON result to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// What an in-process run measured.
#[derive(Debug, Serialize)]
struct InProcess {
    query: String,
    /// Threads the job used (see `--threads`).
    threads: u8,
    input: PathBuf,
    input_bytes: u64,
    events: u64,
    result_changes: u64,
    wall_seconds: f64,
    cpu_seconds: f64,
    events_per_second: f64,
    events_per_cpu_second: f64,
    peak_rss_bytes: u64,
    /// Resident memory at the end, with the state complete.
    final_rss_bytes: u64,
    /// Resident memory at the start, before the pipeline existed.
    baseline_rss_bytes: u64,
    /// Resident memory once the query was planned, before any event.
    planned_rss_bytes: u64,
    first_result_ms: Option<f64>,
    /// Live rows (primary keys) the normalizers keep, over every table the query reads.
    live_keys: usize,
    /// The same by table.
    live_keys_by_table: BTreeMap<String, usize>,
    result_rows: i64,
    /// Peak RSS above the baseline, per live key.
    rss_bytes_per_live_key: f64,
    /// Serialized normalizer state (only the columns the query reads), in all and per live
    /// key.
    table_state_bytes: usize,
    state_bytes_per_live_key: f64,
    /// Serialized operator state (groups, a join's arrangements, a top-N's ranking), in all,
    /// per live key and per result row (group).
    operator_state_bytes: usize,
    operator_bytes_per_live_key: f64,
    state_bytes_per_group: f64,
    /// Each join side's rows, heap bytes, and bytes of the values it keeps.
    operator_states: Vec<StateUsage>,
}

pub fn bench(mut args: BenchArgs) -> Result<()> {
    let (name, sql) = match &args.job.sql {
        Some(sql) => ("custom".to_string(), sql.clone()),
        None => {
            let query = eddy_workload::query(&args.query).with_context(|| {
                let names: Vec<_> = eddy_workload::QUERIES.iter().map(|q| q.name).collect();
                format!("unknown query {:?}: use {}", args.query, names.join(", "))
            })?;
            args.generate.customers |= query.tables.contains(&Table::Customers);
            (query.name.to_string(), query.sql.to_string())
        }
    };
    if let Some(brokers) = &args.generate.kafka {
        return kafka::bench(&args, brokers, &name, &sql);
    }
    if args.job.input.is_none() && args.generate.customers && args.generate.shape == Shape::Envelope
    {
        bail!(
            "bare envelopes of two tables are two files, and a bench reads one: use --shape kafka"
        );
    }
    let (input, temporary) = match &args.job.input {
        Some(path) => (path.clone(), false),
        None => (
            generated(&args.generate)?,
            args.generate.output.as_os_str() == "-",
        ),
    };
    let result = in_process(&args.job, &name, &sql, input.clone());
    if temporary {
        let _ = std::fs::remove_file(&input);
    }
    let result = result?;
    eprintln!(
        "eddy bench {} ({} thread{}): {} events in {:.2} s: {:.0} events/s, {:.0} events/CPU-s, peak RSS {:.1} MB, first result {} ms, {:.0} B/live key, state {:.0} B/live key in tables + {:.0} in operators",
        result.query,
        result.threads,
        if result.threads == 1 { "" } else { "s" },
        result.events,
        result.wall_seconds,
        result.events_per_second,
        result.events_per_cpu_second,
        result.peak_rss_bytes as f64 / 1e6,
        result
            .first_result_ms
            .map_or("-".into(), |ms| format!("{ms:.1}")),
        result.rss_bytes_per_live_key,
        result.state_bytes_per_live_key,
        result.operator_bytes_per_live_key,
    );
    for part in &result.operator_states {
        let per_row = |bytes: usize| bytes as f64 / part.rows.max(1) as f64;
        eprintln!(
            "  {}: {} rows, {:.1} B/row allocated = {:.2}x its {:.1} B/row of values ({:.1} B/row as Arrow columns)",
            part.part,
            part.rows,
            per_row(part.allocated_bytes),
            part.allocated_bytes as f64 / part.value_bytes.max(1) as f64,
            per_row(part.value_bytes),
            per_row(part.column_bytes),
        );
    }
    report(&result, args.json.as_deref())
}

/// Prints the JSON result, and writes it to `path` too.
fn report(result: &impl Serialize, path: Option<&std::path::Path>) -> Result<()> {
    let json = serde_json::to_string_pretty(result)?;
    println!("{json}");
    if let Some(path) = path {
        std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Writes the generated changelog (to `--output`, else a temporary file the run removes)
/// and returns it.
fn generated(options: &GenArgs) -> Result<PathBuf> {
    let mut options = options.clone();
    if options.output.as_os_str() == "-" {
        options.output = std::env::temp_dir().join(format!(
            "eddy-bench-{}-{}.jsonl",
            options.events,
            std::process::id()
        ));
    }
    eprintln!("eddy: generating {}", options.output.display());
    generate::generate(options.clone())?;
    Ok(options.output)
}

fn in_process(job: &JobArgs, name: &str, sql: &str, input: PathBuf) -> Result<InProcess> {
    let spec = job.spec(Some(eddy_workload::SCHEMA), Some(sql))?;
    let input_bytes = std::fs::metadata(&input)
        .with_context(|| format!("reading {}", input.display()))?
        .len();
    // Whatever ran before (the generator) is not this run's memory.
    usage::reset_peak_rss();
    let start = Usage::now()?;
    let started = Instant::now();
    let mut pipeline = Pipeline::new(spec)?;
    let planned_rss = Usage::now()?.rss_bytes;
    let progress = ProgressBar::new(input_bytes).with_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
            .context("progress bar template")?,
    );
    let mut first_result = None;
    let mut result_rows = 0i64;
    let mut feeder = Feeder::new(&mut pipeline, job);
    feeder.feed(
        open(&input)?,
        |changes| {
            if first_result.is_none() && !changes.is_empty() {
                first_result = Some(started.elapsed());
            }
            for change in changes {
                result_rows += match change.kind {
                    ChangeKind::Insert => 1,
                    ChangeKind::Delete => -1,
                    ChangeKind::Update => 0,
                };
            }
            Ok(())
        },
        |bytes| progress.set_position(bytes),
    )?;
    let wall = started.elapsed().as_secs_f64();
    let end = Usage::now()?;
    progress.finish_and_clear();
    let stats = pipeline.stats();
    if stats.records == 0 {
        bail!("{} holds no records", input.display());
    }
    let size = pipeline.state_size()?;
    let live_keys_by_table = pipeline
        .kept_rows()
        .into_iter()
        .map(|(table, rows)| (table.to_string(), rows))
        .collect();
    let cpu = end.cpu_seconds - start.cpu_seconds;
    let per = |bytes: f64, count: f64| if count > 0.0 { bytes / count } else { 0.0 };
    let grown = end.peak_rss_bytes.saturating_sub(start.rss_bytes) as f64;
    Ok(InProcess {
        query: name.to_string(),
        threads: job.threads,
        input,
        input_bytes,
        events: stats.records,
        result_changes: stats.changes,
        wall_seconds: wall,
        cpu_seconds: cpu,
        events_per_second: stats.records as f64 / wall,
        events_per_cpu_second: stats.records as f64 / cpu.max(1e-9),
        peak_rss_bytes: end.peak_rss_bytes,
        final_rss_bytes: end.rss_bytes,
        baseline_rss_bytes: start.rss_bytes,
        planned_rss_bytes: planned_rss,
        first_result_ms: first_result.map(|d| d.as_secs_f64() * 1e3),
        live_keys: size.kept_rows,
        live_keys_by_table,
        result_rows,
        rss_bytes_per_live_key: per(grown, size.kept_rows as f64),
        table_state_bytes: size.table_bytes,
        state_bytes_per_live_key: per(size.table_bytes as f64, size.kept_rows as f64),
        operator_state_bytes: size.operator_bytes,
        operator_bytes_per_live_key: per(size.operator_bytes as f64, size.kept_rows as f64),
        state_bytes_per_group: per(size.operator_bytes as f64, result_rows as f64),
        operator_states: pipeline.state_usage()?,
    })
}
