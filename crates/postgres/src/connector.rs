//! The connector: publication and slot `eddy_<environment>`, a consistent snapshot through
//! the slot's exported snapshot, then pgoutput streaming, every event handed to a [`Sink`].
//!
//! Durability: a transaction's commit is confirmed to PostgreSQL (a standby status update)
//! only after the sink has acknowledged every event up to it, so after a crash the slot
//! sends again what was not acknowledged: at least once, nothing lost. Between
//! transactions the server's keepalive position is confirmed too, so an idle database's
//! slot advances and WAL is not kept forever.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_postgres::Client;

use crate::config::PgConfig;
use crate::error::{Error, Result};
use crate::events::{CapturedTable, ChangeEvent, Encoder};
use crate::lsn::Lsn;
use crate::preflight::connect;
use crate::replication::{ReplicationConnection, quote_ident};
use crate::values::Modes;

mod snapshot;
mod streaming;

/// Where the events go.
pub trait Sink: Send {
    /// Delivers `events` in order; returns once every one is acknowledged.
    fn deliver(&mut self, events: Vec<ChangeEvent>) -> impl Future<Output = Result<()>> + Send;
}

/// A connector's state, as its status shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Starting,
    Snapshotting,
    Streaming,
    Failed,
}

/// What a connector is doing.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub state: State,
    pub snapshot_tables: usize,
    pub snapshot_tables_done: usize,
    pub snapshot_rows: u64,
    pub streamed_events: u64,
    /// The last LSN confirmed to PostgreSQL.
    pub confirmed_lsn: Option<String>,
    pub error: Option<String>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            state: State::Starting,
            snapshot_tables: 0,
            snapshot_tables_done: 0,
            snapshot_rows: 0,
            streamed_events: 0,
            confirmed_lsn: None,
            error: None,
        }
    }
}

/// A connector's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub postgres: PgConfig,
    /// The topic prefix (`topic.prefix`).
    pub environment: String,
    pub modes: Modes,
    /// A slot of this session only (`TEMPORARY`, named after the process): PostgreSQL
    /// drops it when the connection ends, so a one-off reader keeps no WAL behind it.
    pub temporary_slot: bool,
}

impl Settings {
    /// The publication name: `eddy_<environment>`, lower-case letters, digits and
    /// underscores, at most 63 bytes.
    pub fn replication_name(&self) -> String {
        replication_name(&self.environment)
    }

    /// The slot name: the publication's, with the process id for a temporary slot.
    pub fn slot_name(&self) -> String {
        let name = self.replication_name();
        if self.temporary_slot {
            let suffix = format!("_{}", std::process::id());
            let mut base = name;
            base.truncate(63 - suffix.len());
            base + &suffix
        } else {
            name
        }
    }
}

/// `eddy_<environment>` as PostgreSQL names allow.
pub fn replication_name(environment: &str) -> String {
    let cleaned: String = environment
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let mut name = format!("eddy_{cleaned}");
    name.truncate(63);
    name
}

/// How many bytes of WAL the slot keeps beyond what the connector confirmed; `None` when
/// the slot does not exist.
pub async fn slot_lag(postgres: &PgConfig, slot: &str) -> Result<Option<i64>> {
    let client = connect(postgres).await.map_err(Error::Postgres)?;
    let row = client
        .query_opt(
            "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await?;
    Ok(row.and_then(|r| r.get(0)))
}

/// Drops the slot and the publication `name`, once the slot's walsender has let go of it
/// (a stopped connector's connection may take a moment to close).
pub async fn drop_replication(postgres: &PgConfig, name: &str) -> Result<()> {
    let client = connect(postgres).await.map_err(Error::Postgres)?;
    let mut attempts = 0;
    loop {
        let dropped = client
            .query(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
                 WHERE slot_name = $1 AND active_pid IS NOT NULL",
                &[&name],
            )
            .await
            .and(Ok(()));
        let dropped = match dropped {
            Ok(()) => {
                client
                    .query(
                        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                         WHERE slot_name = $1",
                        &[&name],
                    )
                    .await
            }
            Err(e) => Err(e),
        };
        match dropped {
            Ok(_) => break,
            Err(e) if attempts < 50 => {
                tracing::debug!(slot = name, error = %crate::describe(&e), "slot busy; retrying");
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    client
        .batch_execute(&format!("DROP PUBLICATION IF EXISTS {}", quote_ident(name)))
        .await?;
    Ok(())
}

/// How many snapshot rows are fetched, and go to the sink, at once.
const SNAPSHOT_BATCH: usize = 32768;
/// How many streamed events go to the sink at most at once: a bigger transaction goes in
/// parts (its commit confirmed after the last), so its size does not bound memory.
const STREAM_BATCH: usize = 8192;
/// How long the stream may be silent before the connector confirms its position anyway.
const STATUS_INTERVAL: Duration = Duration::from_secs(10);

/// Runs the connector until it fails; the status says how far it got.
pub async fn run(
    settings: Settings,
    sink: &mut impl Sink,
    status: Arc<Mutex<Status>>,
) -> Result<()> {
    let result = Connector::start(&settings, Arc::clone(&status))
        .await?
        .run(sink)
        .await;
    if let Err(e) = &result {
        let mut status = status.lock().unwrap_or_else(|p| p.into_inner());
        status.state = State::Failed;
        status.error = Some(e.to_string());
    }
    result
}

struct Connector {
    sql: Client,
    replication: ReplicationConnection,
    encoder: Encoder,
    slot: String,
    publication: String,
    status: Arc<Mutex<Status>>,
    tables: HashMap<u32, CapturedTable>,
    needs_snapshot: Option<(String, Lsn)>,
}

impl Connector {
    async fn start(settings: &Settings, status: Arc<Mutex<Status>>) -> Result<Self> {
        let sql = connect(&settings.postgres).await.map_err(Error::Postgres)?;
        let name = settings.replication_name();
        let exists = sql
            .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&name])
            .await?;
        if exists.is_none() {
            sql.batch_execute(&format!(
                "CREATE PUBLICATION {} FOR ALL TABLES",
                quote_ident(&name)
            ))
            .await?;
        }
        let slot = settings.slot_name();
        let mut replication = ReplicationConnection::connect(&settings.postgres).await?;
        let slot_exists = sql
            .query_opt(
                "SELECT wal_status::text FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await?;
        let needs_snapshot = match slot_exists {
            Some(row) => {
                let wal_status: Option<String> = row.get(0);
                if wal_status.as_deref() == Some("lost") {
                    return Err(Error::NeedsSnapshot(format!(
                        "slot `{slot}` lost the WAL it needs (wal_status = lost)"
                    )));
                }
                None
            }
            None => {
                let rows = replication
                    .simple_query(&format!(
                        "CREATE_REPLICATION_SLOT {}{} LOGICAL pgoutput EXPORT_SNAPSHOT",
                        quote_ident(&slot),
                        if settings.temporary_slot {
                            " TEMPORARY"
                        } else {
                            ""
                        }
                    ))
                    .await?;
                let row = rows.first().ok_or_else(|| {
                    Error::Protocol("CREATE_REPLICATION_SLOT answered no row".into())
                })?;
                let point = Lsn::parse(row.get(1).and_then(|v| v.as_deref()).unwrap_or(""))?;
                let snapshot = row
                    .get(2)
                    .and_then(|v| v.clone())
                    .ok_or_else(|| Error::Protocol("no exported snapshot".into()))?;
                Some((snapshot, point))
            }
        };
        Ok(Connector {
            sql,
            replication,
            encoder: Encoder::new(
                &settings.environment,
                &settings.postgres.dbname,
                settings.modes,
            ),
            slot,
            publication: name,
            status,
            tables: HashMap::new(),
            needs_snapshot,
        })
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn run(mut self, sink: &mut impl Sink) -> Result<()> {
        if let Some((snapshot, point)) = self.needs_snapshot.take() {
            self.snapshot(&snapshot, point, sink).await?;
        }
        self.replication
            .start_replication(&self.slot, Lsn(0), &self.publication)
            .await?;
        self.status().state = State::Streaming;
        self.stream(sink).await
    }
}

fn unix_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// PostgreSQL timestamps count microseconds from 2000-01-01.
fn pg_to_unix_micros(micros: i64) -> i64 {
    micros + 946_684_800_000_000
}
