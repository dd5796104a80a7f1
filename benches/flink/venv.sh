# Sourced by compare.sh and format_check.sh (from the repository root): makes the venv
# target/flink-venv with apache-flink 2.3.0 from PyPI, once, and sets $venv.
venv=target/flink-venv
flink_version=2.3.0
installed="import pyflink.version as v; assert v.__version__ == '$flink_version'"
if ! "$venv/bin/python" -c "$installed" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet "apache-flink==$flink_version"
fi
