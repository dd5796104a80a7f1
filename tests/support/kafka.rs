//! A real Kafka-protocol broker (tansu, in memory, on a free loopback port) and the test's own
//! clients: topic creation, a producer, and a reader that returns everything in a topic.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use super::eddy::{Fields, Folded};

/// The tansu binary: `$TANSU`, else `~/.cargo/bin/tansu`, else `tansu` on the `PATH`.
fn tansu() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU") {
        return path.into();
    }
    let installed =
        PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo/bin/tansu");
    if installed.exists() {
        installed
    } else {
        "tansu".into()
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The largest record the test producer sends: well above Kafka's 1 MiB default, as a
/// broker configured for large messages takes them.
const MAX_MESSAGE_BYTES: &str = "16777216";

/// A record to produce: topic, key, value, and partition (`None`: the producer's
/// partitioner decides).
pub type Placed<'a, K, V> = (&'a String, Option<K>, Option<V>, Option<i32>);

/// A tansu broker with in-memory storage, stopped on drop.
pub struct Broker {
    child: Child,
    pub address: String,
    producer: std::sync::OnceLock<ThreadedProducer<DefaultProducerContext>>,
}

impl Broker {
    pub fn start() -> Broker {
        Self::start_with(&[], None)
    }

    /// A broker that validates the records of each topic that `dir` holds a JSON schema
    /// for (`<topic>.json`, with `properties.key` and `properties.value`), and refuses those
    /// that do not match (`INVALID_RECORD`).
    pub fn start_with_schemas(dir: &std::path::Path) -> Broker {
        // tansu reads a `file://` URL's path relative to its working directory.
        let name = dir.file_name().expect("a directory name").to_string_lossy();
        let url = format!("file://./{name}");
        Self::start_with(&["--schema-registry", &url], dir.parent())
    }

    fn start_with(extra: &[&str], dir: Option<&std::path::Path>) -> Broker {
        let port = free_port();
        let listener = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu())
            .args(["broker", "--storage-engine", "memory://tansu/"])
            .args(["--listener-url", &listener, "--advertised-listener-url", &listener])
            .args(extra)
            .current_dir(dir.unwrap_or(std::path::Path::new(".")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting tansu ({}): {e}; install it with `cargo install tansu --features dynostore` (.ci/run does)",
                    tansu().display()
                )
            });
        wait_for_port(port, "tansu");
        Broker {
            child,
            address: format!("127.0.0.1:{port}"),
            producer: std::sync::OnceLock::new(),
        }
    }

    pub fn create_topics(&self, topics: &[&str]) {
        self.create_partitioned_topics(topics, 1);
    }

    /// tansu creates no topic on first use: topics of several partitions are made here.
    pub fn create_partitioned_topics(&self, topics: &[&str], partitions: i32) {
        eddy_kafka::admin::ensure_topics_blocking(&self.address, topics, partitions)
            .expect("creating topics");
    }

    /// Produces `(topic, key, value)` records in order and waits until all are acknowledged.
    pub fn produce<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        records: &[(String, Option<K>, Option<V>)],
    ) {
        let placed: Vec<_> = records
            .iter()
            .map(|(topic, key, value)| (topic, key.as_ref(), value.as_ref(), None))
            .collect();
        self.produce_placed(&placed);
    }

    /// Produces records in order and waits until all are acknowledged.
    pub fn produce_placed<K: AsRef<[u8]>, V: AsRef<[u8]>>(&self, records: &[Placed<'_, K, V>]) {
        let producer = self.producer.get_or_init(|| {
            ClientConfig::new()
                .set("bootstrap.servers", &self.address)
                .set("linger.ms", "5")
                .set("max.in.flight.requests.per.connection", "1")
                .set("message.max.bytes", MAX_MESSAGE_BYTES)
                // Kafka's default for keyed records (librdkafka's own default differs).
                .set("partitioner", "murmur2_random")
                .create()
                .expect("a producer")
        });
        for (topic, key, value, partition) in records {
            let mut record = BaseRecord::<[u8], [u8]>::to(topic);
            if let Some(key) = key {
                record = record.key(key.as_ref());
            }
            if let Some(value) = value {
                record = record.payload(value.as_ref());
            }
            if let Some(partition) = partition {
                record = record.partition(*partition);
            }
            let mut pending = record;
            while let Err((e, back)) = producer.send(pending) {
                assert!(
                    e.to_string().contains("Queue full"),
                    "producing to {topic}: {e}"
                );
                pending = back;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        producer
            .flush(Duration::from_secs(30))
            .expect("every record acknowledged");
    }

    /// Every message of a one-partition topic, oldest first: read until none has come for
    /// a second (tansu 0.6 reports a high watermark behind the last offset, so it cannot
    /// say when the end is reached).
    pub fn read_all(&self, topic: &str) -> Vec<Received> {
        self.read_partitions(topic, 1)
    }

    /// Every message of a topic's first `partitions` partitions, each partition's oldest
    /// first, as [`Broker::read_all`] reads them.
    pub fn read_partitions(&self, topic: &str, partitions: i32) -> Vec<Received> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .set(
                "group.id",
                format!("test-reader-{}", super::unique_name("r")),
            )
            .set("enable.auto.commit", "false")
            .create()
            .expect("a consumer");
        let mut list = TopicPartitionList::new();
        for partition in 0..partitions {
            list.add_partition_offset(topic, partition, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&list).unwrap();
        let mut messages = Vec::new();
        let mut last = Instant::now();
        while last.elapsed() < Duration::from_secs(1) {
            let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = message.unwrap_or_else(|e| panic!("reading {topic}: {e}"));
            let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
            let size = message.payload().map_or(0, <[u8]>::len);
            let headers = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_string(), text(h.value).unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            messages.push(Received {
                partition: message.partition(),
                key: text(message.key()),
                value: text(message.payload()),
                size,
                headers,
            });
            last = Instant::now();
        }
        messages
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone)]
pub struct Received {
    pub partition: i32,
    pub key: Option<String>,
    pub value: Option<String>,
    /// The value's size in bytes (0 for none).
    pub size: usize,
    pub headers: Vec<(String, String)>,
}

impl Received {
    /// The value of header `name`, if the message has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The partition Kafka's default partitioner (Java's, and librdkafka's `murmur2_random`)
/// gives a keyed record: murmur2 of the key bytes, made positive, modulo the partitions.
pub fn default_partition(key: &[u8], partitions: i32) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ key.len() as u32;
    let mut chunks = key.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes(chunk.try_into().expect("4 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, &b) in rest.iter().enumerate() {
            h ^= u32::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    ((h & 0x7fff_ffff) % partitions as u32) as i32
}

#[derive(serde::Deserialize)]
struct Envelope {
    after: Option<Fields>,
}

/// Folds a `debezium`-format output topic: the last `after` per key, or nothing when the last
/// message deleted it. Repeats of a message (after a restart) fold to the same result.
pub fn fold_debezium(messages: &[Received]) -> Folded {
    let mut folded = Folded::new();
    for message in messages {
        let key = message.key.clone().expect("result messages have keys");
        let after = message.value.as_deref().and_then(|v| {
            serde_json::from_str::<Envelope>(v)
                .unwrap_or_else(|e| panic!("not a debezium-json record ({e}): {v}"))
                .after
        });
        match after {
            Some(row) => folded.insert(key, row),
            None => folded.remove(&key),
        };
    }
    folded
}

/// Folds an `upsert`-format output topic: the last value per key; a null value (tombstone)
/// removes the key.
pub fn fold_upsert(messages: &[Received]) -> Folded {
    let mut folded = Folded::new();
    for message in messages {
        let key = message.key.clone().expect("result messages have keys");
        match message.value.as_deref() {
            Some(v) => folded.insert(
                key,
                serde_json::from_str(v).unwrap_or_else(|e| panic!("not a JSON row ({e}): {v}")),
            ),
            None => folded.remove(&key),
        };
    }
    folded
}
