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

# Environments A and B, each with a connector and a job, and the configurations aimed at
# them (tests/fuzz/setup.py).
marker=b_only_marker_$RANDOM
token_a=$(python3 tests/fuzz/setup.py "$base" "$admin" "$marker" "$work")
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
