"""Prepares `eddy serve` for tests/fuzz/schemathesis.sh: environments A and B, each with
Eddy's own connector on $EDDY_FUZZ_POSTGRES and a job (B's query carries a marker no answer
to A may show), and the
schemathesis configurations that aim every environment, job, connector and token parameter
at one environment: B's for A's token (`tenant.toml`), A's for the admin (`admin-on-a.toml`).

Usage: setup.py BASE_URL ADMIN_TOKEN MARKER WORK_DIR; prints A's token.
"""

import json
import os
import sys
import urllib.request

base, admin, marker, work = sys.argv[1:]
SCHEMA = 'model Order {\n  id BigInt @id\n  status String?\n  @@map("orders")\n}'


def call(token, path, body=None):
    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def onboard(environment, column):
    connection = os.environ["EDDY_FUZZ_POSTGRES"]
    token = call(admin, "/createConnector",
                 {"connectionString": connection, "environmentId": environment})["token"]
    job = call(token, "/createJob", {
        "connectionString": connection,
        "environmentId": environment,
        "schema": SCHEMA,
        "sqlQuery": f"SELECT status, COUNT(*) AS {column} FROM orders GROUP BY status",
    })["id"]
    token_id = call(token, f"/v1/environments/{environment}/tokens")[0]["tokenId"]
    return token, job, token_id


NO_CACHE = "[cache]\nenabled = false\n"


def aimed_at(environment, job, token_id):
    return NO_CACHE + f"""
[[operations]]
include-path-regex = "^/v1/environments/"
parameters = {{ "path.id" = "{environment}", "path.tokenId" = "{token_id}" }}

[[operations]]
include-path-regex = "^/(jobStatus|v1/jobs)/"
parameters = {{ "path.id" = "{job}" }}

[[operations]]
include-path-regex = "^/v1/connectors/"
parameters = {{ "path.name" = "{environment}-connector", "query.schema" = "public", "query.table" = "orders" }}

[[operations]]
include-path-regex = "^/(createConnector|createJob|deleteJob|jobStatus|v1/jobs|v1/connectors/test)$"
parameters = {{ "query.environmentId" = "{environment}", "body.environmentId" = "{environment}", "body.connectionString" = "{os.environ['EDDY_FUZZ_POSTGRES']}" }}
"""


token_a, job_a, token_id_a = onboard("a", "orders_total")
_, job_b, token_id_b = onboard("b", marker)
with open(f"{work}/tenant.toml", "w") as f:
    f.write(aimed_at("b", job_b, token_id_b))
with open(f"{work}/admin-on-a.toml", "w") as f:
    f.write(aimed_at("a", job_a, token_id_a))
print(token_a)
