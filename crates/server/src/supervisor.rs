//! Job supervision: one thread per running job, restarted with backoff when it fails.
//!
//! A job's thread opens the job (restoring its checkpoint) and runs it until asked to stop;
//! stopping lets the current batch finish and checkpoints. When a job fails, the thread
//! reports the error, waits (1 s, doubling up to a minute) and opens the job again from its
//! last checkpoint, so a broker outage heals by itself and a persistent problem stays
//! visible as `FAILED` with its reason.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use eddy_kafka::job::MetricsSnapshot;
use eddy_kafka::{Job, JobConfig, JobMetrics};
use parking_lot::Mutex;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::registry::{Desired, JobDefinition, Registry};

/// How jobs run: where the brokers are, how they batch and checkpoint, and what they do
/// with records that cannot be processed.
#[derive(Debug, Clone)]
pub struct Settings {
    pub brokers: String,
    pub data_dir: PathBuf,
    pub batch_max: usize,
    pub linger: Duration,
    pub checkpoint_interval: Duration,
    /// How much of a refused record's key, and of its value, its dead letter carries.
    pub dead_letter_max_bytes: usize,
    /// How many times a batch may fail a job before the record causing it is skipped.
    pub poison_attempts: u32,
}

impl Settings {
    /// Settings for `brokers` and `data_dir`, the rest at their defaults.
    pub fn new(brokers: &str, data_dir: PathBuf) -> Self {
        Settings {
            brokers: brokers.to_string(),
            data_dir,
            batch_max: 10_000,
            linger: Duration::from_millis(100),
            checkpoint_interval: Duration::from_secs(5),
            dead_letter_max_bytes: eddy_kafka::dead_letter::DEFAULT_MAX_BYTES,
            poison_attempts: eddy_kafka::poison::DEFAULT_ATTEMPTS,
        }
    }
}

/// A job's state as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobState {
    Created,
    Running,
    Paused,
    Failed,
    Canceled,
}

#[derive(Debug)]
struct Health {
    state: JobState,
    error: Option<String>,
    restarts: u32,
}

/// A job's live side: its thread, its stop flag and what it reports.
#[derive(Debug)]
struct Runtime {
    health: Mutex<Health>,
    metrics: Arc<JobMetrics>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Runtime {
    fn new(state: JobState) -> Arc<Self> {
        Arc::new(Runtime {
            health: Mutex::new(Health {
                state,
                error: None,
                restarts: 0,
            }),
            metrics: Arc::new(JobMetrics::new()),
            stop: Arc::new(AtomicBool::new(false)),
            thread: Mutex::new(None),
        })
    }

    fn set(&self, state: JobState, error: Option<String>) {
        let mut health = self.health.lock();
        health.state = state;
        health.error = error;
    }

    /// Asks the thread to stop and waits until it has checkpointed.
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

/// A job's definition and state together, as the API shows them.
#[derive(Debug, Clone)]
pub struct JobView {
    pub definition: JobDefinition,
    pub state: JobState,
    pub error: Option<String>,
    pub restarts: u32,
    pub metrics: MetricsSnapshot,
}

struct Entry {
    definition: JobDefinition,
    runtime: Arc<Runtime>,
}

pub struct Supervisor {
    settings: Settings,
    registry: Registry,
    jobs: Mutex<BTreeMap<String, Entry>>,
}

impl Supervisor {
    pub fn new(settings: Settings) -> Result<Self> {
        let registry = Registry::open(&settings.data_dir)?;
        Ok(Supervisor {
            settings,
            registry,
            jobs: Mutex::new(BTreeMap::new()),
        })
    }

    /// Loads every stored job and starts those that were running.
    pub fn resume_all(&self) -> Result<usize> {
        let definitions = self.registry.load_all()?;
        let count = definitions.len();
        for definition in definitions {
            self.install(definition);
        }
        Ok(count)
    }

    /// Stores a new job and starts it.
    pub fn add(&self, definition: JobDefinition) -> Result<JobView> {
        self.registry.save(&definition)?;
        let id = definition.id.clone();
        self.install(definition);
        Ok(self.get(&id).expect("just installed"))
    }

    fn install(&self, definition: JobDefinition) {
        let state = match definition.desired {
            Desired::Running => JobState::Created,
            Desired::Paused => JobState::Paused,
            Desired::Canceled => JobState::Canceled,
        };
        let runtime = Runtime::new(state);
        if definition.desired == Desired::Running {
            self.spawn(&definition, &runtime);
        }
        self.jobs.lock().insert(
            definition.id.clone(),
            Entry {
                definition,
                runtime,
            },
        );
    }

    fn spawn(&self, definition: &JobDefinition, runtime: &Arc<Runtime>) {
        let config = self.job_config(definition);
        let worker = Arc::clone(runtime);
        let thread = std::thread::Builder::new()
            .name(format!(
                "job-{}",
                &definition.id[..8.min(definition.id.len())]
            ))
            .spawn(move || supervise(config, &worker))
            .expect("the OS can start a thread");
        *runtime.thread.lock() = Some(thread);
    }

    fn job_config(&self, definition: &JobDefinition) -> JobConfig {
        let settings = &self.settings;
        JobConfig {
            brokers: settings.brokers.clone(),
            group: format!("eddy-{}", definition.id),
            input_topics: definition.input_topics.clone(),
            output_topic: definition.output_topic.clone(),
            dead_letter_topic: definition.dead_letter_topic.clone(),
            format: definition.format,
            spec: definition.spec.clone(),
            batch_max: settings.batch_max,
            linger: settings.linger,
            checkpoint_interval: settings.checkpoint_interval,
            checkpoint_dir: self.registry.job_dir(&definition.id),
            dead_letter_max_bytes: settings.dead_letter_max_bytes,
            poison_attempts: settings.poison_attempts,
        }
    }

    pub fn get(&self, id: &str) -> Option<JobView> {
        self.jobs.lock().get(id).map(view)
    }

    pub fn list(&self) -> Vec<JobView> {
        self.jobs.lock().values().map(view).collect()
    }

    /// Stops a job (it checkpoints first) and records the new desired state. Blocks until
    /// the job's thread has finished.
    pub fn set_desired(&self, id: &str, desired: Desired) -> Result<JobView> {
        let (definition, runtime) = {
            let mut jobs = self.jobs.lock();
            let entry = jobs
                .get_mut(id)
                .ok_or_else(|| Error::NotFound(format!("job `{id}`")))?;
            if entry.definition.desired == Desired::Canceled && desired != Desired::Canceled {
                return Err(Error::Conflict(format!("job `{id}` is canceled")));
            }
            entry.definition.desired = desired;
            (entry.definition.clone(), Arc::clone(&entry.runtime))
        };
        runtime.stop();
        self.registry.save(&definition)?;
        match desired {
            Desired::Running => {
                let fresh = Runtime::new(JobState::Created);
                self.spawn(&definition, &fresh);
                if let Some(entry) = self.jobs.lock().get_mut(id) {
                    entry.runtime = fresh;
                }
            }
            Desired::Paused => runtime.set(JobState::Paused, None),
            Desired::Canceled => runtime.set(JobState::Canceled, None),
        }
        Ok(self.get(id).expect("jobs are only removed by remove"))
    }

    /// Stops a job and forgets it, checkpoint included.
    pub fn remove(&self, id: &str) -> Result<JobView> {
        let view = self.set_desired(id, Desired::Canceled)?;
        self.jobs.lock().remove(id);
        self.registry.remove(id)?;
        Ok(view)
    }

    /// Stops every job; each finishes its batch and checkpoints.
    pub fn shutdown(&self) {
        let runtimes: Vec<_> = self
            .jobs
            .lock()
            .values()
            .map(|e| Arc::clone(&e.runtime))
            .collect();
        for runtime in &runtimes {
            runtime.stop.store(true, Ordering::Relaxed);
        }
        for runtime in runtimes {
            runtime.stop();
        }
    }
}

fn view(entry: &Entry) -> JobView {
    let health = entry.runtime.health.lock();
    JobView {
        definition: entry.definition.clone(),
        state: health.state,
        error: health.error.clone(),
        restarts: health.restarts,
        metrics: entry.runtime.metrics.snapshot(),
    }
}

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The body of a job's thread.
fn supervise(config: JobConfig, runtime: &Runtime) {
    let mut backoff = FIRST_BACKOFF;
    while !runtime.stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let outcome =
            Job::open(config.clone(), Arc::clone(&runtime.metrics)).and_then(|mut job| {
                runtime.set(JobState::Running, None);
                job.run(&runtime.stop)
            });
        let Err(error) = outcome else { return };
        if started.elapsed() > MAX_BACKOFF {
            // A failure after a long healthy run is a new incident, not the same one again.
            backoff = FIRST_BACKOFF;
        }
        tracing::error!(group = %config.group, %error, retry_in = ?backoff, "job failed");
        runtime.set(JobState::Failed, Some(error.to_string()));
        runtime.health.lock().restarts += 1;
        let until = Instant::now() + backoff;
        while Instant::now() < until && !runtime.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
