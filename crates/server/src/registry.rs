//! Job definitions on disk, so a restarted server resumes every job.
//!
//! Each job has a directory `<data-dir>/jobs/<id>/` holding `job.json` (its definition) and
//! its checkpoint. A definition is written once, atomically, and then only its desired
//! state changes. Connection strings are not stored: Kafka Connect holds the connector,
//! and the registry only the connector's name.

use std::fs;
use std::path::{Path, PathBuf};

use eddy_engine::{Format, JobSpec};
use serde::{Deserialize, Serialize};

use crate::durable::{self, Readable};
use crate::error::{Error, Result};

/// What the operator asked a job to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Desired {
    Running,
    Paused,
    Canceled,
}

/// A job as created; everything needed to run it again after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDefinition {
    pub id: String,
    pub name: String,
    pub environment_id: String,
    /// The connection string with its password replaced.
    pub connection: String,
    pub connector: String,
    /// Whether the service registered the connector with Kafka Connect.
    pub managed_connector: bool,
    pub spec: JobSpec,
    pub format: Format,
    pub input_topics: Vec<String>,
    pub output_topic: String,
    pub dead_letter_topic: String,
    pub desired: Desired,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: u64,
}

#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
}

impl Registry {
    /// A registry under `data_dir`, created if missing.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let root = data_dir.join("jobs");
        fs::create_dir_all(&root).map_err(|e| io(&root, e))?;
        Ok(Registry { root })
    }

    /// The directory of one job, where its checkpoint also lives.
    pub fn job_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Every stored definition, oldest first.
    pub fn load_all(&self) -> Result<Vec<JobDefinition>> {
        let mut jobs = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(|e| io(&self.root, e))? {
            let path = entry
                .map_err(|e| io(&self.root, e))?
                .path()
                .join("job.json");
            let text = match fs::read_to_string(&path) {
                Ok(text) => text,
                // A directory without a definition is a job whose creation did not finish.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&path, e)),
            };
            let job: JobDefinition = serde_json::from_str(&text)
                .map_err(|e| Error::Registry(format!("{}: {e}", path.display())))?;
            jobs.push(job);
        }
        jobs.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        Ok(jobs)
    }

    /// Writes a definition atomically and durably: a new file, synced, renamed over the old,
    /// and the directory synced, as checkpoints are written.
    pub fn save(&self, job: &JobDefinition) -> Result<()> {
        let dir = self.job_dir(&job.id);
        fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let path = dir.join("job.json");
        let text = serde_json::to_vec_pretty(job).expect("a definition is plain data");
        durable::write(&path, &text, Readable::Default).map_err(|e| io(&path, e))?;
        sync_dir(&self.root)
    }

    /// Removes a job's definition and checkpoint, durably: a deleted job stays deleted
    /// across a restart.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.job_dir(id);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&dir, e)),
            _ => sync_dir(&self.root),
        }
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    durable::sync_dir(dir).map_err(|e| io(dir, e))
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Registry(format!("{}: {e}", path.display()))
}
