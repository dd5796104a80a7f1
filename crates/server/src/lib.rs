//! Eddy's job service: the seed's REST API, jobs that survive restarts, and connectors
//! (Eddy's own for PostgreSQL, or Kafka Connect's).
//!
//! # Layout
//!
//! - [`api`]: the HTTP endpoints (`router`), bodies as JSON or form fields, answers as typed
//!   structs ([`api::wire`]) that the OpenAPI document (`GET /openapi.json`) is generated
//!   from, errors as status + stable code; the edge in front of them (request ids, time
//!   limits, CORS, rate limits).
//! - [`auth`]: the admin credential and environment tokens, and what each caller may touch.
//! - [`service`]: what the endpoints do: validate everything, then create.
//! - [`connection`]: connection strings, their redaction, and Debezium connector settings.
//! - [`connect`]: the Kafka Connect REST client.
//! - [`pg_connectors`]: Eddy's own PostgreSQL connectors, run in this process when there
//!   is no Kafka Connect.
//! - [`sealed`]: secrets at rest (a connector's password), encrypted with a key kept
//!   outside the data directory.
//! - [`registry`]: job definitions on disk (written as [`durable`] files are).
//! - [`supervisor`]: a thread per job, restarts with backoff, stop with a checkpoint; what
//!   it records of each job: its history ([`runs`]) and its recent log lines
//!   ([`job_logs`]).
//! - [`job_state`]: a job's checkpointed state read back: its size and its result rows.

pub mod api;
pub mod auth;
pub mod connect;
pub mod connection;
pub mod durable;
mod error;
pub mod job_logs;
pub mod job_state;
mod live_schema;
pub mod pg_connectors;
pub mod registry;
pub mod runs;
pub mod sealed;
pub mod service;
pub mod supervisor;

pub use api::edge::{EdgeOptions, callers_of, with_edge};
pub use api::router;
pub use error::{AuthFailure, Error, Result};
pub use service::Service;
pub use supervisor::{Settings, Supervisor};
