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
    /// A route that exists, asked with a method it does not serve.
    #[error("{0} is not served; see /openapi.json")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    /// The output topic asked for is already written by another live job.
    #[error(
        "outputTopic: `{topic}` is already written by {writer}; give this job its own `outputTopic` (e.g. `{suggestion}`)"
    )]
    OutputTopicTaken {
        topic: String,
        /// The job writing it, or "a job of another environment" when the caller may not
        /// see that job.
        writer: String,
        suggestion: String,
    },
    /// No credential, or one that is not (or no longer) valid.
    #[error("{0}")]
    Unauthenticated(AuthFailure),
    /// A valid credential that does not cover what was asked.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A request body over the limit.
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// A caller over its requests per minute.
    #[error("more than {0} requests this minute; wait for Retry-After seconds")]
    RateLimited(u32),
    /// A request that took longer than the server allows.
    #[error(
        "the request took longer than {0:?}; whatever it changed may stand, so check before retrying"
    )]
    Timeout(std::time::Duration),
    /// Kafka Connect refused or could not be reached.
    #[error("kafka connect: {0}")]
    Connect(String),
    /// PostgreSQL refused or could not be reached (a connector's catalog).
    #[error("postgres: {0}")]
    Postgres(String),
    #[error("job registry: {0}")]
    Registry(String),
    /// A job's checkpoint could not be read, or its result computed from it.
    #[error("job state: {0}")]
    State(String),
}

/// Why a request is not authenticated; each is its own stable code in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization: Bearer …` header.
    Missing,
    /// A token that is malformed, unknown, revoked, or whose secret does not match.
    Invalid,
    /// A token past its expiry.
    Expired,
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthFailure::Missing => "missing credential: send `Authorization: Bearer <token>`",
            AuthFailure::Invalid => "invalid token: unknown, revoked or malformed",
            AuthFailure::Expired => "expired token: ask for a new one",
        })
    }
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
