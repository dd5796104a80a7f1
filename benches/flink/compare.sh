#!/usr/bin/env bash
# Eddy against Apache Flink on the same Debezium changelog: prepares PyFlink 2.3.0 in
# target/flink-venv and the release binary, then runs compare.py with this script's arguments
# (--events N, default 1000000; --repeat R; --queries Q1,Q4,...; --input FILE;
# --shop-input FILE). See benches/flink/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

source benches/flink/venv.sh

eddy=target/release/eddy
# Too old without `gen --customers` (Q4) or `run --table`. (grep without -q reads all of the
# help, so no SIGPIPE trips pipefail.)
if ! { "$eddy" gen --help | grep -- --customers && "$eddy" run --help | grep -- --table; } \
    >/dev/null 2>&1; then
  cargo build --release --bin eddy
fi

exec "$venv/bin/python" benches/flink/compare.py "$@"
