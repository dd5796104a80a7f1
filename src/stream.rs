//! `eddy run --postgres URL`: a job straight off PostgreSQL's replication stream, no broker;
//! each transaction's result changes are printed as they happen.
//!
//! The slot is temporary (PostgreSQL drops it when the connection ends), so every run
//! takes its own snapshot and no WAL is kept behind it; the publication `eddy_run` (FOR ALL
//! TABLES) stays for the next run.

use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use eddy_engine::{Encoder, Pipeline, Record};
use eddy_postgres::PgConfig;
use eddy_postgres::connector::{self, Settings, Sink, Status};
use eddy_postgres::events::ChangeEvent;
use eddy_postgres::values::Modes;

/// Topics are named `<environment>.<schema>.<table>` as the connector writes them.
const ENVIRONMENT: &str = "run";

/// Applies each delivered batch (one transaction, or a slice of the snapshot) and prints
/// its net result changes.
struct Printer<'a> {
    pipeline: &'a mut Pipeline,
    encoder: &'a Encoder,
}

impl Printer<'_> {
    fn apply(&mut self, events: &[ChangeEvent]) -> Result<()> {
        for event in events {
            let key = event.key.as_deref();
            let value = event.value.as_deref();
            self.pipeline.push(Record {
                topic: &event.topic,
                key,
                value,
            })?;
        }
        for rejected in self.pipeline.flush()? {
            eprintln!("eddy: refused: {rejected:?}");
        }
        let mut out = std::io::stdout().lock();
        for change in self.pipeline.drain() {
            for line in self.encoder.lines(&change) {
                writeln!(out, "{line}")?;
            }
        }
        out.flush()?;
        Ok(())
    }
}

impl Sink for Printer<'_> {
    async fn deliver(&mut self, events: Vec<ChangeEvent>) -> eddy_postgres::Result<()> {
        self.apply(&events)
            .map_err(|e| eddy_postgres::Error::Sink(format!("{e:#}")))
    }
}

/// Runs the job until the stream fails or the process is stopped.
pub fn run(url: &str, pipeline: &mut Pipeline, encoder: &Encoder) -> Result<()> {
    let postgres = PgConfig::parse(url).context("--postgres")?;
    let settings = Settings {
        postgres,
        environment: ENVIRONMENT.into(),
        modes: Modes::default(),
        temporary_slot: true,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut printer = Printer { pipeline, encoder };
    let status = Arc::new(Mutex::new(Status::default()));
    runtime
        .block_on(connector::run(settings, &mut printer, status))
        .context("reading PostgreSQL")
}
