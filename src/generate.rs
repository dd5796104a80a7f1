//! `eddy gen`: a deterministic Debezium changelog of the benchmark `orders` table, and with
//! `--customers` of the `customers` its orders refer to.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use eddy_workload::{DecimalMode, Generator, Mix, Op, Options, ReplicaIdentity, Table};

use crate::produce::{Generated, produce};

#[derive(Args, Clone)]
pub struct GenArgs {
    /// Change events to generate (tombstones not counted).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// The most orders alive at once.
    #[arg(long, default_value_t = 500_000)]
    pub live_keys: u64,
    /// Percentages of orders' inserts, updates and deletes.
    #[arg(long, default_value = "60,30,10")]
    pub mix: Mix,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Interleave the changes of a `customers` table (ids 1..=--users: inserted first, then
    /// country moves, deletes and returns; about one event in ten once all were inserted).
    #[arg(long)]
    pub customers: bool,
    /// Orders' `user_id`s, and the customers' ids, are 1..=USERS.
    #[arg(long, default_value_t = 100_000)]
    pub users: u32,
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
    /// `envelope`: one bare Debezium envelope per line (what Flink's `debezium-json` reads),
    /// one file per table: with `--customers`, the customers' go to `<--output>.customers`.
    #[arg(long, value_enum, default_value_t = Shape::Kafka)]
    pub shape: Shape,
    /// The connector's topic prefix: records go to `<prefix>.public.<table>`.
    #[arg(long, default_value = "bench")]
    pub prefix: String,
    /// Where to write; `-` is stdout.
    #[arg(long, short, default_value = "-")]
    pub output: PathBuf,
    /// Kafka brokers: `gen` produces the records into `<prefix>.public.<table>` there (made
    /// if missing) instead of writing them; `bench` runs its job through them.
    #[arg(long, conflicts_with = "output")]
    pub kafka: Option<String>,
    /// `gen --kafka`: partitions of the topics it makes. Records go where Kafka's default
    /// partitioner puts their key, so one key's changes keep their order and keys of
    /// different partitions interleave as the consumer reads them.
    #[arg(long, default_value_t = 1, requires = "kafka", value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
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
            users: self.users,
            customers: self.customers,
        }
    }
}

pub fn generate(args: GenArgs) -> Result<()> {
    if let Some(brokers) = &args.kafka {
        return produce_into(brokers, &args);
    }
    let mut lines = Lines::new(&args);
    let tables = lines.generator.tables();
    // Bare envelopes do not say their table: each table's go to a file of their own.
    let split = args.shape == Shape::Envelope && tables.len() > 1;
    if split && args.output.as_os_str() == "-" {
        bail!("--shape envelope --customers writes a file per table: give --output FILE");
    }
    let mut outputs = vec![create(&args.output)?];
    if split {
        outputs.push(create(&customers_path(&args.output))?);
    }
    let mut events = vec![0u64; tables.len()];
    let mut buffer = Vec::new();
    for _ in 0..args.events {
        buffer.clear();
        let table = lines.append_next(&mut buffer) as usize;
        events[table] += 1;
        outputs[if split { table } else { 0 }].write_all(&buffer)?;
    }
    for output in &mut outputs {
        output.flush()?;
    }
    let counts: Vec<String> = tables
        .iter()
        .map(|&table| {
            format!(
                "{} of {} ({} rows alive at the end)",
                events[table as usize],
                lines.generator.topic(table),
                lines.generator.live_rows(table)
            )
        })
        .collect();
    eprintln!("eddy: {} events: {}", args.events, counts.join(", "));
    Ok(())
}

/// Where `--shape envelope --customers` writes the customers' envelopes.
pub fn customers_path(output: &Path) -> PathBuf {
    let mut path = output.as_os_str().to_owned();
    path.push(".customers");
    path.into()
}

/// `path` (`-` is stdout), buffered.
fn create(path: &Path) -> Result<BufWriter<Box<dyn Write>>> {
    let out: Box<dyn Write> = if path.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(File::create(path).with_context(|| format!("creating {}", path.display()))?)
    };
    Ok(BufWriter::with_capacity(1 << 20, out))
}

/// Produces the changelog (with tombstones) into its topics.
fn produce_into(brokers: &str, args: &GenArgs) -> Result<()> {
    let events = Generated::new(args.options(), args.events);
    let topics: Vec<&str> = events.topics.iter().map(String::as_str).collect();
    eddy_kafka::admin::ensure_topics_blocking(brokers, &topics, args.partitions)?;
    let sent: Vec<AtomicU64> = (0..events.records.len())
        .map(|_| AtomicU64::new(0))
        .collect();
    produce(brokers, &events, None, &sent, Instant::now())?;
    eprintln!(
        "eddy: {} events ({} records) produced into {}",
        args.events,
        events.records.len(),
        topics.join(" and ")
    );
    Ok(())
}

/// The changelog as input lines of one [`Shape`].
pub struct Lines {
    generator: Generator,
    shape: Shape,
    /// By [`Table`].
    topics: Vec<String>,
    key: String,
    value: String,
}

impl Lines {
    pub fn new(args: &GenArgs) -> Self {
        let generator = Generator::new(args.options());
        Self {
            topics: [Table::Orders, Table::Customers]
                .map(|table| generator.topic(table))
                .into(),
            generator,
            shape: args.shape,
            key: String::new(),
            value: String::new(),
        }
    }

    /// Appends the next event's lines, each ending in a newline: two for a delete in the
    /// Kafka shape (the event and its tombstone), else one; says whose table they are.
    pub fn append_next(&mut self, out: &mut Vec<u8>) -> Table {
        let change = self.generator.next_into(&mut self.key, &mut self.value);
        let (topic, key, value) = (&self.topics[change.table as usize], &self.key, &self.value);
        // Writing into a Vec cannot fail.
        let _ = match self.shape {
            Shape::Envelope => writeln!(out, "{value}"),
            Shape::Kafka if change.op == Op::Delete => writeln!(
                out,
                "{{\"topic\":\"{topic}\",\"key\":{key},\"value\":{value}}}\n\
                 {{\"topic\":\"{topic}\",\"key\":{key},\"value\":null}}"
            ),
            Shape::Kafka => writeln!(
                out,
                "{{\"topic\":\"{topic}\",\"key\":{key},\"value\":{value}}}"
            ),
        };
        change.table
    }
}
