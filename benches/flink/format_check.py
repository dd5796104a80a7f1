"""Checks that `eddy run --format debezium` writes, message by message, what Flink writes.

Flink 2.3.0 (PyFlink, streaming, parallelism 1, mini-batch off, so it emits per input
record) runs a few queries over a Debezium changelog of `orders` made by `eddy gen`, each
into a filesystem sink in `debezium-json`; Eddy runs the same queries with `--format
debezium --batch-size 1`. Every message is compared as text (field names and order, decimal,
timestamp and number spellings, ops), over two versions of the changelog:

- `split`: each update `u` replaced by a delete of its `before` then a create of its `after`.
  Both engines then see the same sequence of row changes and must write the same messages
  in the same order.
- `original`: updates as one `u`. Flink's debezium-json reads a `u` as two rows (-U, +U),
  so its output is the same as for `split` (checked), and its aggregates answer each row: for
  an update inside a group Flink publishes and retracts an intermediate value (d old, c mid,
  d mid, c new) where Eddy, which applies the update at once, writes d old, c new. Per key,
  Flink's messages must be Eddy's with such `c x`, `d x` pairs inserted, and nothing else;
  how many is reported.

One difference is expected and reported, not failed: when the table becomes empty, Eddy's
global aggregate publishes SQL's one-row answer (`{"n":0,"summed":null}`) where Flink
deletes the row until a row arrives; those messages of Eddy's are left out.

Run through format_check.sh, which prepares the venv and picks the binary:

    target/flink-venv/bin/python benches/flink/format_check.py --eddy target/debug/eddy
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "benches/orders.prisma"
WORK = ROOT / "target/flink-format"

# `orders` as Flink reads eddy gen's envelopes: the timestamp(3) columns arrive as epoch
# milliseconds, so a view turns them into TIMESTAMP(3) (in UTC, as Eddy reads them).
SOURCE_DDL = """
CREATE TABLE {name}_raw (
  id INT, user_id INT, country STRING, status STRING, amount DECIMAL(12, 2),
  created_at BIGINT, updated_at BIGINT
) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'debezium-json')
"""
VIEW_DDL = """
CREATE VIEW {name} AS SELECT id, user_id, country, status, amount,
  CAST(TO_TIMESTAMP_LTZ(created_at, 3) AS TIMESTAMP(3)) AS created_at,
  CAST(TO_TIMESTAMP_LTZ(updated_at, 3) AS TIMESTAMP(3)) AS updated_at
FROM {name}_raw
"""


@dataclass
class Query:
    name: str
    sql: str
    keys: list
    # A global aggregate's row over an empty table, as parse() reads it. Eddy publishes it
    # (SQL's one-row answer: COUNT 0, SUM null); Flink deletes the row until a row arrives.
    empty: dict = None


# Every computed column has an alias: unaliased, Flink names it EXPR$<position> and Eddy
# after the expression (`count(*)`), so the aliases decide the names in both.
QUERIES = [
    Query("groups", "SELECT country, status, COUNT(*) AS n, SUM(amount) AS total, "
                    "SUM(user_id) AS users_summed, "
                    "MIN(amount) AS lo, MAX(updated_at) AS latest "
                    "FROM orders GROUP BY country, status", ["country", "status"]),
    Query("global", "SELECT COUNT(*) AS n, SUM(amount) AS summed FROM orders", [],
          {"n": "0", "summed": None}),
    Query("rows", "SELECT id, status, amount, created_at, updated_at FROM orders "
                  "WHERE amount > 100", ["id"]),
]


class Mismatch(Exception):
    """The engines' messages differ."""


def generate(eddy, events, live_keys, seed, work):
    """eddy gen's changelog (bare envelopes, decimals as text) and its `split` version."""
    original = work / "original.jsonl"
    subprocess.run([eddy, "gen", "--events", str(events), "--live-keys", str(live_keys),
                    "--seed", str(seed), "--shape", "envelope", "--decimal", "string",
                    "--output", str(original)], check=True)
    split, updates = work / "split.jsonl", 0
    with open(original) as src, open(split, "w") as out:
        for line in src:
            envelope = json.loads(line)
            if envelope.get("op") != "u":
                out.write(line)
                continue
            updates += 1
            for before, after, op in [(envelope["before"], None, "d"),
                                      (None, envelope["after"], "c")]:
                out.write(json.dumps(dict(envelope, before=before, after=after, op=op)) + "\n")
    return {"original": original, "split": split}, updates


def run_flink(inputs, work):
    """One Flink job writing every (query, input) into its own debezium-json directory."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = env.get_config()
    for key, value in {"parallelism.default": "1",
                       "table.exec.resource.default-parallelism": "1",
                       "table.exec.mini-batch.enabled": "false",
                       "table.local-time-zone": "UTC"}.items():
        config.set(key, value)
    statements = env.create_statement_set()
    outputs = {}
    for version, path in inputs.items():
        env.execute_sql(SOURCE_DDL.format(name=version, path=path))
        env.execute_sql(VIEW_DDL.format(name=version))
        for query in QUERIES:
            sink = f"{query.name}_{version}"
            out = work / "flink" / sink
            shutil.rmtree(out, ignore_errors=True)
            sql = query.sql.replace("FROM orders", f"FROM {version}")
            columns = env.sql_query(sql).get_resolved_schema()
            ddl = ", ".join(c.as_summary_string() for c in columns.get_columns())
            env.execute_sql(f"CREATE TABLE {sink} ({ddl}) WITH ('connector' = 'filesystem', "
                            f"'path' = '{out}', 'format' = 'debezium-json')")
            statements.add_insert_sql(f"INSERT INTO {sink} {sql}")
            outputs[(query.name, version)] = out
    statements.execute().wait()
    return {key: read_parts(out) for key, out in outputs.items()}


def read_parts(directory):
    """The lines of a filesystem sink's part files (one writer: `part-<id>-0-<n>`)."""
    parts = [p for p in glob.glob(f"{directory}/**/part-*", recursive=True)
             if os.path.isfile(p)]
    parts.sort(key=lambda p: int(p.rsplit("-", 1)[1]))
    return [line for p in parts for line in Path(p).read_text().splitlines() if line]


def run_eddy(eddy, query, input_path):
    """Eddy's debezium lines, one event per batch."""
    done = subprocess.run([eddy, "run", "--schema", str(SCHEMA), "--table", "orders",
                           "--input", str(input_path), "--sql", query.sql,
                           "--format", "debezium", "--batch-size", "1"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"eddy failed on {query.name}:\n{done.stderr}")
    return [line for line in done.stdout.splitlines() if line]


def by_key(lines, keys):
    """Messages grouped by the row's key columns, in order."""
    groups = {}
    for line in lines:
        message = parse(line)
        row = message["after"] if message["op"] == "c" else message["before"]
        groups.setdefault(tuple(json.dumps(row[k]) for k in keys), []).append(line)
    return groups


def parse(line):
    """A message with its numbers kept as their text, so spellings compare too."""
    return json.loads(line, parse_float=str, parse_int=str)


def row_of(line):
    """The row a message carries (its `after` for a `c`, its `before` for a `d`)."""
    message = parse(line)
    return message["after"] if message["op"] == "c" else message["before"]


def drop_empty_answers(lines, empty):
    """Eddy's messages without the global aggregate's answer over an empty table (see
    Query.empty), and how many went."""
    kept = [line for line in lines if empty is None or row_of(line) != empty]
    return kept, len(lines) - len(kept)


def align(eddy, flink):
    """How many intermediate values Flink published and retracted (a `c x` then `d x` that
    Eddy's sequence lacks); raises Mismatch unless the rest is Eddy's sequence exactly."""
    i = j = intermediates = 0
    while j < len(flink):
        if i < len(eddy) and eddy[i] == flink[j]:
            i, j = i + 1, j + 1
            continue
        pair = flink[j:j + 2]
        if len(pair) == 2 and parse(pair[0])["op"] == "c" and parse(pair[1])["op"] == "d" \
                and row_of(pair[0]) == row_of(pair[1]):
            j, intermediates = j + 2, intermediates + 1
            continue
        raise Mismatch(first_difference(eddy[i:], flink[j:]))
    if i < len(eddy):
        raise Mismatch(first_difference(eddy[i:], []))
    return intermediates


def first_difference(eddy, flink):
    """A description of where two sequences first differ."""
    for i, (e, f) in enumerate(zip(eddy, flink)):
        if e != f:
            return f"message {i}:\n  eddy:  {e}\n  flink: {f}"
    return (f"lengths differ ({len(eddy)} vs {len(flink)}); next:\n"
            f"  eddy:  {eddy[len(flink):][:1]}\n  flink: {flink[len(eddy):][:1]}")


def compare(query, version, eddy, flink):
    """One line of the report; raises Mismatch when the engines disagree."""
    what = f"{query.name} {version}"
    if eddy == flink:
        return f"{what}: {len(eddy)} messages, identical, in the same order"
    eddy_keys, flink_keys = by_key(eddy, query.keys), by_key(flink, query.keys)
    empties = intermediates = 0
    for key in sorted(set(eddy_keys) | set(flink_keys), key=str):
        e, dropped = drop_empty_answers(eddy_keys.get(key, []), query.empty)
        f = flink_keys.get(key, [])
        empties += dropped
        try:
            if version == "split":
                if e != f:
                    raise Mismatch(first_difference(e, f))
            else:
                intermediates += align(e, f)
        except Mismatch as mismatch:
            raise Mismatch(f"{what}, key {key}: {mismatch}") from None
    notes = [f"eddy {len(eddy)}, flink {len(flink)} messages, equal per key"]
    if intermediates:
        notes.append(f"except {intermediates} intermediate values of updates that Flink "
                     "published and retracted")
    if empties:
        notes.append(f"except {empties} messages of Eddy's answer over the empty table "
                     f"({json.dumps(query.empty)}), which Flink deletes instead")
    return f"{what}: " + "; ".join(notes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eddy", required=True, help="the eddy binary")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--live-keys", type=int, default=150)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    started = time.monotonic()
    inputs, updates = generate(args.eddy, args.events, args.live_keys, args.seed, WORK)
    print(f"format check: {args.events} events ({updates} updates), seed {args.seed}, "
          f"{args.live_keys} live keys; Flink 2.3.0 debezium-json vs eddy --format debezium",
          flush=True)
    flink = run_flink(inputs, WORK)
    report, failures = [], []
    for query in QUERIES:
        if flink[(query.name, "original")] != flink[(query.name, "split")]:
            failures.append(f"Flink's {query.name} differs between original and split")
            print(f"  {failures[-1]}")
        for version, path in inputs.items():
            eddy = run_eddy(args.eddy, query, path)
            (WORK / f"{query.name}_{version}.eddy.jsonl").write_text("\n".join(eddy) + "\n")
            try:
                line = compare(query, version, eddy, flink[(query.name, version)])
            except Mismatch as e:
                line = f"MISMATCH {e}"
                failures.append(line)
            report.append(line)
            print(f"  {line}", flush=True)
    exponents = sum(line.count("E+") + line.count("E-")
                    for lines in flink.values() for line in lines)
    print(f"  decimals Flink wrote with an exponent (e.g. 1.2E+3): {exponents}; "
          f"outputs in {WORK}; {time.monotonic() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"events": args.events, "seed": args.seed,
                                               "results": report}, indent=2) + "\n")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
