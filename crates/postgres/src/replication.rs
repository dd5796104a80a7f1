//! A walsender connection (`replication=database`): login, the replication commands, and
//! the CopyBoth stream of WAL data and keepalives.
//!
//! tokio-postgres cannot carry the CopyBoth sub-protocol, so this speaks the wire protocol
//! itself over a TCP stream, with `postgres-protocol` (tokio-postgres' own codec crate) for
//! the frontend messages and the MD5 and SCRAM-SHA-256 exchanges.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::PgConfig;
use crate::error::{Error, Result};
use crate::lsn::Lsn;
use crate::values::SESSION_SETTINGS;

/// What the server sends while streaming.
#[derive(Debug)]
pub enum StreamMessage {
    /// WAL data: one pgoutput message starting at `start`.
    XLogData { start: Lsn, data: Bytes },
    /// The server's position; `reply` asks for a status update now.
    Keepalive { wal_end: Lsn, reply: bool },
}

/// One row of a replication command's answer, as text.
pub type TextRow = Vec<Option<String>>;

/// A logged-in walsender session.
pub struct ReplicationConnection {
    stream: TcpStream,
    read: BytesMut,
    write: BytesMut,
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl ReplicationConnection {
    /// Connects and logs in with the connection string's credentials.
    pub async fn connect(config: &PgConfig) -> Result<Self> {
        config.check_tls()?;
        let stream = TcpStream::connect((config.host.as_str(), config.port))
            .await
            .map_err(|e| {
                Error::Postgres(format!(
                    "cannot connect to {}:{}: {e}",
                    config.host, config.port
                ))
            })?;
        stream.set_nodelay(true)?;
        let mut connection = ReplicationConnection {
            stream,
            read: BytesMut::with_capacity(64 * 1024),
            write: BytesMut::new(),
        };
        let application_name = config.application_name.as_deref().unwrap_or("eddy");
        let parameters = [
            ("user", config.user.as_str()),
            ("database", config.dbname.as_str()),
            ("replication", "database"),
            ("application_name", application_name),
            ("client_encoding", "UTF8"),
        ];
        frontend::startup_message(
            parameters
                .into_iter()
                .chain(SESSION_SETTINGS.iter().copied()),
            &mut connection.write,
        )?;
        connection.flush().await?;
        connection.authenticate(config).await?;
        Ok(connection)
    }

    async fn authenticate(&mut self, config: &PgConfig) -> Result<()> {
        let password = config.password().as_bytes();
        let mut scram: Option<sasl::ScramSha256> = None;
        loop {
            let (tag, mut body) = self.message().await?;
            match tag {
                b'R' => {
                    let code = body.get_i32();
                    match code {
                        0 => {}
                        3 => {
                            frontend::password_message(password, &mut self.write)?;
                            self.flush().await?;
                        }
                        5 => {
                            let mut salt = [0u8; 4];
                            body.copy_to_slice(&mut salt);
                            let hash = md5_hash(config.user.as_bytes(), password, salt);
                            frontend::password_message(hash.as_bytes(), &mut self.write)?;
                            self.flush().await?;
                        }
                        10 => {
                            let mechanisms = String::from_utf8_lossy(&body).to_string();
                            if !mechanisms.split('\0').any(|m| m == sasl::SCRAM_SHA_256) {
                                return Err(Error::Postgres(format!(
                                    "the server offers no SASL mechanism Eddy speaks ({})",
                                    mechanisms.replace('\0', " ").trim()
                                )));
                            }
                            let exchange = sasl::ScramSha256::new(
                                password,
                                sasl::ChannelBinding::unsupported(),
                            );
                            frontend::sasl_initial_response(
                                sasl::SCRAM_SHA_256,
                                exchange.message(),
                                &mut self.write,
                            )?;
                            scram = Some(exchange);
                            self.flush().await?;
                        }
                        11 | 12 => {
                            let exchange = scram.as_mut().ok_or_else(|| {
                                Error::Protocol("SASL continuation without a start".into())
                            })?;
                            if code == 11 {
                                exchange.update(&body)?;
                                frontend::sasl_response(exchange.message(), &mut self.write)?;
                                self.flush().await?;
                            } else {
                                exchange.finish(&body)?;
                            }
                        }
                        other => {
                            return Err(Error::Postgres(format!(
                                "authentication method {other} is not supported"
                            )));
                        }
                    }
                }
                b'E' => return Err(Error::Postgres(error_fields(&body))),
                b'Z' => return Ok(()),
                // ParameterStatus, BackendKeyData, notices.
                _ => {}
            }
        }
    }

    /// Runs a replication command (or SQL) and returns its rows as text.
    pub async fn simple_query(&mut self, command: &str) -> Result<Vec<TextRow>> {
        frontend::query(command, &mut self.write)?;
        self.flush().await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let (tag, body) = self.message().await?;
            match tag {
                b'D' => rows.push(data_row(body)?),
                b'E' => error = Some(error_fields(&body)),
                b'Z' => break,
                _ => {}
            }
        }
        match error {
            Some(e) => Err(Error::Postgres(format!("{command}: {e}"))),
            None => Ok(rows),
        }
    }

    /// `START_REPLICATION` of a pgoutput slot from `start` (0/0: where the slot's confirmed
    /// position is) for `publication`.
    pub async fn start_replication(
        &mut self,
        slot: &str,
        start: Lsn,
        publication: &str,
    ) -> Result<()> {
        let command = format!(
            "START_REPLICATION SLOT {} LOGICAL {start} (proto_version '1', publication_names '{}')",
            quote_ident(slot),
            publication.replace('\'', "''")
        );
        frontend::query(&command, &mut self.write)?;
        self.flush().await?;
        loop {
            let (tag, body) = self.message().await?;
            match tag {
                b'W' => return Ok(()),
                b'E' => {
                    let error = error_fields(&body);
                    // The error is followed by ReadyForQuery; the session stays usable.
                    return Err(Error::Postgres(format!("START_REPLICATION: {error}")));
                }
                _ => {}
            }
        }
    }

    /// The next WAL message or keepalive; `None` when the server ends the stream.
    pub async fn next(&mut self) -> Result<Option<StreamMessage>> {
        loop {
            let (tag, mut body) = self.message().await?;
            match tag {
                b'd' if body.first() == Some(&b'w') => {
                    body.advance(1);
                    let start = Lsn(body.get_u64());
                    body.advance(16); // the server's WAL end and clock
                    return Ok(Some(StreamMessage::XLogData { start, data: body }));
                }
                b'd' if body.first() == Some(&b'k') => {
                    body.advance(1);
                    let wal_end = Lsn(body.get_u64());
                    body.advance(8);
                    let reply = body.first() == Some(&1);
                    return Ok(Some(StreamMessage::Keepalive { wal_end, reply }));
                }
                b'E' => return Err(Error::Postgres(error_fields(&body))),
                b'c' | b'C' | b'Z' => return Ok(None),
                _ => {}
            }
        }
    }

    /// Whether a whole message is already read, so that [`next`](Self::next) answers
    /// without waiting for the network.
    pub fn has_buffered_message(&self) -> bool {
        self.read.len() >= 5 && {
            let length =
                i32::from_be_bytes([self.read[1], self.read[2], self.read[3], self.read[4]]);
            self.read.len() > length.max(0) as usize
        }
    }

    /// A standby status update: everything up to `flushed` is safe, and the server may
    /// recycle the WAL before it. With `reply`, the server answers at once with a keepalive
    /// carrying the position it has sent up to.
    pub async fn send_status(&mut self, flushed: Lsn, reply: bool) -> Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64)
            - PG_EPOCH_MICROS;
        let mut update = BytesMut::with_capacity(34);
        update.put_u8(b'r');
        update.put_u64(flushed.0);
        update.put_u64(flushed.0);
        update.put_u64(flushed.0);
        update.put_i64(now);
        update.put_u8(u8::from(reply));
        self.write.put_u8(b'd');
        self.write.put_i32(4 + update.len() as i32);
        self.write.extend_from_slice(&update);
        self.flush().await
    }

    async fn flush(&mut self) -> Result<()> {
        self.stream.write_all(&self.write).await?;
        self.write.clear();
        Ok(())
    }

    /// One backend message: its tag and body.
    async fn message(&mut self) -> Result<(u8, Bytes)> {
        loop {
            if self.read.len() >= 5 {
                let length =
                    i32::from_be_bytes([self.read[1], self.read[2], self.read[3], self.read[4]]);
                if length < 4 {
                    return Err(Error::Protocol(format!("a message of length {length}")));
                }
                let total = 1 + length as usize;
                if self.read.len() >= total {
                    let mut frame = self.read.split_to(total);
                    let tag = frame[0];
                    frame.advance(5);
                    return Ok((tag, frame.freeze()));
                }
                self.read.reserve(total - self.read.len());
            }
            if self.stream.read_buf(&mut self.read).await? == 0 {
                return Err(Error::Postgres("the server closed the connection".into()));
            }
        }
    }
}

/// A DataRow's columns as text.
fn data_row(mut body: Bytes) -> Result<TextRow> {
    let count = body.get_i16();
    (0..count)
        .map(|_| {
            let length = body.get_i32();
            if length < 0 {
                return Ok(None);
            }
            let value = body.split_to(length as usize);
            String::from_utf8(value.to_vec())
                .map(Some)
                .map_err(|_| Error::Protocol("a text column that is not UTF-8".into()))
        })
        .collect()
}

/// An ErrorResponse as `SEVERITY: message (detail)`.
fn error_fields(body: &[u8]) -> String {
    let mut severity = "";
    let mut message = "";
    let mut detail = "";
    for field in body.split(|b| *b == 0) {
        let Some((&code, text)) = field.split_first() else {
            continue;
        };
        let text = std::str::from_utf8(text).unwrap_or("");
        match code {
            b'S' => severity = text,
            b'M' => message = text,
            b'D' => detail = text,
            _ => {}
        }
    }
    if detail.is_empty() {
        format!("{severity}: {message}")
    } else {
        format!("{severity}: {message} ({detail})")
    }
}

/// An identifier quoted for a replication command.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
