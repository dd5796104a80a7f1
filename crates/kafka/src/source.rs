//! The job's consumer: input topics in micro-batches, from offsets the job chooses.
//!
//! Partitions are assigned explicitly rather than through group rebalancing: a job is the
//! only reader of its group, and where it resumes must be its checkpoint's offsets, never
//! the group's committed ones (those may be ahead of a checkpoint that was lost with the
//! data directory). Offsets are still committed to the group, after each checkpoint, so
//! that the usual Kafka tools show the job's lag.
//!
//! Resuming mid-log is checked, not trusted. A fetch from an offset inside a stored record
//! batch must return that batch (the client drops the records before the offset); tansu 0.6
//! returns the *next* batch instead, which would silently skip records. So after a seek, the
//! first record of each partition must be the one asked for: records before it are dropped,
//! and a record past it makes the consumer seek further back and try again.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::config;
use crate::error::Result;

/// Topic → partition → the next offset to read.
pub type Offsets = BTreeMap<String, BTreeMap<i32, i64>>;

/// How often topics that do not exist yet are looked for again.
const MISSING_TOPIC_RETRY: Duration = Duration::from_secs(1);
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Source {
    consumer: BaseConsumer,
    /// Topics whose partitions are not assigned yet, because the topic does not exist.
    missing: Vec<String>,
    last_lookup: Instant,
    positions: Offsets,
    /// Partitions sought to an offset whose record has not arrived yet.
    resuming: HashMap<(String, i32), Resume>,
}

/// A seek in progress: the offset wanted, and how far before it the next try starts.
#[derive(Debug, Clone, Copy)]
struct Resume {
    target: i64,
    step: i64,
}

/// The first step back when a broker answers a seek with later records.
const FIRST_STEP_BACK: i64 = 1024;

impl Source {
    /// A consumer in `group` over `topics`, starting at `start` where it has an offset and
    /// at the beginning of every other partition.
    pub fn new(brokers: &str, group: &str, topics: &[String], start: &Offsets) -> Result<Self> {
        let consumer: BaseConsumer = config::client(brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            // Without these, a broker such as tansu serves ~40k messages/s; with them ~100k.
            .set("fetch.min.bytes", "65536")
            .set("fetch.wait.max.ms", "50")
            .set("max.partition.fetch.bytes", "4194304")
            .create()?;
        let mut source = Source {
            consumer,
            missing: topics.to_vec(),
            last_lookup: Instant::now(),
            positions: start.clone(),
            resuming: HashMap::new(),
        };
        source.assign_found()?;
        Ok(source)
    }

    /// Looks for the topics still missing and, if any appeared, assigns their partitions
    /// together with the ones already read.
    fn assign_found(&mut self) -> Result<()> {
        self.last_lookup = Instant::now();
        let mut found = false;
        let mut still_missing = Vec::new();
        for topic in std::mem::take(&mut self.missing) {
            let partitions = self.partitions_of(&topic)?;
            if partitions.is_empty() {
                still_missing.push(topic);
                continue;
            }
            let known = self.positions.entry(topic).or_default();
            for partition in partitions {
                known.entry(partition).or_insert(-1);
            }
            found = true;
        }
        self.missing = still_missing;
        if found {
            let mut list = TopicPartitionList::new();
            for (topic, partitions) in &self.positions {
                for (&partition, &next) in partitions {
                    let offset = if next < 0 {
                        Offset::Beginning
                    } else {
                        let resume = Resume {
                            target: next,
                            step: FIRST_STEP_BACK,
                        };
                        self.resuming.insert((topic.clone(), partition), resume);
                        Offset::Offset(next)
                    };
                    list.add_partition_offset(topic, partition, offset)?;
                }
            }
            self.consumer.assign(&list)?;
        }
        Ok(())
    }

    fn partitions_of(&self, topic: &str) -> Result<Vec<i32>> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect())
    }

    /// Topics the job reads that do not exist yet.
    pub fn missing_topics(&self) -> &[String] {
        &self.missing
    }

    /// Up to `max` messages, waiting at most `linger` for them. The positions advance past
    /// every message returned.
    pub fn poll_batch(&mut self, max: usize, linger: Duration) -> Result<Vec<BorrowedMessage<'_>>> {
        if !self.missing.is_empty() && self.last_lookup.elapsed() >= MISSING_TOPIC_RETRY {
            self.assign_found()?;
        }
        let deadline = Instant::now() + linger;
        let mut batch = Vec::new();
        while batch.len() < max {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.consumer.poll(left) {
                None => break,
                Some(Ok(message)) => {
                    if !self.resuming.is_empty()
                        && !arrived(&self.consumer, &mut self.resuming, &message)?
                    {
                        continue;
                    }
                    let next = message.offset() + 1;
                    self.positions
                        .entry(message.topic().to_string())
                        .or_default()
                        .insert(message.partition(), next);
                    batch.push(message);
                }
                Some(Err(KafkaError::MessageConsumption(
                    RDKafkaErrorCode::UnknownTopicOrPartition
                    | RDKafkaErrorCode::UnknownTopic
                    | RDKafkaErrorCode::PartitionEOF,
                ))) => {}
                Some(Err(e)) => return Err(e.into()),
            }
        }
        Ok(batch)
    }

    /// The next offset to read per partition: what a checkpoint taken now covers.
    pub fn positions(&self) -> &Offsets {
        &self.positions
    }

    /// Records `offsets` as the group's committed offsets.
    pub fn commit(&self, offsets: &Offsets) -> Result<()> {
        let mut list = TopicPartitionList::new();
        for (topic, partitions) in offsets {
            for (&partition, &next) in partitions {
                if next >= 0 {
                    list.add_partition_offset(topic, partition, Offset::Offset(next))?;
                }
            }
        }
        if list.count() > 0 {
            self.consumer.commit(&list, CommitMode::Sync)?;
        }
        Ok(())
    }

    /// Messages in the input topics not read yet, summed over partitions. Some brokers
    /// (tansu 0.6) report a high watermark behind the last offset; such a partition counts 0.
    pub fn lag(&self) -> Result<i64> {
        let mut lag = 0;
        for (topic, partitions) in &self.positions {
            for (&partition, &next) in partitions {
                let (low, high) =
                    self.consumer
                        .fetch_watermarks(topic, partition, METADATA_TIMEOUT)?;
                tracing::debug!(topic, partition, low, high, next, "watermarks");
                lag += (high - next.max(low)).max(0);
            }
        }
        Ok(lag)
    }
}

/// Whether a record may be used, given the seeks in progress (see the module docs): records
/// before a seek's offset are dropped; a record past it, when the seek has not yet been
/// answered, means the broker skipped ahead, and the partition is sought further back.
fn arrived(
    consumer: &BaseConsumer,
    resuming: &mut HashMap<(String, i32), Resume>,
    message: &BorrowedMessage<'_>,
) -> Result<bool> {
    let key = (message.topic().to_string(), message.partition());
    let Some(resume) = resuming.get_mut(&key) else {
        return Ok(true);
    };
    let offset = message.offset();
    if offset < resume.target {
        return Ok(false);
    }
    if offset == resume.target || resume.step == 0 {
        // Found, or already read from the start: a later first record is a true gap.
        resuming.remove(&key);
        return Ok(true);
    }
    let from = (resume.target - resume.step).max(0);
    resume.step = if from == 0 { 0 } else { resume.step * 4 };
    tracing::debug!(topic = %key.0, partition = key.1, wanted = resume.target, got = offset, from, "broker skipped ahead; seeking back");
    consumer.seek(&key.0, key.1, Offset::Offset(from), METADATA_TIMEOUT)?;
    Ok(false)
}
