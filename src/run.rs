//! `eddy run`: a job over a file of Kafka records (or PostgreSQL itself, see [`crate::stream`]),
//! results as JSON lines on stdout.

use std::io::{BufWriter, Write};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use eddy_engine::{Encoder, Format, Pipeline};

use crate::feed::{Feeder, JobArgs, open};

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Output records: `upsert` (`{"key", "value"}`), `debezium` (Flink's debezium-json: an
    /// update is a `d` then a `c`) or `debezium-u` (an update is one `u`).
    #[arg(long, default_value = "upsert")]
    format: Format,
    /// Read PostgreSQL itself (a connection string) instead of `--input`: a snapshot, then
    /// the replication stream, each change printed as it happens; no broker.
    #[arg(long, conflicts_with = "input")]
    postgres: Option<String>,
}

pub fn run(args: RunArgs) -> Result<()> {
    let mut pipeline = Pipeline::new(args.job.spec(None, None)?)?;
    if args.job.explain {
        print!("{}", pipeline.explain()?);
        return Ok(());
    }
    let encoder = Encoder::new(args.format, pipeline.key_fields(), pipeline.value_fields());
    if let Some(url) = &args.postgres {
        return crate::stream::run(url, &mut pipeline, &encoder);
    }
    let path = args
        .job
        .input
        .clone()
        .context("give --input (a file, or - for stdin)")?;
    let input = open(&path)?;
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let started = Instant::now();
    let mut feeder = Feeder::new(&mut pipeline, &args.job);
    feeder.feed(
        input,
        |changes| {
            for change in changes {
                for line in encoder.lines(&change) {
                    writeln!(out, "{line}")?;
                }
            }
            Ok(())
        },
        |_| {},
    )?;
    let skipped = feeder.skipped();
    out.flush()?;
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
