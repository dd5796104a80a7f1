//! Each job's recent log lines: a `tracing` layer ([`JobLogLayer`]) hands every event
//! emitted inside a job's `job` span (its supervisor thread runs in one, `job = <id>`) to
//! that job's ring of the last [`KEPT_LINES`] lines, after masking anything that looks like
//! a password (a URL's `user:password@`, a `password=…` setting).

use std::collections::{HashMap, VecDeque};
use std::fmt::{Debug, Write};
use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;
use utoipa::ToSchema;

/// How many lines each job keeps; older ones are dropped.
pub const KEPT_LINES: usize = 200;

/// The name of the span a job's thread runs in; its field `job` is the job's id.
pub const JOB_SPAN: &str = "job";

/// One log line of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: String,
    /// The module that logged it.
    pub target: String,
    /// The message, then its fields as `name=value`, passwords masked.
    pub message: String,
}

/// Every job's recent lines.
#[derive(Debug, Default)]
pub struct JobLogs {
    jobs: Mutex<HashMap<String, VecDeque<LogLine>>>,
}

static GLOBAL: LazyLock<Arc<JobLogs>> = LazyLock::new(Arc::default);

/// The lines the process' subscriber collects, when it has a [`JobLogLayer`] over them.
pub fn global() -> &'static Arc<JobLogs> {
    &GLOBAL
}

impl JobLogs {
    /// Adds a line to the job's ring (its message masked), dropping the oldest past
    /// [`KEPT_LINES`].
    pub fn push(&self, job: &str, mut line: LogLine) {
        line.message = masked(&line.message);
        let mut jobs = self.jobs.lock();
        let lines = jobs.entry(job.to_string()).or_default();
        lines.push_back(line);
        while lines.len() > KEPT_LINES {
            lines.pop_front();
        }
    }

    /// The job's last `limit` lines, oldest first.
    pub fn recent(&self, job: &str, limit: usize) -> Vec<LogLine> {
        let jobs = self.jobs.lock();
        let Some(lines) = jobs.get(job) else {
            return Vec::new();
        };
        lines
            .iter()
            .skip(lines.len().saturating_sub(limit))
            .cloned()
            .collect()
    }

    /// Drops a deleted job's lines.
    pub fn forget(&self, job: &str) {
        self.jobs.lock().remove(job);
    }
}

/// The `tracing` layer feeding [`JobLogs`].
pub struct JobLogLayer {
    logs: Arc<JobLogs>,
}

impl JobLogLayer {
    pub fn new(logs: Arc<JobLogs>) -> Self {
        JobLogLayer { logs }
    }
}

/// The job a `job` span names, kept in the span's extensions.
struct JobOf(String);

impl<S> Layer<S> for JobLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        if attributes.metadata().name() != JOB_SPAN {
            return;
        }
        let mut text = Text::default();
        attributes.record(&mut text);
        if let (Some(job), Some(span)) = (text.job, context.span(id)) {
            span.extensions_mut().insert(JobOf(job));
        }
    }

    fn on_event(&self, event: &Event<'_>, context: Context<'_, S>) {
        let Some(scope) = context.event_scope(event) else {
            return;
        };
        let Some(job) = scope
            .from_root()
            .find_map(|span| span.extensions().get::<JobOf>().map(|j| j.0.clone()))
        else {
            return;
        };
        let mut text = Text::default();
        event.record(&mut text);
        let metadata = event.metadata();
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.logs.push(
            &job,
            LogLine {
                at_ms,
                level: metadata.level().to_string(),
                target: metadata.target().to_string(),
                message: text.message + &text.fields,
            },
        );
    }
}

/// An event's or span's fields as text: the message, the other fields, and a `job` field.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
    job: Option<String>,
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.record(field, format!("{value:?}"));
    }
}

impl Text {
    fn record(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            "job" => self.job = Some(value),
            name => {
                let _ = write!(self.fields, " {name}={value}");
            }
        }
    }
}

/// `text` with a URL's password (`scheme://user:password@`) and the value of a
/// `password=` setting replaced by `****`.
pub fn masked(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let authority_end = after
            .find(['/', ' ', '"', '\'', '?', '#'])
            .unwrap_or(after.len());
        let authority = &after[..authority_end];
        match authority
            .rfind('@')
            .and_then(|a| Some((a, authority[..a].find(':')?)))
        {
            Some((at_sign, colon)) => {
                out.push_str(&authority[..=colon]);
                out.push_str("****");
                out.push_str(&authority[at_sign..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_end..];
    }
    out.push_str(rest);
    mask_settings(&out)
}

/// `password=value` (any case, up to a space, quote, `&` or `;`) as `password=****`.
fn mask_settings(text: &str) -> String {
    const KEY: &str = "password=";
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    while let Some(found) = lower[from..].find(KEY) {
        let value_start = from + found + KEY.len();
        out.push_str(&text[from..value_start]);
        let value_len = text[value_start..]
            .find([' ', '"', '\'', '&', ';', ','])
            .unwrap_or(text.len() - value_start);
        if value_len > 0 {
            out.push_str("****");
        }
        from = value_start + value_len;
    }
    out.push_str(&text[from..]);
    out
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn events_in_a_job_span_go_to_that_job_masked_and_bounded() {
        let logs = Arc::new(JobLogs::default());
        let subscriber = tracing_subscriber::registry().with(JobLogLayer::new(Arc::clone(&logs)));
        tracing::subscriber::with_default(subscriber, || {
            let a = tracing::info_span!(JOB_SPAN, job = %"job-a");
            let _in_a = a.enter();
            tracing::warn!(
                group = "eddy-job-a",
                "connecting to postgresql://app:s3cret@db:5432/shop with password=hunter2"
            );
            let step = tracing::info_span!("step");
            step.in_scope(|| tracing::error!(attempt = 2, "batch failed"));
            drop(_in_a);
            tracing::info!("outside any job");
            let b = tracing::info_span!(JOB_SPAN, job = %"job-b");
            b.in_scope(|| {
                for n in 0..KEPT_LINES + 5 {
                    tracing::info!(n, "line");
                }
            });
        });
        let a = logs.recent("job-a", 10);
        let messages: Vec<(&str, &str)> = (a.iter())
            .map(|l| (l.level.as_str(), l.message.as_str()))
            .collect();
        assert_eq!(
            messages,
            [
                (
                    "WARN",
                    "connecting to postgresql://app:****@db:5432/shop with password=**** \
                     group=eddy-job-a"
                ),
                ("ERROR", "batch failed attempt=2"),
            ]
        );
        assert_eq!(a[0].target, module_path!());
        let b = logs.recent("job-b", usize::MAX);
        assert_eq!(b.len(), KEPT_LINES);
        assert_eq!(
            b.last().unwrap().message,
            format!("line n={}", KEPT_LINES + 4)
        );
        assert_eq!(
            logs.recent("job-b", 1)[0].message,
            b.last().unwrap().message
        );
        logs.forget("job-b");
        assert!(logs.recent("job-b", 10).is_empty());
    }

    #[test]
    fn masking_leaves_text_without_passwords_alone() {
        let plain = "http://connect:8083/connectors and postgresql://app@db/shop";
        assert_eq!(masked(plain), plain);
        assert_eq!(
            masked("mysql://root:p@ss@db:3306/x; PASSWORD=abc;next"),
            "mysql://root:****@db:3306/x; PASSWORD=****;next"
        );
    }
}
