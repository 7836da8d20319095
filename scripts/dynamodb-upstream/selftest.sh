#!/usr/bin/env bash
# Self-test of the logging DynamoDB test upstreams (moto_logged.py, dynalite_logged.js):
# starts each, drives it with the AWS CLI, and checks that its log records the actions,
# tables and keys it executed. Then sends moto the query-string `Action` attack and reports
# which action moto ran. Leaves no process behind.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

venv=$("$root/scripts/python-env")
python=$venv/bin/python
aws_cli=$venv/bin/aws
if [ ! -d "$here/node_modules/dynalite" ]; then
  echo "==> npm ci (scripts/dynamodb-upstream)" >&2
  (cd "$here" && npm ci --no-audit --no-fund >&2)
fi

export AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_PAGER="" AWS_EC2_METADATA_DISABLED=true

work=$(mktemp -d)
pids=()

stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local pid
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  rm -rf "$work"
}
trap cleanup EXIT

# start NAME CMD... : starts CMD in the background, waits for its readiness line, sets $url.
start() {
  local name=$1; shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  local pid=$!
  pids+=("$pid")
  url=
  for _ in $(seq 300); do
    url=$(sed -n 's/^\* Running on \(http:\/\/127\.0\.0\.1:[0-9][0-9]*\)$/\1/p' "$work/$name.out")
    [ -n "$url" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if [ -z "$url" ]; then
    echo "FAIL: $name did not print its readiness line" >&2
    cat "$work/$name.out" "$work/$name.err" >&2
    exit 1
  fi
  if [ "$(wc -l <"$work/$name.out")" -ne 1 ]; then
    echo "FAIL: $name printed more than one line on stdout" >&2
    cat "$work/$name.out" >&2
    exit 1
  fi
  echo "$name: $(cat "$work/$name.out")  (pid $pid)"
}

ddb() { "$aws_cli" --endpoint-url "$url" --output json dynamodb "$@"; }

# The AWS CLI session both upstreams get. TransactWriteItems is the last call: dynalite
# does not implement it, so it must show up there as refused (action null).
drive() {
  ddb create-table --table-name selftest \
    --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=S \
    --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE \
    --billing-mode PAY_PER_REQUEST >/dev/null
  ddb put-item --table-name selftest \
    --item '{"pk":{"S":"p1"},"sk":{"S":"s1"},"v":{"N":"1"}}' >/dev/null
  ddb get-item --table-name selftest --key '{"pk":{"S":"p1"},"sk":{"S":"s1"}}' >/dev/null
  ddb query --table-name selftest --key-condition-expression 'pk = :p' \
    --expression-attribute-values '{":p":{"S":"p1"}}' >/dev/null
  ddb batch-write-item --request-items '{"selftest":[
      {"PutRequest":{"Item":{"pk":{"S":"p2"},"sk":{"S":"s2"},"v":{"N":"2"}}}},
      {"DeleteRequest":{"Key":{"pk":{"S":"p1"},"sk":{"S":"s1"}}}}]}' >/dev/null
  if ddb transact-write-items --transact-items '[
      {"Put":{"TableName":"selftest","Item":{"pk":{"S":"p3"},"sk":{"S":"s3"}}}},
      {"Update":{"TableName":"selftest","Key":{"pk":{"S":"p2"},"sk":{"S":"s2"}},
                 "UpdateExpression":"SET v = :v","ExpressionAttributeValues":{":v":{"N":"3"}}}}]' \
      >"$work/transact.out" 2>&1; then
    transact=ok
  else
    transact=refused
  fi
}

# check LOG TRANSACT(ok|refused): the log holds exactly the session drive() ran.
check() {
  "$python" - "$1" "$2" <<'EOF'
import json, sys

log, transact = sys.argv[1], sys.argv[2]
records = [json.loads(line) for line in open(log)]
fields = {"method", "path", "query", "target", "service", "action", "tables", "keys",
          "key_condition", "statements", "status"}
T = "selftest"
S = lambda s: {"S": s}
expected = [
    ("CreateTable", [T], [], None),
    ("PutItem", [T], [{"table": T, "key": {"pk": S("p1"), "sk": S("s1"), "v": {"N": "1"}}}], None),
    ("GetItem", [T], [{"table": T, "key": {"pk": S("p1"), "sk": S("s1")}}], None),
    ("Query", [T], [], {"KeyConditionExpression": "pk = :p",
                        "ExpressionAttributeValues": {":p": S("p1")}}),
    ("BatchWriteItem", [T], [{"table": T, "key": {"pk": S("p2"), "sk": S("s2"), "v": {"N": "2"}}},
                             {"table": T, "key": {"pk": S("p1"), "sk": S("s1")}}], None),
    ("TransactWriteItems", [T], [{"table": T, "key": {"pk": S("p3"), "sk": S("s3")}},
                                 {"table": T, "key": {"pk": S("p2"), "sk": S("s2")}}], None),
]
failures = []
if len(records) != len(expected):
    failures.append(f"{len(records)} log lines, expected {len(expected)}")
for record, (action, tables, keys, key_condition) in zip(records, expected):
    missing = fields - record.keys()
    if missing:
        failures.append(f"{action}: missing fields {sorted(missing)}")
    if record["method"] != "POST" or record["path"] != "/" or record["query"] != "":
        failures.append(f"{action}: method/path/query {record['method']} {record['path']} {record['query']!r}")
    if record["target"] != [f"DynamoDB_20120810.{action}"]:
        failures.append(f"{action}: target {record['target']}")
    if action == "TransactWriteItems" and transact == "refused":
        # Not implemented by this upstream: the log must show it never ran.
        if record["action"] is not None or record["tables"] or record["keys"] or record["status"] < 400:
            failures.append(f"{action}: refused by the upstream but logged as {record}")
        continue
    if record["action"] != action:
        failures.append(f"{action}: logged action {record['action']}")
    if record["status"] != 200:
        failures.append(f"{action}: status {record['status']}")
    if record["tables"] != tables:
        failures.append(f"{action}: tables {record['tables']}")
    if record["keys"] != keys:
        failures.append(f"{action}: keys {record['keys']}")
    if key_condition is not None:
        got = {k: v for k, v in (record["key_condition"] or {}).items() if k in key_condition}
        if got != key_condition:
            failures.append(f"{action}: key_condition {record['key_condition']}")
    elif record["key_condition"] is not None:
        failures.append(f"{action}: unexpected key_condition {record['key_condition']}")
for record in records:
    print(f"    {record['action'] or '(not run)':20} status {record['status']}  tables {record['tables']}"
          f"  keys {len(record['keys'])}")
if failures:
    print("FAIL:\n  " + "\n  ".join(failures))
    sys.exit(1)
EOF
}

# attack URL: POST /?Action=Scan with X-Amz-Target ListTables; prints the logged action.
attack() {
  curl -sS -o "$work/attack.body" -w '%{http_code}' -X POST "$1/?Action=Scan" \
    -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
    -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'X-Amz-Date: 20240101T000000Z' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=x/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0000' \
    --data '{"TableName":"t"}'
}

status=0

echo "== moto (moto_logged.py)"
start moto "$python" "$here/moto_logged.py" --log "$work/moto.log"
moto_pid=${pids[-1]}
drive
echo "  transact-write-items: $transact"
check "$work/moto.log" "$transact" || status=1
[ "$transact" = ok ] || { echo "FAIL: moto refused TransactWriteItems"; cat "$work/transact.out"; status=1; }
# The attack: the header says ListTables (what an authorizer reading X-Amz-Target sees),
# the query string says Scan.
ddb create-table --table-name t --attribute-definitions AttributeName=id,AttributeType=S \
  --key-schema AttributeName=id,KeyType=HASH --billing-mode PAY_PER_REQUEST >/dev/null
ddb put-item --table-name t --item '{"id":{"S":"secret"}}' >/dev/null
before=$(wc -l <"$work/moto.log")
code=$(attack "$url")
attack_record=$(tail -n +"$((before + 1))" "$work/moto.log" | tail -n 1)
moto_ran=$(jq -r '.action // "null"' <<<"$attack_record")
echo "  POST /?Action=Scan, X-Amz-Target ListTables, body {\"TableName\":\"t\"}: HTTP $code"
echo "    log: $attack_record"
echo "    response: $(head -c 300 "$work/attack.body")"
echo "    moto ran: $moto_ran"
if [ "$moto_ran" != Scan ] || [ "$(jq -c '.tables' <<<"$attack_record")" != '["t"]' ]; then
  echo "FAIL: expected the log to show moto running Scan on t"; status=1
fi
stop_pid "$moto_pid"

echo "== dynalite (dynalite_logged.js, dynalite $(node -p "require('$here/node_modules/dynalite/package.json').version"))"
start dynalite node "$here/dynalite_logged.js" --log "$work/dynalite.log"
dynalite_pid=${pids[-1]}
drive
echo "  transact-write-items: $transact ($(tr -s '\n' ' ' <"$work/transact.out" | head -c 160))"
check "$work/dynalite.log" "$transact" || status=1
before=$(wc -l <"$work/dynalite.log")
code=$(attack "$url")
attack_record=$(tail -n +"$((before + 1))" "$work/dynalite.log" | tail -n 1)
echo "  same attack against dynalite: HTTP $code, ran: $(jq -r '.action // "null"' <<<"$attack_record")"
[ "$(jq -r '.action' <<<"$attack_record")" = ListTables ] || { echo "FAIL: dynalite should run ListTables"; status=1; }
stop_pid "$dynalite_pid"

for pid in "${pids[@]}"; do
  if kill -0 "$pid" 2>/dev/null; then echo "FAIL: process $pid still running"; status=1; fi
done
if [ "$status" -eq 0 ]; then echo "selftest: OK"; else echo "selftest: FAILED"; fi
exit "$status"
