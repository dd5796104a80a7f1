//! Eddy's own PostgreSQL connectors, one per environment, run in this process: preflight
//! before anything is created, then snapshot and streaming into the change topics, retried
//! with backoff while the status says why it stopped.
//!
//! A connector must log in again after a restart, so its definition is kept in
//! `<data-dir>/connectors/<name>.json` (readable by the service's user only), with the
//! connection string, password included, sealed by a key kept outside the data directory
//! ([`crate::sealed`]). Nothing else stores, logs or answers the password. A connector that failed for good (it needs a new
//! snapshot) is kept `FAILED` there too, so a restart shows the reason instead of
//! streaming on past the loss.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eddy_kafka::change_topics::ChangeTopics;
use eddy_postgres::PgConfig;
use eddy_postgres::connector::{self, Settings, State, Status};
use eddy_postgres::preflight::{self, Report, Target};
use eddy_postgres::values::Modes;
use parking_lot::Mutex as Lock;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::wire::external::ConnectorStatusSchema;

use crate::durable::{self, Readable};
use crate::error::{Error, Result};
use crate::sealed::SecretKey;

/// A running connector.
struct Running {
    status: Arc<Mutex<Status>>,
    /// `None` for a connector that failed for good before this process started.
    task: Option<tokio::task::JoinHandle<()>>,
    postgres: PgConfig,
    slot: String,
    lag: Arc<SlotLag>,
}

/// How long a slot's lag, once read, answers every view that asks.
const LAG_FRESH: Duration = Duration::from_secs(1);

/// A slot's lag, read from the database at most once per [`LAG_FRESH`] however many views
/// ask at once: a burst of status requests opens one database session, not one each.
#[derive(Default)]
struct SlotLag(tokio::sync::Mutex<Option<(Instant, Option<i64>)>>);

impl SlotLag {
    async fn read(&self, postgres: &PgConfig, slot: &str) -> Option<i64> {
        let mut last = self.0.lock().await;
        if let Some((at, lag)) = *last
            && at.elapsed() < LAG_FRESH
        {
            return lag;
        }
        let lag = connector::slot_lag(postgres, slot).await.ok().flatten();
        *last = Some((Instant::now(), lag));
        lag
    }
}

/// What the API shows of a connector: never the password.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PgConnectorView {
    pub name: String,
    /// The connection string with its password replaced.
    pub connection: String,
    /// The replication slot (and publication) it reads.
    pub slot: String,
    /// WAL the slot keeps that the connector has not confirmed, in bytes; `null` when the
    /// database cannot be asked.
    pub slot_lag_bytes: Option<i64>,
    #[serde(flatten)]
    #[schema(value_type = ConnectorStatusSchema)]
    pub status: Status,
}

/// The environment's connectors, by connector name.
#[derive(Default)]
pub struct PgConnectors {
    running: Lock<HashMap<String, Running>>,
    /// Where definitions are kept, and the key their connection strings are sealed with;
    /// `None`: in memory only.
    store: Option<(PathBuf, Arc<SecretKey>)>,
}

/// A connector as kept on disk.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    name: String,
    environment: String,
    /// The connection string with its password replaced, for whoever reads the file.
    connection: String,
    /// The whole connection string, sealed with the secret key ([`SecretKey`]).
    sealed_connection_string: String,
    /// Why the connector failed for good, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failed: Option<String>,
}

/// How long a failed connector waits before it starts again, at most.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl PgConnectors {
    /// Connectors whose definitions are kept under `data_dir`, their connection strings
    /// sealed with `key`.
    pub fn stored_in(data_dir: &Path, key: SecretKey) -> Result<Self> {
        let store = data_dir.join("connectors");
        std::fs::create_dir_all(&store)
            .map_err(|e| Error::Registry(format!("{}: {e}", store.display())))?;
        Ok(PgConnectors {
            running: Lock::default(),
            store: Some((store, Arc::new(key))),
        })
    }

    /// Starts every stored connector again; returns how many.
    pub fn resume_all(&self, brokers: &str) -> Result<usize> {
        let Some((store, key)) = &self.store else {
            return Ok(0);
        };
        let entries = std::fs::read_dir(store)
            .map_err(|e| Error::Registry(format!("{}: {e}", store.display())))?;
        let mut resumed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let stored = read_stored(&path)?;
            let connection_string = key
                .open(&stored.sealed_connection_string)
                .map_err(|e| Error::Registry(format!("{}: {e}", path.display())))?;
            let postgres = PgConfig::parse(&connection_string)
                .map_err(|e| Error::Registry(format!("{}: {e}", path.display())))?;
            match stored.failed {
                Some(reason) => {
                    self.keep_failed(&stored.name, &postgres, &stored.environment, reason)
                }
                None => {
                    self.start(&stored.name, &postgres, &stored.environment, brokers);
                    resumed += 1;
                }
            }
        }
        Ok(resumed)
    }

    fn save(&self, name: &str, postgres: &PgConfig, environment: &str) -> Result<()> {
        let Some((store, key)) = &self.store else {
            return Ok(());
        };
        let stored = Stored {
            name: name.to_string(),
            environment: environment.to_string(),
            connection: postgres.redacted(),
            sealed_connection_string: key.seal(&postgres.to_key_values()),
            failed: None,
        };
        write_stored(&store.join(format!("{name}.json")), &stored)
    }

    /// Shows a connector that failed for good before a restart, without starting it.
    fn keep_failed(&self, name: &str, postgres: &PgConfig, environment: &str, reason: String) {
        let status = Status {
            state: State::Failed,
            error: Some(reason),
            ..Status::default()
        };
        self.running.lock().insert(
            name.to_string(),
            Running {
                status: Arc::new(Mutex::new(status)),
                task: None,
                postgres: postgres.clone(),
                slot: connector::replication_name(environment),
                lag: Arc::default(),
            },
        );
    }

    /// Runs the preflight checks of an environment's connector.
    pub async fn test(postgres: &PgConfig, environment: &str) -> Report {
        let name = connector::replication_name(environment);
        let target = Target {
            slot: &name,
            publication: &name,
            tables: None,
        };
        preflight::run(postgres, &target).await
    }

    /// Starts `name` for `environment` unless it runs already; a failing preflight check
    /// is a 400 naming it, and nothing is created.
    pub async fn ensure(
        &self,
        name: &str,
        postgres: &PgConfig,
        environment: &str,
        brokers: &str,
    ) -> Result<()> {
        if self.running.lock().contains_key(name) {
            return Ok(());
        }
        let report = Self::test(postgres, environment).await;
        if let Some(check) = report.failure() {
            return Err(Error::invalid(
                "connectionString",
                format!("preflight check `{}` failed: {}", check.name, check.reason),
            ));
        }
        for warning in report.warnings() {
            tracing::warn!(connector = name, check = %warning.name, "{}", warning.reason);
        }
        self.save(name, postgres, environment)?;
        self.start(name, postgres, environment, brokers);
        Ok(())
    }

    fn start(&self, name: &str, postgres: &PgConfig, environment: &str, brokers: &str) {
        let mut running = self.running.lock();
        if running.contains_key(name) {
            // Another request started it meanwhile.
            return;
        }
        let status = Arc::new(Mutex::new(Status::default()));
        let settings = Settings {
            postgres: postgres.clone(),
            environment: environment.to_string(),
            modes: Modes::default(),
            temporary_slot: false,
        };
        let record = self
            .store
            .as_ref()
            .map(|(store, _)| store.join(format!("{name}.json")));
        let task = tokio::spawn(supervise(
            name.to_string(),
            settings,
            brokers.to_string(),
            Arc::clone(&status),
            record,
        ));
        running.insert(
            name.to_string(),
            Running {
                status,
                task: Some(task),
                postgres: postgres.clone(),
                slot: connector::replication_name(environment),
                lag: Arc::default(),
            },
        );
    }

    /// The connector's view, with its slot's lag read from the database, if it runs here.
    pub async fn view(&self, name: &str) -> Option<PgConnectorView> {
        let (postgres, slot, status, lag) = {
            let running = self.running.lock();
            let connector = running.get(name)?;
            let status = connector
                .status
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let lag = Arc::clone(&connector.lag);
            (
                connector.postgres.clone(),
                connector.slot.clone(),
                status,
                lag,
            )
        };
        let slot_lag_bytes = lag.read(&postgres, &slot).await;
        Some(PgConnectorView {
            name: name.to_string(),
            connection: postgres.redacted(),
            slot,
            slot_lag_bytes,
            status,
        })
    }

    /// The connection of a connector running here, for its metadata endpoints.
    pub fn postgres(&self, name: &str) -> Option<PgConfig> {
        self.running.lock().get(name).map(|c| c.postgres.clone())
    }

    /// The names of the connectors running here.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.running.lock().keys().cloned().collect();
        names.sort();
        names
    }

    /// Stops the connector and drops its slot and publication.
    pub async fn delete(&self, name: &str) -> Result<bool> {
        let Some(connector) = self.running.lock().remove(name) else {
            return Ok(false);
        };
        if let Some(task) = &connector.task {
            task.abort();
        }
        if let Some((store, _)) = &self.store {
            let path = store.join(format!("{name}.json"));
            std::fs::remove_file(&path)
                .map_err(|e| Error::Registry(format!("{}: {e}", path.display())))?;
        }
        connector::drop_replication(&connector.postgres, &connector.slot)
            .await
            .map_err(|e| Error::Conflict(format!("connector `{name}` stopped, but {e}")))?;
        Ok(true)
    }
}

/// Runs a connector until it is aborted, starting it again after each failure that a
/// restart can mend; one that needs a new snapshot leaves it `FAILED` with the reason,
/// recorded in its stored definition (`record`) so that a restart keeps it so.
async fn supervise(
    name: String,
    settings: Settings,
    brokers: String,
    status: Arc<Mutex<Status>>,
    record: Option<PathBuf>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let outcome = match ChangeTopics::new(&brokers) {
            Ok(mut sink) => connector::run(settings.clone(), &mut sink, Arc::clone(&status)).await,
            Err(e) => Err(eddy_postgres::Error::Sink(e.to_string())),
        };
        if let Err(e) = outcome {
            {
                let mut status = status.lock().unwrap_or_else(|p| p.into_inner());
                status.state = State::Failed;
                status.error = Some(e.to_string());
            }
            if e.is_permanent() {
                tracing::error!(connector = %name, error = %e, "connector failed for good");
                if let Some(path) = &record
                    && let Err(failure) = record_failure(path, &e.to_string())
                {
                    tracing::error!(connector = %name, error = %failure, "cannot record the failure");
                }
                return;
            }
            tracing::error!(connector = %name, error = %e, "connector failed; starting again");
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Marks a stored connector as failed for good, with the reason.
fn record_failure(path: &Path, reason: &str) -> Result<()> {
    let mut stored = read_stored(path)?;
    stored.failed = Some(reason.to_string());
    write_stored(path, &stored)
}

fn read_stored(path: &Path) -> Result<Stored> {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| Error::Registry(format!("{} is not a connector", path.display())))
}

fn write_stored(path: &Path, stored: &Stored) -> Result<()> {
    let bytes = serde_json::to_vec(stored).expect("a connector serializes");
    durable::write(path, &bytes, Readable::OwnerOnly)
        .map_err(|e| Error::Registry(format!("{}: {e}", path.display())))
}
