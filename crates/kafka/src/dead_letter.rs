//! Dead letters: a refused record, capped so that writing it can never fail for its size.
//!
//! A record is refused because something in it is wrong, and the wrong thing may be its size:
//! a value the broker took on the way in can be larger than the job's own producer allows,
//! and a dead letter carrying it whole would fail to send, fail the job, and be met again on
//! every restart. So a dead letter always carries where the record came from and why it was
//! refused, and its key and value only up to [`DEFAULT_MAX_BYTES`] (or the job's setting),
//! with a header giving the original size of whatever was cut.

use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};

use crate::sink::Sink;

/// How much of a refused record's key, and of its value, a dead letter keeps by default.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024;

/// The longest reason an `eddy.error` header (or a log line) carries: an error can quote
/// the record.
pub(crate) const MAX_REASON_BYTES: usize = 4096;

/// Header naming why the record was refused.
pub const ERROR_HEADER: &str = "eddy.error";
/// Header giving the original size in bytes of a key that was cut to fit.
pub const TRUNCATED_KEY_HEADER: &str = "eddy.truncated.key";
/// Header giving the original size in bytes of a value that was cut to fit.
pub const TRUNCATED_VALUE_HEADER: &str = "eddy.truncated.value";

/// Sends `message` to `topic` as a dead letter; returns whether the producer took it (a
/// refusal, now or at delivery, is counted and logged by the sink, never an error).
pub(crate) fn send(
    sink: &Sink,
    topic: &str,
    max_bytes: usize,
    message: &BorrowedMessage<'_>,
    reason: &str,
) -> bool {
    let key = message.key().unwrap_or_default();
    let value = message.payload();
    let mut headers = headers(
        reason,
        message.topic(),
        message.partition(),
        message.offset(),
    );
    if key.len() > max_bytes {
        headers = headers.insert(Header {
            key: TRUNCATED_KEY_HEADER,
            value: Some(&key.len().to_string()),
        });
    }
    if let Some(value) = value.filter(|v| v.len() > max_bytes) {
        headers = headers.insert(Header {
            key: TRUNCATED_VALUE_HEADER,
            value: Some(&value.len().to_string()),
        });
    }
    sink.send_dead_letter(
        topic,
        cut(key, max_bytes),
        value.map(|v| cut(v, max_bytes)),
        headers,
    )
}

/// The first `max` bytes of `bytes`.
fn cut(bytes: &[u8], max: usize) -> &[u8] {
    &bytes[..bytes.len().min(max)]
}

/// Headers naming why a record was dead-lettered and where it came from.
pub fn headers(reason: &str, topic: &str, partition: i32, offset: i64) -> OwnedHeaders {
    OwnedHeaders::new()
        .insert(Header {
            key: ERROR_HEADER,
            value: Some(truncate_text(reason, MAX_REASON_BYTES)),
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

/// `text` cut to at most `max` bytes, at a character boundary.
pub(crate) fn truncate_text(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_reason_is_cut_at_a_character_boundary() {
        let reason = "é".repeat(MAX_REASON_BYTES);
        let cut = truncate_text(&reason, MAX_REASON_BYTES);
        assert_eq!(cut.len(), MAX_REASON_BYTES);
        assert_eq!(truncate_text(&reason, 3), "é");
        assert_eq!(truncate_text("short", MAX_REASON_BYTES), "short");
    }
}
