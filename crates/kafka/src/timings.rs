//! How long a job's steps take: batches (read, applied and published) in a latency
//! histogram, and the last checkpoint's duration. Counted since the job was opened.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The upper bounds of the batch latency histogram's buckets, in seconds (Prometheus'
/// `le`); a last bucket, `+Inf`, counts every batch.
pub const BATCH_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Live timings of one job.
#[derive(Debug, Default)]
pub struct JobTimings {
    /// Per bucket of [`BATCH_BUCKETS`], batches that took no longer than its bound.
    buckets: [AtomicU64; BATCH_BUCKETS.len()],
    batches: AtomicU64,
    batch_micros: AtomicU64,
    checkpoints: AtomicU64,
    last_checkpoint_micros: AtomicU64,
}

/// A copy of [`JobTimings`] at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimingsSnapshot {
    /// Cumulative counts, one per bound of [`BATCH_BUCKETS`].
    pub batch_buckets: [u64; BATCH_BUCKETS.len()],
    /// Batches that held at least one record.
    pub batches: u64,
    /// Their latencies summed, in seconds.
    pub batch_seconds: f64,
    /// Checkpoints saved.
    pub checkpoints: u64,
    /// How long the last one took, in seconds, once there was one.
    pub last_checkpoint_seconds: Option<f64>,
}

impl JobTimings {
    /// A batch that took `took`.
    pub fn batch(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        for (bucket, bound) in self.buckets.iter().zip(BATCH_BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.batch_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    /// A checkpoint saved in `took`.
    pub fn checkpoint(&self, took: Duration) {
        self.last_checkpoint_micros
            .store(took.as_micros() as u64, Ordering::Relaxed);
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> TimingsSnapshot {
        let checkpoints = self.checkpoints.load(Ordering::Relaxed);
        let micros = |counter: &AtomicU64| counter.load(Ordering::Relaxed) as f64 / 1e6;
        TimingsSnapshot {
            batch_buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            batches: self.batches.load(Ordering::Relaxed),
            batch_seconds: micros(&self.batch_micros),
            checkpoints,
            last_checkpoint_seconds: (checkpoints > 0)
                .then(|| micros(&self.last_checkpoint_micros)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_counts_in_every_bucket_at_or_above_its_latency() {
        let timings = JobTimings::default();
        timings.batch(Duration::from_millis(30));
        timings.batch(Duration::from_millis(3));
        let snapshot = timings.snapshot();
        assert_eq!(snapshot.batch_buckets, [1, 1, 1, 2, 2, 2, 2, 2, 2, 2]);
        assert_eq!(snapshot.batches, 2);
        assert!((snapshot.batch_seconds - 0.033).abs() < 1e-9);
        assert_eq!(snapshot.last_checkpoint_seconds, None);
        timings.checkpoint(Duration::from_millis(250));
        assert_eq!(timings.snapshot().last_checkpoint_seconds, Some(0.25));
    }
}
