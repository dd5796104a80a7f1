//! `/metrics` read back by a Prometheus text-format parser: every job the caller may see,
//! labelled, and nobody else's; the process' memory and CPU; a 401 without a credential.

use axum::http::StatusCode;

use super::auth::{job_of, onboard};
use super::*;

async fn scrape(router: &Router, token: Option<&str>) -> prometheus_parse::Scrape {
    let (status, headers, body) = exchange(router, token, get_request("/metrics")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = body.as_str().expect("a text body").to_string();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("not the Prometheus text format ({e}):\n{text}"))
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
    assert!(
        all.samples
            .iter()
            .any(|s| s.metric == "process_cpu_seconds_total")
    );

    let own = scrape(router, Some(&token_a)).await;
    assert_eq!(jobs_in(&own, "eddy_job_records_in_total"), [job_a]);

    let (status, _, _) = exchange(router, None, get_request("/metrics")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
