#!/usr/bin/env bash
# Commit → result latency and connector throughput, Eddy's own PostgreSQL connector beside
# embedded Debezium, in one run on this machine. Starts its own PostgreSQL (Debian's, durable
# defaults: fsync and synchronous_commit on), tansu in memory and release `eddy serve`s; prints
# a Markdown report (see the README's "Change data capture" section).
#
#   benches/cdc/run.sh [--rate 1000] [--count 3000] [--rows 1000000] [--skip-debezium]
#
# Needs Java 17 for Debezium (tests/debezium/setup.sh makes the Python environment; this
# script adds psycopg to it).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

rate=1000 count=3000 rows=1000000 debezium=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) rate=$2; shift 2 ;;
    --count) count=$2; shift 2 ;;
    --rows) rows=$2; shift 2 ;;
    --skip-debezium) debezium=no; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

target="${CARGO_TARGET_DIR:-$root/target}"
eddy="${EDDY:-$target/release/eddy}"
[ -x "$eddy" ] || cargo build --release --bin eddy
bash tests/debezium/setup.sh
venv="$root/target/debezium-venv"
"$venv/bin/python" -c 'import psycopg' 2>/dev/null ||
  "$venv/bin/pip" install -q --disable-pip-version-check "psycopg[binary]"
python="$venv/bin/python"
tansu="${TANSU:-$HOME/.cargo/bin/tansu}"
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

work=$(mktemp -d /tmp/eddy-cdc-bench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  as_postgres "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
wait_port() {
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done
  echo "nothing listens on port $1" >&2; exit 1
}

# PostgreSQL
[ "$(id -u)" = 0 ] && chown postgres: "$work"
pg_port=$(free_port)
as_postgres "$pg_bin/initdb" -D "$work/pg" -U postgres -A trust -E UTF8 --locale=C >/dev/null
as_postgres "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -o \
  "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work \
   -c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10 \
   -c shared_buffers=512MB -c max_wal_size=4GB" start >/dev/null
psql() { "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres "$@"; }
for db in own dbz; do
  psql -d postgres -c "CREATE DATABASE $db"
  psql -d "$db" -c "CREATE TABLE ticks (id int PRIMARY KEY, seq bigint NOT NULL);
    INSERT INTO ticks SELECT i, 0 FROM generate_series(0, 99) i;
    CREATE TABLE marker (id serial PRIMARY KEY, label text);"
done
psql -d own -c "CREATE TABLE big (id bigint PRIMARY KEY, user_id int NOT NULL,
    amount numeric(12,2) NOT NULL, status text NOT NULL);
  INSERT INTO big SELECT i, i % 1000, (i % 10000) / 100.0, (ARRAY['new','paid','shipped'])[i % 3 + 1]
    FROM generate_series(0, $rows - 1) i;"
psql -d own -c "VACUUM ANALYZE big"

# tansu
kafka_port=$(free_port)
brokers="127.0.0.1:$kafka_port"
"$tansu" broker --storage-engine memory:// --listener-url "tcp://127.0.0.1:$kafka_port" \
  --advertised-listener-url "tcp://127.0.0.1:$kafka_port" >"$work/tansu.log" 2>&1 &
pids+=($!)
wait_port "$kafka_port"

# eddy serve named $1 with the flags that follow; sets $server (its URL).
token=bench-admin-token-0123456789
serve() {
  local name=$1; shift
  local port; port=$(free_port)
  EDDY_ADMIN_TOKEN=$token "$eddy" serve --port "$port" --bind 127.0.0.1 --brokers "$brokers" \
    --data-dir "$work/data-$name" --linger-ms 1 "$@" >"$work/serve-$name.log" 2>&1 &
  pids+=($!)
  wait_port "$port"
  server="http://127.0.0.1:$port"
}
create_job() {
  local server=$1 db=$2 env=$3
  python3 - "$server" "postgresql://postgres:pw@127.0.0.1:$pg_port/$db" "$env" "$token" <<'EOF'
import json, sys, urllib.request
server, connection, environment, token = sys.argv[1:]
schema = "model Tick {\n  id  Int    @id\n  seq BigInt\n  @@map(\"ticks\")\n}\n"
body = {"connectionString": connection, "environmentId": environment, "schema": schema,
        "sqlQuery": "SELECT id, SUM(seq) AS seq FROM ticks GROUP BY id"}
request = urllib.request.Request(f"{server}/createJob", json.dumps(body).encode(), method="POST")
request.add_header("Content-Type", "application/json")
request.add_header("Authorization", f"Bearer {token}")
print(urllib.request.urlopen(request, timeout=120).read().decode(), file=sys.stderr)
EOF
}
measure() { "$python" benches/cdc/measure.py "$@" --brokers "$brokers" --token "$token"; }

echo "broker floor..." >&2
floor=$(measure floor --rate "$rate" --count "$count")

echo "Eddy's connector: snapshot of $rows rows..." >&2
serve own
own=$server
url_own="postgresql://postgres:pw@127.0.0.1:$pg_port/own"
snapshot=$(measure snapshot --server "$own" --postgres "$url_own" --environment own)
create_job "$own" own own
echo "Eddy's connector: latency at $rate commits/s..." >&2
own_latency=$(measure latency --postgres "$url_own" --topic own --rate "$rate" --count "$count")
echo "Eddy's connector: streaming throughput..." >&2
streaming=$(measure streaming --server "$own" --postgres "$url_own" --environment own \
  --serve-pid "${pids[-1]}")
kill "${pids[-1]}"

dbz_latency='null'
if [ "$debezium" = yes ]; then
  echo "embedded Debezium: latency at $rate commits/s..." >&2
  serve dbz --external-connectors
  dbz=$server
  create_job "$dbz" dbz dbz
  "$python" tests/debezium/stream_to_kafka.py --pg-port "$pg_port" --pg-db dbz \
    --brokers "$brokers" --environment dbz --work-dir "$work/debezium" >"$work/debezium.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 600); do grep -q SNAPSHOT_DONE "$work/debezium.out" && break; sleep 0.5; done
  grep -q SNAPSHOT_DONE "$work/debezium.out" || { cat "$work/debezium.out" >&2; exit 1; }
  dbz_latency=$(measure latency --postgres "postgresql://postgres@127.0.0.1:$pg_port/dbz" \
    --topic dbz --rate "$rate" --count "$count")
  psql -d dbz -c "INSERT INTO marker (label) VALUES ('done')"
fi

"$python" - "$floor" "$snapshot" "$own_latency" "$streaming" "$dbz_latency" "$rate" <<'EOF'
import json, subprocess, sys
floor, snapshot, own, streaming, dbz = (json.loads(a) for a in sys.argv[1:6])
rate = sys.argv[6]
cpu = subprocess.run(["sh", "-c", "nproc; grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                     capture_output=True, text=True).stdout.split("\n")
print(f"Commit → result, {own['count']} one-row UPDATEs at {rate} commits/s "
      f"({cpu[0]} cores,{cpu[1]}); run by `benches/cdc/run.sh`\n")
print("| path | p50 | p99 | max | commits/s reached |")
print("| --- | --- | --- | --- | --- |")
print(f"| broker floor (produce → consume) | {floor['p50_ms']} ms | {floor['p99_ms']} ms | {floor['max_ms']} ms | |")
for name, r in (("Eddy's connector → eddy serve", own), ("embedded Debezium → eddy serve", dbz)):
    if r:
        print(f"| {name} | {r['p50_ms']} ms | {r['p99_ms']} ms | {r['max_ms']} ms | {r['achieved_rate']} |")
print(f"\nPostgreSQL's own commit (included above): p50 {own['commit_p50_ms']} ms, p99 {own['commit_p99_ms']} ms.\n")
print(f"Snapshot: {snapshot['rows']} rows in {snapshot['seconds']} s = {snapshot['rows_per_s']} rows/s.")
for name, s in streaming.items():
    print(f"Streaming, {name.replace('_', ' ')}: {s['changes']} changes written in "
          f"{s['postgres_seconds']} s while the connector was stopped, then delivered in "
          f"{s['seconds']} s = {s['changes_per_s']} changes/s.")
EOF
