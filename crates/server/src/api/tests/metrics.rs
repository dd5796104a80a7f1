//! `/metrics` read back by a Prometheus text-format parser: every job the caller may see,
//! labelled, and nobody else's; a job's state size from its checkpoint; its batches,
//! batch latency histogram and checkpoint duration; the process' memory and CPU; a 401
//! without a credential.

use axum::http::StatusCode;

use super::auth::{job_of, onboard};
use super::*;
use crate::api::metrics::exposition;
use crate::registry::JobDefinition;
use crate::supervisor::{JobState, JobView};
use eddy_kafka::timings::JobTimings;

async fn scrape(router: &Router, token: Option<&str>) -> prometheus_parse::Scrape {
    let (status, headers, body) = exchange(router, token, get_request("/metrics")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    parse(body.as_str().expect("a text body"))
}

fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("not the Prometheus text format ({e}):\n{text}"))
}

/// The value of `metric` for `job`.
fn value_of(scrape: &prometheus_parse::Scrape, metric: &str, job: &str) -> prometheus_parse::Value {
    (scrape.samples.iter())
        .find(|s| s.metric == metric && s.labels.get("job") == Some(job))
        .unwrap_or_else(|| panic!("no {metric} for {job}"))
        .value
        .clone()
}

fn jobs_in(scrape: &prometheus_parse::Scrape, metric: &str) -> Vec<String> {
    let mut jobs: Vec<String> = (scrape.samples.iter())
        .filter(|s| s.metric == metric)
        .map(|s| s.labels.get("job").unwrap_or_default().to_string())
        .collect();
    jobs.sort();
    jobs
}

#[tokio::test]
async fn metrics_list_the_callers_jobs_and_the_process() {
    let fixture = fixture(None);
    let router = &fixture.router;
    let token_a = onboard(router, "metrics_a").await;
    let token_b = onboard(router, "metrics_b").await;
    let job_a = job_of(router, &token_a, "metrics_a").await;
    let job_b = job_of(router, &token_b, "metrics_b").await;

    let all = scrape(router, Some(ADMIN)).await;
    let mut both = vec![job_a.clone(), job_b.clone()];
    both.sort();
    for metric in [
        "eddy_job_records_in_total",
        "eddy_job_records_out_total",
        "eddy_job_dead_letters_total",
        "eddy_job_restarts_total",
        "eddy_job_up",
    ] {
        assert_eq!(jobs_in(&all, metric), both, "{metric}");
    }
    let sample = (all.samples.iter())
        .find(|s| s.metric == "eddy_job_records_in_total" && s.labels.get("job") == Some(&job_a))
        .unwrap();
    assert_eq!(sample.labels.get("environment"), Some("metrics_a"));
    assert!(matches!(sample.value, prometheus_parse::Value::Counter(n) if n == 0.0));
    assert!(all.docs.contains_key("eddy_job_records_in_total"));
    let rss = (all.samples.iter())
        .find(|s| s.metric == "process_resident_memory_bytes")
        .expect("the process' memory");
    assert!(matches!(rss.value, prometheus_parse::Value::Gauge(n) if n > 1e6));

    assert!(matches!(cpu_of(&all), prometheus_parse::Value::Counter(n) if n > 0.0));
    for job in [&job_a, &job_b] {
        assert_eq!(
            value_of(&all, "eddy_job_batches_total", job),
            prometheus_parse::Value::Counter(0.0)
        );
        let prometheus_parse::Value::Histogram(buckets) =
            value_of(&all, "eddy_job_batch_duration_seconds", job)
        else {
            panic!("not a histogram")
        };
        assert_eq!(buckets.len(), eddy_kafka::timings::BATCH_BUCKETS.len() + 1);
        assert!(buckets.iter().all(|b| b.count == 0.0));
    }
    // No job has saved a checkpoint yet: no state size to show.
    assert!(jobs_in(&all, "eddy_job_state_bytes").is_empty());

    let own = scrape(router, Some(&token_a)).await;
    assert_eq!(jobs_in(&own, "eddy_job_records_in_total"), [job_a]);

    let (status, _, _) = exchange(router, None, get_request("/metrics")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

fn cpu_of(scrape: &prometheus_parse::Scrape) -> prometheus_parse::Value {
    (scrape.samples.iter())
        .find(|s| s.metric == "process_cpu_seconds_total")
        .expect("the process' CPU time")
        .value
        .clone()
}

/// A job's timings, restarts and state size, each as its family says.
#[tokio::test]
async fn the_timing_families_carry_the_jobs_values() {
    let fixture = fixture(None);
    let router = &fixture.router;
    let token = onboard(router, "timed").await;
    let id = job_of(router, &token, "timed").await;
    let text =
        std::fs::read_to_string(fixture.data_dir.join("jobs").join(&id).join("job.json")).unwrap();
    let definition: JobDefinition = serde_json::from_str(&text).unwrap();
    let timings = JobTimings::default();
    timings.batch(std::time::Duration::from_millis(3));
    timings.batch(std::time::Duration::from_millis(30));
    timings.batch(std::time::Duration::from_secs(20));
    timings.checkpoint(std::time::Duration::from_millis(250));
    let job = JobView {
        definition,
        state: JobState::Running,
        error: None,
        restarts: 2,
        metrics: eddy_kafka::job::MetricsSnapshot {
            lag: Some(7),
            lag_by_partition: [("timed.public.t".to_string(), [(0, 7), (1, 0)].into())].into(),
            state_bytes: Some(4096),
            ..Default::default()
        },
        timings: timings.snapshot(),
    };
    let text = exposition(&[job]);
    let scrape = parse(&text);
    use prometheus_parse::Value::{Counter, Gauge, Histogram, Untyped};
    assert_eq!(
        value_of(&scrape, "eddy_job_batches_total", &id),
        Counter(3.0)
    );
    assert_eq!(
        value_of(&scrape, "eddy_job_restarts_total", &id),
        Counter(2.0)
    );
    assert_eq!(
        value_of(&scrape, "eddy_job_checkpoint_duration_seconds", &id),
        Gauge(0.25)
    );
    assert_eq!(
        value_of(&scrape, "eddy_job_state_bytes", &id),
        Gauge(4096.0)
    );
    assert_eq!(value_of(&scrape, "eddy_job_up", &id), Gauge(1.0));
    assert_eq!(value_of(&scrape, "eddy_job_lag", &id), Gauge(7.0));
    let partitions: Vec<(String, String, prometheus_parse::Value)> = (scrape.samples.iter())
        .filter(|s| s.metric == "eddy_job_partition_lag" && s.labels.get("job") == Some(&id))
        .map(|s| {
            let label = |name: &str| s.labels.get(name).unwrap_or_default().to_string();
            (label("topic"), label("partition"), s.value.clone())
        })
        .collect();
    assert_eq!(
        partitions,
        [
            ("timed.public.t".into(), "0".into(), Gauge(7.0)),
            ("timed.public.t".into(), "1".into(), Gauge(0.0)),
        ]
    );
    let Histogram(buckets) = value_of(&scrape, "eddy_job_batch_duration_seconds", &id) else {
        panic!("not a histogram: {text}")
    };
    let counts: Vec<(f64, f64)> = buckets.iter().map(|b| (b.less_than, b.count)).collect();
    assert_eq!(
        counts,
        [
            (0.005, 1.0),
            (0.01, 1.0),
            (0.025, 1.0),
            (0.05, 2.0),
            (0.1, 2.0),
            (0.25, 2.0),
            (0.5, 2.0),
            (1.0, 2.0),
            (2.5, 2.0),
            (10.0, 2.0),
            (f64::INFINITY, 3.0),
        ]
    );
    let Untyped(sum) = value_of(&scrape, "eddy_job_batch_duration_seconds_sum", &id) else {
        panic!("no sum: {text}")
    };
    assert!((sum - 20.033).abs() < 1e-9, "{sum}");
    assert_eq!(
        value_of(&scrape, "eddy_job_batch_duration_seconds_count", &id),
        Untyped(3.0)
    );
}
