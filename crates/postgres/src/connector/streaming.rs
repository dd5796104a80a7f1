//! Streaming pgoutput: changes delivered in groups of whole transactions, each commit
//! confirmed to PostgreSQL once the sink acknowledged everything up to it; the captured
//! tables watched, so that a dropped table or column fails the connector instead of
//! losing data silently.
//!
//! Grouping is what lets one connector keep up with many small transactions: the sink's
//! acknowledgement is a broker round trip, so delivering each commit alone would cap the
//! connector at one transaction per round trip. Commits already read from the socket go
//! together; once nothing more is waiting, what is complete is delivered, so an idle
//! database pays one round trip per commit and no more.

use std::time::{Duration, Instant};

use super::{Connector, STATUS_INTERVAL, STREAM_BATCH, Sink, pg_to_unix_micros};
use crate::catalog;
use crate::error::{Error, Result};
use crate::events::{CapturedTable, ChangeEvent, Image, Position};
use crate::lsn::Lsn;
use crate::pgoutput::{Cell, Message, OldRow, Relation};
use crate::replication::StreamMessage;

/// How often the connector looks for captured tables that were dropped.
const TABLE_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// How long to wait for the server's position while draining up to a dropped table.
const DRAIN_POLL: Duration = Duration::from_secs(1);

/// A captured table found dropped: the connector streams up to where it was found (every
/// change made before the drop), then fails, once its confirmed position (advanced by
/// commits under load, by keepalives when idle) passes that point.
struct Dropped {
    reason: String,
    at: Lsn,
}

impl Connector {
    /// Streams from the slot's confirmed position until the stream fails.
    pub(super) async fn stream(&mut self, sink: &mut impl Sink) -> Result<()> {
        let mut transaction: Option<(u32, i64)> = None;
        let mut events: Vec<ChangeEvent> = Vec::new();
        let mut last_commit: Option<Lsn> = None;
        // The end of the last commit whose events are all delivered or in `events`.
        let mut complete_through = Lsn(0);
        let mut confirmed = Lsn(0);
        let mut dropped: Option<Dropped> = None;
        let mut next_table_check = Instant::now() + TABLE_CHECK_INTERVAL;
        loop {
            let waiting = self.replication.has_buffered_message();
            let between = transaction.is_none();
            let mut delivered = false;
            if events.len() >= STREAM_BATCH || (between && !waiting && !events.is_empty()) {
                let count = events.len() as u64;
                sink.deliver(std::mem::take(&mut events)).await?;
                self.status().streamed_events += count;
                delivered = true;
            }
            if events.is_empty() && complete_through > confirmed && (delivered || !waiting) {
                confirmed = complete_through;
                self.confirm(confirmed, false).await?;
            }
            if let Some(found) = &dropped
                && between
                && events.is_empty()
                && confirmed >= found.at
            {
                return Err(Error::NeedsSnapshot(found.reason.clone()));
            }
            if dropped.is_none() && Instant::now() >= next_table_check {
                next_table_check = Instant::now() + TABLE_CHECK_INTERVAL;
                dropped = self.find_dropped().await?;
                if dropped.is_some() {
                    // Ask for the server's position now rather than at its next keepalive.
                    self.confirm(confirmed, true).await?;
                }
            }
            let silence = if dropped.is_some() {
                DRAIN_POLL
            } else {
                STATUS_INTERVAL
            };
            // A message already read needs no timer (arming one per message showed in the
            // profile).
            let message = if waiting {
                self.replication.next().await?
            } else {
                match tokio::time::timeout(silence, self.replication.next()).await {
                    Ok(message) => message?,
                    Err(_) => {
                        self.confirm(confirmed, dropped.is_some()).await?;
                        continue;
                    }
                }
            };
            let Some(message) = message else {
                return Err(Error::Postgres(
                    "the server ended the replication stream".into(),
                ));
            };
            match message {
                StreamMessage::Keepalive { wal_end, reply } => {
                    // Between transactions with nothing undelivered, everything up to the
                    // server's position is safe: confirm it, so an idle database's slot
                    // advances.
                    if between && events.is_empty() && wal_end > confirmed {
                        confirmed = wal_end;
                        self.confirm(confirmed, false).await?;
                    } else if reply {
                        self.confirm(confirmed, false).await?;
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
                        complete_through = end_lsn;
                    }
                    Message::Relation(relation) => self.relation(relation).await?,
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

    /// Confirms `lsn` to PostgreSQL and in the status.
    async fn confirm(&mut self, lsn: Lsn, reply: bool) -> Result<()> {
        if lsn > Lsn(0) {
            self.status().confirmed_lsn = Some(lsn.to_string());
        }
        self.replication.send_status(lsn, reply).await
    }

    /// Takes a table's shape from its Relation message, refusing a change that would lose
    /// data.
    async fn relation(&mut self, relation: Relation) -> Result<()> {
        let known = self.tables.get(&relation.oid).map(|c| &c.table);
        let current = catalog::table_if_exists(&self.sql, relation.oid).await?;
        let streamed = catalog::as_streamed(&relation, current.as_ref().or(known));
        if let Some(reason) = known.and_then(|k| catalog::incompatible_change(k, &streamed)) {
            return Err(Error::NeedsSnapshot(reason));
        }
        let captured = self.encoder.table(streamed);
        self.tables.insert(relation.oid, captured);
        Ok(())
    }

    /// A captured table that no longer exists, and the WAL position to stream up to first.
    async fn find_dropped(&self) -> Result<Option<Dropped>> {
        if self.tables.is_empty() {
            return Ok(None);
        }
        let oids: Vec<u32> = self.tables.keys().copied().collect();
        let (gone, at) = catalog::dropped_tables(&self.sql, &oids).await?;
        let Some(table) = gone
            .first()
            .and_then(|oid| self.tables.get(oid))
            .map(|c| &c.table)
        else {
            return Ok(None);
        };
        Ok(Some(Dropped {
            reason: format!(
                "captured table {}.{} was dropped",
                table.name.schema, table.name.name
            ),
            at: Lsn::parse(&at)?,
        }))
    }

    fn table(&self, oid: u32) -> Result<&CapturedTable> {
        self.tables.get(&oid).ok_or_else(|| {
            Error::Protocol(format!(
                "a change of relation {oid} before its Relation message"
            ))
        })
    }

    fn change(&self, message: Message, at: &Position, events: &mut Vec<ChangeEvent>) -> Result<()> {
        let encoder = &self.encoder;
        let row = |table, cells: &[Cell], image, old| {
            encoder.row(table, cells.iter().map(Cell::field), image, old)
        };
        let old_row = |table, old: &OldRow| match old {
            OldRow::Full(cells) => row(table, cells, Image::Row, None),
            OldRow::Key(cells) => row(table, cells, Image::Key, None),
        };
        match message {
            Message::Insert { relation, new } => {
                let table = self.table(relation)?;
                let after = row(table, &new, Image::Row, None)?;
                events.push(encoder.created(table, "c", &after, at));
            }
            Message::Update { relation, old, new } => {
                let table = self.table(relation)?;
                let before = old.as_ref().map(|old| old_row(table, old)).transpose()?;
                let after = row(table, &new, Image::Row, before.as_ref())?;
                encoder.updated(table, before.as_ref(), &after, at, events);
            }
            Message::Delete { relation, old } => {
                let table = self.table(relation)?;
                let before = old_row(table, &old)?;
                encoder.deleted(table, &before, at, events);
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
