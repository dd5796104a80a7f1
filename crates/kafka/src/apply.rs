//! Applying a batch of input records: the engine, then the results out and dead letters aside.
//!
//! A batch is applied as one engine batch, or, once it has failed the job often enough, one
//! record per engine batch, skipping the records known to fail (see [`crate::poison`]).

use std::sync::atomic::Ordering;

use eddy_engine::{
    BatchDecoder, Encoder, Pipeline, RECORDS_PER_THREAD, Record, decode_in_parallel,
};
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};

use crate::dead_letter;
use crate::error::{Error, Result};
use crate::job::{JobConfig, JobMetrics, SOURCE_END_HEADER};
use crate::poison::{Failure, Plan, Position};
use crate::sink::Sink;
use crate::source::Offsets;

/// What applying a batch needs of the job.
pub(crate) struct Applier<'a> {
    pub config: &'a JobConfig,
    pub pipeline: &'a mut Pipeline,
    /// The job's decoders, empty between batches: a batch is decoded on as many threads.
    pub decoders: &'a mut [BatchDecoder],
    pub encoder: &'a Encoder,
    pub sink: &'a Sink,
    pub metrics: &'a JobMetrics,
}

/// Why a batch could not be applied, and the record found to cause it, if one was.
pub(crate) struct Failed {
    pub error: Error,
    pub culprit: Option<Position>,
}

impl Applier<'_> {
    /// Applies `messages`, the batch ending at `end`, as `plan` says; `failure` is what is
    /// known of the batch's earlier failures. Returns how many records it held.
    pub fn apply(
        &mut self,
        messages: &[BorrowedMessage<'_>],
        end: &Offsets,
        plan: Plan<'_>,
        failure: Option<&Failure>,
    ) -> Result<usize, Failed> {
        // Which input a result reflects: consumers can tell how far behind it is, and
        // benchmarks measure latency from an event's production to its result.
        let end = serde_json::to_string(end).unwrap_or_default();
        let culprits = match plan {
            Plan::Whole => {
                return self.engine_batch(messages, &end).map_err(|error| Failed {
                    error,
                    culprit: None,
                });
            }
            Plan::OneByOne(culprits) => culprits,
        };
        for message in messages {
            if culprits.iter().any(|c| c.is(message)) {
                self.skip(message, failure);
                continue;
            }
            self.engine_batch(std::slice::from_ref(message), &end)
                .map_err(|error| Failed {
                    error,
                    culprit: Some(Position::of(message)),
                })?;
        }
        Ok(messages.len())
    }

    /// Skips a record that fails the job on its own: dead-lettered and counted.
    fn skip(&self, message: &BorrowedMessage<'_>, failure: Option<&Failure>) {
        let (attempts, error) = failure.map_or((0, ""), |f| (f.attempts, f.error.as_str()));
        tracing::error!(
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            attempts,
            error,
            "poison pill: this record failed the job on every try; it is skipped and dead-lettered"
        );
        self.metrics.poison_pills.fetch_add(1, Ordering::Relaxed);
        self.metrics.records_in.fetch_add(1, Ordering::Relaxed);
        let reason = format!("poison pill: failed the job {attempts} times: {error}");
        self.dead_letter(message, &reason);
    }

    /// Applies `messages` to the engine as one batch and publishes its result changes;
    /// refused records go to the dead-letter topic.
    fn engine_batch(&mut self, messages: &[BorrowedMessage<'_>], end: &str) -> Result<usize> {
        let first = self.pipeline.stats().records;
        let records: Vec<Record<'_>> = messages
            .iter()
            .map(|message| Record {
                topic: message.topic(),
                key: message.key(),
                value: message.payload(),
            })
            .collect();
        let (batch, refused) = decode_in_parallel(self.decoders, &records, RECORDS_PER_THREAD)?;
        let mut refused = refused.into_iter().peekable();
        for (index, message) in messages.iter().enumerate() {
            if let Some((_, error)) = refused.next_if(|(r, _)| *r == index) {
                self.dead_letter(message, &error.to_string());
            } else if message.payload().is_some_and(|v| v.trim_ascii().is_empty()) {
                // The engine reads a blank value as a tombstone and ignores it; on Kafka a
                // tombstone has no value at all (null), so a blank one is a broken record
                // that would otherwise vanish uncounted. Ignored by the engine, it changed
                // nothing there.
                self.dead_letter(message, &blank_value(message.topic()));
            }
        }
        for rejected in self.pipeline.apply(batch)? {
            let message = &messages[(rejected.ordinal - first) as usize];
            self.dead_letter(message, &rejected.error.to_string());
        }
        let changes = self.pipeline.drain();
        let mut published = 0;
        for encoded in changes
            .iter()
            .flat_map(|change| self.encoder.encode(change))
        {
            let headers = OwnedHeaders::new().insert(Header {
                key: SOURCE_END_HEADER,
                value: Some(end),
            });
            self.sink.send(
                &self.config.output_topic,
                encoded.key.as_bytes(),
                encoded.value.as_deref().map(str::as_bytes),
                Some(headers),
            )?;
            published += 1;
        }
        let records = messages.len();
        let metrics = self.metrics;
        metrics
            .records_in
            .fetch_add(records as u64, Ordering::Relaxed);
        metrics.records_out.fetch_add(published, Ordering::Relaxed);
        Ok(records)
    }

    fn dead_letter(&self, message: &BorrowedMessage<'_>, reason: &str) {
        tracing::warn!(
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            reason = dead_letter::truncate_text(reason, dead_letter::MAX_REASON_BYTES),
            "event dead-lettered"
        );
        self.metrics.dead_letters.fetch_add(1, Ordering::Relaxed);
        dead_letter::send(
            self.sink,
            &self.config.dead_letter_topic,
            self.config.dead_letter_max_bytes,
            message,
            reason,
        );
    }
}

/// Why a record with an empty (or all-whitespace), not null, value is refused.
fn blank_value(topic: &str) -> String {
    format!(
        "event on topic `{topic}`: the value is empty, which is neither a Debezium event nor a tombstone (a tombstone's value is null)"
    )
}
