"""Differential test of `podiam gateway`: what it authorized is what the upstream ran.

Usage: gateway_differential.py --gateway URL --upstream URL --upstream-log FILE
                               --audit-log FILE --upstream-kind moto|dynalite
                               [--requests N] [--seed S]

An admin user (dynamodb:* on *) sends N generated requests through the gateway, sequentially, as
raw SigV4-signed requests on one kept-alive connection. About 60% are valid (GetItem, PutItem,
UpdateItem, DeleteItem, Query incl. on a GSI, Scan, BatchGetItem, BatchWriteItem,
TransactGetItems/TransactWriteItems on moto only, ListTables, DescribeTable), on three tables
with different key schemas (hash only, S; hash N + range S; hash S + range N with a GSI), with
random partition keys (some with "&Action=Scan&" in them), key conditions spelled in the ways
DynamoDB accepts (spacing, parentheses, lower-case and/between, the sort-key term first), and
bodies spelled differently (\\u escapes in names and values, whitespace between tokens, UTF-8 or
escaped non-ASCII). About 40% are hostile mutations of valid ones: a query string (or a
presigned signature), an extra X-Amz-Target, an Action header, trailing data, a duplicate key
at some depth, an unknown member, a wrong content type, a stray member naming another table, a
path other than /.

For each request, the gateway's new audit line and the upstream's new log line(s) say what
happened:
- refused by the gateway (a request_denied audit line, nothing upstream): every hostile request
  must be, with its DynamoDB error code; no valid one may be;
- forwarded (request_allowed): the audit's operation is the upstream's action; the tables of the
  audit's resources (index ARNs count as their table) are the upstream's tables; for item
  operations, per table, the partition-key values of the audit's authorizations[].leadingKeys
  are those of the upstream's keys (for Query: of its key condition). leadingKeys is a set per
  authorization, so values are compared as sets per table.
The only other upstream lines allowed are the gateway's own DescribeTable reads of key schemas.
"""

import collections
import json
import random
import sys
import time

import boto3
import botocore.exceptions
from botocore.credentials import Credentials

import gateway_common
from gateway_common import JSON10, PREFIX, REGION, Tail, audit_event

# name -> (partition key (name, type), sort key or None, {index: partition key name})
TABLES = {
    "dfhash": (("pk", "S"), None, {}),
    "dfnum": (("pk", "N"), ("sk", "S"), {}),
    "dfgsi": (("pk", "S"), ("sk", "N"), {"bygpk": "gpk"}),
}
VALUES = {
    "S": ["p0", "p1", "p2", "p3", "p4", "p5", "\u00fc-\u00f1", "a b", "x/y", "*", "A,B",
          "k&Action=Scan&TableName=dfnum"],
    "N": ["0", "1", "2", "3", "17", "-5", "3.25", "100"],
}
SORT_VALUES = {"S": ["s0", "s1", "s2", "s3"], "N": ["1", "2", "3", "4"]}
GSI_VALUES = ["g0", "g1", "g2"]
ITEM_OPS = {
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
    "BatchWriteItem", "TransactGetItems", "TransactWriteItems",
}
HOSTILE = {
    "query": "ValidationException",
    "presigned": "ValidationException",
    "extra_target": "UnknownOperationException",
    "action_header": "ValidationException",
    "trailing": "SerializationException",
    "duplicate": "SerializationException",
    "unknown_member": "SerializationException",
    "content_type": "SerializationException",
    "stray_table": "SerializationException",
    "path": "ValidationException",
}
AV_TYPES = {"S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "M", "L"}


def parse_args():
    p = gateway_common.arguments()
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


# ------------------------------------------------------------------------------------------
# Logs


# ------------------------------------------------------------------------------------------
# Raw signed requests on one connection


class Raw(gateway_common.Raw):
    """Raw requests answered as (status, body)."""

    def send(self, method, path, headers, body):
        status, _, data = self.exchange(method, path, headers, body)
        return status, data


def error_code(data):
    try:
        value = json.loads(data)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("__type"), str):
        return value["__type"].rsplit("#", 1)[-1]
    return None


# ------------------------------------------------------------------------------------------
# JSON with duplicate keys and escaped names


class Pairs(list):
    """An object written from (key, value) pairs, duplicates included. A key may be given as
    Raw text (already quoted), e.g. with a \\u escape."""


class RawKey(str):
    pass


class Style:
    """How a body is spelled: the same JSON value written differently (all of it valid JSON
    that DynamoDB reads the same way)."""

    def __init__(self, rng=None, ensure_ascii=True, escape=0.0, spaced=False):
        self.rng = rng
        self.ensure_ascii = ensure_ascii
        self.escape = escape  # chance that a letter or digit of a string is written \u00XX
        self.spaced = spaced  # whitespace around every token

    def string(self, text):
        out = json.dumps(text, ensure_ascii=self.ensure_ascii)
        if not self.escape:
            return out
        chars, i = [], 0
        while i < len(out):
            ch = out[i]
            if ch == "\\":  # an escape sequence: kept as it is
                n = 6 if out[i + 1] == "u" else 2
                chars.append(out[i:i + n])
                i += n
                continue
            if 0 < i < len(out) - 1 and ch.isascii() and ch.isalnum() and self.rng.random() < self.escape:
                ch = "\\u%04x" % ord(ch) if self.rng.random() < 0.5 else "\\u%04X" % ord(ch)
            chars.append(ch)
            i += 1
        return "".join(chars)

    def ws(self):
        return self.rng.choice(["", " ", "\n", "\t", "  \r\n "]) if self.spaced else ""


def encode(value, style=None):
    style = style or Style()
    w = style.ws
    if isinstance(value, (dict, Pairs)):
        items = value.items() if isinstance(value, dict) else value
        parts = []
        for k, v in items:
            name = k if isinstance(k, RawKey) else style.string(k)
            parts.append(f"{w()}{name}{w()}:{w()}{encode(v, style)}{w()}")
        return "{" + ",".join(parts) + w() + "}"
    if isinstance(value, list):
        return "[" + ",".join(w() + encode(v, style) + w() for v in value) + w() + "]"
    if isinstance(value, str):
        return style.string(value)
    return json.dumps(value)


def escaped_key(name, rng):
    """`name` as a JSON string with one character written as a \\u escape."""
    i = rng.randrange(len(name))
    return RawKey(
        json.dumps(name[:i])[:-1] + "\\u%04x" % ord(name[i]) + json.dumps(name[i + 1:])[1:]
    )


# ------------------------------------------------------------------------------------------
# Request generation


class Request:
    def __init__(self, op, body, tables, index=None):
        self.op = op
        self.body = body
        self.tables = set(tables)
        self.index = index
        self.kind = None  # the hostile mutation, if any
        self.method = "POST"
        self.path = "/"
        self.headers = [("Content-Type", JSON10), ("X-Amz-Target", PREFIX + op)]
        self.bytes = None
        self.presign = False
        self.trailing = b""
        self.style = Style()

    def describe(self):
        text = self.bytes.decode("utf-8", "replace")
        return f"{self.kind or 'valid'} {self.op} {self.method} {self.path} {self.headers} {text[:300]}"


class Generator:
    def __init__(self, rng, moto):
        self.rng = rng
        self.moto = moto
        ops = [
            ("GetItem", 12), ("PutItem", 10), ("UpdateItem", 10), ("DeleteItem", 6),
            ("Query", 12), ("Scan", 6), ("BatchGetItem", 8), ("BatchWriteItem", 8),
            ("ListTables", 3), ("DescribeTable", 3),
        ]
        if moto:
            ops += [("TransactGetItems", 5), ("TransactWriteItems", 5)]
        self.ops = [op for op, _ in ops]
        self.weights = [w for _, w in ops]

    # values
    def table(self):
        return self.rng.choice(sorted(TABLES))

    def key(self, table):
        (pk, pt), sort, _ = TABLES[table]
        key = {pk: {pt: self.rng.choice(VALUES[pt])}}
        if sort:
            key[sort[0]] = {sort[1]: self.rng.choice(SORT_VALUES[sort[1]])}
        return key

    def keys(self, table, n):
        out, seen = [], set()
        for _ in range(n * 3):
            k = self.key(table)
            ident = json.dumps(k, sort_keys=True)
            if ident not in seen:
                seen.add(ident)
                out.append(k)
            if len(out) == n:
                break
        return out

    def item(self, table, key=None):
        item = dict(key or self.key(table))
        item["a"] = {"S": self.rng.choice(["red", "green", "blue", "\u00e9t\u00e9"])}
        item["n"] = {"N": str(self.rng.randrange(1000))}
        if TABLES[table][2] and self.rng.random() < 0.8:
            item["gpk"] = {"S": self.rng.choice(GSI_VALUES)}
        return item

    def capacity(self, body):
        if self.rng.random() < 0.2:
            body["ReturnConsumedCapacity"] = self.rng.choice(["NONE", "TOTAL", "INDEXES"])
        return body

    # operations
    def valid(self):
        op = self.rng.choices(self.ops, self.weights)[0]
        request = getattr(self, "gen_" + op)()
        request.style = Style(
            self.rng,
            ensure_ascii=self.rng.random() < 0.5,
            escape=self.rng.choice([0.0, 0.0, 0.1, 0.5]),
            spaced=self.rng.random() < 0.25,
        )
        return request

    def gen_GetItem(self):
        t = self.table()
        body = {"TableName": t, "Key": self.key(t)}
        r = self.rng.random()
        if r < 0.3:
            body["ProjectionExpression"] = "#a, n"
            body["ExpressionAttributeNames"] = {"#a": "a"}
        elif r < 0.4:
            body["AttributesToGet"] = ["a", "pk"]
        if self.rng.random() < 0.3:
            body["ConsistentRead"] = self.rng.random() < 0.5
        return Request("GetItem", self.capacity(body), [t])

    def gen_PutItem(self):
        t = self.table()
        body = {"TableName": t, "Item": self.item(t)}
        if self.rng.random() < 0.3:
            body["ConditionExpression"] = "attribute_not_exists(#k)"
            body["ExpressionAttributeNames"] = {"#k": TABLES[t][0][0]}
        if self.rng.random() < 0.3:
            body["ReturnValues"] = self.rng.choice(["NONE", "ALL_OLD"])
        return Request("PutItem", self.capacity(body), [t])

    def gen_UpdateItem(self):
        t = self.table()
        body = {
            "TableName": t,
            "Key": self.key(t),
            "UpdateExpression": "SET #a = :a, n = :n",
            "ExpressionAttributeNames": {"#a": "a"},
            "ExpressionAttributeValues": {
                ":a": {"S": self.rng.choice(["x", "y"])},
                ":n": {"N": str(self.rng.randrange(100))},
            },
        }
        if self.rng.random() < 0.3:
            body["ConditionExpression"] = "attribute_exists(#k)"
            body["ExpressionAttributeNames"]["#k"] = TABLES[t][0][0]
        if self.rng.random() < 0.4:
            body["ReturnValues"] = self.rng.choice(
                ["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"]
            )
        return Request("UpdateItem", self.capacity(body), [t])

    def gen_DeleteItem(self):
        t = self.table()
        body = {"TableName": t, "Key": self.key(t)}
        if self.rng.random() < 0.3:
            body["ReturnValues"] = self.rng.choice(["NONE", "ALL_OLD"])
        if self.rng.random() < 0.2:
            body["ConditionExpression"] = "n > :z"
            body["ExpressionAttributeValues"] = {":z": {"N": "10"}}
        return Request("DeleteItem", self.capacity(body), [t])

    def gen_Query(self):
        t = self.table()
        (pk, pt), sort, indexes = TABLES[t]
        body = {"TableName": t}
        index = None
        if indexes and self.rng.random() < 0.4:
            index = sorted(indexes)[0]
            body["IndexName"] = index
            body["KeyConditionExpression"] = self.rng.choice(["gpk = :g", "(gpk = :g)", "gpk=:g"])
            body["ExpressionAttributeValues"] = {":g": {"S": self.rng.choice(GSI_VALUES)}}
        elif self.rng.random() < 0.2:
            body["KeyConditions"] = {
                pk: {"ComparisonOperator": "EQ", "AttributeValueList": [{pt: self.rng.choice(VALUES[pt])}]}
            }
        else:
            names = {}
            if self.rng.random() < 0.5:
                names["#p"] = pk
                part = "#p"
            else:
                part = pk
            # Spellings DynamoDB (and both upstreams) accept for the same condition.
            part = self.rng.choice([
                f"{part} = :p", f"{part}=:p", f"  {part}   =   :p ", f"({part} = :p)",
            ])
            values = {":p": {pt: self.rng.choice(VALUES[pt])}}
            condition = part
            if sort and self.rng.random() < 0.5:
                sk, st = sort
                names["#s"] = sk
                r = self.rng.random()
                if r < 0.4:
                    sort_term = self.rng.choice([
                        "#s BETWEEN :lo AND :hi", "#s between :lo and :hi",
                        "(#s BETWEEN :lo AND :hi)",
                    ])
                    lo, hi = sorted(self.rng.sample(SORT_VALUES[st], 2), key=sort_key(st))
                    values[":lo"], values[":hi"] = {st: lo}, {st: hi}
                elif r < 0.7 and st == "S":
                    sort_term = "begins_with(#s, :b)"
                    values[":b"] = {"S": "s"}
                else:
                    sort_term = self.rng.choice(["#s >= :lo", "(#s >= :lo)"])
                    values[":lo"] = {st: self.rng.choice(SORT_VALUES[st])}
                joiner = self.rng.choice([" AND ", " and ", " AND "])
                if self.rng.random() < 0.25:
                    condition = sort_term + joiner + part  # the sort-key term first
                else:
                    condition = part + joiner + sort_term
            body["KeyConditionExpression"] = condition
            body["ExpressionAttributeValues"] = values
            if names:
                body["ExpressionAttributeNames"] = names
            if self.rng.random() < 0.3:
                body["ConsistentRead"] = True
        if self.rng.random() < 0.3:
            body["Limit"] = self.rng.randrange(1, 10)
        if self.rng.random() < 0.3:
            body["ScanIndexForward"] = self.rng.random() < 0.5
        if self.rng.random() < 0.15:
            body["Select"] = "COUNT"
        return Request("Query", self.capacity(body), [t], index)

    def gen_Scan(self):
        t = self.table()
        body = {"TableName": t}
        index = None
        if TABLES[t][2] and self.rng.random() < 0.4:
            index = sorted(TABLES[t][2])[0]
            body["IndexName"] = index
        r = self.rng.random()
        if r < 0.3:
            body["FilterExpression"] = "#a = :a"
            body["ExpressionAttributeNames"] = {"#a": "a"}
            body["ExpressionAttributeValues"] = {":a": {"S": "red"}}
        elif r < 0.5:
            body["ProjectionExpression"] = "n"
        if self.rng.random() < 0.3:
            body["Limit"] = self.rng.randrange(1, 20)
        if self.rng.random() < 0.1:
            body["Segment"], body["TotalSegments"] = 0, 2
        return Request("Scan", self.capacity(body), [t], index)

    def gen_BatchGetItem(self):
        tables = self.rng.sample(sorted(TABLES), self.rng.randrange(1, 4))
        items = {}
        for t in tables:
            entry = {"Keys": self.keys(t, self.rng.randrange(1, 5))}
            if self.rng.random() < 0.3:
                entry["ProjectionExpression"] = "#a"
                entry["ExpressionAttributeNames"] = {"#a": "a"}
            if self.rng.random() < 0.2:
                entry["ConsistentRead"] = True
            items[t] = entry
        return Request("BatchGetItem", self.capacity({"RequestItems": items}), tables)

    def gen_BatchWriteItem(self):
        tables = self.rng.sample(sorted(TABLES), self.rng.randrange(1, 4))
        items = {}
        for t in tables:
            writes = []
            for k in self.keys(t, self.rng.randrange(1, 5)):
                if self.rng.random() < 0.6:
                    writes.append({"PutRequest": {"Item": self.item(t, k)}})
                else:
                    writes.append({"DeleteRequest": {"Key": k}})
            items[t] = writes
        return Request("BatchWriteItem", self.capacity({"RequestItems": items}), tables)

    def distinct_entries(self, n):
        out, seen = [], set()
        for _ in range(n * 3):
            t = self.table()
            k = self.key(t)
            ident = (t, json.dumps(k, sort_keys=True))
            if ident not in seen:
                seen.add(ident)
                out.append((t, k))
            if len(out) == n:
                break
        return out

    def gen_TransactGetItems(self):
        entries = self.distinct_entries(self.rng.randrange(1, 5))
        body = {"TransactItems": [{"Get": {"TableName": t, "Key": k}} for t, k in entries]}
        return Request("TransactGetItems", self.capacity(body), {t for t, _ in entries})

    def gen_TransactWriteItems(self):
        entries = self.distinct_entries(self.rng.randrange(1, 5))
        items = []
        for t, k in entries:
            kind = self.rng.choice(["Put", "Update", "Delete", "ConditionCheck"])
            if kind == "Put":
                items.append({"Put": {"TableName": t, "Item": self.item(t, k)}})
            elif kind == "Update":
                items.append({"Update": {
                    "TableName": t, "Key": k, "UpdateExpression": "SET n = :n",
                    "ExpressionAttributeValues": {":n": {"N": "5"}}}})
            elif kind == "Delete":
                items.append({"Delete": {"TableName": t, "Key": k}})
            else:
                items.append({"ConditionCheck": {
                    "TableName": t, "Key": k, "ConditionExpression": "attribute_exists(#k)",
                    "ExpressionAttributeNames": {"#k": TABLES[t][0][0]}}})
        return Request("TransactWriteItems", self.capacity({"TransactItems": items}),
                       {t for t, _ in entries})

    def gen_ListTables(self):
        body = {}
        if self.rng.random() < 0.4:
            body["Limit"] = self.rng.randrange(1, 5)
        if self.rng.random() < 0.3:
            body["ExclusiveStartTableName"] = self.table()
        return Request("ListTables", body, [])

    def gen_DescribeTable(self):
        t = self.table()
        return Request("DescribeTable", {"TableName": t}, [t])

    # hostile mutations
    def mutate(self, request):
        kind = self.rng.choice(sorted(HOSTILE))
        request.kind = kind
        rng = self.rng
        body = request.body
        if kind == "query":
            request.path = "/?" + rng.choice([
                "Action=Scan", "Action=DeleteTable&TableName=dfhash", "", "x=1",
                "Action=" + rng.choice(self.ops), "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            ])
        elif kind == "presigned":
            request.presign = True
        elif kind == "extra_target":
            extra = ("X-Amz-Target", PREFIX + rng.choice(self.ops + ["Scan", "DeleteTable"]))
            request.headers.insert(rng.choice([1, 2]), extra)
        elif kind == "action_header":
            request.headers.insert(rng.randrange(3), ("Action", rng.choice(["Scan", "DeleteTable", request.op])))
        elif kind == "content_type":
            choice = rng.choice(["form", "json", "json11", "text", "none", "two", "charset"])
            other = {
                "form": "application/x-www-form-urlencoded", "json": "application/json",
                "json11": "application/x-amz-json-1.1", "text": "text/plain",
                "charset": "application/x-amz-json-1.0; charset=utf-8",
            }
            if choice == "none":
                request.headers = [h for h in request.headers if h[0] != "Content-Type"]
            elif choice == "two":
                request.headers.append(("Content-Type", JSON10))
            else:
                request.headers[0] = ("Content-Type", other[choice])
        elif kind == "path":
            request.path = rng.choice(["/x", "//", "/dynamodb", "/%2F", "/."])
        elif kind == "unknown_member":
            avs = attribute_values(body)
            if avs and rng.random() < 0.3:
                rng.choice(avs)["Q"] = "x"
            else:
                body[rng.choice(["Bogus", "tablename", "Action", "TableName2", "__type", "table_name"])] = "dfhash"
        elif kind == "stray_table":
            others = sorted(set(TABLES) - request.tables) or sorted(TABLES)
            other = rng.choice(others)
            if "TableName" in body:
                body["RequestItems"] = {other: {"Keys": [self.key(other)]}}
            elif request.op == "BatchGetItem" and rng.random() < 0.5:
                next(iter(body["RequestItems"].values()))["TableName"] = other
            else:
                body["TableName"] = other
        elif kind == "duplicate":
            request.body = duplicate(body, rng)
        if kind == "trailing":
            request.trailing = rng.choice(
                [b' {"x":1}', b"x", b"{}", b"]", b'\n{"TableName":"dfhash"}', b"null", b"0"]
            )
        return request


def sort_key(kind):
    return (lambda v: float(v)) if kind == "N" else (lambda v: v)


def attribute_values(value, found=None):
    found = [] if found is None else found
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in AV_TYPES and not isinstance(value, Pairs):
            found.append(value)
        for v in value.values():
            attribute_values(v, found)
    elif isinstance(value, list):
        for v in value:
            attribute_values(v, found)
    return found


def objects(value, path=(), found=None):
    """Every JSON object in `value` with its path (tuple of keys / indexes)."""
    found = [] if found is None else found
    if isinstance(value, dict):
        found.append((path, value))
        for k, v in value.items():
            objects(v, path + (k,), found)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            objects(v, path + (i,), found)
    return found


def duplicate(body, rng):
    """`body` with one object, at any depth, holding one key twice (maybe escaped)."""
    candidates = [(p, o) for p, o in objects(body) if o]
    if not candidates:
        return Pairs([("Limit", 1), ("Limit", 2)])
    path, obj = rng.choice(candidates)
    name = rng.choice(sorted(obj))
    twin = escaped_key(name, rng) if rng.random() < 0.3 else name
    value = obj[name]
    if name == "TableName":
        value = rng.choice(sorted(TABLES))
    pairs = Pairs(obj.items())
    pairs.insert(rng.randrange(len(pairs) + 1), (twin, value))
    if not path:
        return pairs
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = pairs
    return body


# ------------------------------------------------------------------------------------------
# Comparison


def arn_table(resource):
    if not isinstance(resource, str) or ":table/" not in resource:
        return None
    return resource.split(":table/", 1)[1].split("/", 1)[0]


def scalar(av):
    if isinstance(av, dict) and len(av) == 1:
        kind, value = next(iter(av.items()))
        if kind in ("S", "N", "B"):
            return value
    return None


def upstream_leading_keys(line):
    """{table: set of partition-key values} of what the upstream ran."""
    out = collections.defaultdict(set)
    if line.get("action") == "Query":
        table = (line.get("tables") or [None])[0]
        cond = line.get("key_condition") or {}
        (pk, _), _, indexes = TABLES.get(table, (("pk", "S"), None, {}))
        hashes = {pk, *indexes.values()}
        expr = cond.get("KeyConditionExpression")
        if isinstance(expr, str):
            names = cond.get("ExpressionAttributeNames") or {}
            values = cond.get("ExpressionAttributeValues") or {}
            for term in split_and(expr):
                left, eq, right = term.partition("=")
                if not eq or left.strip()[-1:] in "<>!":
                    continue
                name = left.replace("(", " ").replace(")", " ").strip()
                placeholder = right.replace("(", " ").replace(")", " ").strip()
                name = names.get(name, name)
                if name in hashes and placeholder in values:
                    out[table].add(scalar(values[placeholder]))
        else:
            for name, c in (cond.get("KeyConditions") or {}).items():
                if name in hashes and c.get("ComparisonOperator") == "EQ":
                    out[table].add(scalar((c.get("AttributeValueList") or [None])[0]))
        return dict(out)
    for entry in line.get("keys") or []:
        table = entry.get("table")
        pk = TABLES[table][0][0] if table in TABLES else None
        out[table].add(scalar((entry.get("key") or {}).get(pk)))
    return dict(out)


def split_and(expr):
    """The terms of a key condition joined by AND (BETWEEN's own AND kept)."""
    words = expr.replace("(", " ( ").replace(")", " ) ").split()
    terms, current, between = [], [], False
    for w in words:
        if not w:
            continue
        if w.upper() == "AND" and not between:
            terms.append(" ".join(current))
            current = []
            continue
        if w.upper() == "BETWEEN":
            between = True
        elif w.upper() == "AND":
            between = False
        current.append(w)
    terms.append(" ".join(current))
    return terms


def audit_leading_keys(event):
    out = collections.defaultdict(set)
    for a in event.get("authorizations") or []:
        keys = a.get("leadingKeys")
        if keys is None:
            continue
        out[arn_table(a.get("resource"))].update(keys if isinstance(keys, list) else [keys])
    return {t: v for t, v in out.items() if v}


# ------------------------------------------------------------------------------------------


class Run:
    def __init__(self, args):
        self.args = args
        self.moto = args.upstream_kind == "moto"
        self.raw = Raw(args.gateway)
        self.upstream_log = Tail(args.upstream_log)
        self.audit_log = Tail(args.audit_log)
        self.counts = collections.Counter()
        self.refused_by_kind = collections.Counter()
        self.forwarded_by_op = collections.Counter()
        self.upstream_status = collections.Counter()
        self.failures = []

    def fail(self, request, what):
        self.counts["failures"] += 1
        if len(self.failures) < 30:
            self.failures.append(f"{what}\n      request: {request.describe()}")

    def setup(self):
        iam = boto3.client("iam")
        self.account = boto3.client("sts").get_caller_identity()["Account"]
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}],
        }))
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        self.creds = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
        self.principal = f"arn:aws:iam::{self.account}:user/admin"
        u = boto3.client("dynamodb", endpoint_url=self.args.upstream, region_name=REGION,
                         aws_access_key_id="upstream", aws_secret_access_key="upstream")
        throughput = {"ReadCapacityUnits": 50, "WriteCapacityUnits": 50}
        for name, ((pk, pt), sort, indexes) in TABLES.items():
            attrs = {pk: pt}
            schema = [{"AttributeName": pk, "KeyType": "HASH"}]
            if sort:
                attrs[sort[0]] = sort[1]
                schema.append({"AttributeName": sort[0], "KeyType": "RANGE"})
            params = {}
            if indexes:
                gsis = []
                for index, hash_key in indexes.items():
                    attrs[hash_key] = "S"
                    gsis.append({
                        "IndexName": index,
                        "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"}]
                        + ([{"AttributeName": sort[0], "KeyType": "RANGE"}] if sort else []),
                        "Projection": {"ProjectionType": "ALL"},
                        "ProvisionedThroughput": throughput,
                    })
                params["GlobalSecondaryIndexes"] = gsis
            u.create_table(
                TableName=name,
                AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t in attrs.items()],
                KeySchema=schema,
                ProvisionedThroughput=throughput,
                **params,
            )
        for name in TABLES:
            deadline = time.time() + 30
            while True:
                t = u.describe_table(TableName=name)["Table"]
                if t["TableStatus"] == "ACTIVE" and all(
                    i.get("IndexStatus", "ACTIVE") == "ACTIVE"
                    for i in t.get("GlobalSecondaryIndexes", [])
                ):
                    break
                if time.time() > deadline:
                    raise AssertionError(f"{name} never became ACTIVE on the upstream")
                time.sleep(0.05)
        seed = Generator(random.Random(-1), self.moto)
        for name in TABLES:
            # Seeded directly: moto reads a raw "&Action=" in a JSON body as a form parameter
            # (the gateway escapes & in what it forwards), so no & in the seed.
            items = {json.dumps(seed.key(name), sort_keys=True): None for _ in range(40)}
            items = {k: None for k in items if "&" not in k}
            writes = [{"PutRequest": {"Item": seed.item(name, json.loads(k))}} for k in items]
            for i in range(0, len(writes), 25):
                u.batch_write_item(RequestItems={name: writes[i:i + 25]})
        # The admin's key works through the gateway.
        deadline = time.time() + 10
        while True:
            request = Request("ListTables", {}, [])
            status, data = self.send(request)
            if status == 200 or time.time() > deadline:
                break
            time.sleep(0.2)
        if status != 200:
            raise AssertionError(f"the admin cannot ListTables through the gateway: {status} {data!r}")
        # The upstream logs a request once its answer is complete: wait for that line.
        deadline = time.time() + 5
        while time.time() < deadline:
            if any(b'"ListTables"' in line for line in self.upstream_log.read()):
                break
            time.sleep(0.01)
        time.sleep(0.2)
        self.upstream_log.read()
        self.audit_log.read()

    def send(self, request):
        if request.bytes is None:
            data = encode(request.body, request.style).encode()
            request.bytes = data + request.trailing
        path, headers = self.raw.sign(self.creds, request.method, request.path, request.headers,
                                      request.bytes, request.presign)
        return self.raw.send(request.method, path, headers, request.bytes)

    def events(self, want=1, timeout=5.0):
        found = []
        deadline = time.time() + timeout
        while True:
            found += [e for e in map(audit_event, self.audit_log.read()) if e is not None]
            if len(found) >= want or time.time() > deadline:
                return found
            time.sleep(0.001)

    def is_lookup(self, request, line):
        return (
            request.op != "DescribeTable"
            and line.get("target") == [PREFIX + "DescribeTable"]
            and line.get("path") == "/"
            and line.get("query") == ""
            and set(line.get("tables") or []) <= request.tables
        )

    def one(self, request):
        stray = self.upstream_log.read()
        if stray:
            self.fail(request, f"upstream lines before this request was sent: {stray}")
        status, data = self.send(request)
        self.counts["sent"] += 1
        self.counts["hostile" if request.kind else "valid"] += 1
        events = self.events()
        if len(events) != 1:
            self.fail(request, f"expected one audit line, got {events}")
            return
        event = events[0]
        if event.get("event") == "request_denied":
            lines = [json.loads(l) for l in self.upstream_log.read()]
            leaked = [l for l in lines if not self.is_lookup(request, l)]
            self.counts["lookups"] += len(lines) - len(leaked)
            code = error_code(data)
            self.counts["refused"] += 1
            self.refused_by_kind[(request.kind or f"VALID {request.op}", code)] += 1
            if leaked:
                self.fail(request, f"refused ({code}) yet the upstream logged {leaked}")
            if not 400 <= status < 500 or event.get("code") != code:
                self.fail(request, f"refused with HTTP {status} {data[:200]!r}, audit {event}")
            if not request.kind:
                self.fail(request, f"a valid request was refused by the gateway: {status} {data[:300]!r}")
            elif code != HOSTILE[request.kind]:
                self.fail(request, f"refused with {code}, expected {HOSTILE[request.kind]}: {data[:200]!r}")
            return
        if event.get("event") != "request_allowed":
            self.fail(request, f"unexpected audit line {event}")
            return
        self.counts["forwarded"] += 1
        if request.kind:
            self.fail(request, f"a hostile request ({request.kind}) was forwarded: {status} {data[:200]!r}")
        # The upstream's line for it (after any key-schema reads of the gateway).
        lines, line = [], None
        deadline = time.time() + 5
        while line is None and time.time() < deadline:
            lines += [json.loads(l) for l in self.upstream_log.read()]
            for i, l in enumerate(lines):
                if not self.is_lookup(request, l):
                    line, before, after = l, lines[:i], lines[i + 1:]
                    break
            else:
                time.sleep(0.001)
        if line is None:
            self.fail(request, f"forwarded, but the upstream logged nothing for it ({lines})")
            return
        self.counts["lookups"] += len(before)
        if after:
            self.fail(request, f"more than one upstream line: {[line] + after}")
        self.forwarded_by_op[request.op] += 1
        self.upstream_status[(request.op, line.get("status"), line.get("action") is not None)] += 1
        self.compare(request, event, line)

    def compare(self, request, event, line):
        problems = []
        if event.get("principal") != self.principal:
            problems.append(f"audit principal {event.get('principal')!r}")
        if line.get("method") != "POST" or line.get("path") != "/" or line.get("query") != "":
            problems.append(f"upstream request was {line.get('method')} {line.get('path')}?{line.get('query')}")
        if line.get("target") != [PREFIX + request.op]:
            problems.append(f"upstream target {line.get('target')}")
        action = line.get("action")
        if action is None:
            # The upstream refused it before running anything (its own validation): nothing ran.
            self.counts["upstream_rejected_before_running"] += 1
            if event.get("operation") != request.op:
                problems.append(f"audit operation {event.get('operation')!r} != {request.op!r}")
        else:
            if event.get("operation") != action:
                problems.append(f"audit operation {event.get('operation')!r} != upstream action {action!r}")
            audit_tables = {t for t in map(arn_table, event.get("resources") or []) if t}
            if audit_tables != set(line.get("tables") or []):
                problems.append(f"audit tables {sorted(audit_tables)} != upstream tables {line.get('tables')}")
            if request.op in ITEM_OPS:
                audited = audit_leading_keys(event)
                ran = {t: v for t, v in upstream_leading_keys(line).items() if v}
                if audited != ran:
                    problems.append(f"leading keys: audit {audited} != upstream {ran}")
        if request.index:
            suffix = f":table/{next(iter(request.tables))}/index/{request.index}"
            if not any(str(r).endswith(suffix) for r in event.get("resources") or []):
                problems.append(f"audit resources {event.get('resources')} do not name index {request.index}")
        if problems:
            self.counts["mismatches"] += 1
            self.fail(request, "mismatch: " + "; ".join(problems) + f"\n      audit: {event}\n      upstream: {line}")


def main():
    args = parse_args()
    run = Run(args)
    run.setup()
    rng = random.Random(args.seed)
    gen = Generator(rng, run.moto)
    started = time.time()
    print(f"differential run against {args.upstream_kind}: {args.requests} requests, seed {args.seed}")
    for _ in range(args.requests):
        request = gen.valid()
        if rng.random() < 0.4:
            gen.mutate(request)
        run.one(request)
    time.sleep(0.3)
    late = run.upstream_log.read()
    if late:
        run.counts["failures"] += 1
        run.failures.append(f"upstream lines after the last request: {late[:5]}")
    c = run.counts
    print(f"sent {c['sent']} ({c['valid']} valid, {c['hostile']} hostile) in {time.time() - started:.1f}s "
          f"on {run.raw.reconnects} connection(s)")
    print(f"forwarded {c['forwarded']}: " + ", ".join(f"{op} {n}" for op, n in sorted(run.forwarded_by_op.items())))
    errors = {k: n for k, n in run.upstream_status.items() if k[1] != 200}
    if errors:
        print("  upstream answers other than 200 (op, status, ran): "
              + ", ".join(f"{k} {n}" for k, n in sorted(errors.items(), key=str)))
    print(f"refused {c['refused']}: " + ", ".join(
        f"{kind}/{code} {n}" for (kind, code), n in sorted(run.refused_by_kind.items(), key=str)))
    print(f"gateway key-schema reads seen upstream: {c['lookups']}")
    print(f"mismatches: {c['mismatches']}; failed checks: {c['failures']}")
    if run.failures:
        print("FAILED:\n  " + "\n  ".join(run.failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (AssertionError, botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError) as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
