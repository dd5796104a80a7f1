//! The job's producer: result changes and dead letters, with delivery accounting.
//!
//! A checkpoint may only be taken once everything published before it is acknowledged:
//! otherwise a crash after the checkpoint would lose results that no replay brings back.
//! [`Sink::confirm`] waits for that and reports any result the broker refused.
//!
//! Dead letters are the exception: a dead-letter topic that refuses a record (at send or at
//! delivery) must not stop the job, or one bad record would stop every other. Such a refusal
//! is logged and counted (`deadLetterFailures`) and the job goes on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::config;
use crate::error::{Error, Result};
use crate::job::JobMetrics;

/// The largest message the producer sends: Kafka's default broker limit (`message.max.bytes`,
/// 1 MiB + 12 bytes of overhead), rather than librdkafka's smaller default, so that what a
/// default broker accepts Eddy can send too.
pub const MAX_MESSAGE_BYTES: usize = 1_048_588;

/// Counts deliveries, keeps the first failure of a result, and counts refused dead letters.
pub struct Deliveries {
    delivered: AtomicU64,
    dead_letter_topic: String,
    metrics: Arc<JobMetrics>,
    failure: Mutex<Option<(String, String)>>,
}

impl Deliveries {
    fn dead_letter_refused(&self, error: &dyn std::fmt::Display, offset: Option<&str>) {
        self.metrics
            .dead_letter_failures
            .fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            topic = %self.dead_letter_topic,
            source_offset = offset.unwrap_or("?"),
            %error,
            "dead letter refused; the record is skipped and counted in deadLetterFailures"
        );
    }
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, message)) if message.topic() == self.dead_letter_topic => {
                let offset = message.headers().and_then(source_offset);
                self.dead_letter_refused(error, offset.as_deref());
            }
            Err((error, message)) => {
                let mut failure = self.failure.lock();
                if failure.is_none() {
                    *failure = Some((message.topic().to_string(), error.to_string()));
                }
            }
        }
    }
}

/// The job's producer.
pub struct Sink {
    producer: ThreadedProducer<Deliveries>,
}

/// How long [`Sink::confirm`] waits for acknowledgements before it gives up.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(60);

impl Sink {
    /// A producer for `brokers`; refusals of messages to `dead_letter_topic` are counted in
    /// `metrics` instead of failing [`Sink::confirm`].
    pub fn new(brokers: &str, dead_letter_topic: &str, metrics: Arc<JobMetrics>) -> Result<Self> {
        let producer = config::client(brokers)
            // Order per key must survive retries: a later result overtaken by an earlier
            // one would leave the wrong value as the key's last.
            .set("enable.idempotence", "false")
            .set("max.in.flight.requests.per.connection", "1")
            .set("acks", "all")
            .set("linger.ms", "1")
            .set("batch.size", "1000000")
            .set("message.max.bytes", MAX_MESSAGE_BYTES.to_string())
            .create_with_context(Deliveries {
                delivered: AtomicU64::new(0),
                dead_letter_topic: dead_letter_topic.to_string(),
                metrics,
                failure: Mutex::new(None),
            })?;
        Ok(Sink { producer })
    }

    /// Queues one message, waiting for room in the producer's queue if it is full.
    pub fn send(
        &self,
        topic: &str,
        key: &[u8],
        value: Option<&[u8]>,
        headers: Option<OwnedHeaders>,
    ) -> Result<()> {
        let mut record = BaseRecord::to(topic).key(key);
        if let Some(value) = value {
            record = record.payload(value);
        }
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => {
                    return Err(Error::Delivery {
                        topic: topic.to_string(),
                        detail: e.to_string(),
                    });
                }
            }
        }
    }

    /// Queues a dead letter; returns whether the producer took it. A refusal is logged and
    /// counted, never an error.
    pub fn send_dead_letter(
        &self,
        topic: &str,
        key: &[u8],
        value: Option<&[u8]>,
        headers: OwnedHeaders,
    ) -> bool {
        let offset = source_offset(&headers);
        match self.send(topic, key, value, Some(headers)) {
            Ok(()) => true,
            Err(e) => {
                self.producer
                    .context()
                    .dead_letter_refused(&e, offset.as_deref());
                false
            }
        }
    }

    /// Waits until every message sent so far is acknowledged; an error names the first
    /// result the broker refused (refused dead letters are only counted).
    pub fn confirm(&self) -> Result<()> {
        self.producer.flush(CONFIRM_TIMEOUT)?;
        match self.producer.context().failure.lock().take() {
            None => Ok(()),
            Some((topic, detail)) => Err(Error::Delivery { topic, detail }),
        }
    }

    /// Messages acknowledged since the sink was made.
    pub fn delivered(&self) -> u64 {
        self.producer.context().delivered.load(Ordering::Relaxed)
    }
}

/// The `eddy.source.offset` header of a dead letter, for the log line of a refused one.
fn source_offset(headers: &impl Headers) -> Option<String> {
    headers
        .iter()
        .find(|h| h.key == "eddy.source.offset")
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}
