//! librdkafka settings shared by every client the crate makes.

use rdkafka::ClientConfig;

/// A client for `brokers` with settings that suit a stream processor on any broker,
/// tansu included.
pub(crate) fn client(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("socket.keepalive.enable", "true")
        // Metadata is refreshed often so that topics created after the job started (a
        // connector's first events) are found quickly.
        .set("topic.metadata.refresh.interval.ms", "2000");
    config
}
