//! Job supervision: one thread per running job, restarted with backoff when it fails.
//!
//! A job's thread opens the job (restoring its checkpoint) and runs it until asked to stop;
//! stopping lets the current batch finish and checkpoints. When a job fails, the thread
//! reports the error, waits (1 s, doubling up to a minute) and opens the job again from its
//! last checkpoint, so a broker outage heals by itself and a persistent problem stays
//! visible as `FAILED` with its reason.
//!
//! Each start, restart, failure, pause, resume and cancel goes into the job's history
//! ([`Runs`]); the thread runs inside a `job` tracing span naming the job, which is how
//! its log lines find it ([`crate::job_logs`]).

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
use crate::job_logs;
use crate::job_state::{JobStates, ResultTable};
use crate::registry::{Desired, JobDefinition, Registry};
use crate::runs::{RunEvent, RunEventKind, Runs};

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
    /// Threads decoding each job's large batches (see [`JobConfig::decode_threads`]).
    pub decode_threads: usize,
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
            decode_threads: eddy_kafka::DEFAULT_DECODE_THREADS,
        }
    }
}

/// A job's state as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
    pub timings: eddy_kafka::timings::TimingsSnapshot,
}

struct Entry {
    definition: JobDefinition,
    runtime: Arc<Runtime>,
    runs: Arc<Runs>,
}

/// One job in the supervisor's map.
struct Slot {
    /// Held for the whole of a control operation (pause, resume, cancel, delete), which
    /// stops a thread and writes the registry: racing requests for one job take turns, so
    /// that two resumes cannot start two copies and nothing is saved after a delete.
    turn: Mutex<()>,
    /// Locked only briefly, so that reading a job never waits for a control operation.
    entry: Mutex<Entry>,
}

/// Runs and controls every job, and keeps the registry on disk equal to what the API last
/// answered.
pub struct Supervisor {
    settings: Settings,
    registry: Registry,
    jobs: Mutex<BTreeMap<String, Arc<Slot>>>,
    states: JobStates,
}

impl Supervisor {
    pub fn new(settings: Settings) -> Result<Self> {
        let registry = Registry::open(&settings.data_dir)?;
        Ok(Supervisor {
            settings,
            registry,
            jobs: Mutex::new(BTreeMap::new()),
            states: JobStates::default(),
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
        Ok(self.install(definition))
    }

    fn install(&self, definition: JobDefinition) -> JobView {
        let state = match definition.desired {
            Desired::Running => JobState::Created,
            Desired::Paused => JobState::Paused,
            Desired::Canceled => JobState::Canceled,
        };
        let runtime = Runtime::new(state);
        let runs = Arc::new(Runs::open(&self.registry.job_dir(&definition.id)));
        if definition.desired == Desired::Running {
            self.spawn(&definition, &runtime, &runs);
        }
        let id = definition.id.clone();
        let entry = Entry {
            definition,
            runtime,
            runs,
        };
        let shown = view(&entry);
        let slot = Slot {
            turn: Mutex::new(()),
            entry: Mutex::new(entry),
        };
        self.jobs.lock().insert(id, Arc::new(slot));
        shown
    }

    fn spawn(&self, definition: &JobDefinition, runtime: &Arc<Runtime>, runs: &Arc<Runs>) {
        let config = self.job_config(definition);
        let worker = Arc::clone(runtime);
        let runs = Arc::clone(runs);
        let span = tracing::info_span!(parent: None, "job", job = %definition.id);
        let thread = std::thread::Builder::new()
            .name(format!(
                "job-{}",
                &definition.id[..8.min(definition.id.len())]
            ))
            .spawn(move || span.in_scope(|| supervise(config, &worker, &runs)))
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
            decode_threads: settings.decode_threads,
        }
    }

    pub fn get(&self, id: &str) -> Option<JobView> {
        let slot = self.jobs.lock().get(id).cloned()?;
        Some(view(&slot.entry.lock()))
    }

    /// A job's history, oldest first; `None` for an unknown job.
    pub fn runs(&self, id: &str) -> Option<Vec<RunEvent>> {
        let slot = self.jobs.lock().get(id).cloned()?;
        let runs = Arc::clone(&slot.entry.lock().runs);
        Some(runs.events())
    }

    /// The job's result rows as of its last checkpoint (see [`JobStates::result`]).
    pub fn result(&self, job: &JobView) -> Result<Arc<ResultTable>> {
        let (id, spec) = (&job.definition.id, &job.definition.spec);
        let checkpoint = job.metrics.last_checkpoint_ms;
        (self.states).result(id, &self.registry.job_dir(id), spec, checkpoint)
    }

    pub fn list(&self) -> Vec<JobView> {
        let slots: Vec<Arc<Slot>> = self.jobs.lock().values().cloned().collect();
        slots.iter().map(|s| view(&s.entry.lock())).collect()
    }

    /// Runs `control` on a job's slot in the job's turn, once the slot is known to be still
    /// in the map (a delete may have taken the turn first).
    fn in_turn<T>(&self, id: &str, control: impl FnOnce(&Slot) -> Result<T>) -> Result<T> {
        let not_found = || Error::NotFound(format!("job `{id}`"));
        let slot = self.jobs.lock().get(id).cloned().ok_or_else(not_found)?;
        let _turn = slot.turn.lock();
        let current = self
            .jobs
            .lock()
            .get(id)
            .is_some_and(|s| Arc::ptr_eq(s, &slot));
        if !current {
            return Err(not_found());
        }
        control(&slot)
    }

    /// Records the new desired state, then stops the job (it checkpoints first) and starts
    /// it again if it is to run. Blocks until the job's thread has finished. Racing calls for
    /// one job take turns; a failure to save leaves the job as it was.
    pub fn set_desired(&self, id: &str, desired: Desired) -> Result<JobView> {
        self.in_turn(id, |slot| self.apply_desired(id, slot, desired))
    }

    fn apply_desired(&self, id: &str, slot: &Slot, desired: Desired) -> Result<JobView> {
        let (mut definition, runtime, runs) = {
            let entry = slot.entry.lock();
            let definition = entry.definition.clone();
            (
                definition,
                Arc::clone(&entry.runtime),
                Arc::clone(&entry.runs),
            )
        };
        if definition.desired == Desired::Canceled && desired != Desired::Canceled {
            return Err(Error::Conflict(format!("job `{id}` is canceled")));
        }
        definition.desired = desired;
        self.registry.save(&definition)?;
        slot.entry.lock().definition = definition.clone();
        runtime.stop();
        let records_in = runtime.metrics.snapshot().records_in;
        match desired {
            Desired::Running => {
                runs.record(RunEventKind::Resumed, records_in, None);
                let fresh = Runtime::new(JobState::Created);
                self.spawn(&definition, &fresh, &runs);
                slot.entry.lock().runtime = fresh;
            }
            Desired::Paused => {
                runtime.set(JobState::Paused, None);
                runs.record(RunEventKind::Paused, records_in, None);
            }
            Desired::Canceled => {
                runtime.set(JobState::Canceled, None);
                runs.record(RunEventKind::Canceled, records_in, None);
            }
        }
        Ok(view(&slot.entry.lock()))
    }

    /// Stops a job and forgets it, checkpoint included.
    pub fn remove(&self, id: &str) -> Result<JobView> {
        self.in_turn(id, |slot| {
            let view = self.apply_desired(id, slot, Desired::Canceled)?;
            self.registry.remove(id)?;
            self.jobs.lock().remove(id);
            self.states.forget(id);
            job_logs::global().forget(id);
            Ok(view)
        })
    }

    /// Stops every job; each finishes its batch and checkpoints.
    pub fn shutdown(&self) {
        let slots: Vec<Arc<Slot>> = self.jobs.lock().values().cloned().collect();
        let runtimes: Vec<_> = slots
            .iter()
            .map(|s| Arc::clone(&s.entry.lock().runtime))
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
        timings: entry.runtime.metrics.timings(),
    }
}

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The body of a job's thread.
fn supervise(config: JobConfig, runtime: &Runtime, runs: &Runs) {
    let mut backoff = FIRST_BACKOFF;
    let mut opened = RunEventKind::Started;
    while !runtime.stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let outcome =
            Job::open(config.clone(), Arc::clone(&runtime.metrics)).and_then(|mut job| {
                runtime.set(JobState::Running, None);
                runs.record(opened, runtime.metrics.snapshot().records_in, None);
                job.run(&runtime.stop)
            });
        let Err(error) = outcome else { return };
        opened = RunEventKind::Restarted;
        if started.elapsed() > MAX_BACKOFF {
            // A failure after a long healthy run is a new incident, not the same one again.
            backoff = FIRST_BACKOFF;
        }
        tracing::error!(group = %config.group, %error, retry_in = ?backoff, "job failed");
        runtime.set(JobState::Failed, Some(error.to_string()));
        runtime.health.lock().restarts += 1;
        let records_in = runtime.metrics.snapshot().records_in;
        runs.record(RunEventKind::Failed, records_in, Some(error.to_string()));
        let until = Instant::now() + backoff;
        while Instant::now() < until && !runtime.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(id: &str) -> JobDefinition {
        JobDefinition {
            id: id.into(),
            name: format!("eddy-env-{id}"),
            environment_id: "env".into(),
            connection: "postgresql://app:***@db/shop".into(),
            connector: "env".into(),
            managed_connector: false,
            spec: eddy_engine::JobSpec {
                schema: "model T {\n  id Int @id\n  @@map(\"t\")\n}".into(),
                sql: "SELECT COUNT(*) FROM t".into(),
                decode: Default::default(),
            },
            format: eddy_engine::Format::Upsert,
            input_topics: vec!["env.public.t".into()],
            output_topic: format!("out-{id}"),
            dead_letter_topic: "env.eddy.dlq".into(),
            desired: Desired::Running,
            created_at_ms: 0,
        }
    }

    /// Pauses, resumes and deletes racing on one job: every answer is a view or a clean
    /// refusal, never a panic; and what a restarted supervisor finds on disk is what the
    /// last answers said.
    #[test]
    fn racing_control_calls_take_turns_and_the_registry_agrees() {
        let data_dir = std::env::temp_dir().join(format!("eddy-sup-{:x}", rand::random::<u64>()));
        // Nothing listens here: the jobs fail and retry, which is enough to start and stop.
        let supervisor =
            Arc::new(Supervisor::new(Settings::new("127.0.0.1:1", data_dir.clone())).unwrap());
        let ids: Vec<String> = (0..4).map(|i| format!("job{i}")).collect();
        for id in &ids {
            supervisor.add(definition(id)).unwrap();
        }
        // Six calls per job, pauses and resumes; jobs 0 and 1 get a delete among them.
        let calls: Vec<_> = (0..24)
            .map(|i| {
                let supervisor = Arc::clone(&supervisor);
                let id = ids[i % ids.len()].clone();
                let round = i / ids.len();
                let delete = i % ids.len() < 2 && round == 3;
                std::thread::spawn(move || match (delete, round % 2) {
                    (true, _) => supervisor.remove(&id),
                    (false, 0) => supervisor.set_desired(&id, Desired::Paused),
                    (false, _) => supervisor.set_desired(&id, Desired::Running),
                })
            })
            .collect();
        for call in calls {
            match call.join().expect("no control call panics") {
                Ok(_) | Err(Error::NotFound(_)) | Err(Error::Conflict(_)) => {}
                Err(other) => panic!("unexpected refusal: {other}"),
            }
        }
        let live: Vec<(String, Desired)> = supervisor
            .list()
            .into_iter()
            .map(|v| (v.definition.id, v.definition.desired))
            .collect();
        let kept: Vec<&str> = live.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(kept, ["job2", "job3"]);
        for slot in supervisor.jobs.lock().values() {
            let entry = slot.entry.lock();
            let running = entry.runtime.thread.lock().is_some();
            assert_eq!(running, entry.definition.desired == Desired::Running);
        }
        supervisor.shutdown();
        let restarted = Supervisor::new(Settings::new("127.0.0.1:1", data_dir.clone())).unwrap();
        assert_eq!(restarted.resume_all().unwrap(), live.len());
        // Each kept job's history, pauses and resumes included, is read back as it was.
        for (id, _) in &live {
            let runs = supervisor.runs(id).unwrap();
            assert!(
                runs.iter().any(|r| r.kind == RunEventKind::Paused),
                "{runs:?}"
            );
            let stored = restarted.runs(id).unwrap();
            assert_eq!(stored[..runs.len()], runs[..]);
        }
        let mut stored: Vec<(String, Desired)> = restarted
            .list()
            .into_iter()
            .map(|v| (v.definition.id, v.definition.desired))
            .collect();
        stored.sort_by(|a, b| a.0.cmp(&b.0));
        let mut expected = live;
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(stored, expected);
        restarted.shutdown();
        std::fs::remove_dir_all(&data_dir).unwrap();
    }
}
