//! Topic creation: the job's output and dead-letter topics, and test fixtures' topics.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::config;
use crate::error::{Error, Result};

/// Creates each topic that does not exist yet, with `partitions` partitions and the
/// broker's default replication factor. Topics that already exist are left as they are.
pub async fn ensure_topics(brokers: &str, topics: &[&str], partitions: i32) -> Result<()> {
    if topics.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = config::client(brokers).create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(-1)))
        .collect();
    // Bounded, so that a job stopped while its brokers are unreachable stops soon.
    let options = AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .operation_timeout(Some(Duration::from_secs(10)));
    for outcome in admin.create_topics(&new, &options).await? {
        match outcome {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(Error::Topic {
                    topic,
                    detail: format!("cannot be created: {code}"),
                });
            }
        }
    }
    Ok(())
}

/// [`ensure_topics`] for callers without an async runtime.
pub fn ensure_topics_blocking(brokers: &str, topics: &[&str], partitions: i32) -> Result<()> {
    futures_executor::block_on(ensure_topics(brokers, topics, partitions))
}
