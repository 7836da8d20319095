"""Prints the size of podiam's etcd namespace: its keys, the bytes of their keys and values, and
the member's database file (etcd's v3 JSON gateway; no etcdctl needed).

Usage: etcd_size.py HOST:PORT [PREFIX]   (PREFIX defaults to /podiam/)
"""

import base64
import json
import sys
import urllib.request

endpoint = "http://" + sys.argv[1]
prefix = (sys.argv[2] if len(sys.argv) > 2 else "/podiam/").encode()
end = prefix[:-1] + bytes([prefix[-1] + 1])
b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731


def call(path, body):
    request = urllib.request.Request(endpoint + path, data=json.dumps(body).encode())
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.load(answer)


keys = key_bytes = value_bytes = 0
start = prefix
while True:
    page = call("/v3/kv/range", {"key": b64(start), "range_end": b64(end), "limit": 5000})
    kvs = page.get("kvs", [])
    for kv in kvs:
        key = base64.b64decode(kv["key"])
        keys += 1
        key_bytes += len(key)
        value_bytes += len(base64.b64decode(kv.get("value", "")))
    if not page.get("more"):
        break
    start = base64.b64decode(kvs[-1]["key"]) + b"\0"
status = call("/v3/maintenance/status", {})
mb = lambda n: int(n) / 1048576  # noqa: E731
print(
    f"etcd namespace {prefix.decode()}: {keys} keys, {mb(key_bytes + value_bytes):.1f} MB of keys "
    f"and values; the member's database {mb(status['dbSize']):.1f} MB "
    f"({mb(status.get('dbSizeInUse', 0)):.1f} MB in use)"
)
