//! A walsender connection (`replication=database`): login, the replication commands, and
//! the CopyBoth stream of WAL data and keepalives.
//!
//! tokio-postgres cannot carry the CopyBoth sub-protocol, so this speaks the wire protocol
//! itself over a TCP stream (TLS per `sslmode`, from [`tls`](crate::tls)), with
//! `postgres-protocol` (tokio-postgres' own codec crate) for the frontend messages and the
//! MD5 and SCRAM-SHA-256(-PLUS) exchanges.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::config::{ChannelBinding, PgConfig};
use crate::error::{Error, Result};
use crate::lsn::Lsn;
use crate::tls::{Tls, end_point_binding};
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
    stream: Transport,
    read: BytesMut,
    write: BytesMut,
}

/// The connection under the protocol: plain TCP, or TLS over it.
enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Transport {
    /// TCP, then TLS when `sslmode` asks for it and the server accepts (an SSLRequest
    /// answered `S`); a server that answers `N` is refused unless the mode allows plaintext.
    async fn open(config: &PgConfig) -> Result<Transport> {
        let tls = Tls::of(config)?;
        let mut stream = TcpStream::connect((config.host.as_str(), config.port))
            .await
            .map_err(|e| {
                Error::Postgres(format!(
                    "cannot connect to {}:{}: {e}",
                    config.host, config.port
                ))
            })?;
        stream.set_nodelay(true)?;
        let Some(tls) = tls else {
            return Ok(Transport::Plain(stream));
        };
        let mut request = BytesMut::new();
        frontend::ssl_request(&mut request);
        stream.write_all(&request).await?;
        let mut answer = [0u8; 1];
        stream.read_exact(&mut answer).await?;
        match answer[0] {
            b'S' => {
                let stream = tls.handshake(stream).await.map_err(|e| {
                    Error::Tls(format!(
                        "the TLS handshake with {}:{} failed: {e}",
                        config.host, config.port
                    ))
                })?;
                Ok(Transport::Tls(Box::new(stream)))
            }
            b'N' if config.sslmode.allows_plaintext() => Ok(Transport::Plain(stream)),
            b'N' => Err(Error::Tls(format!(
                "sslmode={} but {}:{} does not accept TLS connections",
                config.sslmode.name(),
                config.host,
                config.port
            ))),
            other => Err(Error::Protocol(format!(
                "the server answered an SSLRequest with {other:#04x}"
            ))),
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.write_all(bytes).await,
            Transport::Tls(stream) => {
                stream.write_all(bytes).await?;
                stream.flush().await
            }
        }
    }

    async fn read_buf(&mut self, buffer: &mut BytesMut) -> std::io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.read_buf(buffer).await,
            Transport::Tls(stream) => stream.read_buf(buffer).await,
        }
    }

    /// SCRAM's `tls-server-end-point` binding, when the session is TLS and has one.
    fn channel_binding(&self) -> Option<Vec<u8>> {
        match self {
            Transport::Plain(_) => None,
            Transport::Tls(stream) => end_point_binding(stream),
        }
    }
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl ReplicationConnection {
    /// Connects and logs in with the connection string's credentials.
    pub async fn connect(config: &PgConfig) -> Result<Self> {
        let mut connection = ReplicationConnection {
            stream: Transport::open(config).await?,
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
                    // Under `require`, SCRAM only starts bound (see `scram_mechanism`).
                    if matches!(code, 0 | 3 | 5)
                        && scram.is_none()
                        && config.channel_binding == ChannelBinding::Require
                    {
                        return Err(Error::Postgres(
                            "channel_binding=require, but the server logs in without SCRAM \
                             (trust, password or md5 authentication)"
                                .into(),
                        ));
                    }
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
                            let (mechanism, binding) = self.scram_mechanism(config, &mechanisms)?;
                            let exchange = sasl::ScramSha256::new(password, binding);
                            frontend::sasl_initial_response(
                                mechanism,
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

    /// The SASL mechanism and channel binding to log in with, as libpq chooses them:
    /// SCRAM-SHA-256-PLUS bound to the TLS session when the server offers it; otherwise
    /// SCRAM-SHA-256, telling the server (`y`) when we could have bound, so that a
    /// man in the middle who strips the `-PLUS` offer is caught.
    fn scram_mechanism(
        &self,
        config: &PgConfig,
        offered: &str,
    ) -> Result<(&'static str, sasl::ChannelBinding)> {
        let offers = |name: &str| offered.split('\0').any(|m| m == name);
        let binding = match config.channel_binding {
            ChannelBinding::Disable => None,
            _ => self.stream.channel_binding(),
        };
        match binding {
            Some(hash) if offers(sasl::SCRAM_SHA_256_PLUS) => Ok((
                sasl::SCRAM_SHA_256_PLUS,
                sasl::ChannelBinding::tls_server_end_point(hash),
            )),
            _ if config.channel_binding == ChannelBinding::Require => Err(Error::Postgres(
                "channel_binding=require, but the server does not offer SCRAM-SHA-256-PLUS \
                 over this TLS session"
                    .into(),
            )),
            Some(_) if offers(sasl::SCRAM_SHA_256) => {
                Ok((sasl::SCRAM_SHA_256, sasl::ChannelBinding::unrequested()))
            }
            None if offers(sasl::SCRAM_SHA_256) => {
                Ok((sasl::SCRAM_SHA_256, sasl::ChannelBinding::unsupported()))
            }
            _ => Err(Error::Postgres(format!(
                "the server offers no SASL mechanism Eddy speaks ({})",
                offered.replace('\0', " ").trim()
            ))),
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
