#!/usr/bin/env python3
"""Generates a Debezium changelog of the pg-app `orders` table as Kafka-record JSON lines.

The mix is what a busy OLTP table sends: inserts, updates with REPLICA IDENTITY FULL before
images, deletes with tombstones, and a replayed tail now and then (at-least-once delivery).
Decimals use Debezium's default `precise` encoding (base64 unscaled bytes).

    python3 benches/gen_orders.py --events 1000000 > /tmp/orders-1m.jsonl
    python3 benches/gen_orders.py --events 1000000 --schemas > /tmp/orders-1m-schemas.jsonl
"""
import argparse
import base64
import json
import random
import sys

STATUSES = ["new", "paid", "shipped", "cancelled", "refunded", None]

VALUE_SCHEMA = {
    "type": "struct",
    "name": "app.public.orders.Envelope",
    "optional": False,
    "fields": [
        {
            "field": side,
            "type": "struct",
            "optional": True,
            "name": "app.public.orders.Value",
            "fields": [
                {"field": "id", "type": "int64", "optional": False},
                {"field": "user_id", "type": "int32", "optional": True},
                {"field": "amount", "type": "bytes", "optional": True,
                 "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
                 "parameters": {"scale": "2", "connect.decimal.precision": "12"}},
                {"field": "status", "type": "string", "optional": True},
                {"field": "created_at", "type": "int64", "optional": True,
                 "name": "io.debezium.time.MicroTimestamp", "version": 1},
                {"field": "meta", "type": "string", "optional": True,
                 "name": "io.debezium.data.Json", "version": 1},
            ],
        }
        for side in ("before", "after")
    ] + [{"field": "op", "type": "string", "optional": False}],
}


def precise(cents):
    length = max(1, (cents.bit_length() + 8) // 8)
    return base64.b64encode(cents.to_bytes(length, "big", signed=True)).decode()


def row(order_id, rng):
    return {
        "id": order_id,
        "user_id": rng.randrange(1, 5000),
        "amount": precise(rng.randrange(1, 10_000_000)) if rng.random() < 0.95 else None,
        "status": rng.choice(STATUSES),
        "created_at": 1_700_000_000_000_000 + rng.randrange(0, 10**13),
        "meta": '{"src": "web"}',
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=100_000, help="distinct order ids")
    parser.add_argument("--schemas", action="store_true", help="schemas.enable=true")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    live = {}
    recent = []
    out = sys.stdout
    written = 0

    def emit(key, value):
        nonlocal written
        if args.schemas and value is not None:
            value = {"schema": VALUE_SCHEMA, "payload": value}
        line = json.dumps({"topic": "app.public.orders", "key": key, "value": value},
                          separators=(",", ":"))
        out.write(line + "\n")
        recent.append(line)
        del recent[:-16]
        written += 1

    while written < args.events:
        dice = rng.random()
        if dice < 0.02 and recent:
            for line in recent[-rng.randrange(1, 8):]:
                out.write(line + "\n")
                written += 1
        elif dice < 0.55 or not live:
            order_id = rng.randrange(1, args.keys + 1)
            after = row(order_id, rng)
            before = live.get(order_id)
            live[order_id] = after
            op = "u" if before else "c"
            emit({"id": order_id}, {"before": before, "after": after, "op": op})
        elif dice < 0.90:
            order_id = rng.choice(list(live)) if len(live) < 1000 else rng.randrange(1, args.keys + 1)
            before = live.get(order_id)
            if before is None:
                continue
            after = dict(before, status=rng.choice(STATUSES), amount=precise(rng.randrange(1, 10_000_000)))
            live[order_id] = after
            emit({"id": order_id}, {"before": before, "after": after, "op": "u"})
        else:
            order_id = rng.randrange(1, args.keys + 1)
            before = live.pop(order_id, None)
            if before is None:
                continue
            emit({"id": order_id}, {"before": before, "after": None, "op": "d"})
            emit({"id": order_id}, None)


if __name__ == "__main__":
    main()
