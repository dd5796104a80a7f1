//! Producing a generated changelog into a Kafka topic (`eddy gen --kafka`, `eddy bench`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use eddy_workload::{Generator, Op, Table};
use indicatif::ProgressBar;
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

/// The changelog as Kafka records, generated before anything is timed.
pub struct Generated {
    /// The topics of the changelog's tables, by [`Table`].
    pub topics: Vec<String>,
    /// Table, key and value (`None`: a tombstone).
    pub records: Vec<(Table, String, Option<String>)>,
}

impl Generated {
    pub fn new(options: eddy_workload::Options, events: u64) -> Self {
        let mut generator = Generator::new(options);
        let topics = generator
            .tables()
            .iter()
            .map(|&t| generator.topic(t))
            .collect();
        let mut records = Vec::with_capacity(events as usize * 11 / 10);
        for _ in 0..events {
            let (mut key, mut value) = (String::new(), String::new());
            let change = generator.next_into(&mut key, &mut value);
            let tombstone = (change.op == Op::Delete).then(|| key.clone());
            records.push((change.table, key, Some(value)));
            if let Some(key) = tombstone {
                records.push((change.table, key, None));
            }
        }
        Self { topics, records }
    }
}

/// Produces every record into its table's topic, at `rate` per second if given, noting when
/// each was sent (nanoseconds since `clock`) in `sent`, whose index is the record's offset
/// when there is one topic.
pub fn produce(
    brokers: &str,
    events: &Generated,
    rate: Option<u64>,
    sent: &[AtomicU64],
    clock: Instant,
) -> Result<()> {
    // One request in flight and no retries: records keep the order they are sent in, so
    // the n-th record sent is at offset n.
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", if rate.is_some() { "1" } else { "20" })
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("max.in.flight.requests.per.connection", "1")
        // Kafka's default for keyed records (librdkafka's own default hashes differently).
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "false")
        .set("retries", "0")
        .create()?;
    let progress = ProgressBar::new(events.records.len() as u64);
    let started = Instant::now();
    for (i, (table, key, value)) in events.records.iter().enumerate() {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
        }
        let topic = &events.topics[*table as usize];
        let mut record = BaseRecord::to(topic).key(key.as_str());
        if let Some(value) = value {
            record = record.payload(value.as_str());
        }
        sent[i].store(clock.elapsed().as_nanos() as u64, Ordering::Relaxed);
        while let Err((e, back)) = producer.send(record) {
            if !matches!(
                e,
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull
                )
            ) {
                bail!("producing to {topic}: {e}");
            }
            record = back;
            thread::sleep(Duration::from_millis(1));
        }
        if i % 10_000 == 0 {
            progress.set_position(i as u64);
        }
    }
    producer.flush(Duration::from_secs(120))?;
    progress.finish_and_clear();
    Ok(())
}
