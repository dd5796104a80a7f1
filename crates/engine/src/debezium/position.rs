//! Where a Debezium event sits in its source database's log, as one number that orders changes.
//!
//! Kafka keeps one key's changes in order (they share a partition) but orders nothing across
//! partitions, and a truncate, which has no key, lands on any of them. The `source` block
//! every event carries says where in the database's log the change was made, so the
//! normalizer can order a truncate against the rows it removes whatever the arrival order.
//!
//! Positions are compared for two connectors, and only as far as their logs order changes:
//! - PostgreSQL: `source.lsn`. Streamed changes arrive in commit order, and LSNs are not
//!   commit order across concurrent transactions; but two writes of one row, and a row write
//!   and a `TRUNCATE` of its table, are serialized by PostgreSQL's locks (a row lock, the
//!   truncate's `ACCESS EXCLUSIVE` lock), so the later of the two also has the later LSN.
//!   Those are the only comparisons the normalizer makes.
//! - MySQL and MariaDB: `source.file` (its sequence number), `source.pos`, `source.row`:
//!   the binlog is in commit order. Positions of different servers (`server_id`) or binlog
//!   names are not comparable (a failover); GTIDs are not used, since GTID sets of several
//!   sources are not totally ordered.
//!
//! Snapshot reads carry the log position the snapshot was taken at, and rank before a
//! streamed change at that same position. An initial or a blocking snapshot is thereby
//! ordered by where it was read; an incremental snapshot's reads interleave with streaming,
//! Debezium itself resolving, per key, a read against a streamed change of the same chunk
//! window (the read is dropped): its reads are applied in arrival order per key (see
//! [`Read::Incremental`]).
//!
//! Every other event (no `source`, another connector, a field missing) is
//! [`Position::Unordered`]: applied in arrival order, which is exact for one-partition
//! topics, and reported.

use std::borrow::Cow;
use std::hash::BuildHasher;

use super::scan::{self, Scanner};

/// How a change was read from the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// From the log.
    Streamed,
    /// By an initial or a blocking snapshot: the row as of the snapshot's position.
    Snapshot,
    /// By a signal-driven incremental snapshot, whose reads Debezium emits after any
    /// streamed change of the same key it has seen, so one key's reads and changes are in
    /// order in their partition.
    Incremental,
}

/// An event's place in its source's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// Totally ordered against every other ordered position of the same `origin`; never 0.
    Ordered {
        at: u128,
        read: Read,
        /// The log the position is in (connector, and server and binlog name for MySQL);
        /// snapshot reads of MySQL name no server, so only streamed positions say it.
        origin: u64,
    },
    /// Not comparable, and why.
    Unordered(Cow<'static, str>),
}

/// The snapshot ranks before the streamed change at its own position.
const SNAPSHOT_PHASE: u128 = 0;
const STREAMED_PHASE: u128 = 1;

impl Position {
    /// The position the `source` block (its raw JSON, if the event has one) gives.
    pub fn of_source(source: Option<&[u8]>) -> Position {
        match source {
            Some(source) => Scanner::new(source)
                .and_then(|mut scanner| {
                    let position = Self::scan(&mut scanner)?;
                    scanner.end().map(|()| position)
                })
                .unwrap_or_else(|e| not_an_object(&e)),
            None => no_source(),
        }
    }

    /// Reads the position off a `source` value where the scanner is, leaving it after the
    /// value: the block is read once, where the envelope is scanned. A malformed object is an
    /// error; a value that is no object, an unordered position.
    pub(crate) fn scan(s: &mut Scanner<'_>) -> scan::Result<Position> {
        if !s.peek_object() {
            let value = s.value()?;
            return Ok(if scan::is_null(value) {
                no_source()
            } else {
                not_an_object("found no `{`")
            });
        }
        Ok(Fields::scan(s)?.position())
    }
}

/// The position of an event without a `source` block.
pub(crate) fn no_source() -> Position {
    unordered("events carry no `source` block")
}

fn not_an_object(error: &str) -> Position {
    Position::Unordered(format!("`source` is not an object: {error}").into())
}

fn unordered(reason: &'static str) -> Position {
    Position::Unordered(Cow::Borrowed(reason))
}

/// The raw values of the `source` fields positions are made of.
#[derive(Default)]
struct Fields<'a> {
    connector: Option<&'a [u8]>,
    snapshot: Option<&'a [u8]>,
    lsn: Option<&'a [u8]>,
    file: Option<&'a [u8]>,
    pos: Option<&'a [u8]>,
    row: Option<&'a [u8]>,
    server_id: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    fn scan(s: &mut Scanner<'a>) -> scan::Result<Self> {
        let mut fields = Fields::default();
        s.object(|s, key, _| {
            let value = s.value()?;
            let slot = match key {
                b"connector" => &mut fields.connector,
                b"snapshot" => &mut fields.snapshot,
                b"lsn" => &mut fields.lsn,
                b"file" => &mut fields.file,
                b"pos" => &mut fields.pos,
                b"row" => &mut fields.row,
                b"server_id" => &mut fields.server_id,
                _ => return Ok(()),
            };
            *slot = Some(value);
            Ok(())
        })?;
        Ok(fields)
    }

    fn read(&self) -> Read {
        match self.snapshot {
            None | Some(b"null" | b"false" | b"\"false\"") => Read::Streamed,
            Some(b"\"incremental\"") => Read::Incremental,
            Some(_) => Read::Snapshot,
        }
    }

    fn position(&self) -> Position {
        let read = self.read();
        let phase = if read == Read::Snapshot {
            SNAPSHOT_PHASE
        } else {
            STREAMED_PHASE
        };
        match self.connector {
            Some(b"\"postgresql\"") => match number(self.lsn) {
                Some(lsn) if lsn > 0 => Position::Ordered {
                    at: (u128::from(lsn) << 64) | phase,
                    read,
                    origin: origin(&[b"postgresql"]),
                },
                _ => unordered("a PostgreSQL event without a `source.lsn`"),
            },
            Some(connector @ (b"\"mysql\"" | b"\"mariadb\"")) => {
                self.binlog(connector, read, phase)
            }
            Some(other) => Position::Unordered(
                format!(
                    "positions of connector {} are not compared",
                    String::from_utf8_lossy(other)
                )
                .into(),
            ),
            None => unordered("`source` names no connector"),
        }
    }

    /// `(file number, pos, row)` packed as 32, 32 and 63 bits, then the phase.
    fn binlog(&self, connector: &[u8], read: Read, phase: u128) -> Position {
        let file = self
            .file
            .and_then(|f| f.strip_prefix(b"\"")?.strip_suffix(b"\""));
        let split = file.and_then(|f| {
            let dot = f.iter().rposition(|&b| b == b'.')?;
            let index = std::str::from_utf8(&f[dot + 1..])
                .ok()?
                .parse::<u32>()
                .ok()?;
            Some((&f[..dot], index))
        });
        let (Some((name, index)), Some(pos)) = (split, number(self.pos)) else {
            return unordered("a MySQL event without a binlog `file` and `pos`");
        };
        let Ok(pos) = u32::try_from(pos) else {
            return unordered("a binlog position past 4 GiB");
        };
        let row = number(self.row).unwrap_or(0);
        if row >= 1 << 62 {
            return unordered("a binlog row number out of range");
        }
        let server = self.server_id.unwrap_or(b"0");
        Position::Ordered {
            at: (u128::from(index) << 96)
                | (u128::from(pos) << 64)
                | (u128::from(row) << 1)
                | phase,
            read,
            origin: origin(&[connector, server, name]),
        }
    }
}

/// A JSON number (or a number in a string) as a `u64`.
fn number(raw: Option<&[u8]>) -> Option<u64> {
    let raw = raw?;
    let digits = raw
        .strip_prefix(b"\"")
        .and_then(|r| r.strip_suffix(b"\""))
        .unwrap_or(raw);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn origin(parts: &[&[u8]]) -> u64 {
    foldhash::fast::FixedState::default().hash_one(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(source: &str) -> (u128, Read, u64) {
        match Position::of_source(Some(source.as_bytes())) {
            Position::Ordered { at, read, origin } => (at, read, origin),
            Position::Unordered(why) => panic!("{source}: unordered ({why})"),
        }
    }

    fn why(source: Option<&str>) -> String {
        match Position::of_source(source.map(str::as_bytes)) {
            Position::Unordered(why) => why.into_owned(),
            ordered => panic!("{source:?}: {ordered:?}"),
        }
    }

    #[test]
    fn postgresql_orders_by_lsn_and_a_snapshot_before_the_stream_at_its_lsn() {
        let snapshot = at(
            r#"{"connector":"postgresql","snapshot":"last","lsn":31182968,"txId":801,"sequence":"[null,\"31182968\"]"}"#,
        );
        let streamed = at(r#"{"connector":"postgresql","snapshot":"false","lsn":31182968}"#);
        let later = at(r#"{"connector":"postgresql","snapshot":"false","lsn":31183008}"#);
        let incremental = at(r#"{"connector":"postgresql","snapshot":"incremental","lsn":5}"#);
        assert_eq!(snapshot.1, Read::Snapshot);
        assert_eq!(incremental.1, Read::Incremental);
        assert_eq!(streamed.1, Read::Streamed);
        assert!(snapshot.0 < streamed.0 && streamed.0 < later.0);
        assert!(incremental.0 < snapshot.0);
        assert_eq!(snapshot.2, later.2);
    }

    #[test]
    fn mysql_orders_by_file_pos_row_and_names_its_server() {
        let event = |file: &str, pos: u64, row: u64, server: u64| {
            at(&format!(
                r#"{{"connector":"mysql","snapshot":false,"server_id":{server},"file":"{file}","pos":{pos},"row":{row},"gtid":null}}"#
            ))
        };
        let a = event("mysql-bin.000003", 154, 0, 223344);
        let b = event("mysql-bin.000003", 154, 1, 223344);
        let c = event("mysql-bin.000003", 1_000, 0, 223344);
        let d = event("mysql-bin.000010", 4, 0, 223344);
        assert!(a.0 < b.0 && b.0 < c.0 && c.0 < d.0);
        assert_eq!(a.2, d.2);
        assert_ne!(a.2, event("mysql-bin.000010", 4, 0, 1).2);
        assert_ne!(a.2, event("other.000010", 4, 0, 223344).2);
        let snapshot = at(
            r#"{"connector":"mysql","snapshot":"true","server_id":0,"file":"mysql-bin.000003","pos":154}"#,
        );
        assert_eq!(snapshot.1, Read::Snapshot);
        assert!(snapshot.0 < a.0);
    }

    #[test]
    fn what_cannot_be_compared_says_why() {
        assert!(why(None).contains("no `source`"));
        assert!(why(Some("null")).contains("no `source`"));
        assert!(why(Some(r#"{"table":"x"}"#)).contains("no connector"));
        assert!(why(Some(r#"{"connector":"sqlserver","change_lsn":"1"}"#)).contains("sqlserver"));
        assert!(why(Some(r#"{"connector":"postgresql","lsn":null}"#)).contains("lsn"));
        assert!(why(Some(r#"{"connector":"mysql","pos":4}"#)).contains("binlog"));
        assert!(why(Some("[1]")).contains("not an object"));
    }
}
