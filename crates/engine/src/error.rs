//! The engine's error type: one enum, each variant naming what is wrong and where.

use datafusion_common::error::DataFusionError;

/// Result alias used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
///
/// Variants are split by who has to act: a schema or a query is fixed by the job's author and
/// is refused before any event is read; an event error concerns one record only and never
/// changes the pipeline's state, so the caller may skip it and go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Prisma schema could not be parsed or uses something Eddy cannot map.
    #[error("prisma schema, line {line}: {message}")]
    Schema { line: usize, message: String },

    /// A model or field of an otherwise well-formed Prisma schema is not supported.
    #[error("prisma schema: model `{model}`, field `{field}`: {message}")]
    Unsupported {
        model: String,
        field: String,
        message: String,
    },

    /// The SQL is invalid for the schema (unknown table or column, type error, syntax).
    #[error("query: {0}")]
    Query(String),

    /// The SQL is valid but uses a construct Eddy cannot maintain incrementally.
    #[error("query: {construct} is not supported by incremental maintenance{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    NotIncremental {
        construct: String,
        detail: Option<String>,
    },

    /// One change event could not be decoded or applied; nothing of it reached the state.
    #[error("event on topic `{topic}`: {message}")]
    Event { topic: String, message: String },

    /// A snapshot could not be written or read back.
    #[error("snapshot: {0}")]
    Snapshot(String),

    /// The pipeline was driven out of order (a decoded batch applied while records pushed
    /// to the pipeline itself wait for a flush); nothing changed.
    #[error("pipeline: {0}")]
    OutOfOrder(String),

    /// An aggregate's exact value does not fit its result type (a SUM past its decimal
    /// precision or an integer type): an error rather than a wrapped number.
    #[error("{aggregate}: {message}")]
    OutOfRange { aggregate: String, message: String },

    /// An error inside DataFusion or Arrow while evaluating a planned expression.
    #[error("evaluation: {0}")]
    Evaluation(#[from] DataFusionError),
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::Evaluation(e.into())
    }
}

impl Error {
    pub(crate) fn event(topic: &str, message: impl Into<String>) -> Self {
        Error::Event {
            topic: topic.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn not_incremental(construct: impl Into<String>, detail: Option<String>) -> Self {
        Error::NotIncremental {
            construct: construct.into(),
            detail,
        }
    }
}
