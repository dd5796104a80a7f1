//! The initial snapshot: every published table read inside the slot's exported snapshot,
//! through a cursor (so a table of any size is held a batch at a time), as `op: r` events
//! with Debezium's `source.snapshot` markers.

use tokio_postgres::SimpleQueryMessage;

use super::{Connector, SNAPSHOT_BATCH, Sink, State, unix_micros};
use crate::catalog;
use crate::error::Result;
use crate::events::{ChangeEvent, Image, Position};
use crate::lsn::Lsn;
use crate::pgoutput::Cell;
use crate::replication::quote_ident;

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
        let ts_micros = unix_micros();
        let mut pending: Option<ChangeEvent> = None;
        let mut batch = Vec::with_capacity(SNAPSHOT_BATCH);
        let mut first = true;
        for oid in oids {
            let table = catalog::table(&self.sql, oid).await?;
            let columns: Vec<String> = table.columns.iter().map(|c| quote_ident(&c.name)).collect();
            self.sql
                .batch_execute(&format!(
                    "DECLARE eddy_snapshot NO SCROLL CURSOR FOR SELECT {} FROM {}.{}",
                    columns.join(", "),
                    quote_ident(&table.name.schema),
                    quote_ident(&table.name.name)
                ))
                .await?;
            let fetch = format!("FETCH FORWARD {SNAPSHOT_BATCH} FROM eddy_snapshot");
            let mut first_of_table = true;
            loop {
                let mut fetched = 0;
                for message in self.sql.simple_query(&fetch).await? {
                    let SimpleQueryMessage::Row(row) = message else {
                        continue;
                    };
                    fetched += 1;
                    let cells: Vec<Cell> = (0..row.len())
                        .map(|i| match row.get(i) {
                            Some(text) => Cell::Text(text.to_string()),
                            None => Cell::Null,
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
                }
                if batch.len() >= SNAPSHOT_BATCH / 2 {
                    self.status().snapshot_rows += batch.len() as u64;
                    sink.deliver(std::mem::take(&mut batch)).await?;
                }
                if fetched < SNAPSHOT_BATCH {
                    break;
                }
            }
            self.sql.batch_execute("CLOSE eddy_snapshot").await?;
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
}

/// Sets a snapshot event's `source.snapshot`, unless it is the very first.
fn relabel(event: &mut ChangeEvent, marker: &str) {
    if let Some(source) = event.value.as_mut().and_then(|v| v.get_mut("source"))
        && source["snapshot"] != "first"
    {
        source["snapshot"] = marker.into();
    }
}
