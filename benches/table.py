#!/usr/bin/env python3
"""Renders README.md's benchmark table from the JSON results benches/run.sh leaves.

    python3 benches/table.py target/bench target/flink-compare.json
"""
import datetime
import json
import os
import platform
import sys
from pathlib import Path


def load(path):
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else None


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    memory = next(int(line.split()[1]) for line in open("/proc/meminfo")
                  if line.startswith("MemTotal"))
    return f"{os.cpu_count()} cores ({cpu}), {memory / 2**20:.0f} GiB, {platform.system()}"


def k(x):
    return f"{x / 1000:.0f}k"


def main(out, flink_path):
    out = Path(out)
    flink = load(flink_path) or {"queries": {}}
    print(f"Measured {datetime.date.today()} on {machine()}; "
          f"{flink.get('events', '?')} events; Eddy on two threads (`--threads 2`, its CPU "
          f"counting both), Flink at parallelism 1. Ratios: Eddy's events per CPU-second over "
          f"Flink's, and in brackets over Flink's beyond its idle run (start-up and shutdown "
          f"left out).\n")
    print("| query | Eddy events/s | Eddy events/CPU-s | Flink events/CPU-s | ratio | "
          "Eddy peak RSS | Flink peak RSS | ratio | Eddy first result | Flink first result |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in ("q1", "q2", "q3", "q4", "q5"):
        # Q4 reads both tables' Kafka records (shop.jsonl), the others orders' envelopes.
        eddy = load(out / (f"shop-{name}.json" if name == "q4" else f"in-process-{name}.json"))
        if eddy is None:
            continue
        versus = flink["queries"].get(name.upper())
        row = [name.upper(), k(eddy["events_per_second"]), k(eddy["events_per_cpu_second"])]
        if versus:
            f = versus["flink"]
            row += [f"{k(f['events_per_cpu_s'])} ({k(f['events_per_cpu_s_beyond_idle'])} beyond idle)",
                    f"{eddy['events_per_cpu_second'] / f['events_per_cpu_s']:.1f}× "
                    f"({eddy['events_per_cpu_second'] / f['events_per_cpu_s_beyond_idle']:.1f}×)"]
        else:
            row += ["-", "-"]
        rss = eddy["peak_rss_bytes"] / 1e6
        row.append(f"{rss:.0f} MB")
        if versus:
            row += [f"{versus['flink']['rss_mb']:.0f} MB", f"{versus['flink']['rss_mb'] / rss:.1f}×"]
        else:
            row += ["-", "-"]
        row.append(f"{eddy['first_result_ms']:.0f} ms")
        row.append(f"{versus['flink']['first_result_s']:.1f} s" if versus and
                   versus["flink"].get("first_result_s") else "-")
        print("| " + " | ".join(row) + " |")
    print()
    lean(out)
    print()
    threads(out)
    print()
    growth(out)
    print()
    targets(out)
    print()
    runs = [(label, load(out / f"{name}.json")) for label, name in
            (("as fast as possible", "broker-max"), ("fixed offered rate", "broker-rate"))]
    if not any(run for _, run in runs):
        return
    print("| through tansu, Q1 | records/s | bare consumer | latency p50 | p99 | max | "
          "broker alone p50 / p99 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, run in runs:
        if run is None:
            continue
        rate = f" ({run['offered_rate']}/s)" if run["offered_rate"] else ""
        bare = run["bare_consumer_per_second"]
        bare = f"{k(bare)}/s (Eddy {100 * run['records_per_second'] / bare:.0f}%)" if bare else "-"
        lat = run["latency_ms"]
        floor = run.get("broker_latency_ms")
        floor = f"{floor['p50']:.1f} / {floor['p99']:.1f} ms" if floor else "-"
        print(f"| {label}{rate} | {k(run['records_per_second'])} | {bare} | "
              f"{lat['p50']:.1f} ms | {lat['p99']:.1f} ms | {lat['max']:.1f} ms | {floor} |")


def lean(out):
    """The stripped binary's size and the peak RSS of a job that reads nothing."""
    run = load(out / "lean.json")
    if run is None:
        return
    print(f"Release binary {run['binary_bytes'] / 1e6:.1f} MB (stripped); a job planned and "
          f"given no input (Q1, `--input /dev/null`) peaks at "
          f"{run['empty_run_peak_rss_bytes'] / 1e6:.1f} MB "
          f"({run['empty_run_peak_rss_bytes'] / 2**20:.1f} MiB) RSS, the median of five runs.")


def threads(out):
    """Each query on one thread and on two (the second decoding), and the scaling."""
    print("| query | 1 thread events/s | events/CPU-s | 2 threads events/s | events/CPU-s | "
          "scaling efficiency |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in ("q1", "q2", "q3"):
        one, two = load(out / f"in-process-{name}-t1.json"), load(out / f"in-process-{name}.json")
        if one is None or two is None:
            continue
        efficiency = two["events_per_second"] / (2 * one["events_per_second"])
        print(f"| {name.upper()} | {k(one['events_per_second'])} | "
              f"{k(one['events_per_cpu_second'])} | {k(two['events_per_second'])} | "
              f"{k(two['events_per_cpu_second'])} | {100 * efficiency:.0f}% |")


def growth(out):
    """Q1 over ten times the events and live rows, against the base run."""
    base, big = load(out / "in-process-q1.json"), load(out / "in-process-q1-10x.json")
    if base is None or big is None:
        return
    print("| Q1 | events | live rows | events/s | CPU µs/event | peak RSS | "
          "table state per live row | operator state |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, run in (("base", base), ("10×", big)):
        print(f"| {label} | {run['events']:,} | {run['live_keys']:,} | "
              f"{k(run['events_per_second'])} | {1e6 / run['events_per_cpu_second']:.2f} | "
              f"{run['peak_rss_bytes'] / 1e6:.0f} MB | {run['state_bytes_per_live_key']:.0f} B | "
              f"{run['operator_state_bytes']:,} B |")
    ratio = base["events_per_cpu_second"] / big["events_per_cpu_second"]
    print(f"\nCPU per event at 10× the events: {ratio:.2f}× the base run's.")


def targets(out):
    """Q4 and Q5 against Q1 over the same input, with the state they keep per live row."""
    print("| query | input | events/s | Q1's on the same input | ratio | live rows | "
          "table state | operator state |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, input_name, q1_file in (("q4", "shop.jsonl (Kafka records, both tables)", "shop-q1"),
                                      ("q5", "orders.jsonl (envelopes)", "in-process-q1")):
        run = load(out / (f"shop-{name}.json" if name == "q4" else f"in-process-{name}.json"))
        q1 = load(out / f"{q1_file}.json")
        if run is None or q1 is None:
            continue
        rows = ", ".join(f"{table} {k(n)}" for table, n in run["live_keys_by_table"].items())
        print(f"| {name.upper()} | {input_name} | {k(run['events_per_second'])} | "
              f"{k(q1['events_per_second'])} | "
              f"{100 * run['events_per_second'] / q1['events_per_second']:.0f}% | {rows} | "
              f"{run['state_bytes_per_live_key']:.0f} B/live row | "
              f"{run['operator_bytes_per_live_key']:.0f} B/live row |")


if __name__ == "__main__":
    main(*sys.argv[1:3])
