//! Eddy's PostgreSQL side: connection strings, preflight checks, and (in later modules) the
//! change-data-capture connector that writes what Debezium's PostgreSQL connector writes.
//!
//! # Layout
//!
//! - [`config`]: connection strings in URL and `key=value` form, percent-decoded exactly.
//! - [`tls`]: `sslmode` and its certificate files over rustls, for both kinds of
//!   connection, with SCRAM's channel binding.
//! - [`preflight`]: every check a connector needs before anything is created, each with
//!   its own reason.
//! - [`replication`]: the walsender connection (login, replication commands, the CopyBoth
//!   stream, standby status updates); [`pgoutput`] decodes what it carries; [`lsn`] are
//!   its positions.
//! - [`catalog`]: captured tables' columns, kinds and primary keys.
//! - [`events`]: Debezium change events (key, envelope, headers) in JSON without schemas.
//! - [`connector`]: publication and slot, snapshot through the exported snapshot, then the
//!   stream, confirming to PostgreSQL only what the sink acknowledged.
//! - [`values`]: column values, from PostgreSQL's text output to Debezium's JSON encodings.
//!
//! This crate does not depend on the engine: it speaks PostgreSQL and writes Debezium JSON.

pub mod catalog;
pub mod config;
pub mod connector;
mod error;
pub mod events;
pub mod lsn;
pub mod pgoutput;
pub mod preflight;
pub mod replication;
pub mod tls;
pub mod values;

pub use config::{ChannelBinding, PgConfig, SslMode, TlsFiles};
pub use error::{Error, Result, describe};
pub use lsn::Lsn;
