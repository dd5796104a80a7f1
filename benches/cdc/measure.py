"""Measures commit → result latency and connector throughput for benches/cdc/run.sh.

Each subcommand prints one JSON line of figures; run.sh starts the services and turns the
lines into the report.

    floor      the broker's own produce → consume latency at a fixed rate
    latency    one-row UPDATEs committed at a fixed rate; each one's result change timed on
               the job's output topic
    snapshot   createConnector over a loaded table, timed until the connector streams
    streaming  one big transaction and many small ones written while `eddy serve` is stopped,
               timed from its continuing until the connector delivered every change
"""
import argparse
import json
import os
import queue
import signal
import sys
import threading
import time
import urllib.request

import psycopg
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def summary(latencies_ms, **extra):
    return {
        "count": len(latencies_ms),
        "p50_ms": round(percentile(latencies_ms, 50), 2),
        "p99_ms": round(percentile(latencies_ms, 99), 2),
        "max_ms": round(max(latencies_ms), 2),
        **extra,
    }


def paced(rate, count):
    """Yields i = 0..count-1 at `rate` per second, on a fixed schedule (no drift)."""
    start = time.monotonic()
    for i in range(count):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield i


def consumer(brokers, topic):
    c = Consumer({
        "bootstrap.servers": brokers,
        "group.id": f"cdc-bench-{topic}-{time.time_ns()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 5,
    })
    c.subscribe([topic])
    return c


class Arrivals(threading.Thread):
    """Reads `topic` in the background, timing each message `key_of` recognises as
    `(group, seq)`.

    A change is answered by the first message of its group with a `seq` at least its own: a
    stream processor may fold two changes of one group into one result (as a batch does),
    and the later result answers both.
    """

    def __init__(self, brokers, topic, key_of):
        super().__init__(daemon=True)
        self.consumer = consumer(brokers, topic)
        self.key_of = key_of
        self.groups = {}  # group → [(seq, arrival)], in arrival order
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            message = self.consumer.poll(0.05)
            if message is None:
                if self.consumer.assignment():
                    self.ready.set()
                continue
            now = time.monotonic()
            self.ready.set()
            if message.error() or message.value() is None:
                continue
            key = self.key_of(message.value())
            if key is not None:
                with self.lock:
                    self.groups.setdefault(key[0], []).append((key[1], now))
        self.consumer.close()

    def answered(self, group, seq):
        """When the change `seq` of `group` was answered; None while it is not."""
        with self.lock:
            return next((t for s, t in self.groups.get(group, ()) if s >= seq), None)

    def wait_for(self, changes, timeout):
        """Waits until every `(group, seq)` of `changes` is answered; returns the times."""
        deadline = time.monotonic() + timeout
        while True:
            times = [self.answered(g, s) for g, s in changes]
            missing = [c for c, t in zip(changes, times) if t is None]
            if not missing:
                return times
            if time.monotonic() > deadline:
                sys.exit(f"{len(missing)} of {len(changes)} results never arrived "
                         f"(first: {missing[:3]})")
            time.sleep(0.02)


def floor(args):
    topic = f"floor-{time.time_ns()}"
    admin = AdminClient({"bootstrap.servers": args.brokers})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    arrivals = Arrivals(args.brokers, topic, lambda v: (0, int(v)))
    arrivals.start()
    arrivals.ready.wait(30)
    producer = Producer({"bootstrap.servers": args.brokers, "linger.ms": 1})
    sent = {}
    for i in paced(args.rate, args.count):
        sent[i] = time.monotonic()
        producer.produce(topic, value=str(i))
        producer.poll(0)
    producer.flush(30)
    times = arrivals.wait_for([(0, i) for i in sent], 60)
    arrivals.stop.set()
    latencies = [(t - sent[i]) * 1000 for i, t in zip(sent, times)]
    print(json.dumps(summary(latencies, rate=args.rate)))


def result_seq(value):
    """`(id, seq)` of a `c` message on the output topic (the job's new result row)."""
    event = json.loads(value)
    after = event.get("after") if event.get("op") == "c" else None
    return None if after is None else (int(after["id"]), int(after["seq"]))


def latency(args):
    arrivals = Arrivals(args.brokers, args.topic, result_seq)
    arrivals.start()
    arrivals.ready.wait(30)
    with psycopg.connect(args.postgres, autocommit=True) as db:
        base = db.execute("SELECT coalesce(max(seq), 0) FROM ticks").fetchone()[0] + 1
        rows = db.execute("SELECT count(*) FROM ticks").fetchone()[0]
        # Warm the path (first fetches, metadata) before timing anything.
        db.execute("UPDATE ticks SET seq = %s WHERE id = 0", (base,))
    arrivals.wait_for([(0, base)], 120)
    # A durable commit waits for its WAL flush, so one session alone cannot commit 1,000
    # times a second; several sessions take the schedule's statements in turn, and
    # PostgreSQL flushes their commits together.
    schedule = queue.Queue()
    committed, commits, lock = {}, [], threading.Lock()

    def session():
        with psycopg.connect(args.postgres, autocommit=True) as db:
            while (seq := schedule.get()) is not None:
                # Timed from the moment the statement (an autocommit UPDATE) is due, so
                # the commit's own flush is counted.
                sent = time.monotonic()
                db.execute("UPDATE ticks SET seq = %s WHERE id = %s", (seq, seq % rows))
                with lock:
                    committed[seq] = sent
                    commits.append((time.monotonic() - sent) * 1000)

    sessions = [threading.Thread(target=session) for _ in range(args.sessions)]
    for t in sessions:
        t.start()
    start = time.monotonic()
    for i in paced(args.rate, args.count):
        schedule.put(base + 1 + i)
    for _ in sessions:
        schedule.put(None)
    for t in sessions:
        t.join()
    elapsed = time.monotonic() - start
    changes = sorted(committed)
    times = arrivals.wait_for([(s % rows, s) for s in changes], 120)
    arrivals.stop.set()
    latencies = [(t - committed[s]) * 1000 for s, t in zip(changes, times)]
    print(json.dumps(summary(
        latencies,
        rate=args.rate,
        achieved_rate=round(len(committed) / elapsed),
        commit_p50_ms=round(percentile(commits, 50), 2),
        commit_p99_ms=round(percentile(commits, 99), 2),
    )))


def http(url, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read() or b"null")


def connector_status(args):
    return http(f"{args.server}/v1/connectors/{args.environment}-connector", token=args.token)


def wait_status(args, done, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = connector_status(args)
        if status.get("state") == "FAILED":
            sys.exit(f"the connector failed: {status}")
        if done(status):
            return status
        time.sleep(0.025)  # 2,400 requests a minute, under the default rate limit
    sys.exit(f"timed out; connector: {connector_status(args)}")


def snapshot(args):
    with psycopg.connect(args.postgres, autocommit=True) as db:
        rows = db.execute("SELECT count(*) FROM big").fetchone()[0]
    start = time.monotonic()
    http(f"{args.server}/createConnector",
         {"connectionString": args.postgres, "environmentId": args.environment}, args.token)
    status = wait_status(args, lambda s: s.get("state") == "STREAMING", 600)
    seconds = time.monotonic() - start
    print(json.dumps({"rows": rows, "snapshot_rows": status["snapshotRows"],
                      "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}))


def streaming(args):
    """The connector's rate on a backlog: `eddy serve` is stopped (SIGSTOP) while PostgreSQL
    writes the changes, then continued and timed until it delivered them all, so the figure
    is the connector's (and the walsender's decoding), not how fast PostgreSQL commits."""
    figures = {}
    with psycopg.connect(args.postgres, autocommit=True) as db:
        rows = db.execute("SELECT count(*) FROM big").fetchone()[0]
        for name, statement, changes in (
            ("one_transaction", "UPDATE big SET amount = amount + 1", rows),
            ("transactions_of_100",
             "DO $$ BEGIN FOR b IN 0..%d LOOP "
             "UPDATE big SET amount = amount + 1 WHERE id >= b * 100 AND id < b * 100 + 100; "
             "COMMIT; END LOOP; END $$" % (rows // 100 - 1), rows),
        ):
            before = connector_status(args)["streamedEvents"]
            os.kill(args.serve_pid, signal.SIGSTOP)
            try:
                start = time.monotonic()
                db.execute(statement)
                committed = time.monotonic() - start
            finally:
                os.kill(args.serve_pid, signal.SIGCONT)
            start = time.monotonic()
            wait_status(args, lambda s: s["streamedEvents"] >= before + changes, 600)
            seconds = time.monotonic() - start
            figures[name] = {"changes": changes, "seconds": round(seconds, 2),
                             "postgres_seconds": round(committed, 2),
                             "changes_per_s": round(changes / seconds)}
    print(json.dumps(figures))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["floor", "latency", "snapshot", "streaming"])
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--postgres", help="libpq URL of the bench database")
    parser.add_argument("--server", help="eddy serve's base URL")
    parser.add_argument("--token", help="a bearer token for eddy serve, if it wants one")
    parser.add_argument("--environment")
    parser.add_argument("--topic", help="the job's output topic")
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--serve-pid", type=int, help="eddy serve's process, paused by `streaming`")
    parser.add_argument("--sessions", type=int, default=8, help="PostgreSQL sessions committing")
    args = parser.parse_args()
    {"floor": floor, "latency": latency, "snapshot": snapshot, "streaming": streaming}[args.command](args)


if __name__ == "__main__":
    main()
