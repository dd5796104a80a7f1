"""Side-by-side benchmark of Eddy against Apache Flink on the same Debezium changelog.

For each query (Q1-Q5, or those --queries names) it runs, alternately, Flink (PyFlink,
streaming, parallelism 1, mini-batch, into a blackhole sink) and `eddy run` on the same
change events, measuring each run's CPU seconds (user + sys) and peak RSS with
`/usr/bin/time -v`. Flink's figures are its JVM's: PyFlink starts the gateway JVM and does
not wait for it, so JAVA_HOME points at a wrapper whose `bin/java` runs the real java under
`/usr/bin/time`. Each engine also runs the query once over empty input: its fixed cost of
starting and stopping. A separate Flink run collects the changelog; its final table must
equal Eddy's (for the top-N Q5, up to how ties at the last place are broken). Prints a
table per query and one JSON document (also written to target/flink-compare.json). Run
through compare.sh, which prepares the venv and the binary.

The queries over `orders` alone read one file of bare Debezium envelopes (`eddy gen
--shape envelope`), both engines the same file. The join Q4 reads `orders` and
`customers`: Eddy one file of Kafka records of both tables (`eddy gen --customers`),
Flink that file split by table into two files of envelopes, one source each.

    target/flink-venv/bin/python benches/flink/compare.py --events 200000 --repeat 2
    target/flink-venv/bin/python benches/flink/compare.py --queries Q1,Q4,Q5
"""
import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EDDY = ROOT / "target/release/eddy"
SCHEMA = ROOT / "benches/orders.prisma"
FLINK_JOB = Path(__file__).resolve().parent / "flink_job.py"
FLINK_PYTHON = ROOT / "target/flink-venv/bin/python"
WORK = ROOT / "target/flink-bench"
REPORT = ROOT / "target/flink-compare.json"
TIME = "/usr/bin/time"
JVM_EXIT_TIMEOUT_S = 120
AVG_TOLERANCE = Decimal("0.000001")


@dataclass
class Query:
    """A benchmark query and how its final tables are compared.

    `keys` are the result's key columns (Eddy's upsert key), `avg_columns` the AVGs that may
    differ in the last digit, `join` whether it reads `customers` too, and `top_by` the
    ORDER BY column of a top-N, whose ties at the last place either engine may break.
    """
    name: str
    sql: str
    keys: list
    avg_columns: list = field(default_factory=list)
    join: bool = False
    top_by: str | None = None


QUERIES = [
    Query("Q1", "SELECT country, COUNT(*) AS n, SUM(amount) AS total, AVG(amount) AS mean "
                "FROM orders GROUP BY country", ["country"], ["mean"]),
    Query("Q2", "SELECT status, MIN(amount) AS lo, MAX(amount) AS hi, "
                "COUNT(DISTINCT user_id) AS users FROM orders GROUP BY status", ["status"]),
    Query("Q3", "SELECT country, status, SUM(amount) AS total FROM orders WHERE amount > 100 "
                "GROUP BY country, status HAVING COUNT(*) > 10", ["country", "status"]),
    Query("Q4", "SELECT c.country, COUNT(*) AS n, SUM(o.amount) AS total "
                "FROM orders o JOIN customers c ON o.user_id = c.id GROUP BY c.country",
          ["country"], join=True),
    Query("Q5", "SELECT user_id, SUM(amount) AS spent FROM orders GROUP BY user_id "
                "ORDER BY spent DESC LIMIT 10", ["user_id"], top_by="spent"),
]


@dataclass
class Input:
    """The same change events as each engine reads them.

    Eddy reads `eddy_path`: bare envelopes of `eddy_table`, or Kafka records when
    `eddy_table` is None. Flink reads `orders` and, for a join, `customers`: envelope files.
    """
    events: int
    eddy_path: Path
    eddy_table: str | None
    orders: Path
    customers: Path | None = None


class Mismatch(Exception):
    """The two engines' final tables differ."""


# ---------------------------------------------------------------- measuring processes

def parse_time_v(path):
    """CPU seconds (user + sys) and peak RSS (MB) from a `/usr/bin/time -v` report."""
    fields = {}
    for line in Path(path).read_text().splitlines():
        name, _, value = line.strip().rpartition(": ")
        fields[name] = value
    return {
        "cpu_s": round(float(fields["User time (seconds)"])
                       + float(fields["System time (seconds)"]), 2),
        "rss_mb": round(int(fields["Maximum resident set size (kbytes)"]) / 1024, 1),
    }


def wait_for_time_report(path, timeout_s):
    """Waits until `/usr/bin/time` has written its full report (after its command exits)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and "Exit status" in path.read_text():
            return parse_time_v(path)
        time.sleep(0.05)
    sys.exit(f"the Flink JVM did not exit within {timeout_s} s after its client ({path})")


def java_wrapper(work):
    """A JAVA_HOME whose `bin/java` runs the real java under `/usr/bin/time -v`."""
    real_java = Path(shutil.which("java")).resolve()
    home = work / "timed-jdk"
    java = home / "bin/java"
    java.parent.mkdir(parents=True, exist_ok=True)
    java.write_text("#!/bin/sh\n"
                    f'exec {TIME} -v -o "$FLINK_JVM_TIME_FILE" {real_java} "$@"\n')
    java.chmod(0o755)
    return home


def fail_with_log(what, log):
    """Exits naming the failed run and showing the end of its log."""
    tail = "\n".join(Path(log).read_text(errors="replace").splitlines()[-30:])
    sys.exit(f"{what} failed; end of {log}:\n{tail}")


# ---------------------------------------------------------------- the two engines

def flink_command(source, query, mode):
    """The PyFlink client's command line (flink_job.py in the venv) over `source`'s files."""
    tables = ["--orders", str(source.orders)]
    if source.customers is not None:
        tables += ["--customers", str(source.customers)]
    return [str(FLINK_PYTHON), str(FLINK_JOB), *tables, "--sql", query.sql, "--mode", mode]


def flink_env(work, jvm_time):
    """The client's environment: the timed JAVA_HOME, reporting to `jvm_time`."""
    return dict(os.environ, JAVA_HOME=str(java_wrapper(work)),
                FLINK_JVM_TIME_FILE=str(jvm_time))


def run_flink_timed(work, source, query, tag):
    """One Flink run into a blackhole sink: the JVM's CPU and RSS, the client's CPU, wall."""
    jvm_time, client_time = work / f"{tag}.jvm.time", work / f"{tag}.client.time"
    log = work / f"{tag}.log"
    jvm_time.unlink(missing_ok=True)
    start = time.monotonic()
    with open(log, "wb") as err:
        client = subprocess.run([TIME, "-v", "-o", str(client_time),
                                 *flink_command(source, query, "time")],
                                stdout=err, stderr=err, env=flink_env(work, jvm_time))
    if client.returncode != 0:
        fail_with_log(f"Flink {query.name}", log)
    jvm = wait_for_time_report(jvm_time, JVM_EXIT_TIMEOUT_S)
    wall = time.monotonic() - start
    return dict(jvm, wall_s=round(wall, 2), client_cpu_s=parse_time_v(client_time)["cpu_s"])


def run_flink_changelog(work, source, query):
    """Flink's collecting run: its changelog lines and the seconds to the first one."""
    tag = f"{query.name}.flink-check"
    jvm_time, log = work / f"{tag}.jvm.time", work / f"{tag}.log"
    jvm_time.unlink(missing_ok=True)
    lines, first = [], None
    start = time.monotonic()
    with open(log, "wb") as err:
        with subprocess.Popen(flink_command(source, query, "check"), stdout=subprocess.PIPE,
                              stderr=err, env=flink_env(work, jvm_time), text=True) as client:
            for line in client.stdout:
                first = first if first is not None else time.monotonic() - start
                lines.append(line)
    if client.returncode != 0:
        fail_with_log(f"Flink {query.name} (collect)", log)
    wait_for_time_report(jvm_time, JVM_EXIT_TIMEOUT_S)  # no overlap with the next run
    return lines, None if first is None else round(first, 2)


def run_eddy(work, source, query, tag):
    """One `eddy run`: CPU, RSS and wall from `/usr/bin/time`, and its output file."""
    report, out, log = work / f"{tag}.time", work / f"{tag}.jsonl", work / f"{tag}.log"
    table = [] if source.eddy_table is None else ["--table", source.eddy_table]
    command = [TIME, "-v", "-o", str(report), str(EDDY), "run", "--schema", str(SCHEMA),
               *table, "--input", str(source.eddy_path), "--sql", query.sql]
    start = time.monotonic()
    with open(out, "wb") as stdout, open(log, "wb") as stderr:
        done = subprocess.run(command, stdout=stdout, stderr=stderr)
    wall = time.monotonic() - start
    if done.returncode != 0:
        fail_with_log(f"Eddy {query.name}", log)
    return dict(parse_time_v(report), wall_s=round(wall, 2)), out


# ---------------------------------------------------------------- final tables

def normalize(row, query):
    """(key tuple, value tuple): key columns as they are, every other column a Decimal."""
    key = tuple(row[name] for name in query.keys)
    values = tuple((name, None if row[name] is None else Decimal(str(row[name])))
                   for name in row if name not in query.keys)
    return key, values


def fold_flink(lines, query):
    """Final table of a Flink changelog: +I/+U add a row, -U/-D remove one."""
    rows = collections.Counter()
    for line in lines:
        change = json.loads(line)
        rows[normalize(change["row"], query)] += 1 if change["op"] in ("+I", "+U") else -1
    if any(count not in (0, 1) for count in rows.values()):
        raise Mismatch(f"{query.name}: Flink's changelog does not fold to a set of rows")
    table = {key: values for (key, values), count in rows.items() if count == 1}
    if len(table) != sum(rows.values()):
        raise Mismatch(f"{query.name}: Flink's final table repeats a key")
    return table


def fold_eddy(path, query):
    """Final table of Eddy's upsert output: the last value per key, null deletes."""
    table = {}
    with open(path) as lines:
        for line in lines:
            change = json.loads(line, parse_float=Decimal)
            key = tuple(change["key"][name] for name in query.keys)
            if change["value"] is None:
                table.pop(key, None)
            else:
                table[key] = normalize(change["value"], query)[1]
    return table


def differs_in_last_digit(name, flink, eddy, query):
    """True when an AVG column differs by at most AVG_TOLERANCE (rounding vs truncation)."""
    return (name in query.avg_columns and flink is not None and eddy is not None
            and abs(flink - eddy) <= AVG_TOLERANCE)


def show(values):
    """A row's values for a message: `n=2, total=3.00`."""
    return ", ".join(f"{name}={value}" for name, value in values)


def compare_tables(flink, eddy, query):
    """Raises Mismatch at the first differing row; returns the count of last-digit AVGs."""
    for key in sorted(set(flink) | set(eddy), key=repr):
        if key not in eddy or key not in flink:
            only, values = ("Flink", flink[key]) if key in flink else ("Eddy", eddy[key])
            raise Mismatch(f"{query.name}: group {key} only in {only}: {show(values)}")
    last_digit = 0
    for key in sorted(flink, key=repr):
        f_row, e_row = dict(flink[key]), dict(eddy[key])
        if f_row.keys() != e_row.keys():
            raise Mismatch(f"{query.name}: columns differ at {key}: Flink {sorted(f_row)}, "
                           f"Eddy {sorted(e_row)}")
        for name, f_value in f_row.items():
            if f_value == e_row[name]:
                continue
            if not differs_in_last_digit(name, f_value, e_row[name], query):
                raise Mismatch(f"{query.name}: group {key} differs in {name}: "
                               f"Flink {show(flink[key])}; Eddy {show(eddy[key])}")
            last_digit += 1
    return last_digit


def compare_top(flink, eddy, query):
    """Compares two top-N answers, letting ties at the last place be broken either way.

    Which of the rows tied at the lowest kept value make the cut is each engine's choice
    (Eddy takes them by row key ascending, Flink arbitrarily), so the answers must hold the
    same multiset of `top_by` values and the same rows above the lowest one. Raises Mismatch
    otherwise; returns the number of rows at the lowest value and of those the engines chose
    differently.
    """
    column = query.top_by

    def ranked(table):
        return sorted((dict(values)[column] for values in table.values()), reverse=True)

    flink_values, eddy_values = ranked(flink), ranked(eddy)
    for place, (f_value, e_value) in enumerate(zip(flink_values, eddy_values), start=1):
        if f_value != e_value:
            raise Mismatch(f"{query.name}: {column} at place {place} differs: "
                           f"Flink {f_value}, Eddy {e_value}")
    if len(flink_values) != len(eddy_values):
        raise Mismatch(f"{query.name}: Flink keeps {len(flink_values)} rows, "
                       f"Eddy {len(eddy_values)}")
    if not flink_values:
        return 0, 0
    cut = flink_values[-1]

    def split(table):
        above = {key: values for key, values in table.items() if dict(values)[column] > cut}
        return above, {key for key, values in table.items() if dict(values)[column] == cut}

    (flink_above, flink_tied), (eddy_above, eddy_tied) = split(flink), split(eddy)
    compare_tables(flink_above, eddy_above, query)
    return len(flink_tied), len(flink_tied - eddy_tied)


def check(flink, eddy, query):
    """The comparison `query` calls for; returns what was let pass, for the report."""
    if query.top_by is None:
        return {"avg_last_digit": compare_tables(flink, eddy, query)}
    tied, chosen_differently = compare_top(flink, eddy, query)
    return {"tied_at_last_place": tied, "tied_chosen_differently": chosen_differently}


# ---------------------------------------------------------------- figures

def summary(runs, idle, events):
    """Median figures of an engine's runs on one query, with every run kept.

    `idle` is the same query's run over an empty file: what starting up and shutting down
    cost, so `events_per_cpu_s_beyond_idle` is the rate once running.
    """
    cpu = statistics.median(run["cpu_s"] for run in runs)
    busy = cpu - idle["cpu_s"]
    figures = {
        "cpu_s": cpu,
        "rss_mb": statistics.median(run["rss_mb"] for run in runs),
        "wall_s": statistics.median(run["wall_s"] for run in runs),
        "events_per_cpu_s": round(events / cpu) if cpu else None,
        "idle_cpu_s": idle["cpu_s"],
        "events_per_cpu_s_beyond_idle": round(events / busy) if busy > 0 else None,
    }
    return dict(figures, runs=runs, idle_run=idle)


def ratio(numerator, denominator):
    """numerator / denominator to two decimals, or None when either is missing or zero."""
    return round(numerator / denominator, 2) if numerator and denominator else None


def thousands(number):
    """A count with thousands separators, or '-' when there is none."""
    return f"{number:,}" if number else "-"


def times(factor):
    """A ratio for the table: `8.2x`, or '-' when there is none."""
    return f"{factor}x" if factor else "-"


def print_query(name, result):
    """One query's figures as a small table."""
    flink, eddy = result["flink"], result["eddy"]
    print(f"\n{name}: {result['sql']}")
    print(f"  {'':6} {'CPU-s':>8} {'events/CPU-s':>13} {'peak RSS MB':>12} {'wall s':>8}"
          f" {'idle CPU-s':>11} {'events/CPU-s beyond idle':>25}")
    for label, fig in (("Flink", flink), ("Eddy", eddy)):
        print(f"  {label:6} {fig['cpu_s']:>8.2f} {thousands(fig['events_per_cpu_s']):>13} "
              f"{fig['rss_mb']:>12.1f} {fig['wall_s']:>8.2f} {fig['idle_cpu_s']:>11.2f} "
              f"{thousands(fig['events_per_cpu_s_beyond_idle']):>25}")
    print(f"  Eddy/Flink events per CPU-s: {times(result['throughput_ratio_eddy_over_flink'])} "
          f"({times(result['throughput_ratio_beyond_idle'])} beyond idle); "
          f"Flink/Eddy peak RSS: {times(result['rss_ratio_flink_over_eddy'])}")
    passed = result["check"]
    if passed.get("avg_last_digit"):
        note = f" ({passed['avg_last_digit']} AVGs differ in the 6th decimal)"
    elif "tied_at_last_place" in passed:
        note = (f" ({passed['tied_at_last_place']} tied at the last place, "
                f"{passed['tied_chosen_differently']} of them chosen differently)")
    else:
        note = ""
    print(f"  {result['events']:,} events; Flink's first result {flink['first_result_s']} s "
          f"after its start; {result['rows']} result rows equal{note}")


# ---------------------------------------------------------------- the run

def generate(events, path, *options):
    """Eddy's generator: `events` change events with decimals as strings, into `path`."""
    subprocess.run([str(EDDY), "gen", "--events", str(events), "--decimal", "string",
                    *options, "--output", str(path)], check=True)
    return path


def count_lines(path):
    """Lines in a file: the events of an envelope file."""
    with open(path, "rb") as lines:
        return sum(1 for _ in lines)


def orders_input(path):
    """Both engines read the same file of `orders` envelopes."""
    return Input(count_lines(path), path, "orders", path)


def split_by_table(records, work):
    """Flink's input from Eddy's file of Kafka records of `orders` and `customers`.

    Each record's envelope goes to its table's file (the topic's last part), in the order
    read, so each table's changes keep their order; tombstones carry no change (Eddy skips
    them) and are dropped.
    """
    paths = {table: work / f"{records.stem}.{table}.jsonl" for table in ("orders", "customers")}
    events = 0
    with open(records) as lines, open(paths["orders"], "w") as orders, \
            open(paths["customers"], "w") as customers:
        outputs = {"orders": orders, "customers": customers}
        for number, line in enumerate(lines, start=1):
            record = json.loads(line)
            if record["value"] is None:
                continue
            table = record["topic"].rpartition(".")[2]
            if table not in outputs:
                sys.exit(f"{records}:{number}: a record of {record['topic']}, "
                         "neither orders nor customers")
            outputs[table].write(json.dumps(record["value"], separators=(",", ":")) + "\n")
            events += 1
    return Input(events, records, None, paths["orders"], paths["customers"])


def bench_query(work, source, idle_source, query, rounds):
    """Idle runs, alternating timed runs, Flink's collecting run, the comparison, figures."""
    print(f"{query.name}: both engines over empty input ...", flush=True)
    flink_idle = run_flink_timed(work, idle_source, query, f"{query.name}.flink.idle")
    eddy_idle = run_eddy(work, idle_source, query, f"{query.name}.eddy.idle")[0]
    flink_runs, eddy_runs = [], []
    for round_no in range(rounds):
        print(f"{query.name} round {round_no + 1}/{rounds}: Flink ...", end="", flush=True)
        tag = f"{query.name}.{{}}.{round_no}"
        flink_runs.append(run_flink_timed(work, source, query, tag.format("flink")))
        print(f" {flink_runs[-1]['cpu_s']} CPU-s; Eddy ...", end="", flush=True)
        eddy_run, eddy_out = run_eddy(work, source, query, tag.format("eddy"))
        eddy_runs.append(eddy_run)
        print(f" {eddy_run['cpu_s']} CPU-s", flush=True)
    print(f"{query.name}: Flink collecting the changelog ...", flush=True)
    changelog, first_result = run_flink_changelog(work, source, query)
    flink_table, eddy_table = fold_flink(changelog, query), fold_eddy(eddy_out, query)
    passed = check(flink_table, eddy_table, query)
    flink = summary(flink_runs, flink_idle, source.events)
    eddy = summary(eddy_runs, eddy_idle, source.events)
    flink["first_result_s"] = first_result
    return {
        "sql": query.sql,
        "events": source.events,
        "input": str(source.eddy_path),
        "flink": flink,
        "eddy": eddy,
        "throughput_ratio_eddy_over_flink": ratio(flink["cpu_s"], eddy["cpu_s"]),
        "throughput_ratio_beyond_idle": ratio(eddy["events_per_cpu_s_beyond_idle"],
                                              flink["events_per_cpu_s_beyond_idle"]),
        "rss_ratio_flink_over_eddy": ratio(flink["rss_mb"], eddy["rss_mb"]),
        "rows": len(flink_table),
        "check": passed,
    }


def selected_queries(names):
    """The queries named in a comma-separated list, in the list's order."""
    by_name = {query.name: query for query in QUERIES}
    chosen = [name.strip().upper() for name in names.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in by_name]
    if unknown or not chosen:
        sys.exit(f"--queries: choose among {', '.join(by_name)} (got {names!r})")
    return [by_name[name] for name in chosen]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to generate")
    parser.add_argument("--repeat", type=int, default=0, help="extra rounds per query")
    parser.add_argument("--queries", default=",".join(query.name for query in QUERIES),
                        help="comma-separated, e.g. Q1,Q4,Q5 (default: all)")
    parser.add_argument("--input", type=Path,
                        help="an existing file of `orders` envelopes instead, for all but Q4")
    parser.add_argument("--shop-input", type=Path,
                        help="an existing file of Kafka records of both tables, for Q4")
    args = parser.parse_args()
    queries = selected_queries(args.queries)
    WORK.mkdir(parents=True, exist_ok=True)
    empty = WORK / "empty.jsonl"
    empty.write_text("")
    # By "orders" or "join": a query's input and the empty input of its idle run.
    sources = {}
    if any(not query.join for query in queries):
        path = (args.input.resolve() if args.input
                else generate(args.events, WORK / f"orders-{args.events}.jsonl",
                             "--shape", "envelope"))
        sources["orders"] = orders_input(path), Input(0, empty, "orders", empty)
    if any(query.join for query in queries):
        path = (args.shop_input.resolve() if args.shop_input
                else generate(args.events, WORK / f"shop-{args.events}.jsonl",
                             "--customers", "--shape", "kafka"))
        sources["join"] = split_by_table(path, WORK), Input(0, empty, None, empty, empty)
    inputs = {kind: {"path": str(source.eddy_path), "events": source.events,
                     "bytes": source.eddy_path.stat().st_size}
              for kind, (source, _) in sources.items()}
    # `events` heads benches/table.py's table; generated inputs all hold --events events.
    report = {"events": next(iter(inputs.values()))["events"], "inputs": inputs,
              "rounds": 1 + args.repeat, "cpus": os.cpu_count(), "flink": "2.3.0 (PyFlink)",
              "queries": {}}
    try:
        for query in queries:
            source, idle_source = sources["join" if query.join else "orders"]
            report["queries"][query.name] = bench_query(
                WORK, source, idle_source, query, rounds=1 + args.repeat)
    except Mismatch as mismatch:
        sys.exit(f"MISMATCH {mismatch}")
    for name, result in report["queries"].items():
        print_query(name, result)
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{json.dumps(report, indent=2)}")


if __name__ == "__main__":
    main()
