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
//! returns the *next* batch instead (or nothing, inside the last batch), which would silently
//! skip records. So after a seek, the first record used of each partition must be the one
//! asked for: records before it are dropped; a record past it, or silence, makes the
//! consumer seek further back and try again, until records from before the wanted one
//! arrive (then the broker is reading from before it, and it will come).

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

/// A seek in progress.
#[derive(Debug, Clone, Copy)]
struct Resume {
    /// The offset wanted.
    target: i64,
    /// How far before it the next try starts; 0 once a try started at the beginning.
    step: i64,
    sought_at: Instant,
    /// Whether records from before `target` arrived since the last seek.
    confirmed: bool,
}

impl Resume {
    fn new(target: i64) -> Self {
        Resume {
            target,
            step: FIRST_STEP_BACK,
            sought_at: Instant::now(),
            confirmed: false,
        }
    }
}

/// Fetch limits per partition and per request; see [`Source::new`].
const MAX_PARTITION_FETCH_BYTES: usize = 4 << 20;
const MAX_FETCH_BYTES: usize = 64 << 20;
/// The largest fetch response the consumer takes: a fetch's limit plus one oversized batch
/// of up to 448 MiB beyond it.
const MAX_RESPONSE_BYTES: usize = 512 << 20;

/// How long a seek may go unanswered before the consumer seeks further back.
const SILENT_SEEK: Duration = Duration::from_millis(500);
/// How long a count-bounded poll waits for its first message before it answers an empty
/// batch (so that the job's loop sees a stop request this often).
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// Messages read in one poll, and the positions after them.
pub struct Batch<'a> {
    pub messages: Vec<BorrowedMessage<'a>>,
    pub end: Offsets,
}

/// Where a poll stops.
#[derive(Clone, Copy)]
enum Until<'a> {
    /// At `max` messages or after `linger`.
    Count { max: usize, linger: Duration },
    /// When every partition of `boundary` has reached its offset there, or at `deadline`.
    Boundary {
        boundary: &'a Offsets,
        deadline: Instant,
    },
}

/// The first step back when a broker answers a seek with later records.
const FIRST_STEP_BACK: i64 = 1024;

impl Source {
    /// A consumer in `group` over `topics`, starting at `start` where it has an offset and
    /// at the beginning of every other partition.
    /// A source over `topics` from `start`. A fetch waits at most `fetch_wait` for data:
    /// raised settings make a broker such as tansu serve ~100k messages/s instead of ~40k,
    /// but tansu holds every fetch for its whole wait, which is latency a batch pays.
    pub fn new(
        brokers: &str,
        group: &str,
        topics: &[String],
        start: &Offsets,
        fetch_wait: Duration,
    ) -> Result<Self> {
        let consumer: BaseConsumer = config::client(brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.min.bytes", "65536")
            .set(
                "fetch.wait.max.ms",
                fetch_wait.as_millis().max(1).to_string(),
            )
            // A record larger than the fetch limits must be read, not stalled on. Brokers
            // return a partition's first batch whole whatever its size (tansu 0.6 also ends
            // a fetch with one batch past the limit), so the response must fit what the
            // client accepts: that ceiling is set well above the fetch limits.
            .set(
                "max.partition.fetch.bytes",
                MAX_PARTITION_FETCH_BYTES.to_string(),
            )
            .set("fetch.max.bytes", MAX_FETCH_BYTES.to_string())
            .set("receive.message.max.bytes", MAX_RESPONSE_BYTES.to_string())
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
                        self.resuming
                            .insert((topic.clone(), partition), Resume::new(next));
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

    /// Up to `max` messages, waiting at most `linger` after the first of them (and at most
    /// 100 ms for the first). The positions advance past every message returned.
    pub fn poll_batch(&mut self, max: usize, linger: Duration) -> Result<Batch<'_>> {
        self.poll(Until::Count { max, linger })
    }

    /// The messages from the current positions up to `boundary` (the positions after an
    /// earlier batch), so that a replay after a crash applies the same batches as the first
    /// run did. The flag says whether the boundary was reached within `timeout`.
    pub fn poll_until(
        &mut self,
        boundary: &Offsets,
        timeout: Duration,
    ) -> Result<(Batch<'_>, bool)> {
        let deadline = Instant::now() + timeout;
        let batch = self.poll(Until::Boundary { boundary, deadline })?;
        let reached = covers(&batch.end, boundary);
        Ok((batch, reached))
    }

    fn poll(&mut self, until: Until<'_>) -> Result<Batch<'_>> {
        if !self.missing.is_empty() && self.last_lookup.elapsed() >= MISSING_TOPIC_RETRY {
            self.assign_found()?;
        }
        // A count-bounded batch lingers from its first message, not from the call: an idle
        // source waits for that first message in one poll instead of spinning through polls
        // of `linger` each.
        let mut deadline = match until {
            Until::Count { .. } => Instant::now() + IDLE_WAIT,
            Until::Boundary { deadline, .. } => deadline,
        };
        let mut batch = Vec::new();
        loop {
            step_back_silent(&self.consumer, &mut self.resuming)?;
            let left = deadline.saturating_duration_since(Instant::now());
            let done = match until {
                Until::Count { max, .. } => batch.len() >= max,
                Until::Boundary { boundary, .. } => covers(&self.positions, boundary),
            };
            if left.is_zero() || done {
                break;
            }
            match self.consumer.poll(left.min(SILENT_SEEK)) {
                None => continue,
                Some(Ok(message)) => {
                    if !self.resuming.is_empty()
                        && !arrived(&self.consumer, &mut self.resuming, &message)?
                    {
                        continue;
                    }
                    let (topic, partition, offset) =
                        (message.topic(), message.partition(), message.offset());
                    if let Until::Boundary { boundary, .. } = until {
                        let end = boundary.get(topic).and_then(|t| t.get(&partition)).copied();
                        if end.is_none_or(|end| offset >= end) {
                            // Past this batch in its partition: read it again later.
                            self.resuming
                                .insert((topic.to_string(), partition), Resume::new(offset));
                            self.consumer.seek(
                                topic,
                                partition,
                                Offset::Offset(offset),
                                METADATA_TIMEOUT,
                            )?;
                            continue;
                        }
                    }
                    // Looked up before inserting: no topic name allocated per message.
                    match self.positions.get_mut(topic) {
                        Some(partitions) => {
                            partitions.insert(partition, offset + 1);
                        }
                        None => {
                            let partitions = BTreeMap::from([(partition, offset + 1)]);
                            self.positions.insert(topic.to_string(), partitions);
                        }
                    }
                    if let Until::Count { linger, .. } = until
                        && batch.is_empty()
                    {
                        deadline = Instant::now() + linger;
                    }
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
        Ok(Batch {
            messages: batch,
            end: self.positions.clone(),
        })
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

    /// Messages in the input topics not read yet, per topic and partition. Some brokers
    /// (tansu 0.6) report a high watermark behind the last offset; such a partition counts 0.
    pub fn lag(&self) -> Result<Offsets> {
        let mut lag = Offsets::new();
        for (topic, partitions) in &self.positions {
            for (&partition, &next) in partitions {
                let (low, high) =
                    self.consumer
                        .fetch_watermarks(topic, partition, METADATA_TIMEOUT)?;
                tracing::debug!(topic, partition, low, high, next, "watermarks");
                lag.entry(topic.clone())
                    .or_default()
                    .insert(partition, (high - next.max(low)).max(0));
            }
        }
        Ok(lag)
    }
}

/// Whether `positions` are at or past `boundary` in every partition it names.
pub(crate) fn covers(positions: &Offsets, boundary: &Offsets) -> bool {
    boundary.iter().all(|(topic, partitions)| {
        partitions.iter().all(|(partition, &end)| {
            positions
                .get(topic)
                .and_then(|t| t.get(partition))
                .is_some_and(|&next| next >= end)
        })
    })
}

/// Whether a record may be used, given the seeks in progress (see the module docs).
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
        resume.confirmed = true;
        return Ok(false);
    }
    if offset == resume.target || resume.confirmed || resume.step == 0 {
        // Found; or the broker read from before it and skipped none: a true gap.
        resuming.remove(&key);
        return Ok(true);
    }
    seek_back(consumer, &key, resume)?;
    Ok(false)
}

/// Seeks further back for every seek that nothing has answered for a while.
fn step_back_silent(
    consumer: &BaseConsumer,
    resuming: &mut HashMap<(String, i32), Resume>,
) -> Result<()> {
    for (key, resume) in resuming.iter_mut() {
        if !resume.confirmed && resume.step > 0 && resume.sought_at.elapsed() >= SILENT_SEEK {
            seek_back(consumer, key, resume)?;
        }
    }
    Ok(())
}

fn seek_back(
    consumer: &BaseConsumer,
    (topic, partition): &(String, i32),
    resume: &mut Resume,
) -> Result<()> {
    let from = (resume.target - resume.step).max(0);
    resume.step = if from == 0 { 0 } else { resume.step * 4 };
    resume.sought_at = Instant::now();
    tracing::debug!(
        topic,
        partition,
        wanted = resume.target,
        from,
        "seek not answered from the offset wanted; seeking back"
    );
    consumer.seek(topic, *partition, Offset::Offset(from), METADATA_TIMEOUT)?;
    Ok(())
}
