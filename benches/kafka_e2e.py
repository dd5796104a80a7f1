#!/usr/bin/env python3
"""End-to-end throughput of `eddy serve` through a Kafka broker (tansu), beside a bare consumer.

Starts tansu (in memory) on a free port, produces a Debezium changelog file into
`bench.public.orders`, times a bare consumer reading it all, then starts the release
`eddy serve`, creates a job over the REST API and times it until it has applied and
published every record. Prints a summary line and a JSON result.

    cargo build --release --bin eddy
    bash tests/debezium/setup.sh           # a venv with confluent-kafka
    python3 benches/gen_orders.py --events 1000000 > /tmp/orders-1m.jsonl
    target/debezium-venv/bin/python benches/kafka_e2e.py --input /tmp/orders-1m.jsonl
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
TOPIC = "bench.public.orders"
FETCH = {"fetch.min.bytes": 65536, "fetch.wait.max.ms": 50, "max.partition.fetch.bytes": 4194304}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what):
    deadline = time.time() + 30
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on {port}")


def produce(brokers, path):
    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 20, "batch.size": 1_000_000,
                         "queue.buffering.max.messages": 1_000_000})
    n = 0
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            key, value = record["key"], record["value"]
            while True:
                try:
                    producer.produce(TOPIC, key=None if key is None else json.dumps(key),
                                     value=None if value is None else json.dumps(value))
                    break
                except BufferError:
                    producer.poll(0.05)
            n += 1
    producer.flush(120)
    return n


def bare_consumer(brokers, n):
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "bench-bare",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False, **FETCH})
    consumer.subscribe([TOPIC])
    read, start = 0, None
    while read < n:
        for message in consumer.consume(num_messages=10_000, timeout=1.0):
            if message.error() is None:
                start = start or time.perf_counter()
                read += 1
    elapsed = time.perf_counter() - start
    consumer.close()
    return n / elapsed


def request(port, path, fields=None):
    data = urllib.parse.urlencode(fields).encode() if fields is not None else None
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", data=data, timeout=60) as r:
        return json.loads(r.read())


def proc_stats(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/status") as f:
        hwm = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    return cpu, hwm / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", required=True, help="Kafka-record JSON lines (benches/gen_orders.py)")
    ap.add_argument("--sql", default="SELECT status, COUNT(*), SUM(amount) FROM orders GROUP BY status")
    ap.add_argument("--eddy", default=str(ROOT / "target/release/eddy"))
    ap.add_argument("--tansu", default=shutil.which("tansu") or os.path.expanduser("~/.cargo/bin/tansu"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="eddy-bench-"))
    kafka_port, http_port = free_port(), free_port()
    brokers = f"127.0.0.1:{kafka_port}"
    url = f"tcp://{brokers}"
    tansu = subprocess.Popen([args.tansu, "broker", "--storage-engine", "memory://tansu/",
                              "--listener-url", url, "--advertised-listener-url", url],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    eddy = None
    try:
        wait_port(kafka_port, "tansu")
        admin = AdminClient({"bootstrap.servers": brokers})
        admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result()
        t = time.perf_counter()
        n = produce(brokers, args.input)
        produce_s = time.perf_counter() - t
        bare = bare_consumer(brokers, n)

        eddy = subprocess.Popen([args.eddy, "serve", "--port", str(http_port), "--bind", "127.0.0.1",
                                 "--brokers", brokers, "--data-dir", str(work / "data")],
                                stdout=subprocess.DEVNULL, stderr=open(work / "eddy.log", "w"),
                                env={**os.environ, "EDDY_CHECKPOINT_INTERVAL_MS": "1000"})
        wait_port(http_port, "eddy serve")
        schema = (ROOT / "fixtures/pg-app/schema.prisma").read_text()
        t0 = time.perf_counter()
        job = request(http_port, "/createJob", {
            "connectionString": "postgresql://bench@localhost/app", "environmentId": "bench",
            "schema": schema, "sqlQuery": args.sql})
        first = None
        while True:
            status = request(http_port, f"/jobStatus/{job['id']}")
            if first is None and status["recordsOut"] > 0:
                first = time.perf_counter() - t0
            if status["recordsIn"] >= n:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        cpu, rss = proc_stats(eddy.pid)
        result = {
            "events": n, "sql": args.sql,
            "produce_events_per_s": round(n / produce_s),
            "bare_consumer_events_per_s": round(bare),
            "eddy_events_per_s": round(n / elapsed),
            "eddy_vs_bare": round(n / elapsed / bare, 3),
            "eddy_cpu_s": round(cpu, 2), "eddy_events_per_cpu_s": round(n / cpu),
            "eddy_peak_rss_mb": round(rss, 1),
            "first_result_s": round(first or elapsed, 3),
            "records_out": status["recordsOut"],
        }
        print(f"eddy through tansu: {n} events in {elapsed:.2f} s = {n / elapsed:,.0f} events/s "
              f"({result['eddy_vs_bare']:.0%} of a bare consumer's {bare:,.0f}/s), "
              f"{cpu:.1f} CPU-s, peak RSS {rss:.0f} MB")
        print(json.dumps(result))
    finally:
        if eddy:
            eddy.kill()
        tansu.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
