//! Eddy's engine: keeps the result of an aggregate SQL query exact, incrementally, as Debezium
//! change events arrive.
//!
//! # Layout
//!
//! The modules follow the data path, in order:
//!
//! - [`schema`]: the source tables, from the job's Prisma schema.
//! - [`debezium`]: a Kafka record's Debezium JSON decoded into typed row images.
//! - [`normalize`]: the primary-key normalizer (its rows packed by `keyed`); turns events into exact +1/-1 row changes
//!   against the rows it keeps, never trusting a `before` image that may be incomplete.
//! - [`change`]: the Arrow change batch (a Z-set: rows with +1/-1 weights) operators exchange.
//! - [`plan`]: SQL planned by DataFusion and compiled into incremental operators ([`ops`]).
//! - [`consolidate`]: the operators' output consolidated into one net change per result row.
//! - [`output`]: result changes encoded as upsert or Debezium JSON ([`temporal`] values as
//!   text over their whole range).
//! - [`pipeline`]: the public entry point tying these together, with snapshot and restore;
//!   its decoding half is a [`batch_decoder`], which may run on a thread of its own.
//! - [`memory`]: what each part of the state costs, for `eddy bench`.
//!
//! Beside the path: `keyed` (rows by key in one byte arena, under the normalizer and each
//! join side), `rows` (Arrow's row format as state keeps values) and `varint` (the lengths
//! and weights state packs).
//!
//! The engine knows nothing of Kafka, HTTP or PostgreSQL: records come in as
//! (topic, key, value) bytes and results leave as encoded bytes.

pub mod batch_decoder;
pub mod change;
pub mod consolidate;
pub mod debezium;
mod decimal;
pub mod error;
mod keyed;
pub mod memory;
pub mod normalize;
pub mod ops;
pub mod output;
pub mod pipeline;
pub mod plan;
mod rows;
pub mod schema;
pub mod temporal;
mod varint;

pub use batch_decoder::{BatchDecoder, DecodedBatch, RECORDS_PER_THREAD, decode_in_parallel};
pub use consolidate::{ChangeKind, ResultChange};
pub use error::{Error, Result};
pub use memory::StateUsage;
pub use output::{Encoder, Format};
pub use pipeline::{JobSpec, Pipeline, Record, RejectedEvent};
