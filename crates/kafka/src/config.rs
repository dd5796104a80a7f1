//! librdkafka settings shared by every client the crate makes.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use rdkafka::ClientConfig;
use rdkafka::producer::BaseProducer;

use crate::error::{Error, Result};

/// Properties every client of this process gets besides its own: what a broker that
/// requires authentication or TLS needs (`security.protocol`, `sasl.*`, `ssl.*`).
/// Process-wide because a process talks to one Kafka cluster; set once, at start.
static CLIENT_PROPERTIES: OnceLock<BTreeMap<String, String>> = OnceLock::new();

/// Gives every Kafka client this process makes from now on `properties` (librdkafka's
/// names), after Eddy's defaults and before what each client needs for its work (a job's
/// consumer keeps its own offsets, whatever is set here). Checked at once: a property
/// librdkafka does not know or a value it refuses is an error naming it, and
/// `bootstrap.servers` is refused (the brokers are given on their own). Set once per
/// process; a second call is an error.
pub fn set_client_properties(properties: BTreeMap<String, String>) -> Result<()> {
    if properties.contains_key("bootstrap.servers") {
        return Err(Error::ClientProperty(
            "`bootstrap.servers`: give the brokers with --brokers instead".into(),
        ));
    }
    client_with("127.0.0.1:9092", &properties)
        .create::<BaseProducer>()
        .map_err(|e| Error::ClientProperty(e.to_string()))?;
    CLIENT_PROPERTIES
        .set(properties)
        .map_err(|_| Error::ClientProperty("the client properties are already set".into()))
}

/// A client for `brokers` with settings that suit a stream processor on any broker,
/// tansu included, and the process' client properties.
pub(crate) fn client(brokers: &str) -> ClientConfig {
    match CLIENT_PROPERTIES.get() {
        Some(properties) => client_with(brokers, properties),
        None => client_with(brokers, &BTreeMap::new()),
    }
}

fn client_with(brokers: &str, properties: &BTreeMap<String, String>) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("socket.keepalive.enable", "true")
        // Metadata is refreshed often so that topics created after the job started (a
        // connector's first events) are found quickly.
        .set("topic.metadata.refresh.interval.ms", "2000");
    for (name, value) in properties {
        config.set(name, value);
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_come_after_the_defaults_and_bad_ones_are_named() {
        let properties = BTreeMap::from([
            (
                "security.protocol".to_string(),
                "SASL_PLAINTEXT".to_string(),
            ),
            ("sasl.mechanism".to_string(), "PLAIN".to_string()),
            ("sasl.username".to_string(), "eddy".to_string()),
            ("sasl.password".to_string(), "secret".to_string()),
            (
                "topic.metadata.refresh.interval.ms".to_string(),
                "5000".to_string(),
            ),
        ]);
        let config = client_with("b:9092", &properties);
        assert_eq!(config.get("security.protocol"), Some("SASL_PLAINTEXT"));
        assert_eq!(
            config.get("topic.metadata.refresh.interval.ms"),
            Some("5000")
        );
        assert_eq!(config.get("bootstrap.servers"), Some("b:9092"));
        if let Err(e) = config.create::<BaseProducer>() {
            panic!("{e}");
        }

        let unknown = BTreeMap::from([("no.such.property".to_string(), "1".to_string())]);
        let error = set_client_properties(unknown).unwrap_err().to_string();
        assert!(error.contains("no.such.property"), "{error}");
        let brokers = BTreeMap::from([("bootstrap.servers".to_string(), "x".to_string())]);
        let error = set_client_properties(brokers).unwrap_err().to_string();
        assert!(error.contains("--brokers"), "{error}");
        // TLS and SCRAM are built in (OpenSSL, built with librdkafka).
        let scram_over_tls = BTreeMap::from([
            ("security.protocol".to_string(), "SASL_SSL".to_string()),
            ("sasl.mechanism".to_string(), "SCRAM-SHA-512".to_string()),
            ("sasl.username".to_string(), "eddy".to_string()),
            ("sasl.password".to_string(), "secret".to_string()),
        ]);
        if let Err(e) = client_with("b:9092", &scram_over_tls).create::<BaseProducer>() {
            panic!("{e}");
        }
        let missing = BTreeMap::from([
            ("security.protocol".to_string(), "SSL".to_string()),
            (
                "ssl.ca.location".to_string(),
                "/nonexistent/ca.pem".to_string(),
            ),
        ]);
        let error = set_client_properties(missing).unwrap_err().to_string();
        assert!(error.contains("ssl.ca.location"), "{error}");
        assert!(
            CLIENT_PROPERTIES.get().is_none(),
            "a refused set leaves nothing set"
        );
    }
}
