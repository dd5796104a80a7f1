//! Debezium change topics written by Eddy's own PostgreSQL connector: each event produced to
//! `<environment>.<schema>.<table>` (created on first use), acknowledged before the
//! connector confirms its position to PostgreSQL.

use std::collections::HashSet;
use std::time::Duration;

use eddy_postgres::connector::Sink;
use eddy_postgres::events::ChangeEvent;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::admin::ensure_topics;
use crate::config;
use crate::error::{Error, Result};

/// A producer of change events.
pub struct ChangeTopics {
    brokers: String,
    producer: FutureProducer,
    known_topics: HashSet<String>,
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
            .create()?;
        Ok(ChangeTopics {
            brokers: brokers.to_string(),
            producer,
            known_topics: HashSet::new(),
        })
    }

    async fn produce(&mut self, events: Vec<ChangeEvent>) -> Result<()> {
        let new: Vec<&str> = events
            .iter()
            .map(|e| e.topic.as_str())
            .filter(|t| !self.known_topics.contains(*t))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if !new.is_empty() {
            ensure_topics(&self.brokers, &new, 1).await?;
            self.known_topics
                .extend(new.into_iter().map(str::to_string));
        }
        let mut pending: Vec<(String, DeliveryFuture)> = Vec::with_capacity(events.len());
        for event in &events {
            let mut headers = OwnedHeaders::new();
            for (name, text) in &event.headers {
                headers = headers.insert(Header {
                    key: name,
                    value: Some(text.as_bytes()),
                });
            }
            let mut record = FutureRecord::<[u8], [u8]>::to(&event.topic).headers(headers);
            if let Some(key) = &event.key {
                record = record.key(key);
            }
            if let Some(value) = &event.value {
                record = record.payload(value);
            }
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push((event.topic.clone(), delivery));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => return Err(e.into()),
                }
            }
        }
        for (topic, delivery) in pending {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => {
                    return Err(Error::Delivery {
                        topic,
                        detail: e.to_string(),
                    });
                }
                Err(_) => {
                    return Err(Error::Delivery {
                        topic,
                        detail: "the producer was dropped".into(),
                    });
                }
            }
        }
        Ok(())
    }
}

impl Sink for ChangeTopics {
    async fn deliver(&mut self, events: Vec<ChangeEvent>) -> eddy_postgres::Result<()> {
        self.produce(events)
            .await
            .map_err(|e| eddy_postgres::Error::Sink(e.to_string()))
    }
}
