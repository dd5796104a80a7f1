//! The crate's error type.

/// What talking to PostgreSQL can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A connection string that cannot be used; the detail never repeats the password.
    #[error("connection string: {0}")]
    ConnectionString(String),
    /// TLS cannot be set up: a certificate or key file, or a host name TLS cannot check.
    #[error("tls: {0}")]
    Tls(String),
    /// The server could not be reached, refused us, or answered an error.
    #[error("postgres: {0}")]
    Postgres(String),
    /// The replication protocol broke: a message that is not what the protocol says.
    #[error("replication protocol: {0}")]
    Protocol(String),
    /// The sink refused or lost events.
    #[error("sink: {0}")]
    Sink(String),
    /// The stream cannot go on without losing data silently (a slot whose WAL is gone, a
    /// captured table dropped, a column dropped or retyped): the connector stays failed
    /// until it is deleted and created again, which takes a new snapshot.
    #[error(
        "{0}; delete the connector and create it again (and the jobs that read it) for a new snapshot"
    )]
    NeedsSnapshot(String),
    /// A value or relation the encoder cannot turn into Debezium JSON.
    #[error("{table}.{column}: {detail}")]
    Value {
        table: String,
        column: String,
        detail: String,
    },
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Postgres(describe(&e))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Postgres(e.to_string())
    }
}

/// A tokio-postgres error with the server's own message when there is one (its `Display`
/// says only "db error"), else with its causes (its `Display` says only "error performing
/// TLS handshake", not which certificate check failed).
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

impl Error {
    /// Whether starting again cannot help: the state only a new snapshot leaves.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Error::NeedsSnapshot(_))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
