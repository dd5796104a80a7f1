//! A job's history: each start, restart, failure, pause, resume and cancel, with when it
//! happened, how many records the job had read by then and the error, kept in `runs.json`
//! beside the job's definition (written as [`durable`] files are), so a restarted server
//! still shows it. Only the last [`KEPT_RUNS`] events are kept.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::durable::{self, Readable};

/// How many events a job's history keeps; older ones are dropped.
pub const KEPT_RUNS: usize = 100;

const FILE_NAME: &str = "runs.json";

/// What happened to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum RunEventKind {
    /// Its thread opened it (restoring its checkpoint) and it runs.
    Started,
    /// It runs again after a failure.
    Restarted,
    /// It stopped with an error; it is retried with backoff.
    Failed,
    /// Stopped after a checkpoint, as asked.
    Paused,
    /// Asked to run again after a pause or a failure.
    Resumed,
    /// Stopped for good.
    Canceled,
}

/// One event of a job's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunEvent {
    pub kind: RunEventKind,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Records the job had read by then, over its whole life.
    pub records_in: u64,
    /// Why it failed (for `FAILED`).
    pub error: Option<String>,
}

/// A job's history, in memory and on disk.
#[derive(Debug)]
pub struct Runs {
    path: PathBuf,
    events: Mutex<VecDeque<RunEvent>>,
}

impl Runs {
    /// The history stored in `job_dir`, empty when there is none (or it cannot be read: it
    /// is a record, never a reason not to run the job).
    pub fn open(job_dir: &Path) -> Self {
        let path = job_dir.join(FILE_NAME);
        let events = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Runs {
            path,
            events: Mutex::new(events),
        }
    }

    /// Appends an event (dropping the oldest past [`KEPT_RUNS`]) and stores the history. A
    /// failure to store is logged: a job deleted meanwhile has no directory to store it in.
    pub fn record(&self, kind: RunEventKind, records_in: u64, error: Option<String>) {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut events = self.events.lock();
        events.push_back(RunEvent {
            kind,
            at_ms,
            records_in,
            error,
        });
        while events.len() > KEPT_RUNS {
            events.pop_front();
        }
        let bytes = serde_json::to_vec(&*events).expect("events are plain data");
        if let Err(error) = durable::write(&self.path, &bytes, Readable::Default) {
            tracing::warn!(path = %self.path.display(), %error, "job history not stored");
        }
    }

    /// The events, oldest first.
    pub fn events(&self) -> Vec<RunEvent> {
        self.events.lock().iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_is_bounded_and_read_back_from_disk() {
        let dir = std::env::temp_dir().join(format!("eddy-runs-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let runs = Runs::open(&dir);
        assert!(runs.events().is_empty());
        runs.record(RunEventKind::Started, 0, None);
        runs.record(RunEventKind::Failed, 7, Some("broker down".into()));
        for n in 0..KEPT_RUNS as u64 {
            runs.record(RunEventKind::Restarted, 8 + n, None);
        }
        let reopened = Runs::open(&dir).events();
        assert_eq!(reopened.len(), KEPT_RUNS);
        assert_eq!(reopened, runs.events());
        // The start and the failure were the oldest two: dropped.
        assert_eq!(reopened[0].kind, RunEventKind::Restarted);
        assert_eq!(reopened[0].records_in, 8);
        assert_eq!(
            reopened.last().unwrap().records_in,
            8 + KEPT_RUNS as u64 - 1
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
