"""Runs one query over files of Debezium envelopes on Apache Flink (PyFlink).

The job runs in Flink's fastest setting at parallelism 1: Table API in streaming mode,
mini-batch aggregation on. Each table is a filesystem source with the debezium-json format
over a file of its own: `orders` always, `customers` when `--customers` names its file (a
join reads both; Flink reads the two files side by side, in no order across them). Two
modes:

- `time`: INSERT INTO a blackhole sink and wait for the job to finish (what is measured).
- `check`: collect the query's changelog and print it on stdout, one JSON line per change,
  `{"op": "+I"|"-U"|"+U"|"-D", "row": {column: value}}`, decimals as strings.

    python flink_job.py --orders orders.jsonl --mode check --sql "SELECT ..."
    python flink_job.py --orders o.jsonl --customers c.jsonl --mode time --sql "SELECT ..."

PyFlink starts a gateway JVM that runs the job in a local mini-cluster; that JVM pings this
process every 100 ms and exits (with status 1) once this process is gone, so the caller can
time it by pointing JAVA_HOME at a wrapper (see compare.py).
"""
import argparse
import decimal
import json

from pyflink.table import EnvironmentSettings, TableEnvironment

ORDERS_DDL = """
CREATE TABLE orders (
  id INT, user_id INT, country STRING, status STRING, amount DECIMAL(12, 2),
  created_at BIGINT, updated_at BIGINT
) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'debezium-json')
"""

# The primary key (which Eddy knows from the Prisma schema) lets Flink's join keep one row
# per customer id (JoinKeyContainsUniqueKey) instead of a multiset. On `orders` it would
# change none of the plans: the scans project `id` away.
CUSTOMERS_DDL = """
CREATE TABLE customers (
  id INT, name STRING, country STRING, PRIMARY KEY (id) NOT ENFORCED
) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'debezium-json')
"""

SETTINGS = {
    "parallelism.default": "1",
    "table.exec.resource.default-parallelism": "1",
    "table.exec.mini-batch.enabled": "true",
    "table.exec.mini-batch.allow-latency": "1 s",
    "table.exec.mini-batch.size": "5000",
}


def table_env(orders, customers):
    """A streaming TableEnvironment with the `orders` source over the file `orders` and,
    unless `customers` is None, the `customers` source over that file."""
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = env.get_config()
    for key, value in SETTINGS.items():
        config.set(key, value)
    env.execute_sql(ORDERS_DDL.format(path=orders))
    if customers is not None:
        env.execute_sql(CUSTOMERS_DDL.format(path=customers))
    return env


def run_to_blackhole(env, sql):
    """Runs the query into a blackhole sink and waits for the job to end."""
    env.execute_sql(f"CREATE TABLE sink WITH ('connector' = 'blackhole') AS {sql}").wait()


def json_value(value):
    """A JSON-safe value: decimals as strings, everything else as is."""
    return str(value) if isinstance(value, decimal.Decimal) else value


def print_changelog(env, sql):
    """Collects the query's changelog and prints each change as a JSON line."""
    result = env.execute_sql(sql)
    columns = result.get_resolved_schema().get_column_names()
    with result.collect() as changes:
        for change in changes:
            row = {name: json_value(value) for name, value in zip(columns, change)}
            print(json.dumps({"op": str(change.get_row_kind()), "row": row}),
                  flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", required=True, help="file of `orders` envelopes")
    parser.add_argument("--customers", help="file of `customers` envelopes, for a join")
    parser.add_argument("--sql", required=True, help="query over `orders` (and `customers`)")
    parser.add_argument("--mode", choices=["time", "check"], required=True)
    args = parser.parse_args()
    env = table_env(args.orders, args.customers)
    if args.mode == "time":
        run_to_blackhole(env, args.sql)
    else:
        print_changelog(env, args.sql)


if __name__ == "__main__":
    main()
