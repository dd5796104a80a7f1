//! Eddy's Kafka side: a job that reads Debezium topics, runs the engine, and publishes results.
//!
//! # Layout
//!
//! - [`source`]: a consumer over the job's input topics, in micro-batches, whose positions
//!   are ours to choose (a checkpoint's), not the group's.
//! - [`sink`]: a producer that knows whether everything it was given has been acknowledged,
//!   which is what makes a checkpoint safe to take.
//! - [`dead_letter`]: refused records, capped so that writing them cannot fail for size.
//! - [`poison`]: records that fail the job on every restart, found and skipped.
//! - [`change_topics`]: Debezium change topics written by Eddy's own PostgreSQL connector.
//! - [`admin`]: creating the output and dead-letter topics (brokers such as tansu do not
//!   create topics on first use).
//! - [`checkpoint`]: the engine's snapshot and the source offsets it covers, in one file
//!   replaced atomically.
//! - [`job`]: the loop that ties them together, and its live counters ([`timings`]: how
//!   long its batches and checkpoints take).
//! - [`set_client_properties`]: librdkafka properties every client gets (SASL, TLS).
//!
//! # Delivery
//!
//! Results are published at least once and are keyed: a consumer that keeps the last value
//! per key sees exactly the uninterrupted answer. After a crash the job restores its last
//! checkpoint and reads again from the offsets recorded in it; the result changes it
//! publishes a second time are the same keyed values.

pub mod admin;
mod apply;
pub mod change_topics;
pub mod checkpoint;
mod config;
pub mod dead_letter;
mod error;
pub mod job;
pub mod poison;
pub mod sink;
pub mod source;
pub mod timings;

pub use config::set_client_properties;
pub use error::{Error, Result};
pub use job::{DEFAULT_DECODE_THREADS, Job, JobConfig, JobMetrics, SOURCE_END_HEADER};
pub use source::Offsets;
