//! Eddy's integration tests, in one test binary (each module is a topic).
//!
//! They need PostgreSQL's server programs (Debian's `postgresql` package: the newest
//! `/usr/lib/postgresql/*/bin`, or `EDDY_PG_BIN`); as root they run them as the `postgres` user.
//! The TLS tests make their certificates with the `openssl` command (which Debian's
//! `postgresql` brings along).
//! The service and workload tests need tansu, a Kafka-protocol broker (`cargo install tansu --features
//! dynostore`; `$TANSU` or `~/.cargo/bin/tansu`).

mod support;

mod auth;
mod cli;
mod live;
mod mysql_app;
mod partitions;
mod pg_app;
mod pg_connector;
mod pg_tls;
mod poison;
mod service;
mod type_edges;
mod workload;
