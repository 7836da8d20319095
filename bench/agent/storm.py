"""Helpers of bench/agent/storm, the agent's renewal storm (issue 18). Standard library only.

warm URL TOKENS OUT
    Asks the agent once for each pod of TOKENS (one token a line), one request at a time on a
    kept-alive connection; a 429 (the upstream rate limit) is retried after 5 ms, as an SDK
    retries it. Writes each pod's AccessKeyId to OUT and prints how long it took.
sample METRICS_URL OUT SECONDS
    Reads the agent's /metrics every second for SECONDS seconds and writes one line per sample:
    the time and the upstream calls, renewals, throttled requests and cache hits so far.
report SAMPLES RATE BURST
    From the samples: the upstream calls in each one-second interval, their peak against the
    token bucket's bound (RATE + BURST in any second), and the renewals made.
check URL TOKENS BEFORE
    Asks the agent once more for every pod: every answer must be 200 with credentials that
    expire more than 15 minutes from now; counts the pods whose AccessKeyId changed since
    BEFORE (renewed). Exits 1 when a pod got an error or credentials about to expire.
"""

import datetime
import http.client
import json
import sys
import time
import urllib.parse


def connect(url):
    parts = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=10), parts.path


def get(conn, path, token):
    conn.request("GET", path, headers={"Authorization": token})
    response = conn.getresponse()
    return response.status, response.read()


def warm(url, tokens_file, out):
    conn, path = connect(url)
    tokens = open(tokens_file).read().split()
    keys = []
    started = time.monotonic()
    throttled = 0
    for token in tokens:
        while True:
            status, body = get(conn, path, token)
            if status != 429:
                break
            throttled += 1
            time.sleep(0.005)
        if status != 200:
            sys.exit(f"warm: the agent answered {status}: {body[:200]!r}")
        keys.append(json.loads(body)["AccessKeyId"])
    with open(out, "w") as f:
        f.write("\n".join(keys) + "\n")
    took = time.monotonic() - started
    print(f"warmed {len(tokens)} pods in {took:.1f} s ({len(tokens) / took:.0f}/s; {throttled} answers 429, retried)")


METRICS = (
    "podiam_agent_upstream_calls_total",
    "podiam_agent_renewals_total",
    "podiam_agent_throttled_total",
    "podiam_agent_cache_hits_total",
)


def scrape(url):
    conn, path = connect(url)
    conn.request("GET", path)
    text = conn.getresponse().read().decode()
    conn.close()
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in METRICS:
            values[name] = float(value)
    return [values.get(m, 0.0) for m in METRICS]


def sample(url, out, seconds):
    start = time.monotonic()
    with open(out, "w") as f:
        for i in range(int(seconds) + 1):
            time.sleep(max(0.0, start + i - time.monotonic()))
            values = scrape(url)
            f.write(" ".join([f"{time.monotonic() - start:.3f}"] + [f"{v:.0f}" for v in values]) + "\n")
            f.flush()


def report(samples, rate, burst):
    rows = [list(map(float, line.split())) for line in open(samples) if line.strip()]
    per_second = []
    for a, b in zip(rows, rows[1:]):
        per_second.append((b[1] - a[1]) / (b[0] - a[0]))
    busy = [c for c in per_second if c > 0]
    peak = max(per_second, default=0.0)
    bound = float(rate) + float(burst)
    calls = rows[-1][1] - rows[0][1]
    renewals = rows[-1][2] - rows[0][2]
    throttled = rows[-1][3] - rows[0][3]
    print(f"upstream calls during the storm: {calls:.0f} ({renewals:.0f} renewals), {throttled:.0f} requests throttled")
    print(f"upstream calls per second: peak {peak:.0f}, mean {sum(busy) / max(1, len(busy)):.0f} over {len(busy)} busy seconds; configured rate {rate}/s, burst {burst} (bound {bound:.0f} in any second)")
    print("per second: " + " ".join(f"{c:.0f}" for c in per_second))
    if peak > bound:
        print(f"error: {peak:.0f} upstream calls in one second is over the configured rate", file=sys.stderr)
        return False
    return True


def check(url, tokens_file, before_file):
    conn, path = connect(url)
    tokens = open(tokens_file).read().split()
    before = open(before_file).read().split()
    errors = renewed = 0
    soonest = None
    for token, old in zip(tokens, before):
        status, body = get(conn, path, token)
        if status != 200:
            errors += 1
            continue
        answer = json.loads(body)
        expiration = datetime.datetime.fromisoformat(answer["Expiration"].replace("Z", "+00:00"))
        left = (expiration - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        soonest = left if soonest is None else min(soonest, left)
        if left <= 15 * 60:
            errors += 1
        if answer["AccessKeyId"] != old:
            renewed += 1
    print(f"after the storm: {len(tokens) - errors} of {len(tokens)} pods answered 200 with credentials valid > 15 min (soonest expiry in {soonest / 60:.0f} min); {renewed} pods renewed")
    return errors == 0


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    ok = {"warm": warm, "sample": sample, "report": report, "check": check}[command](*args)
    sys.exit(0 if ok in (None, True) else 1)
