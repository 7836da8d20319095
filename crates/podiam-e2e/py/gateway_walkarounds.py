"""Every way around `podiam gateway` that issue 14 lists is refused before it reaches DynamoDB.

Usage: gateway_walkarounds.py --gateway URL --upstream URL --upstream-log FILE
                              --audit-log FILE --upstream-kind moto|dynalite

IAM (users, inline policies, access keys) goes to the podiam server named by AWS_ENDPOINT_URL,
as the account root (AWS_SHARED_CREDENTIALS_FILE). Tables are created and seeded directly on the
upstream, which checks no credentials. Every attack is a raw request signed with alice's key
(botocore's SigV4Auth or SigV4QueryAuth) and sent with http.client, so that the exact headers
(duplicates included), query string and body bytes are under control.

alice may GetItem, PutItem, Query and BatchGetItem on table allowedtbl, and ListTables. bob may
write allowedtbl. secrettbl holds a secret item; allowedtbl holds bob's item.

For each attack: the gateway answers the exact DynamoDB error code, its audit log has a
request_denied line with that code, and the upstream's log has no new line (the only line
tolerated is the gateway's own DescribeTable of a table the request names, which it needs for
the item keys of requests that passed the envelope and shape checks). At the end the secret
item and bob's item are checked directly on the upstream. Positive controls: alice's (and
bob's) allowed requests, sent the same raw way, go through, and the upstream log shows exactly
that action on that table (and key). The transaction and PartiQL rows run on both upstreams:
the gateway must refuse them itself, whatever the upstream implements.
"""

import json
import sys
import time

import boto3
import botocore.exceptions
from botocore.credentials import Credentials

import gateway_common
from gateway_common import JSON10, PREFIX, REGION, Tail, audit_event
SETTLE = 0.25  # seconds a refused request is given to show up upstream anyway

SECRET_ITEM = {
    "id": {"S": "secret"},
    "owner": {"S": "root"},
    "data": {"S": "the secret value"},
}
BOB_ITEM = {"id": {"S": "bob"}, "owner": {"S": "bob"}, "note": {"S": "bob's item"}}


class CheckFailed(Exception):
    pass


# ------------------------------------------------------------------------------------------
# Logs


class Logs:
    def __init__(self, upstream_log, audit_log):
        self.upstream = Tail(upstream_log)
        self.audit = Tail(audit_log)

    def drain(self):
        self.upstream.read()
        self.audit.read()

    def upstream_lines(self):
        return [json.loads(line) for line in self.upstream.read()]

    def audit_events(self):
        return [e for e in map(audit_event, self.audit.read()) if e is not None]


def is_schema_lookup(line, tables):
    """The gateway's own DescribeTable of one of `tables` (it reads key schemas that way)."""
    return (
        line.get("method") == "POST"
        and line.get("path") == "/"
        and line.get("query") == ""
        and line.get("target") == [PREFIX + "DescribeTable"]
        and line.get("action") in ("DescribeTable", None)
        and set(line.get("tables") or []) <= {table_name(t) for t in tables}
    )


def table_name(table):
    """A table as the gateway asks the upstream about it: by name, also when given as an ARN."""
    return table.split(":table/", 1)[1] if table.startswith("arn:") else table


# ------------------------------------------------------------------------------------------
# Raw signed requests


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def code(self):
        """The error code: the part of `__type` after `#`."""
        j = self.json()
        if not isinstance(j, dict) or not isinstance(j.get("__type"), str):
            return None
        return j["__type"].rsplit("#", 1)[-1]

    def __str__(self):
        return f"HTTP {self.status} {self.body[:300]!r}"


class Raw(gateway_common.Raw):
    """Raw requests whose answers are [`Response`]s."""

    def send(self, method, path, headers, body):
        return Response(*self.exchange(method, path, headers, body))

    def signed(self, creds, method, path, headers, body, presign=False, length=True):
        """(path with query, headers to send, body to send), signed with `creds`."""
        return (*self.sign(creds, method, path, headers, body, presign, length), body)

    def call(self, creds, method, path, headers, body, presign=False):
        return self.send(*([method] + list(self.signed(creds, method, path, headers, body, presign))))


def target(op):
    return ("X-Amz-Target", PREFIX + op)


def ctype(value=JSON10):
    return ("Content-Type", value)


def dumps(value):
    return json.dumps(value).encode()


# ------------------------------------------------------------------------------------------
# Set-up


def policy(statements):
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def make_user(iam, name, statements):
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="dynamodb", PolicyDocument=policy(statements))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def wait_active(ddb, table):
    deadline = time.time() + 30
    while time.time() < deadline:
        t = ddb.describe_table(TableName=table)["Table"]
        if t["TableStatus"] == "ACTIVE" and all(
            i.get("IndexStatus", "ACTIVE") == "ACTIVE" for i in t.get("GlobalSecondaryIndexes", [])
        ):
            return
        time.sleep(0.05)
    raise CheckFailed(f"table {table} never became ACTIVE on the upstream")


def create_table(ddb, name):
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "owner", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byowner",
                "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
                "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
            }
        ],
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
    )
    wait_active(ddb, name)


# ------------------------------------------------------------------------------------------


class Run:
    def __init__(self, args):
        self.args = args
        self.moto = args.upstream_kind == "moto"
        self.raw = Raw(args.gateway)
        self.logs = Logs(args.upstream_log, args.audit_log)
        self.checked = []
        self.failures = []
        self.lookups = 0

    def fail(self, name, detail):
        self.failures.append(f"{name}: {detail}")
        print(f"FAIL  {name}: {detail}")

    # An attack: refused with `code`, audited, and nothing (but schema lookups) upstream.
    def refused(self, name, code, method, path, headers, body, creds=None, presign=False,
                raw=None, lookups=()):
        self.logs.drain()
        if raw is not None:
            response = self.raw.send(method, *raw)
        else:
            response = self.raw.call(creds or self.alice, method, path, headers, body, presign)
        time.sleep(SETTLE)
        upstream = self.logs.upstream_lines()
        audit = self.logs.audit_events()
        problems = []
        if response.code() != code or response.status != 400:
            problems.append(f"expected 400 {code}, got {response}")
        leaked = [line for line in upstream if not is_schema_lookup(line, lookups)]
        if leaked:
            problems.append(f"the upstream logged {leaked}")
        self.lookups += len(upstream) - len(leaked)
        denied = [e for e in audit if e.get("event") == "request_denied"]
        if len(audit) != 1 or len(denied) != 1 or denied[0].get("code") != code:
            problems.append(f"expected one request_denied audit line with code {code}, got {audit}")
        if problems:
            self.fail(name, "; ".join(problems))
        else:
            self.checked.append(name)
            extra = f" (+{len(upstream)} schema lookup)" if upstream else ""
            print(f"ok    refused {code:28} {name}{extra}")

    # A positive control: answered 200 and the upstream ran exactly `action` on `tables`.
    def forwarded(self, name, creds, op, body, tables=(), lookups=(), keys=None):
        self.logs.drain()
        response = self.raw.call(creds, "POST", "/", [ctype(), target(op)], dumps(body))
        problems = []
        if response.status != 200:
            problems.append(f"expected 200, got {response}")
        deadline = time.time() + 5
        lines = []
        while time.time() < deadline:
            lines += self.logs.upstream_lines()
            if lines and not is_schema_lookup(lines[-1], lookups or tables):
                break
            time.sleep(0.01)
        time.sleep(0.05)
        lines += self.logs.upstream_lines()
        ran = [line for line in lines if not is_schema_lookup(line, lookups or tables)]
        self.lookups += len(lines) - len(ran)
        if len(ran) != 1:
            problems.append(f"expected one upstream line for {op}, got {lines}")
        else:
            line = ran[0]
            if line.get("action") != op:
                problems.append(f"upstream ran {line.get('action')!r}, not {op!r}: {line}")
            if line.get("target") != [PREFIX + op] or line.get("path") != "/" or line.get("query") != "":
                problems.append(f"upstream request was not POST / with the one target: {line}")
            if sorted(line.get("tables") or []) != sorted(tables):
                problems.append(f"upstream tables {line.get('tables')} != {list(tables)}")
            if keys is not None and line.get("keys") != keys:
                problems.append(f"upstream keys {line.get('keys')} != {keys}")
        audit = self.logs.audit_events()
        allowed = [e for e in audit if e.get("event") == "request_allowed"]
        if len(audit) != 1 or len(allowed) != 1 or allowed[0].get("operation") != op:
            problems.append(f"expected one request_allowed audit line for {op}, got {audit}")
        if problems:
            self.fail(name, "; ".join(problems))
        else:
            self.checked.append(name)
            print(f"ok    forwarded {op:26} {name}")
        return response

    def setup(self):
        sts = boto3.client("sts")
        self.account = sts.get_caller_identity()["Account"]
        iam = boto3.client("iam")
        allowed_arn = f"arn:aws:dynamodb:{REGION}:{self.account}:table/allowedtbl"
        self.alice = make_user(
            iam,
            "alice",
            [
                {
                    "Effect": "Allow",
                    "Action": [
                        "dynamodb:GetItem",
                        "dynamodb:PutItem",
                        "dynamodb:Query",
                        "dynamodb:BatchGetItem",
                    ],
                    "Resource": allowed_arn,
                },
                {"Effect": "Allow", "Action": "dynamodb:ListTables", "Resource": "*"},
            ],
        )
        self.bob = make_user(
            iam,
            "bob",
            [
                {
                    "Effect": "Allow",
                    "Action": [
                        "dynamodb:PutItem",
                        "dynamodb:UpdateItem",
                        "dynamodb:DeleteItem",
                        "dynamodb:BatchWriteItem",
                        "dynamodb:GetItem",
                    ],
                    "Resource": allowed_arn,
                }
            ],
        )
        self.upstream = boto3.client(
            "dynamodb",
            endpoint_url=self.args.upstream,
            region_name=REGION,
            aws_access_key_id="upstream",
            aws_secret_access_key="upstream",
        )
        for name in ("allowedtbl", "secrettbl"):
            create_table(self.upstream, name)
        self.upstream.put_item(TableName="secrettbl", Item=SECRET_ITEM)
        self.upstream.put_item(TableName="allowedtbl", Item=BOB_ITEM)
        # A moment for the signing keys to be usable, checked rather than assumed.
        deadline = time.time() + 10
        while True:
            r = self.raw.call(self.alice, "POST", "/", [ctype(), target("ListTables")], b"{}")
            if r.status == 200 or time.time() > deadline:
                break
            time.sleep(0.2)
        if r.status != 200:
            raise CheckFailed(f"alice cannot ListTables through the gateway: {r}")
        # The upstream logs a request once its answer is complete: wait for that line.
        deadline = time.time() + 5
        while time.time() < deadline:
            if any(l.get("action") == "ListTables" for l in self.logs.upstream_lines()):
                break
            time.sleep(0.01)
        time.sleep(SETTLE)
        self.logs.drain()

    def controls(self):
        key = {"id": {"S": "bob"}}
        r = self.forwarded(
            "alice GetItem on allowedtbl (bob's item)",
            self.alice,
            "GetItem",
            {"TableName": "allowedtbl", "Key": key},
            tables=["allowedtbl"],
            keys=[{"table": "allowedtbl", "key": key}],
        )
        if (r.json() or {}).get("Item") != BOB_ITEM:
            self.fail("alice reads bob's item", f"got {r}")
        item = {"id": {"S": "alice-1"}, "owner": {"S": "alice"}}
        self.forwarded(
            "alice PutItem on allowedtbl",
            self.alice,
            "PutItem",
            {"TableName": "allowedtbl", "Item": item},
            tables=["allowedtbl"],
            keys=[{"table": "allowedtbl", "key": item}],
        )
        self.forwarded(
            "alice Query on allowedtbl",
            self.alice,
            "Query",
            {
                "TableName": "allowedtbl",
                "KeyConditionExpression": "id = :v",
                "ExpressionAttributeValues": {":v": {"S": "bob"}},
            },
            tables=["allowedtbl"],
        )
        self.forwarded(
            "alice BatchGetItem on allowedtbl",
            self.alice,
            "BatchGetItem",
            {"RequestItems": {"allowedtbl": {"Keys": [key, {"id": {"S": "alice-1"}}]}}},
            tables=["allowedtbl"],
        )
        item = {"id": {"S": "bob-2"}, "owner": {"S": "bob"}}
        self.forwarded(
            "bob PutItem on allowedtbl",
            self.bob,
            "PutItem",
            {"TableName": "allowedtbl", "Item": item},
            tables=["allowedtbl"],
        )
        if self.moto:
            # Each Get of a transaction is authorized as GetItem on its table.
            self.forwarded(
                "alice TransactGetItems on allowedtbl only",
                self.alice,
                "TransactGetItems",
                {"TransactItems": [{"Get": {"TableName": "allowedtbl", "Key": key}}]},
                tables=["allowedtbl"],
            )

    def attacks(self):
        a = self.account
        secret_body = dumps({"TableName": "secrettbl"})
        get_bob = dumps({"TableName": "allowedtbl", "Key": {"id": {"S": "bob"}}})
        R = self.refused
        V, S, U, D = (
            "ValidationException",
            "SerializationException",
            "UnknownOperationException",
            "AccessDeniedException",
        )
        lt = [ctype(), target("ListTables")]

        # The envelope: query strings, targets, Action, path, method, content type.
        R("ListTables target, Scan body, URL /?Action=Scan", V, "POST", "/?Action=Scan", lt, secret_body)
        R("ListTables target, URL /?Action=Scan&TableName=secrettbl", V, "POST",
          "/?Action=Scan&TableName=secrettbl", lt, b"{}")
        R("an empty query string (URL /?)", V, "POST", "/?", lt, b"{}")
        R("two X-Amz-Target: ListTables then Scan", U, "POST", "/",
          [ctype(), target("ListTables"), target("Scan")], secret_body)
        R("two X-Amz-Target: Scan then ListTables", U, "POST", "/",
          [ctype(), target("Scan"), target("ListTables")], secret_body)
        R("two identical X-Amz-Target: ListTables twice", U, "POST", "/",
          [ctype(), target("ListTables"), target("ListTables")], b"{}")
        R("one X-Amz-Target 'ListTables, Scan' (moto joins and takes the last)", U, "POST", "/",
          [ctype(), ("X-Amz-Target", PREFIX + "ListTables, " + PREFIX + "Scan")], secret_body)
        R("ListTables naming secrettbl (strict shape)", S, "POST", "/", lt, secret_body)
        # moto would read a form body's Action. As JSON, the start name breaks DynamoDB's table
        # name pattern, which the gateway checks itself.
        R("ListTables with ExclusiveStartTableName 'zzz&Action=Scan&'", V, "POST", "/", lt,
          dumps({"ExclusiveStartTableName": "zzz&Action=Scan&"}))
        R("ListTables with ExclusiveStartTableName 'zzz&Action=Scan&TableName=secrettbl&'", V,
          "POST", "/", lt, dumps({"ExclusiveStartTableName": "zzz&Action=Scan&TableName=secrettbl&"}))
        R("ListTables 'zzz&Action=Scan&', Content-Type form", S, "POST", "/",
          [ctype("application/x-www-form-urlencoded"), target("ListTables")],
          dumps({"ExclusiveStartTableName": "zzz&Action=Scan&"}))
        R("form body Action=Scan&TableName=secrettbl, Content-Type form", S, "POST", "/",
          [ctype("application/x-www-form-urlencoded"), target("ListTables")],
          b"Action=Scan&TableName=secrettbl")
        R("GetItem with Content-Type application/x-amz-json-1.1", S, "POST", "/",
          [ctype("application/x-amz-json-1.1"), target("GetItem")], get_bob)
        R("GetItem with Content-Type application/json", S, "POST", "/",
          [ctype("application/json"), target("GetItem")], get_bob)
        R("GetItem without Content-Type", S, "POST", "/", [target("GetItem")], get_bob)
        R("GetItem with two Content-Type headers", S, "POST", "/",
          [ctype(), ctype(), target("GetItem")], get_bob)
        R("GetItem with Content-Encoding gzip", S, "POST", "/",
          [ctype(), target("GetItem"), ("Content-Encoding", "gzip")], get_bob)
        R("GetItem on allowedtbl, URL /?Action=DeleteItem", V, "POST", "/?Action=DeleteItem",
          [ctype(), target("GetItem")], get_bob)
        stray = {
            "RequestItems": {"allowedtbl": {"Keys": [{"id": {"S": "bob"}}]}},
            "TableName": "secrettbl",
            "Item": {"id": {"S": "secret"}, "data": {"S": "overwritten"}},
        }
        R("BatchGetItem + stray TableName/Item, URL /?Action=PutItem", V, "POST",
          "/?Action=PutItem", [ctype(), target("BatchGetItem")], dumps(stray))
        R("BatchGetItem + stray TableName/Item (strict shape)", S, "POST", "/",
          [ctype(), target("BatchGetItem")], dumps(stray))
        R("Action: DeleteTable header, empty body, ListTables", V, "POST", "/",
          [ctype(), target("ListTables"), ("Action", "DeleteTable")], b"")
        R("Action: Scan header with a body naming secrettbl", V, "POST", "/",
          [ctype(), target("ListTables"), ("Action", "Scan")], secret_body)
        R("Scan of secrettbl presigned in the query string (SigV4QueryAuth)", V, "POST",
          "/?Action=Scan", [ctype(), target("Scan")], secret_body, presign=True)
        path, headers, _ = self.raw.signed(self.alice, "POST", "/", [ctype(), target("Scan")],
                                           secret_body, presign=True)
        R("presigned Scan, body kept", V, "POST", None, None, None,
          raw=(path, headers + [("Content-Length", str(len(secret_body)))], secret_body))
        R("GetItem sent to path /x", V, "POST", "/x", [ctype(), target("GetItem")], get_bob)
        R("GetItem sent to path //", V, "POST", "//", [ctype(), target("GetItem")], get_bob)
        R("GetItem as GET", U, "GET", "/", [ctype(), target("GetItem")], get_bob)

        # The body: trailing data, duplicates, unknown members.
        R("GetItem with trailing JSON object", S, "POST", "/", [ctype(), target("GetItem")],
          b'{"TableName":"allowedtbl","Key":{"id":{"S":"bob"}}} {"x":1}')
        R("GetItem with trailing object naming secrettbl", S, "POST", "/",
          [ctype(), target("GetItem")],
          b'{"TableName":"allowedtbl","Key":{"id":{"S":"bob"}}}{"TableName":"secrettbl"}')
        R("GetItem with trailing garbage", S, "POST", "/", [ctype(), target("GetItem")],
          b'{"TableName":"allowedtbl","Key":{"id":{"S":"bob"}}}x')
        R("duplicate TableName (allowedtbl, secrettbl)", S, "POST", "/",
          [ctype(), target("GetItem")],
          b'{"TableName":"allowedtbl","TableName":"secrettbl","Key":{"id":{"S":"secret"}}}')
        R("duplicate TableName (secrettbl, allowedtbl)", S, "POST", "/",
          [ctype(), target("GetItem")],
          b'{"TableName":"secrettbl","TableName":"allowedtbl","Key":{"id":{"S":"secret"}}}')
        R("duplicate TableName spelled Table\\u004eame", S, "POST", "/",
          [ctype(), target("GetItem")],
          b'{"TableName":"allowedtbl","Table\\u004eame":"secrettbl","Key":{"id":{"S":"secret"}}}')
        R("duplicate key attribute inside Key", S, "POST", "/", [ctype(), target("GetItem")],
          b'{"TableName":"allowedtbl","Key":{"id":{"S":"bob"},"id":{"S":"secret"}}}')
        R("duplicate type inside an AttributeValue", S, "POST", "/",
          [ctype(), target("GetItem")],
          b'{"TableName":"allowedtbl","Key":{"id":{"S":"bob","S":"secret"}}}')
        R("duplicate placeholder inside ExpressionAttributeValues", S, "POST", "/",
          [ctype(), target("Query")],
          b'{"TableName":"allowedtbl","KeyConditionExpression":"id = :v",'
          b'"ExpressionAttributeValues":{":v":{"S":"bob"},":v":{"S":"secret"}}}')
        R("duplicate table inside BatchGetItem RequestItems", S, "POST", "/",
          [ctype(), target("BatchGetItem")],
          b'{"RequestItems":{"allowedtbl":{"Keys":[{"id":{"S":"bob"}}]},'
          b'"allowed\\u0074bl":{"Keys":[{"id":{"S":"secret"}}]}}}')
        R("lowercase tablename naming secrettbl", S, "POST", "/", [ctype(), target("GetItem")],
          dumps({"tablename": "secrettbl", "Key": {"id": {"S": "secret"}}}))
        R("TableName allowedtbl plus lowercase tablename secrettbl", S, "POST", "/",
          [ctype(), target("GetItem")],
          dumps({"TableName": "allowedtbl", "tablename": "secrettbl", "Key": {"id": {"S": "bob"}}}))
        R("unknown operation DynamoDB_20120810.ScanTable", U, "POST", "/",
          [ctype(), target("ScanTable")], secret_body)
        R("unknown operation DynamoDB_20120810.scan (lower case)", U, "POST", "/",
          [ctype(), target("scan")], secret_body)
        R("Scan under the Streams prefix", U, "POST", "/",
          [ctype(), ("X-Amz-Target", "DynamoDBStreams_20120810.Scan")], secret_body)

        # Authorization: other regions, accounts and tables; batches; PartiQL; indexes.
        other_region = f"arn:aws:dynamodb:eu-west-1:{a}:table/allowedtbl"
        R("GetItem on another region's allowedtbl ARN", D, "POST", "/",
          [ctype(), target("GetItem")],
          dumps({"TableName": other_region, "Key": {"id": {"S": "bob"}}}),
          lookups=[other_region])
        other_account = "arn:aws:dynamodb:us-east-1:111122223333:table/allowedtbl"
        R("GetItem on another account's allowedtbl ARN", D, "POST", "/",
          [ctype(), target("GetItem")],
          dumps({"TableName": other_account, "Key": {"id": {"S": "bob"}}}),
          lookups=[other_account])
        R("GetItem of the secret item", D, "POST", "/", [ctype(), target("GetItem")],
          dumps({"TableName": "secrettbl", "Key": {"id": {"S": "secret"}}}),
          lookups=["secrettbl"])
        secret_arn = f"arn:aws:dynamodb:{REGION}:{a}:table/secrettbl"
        R("GetItem of the secret item by ARN", D, "POST", "/", [ctype(), target("GetItem")],
          dumps({"TableName": secret_arn, "Key": {"id": {"S": "secret"}}}),
          lookups=[secret_arn])
        R("Scan of secrettbl", D, "POST", "/", [ctype(), target("Scan")], secret_body)
        R("BatchGetItem mixing allowedtbl and secrettbl", D, "POST", "/",
          [ctype(), target("BatchGetItem")],
          dumps({"RequestItems": {
              "allowedtbl": {"Keys": [{"id": {"S": "bob"}}]},
              "secrettbl": {"Keys": [{"id": {"S": "secret"}}]}}}),
          lookups=["allowedtbl", "secrettbl"])
        R("BatchWriteItem mixing allowedtbl and secrettbl", D, "POST", "/",
          [ctype(), target("BatchWriteItem")],
          dumps({"RequestItems": {
              "allowedtbl": [{"PutRequest": {"Item": {"id": {"S": "alice-2"}}}}],
              "secrettbl": [{"DeleteRequest": {"Key": {"id": {"S": "secret"}}}}]}}),
          lookups=["allowedtbl", "secrettbl"])
        # The transaction and PartiQL rows run on both upstreams: the gateway must refuse
        # them itself, whatever the upstream implements.
        R("TransactGetItems mixing allowedtbl and secrettbl", D, "POST", "/",
          [ctype(), target("TransactGetItems")],
          dumps({"TransactItems": [
              {"Get": {"TableName": "allowedtbl", "Key": {"id": {"S": "bob"}}}},
              {"Get": {"TableName": "secrettbl", "Key": {"id": {"S": "secret"}}}}]}),
          lookups=["allowedtbl", "secrettbl"])
        R("TransactWriteItems mixing allowedtbl and secrettbl", D, "POST", "/",
          [ctype(), target("TransactWriteItems")],
          dumps({"TransactItems": [
              {"Put": {"TableName": "allowedtbl", "Item": {"id": {"S": "alice-3"}}}},
              {"Put": {"TableName": "secrettbl",
                       "Item": {"id": {"S": "secret"}, "data": {"S": "overwritten"}}}}]}),
          lookups=["allowedtbl", "secrettbl"])
        R("PartiQL ExecuteStatement SELECT * FROM secrettbl", D, "POST", "/",
          [ctype(), target("ExecuteStatement")],
          dumps({"Statement": 'SELECT * FROM "secrettbl"'}))
        R("PartiQL ExecuteStatement UPDATE secrettbl", D, "POST", "/",
          [ctype(), target("ExecuteStatement")],
          dumps({"Statement": "UPDATE secrettbl SET data = 'x' WHERE id = 'secret'"}))
        R("PartiQL BatchExecuteStatement allowedtbl + secrettbl", D, "POST", "/",
          [ctype(), target("BatchExecuteStatement")],
          dumps({"Statements": [
              {"Statement": "SELECT * FROM allowedtbl WHERE id = 'bob'"},
              {"Statement": "SELECT * FROM secrettbl WHERE id = 'secret'"}]}))
        R("PartiQL ExecuteTransaction on secrettbl", D, "POST", "/",
          [ctype(), target("ExecuteTransaction")],
          dumps({"TransactStatements": [
              {"Statement": "DELETE FROM secrettbl WHERE id = 'secret'"}]}))
        R("Scan of secrettbl's index byowner", D, "POST", "/", [ctype(), target("Scan")],
          dumps({"TableName": "secrettbl", "IndexName": "byowner"}))
        R("Query of allowedtbl's index byowner (only the table is allowed)", D, "POST", "/",
          [ctype(), target("Query")],
          dumps({"TableName": "allowedtbl", "IndexName": "byowner",
                 "KeyConditionExpression": "#o = :o",
                 "ExpressionAttributeNames": {"#o": "owner"},
                 "ExpressionAttributeValues": {":o": {"S": "bob"}}}),
          lookups=["allowedtbl"])
        R("DeleteTable of allowedtbl", D, "POST", "/", [ctype(), target("DeleteTable")],
          dumps({"TableName": "allowedtbl"}))
        R("DeleteItem of bob's item", D, "POST", "/", [ctype(), target("DeleteItem")],
          dumps({"TableName": "allowedtbl", "Key": {"id": {"S": "bob"}}}),
          lookups=["allowedtbl"])

        # Signatures: a body swapped after signing, no signature, an unknown key.
        path, headers, _ = self.raw.signed(self.alice, "POST", "/", [ctype(), target("GetItem")],
                                           get_bob)
        swapped = get_bob.replace(b"allowedtbl", b"secrettbl").replace(b"bob", b"xyz")
        swapped = swapped[: len(get_bob)].ljust(len(get_bob))
        R("GetItem whose body was swapped after signing", "InvalidSignatureException", "POST",
          None, None, None, raw=(path, headers, swapped))
        R("unsigned GetItem", "MissingAuthenticationTokenException", "POST", None, None, None,
          raw=("/", [("Host", self.raw.netloc), ctype(), target("GetItem"),
                     ("Content-Length", str(len(get_bob)))], get_bob))
        R("GetItem signed with an unknown access key", "UnrecognizedClientException", "POST",
          "/", [ctype(), target("GetItem")], get_bob,
          creds=Credentials("AKIAUNKNOWNUNKNOWN00", "x" * 40))

    def final_state(self):
        u = self.upstream
        problems = []
        got = u.get_item(TableName="secrettbl", Key={"id": {"S": "secret"}}).get("Item")
        if got != SECRET_ITEM:
            problems.append(f"the secret item is now {got}")
        items = u.scan(TableName="secrettbl")["Items"]
        if items != [SECRET_ITEM]:
            problems.append(f"secrettbl holds {items}")
        got = u.get_item(TableName="allowedtbl", Key={"id": {"S": "bob"}}).get("Item")
        if got != BOB_ITEM:
            problems.append(f"bob's item is now {got}")
        ids = sorted(i["id"]["S"] for i in u.scan(TableName="allowedtbl")["Items"])
        if ids != ["alice-1", "bob", "bob-2"]:
            problems.append(f"allowedtbl holds the items {ids}, not alice-1, bob, bob-2")
        tables = u.list_tables()["TableNames"]
        if sorted(tables) != ["allowedtbl", "secrettbl"]:
            problems.append(f"the upstream has the tables {tables}")
        if problems:
            self.fail("final state on the upstream", "; ".join(problems))
        else:
            self.checked.append("final state")
            print("ok    the secret item, bob's item and both tables are intact on the upstream")


def main():
    args = gateway_common.arguments().parse_args()
    run = Run(args)
    run.setup()
    print(f"gateway walk-arounds against {args.upstream_kind} (account {run.account})")
    run.controls()
    run.attacks()
    time.sleep(SETTLE)
    late = run.logs.upstream_lines()
    if late:
        run.fail("late upstream lines", str(late))
    run.final_state()
    print(
        f"{len(run.checked)} checks passed, {len(run.failures)} failed; "
        f"{run.lookups} upstream line(s) were the gateway's own DescribeTable key-schema reads"
    )
    if run.failures:
        print("FAILED:\n  " + "\n  ".join(run.failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (CheckFailed, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
