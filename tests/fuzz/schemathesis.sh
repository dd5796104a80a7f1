#!/usr/bin/env bash
# Fuzzes `eddy serve` through its own OpenAPI document with schemathesis (PyPI), in five
# passes: without a credential; with environment A's token aimed at environment B's job,
# connector and tokens; as the admin aimed at A's (its job paused and resumed, its
# connector's catalog read, its tokens issued); as the admin deleting A's; and as the admin.
# Checks: no 5xx, every status, content type and body as the document states, 401 without a
# credential, and nothing of B shown to A (tests/fuzz/hooks.py). Prints the requests tried,
# their statuses and the failures per pass; exits non-zero on any failure.
#
# The server runs over tansu (in memory) and a PostgreSQL of its own that Eddy's connectors
# read (Debian's postgresql, or $EDDY_PG_BIN). The binary is $EDDY, else target/debug/eddy
# (built if missing); $EDDY_FUZZ_EXAMPLES bounds the examples per operation (default 40).
set -euo pipefail
cd "$(dirname "$0")/../.."

target=${CARGO_TARGET_DIR:-target}
venv=target/schemathesis-venv
version=4.32.5
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$version"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet "schemathesis==$version"
fi
eddy=${EDDY:-$target/debug/eddy}
[[ -x $eddy ]] || cargo build --bin eddy
tansu=${TANSU:-$HOME/.cargo/bin/tansu}
[[ -x $tansu ]] || tansu=tansu

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Runs NAME's command (its words after NAME; `@PORT@` in them is a free port) until it
# listens there, and sets $port; a port taken meanwhile by another process is tried anew.
start() {
  local name=$1 pid
  shift
  for _ in 1 2 3; do
    port=$(free_port)
    "${@//@PORT@/$port}" >>"$work/$name.log" 2>&1 &
    pid=$!
    for _ in $(seq 300); do
      kill -0 "$pid" 2>/dev/null || break
      if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        # Still alive a moment later: the listener is this process, not another's.
        sleep 0.3
        if kill -0 "$pid" 2>/dev/null; then
          pids+=("$pid")
          return 0
        fi
        break
      fi
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
  done
  echo "schemathesis.sh: $name did not start:" >&2
  tail -20 "$work/$name.log" >&2
  exit 1
}

start tansu "$tansu" broker --storage-engine memory://tansu/ \
  --listener-url "tcp://127.0.0.1:@PORT@" --advertised-listener-url "tcp://127.0.0.1:@PORT@"
kafka=$port

# A logical-replication PostgreSQL with one table, which Eddy's own connectors of A and B
# read (run as the postgres user when this runs as root: initdb refuses root).
pg_bin=${EDDY_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
pg_dir=$(mktemp -d)
as_postgres=()
if [[ $(id -u) == 0 ]]; then
  chown postgres: "$pg_dir"
  as_postgres=(runuser -u postgres --)
fi
"${as_postgres[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 \
  --locale=C --no-sync >"$work/initdb.log"
for try in 1 2 3; do
  pg=$(free_port)
  if "${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -o \
    "-p $pg -c listen_addresses=127.0.0.1 -c unix_socket_directories=$pg_dir -c fsync=off \
     -c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10 \
     -c max_connections=60" start >/dev/null; then
    break
  fi
  [[ $try == 3 ]] && { cat "$pg_dir/server.log" >&2; exit 1; }
done
stop_postgres() {
  "${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap 'stop_postgres; cleanup' EXIT
"$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg" -U postgres postgres -c \
  "CREATE TABLE orders (id bigint PRIMARY KEY, status text);
   INSERT INTO orders VALUES (1, 'paid'), (2, 'open');"
export EDDY_FUZZ_POSTGRES="postgresql://postgres@127.0.0.1:$pg/postgres"

admin="eddy-fuzz-admin-$RANDOM$RANDOM"
start eddy env EDDY_ADMIN_TOKEN="$admin" EDDY_REQUESTS_PER_MINUTE=1000000 \
  "$eddy" serve --port @PORT@ --bind 127.0.0.1 --brokers "127.0.0.1:$kafka" \
  --data-dir "$work/data"
base="http://127.0.0.1:$port"

# Environments A and B, each with a connector and a job, and the configurations aimed at
# them (tests/fuzz/setup.py).
marker=b_only_marker_$RANDOM
token_a=$(python3 tests/fuzz/setup.py "$base" "$admin" "$marker" "$work")
printf '[cache]\nenabled = false\n' >"$work/none.toml"

counts="$work/counts.ndjson"
failed=0
run_pass() {
  local name=$1 config=$2
  shift 2
  echo "== schemathesis: $name"
  if ! EDDY_FUZZ_PASS=$name EDDY_FUZZ_COUNTS=$counts EDDY_FUZZ_FOREIGN_MARKER=$marker \
    SCHEMATHESIS_HOOKS=hooks PYTHONPATH=tests/fuzz \
    "$venv/bin/st" --config-file "$config" run "$base/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,eddy_tenancy,eddy_authentication \
    --max-examples "${EDDY_FUZZ_EXAMPLES:-40}" --phases examples,coverage,fuzzing \
    --workers 2 --seed 16 --no-color --suppress-health-check all --generation-database none \
    --report junit --report-junit-path "$work/$name.xml" "$@"; then
    failed=1
  fi
}
run_pass anonymous "$work/none.toml"
run_pass tenant "$work/tenant.toml" -H "Authorization: Bearer $token_a"
# A's job and connector are deleted (and its tokens revoked) only once all else was tried on
# them.
deletes='^(delete_job|remove_job|delete_connector|revoke)$'
run_pass admin-on-a "$work/admin-on-a.toml" -H "Authorization: Bearer $admin" \
  --exclude-operation-id-regex "$deletes"
run_pass admin-deletes-a "$work/admin-on-a.toml" -H "Authorization: Bearer $admin" \
  --include-operation-id-regex "$deletes"
run_pass admin "$work/none.toml" -H "Authorization: Bearer $admin"

python3 - "$counts" "$work" <<'PY'
import collections, json, sys, xml.etree.ElementTree as ET
requests = collections.Counter()
statuses = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1]):
    entry = json.loads(line)
    if entry["kind"] == "request":
        requests[entry["pass"]] += 1
        statuses[entry["pass"]][entry["detail"]] += 1
total_failures = 0
for name in ["anonymous", "tenant", "admin-on-a", "admin-deletes-a", "admin"]:
    try:
        root = ET.parse(f"{sys.argv[2]}/{name}.xml").getroot()
        failures = len(root.findall(".//failure")) + len(root.findall(".//error"))
    except (OSError, ET.ParseError):
        failures = "no report"
    total_failures += failures if isinstance(failures, int) else 1
    answered = ", ".join(f"{status}: {n}" for status, n in sorted(statuses[name].items()))
    print(f"schemathesis {name}: {requests[name]} requests, {failures} failures ({answered})")
print(f"schemathesis: {sum(requests.values())} requests, {total_failures} failures")
PY

if grep -q 'panicked' "$work/eddy.log"; then
  echo "schemathesis.sh: eddy serve panicked:" >&2
  grep -A3 'panicked' "$work/eddy.log" >&2
  failed=1
fi
exit $failed
