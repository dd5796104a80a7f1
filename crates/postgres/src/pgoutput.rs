//! The pgoutput plugin's messages (protocol version 1), decoded from WAL data.
//!
//! Written by hand from PostgreSQL's "Logical Replication Message Formats": the crates that
//! decode it bring their own transport and TLS stack (see the README), and version 1 is a
//! dozen small messages.

use bytes::{Buf, Bytes};

use crate::error::{Error, Result};
use crate::events::Field;
use crate::lsn::Lsn;

/// A column as a Relation message describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
    /// Part of the replica identity (the key for DEFAULT, every column for FULL).
    pub identity: bool,
}

/// A table's shape, sent before its first change in a session and after each change of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    pub columns: Vec<RelationColumn>,
}

/// One column of a row image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Null,
    /// A TOASTed value the change did not touch: not sent.
    UnchangedToast,
    Text(String),
}

impl Cell {
    /// The cell as the encoder reads it.
    pub fn field(&self) -> Field<'_> {
        match self {
            Cell::Null => Field::Null,
            Cell::UnchangedToast => Field::UnchangedToast,
            Cell::Text(text) => Field::Text(text),
        }
    }
}

/// The old image an update or delete carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldRow {
    /// Only the replica-identity columns are meaningful (`K`).
    Key(Vec<Cell>),
    /// The whole old row (`O`, REPLICA IDENTITY FULL).
    Full(Vec<Cell>),
}

/// A decoded pgoutput message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Begin {
        final_lsn: Lsn,
        /// Microseconds since 2000-01-01.
        commit_time: i64,
        xid: u32,
    },
    Commit {
        commit_lsn: Lsn,
        end_lsn: Lsn,
        commit_time: i64,
    },
    Relation(Relation),
    Insert {
        relation: u32,
        new: Vec<Cell>,
    },
    Update {
        relation: u32,
        old: Option<OldRow>,
        new: Vec<Cell>,
    },
    Delete {
        relation: u32,
        old: OldRow,
    },
    Truncate {
        relations: Vec<u32>,
    },
    /// Origin, Type and logical messages: nothing a Debezium event needs.
    Other(u8),
}

impl Message {
    /// Decodes one message.
    pub fn decode(mut data: Bytes) -> Result<Message> {
        need(&data, 1)?;
        let tag = data.get_u8();
        let message = match tag {
            b'B' => {
                need(&data, 20)?;
                Message::Begin {
                    final_lsn: Lsn(data.get_u64()),
                    commit_time: data.get_i64(),
                    xid: data.get_u32(),
                }
            }
            b'C' => {
                need(&data, 25)?;
                data.advance(1);
                Message::Commit {
                    commit_lsn: Lsn(data.get_u64()),
                    end_lsn: Lsn(data.get_u64()),
                    commit_time: data.get_i64(),
                }
            }
            b'R' => {
                need(&data, 4)?;
                let oid = data.get_u32();
                let schema = cstring(&mut data)?;
                let name = cstring(&mut data)?;
                need(&data, 3)?;
                let replica_identity = data.get_u8();
                let count = data.get_i16();
                let mut columns = Vec::with_capacity(count.max(0) as usize);
                for _ in 0..count {
                    need(&data, 1)?;
                    let flags = data.get_u8();
                    let name = cstring(&mut data)?;
                    need(&data, 8)?;
                    columns.push(RelationColumn {
                        name,
                        type_oid: data.get_u32(),
                        type_modifier: data.get_i32(),
                        identity: flags & 1 == 1,
                    });
                }
                Message::Relation(Relation {
                    oid,
                    schema: if schema.is_empty() {
                        "pg_catalog".into()
                    } else {
                        schema
                    },
                    name,
                    replica_identity,
                    columns,
                })
            }
            b'I' => {
                need(&data, 5)?;
                let relation = data.get_u32();
                expect(&mut data, b'N')?;
                Message::Insert {
                    relation,
                    new: tuple(&mut data)?,
                }
            }
            b'U' => {
                need(&data, 5)?;
                let relation = data.get_u32();
                let old = match data.get_u8() {
                    b'K' => {
                        let old = OldRow::Key(tuple(&mut data)?);
                        expect(&mut data, b'N')?;
                        Some(old)
                    }
                    b'O' => {
                        let old = OldRow::Full(tuple(&mut data)?);
                        expect(&mut data, b'N')?;
                        Some(old)
                    }
                    b'N' => None,
                    other => return Err(unexpected("an update's tuple", other)),
                };
                Message::Update {
                    relation,
                    old,
                    new: tuple(&mut data)?,
                }
            }
            b'D' => {
                need(&data, 5)?;
                let relation = data.get_u32();
                let old = match data.get_u8() {
                    b'K' => OldRow::Key(tuple(&mut data)?),
                    b'O' => OldRow::Full(tuple(&mut data)?),
                    other => return Err(unexpected("a delete's tuple", other)),
                };
                Message::Delete { relation, old }
            }
            b'T' => {
                need(&data, 5)?;
                let count = data.get_u32() as usize;
                data.advance(1); // CASCADE / RESTART IDENTITY
                need(&data, count * 4)?;
                Message::Truncate {
                    relations: (0..count).map(|_| data.get_u32()).collect(),
                }
            }
            other => Message::Other(other),
        };
        Ok(message)
    }
}

fn tuple(data: &mut Bytes) -> Result<Vec<Cell>> {
    need(data, 2)?;
    let count = data.get_i16();
    let mut cells = Vec::with_capacity(count.max(0) as usize);
    for _ in 0..count {
        need(data, 1)?;
        let cell = match data.get_u8() {
            b'n' => Cell::Null,
            b'u' => Cell::UnchangedToast,
            b't' => {
                need(data, 4)?;
                let length = data.get_i32().max(0) as usize;
                need(data, length)?;
                let bytes = data.split_to(length);
                Cell::Text(
                    String::from_utf8(bytes.to_vec())
                        .map_err(|_| Error::Protocol("a text value that is not UTF-8".into()))?,
                )
            }
            other => return Err(unexpected("a column", other)),
        };
        cells.push(cell);
    }
    Ok(cells)
}

fn cstring(data: &mut Bytes) -> Result<String> {
    let end = data
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| Error::Protocol("a string without its terminator".into()))?;
    let text = data.split_to(end);
    data.advance(1);
    String::from_utf8(text.to_vec()).map_err(|_| Error::Protocol("a name that is not UTF-8".into()))
}

fn expect(data: &mut Bytes, tag: u8) -> Result<()> {
    need(data, 1)?;
    match data.get_u8() {
        t if t == tag => Ok(()),
        other => Err(unexpected("a tuple marker", other)),
    }
}

fn need(data: &Bytes, bytes: usize) -> Result<()> {
    if data.remaining() < bytes {
        return Err(Error::Protocol(format!(
            "a message cut short ({} bytes left, {bytes} needed)",
            data.remaining()
        )));
    }
    Ok(())
}

fn unexpected(what: &str, tag: u8) -> Error {
    Error::Protocol(format!("{what} starting with {:?}", tag as char))
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};

    use super::*;

    fn text(buf: &mut BytesMut, value: &str) {
        buf.put_u8(b't');
        buf.put_i32(value.len() as i32);
        buf.put_slice(value.as_bytes());
    }

    #[test]
    fn relation_and_update_with_old_key_and_toast() {
        let mut r = BytesMut::new();
        r.put_u8(b'R');
        r.put_u32(16384);
        r.put_slice(b"public\0docs\0");
        r.put_u8(b'd');
        r.put_i16(2);
        r.put_u8(1);
        r.put_slice(b"id\0");
        r.put_u32(23);
        r.put_i32(-1);
        r.put_u8(0);
        r.put_slice(b"body\0");
        r.put_u32(25);
        r.put_i32(-1);
        let Message::Relation(relation) = Message::decode(r.freeze()).unwrap() else {
            panic!("not a relation")
        };
        assert_eq!(
            (relation.schema.as_str(), relation.name.as_str()),
            ("public", "docs")
        );
        assert!(relation.columns[0].identity && !relation.columns[1].identity);

        let mut u = BytesMut::new();
        u.put_u8(b'U');
        u.put_u32(16384);
        u.put_u8(b'K');
        u.put_i16(2);
        text(&mut u, "1");
        u.put_u8(b'n');
        u.put_u8(b'N');
        u.put_i16(2);
        text(&mut u, "2");
        u.put_u8(b'u');
        assert_eq!(
            Message::decode(u.freeze()).unwrap(),
            Message::Update {
                relation: 16384,
                old: Some(OldRow::Key(vec![Cell::Text("1".into()), Cell::Null])),
                new: vec![Cell::Text("2".into()), Cell::UnchangedToast],
            }
        );
    }

    #[test]
    fn begin_commit_truncate_and_short_messages() {
        let mut b = BytesMut::new();
        b.put_u8(b'B');
        b.put_u64(100);
        b.put_i64(5);
        b.put_u32(801);
        assert_eq!(
            Message::decode(b.freeze()).unwrap(),
            Message::Begin {
                final_lsn: Lsn(100),
                commit_time: 5,
                xid: 801
            }
        );
        let mut t = BytesMut::new();
        t.put_u8(b'T');
        t.put_u32(2);
        t.put_u8(0);
        t.put_u32(1);
        t.put_u32(2);
        assert_eq!(
            Message::decode(t.freeze()).unwrap(),
            Message::Truncate {
                relations: vec![1, 2]
            }
        );
        let error = Message::decode(Bytes::from_static(b"B\0\0")).unwrap_err();
        assert!(error.to_string().contains("cut short"), "{error}");
        let error = Message::decode(Bytes::from_static(b"D\0\0\0\x01X")).unwrap_err();
        assert!(error.to_string().contains("'X'"), "{error}");
    }
}
