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
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::catalog::{self, Table};
use crate::config::PgConfig;
use crate::error::{Error, Result};
use crate::events::{ChangeEvent, Encoder, Image, Position};
use crate::lsn::Lsn;
use crate::pgoutput::{Message, OldRow};
use crate::preflight::connect;
use crate::replication::{ReplicationConnection, StreamMessage, quote_ident};
use crate::values::Modes;

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

/// How many snapshot rows go to the sink at once.
const SNAPSHOT_BATCH: usize = 8192;
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
    tables: HashMap<u32, Table>,
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
                    return Err(Error::Postgres(format!(
                        "slot `{slot}` lost the WAL it needs (wal_status = lost): delete the \
                         connector to drop it, and create it again for a new snapshot"
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
            encoder: Encoder {
                environment: settings.environment.clone(),
                database: settings.postgres.dbname.clone(),
                modes: settings.modes,
            },
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

    /// Reads every published table inside the slot's exported snapshot, as `op: r` events.
    async fn snapshot(&mut self, snapshot: &str, point: Lsn, sink: &mut impl Sink) -> Result<()> {
        self.status().state = State::Snapshotting;
        self.sql
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT '{}'",
                snapshot.replace('\'', "''")
            ))
            .await?;
        let xid: i64 = self
            .sql
            .query_one("SELECT txid_current()", &[])
            .await?
            .get(0);
        let oids = catalog::published_tables(&self.sql, &self.publication).await?;
        self.status().snapshot_tables = oids.len();
        let ts_micros = unix_micros();
        let mut pending: Option<ChangeEvent> = None;
        let mut batch = Vec::new();
        let mut first = true;
        for oid in oids {
            let table = catalog::table(&self.sql, oid).await?;
            let columns: Vec<String> = table.columns.iter().map(|c| quote_ident(&c.name)).collect();
            let query = format!(
                "SELECT {} FROM {}.{}",
                columns.join(", "),
                quote_ident(&table.name.schema),
                quote_ident(&table.name.name)
            );
            let mut first_of_table = true;
            for message in self.sql.simple_query(&query).await? {
                let SimpleQueryMessage::Row(row) = message else {
                    continue;
                };
                let cells: Vec<_> = (0..row.len())
                    .map(|i| match row.get(i) {
                        Some(text) => crate::pgoutput::Cell::Text(text.to_string()),
                        None => crate::pgoutput::Cell::Null,
                    })
                    .collect();
                let after = self.encoder.row(&table, &cells, Image::Row, None)?;
                let marker = match (first, first_of_table) {
                    (true, _) => "first",
                    (false, true) => "first_in_data_collection",
                    _ => "true",
                };
                first = false;
                first_of_table = false;
                let at = Position {
                    ts_micros,
                    snapshot: marker,
                    tx_id: xid as u32,
                    lsn: point,
                    last_commit: None,
                };
                let event = self.encoder.created(&table, "r", after, &at);
                if let Some(previous) = pending.replace(event) {
                    batch.push(previous);
                }
                if batch.len() >= SNAPSHOT_BATCH {
                    self.status().snapshot_rows += batch.len() as u64;
                    sink.deliver(std::mem::take(&mut batch)).await?;
                }
            }
            // Only this table's last row can still be pending.
            if let Some(mut event) = pending.take() {
                relabel(&mut event, "last_in_data_collection");
                batch.push(event);
            }
            self.tables.insert(oid, table);
            self.status().snapshot_tables_done += 1;
        }
        if let Some(event) = batch.last_mut() {
            relabel(event, "last");
        }
        self.status().snapshot_rows += batch.len() as u64;
        sink.deliver(batch).await?;
        self.sql.batch_execute("COMMIT").await?;
        Ok(())
    }

    async fn stream(&mut self, sink: &mut impl Sink) -> Result<()> {
        let mut transaction: Option<(u32, i64)> = None;
        let mut events = Vec::new();
        let mut last_commit: Option<Lsn> = None;
        let mut confirmed = Lsn(0);
        loop {
            let message = match tokio::time::timeout(STATUS_INTERVAL, self.replication.next()).await
            {
                Ok(message) => message?,
                Err(_) => {
                    self.replication.send_status(confirmed).await?;
                    continue;
                }
            };
            let Some(message) = message else {
                return Err(Error::Postgres(
                    "the server ended the replication stream".into(),
                ));
            };
            match message {
                StreamMessage::Keepalive { wal_end, reply } => {
                    // Between transactions everything up to the server's position is
                    // delivered: confirm it, so an idle database's slot advances.
                    if transaction.is_none() && wal_end > confirmed {
                        confirmed = wal_end;
                        self.confirmed(confirmed);
                        self.replication.send_status(confirmed).await?;
                    } else if reply {
                        self.replication.send_status(confirmed).await?;
                    }
                }
                StreamMessage::XLogData { start, data } => match Message::decode(data)? {
                    Message::Begin {
                        xid, commit_time, ..
                    } => transaction = Some((xid, pg_to_unix_micros(commit_time))),
                    Message::Commit {
                        end_lsn,
                        commit_lsn,
                        ..
                    } => {
                        transaction = None;
                        last_commit = Some(commit_lsn);
                        if !events.is_empty() {
                            let count = events.len() as u64;
                            sink.deliver(std::mem::take(&mut events)).await?;
                            self.status().streamed_events += count;
                        }
                        confirmed = end_lsn;
                        self.confirmed(confirmed);
                        self.replication.send_status(confirmed).await?;
                    }
                    Message::Relation(relation) => {
                        let current = catalog::table(&self.sql, relation.oid).await?;
                        self.tables
                            .insert(relation.oid, catalog::as_streamed(&relation, &current));
                    }
                    change => {
                        let (xid, ts_micros) = transaction.ok_or_else(|| {
                            Error::Protocol("a change outside a transaction".into())
                        })?;
                        let at = Position {
                            ts_micros,
                            snapshot: "false",
                            tx_id: xid,
                            lsn: start,
                            last_commit,
                        };
                        self.change(change, &at, &mut events)?;
                    }
                },
            }
        }
    }

    fn confirmed(&self, lsn: Lsn) {
        self.status().confirmed_lsn = Some(lsn.to_string());
    }

    fn table(&self, oid: u32) -> Result<&Table> {
        self.tables.get(&oid).ok_or_else(|| {
            Error::Protocol(format!(
                "a change of relation {oid} before its Relation message"
            ))
        })
    }

    fn change(&self, message: Message, at: &Position, events: &mut Vec<ChangeEvent>) -> Result<()> {
        let encoder = &self.encoder;
        match message {
            Message::Insert { relation, new } => {
                let table = self.table(relation)?;
                let after = encoder.row(table, &new, Image::Row, None)?;
                events.push(encoder.created(table, "c", after, at));
            }
            Message::Update { relation, old, new } => {
                let table = self.table(relation)?;
                let before = match old {
                    Some(OldRow::Full(cells)) => {
                        Some(encoder.row(table, &cells, Image::Row, None)?)
                    }
                    Some(OldRow::Key(cells)) => {
                        Some(encoder.row(table, &cells, Image::Key, None)?)
                    }
                    None => None,
                };
                let after = encoder.row(table, &new, Image::Row, before.as_ref())?;
                events.extend(encoder.updated(table, before, after, at));
            }
            Message::Delete { relation, old } => {
                let table = self.table(relation)?;
                let before = match old {
                    OldRow::Full(cells) => encoder.row(table, &cells, Image::Row, None)?,
                    OldRow::Key(cells) => encoder.row(table, &cells, Image::Key, None)?,
                };
                events.extend(encoder.deleted(table, before, at));
            }
            Message::Truncate { relations } => {
                for relation in relations {
                    events.push(encoder.truncated(self.table(relation)?, at));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Sets a snapshot event's `source.snapshot`, unless it is the very first.
fn relabel(event: &mut ChangeEvent, marker: &str) {
    if let Some(source) = event.value.as_mut().and_then(|v| v.get_mut("source"))
        && source["snapshot"] != "first"
    {
        source["snapshot"] = marker.into();
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
