//! The initial snapshot: every published table read inside the slot's exported snapshot,
//! through a cursor (so a table of any size is held a batch at a time), as `op: r` events
//! with Debezium's `source.snapshot` markers.

use tokio_postgres::SimpleQueryMessage;

use super::{Connector, SNAPSHOT_BATCH, Sink, State, unix_micros};
use crate::catalog;
use crate::error::Result;
use crate::events::{Field, Image, Position, Row};
use crate::lsn::Lsn;
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
        let at = |snapshot| Position {
            ts_micros,
            snapshot,
            tx_id: xid as u32,
            lsn: point,
            last_commit: None,
        };
        let mut captured = Vec::with_capacity(oids.len());
        // The last row read, its marker as read and its table's index: it is written once
        // the next row is read, when its final marker is known.
        let mut pending: Option<(Row, &'static str, usize)> = None;
        let mut batch = Vec::with_capacity(SNAPSHOT_BATCH);
        for (n, &oid) in oids.iter().enumerate() {
            captured.push(self.encoder.table(catalog::table(&self.sql, oid).await?));
            let table = &captured[n].table;
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
                    let fields =
                        (0..row.len()).map(|i| row.get(i).map_or(Field::Null, Field::Text));
                    let read = self.encoder.row(&captured[n], fields, Image::Row, None)?;
                    let marker = match (pending.is_none(), first_of_table) {
                        (true, _) => "first",
                        (false, true) => "first_in_data_collection",
                        _ => "true",
                    };
                    first_of_table = false;
                    if let Some((previous, marker, m)) = pending.replace((read, marker, n)) {
                        let marker = if m == n { marker } else { table_end(marker) };
                        batch.push(
                            self.encoder
                                .created(&captured[m], "r", &previous, &at(marker)),
                        );
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
            self.status().snapshot_tables_done += 1;
        }
        if let Some((last, marker, m)) = pending {
            let marker = if marker == "first" { marker } else { "last" };
            batch.push(self.encoder.created(&captured[m], "r", &last, &at(marker)));
        }
        self.status().snapshot_rows += batch.len() as u64;
        sink.deliver(batch).await?;
        self.tables.extend(oids.into_iter().zip(captured));
        self.sql.batch_execute("COMMIT").await?;
        Ok(())
    }
}

/// The marker of a table's last row: `last_in_data_collection`, unless it is the very
/// first row of the snapshot.
fn table_end(marker: &'static str) -> &'static str {
    if marker == "first" {
        marker
    } else {
        "last_in_data_collection"
    }
}
