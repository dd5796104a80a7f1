"""Schemathesis hooks for tests/fuzz/schemathesis.sh: the service's own checks, and counts.

EDDY_FUZZ_PASS names the pass; the checks each pass adds to schemathesis' own:
- `anonymous`: every operation but /healthz and /openapi.json answers 401.
- `tenant`: the caller holds environment A's token, and every parameter naming an
  environment, job, connector or token names environment B's: nothing answered may carry
  B's data (its query's marker, or `"environmentId": "b"`), and no operation but the
  listings (`/v1/jobs`, `/v1/connectors`, `/metrics`) and the service's own may succeed.
Every request and every failed check is counted in $EDDY_FUZZ_COUNTS (one line each).
"""

import json
import os

import schemathesis

PASS = os.environ["EDDY_FUZZ_PASS"]
COUNTS = os.environ["EDDY_FUZZ_COUNTS"]
FOREIGN_MARKER = os.environ.get("EDDY_FUZZ_FOREIGN_MARKER", "")
PUBLIC = {"/healthz", "/openapi.json"}
LISTINGS = {"/v1/jobs", "/v1/connectors", "/metrics"} | PUBLIC


def count(kind, case, detail=""):
    with open(COUNTS, "a") as f:
        f.write(json.dumps({"pass": PASS, "kind": kind, "method": case.method,
                            "path": case.path, "detail": detail}) + "\n")


@schemathesis.hook
def after_call(context, case, response):
    count("request", case, str(response.status_code))


def foreign_data(text):
    """What of environment B's the answer shows, if anything."""
    if FOREIGN_MARKER and FOREIGN_MARKER in text:
        return f"B's query marker `{FOREIGN_MARKER}`"
    try:
        body = json.loads(text)
    except ValueError:
        return 'environment="b"' if 'environment="b"' in text else None
    stack = [body]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if value.get("environmentId") == "b":
                return '"environmentId": "b"'
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None


@schemathesis.check
def eddy_tenancy(ctx, response, case):
    """No answer to A's token carries B's data; nothing of B succeeds for it."""
    if PASS != "tenant":
        return None
    shown = foreign_data(response.text)
    if shown:
        count("failure", case, f"tenancy: shows {shown}")
        raise AssertionError(f"token A was shown environment B's data: {shown}")
    if 200 <= response.status_code < 300 and case.operation.path not in LISTINGS:
        count("failure", case, f"tenancy: {response.status_code}")
        raise AssertionError(f"token A got {response.status_code} on B's {case.path}")
    return None


@schemathesis.check
def eddy_authentication(ctx, response, case):
    """Without a credential, only /healthz and /openapi.json answer anything but 401 (to the
    methods the document lists; others are a 405)."""
    if PASS != "anonymous" or case.operation.path in PUBLIC:
        return None
    if case.method.upper() != case.operation.method.upper():
        return None
    if response.status_code != 401:
        count("failure", case, f"authentication: {response.status_code}")
        raise AssertionError(f"no credential, yet {response.status_code}")
    return None
