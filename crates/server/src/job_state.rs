//! A job's state as of its last checkpoint, read from the checkpoint file (the running job
//! keeps its own in its thread): the query's current result rows as the engine computes
//! them from that state ([`Pipeline::result`]), kept until the job has a newer checkpoint,
//! so pages of results read the file once per checkpoint.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use eddy_engine::{Encoder, Format, JobSpec, Pipeline};
use eddy_kafka::checkpoint::{Checkpoint, CheckpointStore};
use parking_lot::Mutex;
use serde_json::value::RawValue;

use crate::error::{Error, Result};

/// The query's result rows at one checkpoint.
#[derive(Debug)]
pub struct ResultTable {
    /// When the checkpoint was taken (milliseconds since the Unix epoch); `None`: the job
    /// has none yet, and the rows are the result over no records.
    pub as_of_ms: Option<u64>,
    /// The result's columns, in order.
    pub columns: Vec<String>,
    /// Each row as a JSON object keyed by column name (values spelled as the `upsert`
    /// output spells them), ordered by the result's key.
    pub rows: Vec<Box<RawValue>>,
}

/// What was read of one job's checkpoint.
struct Loaded {
    /// The checkpoint's time (0 for none).
    taken_at_ms: u64,
    result: Arc<ResultTable>,
}

/// The jobs' checkpointed states, read when asked for and kept per checkpoint.
#[derive(Default)]
pub struct JobStates {
    loaded: Mutex<HashMap<String, Loaded>>,
}

impl JobStates {
    /// The job's result rows as of its last checkpoint; a job without one shows the result
    /// of `spec` over no records. `checkpoint_ms` is the checkpoint the job last reported
    /// (its metrics), which says whether what was read before is still current.
    pub fn result(
        &self,
        id: &str,
        dir: &Path,
        spec: &JobSpec,
        checkpoint_ms: Option<u64>,
    ) -> Result<Arc<ResultTable>> {
        let mut loaded = self.loaded.lock();
        let cached = (loaded.get(id))
            .filter(|s| is_current(s, checkpoint_ms))
            .map(|s| Arc::clone(&s.result));
        if let Some(result) = cached {
            return Ok(result);
        }
        let engine = |e: eddy_engine::Error| Error::State(format!("job `{id}`: {e}"));
        let checkpoint = read(id, dir)?;
        let pipeline = match &checkpoint {
            Some(checkpoint) => Pipeline::restore(&checkpoint.snapshot).map_err(engine)?,
            None => Pipeline::new(spec.clone()).map_err(engine)?,
        };
        let encoder = Encoder::new(
            Format::Upsert,
            pipeline.key_fields(),
            pipeline.value_fields(),
        );
        let rows = (pipeline.result().map_err(engine)?.iter())
            .map(|row| RawValue::from_string(encoder.row(row)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::State(format!("job `{id}`: a row is not JSON: {e}")))?;
        let taken_at_ms = checkpoint.as_ref().map_or(0, |c| c.meta.taken_at_ms);
        let result = Arc::new(ResultTable {
            as_of_ms: (taken_at_ms > 0).then_some(taken_at_ms),
            columns: (pipeline.value_fields().iter())
                .map(|f| f.name().clone())
                .collect(),
            rows,
        });
        let state = Loaded {
            taken_at_ms,
            result: Arc::clone(&result),
        };
        loaded.insert(id.to_string(), state);
        Ok(result)
    }

    /// Drops what was read of a deleted job.
    pub fn forget(&self, id: &str) {
        self.loaded.lock().remove(id);
    }
}

/// Whether what was read is the checkpoint the job last reported, or newer. Finding no
/// checkpoint is never kept: looking again costs a missing file, and one may have been
/// written since (a job reports its checkpoint only once it has opened it).
fn is_current(state: &Loaded, checkpoint_ms: Option<u64>) -> bool {
    state.taken_at_ms > 0 && state.taken_at_ms >= checkpoint_ms.unwrap_or(0)
}

fn read(id: &str, dir: &Path) -> Result<Option<Checkpoint>> {
    (CheckpointStore::new(dir).load()).map_err(|e| Error::State(format!("job `{id}`: {e}")))
}
