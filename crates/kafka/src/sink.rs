//! The job's producer: result changes and dead letters, with delivery accounting.
//!
//! A checkpoint may only be taken once everything published before it is acknowledged:
//! otherwise a crash after the checkpoint would lose results that no replay brings back.
//! [`Sink::confirm`] waits for that and reports any message the broker refused.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::config;
use crate::error::{Error, Result};

/// Counts deliveries and keeps the first failure.
#[derive(Default)]
pub struct Deliveries {
    delivered: AtomicU64,
    failure: Mutex<Option<(String, String)>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
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

pub struct Sink {
    producer: ThreadedProducer<Deliveries>,
}

/// How long [`Sink::confirm`] waits for acknowledgements before it gives up.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(60);

impl Sink {
    pub fn new(brokers: &str) -> Result<Self> {
        let producer = config::client(brokers)
            // Order per key must survive retries: a later result overtaken by an earlier
            // one would leave the wrong value as the key's last.
            .set("enable.idempotence", "false")
            .set("max.in.flight.requests.per.connection", "1")
            .set("acks", "all")
            .set("linger.ms", "1")
            .set("batch.size", "1000000")
            .create_with_context(Deliveries::default())?;
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

    /// Waits until every message sent so far is acknowledged; an error names the first
    /// one the broker refused.
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

/// Headers naming why a record was dead-lettered and where it came from.
pub fn dead_letter_headers(reason: &str, topic: &str, partition: i32, offset: i64) -> OwnedHeaders {
    OwnedHeaders::new()
        .insert(Header {
            key: "eddy.error",
            value: Some(reason),
        })
        .insert(Header {
            key: "eddy.source.topic",
            value: Some(topic),
        })
        .insert(Header {
            key: "eddy.source.partition",
            value: Some(&partition.to_string()),
        })
        .insert(Header {
            key: "eddy.source.offset",
            value: Some(&offset.to_string()),
        })
}
