//! A running job: input topics → engine → output topic, with periodic checkpoints.
//!
//! Each step reads one micro-batch, applies it to the engine as one batch and publishes the
//! net result changes. A checkpoint first waits until everything published is acknowledged,
//! then saves the engine snapshot with the offsets after the batch, and only then commits
//! those offsets to the group. A crash anywhere in between resumes from the previous
//! checkpoint and reads the same records again; their result changes are republished under
//! the same keys, so the topic's last value per key is what an uninterrupted run leaves.
//!
//! That holds only if the replay applies the same batches. Results are net changes per
//! batch: had the first run published a key's value after batch A, and a replay merged A
//! with a later batch that undid it, the replay would publish nothing for that key and the
//! topic would keep the first run's stale value. So each batch's end is logged
//! ([`BatchLog`]) before its results are published, and a restarted job first reads exactly
//! those batches again; it takes no checkpoint until that replay is done.
//!
//! A batch that fails the job is remembered, so that one whose failure recurs is searched for
//! the record causing it, which is then skipped ([`crate::poison`]); refused records are
//! dead-lettered ([`crate::dead_letter`]) and never stop the job.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eddy_engine::normalize::TableOrder;
use eddy_engine::{BatchDecoder, Encoder, Format, JobSpec, Pipeline};
use parking_lot::Mutex;
use serde::Serialize;

use crate::admin;
use crate::apply::{Applier, Failed};
use crate::checkpoint::{BatchLog, Checkpoint, CheckpointMeta, CheckpointStore};
use crate::dead_letter;
use crate::error::Result;
use crate::poison::{self, FailureLog, Failures};
use crate::sink::Sink;
use crate::source::{Offsets, Source, covers};
use crate::timings::{JobTimings, TimingsSnapshot};

/// Everything a job needs to run.
#[derive(Debug, Clone)]
pub struct JobConfig {
    pub brokers: String,
    /// The consumer group, one per job.
    pub group: String,
    /// The Debezium topics of the tables the query reads.
    pub input_topics: Vec<String>,
    pub output_topic: String,
    /// Where records the engine refuses go, with the reason in an `eddy.error` header.
    pub dead_letter_topic: String,
    pub format: Format,
    pub spec: JobSpec,
    /// A micro-batch ends at this many records...
    pub batch_max: usize,
    /// ...or this long after it started, whichever comes first.
    pub linger: Duration,
    pub checkpoint_interval: Duration,
    /// The directory holding this job's checkpoint.
    pub checkpoint_dir: PathBuf,
    /// How much of a refused record's key, and of its value, its dead letter carries.
    pub dead_letter_max_bytes: usize,
    /// How many times a batch may fail the job before the record causing it is searched
    /// for and skipped.
    pub poison_attempts: u32,
    /// Threads a batch's records are decoded on (in contiguous runs, one thread per 256
    /// records at most, the batch then applied as one): the same batch, so the same results,
    /// whatever the number.
    pub decode_threads: usize,
}

/// Two: decoding is most of a job's work per record, and most machines have two cores.
pub const DEFAULT_DECODE_THREADS: usize = 2;

impl JobConfig {
    /// A configuration with the usual batch and checkpoint settings.
    pub fn new(brokers: &str, group: &str, spec: JobSpec, checkpoint_dir: PathBuf) -> Self {
        JobConfig {
            brokers: brokers.to_string(),
            group: group.to_string(),
            input_topics: Vec::new(),
            output_topic: String::new(),
            dead_letter_topic: String::new(),
            format: Format::Debezium,
            spec,
            batch_max: 10_000,
            linger: Duration::from_millis(100),
            checkpoint_interval: Duration::from_secs(5),
            checkpoint_dir,
            dead_letter_max_bytes: dead_letter::DEFAULT_MAX_BYTES,
            poison_attempts: poison::DEFAULT_ATTEMPTS,
            decode_threads: DEFAULT_DECODE_THREADS,
        }
    }
}

/// Live counters of a job, readable while it runs.
#[derive(Debug, Default)]
pub struct JobMetrics {
    pub(crate) records_in: AtomicU64,
    pub(crate) records_out: AtomicU64,
    pub(crate) dead_letters: AtomicU64,
    /// Dead letters their topic refused.
    pub(crate) dead_letter_failures: AtomicU64,
    /// Records skipped because they failed the job on every try.
    pub(crate) poison_pills: AtomicU64,
    /// Messages not read yet in the input topics; -1 until first measured.
    lag: AtomicI64,
    lag_by_partition: Mutex<Offsets>,
    lag_measured_ms: AtomicU64,
    last_checkpoint_ms: AtomicU64,
    /// Bytes of the last checkpoint's engine snapshot; 0 until there is one.
    state_bytes: AtomicU64,
    checkpoint_offsets: Mutex<Offsets>,
    waiting_for: Mutex<Vec<String>>,
    ordering: Mutex<Vec<TableOrder>>,
    timings: JobTimings,
}

/// A copy of [`JobMetrics`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSnapshot {
    pub records_in: u64,
    pub records_out: u64,
    /// Records sent to the dead-letter topic (poison pills included).
    pub dead_letters: u64,
    /// Dead letters the dead-letter topic refused; those records are skipped.
    pub dead_letter_failures: u64,
    /// Records skipped because they failed the job on every try.
    pub poison_pills: u64,
    pub lag: Option<i64>,
    /// `lag` per input topic and partition.
    pub lag_by_partition: Offsets,
    /// When `lag` was measured (milliseconds since the Unix epoch).
    pub lag_measured_ms: Option<u64>,
    /// Milliseconds since the Unix epoch.
    pub last_checkpoint_ms: Option<u64>,
    /// Bytes of the engine state (kept rows and operator state, serialized) in the last
    /// checkpoint, once there is one.
    pub state_bytes: Option<u64>,
    /// The next offset to read per input partition, as of the last checkpoint.
    pub checkpoint_offsets: Offsets,
    /// Input topics that do not exist yet.
    pub waiting_for_topics: Vec<String>,
    /// Per source table, whether its changes are ordered by their source positions or, where
    /// those cannot be compared, as they arrive (exact only over one-partition topics).
    pub ordering: Vec<TableOrder>,
}

impl JobMetrics {
    pub fn new() -> Self {
        JobMetrics {
            lag: AtomicI64::new(-1),
            ..Default::default()
        }
    }

    /// How long the job's batches and checkpoints took, since it was opened.
    pub fn timings(&self) -> TimingsSnapshot {
        self.timings.snapshot()
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let lag = self.lag.load(Ordering::Relaxed);
        let checkpoint = self.last_checkpoint_ms.load(Ordering::Relaxed);
        MetricsSnapshot {
            records_in: self.records_in.load(Ordering::Relaxed),
            records_out: self.records_out.load(Ordering::Relaxed),
            dead_letters: self.dead_letters.load(Ordering::Relaxed),
            dead_letter_failures: self.dead_letter_failures.load(Ordering::Relaxed),
            poison_pills: self.poison_pills.load(Ordering::Relaxed),
            lag: (lag >= 0).then_some(lag),
            lag_by_partition: self.lag_by_partition.lock().clone(),
            lag_measured_ms: Some(self.lag_measured_ms.load(Ordering::Relaxed)).filter(|&t| t > 0),
            last_checkpoint_ms: (checkpoint > 0).then_some(checkpoint),
            state_bytes: Some(self.state_bytes.load(Ordering::Relaxed)).filter(|&b| b > 0),
            checkpoint_offsets: self.checkpoint_offsets.lock().clone(),
            waiting_for_topics: self.waiting_for.lock().clone(),
            ordering: self.ordering.lock().clone(),
        }
    }
}

pub struct Job {
    config: JobConfig,
    pipeline: Pipeline,
    /// The decoders of [`JobConfig::decode_threads`], between batches all empty.
    decoders: Vec<BatchDecoder>,
    encoder: Encoder,
    source: Source,
    sink: Sink,
    store: CheckpointStore,
    batches: BatchLog,
    failure_log: FailureLog,
    /// The batches that failed since the last checkpoint.
    failures: Failures,
    /// Ends of the batches the previous run applied after its last checkpoint, to replay.
    replay: VecDeque<Offsets>,
    metrics: Arc<JobMetrics>,
    /// Records read since the last checkpoint.
    unsaved: u64,
    last_checkpoint: Instant,
}

impl Job {
    /// Restores the job's last checkpoint (or starts empty), makes sure its output and
    /// dead-letter topics exist, and positions the consumer where the checkpoint ends.
    pub fn open(config: JobConfig, metrics: Arc<JobMetrics>) -> Result<Job> {
        let store = CheckpointStore::new(&config.checkpoint_dir);
        let (pipeline, meta) = match store.load()? {
            Some(checkpoint) => {
                let bytes = checkpoint.snapshot.len() as u64;
                metrics.state_bytes.store(bytes, Ordering::Relaxed);
                (Pipeline::restore(&checkpoint.snapshot)?, checkpoint.meta)
            }
            None => (
                Pipeline::new(config.spec.clone())?,
                CheckpointMeta::default(),
            ),
        };
        tracing::info!(
            group = %config.group,
            records_in = meta.records_in,
            offsets = ?meta.offsets,
            "job opened at its last checkpoint"
        );
        // The counters as of the checkpoint: what is replayed after it is counted again.
        let counters = [
            (&metrics.records_in, meta.records_in),
            (&metrics.records_out, meta.records_out),
            (&metrics.dead_letters, meta.dead_letters),
            (&metrics.dead_letter_failures, meta.dead_letter_failures),
            (&metrics.poison_pills, meta.poison_pills),
        ];
        for (counter, value) in counters {
            counter.store(value, Ordering::Relaxed);
        }
        metrics
            .last_checkpoint_ms
            .store(meta.taken_at_ms, Ordering::Relaxed);
        *metrics.checkpoint_offsets.lock() = meta.offsets.clone();
        *metrics.ordering.lock() = pipeline.ordering();
        admin::ensure_topics_blocking(
            &config.brokers,
            &[&config.output_topic, &config.dead_letter_topic],
            1,
        )?;
        let failure_log = FailureLog::new(&config.checkpoint_dir);
        let failures = failure_log.read()?;
        let batches = BatchLog::new(&config.checkpoint_dir);
        let replay: VecDeque<Offsets> = batches
            .read()?
            .into_iter()
            .filter(|end| !covers(&meta.offsets, end))
            .collect();
        let source = Source::new(
            &config.brokers,
            &config.group,
            &config.input_topics,
            &meta.offsets,
            // A batch waits no longer than its linger, so neither should a fetch.
            config.linger.min(MAX_FETCH_WAIT),
        )?;
        *metrics.waiting_for.lock() = source.missing_topics().to_vec();
        let encoder = Encoder::new(
            config.format,
            pipeline.key_fields(),
            pipeline.value_fields(),
        );
        let decoders = (0..config.decode_threads.max(1))
            .map(|_| pipeline.decoder())
            .collect();
        let sink = Sink::new(
            &config.brokers,
            &config.dead_letter_topic,
            Arc::clone(&metrics),
        )?;
        Ok(Job {
            config,
            pipeline,
            decoders,
            encoder,
            source,
            sink,
            store,
            batches,
            failure_log,
            failures,
            replay,
            metrics,
            unsaved: 0,
            last_checkpoint: Instant::now(),
        })
    }

    /// Runs until `stop` is set, then checkpoints. An error leaves the last checkpoint as
    /// the place to resume from.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<()> {
        while !stop.load(Ordering::Relaxed) {
            self.step()?;
            if self.last_checkpoint.elapsed() >= self.config.checkpoint_interval {
                self.checkpoint()?;
            }
        }
        self.checkpoint()
    }

    /// Reads, applies and publishes one micro-batch; returns how many records it held.
    /// A batch of at least one record is timed ([`JobMetrics::timings`]).
    pub fn step(&mut self) -> Result<usize> {
        let started = Instant::now();
        let records = self.step_batch()?;
        if records > 0 {
            self.metrics.timings.batch(started.elapsed());
        }
        Ok(records)
    }

    fn step_batch(&mut self) -> Result<usize> {
        let config = &self.config;
        let (batch, replayed) = match self.replay.front().cloned() {
            Some(end) => {
                let (batch, reached) = self.source.poll_until(&end, REPLAY_TIMEOUT)?;
                if reached {
                    self.replay.pop_front();
                } else {
                    // The logged batches cannot be read again (the records are gone): what
                    // follows is a new history, logged afresh.
                    tracing::warn!(group = %config.group, "replay did not reach a logged batch end; going on without");
                    self.replay.clear();
                    self.batches.clear()?;
                }
                (batch, reached)
            }
            None => (
                self.source.poll_batch(config.batch_max, config.linger)?,
                false,
            ),
        };
        if batch.messages.is_empty() {
            return Ok(0);
        }
        if !replayed {
            self.batches.append(&batch.end)?;
        }
        let plan = self.failures.plan(&batch.end, config.poison_attempts);
        let mut applier = Applier {
            config,
            pipeline: &mut self.pipeline,
            decoders: &mut self.decoders,
            encoder: &self.encoder,
            sink: &self.sink,
            metrics: &self.metrics,
        };
        let failure = self.failures.of(&batch.end);
        match applier.apply(&batch.messages, &batch.end, plan, failure) {
            Ok(records) => {
                self.unsaved += records as u64;
                *self.metrics.ordering.lock() = self.pipeline.ordering();
                Ok(records)
            }
            Err(Failed { error, culprit }) => {
                let text = error.to_string();
                let text = dead_letter::truncate_text(&text, dead_letter::MAX_REASON_BYTES);
                let failure = self.failures.record(&batch.end, text.to_string(), culprit);
                tracing::error!(
                    group = %config.group,
                    attempt = failure.attempts,
                    attempts_allowed = config.poison_attempts,
                    culprits = ?failure.culprits,
                    error = text,
                    "batch failed the job; after the attempts allowed it is applied record by record and a record that fails alone is skipped"
                );
                self.failure_log.write(&self.failures)?;
                Err(error)
            }
        }
    }

    /// Makes everything applied so far durable: results acknowledged, then the snapshot
    /// and offsets saved, then the offsets committed to the group.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.last_checkpoint = Instant::now();
        if self.unsaved > 0 && self.replay.is_empty() {
            let started = Instant::now();
            self.save()?;
            self.metrics.timings.checkpoint(started.elapsed());
        }
        // Measured after the save: a lag of 0 then means every result is acknowledged.
        *self.metrics.waiting_for.lock() = self.source.missing_topics().to_vec();
        if let Ok(lag) = self.source.lag() {
            let total = lag
                .values()
                .flat_map(|partitions| partitions.values())
                .sum();
            self.metrics.lag.store(total, Ordering::Relaxed);
            *self.metrics.lag_by_partition.lock() = lag;
            self.metrics
                .lag_measured_ms
                .store(now_ms(), Ordering::Relaxed);
        }
        Ok(())
    }

    fn save(&mut self) -> Result<()> {
        self.sink.confirm()?;
        let taken_at_ms = now_ms();
        let checkpoint = Checkpoint {
            meta: CheckpointMeta {
                offsets: self.source.positions().clone(),
                taken_at_ms,
                records_in: self.metrics.records_in.load(Ordering::Relaxed),
                records_out: self.metrics.records_out.load(Ordering::Relaxed),
                dead_letters: self.metrics.dead_letters.load(Ordering::Relaxed),
                dead_letter_failures: self.metrics.dead_letter_failures.load(Ordering::Relaxed),
                poison_pills: self.metrics.poison_pills.load(Ordering::Relaxed),
            },
            snapshot: self.pipeline.snapshot()?,
        };
        self.store.save(&checkpoint)?;
        (self.metrics.state_bytes).store(checkpoint.snapshot.len() as u64, Ordering::Relaxed);
        self.batches.clear()?;
        if !self.failures.is_empty() {
            self.failures = Failures::default();
            self.failure_log.clear()?;
        }
        self.unsaved = 0;
        self.metrics
            .last_checkpoint_ms
            .store(taken_at_ms, Ordering::Relaxed);
        *self.metrics.checkpoint_offsets.lock() = checkpoint.meta.offsets.clone();
        if let Err(e) = self.source.commit(&checkpoint.meta.offsets) {
            // The checkpoint, not the group, decides where the job resumes.
            tracing::warn!(group = %self.config.group, error = %e, "offset commit failed");
        }
        Ok(())
    }
}

/// The longest a fetch waits for data.
const MAX_FETCH_WAIT: Duration = Duration::from_millis(50);

/// The header every result carries: the input offsets (next to read, per topic and
/// partition, as JSON) after the batch it came from.
pub const SOURCE_END_HEADER: &str = "eddy.source.end";

/// How long a replayed batch may take to arrive before the replay is given up.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
