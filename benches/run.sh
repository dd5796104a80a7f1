#!/usr/bin/env bash
# Every benchmark figure of README.md's table, measured on this machine, then the table.
#
#   benches/run.sh                 # 1M events (and 10M); about 20 minutes on 2 cores, Flink included
#   EVENTS=200000 benches/run.sh   # quicker
#   FLINK=0 benches/run.sh         # without the Flink comparison
#
# Writes JSON results under target/bench/ and prints the Markdown table (benches/table.py).
# Needs tansu on PATH (`cargo install tansu --features dynostore`) for the broker runs.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-1000000}
RATE=${RATE:-20000}
OUT=target/bench
mkdir -p "$OUT"
cargo build --release --bin eddy
EDDY=target/release/eddy

# A lean process: the stripped binary's size, and the peak RSS of Q1's job given no input
# (planned, then ended), the median of five runs.
strip -o "$OUT/eddy-stripped" "$EDDY"
python3 - "$OUT" <<'PY'
import json, os, statistics, subprocess, sys
out = sys.argv[1]
q1 = ("SELECT country, COUNT(*) AS n, SUM(amount) AS total, AVG(amount) AS mean "
      "FROM orders GROUP BY country")
peaks = []
for _ in range(5):
    job = subprocess.Popen([f"{out}/eddy-stripped", "run", "--schema", "benches/orders.prisma",
                            "--sql", q1, "--input", "/dev/null", "--table", "orders"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(job.pid, 0)
    assert status == 0, f"the empty run failed: {status}"
    peaks.append(usage.ru_maxrss * 1024)
lean = {"binary_bytes": os.path.getsize(f"{out}/eddy-stripped"),
        "empty_run_peak_rss_bytes": statistics.median(peaks), "empty_run_peaks": peaks}
open(f"{out}/lean.json", "w").write(json.dumps(lean, indent=2))
PY
rm "$OUT/eddy-stripped"

"$EDDY" gen --events "$EVENTS" --shape envelope --decimal string --output "$OUT/orders.jsonl"
# Q4 joins the customers: both tables' Kafka records in one file (bare envelopes would be
# one file per table, and a bench reads one).
"$EDDY" gen --events "$EVENTS" --customers --decimal string --output "$OUT/shop.jsonl"
# The files' write-back would otherwise compete with the first runs.
sync
for query in q1 q2 q3 q5; do
    "$EDDY" bench --input "$OUT/orders.jsonl" --table orders --query "$query" \
        --json "$OUT/in-process-$query.json" > /dev/null
done
# The same on one thread (decoding and applying in turn), for the scaling.
for query in q1 q2 q3; do
    "$EDDY" bench --threads 1 --input "$OUT/orders.jsonl" --table orders --query "$query" \
        --json "$OUT/in-process-$query-t1.json" > /dev/null
done
# Ten times the events and the live rows: how the cost per event grows with the state. The
# file (about 6 GB at 10M events) is removed after.
"$EDDY" gen --events $((EVENTS * 10)) --live-keys $((EVENTS * 5)) --shape envelope \
    --decimal string --output "$OUT/orders-10x.jsonl"
sync
"$EDDY" bench --input "$OUT/orders-10x.jsonl" --table orders --query q1 \
    --json "$OUT/in-process-q1-10x.json" > /dev/null
rm "$OUT/orders-10x.jsonl"
# Q1 over the same records as Q4 is what Q4's rate is compared with.
for query in q1 q4; do
    "$EDDY" bench --input "$OUT/shop.jsonl" --query "$query" \
        --json "$OUT/shop-$query.json" > /dev/null
done

# Each broker run gets a fresh tansu: its in-memory storage slows as it fills.
broker=
trap '[ -n "$broker" ] && kill $broker' EXIT
start_broker() {
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    tansu broker --storage-engine memory://tansu/ --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" > "$OUT/tansu.log" 2>&1 &
    broker=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2> /dev/null && break
        sleep 0.1
    done
}
stop_broker() {
    kill "$broker"
    wait "$broker" 2> /dev/null || true
    broker=
}
start_broker
"$EDDY" bench --kafka "127.0.0.1:$port" --events $((RATE * 20)) --rate "$RATE" --query q1 \
    --json "$OUT/broker-rate.json" > /dev/null
stop_broker
start_broker
"$EDDY" bench --kafka "127.0.0.1:$port" --events "$EVENTS" --query q1 \
    --json "$OUT/broker-max.json" > /dev/null
stop_broker

if [ "${FLINK:-1}" != 0 ]; then
    benches/flink/compare.sh --events "$EVENTS" --input "$OUT/orders.jsonl"
fi
python3 benches/table.py "$OUT" target/flink-compare.json
