//! Eddy's own PostgreSQL connectors, one per environment, run in this process: preflight
//! before anything is created, then snapshot and streaming into the change topics, retried
//! with backoff while the status says why it stopped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eddy_kafka::change_topics::ChangeTopics;
use eddy_postgres::PgConfig;
use eddy_postgres::connector::{self, Settings, State, Status};
use eddy_postgres::preflight::{self, Outcome, Report, Target};
use eddy_postgres::values::Modes;
use parking_lot::Mutex as Lock;
use serde::Serialize;

use crate::error::{Error, Result};

/// A running connector.
struct Running {
    status: Arc<Mutex<Status>>,
    task: tokio::task::JoinHandle<()>,
    postgres: PgConfig,
    slot: String,
}

/// What the API shows of a connector: never the password.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PgConnectorView {
    pub name: String,
    pub connection: String,
    pub slot: String,
    /// WAL the slot keeps that the connector has not confirmed, in bytes; `None` when the
    /// database cannot be asked.
    pub slot_lag_bytes: Option<i64>,
    #[serde(flatten)]
    pub status: Status,
}

/// The environment's connectors, by connector name.
#[derive(Default)]
pub struct PgConnectors {
    running: Lock<HashMap<String, Running>>,
}

/// How long a failed connector waits before it starts again, at most.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl PgConnectors {
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
        let status = Arc::new(Mutex::new(Status::default()));
        let settings = Settings {
            postgres: postgres.clone(),
            environment: environment.to_string(),
            modes: Modes::default(),
        };
        let task = tokio::spawn(supervise(
            name.to_string(),
            settings,
            brokers.to_string(),
            Arc::clone(&status),
        ));
        let mut running = self.running.lock();
        if running.contains_key(name) {
            // Another request started it meanwhile.
            task.abort();
            return Ok(());
        }
        running.insert(
            name.to_string(),
            Running {
                status,
                task,
                postgres: postgres.clone(),
                slot: connector::replication_name(environment),
            },
        );
        Ok(())
    }

    /// The connector's view, with its slot's lag read from the database, if it runs here.
    pub async fn view(&self, name: &str) -> Option<PgConnectorView> {
        let (postgres, slot, status) = {
            let running = self.running.lock();
            let connector = running.get(name)?;
            let status = connector
                .status
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            (connector.postgres.clone(), connector.slot.clone(), status)
        };
        let slot_lag_bytes = connector::slot_lag(&postgres, &slot).await.ok().flatten();
        Some(PgConnectorView {
            name: name.to_string(),
            connection: postgres.redacted(),
            slot,
            slot_lag_bytes,
            status,
        })
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
        connector.task.abort();
        connector::drop_replication(&connector.postgres, &connector.slot)
            .await
            .map_err(|e| Error::Conflict(format!("connector `{name}` stopped, but {e}")))?;
        Ok(true)
    }
}

/// Runs a connector until it is aborted, starting it again after each failure.
async fn supervise(name: String, settings: Settings, brokers: String, status: Arc<Mutex<Status>>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let outcome = match ChangeTopics::new(&brokers) {
            Ok(mut sink) => connector::run(settings.clone(), &mut sink, Arc::clone(&status)).await,
            Err(e) => Err(eddy_postgres::Error::Sink(e.to_string())),
        };
        if let Err(e) = outcome {
            tracing::error!(connector = %name, error = %e, "connector failed; starting again");
            let mut status = status.lock().unwrap_or_else(|p| p.into_inner());
            status.state = State::Failed;
            status.error = Some(e.to_string());
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A preflight report as the API answers it.
pub fn report_json(report: &Report) -> serde_json::Value {
    serde_json::json!({
        "ok": report.failure().is_none(),
        "checks": report.checks,
        "warnings": report.checks.iter().filter(|c| c.outcome == Outcome::Warn).count(),
    })
}
