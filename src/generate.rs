//! `eddy gen`: a deterministic Debezium changelog of the benchmark `orders` table.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use eddy_workload::{DecimalMode, Generator, Mix, Op, Options, ReplicaIdentity};

use crate::produce::{Generated, produce};

#[derive(Args, Clone)]
pub struct GenArgs {
    /// Change events to generate (tombstones not counted).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// The most rows alive at once.
    #[arg(long, default_value_t = 500_000)]
    pub live_keys: u64,
    /// Percentages of inserts, updates and deletes.
    #[arg(long, default_value = "60,30,10")]
    pub mix: Mix,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Wrap keys and values in `{"schema", "payload"}` (the converter's `schemas.enable`).
    #[arg(long)]
    pub schemas: bool,
    /// How `numeric` values are written (Debezium's `decimal.handling.mode`).
    #[arg(long, value_enum, default_value_t = DecimalArg::Precise)]
    pub decimal: DecimalArg,
    /// The table's REPLICA IDENTITY: what `before` images hold.
    #[arg(long, value_enum, default_value_t = IdentityArg::Full)]
    pub replica_identity: IdentityArg,
    /// `kafka`: `{"topic", "key", "value"}` records, each delete followed by its tombstone;
    /// `envelope`: one bare Debezium envelope per line (what Flink's `debezium-json` reads).
    #[arg(long, value_enum, default_value_t = Shape::Kafka)]
    pub shape: Shape,
    /// The connector's topic prefix: records go to `<prefix>.public.orders`.
    #[arg(long, default_value = "bench")]
    pub prefix: String,
    /// Where to write; `-` is stdout.
    #[arg(long, short, default_value = "-")]
    pub output: PathBuf,
    /// Kafka brokers: `gen` produces the records into `<prefix>.public.orders` there (made
    /// if missing) instead of writing them; `bench` runs its job through them.
    #[arg(long, conflicts_with = "output")]
    pub kafka: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DecimalArg {
    Precise,
    String,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum IdentityArg {
    Full,
    Default,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shape {
    Kafka,
    Envelope,
}

impl GenArgs {
    pub fn options(&self) -> Options {
        Options {
            seed: self.seed,
            live_keys: self.live_keys,
            mix: self.mix,
            schemas: self.schemas,
            decimal: match self.decimal {
                DecimalArg::Precise => DecimalMode::Precise,
                DecimalArg::String => DecimalMode::String,
            },
            identity: match self.replica_identity {
                IdentityArg::Full => ReplicaIdentity::Full,
                IdentityArg::Default => ReplicaIdentity::Default,
            },
            prefix: self.prefix.clone(),
        }
    }
}

pub fn generate(args: GenArgs) -> Result<()> {
    if let Some(brokers) = &args.kafka {
        return produce_into(brokers, &args);
    }
    let out: Box<dyn Write> = if args.output.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            File::create(&args.output)
                .with_context(|| format!("creating {}", args.output.display()))?,
        )
    };
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let mut lines = Lines::new(&args);
    let mut buffer = Vec::new();
    for _ in 0..args.events {
        buffer.clear();
        lines.append_next(&mut buffer);
        out.write_all(&buffer)?;
    }
    out.flush()?;
    eprintln!(
        "eddy: {} events of {}, {} rows alive at the end",
        args.events,
        lines.generator.topic(),
        lines.generator.live_rows()
    );
    Ok(())
}

/// Produces the changelog (with tombstones) into its topic.
fn produce_into(brokers: &str, args: &GenArgs) -> Result<()> {
    let events = Generated::new(args.options(), args.events);
    let topic = Generator::new(args.options()).topic();
    eddy_kafka::admin::ensure_topics_blocking(brokers, &[&topic], 1)?;
    let sent: Vec<AtomicU64> = (0..events.records.len())
        .map(|_| AtomicU64::new(0))
        .collect();
    produce(brokers, &topic, &events, None, &sent, Instant::now())?;
    eprintln!(
        "eddy: {} events ({} records) produced into {topic}",
        args.events,
        events.records.len()
    );
    Ok(())
}

/// The changelog as input lines of one [`Shape`].
pub struct Lines {
    generator: Generator,
    shape: Shape,
    topic: String,
    key: String,
    value: String,
}

impl Lines {
    pub fn new(args: &GenArgs) -> Self {
        let generator = Generator::new(args.options());
        Self {
            topic: generator.topic(),
            generator,
            shape: args.shape,
            key: String::new(),
            value: String::new(),
        }
    }

    /// Appends the next event's lines, each ending in a newline: two for a delete in the
    /// Kafka shape (the event and its tombstone), else one.
    pub fn append_next(&mut self, out: &mut Vec<u8>) {
        let op = self.generator.next_into(&mut self.key, &mut self.value);
        let (topic, key, value) = (&self.topic, &self.key, &self.value);
        // Writing into a Vec cannot fail.
        let _ = match self.shape {
            Shape::Envelope => writeln!(out, "{value}"),
            Shape::Kafka if op == Op::Delete => writeln!(
                out,
                "{{\"topic\":\"{topic}\",\"key\":{key},\"value\":{value}}}\n\
                 {{\"topic\":\"{topic}\",\"key\":{key},\"value\":null}}"
            ),
            Shape::Kafka => writeln!(
                out,
                "{{\"topic\":\"{topic}\",\"key\":{key},\"value\":{value}}}"
            ),
        };
    }
}
