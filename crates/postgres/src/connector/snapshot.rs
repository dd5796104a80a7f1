//! The initial snapshot: every published table read inside the slot's exported snapshot,
//! through a cursor (so a table of any size is held a batch at a time), as `op: r` events
//! with Debezium's `source.snapshot` markers.
//!
//! Reading, encoding and delivering are a pipeline: while PostgreSQL sends one batch of
//! rows, the batch before it is encoded on a blocking thread and the one before that goes
//! to the sink, so the database, the encoder and the broker work at once on both cores.

use std::sync::Arc;

use tokio_postgres::SimpleQueryMessage;

use super::{Connector, SNAPSHOT_BATCH, Sink, State, unix_micros};
use crate::catalog;
use crate::error::{Error, Result};
use crate::events::{CapturedTable, ChangeEvent, Encoder, Field, Image, Position, Row};
use crate::lsn::Lsn;
use crate::replication::quote_ident;

/// Fetched rows of one table, waiting to be encoded.
type Fetched = (Arc<CapturedTable>, Vec<SimpleQueryMessage>);

impl Connector {
    /// Reads every published table inside the slot's exported snapshot, as `op: r` events.
    pub(super) async fn snapshot(
        &mut self,
        snapshot: &str,
        point: Lsn,
        sink: &mut impl Sink,
    ) -> Result<()> {
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
        let mut reads = Some(Reads {
            encoder: self.encoder.clone(),
            at: Position {
                ts_micros: unix_micros(),
                snapshot: "first",
                tx_id: xid as u32,
                lsn: point,
                last_commit: None,
            },
            pending: None,
        });
        let mut captured = Vec::with_capacity(oids.len());
        let mut to_encode: Option<Fetched> = None;
        let mut to_deliver: Vec<ChangeEvent> = Vec::new();
        for &oid in &oids {
            let table = Arc::new(self.encoder.table(catalog::table(&self.sql, oid).await?));
            captured.push(Arc::clone(&table));
            let columns: Vec<String> = table
                .table
                .columns
                .iter()
                .map(|c| quote_ident(&c.name))
                .collect();
            self.sql
                .batch_execute(&format!(
                    "DECLARE eddy_snapshot NO SCROLL CURSOR FOR SELECT {} FROM {}.{}",
                    columns.join(", "),
                    quote_ident(&table.table.name.schema),
                    quote_ident(&table.table.name.name)
                ))
                .await?;
            let fetch = format!("FETCH FORWARD {SNAPSHOT_BATCH} FROM eddy_snapshot");
            loop {
                let delivering = std::mem::take(&mut to_deliver);
                let count = delivering.len() as u64;
                let (messages, encoded, delivered) = tokio::join!(
                    self.sql.simple_query(&fetch),
                    encode(reads.take(), to_encode.take()),
                    deliver(sink, delivering),
                );
                delivered?;
                self.status().snapshot_rows += count;
                let (done, events) = encoded?;
                reads = Some(done);
                to_deliver = events;
                let messages = messages?;
                let fetched = messages
                    .iter()
                    .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
                    .count();
                to_encode = Some((Arc::clone(&table), messages));
                if fetched < SNAPSHOT_BATCH {
                    break;
                }
            }
            self.sql.batch_execute("CLOSE eddy_snapshot").await?;
            self.status().snapshot_tables_done += 1;
        }
        let (done, events) = encode(reads.take(), to_encode.take()).await?;
        for batch in [to_deliver, events, done.finish().into_iter().collect()] {
            let count = batch.len() as u64;
            deliver(sink, batch).await?;
            self.status().snapshot_rows += count;
        }
        self.tables.extend(
            oids.into_iter()
                .zip(captured)
                .map(|(oid, table)| (oid, Arc::unwrap_or_clone(table))),
        );
        self.sql.batch_execute("COMMIT").await?;
        Ok(())
    }
}

/// Delivers `events` unless there are none.
async fn deliver(sink: &mut impl Sink, events: Vec<ChangeEvent>) -> Result<()> {
    if events.is_empty() {
        Ok(())
    } else {
        sink.deliver(events).await
    }
}

/// Encodes fetched rows on a blocking thread, handing the reads' state back with the events.
async fn encode(
    reads: Option<Reads>,
    fetched: Option<Fetched>,
) -> Result<(Reads, Vec<ChangeEvent>)> {
    let mut reads = reads.ok_or_else(|| Error::Protocol("the snapshot encoder was lost".into()))?;
    let Some((table, messages)) = fetched else {
        return Ok((reads, Vec::new()));
    };
    tokio::task::spawn_blocking(move || {
        let events = reads.rows(&table, messages)?;
        Ok((reads, events))
    })
    .await
    .map_err(|e| Error::Protocol(format!("the snapshot encoder stopped: {e}")))?
}

/// The snapshot's reads so far: each row becomes an event once the next row is read, when
/// its final marker (`first`, `first_in_data_collection`, `true`,
/// `last_in_data_collection`, `last`) is known.
struct Reads {
    encoder: Encoder,
    /// The position of the next event; its `snapshot` is the marker of the last row read.
    at: Position,
    /// The last row read and its table.
    pending: Option<(Row, Arc<CapturedTable>)>,
}

impl Reads {
    /// Encodes one fetch of `table`'s rows, returning the events now complete.
    fn rows(
        &mut self,
        table: &Arc<CapturedTable>,
        messages: Vec<SimpleQueryMessage>,
    ) -> Result<Vec<ChangeEvent>> {
        let mut events = Vec::with_capacity(messages.len());
        for message in messages {
            let SimpleQueryMessage::Row(row) = message else {
                continue;
            };
            let fields = (0..row.len()).map(|i| row.get(i).map_or(Field::Null, Field::Text));
            let read = self.encoder.row(table, fields, Image::Row, None)?;
            let marker = match &self.pending {
                None => "first",
                Some((_, previous)) if !Arc::ptr_eq(previous, table) => "first_in_data_collection",
                Some(_) => "true",
            };
            if let Some((previous, of)) = self.pending.replace((read, Arc::clone(table))) {
                if !Arc::ptr_eq(&of, table) && self.at.snapshot != "first" {
                    self.at.snapshot = "last_in_data_collection";
                }
                events.push(self.encoder.created(&of, "r", &previous, &self.at));
            }
            self.at.snapshot = marker;
        }
        Ok(events)
    }

    /// The snapshot's last event, marked `last` (unless it is also the first).
    fn finish(mut self) -> Option<ChangeEvent> {
        let (last, of) = self.pending.take()?;
        if self.at.snapshot != "first" {
            self.at.snapshot = "last";
        }
        Some(self.encoder.created(&of, "r", &last, &self.at))
    }
}
