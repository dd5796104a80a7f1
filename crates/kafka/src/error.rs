//! The crate's error type.

use rdkafka::error::KafkaError;

/// What can stop a job or a Kafka call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("topic `{topic}`: {detail}")]
    Topic { topic: String, detail: String },
    #[error("delivery to `{topic}` failed: {detail}")]
    Delivery { topic: String, detail: String },
    #[error("checkpoint {path}: {detail}")]
    Checkpoint { path: String, detail: String },
    /// A client property (`set_client_properties`) librdkafka refuses, named.
    #[error("kafka client property {0}")]
    ClientProperty(String),
    #[error(transparent)]
    Engine(#[from] eddy_engine::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
