//! `eddy serve` as a child process, and a small HTTP client for its API.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::kafka::{free_port, wait_for_port};

/// The admin credential every test server is started with, and its helpers send.
pub const ADMIN_TOKEN: &str = "eddy-tests-admin-credential";

/// A running `eddy serve`; killed (SIGKILL) on drop.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    brokers: String,
    data_dir: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
    http: reqwest::blocking::Client,
}

impl Server {
    /// Starts a server over `brokers` keeping its state in `data_dir`, with fast batches and
    /// checkpoints so that tests see them, and [`ADMIN_TOKEN`] as its admin credential;
    /// `env` adds settings.
    pub fn start(brokers: &str, data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut server = Server {
            child: None,
            port: free_port(),
            brokers: brokers.to_string(),
            data_dir: data_dir.to_path_buf(),
            log: data_dir.with_extension("log"),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        };
        server.restart();
        server
    }

    /// Starts the process again on the same port, data directory and settings.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_eddy"))
            .arg("serve")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--brokers", &self.brokers])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env("EDDY_CHECKPOINT_INTERVAL_MS", "200")
            .env("EDDY_LINGER_MS", "20")
            // The tests produce Debezium's events themselves (or run real Debezium);
            // those of Eddy's own connector set this to `false`.
            .env("EDDY_EXTERNAL_CONNECTORS", "true")
            .env("EDDY_ADMIN_TOKEN", ADMIN_TOKEN)
            // Beside the data directory, not in it (nor in the user's home).
            .env(
                "EDDY_SECRET_KEY_FILE",
                self.data_dir.with_extension("secret.key"),
            )
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting eddy serve");
        self.child = Some(child);
        wait_for_port(self.port, "eddy serve");
    }

    /// `kill -9`: no batch is finished, no checkpoint taken.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, then waits for the process to exit; returns whether it exited cleanly.
    pub fn terminate(&mut self) -> bool {
        let mut child = self.child.take().expect("a running server");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        child.wait().unwrap().success()
    }

    /// Everything the server logged, over all its runs.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn reply(response: reqwest::blocking::Response) -> (u16, Value) {
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    /// A request as the admin.
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        self.request_as(Some(ADMIN_TOKEN), method, path)
    }

    /// A request with `token` as its bearer credential (none: unauthenticated).
    pub fn request_as(
        &self,
        token: Option<&str>,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends a request built by [`Server::request_as`]: the status and the JSON body.
    pub fn send(request: reqwest::blocking::RequestBuilder) -> (u16, Value) {
        Self::reply(request.send().unwrap())
    }

    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> (u16, Value) {
        Self::send(self.request(reqwest::Method::POST, path).form(fields))
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        Self::send(self.request(reqwest::Method::GET, path))
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        Self::send(self.request(reqwest::Method::DELETE, path))
    }

    /// Polls the job's status until `done` holds for it; panics with the last status after
    /// `timeout`.
    pub fn wait_for_job(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (code, status) = self.get(&format!("/jobStatus/{id}"));
            if code == 200 && done(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} not done after {timeout:?}: {status}\nserver log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the job's last checkpoint covers the first `count` messages of `topic`,
    /// summed over its partitions: every result of them is then acknowledged by the broker.
    pub fn wait_until_checkpointed(&self, id: &str, topic: &str, count: usize) -> Value {
        self.wait_for_job(id, Duration::from_secs(120), |s| {
            let read = s["checkpointOffsets"][topic]
                .as_object()
                .map(|partitions| partitions.values().filter_map(Value::as_u64).sum::<u64>());
            s["status"] == "RUNNING" && read == Some(count as u64)
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
