//! A client for the Kafka Connect REST API: the endpoints that manage Debezium connectors.
//!
//! Used: `POST /connectors`, `GET /connectors`, `GET /connectors/{name}/status`,
//! `DELETE /connectors/{name}`, as documented for Kafka Connect.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct ConnectClient {
    base: String,
    http: reqwest::Client,
}

impl ConnectClient {
    pub fn new(base_url: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a client without TLS or proxies always builds");
        ConnectClient {
            base: base_url.trim_end_matches('/').to_string(),
            http,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        request.send().await.map_err(unreachable)
    }

    /// Registers a connector; one that already exists under `name` is left as it is.
    pub async fn create(&self, name: &str, config: Map<String, Value>) -> Result<()> {
        let request = self.http.post(self.url("/connectors"));
        let response = self
            .call(request.json(&json!({ "name": name, "config": config })))
            .await?;
        match response.status() {
            s if s.is_success() => Ok(()),
            StatusCode::CONFLICT => Ok(()),
            s => Err(refused(s, response).await),
        }
    }

    /// The connector's state (`RUNNING`, `PAUSED`, `FAILED`, …), or `None` if Connect does
    /// not know it.
    pub async fn state(&self, name: &str) -> Result<Option<String>> {
        let path = format!("/connectors/{name}/status");
        let response = self.call(self.http.get(self.url(&path))).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let body: Value = response.json().await.map_err(unreachable)?;
                Ok(body["connector"]["state"].as_str().map(str::to_string))
            }
            s => Err(refused(s, response).await),
        }
    }

    /// Deletes a connector; one that does not exist is not an error.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let path = format!("/connectors/{name}");
        let response = self.call(self.http.delete(self.url(&path))).await?;
        match response.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Ok(()),
            s => Err(refused(s, response).await),
        }
    }

    /// The names of every connector Connect runs.
    pub async fn list(&self) -> Result<Vec<String>> {
        let response = self.call(self.http.get(self.url("/connectors"))).await?;
        match response.status() {
            s if s.is_success() => response.json().await.map_err(unreachable),
            s => Err(refused(s, response).await),
        }
    }
}

fn unreachable(e: reqwest::Error) -> Error {
    Error::Connect(format!("request failed: {}", e.without_url()))
}

/// Connect's own error message (`{"error_code", "message"}`), which names the problem.
async fn refused(status: StatusCode, response: reqwest::Response) -> Error {
    let message = response
        .json::<Value>()
        .await
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_default();
    Error::Connect(format!("{status}: {message}"))
}
