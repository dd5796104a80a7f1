//! Debezium change topics written by Eddy's own PostgreSQL connector: each event produced to
//! `<environment>.<schema>.<table>` (created on first use), acknowledged before the
//! connector confirms its position to PostgreSQL.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use eddy_postgres::connector::Sink;
use eddy_postgres::events::ChangeEvent;
use parking_lot::Mutex;
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use tokio::sync::Notify;

use crate::admin::ensure_topics;
use crate::config;
use crate::error::{Error, Result};

/// A producer of change events.
pub struct ChangeTopics {
    brokers: String,
    producer: ThreadedProducer<Acknowledgements>,
    known_topics: HashSet<String>,
}

/// Counts a batch's acknowledgements as the producer's thread reports them: one counter
/// for the batch rather than a future per event, which cost more than encoding it.
#[derive(Default)]
struct Acknowledgements {
    outstanding: AtomicUsize,
    /// The first failed delivery of the batch: its topic and the broker's error.
    failure: Mutex<Option<(String, String)>>,
    all_done: Notify,
}

impl ClientContext for Acknowledgements {}

impl ProducerContext for Acknowledgements {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, message)) = result {
            self.failure
                .lock()
                .get_or_insert_with(|| (message.topic().to_string(), error.to_string()));
        }
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all_done.notify_one();
        }
    }
}

impl ChangeTopics {
    pub fn new(brokers: &str) -> Result<Self> {
        let producer = config::client(brokers)
            // One key's changes must stay in order through retries.
            .set("enable.idempotence", "false")
            .set("max.in.flight.requests.per.connection", "1")
            .set("acks", "all")
            .set("linger.ms", "1")
            .set("message.timeout.ms", "60000")
            .create_with_context(Acknowledgements::default())?;
        Ok(ChangeTopics {
            brokers: brokers.to_string(),
            producer,
            known_topics: HashSet::new(),
        })
    }

    async fn produce(&mut self, events: Vec<ChangeEvent>) -> Result<()> {
        let new: Vec<&str> = events
            .iter()
            .map(|e| &*e.topic)
            .filter(|t| !self.known_topics.contains(*t))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if !new.is_empty() {
            ensure_topics(&self.brokers, &new, 1).await?;
            self.known_topics
                .extend(new.into_iter().map(str::to_string));
        }
        let acks = Arc::clone(self.producer.context());
        for event in &events {
            let mut record = BaseRecord::<[u8], [u8]>::to(&event.topic);
            if !event.headers.is_empty() {
                let mut headers = OwnedHeaders::new_with_capacity(event.headers.len());
                for (name, text) in &event.headers {
                    headers = headers.insert(Header {
                        key: name,
                        value: Some(text.as_bytes()),
                    });
                }
                record = record.headers(headers);
            }
            if let Some(key) = &event.key {
                record = record.key(key);
            }
            if let Some(value) = &event.value {
                record = record.payload(value);
            }
            acks.outstanding.fetch_add(1, Ordering::AcqRel);
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => {
                        acks.outstanding.fetch_sub(1, Ordering::AcqRel);
                        return Err(e.into());
                    }
                }
            }
        }
        loop {
            let done = acks.all_done.notified();
            if acks.outstanding.load(Ordering::Acquire) == 0 {
                break;
            }
            done.await;
        }
        match acks.failure.lock().take() {
            Some((topic, detail)) => Err(Error::Delivery { topic, detail }),
            None => Ok(()),
        }
    }
}

impl Sink for ChangeTopics {
    async fn deliver(&mut self, events: Vec<ChangeEvent>) -> eddy_postgres::Result<()> {
        self.produce(events)
            .await
            .map_err(|e| eddy_postgres::Error::Sink(e.to_string()))
    }
}
