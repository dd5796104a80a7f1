//! `eddy`: runs an incremental SQL job over Debezium change events.
//!
//! `eddy run` reads Kafka records as JSON lines from a file (or stdin), keeps the query's
//! result exact as they arrive, and writes each net change of the result to stdout.
//! `eddy serve` runs the job service: the REST API on :7000, jobs over Kafka.

mod bench;
mod feed;
mod generate;
mod line_batches;
mod produce;
mod run;
mod serve;
mod stream;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "eddy",
    version,
    about = "Incremental aggregate SQL over Debezium changelogs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a query over Debezium records read from a JSON-lines file.
    Run(run::RunArgs),
    /// Write a deterministic Debezium changelog of the benchmark `orders` table.
    #[command(name = "gen")]
    Generate(generate::GenArgs),
    /// Measure a query over a changelog: throughput, CPU, memory, state, latency.
    Bench(bench::BenchArgs),
    /// Serve the job API (port 7000) and run jobs over Kafka.
    Serve(serve::ServeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Serve(args) => serve::serve(args),
        Command::Generate(args) => generate::generate(args),
        Command::Bench(args) => bench::bench(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eddy: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
