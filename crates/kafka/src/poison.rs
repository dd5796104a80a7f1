//! Poison pills: records that fail the job every time it applies them.
//!
//! A job that fails restarts from its last checkpoint and reads the same records again; a
//! record whose failure recurs (an engine error at flush, a result larger than the producer
//! allows) would fail it again, forever, and every later record would wait behind it.
//!
//! So each failing batch is remembered in the job's directory ([`FailureLog`]), by its end
//! offsets, until a checkpoint covers it: the batch log makes a restarted job read exactly that batch again (see
//! [`crate::job`]), so the same end means the same records. After
//! [`DEFAULT_ATTEMPTS`] failures of the same batch it is applied record by record, each its
//! own engine batch; the record that fails then is the culprit, and it is remembered too. The
//! run that found it has failed with it (the engine may hold part of its batch), so the next
//! one, from the checkpoint again, applies the batch record by record once more and skips the
//! culprit: dead-lettered, counted in `poisonPills`, never half-applied.
//!
//! Record by record in both runs, because a run that found the culprit has already published
//! the results of each record before it, and a replay must batch at least as finely as what
//! it replays (see [`crate::job`]).

use std::fs;
use std::path::{Path, PathBuf};

use rdkafka::message::Message;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::source::Offsets;

/// How many times a batch may fail the job before it is searched for its culprit.
pub const DEFAULT_ATTEMPTS: u32 = 3;

const FILE_NAME: &str = "failures";

/// Where a record is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl Position {
    pub fn of(message: &impl Message) -> Self {
        Position {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
        }
    }

    /// Whether `message` is the record here.
    pub fn is(&self, message: &impl Message) -> bool {
        self.offset == message.offset()
            && self.partition == message.partition()
            && self.topic == message.topic()
    }
}

/// A batch that failed the job, as the next run needs to know it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The batch's end offsets: which batch it is.
    pub end: Offsets,
    /// How many runs it has failed.
    pub attempts: u32,
    /// Its records found to fail on their own, to skip.
    pub culprits: Vec<Position>,
    /// The last error, for the skipped records' dead letters.
    pub error: String,
}

/// How a batch is to be applied.
#[derive(Debug, PartialEq)]
pub enum Plan<'a> {
    /// As one engine batch: the usual way.
    Whole,
    /// One record per engine batch, skipping these.
    OneByOne(&'a [Position]),
}

/// The batches that failed since the last checkpoint. More than one, because a batch whose
/// culprit was skipped is replayed after a later batch fails, and must skip it again.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failures(pub Vec<Failure>);

impl Failures {
    /// How to apply the batch ending at `end`, when `attempts` failures are allowed.
    pub fn plan(&self, end: &Offsets, attempts: u32) -> Plan<'_> {
        match self.0.iter().find(|f| &f.end == end) {
            Some(f) if f.attempts >= attempts => Plan::OneByOne(&f.culprits),
            _ => Plan::Whole,
        }
    }

    /// Counts one more failure of the batch ending at `end`, and the culprit if one was
    /// found; returns what is now known of the batch.
    pub fn record(&mut self, end: &Offsets, error: String, culprit: Option<Position>) -> &Failure {
        let index = match self.0.iter().position(|f| &f.end == end) {
            Some(index) => index,
            None => {
                self.0.push(Failure {
                    end: end.clone(),
                    attempts: 0,
                    culprits: Vec::new(),
                    error: String::new(),
                });
                self.0.len() - 1
            }
        };
        let failure = &mut self.0[index];
        failure.attempts += 1;
        failure.culprits.extend(culprit);
        failure.error = error;
        failure
    }

    /// The failure recorded for the batch ending at `end`.
    pub fn of(&self, end: &Offsets) -> Option<&Failure> {
        self.0.iter().find(|f| &f.end == end)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The job's [`Failures`], in its directory.
#[derive(Debug)]
pub struct FailureLog {
    path: PathBuf,
}

impl FailureLog {
    pub fn new(dir: &Path) -> Self {
        FailureLog {
            path: dir.join(FILE_NAME),
        }
    }

    fn error(&self, detail: impl ToString) -> Error {
        Error::Checkpoint {
            path: self.path.display().to_string(),
            detail: detail.to_string(),
        }
    }

    /// The failures recorded. A damaged file (a crash while writing it) counts as none:
    /// its batches are then only tried more often.
    pub fn read(&self) -> Result<Failures> {
        match fs::read(&self.path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes)
                .inspect_err(|e| {
                    tracing::warn!(path = %self.path.display(), error = %e, "unreadable failure record ignored");
                })
                .unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Failures::default()),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Replaces the record, written beside and renamed over so that it is whole.
    pub fn write(&self, failures: &Failures) -> Result<()> {
        let temporary = self.path.with_extension("tmp");
        let bytes = serde_json::to_vec(failures).expect("failures are plain data");
        fs::write(&temporary, bytes)
            .and_then(|()| fs::rename(&temporary, &self.path))
            .map_err(|e| self.error(e))
    }

    /// Forgets the failures: a checkpoint has gone past them.
    pub fn clear(&self) -> Result<()> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(offset: i64) -> Offsets {
        Offsets::from([("app.public.orders".into(), [(0, offset)].into())])
    }

    #[test]
    fn a_batch_is_searched_only_after_failing_as_often_as_allowed() {
        let culprit = Position {
            topic: "app.public.orders".into(),
            partition: 0,
            offset: 7,
        };
        let mut failures = Failures::default();
        assert_eq!(failures.plan(&end(10), 3), Plan::Whole);
        failures.record(&end(10), "boom".into(), None);
        failures.record(&end(10), "boom".into(), None);
        assert_eq!(failures.plan(&end(10), 3), Plan::Whole);
        assert_eq!(failures.record(&end(10), "boom".into(), None).attempts, 3);
        assert_eq!(failures.plan(&end(11), 3), Plan::Whole);
        assert_eq!(failures.plan(&end(10), 3), Plan::OneByOne(&[]));
        failures.record(&end(10), "bang".into(), Some(culprit.clone()));
        assert_eq!(failures.plan(&end(10), 3), Plan::OneByOne(&[culprit]));
        failures.record(&end(12), "later".into(), None);
        assert_eq!(failures.0.len(), 2);
        assert_eq!(failures.of(&end(10)).unwrap().error, "bang");
    }

    #[test]
    fn failure_log_reads_back_what_it_wrote_until_cleared() {
        let dir = std::env::temp_dir().join(format!("eddy-failures-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let log = FailureLog::new(&dir);
        assert!(log.read().unwrap().is_empty());
        let mut failures = Failures::default();
        failures.record(&end(3), "boom".into(), None);
        log.write(&failures).unwrap();
        assert_eq!(log.read().unwrap(), failures);
        log.clear().unwrap();
        log.clear().unwrap();
        assert!(log.read().unwrap().is_empty());
        fs::write(dir.join(FILE_NAME), b"[{\"end").unwrap();
        assert!(log.read().unwrap().is_empty());
        fs::remove_dir_all(dir).unwrap();
    }
}
