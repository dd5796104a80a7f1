//! The crate's error type.

/// What a request or the job service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is missing or wrong.
    #[error("{field}: {detail}")]
    Invalid { field: String, detail: String },
    /// The schema or the query cannot run (the engine says why).
    #[error("{field}: {source}")]
    Job {
        field: &'static str,
        source: eddy_engine::Error,
    },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Kafka Connect refused or could not be reached.
    #[error("kafka connect: {0}")]
    Connect(String),
    /// PostgreSQL refused or could not be reached (a connector's catalog).
    #[error("postgres: {0}")]
    Postgres(String),
    #[error("job registry: {0}")]
    Registry(String),
}

impl Error {
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.to_string(),
            detail: detail.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
