//! Eddy's job service: the seed's REST API, jobs that survive restarts, and Kafka Connect.
//!
//! # Layout
//!
//! - [`api`]: the HTTP endpoints (`router`), bodies as JSON or form fields, errors as
//!   status + stable code.
//! - [`service`]: what the endpoints do: validate everything, then create.
//! - [`connection`]: connection strings, their redaction, and Debezium connector settings.
//! - [`connect`]: the Kafka Connect REST client.
//! - [`registry`]: job definitions on disk.
//! - [`supervisor`]: a thread per job, restarts with backoff, stop with a checkpoint.

pub mod api;
pub mod connect;
pub mod connection;
mod error;
pub mod registry;
pub mod service;
pub mod supervisor;

pub use api::router;
pub use error::{Error, Result};
pub use service::Service;
pub use supervisor::{Settings, Supervisor};
