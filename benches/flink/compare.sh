#!/usr/bin/env bash
# Eddy against Apache Flink on the same Debezium changelog: prepares PyFlink 2.3.0 in
# target/flink-venv and the release binary, then runs compare.py with this script's arguments
# (--events N, default 1000000; --repeat R; --input FILE). See benches/flink/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=target/flink-venv
flink_version=2.3.0
installed="import pyflink.version as v; assert v.__version__ == '$flink_version'"
if ! "$venv/bin/python" -c "$installed" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet "apache-flink==$flink_version"
fi

eddy=target/release/eddy
# (grep without -q reads all of the help, so no SIGPIPE trips pipefail)
if ! { "$eddy" gen --help && "$eddy" run --help | grep -- --table; } >/dev/null 2>&1; then
  cargo build --release --bin eddy
fi

exec "$venv/bin/python" benches/flink/compare.py "$@"
