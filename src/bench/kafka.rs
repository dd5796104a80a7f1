//! `eddy bench --kafka`: produce, consume, aggregate, publish, through a real broker.
//!
//! The changelog is produced into a fresh topic while a job (the same [`Job`] `eddy serve`
//! runs) reads it and publishes results, and a consumer reads those results. Every result
//! carries the input offsets its batch ended at ([`SOURCE_END_HEADER`]), so each event's
//! latency is the time from its production to the arrival of the first result that covers
//! it. At a fixed `--rate` production and processing overlap; without one everything is
//! produced first and the job's drain rate is measured, beside a bare consumer reading the
//! same topic with the same fetch settings, which is the most the broker can give.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use eddy_engine::Format;
use eddy_kafka::{Job, JobConfig, JobMetrics, SOURCE_END_HEADER, admin};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use super::usage::Usage;
use super::{BenchArgs, report};
use crate::produce::{Generated, produce};

/// Fetch settings of both the job and the bare consumer (the job's are in `eddy-kafka`).
const FETCH: [(&str, &str); 3] = [
    ("fetch.min.bytes", "65536"),
    ("fetch.wait.max.ms", "50"),
    ("max.partition.fetch.bytes", "4194304"),
];

/// How long the job is given to start before events are produced at a fixed rate.
const JOB_START: Duration = Duration::from_secs(2);

/// How long the results may take to cover every event once production is done.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Serialize)]
struct ThroughBroker {
    query: String,
    brokers: String,
    /// Records produced (events, plus the tombstones after deletes).
    records: u64,
    offered_rate: Option<u64>,
    /// Records per second from the first production to the last record covered.
    records_per_second: f64,
    /// Without `--rate`: a bare consumer's records per second over the same topic.
    bare_consumer_per_second: Option<f64>,
    /// This process's CPU (job, producer and result consumer) over the run.
    cpu_seconds: f64,
    peak_rss_bytes: u64,
    latency_ms: Latency,
    /// With `--rate`: the broker alone at the same rate and for as many events (produce →
    /// bare consumer).
    broker_latency_ms: Option<Latency>,
}

#[derive(Debug, Serialize)]
struct Latency {
    p50: f64,
    p99: f64,
    max: f64,
}

pub fn bench(args: &BenchArgs, brokers: &str, name: &str, sql: &str) -> Result<()> {
    let prefix = format!("eddybench{}", std::process::id());
    let mut generate = args.generate.clone();
    if generate.customers {
        // Latency is matched to results by offset, which takes a single input topic.
        bail!("through a broker the changelog is of orders only: q4 runs in-process");
    }
    generate.prefix = prefix.clone();
    let input = format!("{prefix}.public.orders");
    let output = format!("{prefix}.results");
    let dlq = format!("{prefix}.dlq");
    admin::ensure_topics_blocking(brokers, &[&input, &output, &dlq], 1)?;

    let spec = args.job.spec(Some(eddy_workload::SCHEMA), Some(sql))?;
    let checkpoints = tempfile::tempdir()?;
    let mut config = JobConfig::new(
        brokers,
        &format!("{prefix}-job"),
        spec,
        checkpoints.path().into(),
    );
    config.input_topics = vec![input.clone()];
    config.output_topic = output.clone();
    config.dead_letter_topic = dlq;
    config.format = Format::Upsert;
    config.batch_max = args.job.batch_size;
    config.decode_threads = args.job.threads.into();
    config.linger = Duration::from_millis(5);

    let events = Generated::new(generate.options(), generate.events);
    let records = events.records.len();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..records).map(|_| AtomicU64::new(0)).collect());
    let clock = Instant::now();
    let start = Usage::now()?;
    if args.rate.is_none() {
        produce(brokers, &events, None, &sent, clock)?;
    }
    // With everything produced first, the job's own drain rate is what is timed.
    let job_started = clock.elapsed().as_nanos() as u64;
    let stop = Arc::new(AtomicBool::new(false));
    let job = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || -> Result<()> {
            let mut job = Job::open(config, Arc::new(JobMetrics::new()))?;
            Ok(job.run(&stop)?)
        })
    };
    let results = ResultReader::new(brokers, &output)?;
    if args.rate.is_some() {
        // Latency is the running job's, not its start-up's: let it connect and fetch first.
        thread::sleep(JOB_START);
    }
    let producer = args.rate.map(|rate| {
        let (brokers, sent) = (brokers.to_string(), Arc::clone(&sent));
        thread::spawn(move || produce(&brokers, &events, Some(rate), &sent, clock))
    });
    let covered = results.cover(&sent, clock, result_reach);
    stop.store(true, Ordering::Relaxed);
    if let Some(producer) = producer {
        producer
            .join()
            .map_err(|_| anyhow::anyhow!("producer panicked"))??;
    }
    job.join().map_err(|_| anyhow::anyhow!("job panicked"))??;
    let (latencies, last) = covered?;
    let end = Usage::now()?;
    let first = match args.rate {
        Some(_) => sent.first().map_or(0, |t| t.load(Ordering::Relaxed)),
        None => job_started,
    };
    let seconds = last.saturating_sub(first) as f64 / 1e9;
    let (bare, broker) = match args.rate {
        Some(rate) => {
            let floor = format!("{prefix}.floor");
            admin::ensure_topics_blocking(brokers, &[&floor], 1)?;
            // As many events as the job's run: tansu's in-memory topics slow as they grow.
            let mut sample = Generated::new(generate.options(), generate.events);
            sample.topics = vec![floor];
            (None, Some(broker_latency(brokers, &sample, rate, clock)?))
        }
        None => (Some(bare_consumer(brokers, &input, records)?), None),
    };
    let result = ThroughBroker {
        query: name.to_string(),
        brokers: brokers.to_string(),
        records: records as u64,
        offered_rate: args.rate,
        records_per_second: records as f64 / seconds.max(1e-9),
        bare_consumer_per_second: bare,
        cpu_seconds: end.cpu_seconds - start.cpu_seconds,
        peak_rss_bytes: end.peak_rss_bytes,
        latency_ms: percentiles(latencies),
        broker_latency_ms: broker,
    };
    eprintln!(
        "eddy bench {} via {}: {} records, {:.0} records/s{}{}, latency p50 {:.1} ms p99 {:.1} ms{}, peak RSS {:.1} MB",
        result.query,
        result.brokers,
        result.records,
        result.records_per_second,
        result
            .offered_rate
            .map_or(String::new(), |r| format!(" at {r}/s offered")),
        result
            .bare_consumer_per_second
            .map_or(String::new(), |b| format!(
                " ({:.0}% of a bare consumer's {b:.0}/s)",
                100.0 * result.records_per_second / b
            )),
        result.latency_ms.p50,
        result.latency_ms.p99,
        result
            .broker_latency_ms
            .as_ref()
            .map_or(String::new(), |b| format!(
                " (the broker alone: p50 {:.1} ms p99 {:.1} ms)",
                b.p50, b.p99
            )),
        result.peak_rss_bytes as f64 / 1e6,
    );
    report(&result, args.json.as_deref())
}

/// Reads the job's results as they arrive.
struct ResultReader {
    consumer: BaseConsumer,
}

impl ResultReader {
    fn new(brokers: &str, topic: &str) -> Result<Self> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("{topic}-reader"))
            .set("enable.auto.commit", "false")
            // Results are small and their arrival time is the measurement: no waiting.
            .set("fetch.wait.max.ms", "1")
            .create()?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(topic, 0, Offset::Beginning)?;
        consumer.assign(&assignment)?;
        Ok(Self { consumer })
    }

    /// Reads until the messages cover every record; `reach` says up to which record (its
    /// index, exclusive) a message covers. Returns each record's latency (nanoseconds) and
    /// when the last was covered (nanoseconds since `clock`).
    fn cover(
        &self,
        sent: &[AtomicU64],
        clock: Instant,
        reach: impl Fn(&BorrowedMessage<'_>) -> Result<usize>,
    ) -> Result<(Vec<u64>, u64)> {
        let mut latencies = Vec::with_capacity(sent.len());
        let mut covered = 0usize;
        let mut last = 0u64;
        let mut idle_since = Instant::now();
        while covered < sent.len() {
            let Some(message) = self.consumer.poll(Duration::from_millis(100)) else {
                if idle_since.elapsed() > DRAIN_TIMEOUT {
                    bail!(
                        "covered {covered} of {} records, then nothing came for {} s",
                        sent.len(),
                        DRAIN_TIMEOUT.as_secs()
                    );
                }
                continue;
            };
            let arrived = clock.elapsed().as_nanos() as u64;
            idle_since = Instant::now();
            let reached = reach(&message?)?.min(sent.len());
            for sent_at in &sent[covered.min(reached)..reached] {
                latencies.push(arrived.saturating_sub(sent_at.load(Ordering::Relaxed)));
            }
            if reached > covered {
                covered = reached;
                last = arrived;
            }
        }
        Ok((latencies, last))
    }
}

/// The records a result covers: those before its batch's end offsets.
fn result_reach(message: &BorrowedMessage<'_>) -> Result<usize> {
    let end = message
        .headers()
        .and_then(|headers| {
            headers
                .iter()
                .find(|h| h.key == SOURCE_END_HEADER)
                .and_then(|h| h.value)
        })
        .context("a result without its source offsets")?;
    let end: eddy_kafka::Offsets = serde_json::from_slice(end)?;
    let reached = end
        .values()
        .flat_map(|partitions| partitions.values())
        .copied()
        .max()
        .unwrap_or(0);
    Ok(reached.max(0) as usize)
}

/// The broker's own latency at `rate`: records produced into their topic and read back by a
/// bare consumer, with no job between; what Eddy's two hops through it cannot beat.
fn broker_latency(brokers: &str, events: &Generated, rate: u64, clock: Instant) -> Result<Latency> {
    let sent: Vec<AtomicU64> = (0..events.records.len())
        .map(|_| AtomicU64::new(0))
        .collect();
    let reader = ResultReader::new(brokers, &events.topics[0])?;
    let (latencies, _) = thread::scope(|scope| {
        let producer = scope.spawn(|| produce(brokers, events, Some(rate), &sent, clock));
        let covered = reader.cover(&sent, clock, |m| Ok(m.offset() as usize + 1));
        producer
            .join()
            .map_err(|_| anyhow::anyhow!("producer panicked"))??;
        covered
    })?;
    Ok(percentiles(latencies))
}

/// Records per second a bare consumer reads from the whole topic.
fn bare_consumer(brokers: &str, topic: &str, records: usize) -> Result<f64> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}-bare"))
        .set("enable.auto.commit", "false");
    for (key, value) in FETCH {
        config.set(key, value);
    }
    let consumer: BaseConsumer = config.create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let mut read = 0usize;
    let mut started = None;
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while read < records {
        if Instant::now() > deadline {
            bail!("the bare consumer read {read} of {records} records");
        }
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            message?;
            started.get_or_insert_with(Instant::now);
            read += 1;
        }
    }
    let seconds = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    Ok(read as f64 / seconds.max(1e-9))
}

fn percentiles(mut nanos: Vec<u64>) -> Latency {
    nanos.sort_unstable();
    let at = |q: f64| {
        let i = ((nanos.len() as f64 * q) as usize).min(nanos.len().saturating_sub(1));
        nanos.get(i).map_or(0.0, |&n| n as f64 / 1e6)
    };
    Latency {
        p50: at(0.50),
        p99: at(0.99),
        max: at(1.0),
    }
}
