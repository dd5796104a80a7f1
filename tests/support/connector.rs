//! Eddy's PostgreSQL connector run inside the test process, its events kept in memory, and
//! the view of a change record that comparisons with Debezium's records use.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eddy_postgres::PgConfig;
use eddy_postgres::connector::{self, Settings, Sink, State, Status};
use eddy_postgres::events::ChangeEvent;
use eddy_postgres::values::Modes;
use serde_json::Value;

use crate::support::kafka::Received;
use crate::support::postgres::PgServer;

/// Change records per topic, in order, as [`comparable`] shows them.
pub type Records = BTreeMap<String, Vec<Value>>;

/// Every event the connector hands over, kept in memory.
#[derive(Clone, Default)]
pub struct Collected(pub Arc<Mutex<Vec<ChangeEvent>>>);

impl Sink for Collected {
    async fn deliver(&mut self, events: Vec<ChangeEvent>) -> eddy_postgres::Result<()> {
        self.0.lock().unwrap().extend(events);
        Ok(())
    }
}

/// A connector running on its own runtime; stopped on drop.
pub struct InProcess {
    pub status: Arc<Mutex<Status>>,
    pub collected: Collected,
    task: tokio::task::JoinHandle<eddy_postgres::Result<()>>,
    runtime: tokio::runtime::Runtime,
}

/// The connection settings of `db` on `pg` as the superuser.
pub fn config(pg: &PgServer, user: &str, db: &str) -> PgConfig {
    PgConfig::parse(&format!(
        "postgresql://{user}@127.0.0.1:{}/{db}?sslmode=disable",
        pg.port()
    ))
    .unwrap()
}

impl InProcess {
    /// Starts the connector of `environment` on database `db`.
    pub fn start(pg: &PgServer, db: &str, environment: &str, modes: Modes) -> InProcess {
        InProcess::start_with(config(pg, "postgres", db), environment, modes)
    }

    /// Starts the connector of `environment` with the connection settings `postgres`.
    pub fn start_with(postgres: PgConfig, environment: &str, modes: Modes) -> InProcess {
        let settings = Settings {
            postgres,
            environment: environment.into(),
            modes,
            temporary_slot: false,
        };
        let collected = Collected::default();
        let status = Arc::new(Mutex::new(Status::default()));
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let task = {
            let (mut sink, status) = (collected.clone(), Arc::clone(&status));
            runtime.spawn(async move { connector::run(settings, &mut sink, status).await })
        };
        InProcess {
            status,
            collected,
            task,
            runtime,
        }
    }

    /// Waits (a minute at most) until `done` holds of the status and the events so far;
    /// fails the test if the connector fails first.
    pub fn wait(&self, what: &str, done: impl Fn(&Status, &[ChangeEvent]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = self.status.lock().unwrap().clone();
            if done(&status, &self.collected.0.lock().unwrap()) {
                return;
            }
            assert!(
                status.state != State::Failed && Instant::now() < deadline,
                "waiting for {what}: {status:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the snapshot is done and the connector streams.
    pub fn wait_until_streaming(&self) {
        self.wait("the snapshot", |status, _| status.state == State::Streaming);
    }

    /// Waits until the first `c` event on `topic`.
    pub fn wait_for_insert(&self, topic: &str) {
        self.wait(&format!("an insert on {topic}"), |_, events| {
            events
                .iter()
                .any(|e| &*e.topic == topic && e.value_json().is_some_and(|v| v["op"] == "c"))
        });
    }

    /// Waits (a minute at most) until the connector stops; returns its error.
    pub fn failure(self) -> eddy_postgres::Error {
        let outcome = self
            .runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(60), self.task).await });
        match outcome {
            Ok(Ok(Err(e))) => e,
            Ok(Ok(Ok(()))) => panic!("the connector ended without an error"),
            Ok(Err(e)) => panic!("the connector task panicked: {e}"),
            Err(_) => panic!(
                "the connector still runs: {:?}",
                self.status.lock().unwrap()
            ),
        }
    }

    /// Stops the connector; returns every event it delivered.
    pub fn stop(self) -> Vec<ChangeEvent> {
        self.task.abort();
        let events = self.collected.0.lock().unwrap().clone();
        // Dropping the runtime closes the connector's connections.
        drop(self.runtime);
        events
    }
}

/// A record as the comparison sees it: the fields that depend on when and where in the WAL
/// it was written (`ts_*`, `lsn`, `sequence`, `txId`) and `source.version` left out, and
/// of the headers only Debezium's key-change ones.
pub fn comparable(topic: &str, key: &Value, value: &Value, headers: &[(String, String)]) -> Value {
    let mut value = value.clone();
    if let Some(envelope) = value.as_object_mut() {
        for field in ["ts_ms", "ts_us", "ts_ns"] {
            envelope.remove(field);
        }
        if let Some(source) = envelope.get_mut("source").and_then(Value::as_object_mut) {
            for field in [
                "ts_ms", "ts_us", "ts_ns", "lsn", "sequence", "txId", "version",
            ] {
                source.remove(field);
            }
        }
    }
    let headers: Vec<Value> = headers
        .iter()
        .filter(|(name, _)| name == "__debezium.oldkey" || name == "__debezium.newkey")
        .map(|(name, text)| serde_json::json!([name, serde_json::from_str::<Value>(text).unwrap()]))
        .collect();
    serde_json::json!({"topic": topic, "key": key, "value": value, "headers": headers})
}

/// The connector's events, per topic.
pub fn event_records(events: &[ChangeEvent]) -> Records {
    let mut topics = Records::new();
    for e in events {
        let key = e.key_json().unwrap_or(Value::Null);
        let value = e.value_json().unwrap_or(Value::Null);
        let entry = comparable(&e.topic, &key, &value, &e.headers);
        topics.entry(e.topic.to_string()).or_default().push(entry);
    }
    topics
}

/// Messages read from a broker's `topic`.
pub fn received_records(topic: &str, messages: &[Received]) -> Vec<Value> {
    let json = |text: &Option<String>| {
        text.as_deref()
            .map_or(Value::Null, |t| serde_json::from_str(t).unwrap())
    };
    messages
        .iter()
        .map(|m| comparable(topic, &json(&m.key), &json(&m.value), &m.headers))
        .collect()
}

/// The same topics, and in each the same records in the same order.
pub fn assert_same_records(ours: &Records, theirs: &Records, what: &str) {
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "{what}: topics"
    );
    for (topic, expected) in theirs {
        let got = &ours[topic];
        for (i, (g, e)) in got.iter().zip(expected).enumerate() {
            assert_eq!(g, e, "{what}: {topic} record {i}");
        }
        assert_eq!(got.len(), expected.len(), "{what}: records of {topic}");
    }
}
