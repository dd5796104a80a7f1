#!/usr/bin/env bash
# Fuzzes `eddy serve` through its own OpenAPI document with schemathesis (PyPI), in four
# passes: without a credential, with environment A's token aimed at environment B's job,
# connector and tokens, as the admin, and as the admin aimed at A's (its job paused,
# resumed, deleted, its tokens issued and revoked). Checks: no 5xx, every status, content type and
# body as the document states, 401 without a credential, and nothing of B shown to A (see
# tests/fuzz/hooks.py). Prints the requests tried and the failures per pass; exits non-zero
# on any failure. The server runs over tansu (in memory); Debezium is not needed
# (external connectors). The binary is $EDDY, else target/debug/eddy (built if missing).
# $EDDY_FUZZ_EXAMPLES bounds the examples per operation (default 40).
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
wait_for() {
  for _ in $(seq 200); do
    if (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "schemathesis.sh: nothing listens on port $1 ($2)" >&2
  exit 1
}

kafka=$(free_port)
"$tansu" broker --storage-engine memory://tansu/ \
  --listener-url "tcp://127.0.0.1:$kafka" --advertised-listener-url "tcp://127.0.0.1:$kafka" \
  >"$work/tansu.log" 2>&1 &
pids+=($!)
wait_for "$kafka" tansu

admin="eddy-fuzz-admin-$RANDOM$RANDOM"
port=$(free_port)
EDDY_ADMIN_TOKEN=$admin EDDY_EXTERNAL_CONNECTORS=true EDDY_REQUESTS_PER_MINUTE=1000000 \
  "$eddy" serve --port "$port" --bind 127.0.0.1 --brokers "127.0.0.1:$kafka" \
  --data-dir "$work/data" >"$work/eddy.log" 2>&1 &
pids+=($!)
wait_for "$port" "eddy serve"
base="http://127.0.0.1:$port"

# Environments A and B, each with a connector and a job; B's query carries a marker that
# no answer to A may show.
marker=b_only_marker_$RANDOM
schema='model Order {
  id     BigInt  @id
  status String?
  @@map("orders")
}'
call() {
  local token=$1 path=$2 body=$3
  curl -sf -X POST "$base$path" -H "Authorization: Bearer $token" \
    -H 'content-type: application/json' -d "$body"
}
field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }
json_of() {
  python3 -c 'import json, sys; print(json.dumps(dict(zip(sys.argv[1::2], sys.argv[2::2]))))' "$@"
}
environment() {
  json_of connectionString "postgresql://app:secret@db.internal:5432/$1" environmentId "$1"
}
token_a=$(call "$admin" /createConnector "$(environment a)" | field '["token"]')
token_b=$(call "$admin" /createConnector "$(environment b)" | field '["token"]')
job() {
  json_of connectionString "postgresql://app:secret@db.internal:5432/$1" environmentId "$1" \
    schema "$schema" sqlQuery "SELECT status, COUNT(*) AS $2 FROM orders GROUP BY status"
}
job_a=$(call "$token_a" /createJob "$(job a orders_total)" | field '["id"]')
job_b=$(call "$token_b" /createJob "$(job b "$marker")" | field '["id"]')
token_id_b=$(curl -sf "$base/v1/environments/b/tokens" -H "Authorization: Bearer $token_b" \
  | field '[0]["tokenId"]')

token_id_a=$(curl -sf "$base/v1/environments/a/tokens" -H "Authorization: Bearer $token_a" \
  | field '[0]["tokenId"]')

# Every environment, job, connector and token parameter aimed at one environment's: B's
# for A's token, A's for the admin's last pass.
aim() {
  local environment=$1 job=$2 token_id=$3
  cat <<TOML
[[operations]]
include-path-regex = "^/v1/environments/"
parameters = { "path.id" = "$environment", "path.tokenId" = "$token_id" }

[[operations]]
include-path-regex = "^/(jobStatus|v1/jobs)/"
parameters = { "path.id" = "$job" }

[[operations]]
include-path-regex = "^/v1/connectors/"
parameters = { "path.name" = "$environment-connector" }

[[operations]]
include-path-regex = "^/(createConnector|createJob|deleteJob|jobStatus|v1/jobs|v1/connectors/test)$"
parameters = { "query.environmentId" = "$environment", "body.environmentId" = "$environment" }
TOML
}
aim b "$job_b" "$token_id_b" >"$work/tenant.toml"
aim a "$job_a" "$token_id_a" >"$work/admin-on-a.toml"
touch "$work/none.toml"

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
    --workers 2 --seed 16 --no-color --suppress-health-check all \
    --report junit --report-junit-path "$work/$name.xml" "$@"; then
    failed=1
  fi
}
run_pass anonymous "$work/none.toml"
run_pass tenant "$work/tenant.toml" -H "Authorization: Bearer $token_a"
run_pass admin "$work/none.toml" -H "Authorization: Bearer $admin"
run_pass admin-on-a "$work/admin-on-a.toml" -H "Authorization: Bearer $admin"

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
for name in ["anonymous", "tenant", "admin", "admin-on-a"]:
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
