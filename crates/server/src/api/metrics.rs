//! `GET /metrics`: the jobs the caller may see and the process itself, in Prometheus' text
//! exposition format (version 0.0.4).
//!
//! Written out by hand: the format is a few lines per family, and the counters already live
//! in each job's `JobMetrics` and `JobTimings`, so a metrics library would only copy them
//! into its own registry first. A job's state size is read from its last checkpoint (once
//! per checkpoint, see `job_state`).

use std::fmt::Write;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use crate::auth::Caller;
use crate::service::Service;
use crate::supervisor::{JobState, JobView};
use eddy_kafka::timings::BATCH_BUCKETS;

/// The jobs the caller may see (the admin: all; an environment's token: its own), and the
/// process, for Prometheus.
#[utoipa::path(
    get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus' text format 0.0.4",
        content_type = "text/plain", body = String)),
)]
pub async fn metrics_of_visible_jobs(
    State(service): State<Arc<Service>>,
    caller: Caller,
) -> Response {
    let jobs: Vec<JobView> = (service.supervisor().list().into_iter())
        .filter(|job| caller.sees(&job.definition.environment_id))
        .collect();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        exposition(&jobs),
    )
        .into_response()
}

/// A per-job family: its name after `eddy_job_`, its type, its help, and a job's value at
/// a moment (milliseconds since the Unix epoch); `None` leaves the job out of it.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&JobView, u64) -> Option<f64>,
);

const FAMILIES: [Family; 12] = [
    (
        "records_in_total",
        "counter",
        "Records read from the job's input topics.",
        |o, _| Some(o.metrics.records_in as f64),
    ),
    (
        "records_out_total",
        "counter",
        "Result changes the job published.",
        |o, _| Some(o.metrics.records_out as f64),
    ),
    (
        "dead_letters_total",
        "counter",
        "Records sent to the job's dead-letter topic.",
        |o, _| Some(o.metrics.dead_letters as f64),
    ),
    (
        "dead_letter_failures_total",
        "counter",
        "Dead letters their topic refused (those records were skipped).",
        |o, _| Some(o.metrics.dead_letter_failures as f64),
    ),
    (
        "poison_pills_total",
        "counter",
        "Records skipped because they failed the job on every try.",
        |o, _| Some(o.metrics.poison_pills as f64),
    ),
    (
        "restarts_total",
        "counter",
        "Times the job was started again after a failure.",
        |o, _| Some(f64::from(o.restarts)),
    ),
    (
        "lag",
        "gauge",
        "Messages in the job's input topics not read yet, when measured.",
        |o, _| o.metrics.lag.map(|lag| lag as f64),
    ),
    (
        "batches_total",
        "counter",
        "Batches (of at least one record) the job read, applied and published since its thread started.",
        |o, _| Some(o.timings.batches as f64),
    ),
    (
        "checkpoint_duration_seconds",
        "gauge",
        "How long the job's last checkpoint took (results acknowledged, state saved).",
        |o, _| o.timings.last_checkpoint_seconds,
    ),
    (
        "state_bytes",
        "gauge",
        "Bytes of the job's engine state (kept rows and operator state, serialized) in its last checkpoint.",
        |o, _| o.metrics.state_bytes.map(|bytes| bytes as f64),
    ),
    (
        "checkpoint_age_seconds",
        "gauge",
        "Seconds since the job's last checkpoint.",
        |o, now_ms| {
            (o.metrics.last_checkpoint_ms).map(|at| now_ms.saturating_sub(at) as f64 / 1000.0)
        },
    ),
    (
        "up",
        "gauge",
        "1 while the job runs, 0 while it is created, paused, failed or canceled.",
        |o, _| Some(f64::from(u8::from(o.state == JobState::Running))),
    ),
];

/// The exposition of `jobs` and of this process.
pub fn exposition(jobs: &[JobView]) -> String {
    let mut out = String::new();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    for (name, kind, help, value) in FAMILIES {
        let _ = writeln!(out, "# HELP eddy_job_{name} {help}");
        let _ = writeln!(out, "# TYPE eddy_job_{name} {kind}");
        for job in jobs {
            if let Some(value) = value(job, now_ms) {
                let _ = writeln!(out, "eddy_job_{name}{{{}}} {value}", labels(job));
            }
        }
    }
    partition_lag(&mut out, jobs);
    batch_latency(&mut out, jobs);
    process(&mut out);
    out
}

/// `eddy_job_partition_lag`: `eddy_job_lag` per input topic and partition.
fn partition_lag(out: &mut String, jobs: &[JobView]) {
    let name = "eddy_job_partition_lag";
    let _ = writeln!(
        out,
        "# HELP {name} Messages in one partition of the job's input topics not read yet, when measured.\n\
         # TYPE {name} gauge"
    );
    for job in jobs {
        let labels = labels(job);
        for (topic, partitions) in &job.metrics.lag_by_partition {
            for (partition, lag) in partitions {
                let topic = escape(topic);
                let _ = writeln!(
                    out,
                    "{name}{{{labels},topic=\"{topic}\",partition=\"{partition}\"}} {lag}"
                );
            }
        }
    }
}

/// `eddy_job_batch_duration_seconds`: a histogram per job of how long its batches took.
fn batch_latency(out: &mut String, jobs: &[JobView]) {
    let name = "eddy_job_batch_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} How long the job's batches took to read, apply and publish.\n\
         # TYPE {name} histogram"
    );
    for job in jobs {
        let (labels, timings) = (labels(job), &job.timings);
        for (bound, count) in BATCH_BUCKETS.iter().zip(timings.batch_buckets) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
        }
        let count = timings.batches;
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", timings.batch_seconds);
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

fn labels(job: &JobView) -> String {
    let definition = &job.definition;
    format!(
        "job=\"{}\",name=\"{}\",environment=\"{}\"",
        escape(&definition.id),
        escape(&definition.name),
        escape(&definition.environment_id)
    )
}

/// A label value as the format wants it: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The process' resident memory and CPU time, from `/proc/self` (Linux; left out
/// elsewhere).
fn process(out: &mut String) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    if let Some(kib) = rss_kib {
        let _ = writeln!(
            out,
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
             # TYPE process_resident_memory_bytes gauge\n\
             process_resident_memory_bytes {}",
            kib * 1024
        );
    }
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command (which may hold spaces, so split after its closing paren):
    // utime and stime are the 12th and 13th, in clock ticks of USER_HZ, which Linux fixes
    // at 100 for /proc whatever the kernel's own tick.
    let ticks: Option<u64> = stat.rsplit_once(')').and_then(|(_, rest)| {
        let fields: Vec<&str> = rest.split_whitespace().collect();
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    });
    if let Some(ticks) = ticks {
        let _ = writeln!(
            out,
            "# HELP process_cpu_seconds_total User and system CPU time spent in seconds.\n\
             # TYPE process_cpu_seconds_total counter\n\
             process_cpu_seconds_total {}",
            ticks as f64 / 100.0
        );
    }
}
