#!/usr/bin/env bash
# Checks `eddy run --format debezium` against Flink 2.3.0's debezium-json, message by message
# (see benches/flink/README.md). Prepares the venv like compare.sh, then runs
# format_check.py with this script's arguments (--events N, --seed S, --live-keys K, --json F).
# The binary is $EDDY, else target/release/eddy or target/debug/eddy, whichever is newer
# (built in debug if neither exists).
set -euo pipefail
cd "$(dirname "$0")/../.."
source benches/flink/venv.sh

eddy=${EDDY:-}
if [[ -z $eddy ]]; then
  for candidate in target/release/eddy target/debug/eddy; do
    if [[ -x $candidate && ( -z $eddy || $candidate -nt $eddy ) ]]; then
      eddy=$candidate
    fi
  done
fi
if [[ -z $eddy ]]; then
  cargo build --bin eddy
  eddy=target/debug/eddy
fi

exec "$venv/bin/python" benches/flink/format_check.py --eddy "$eddy" "$@"
