"""Slow, unauthenticated clients against an AWS-style endpoint, and a real client meanwhile.

Opens N connections: half send part of a request head, half declare a 60 KiB unsigned form
body and send 30 KiB of it. While they hang on, a botocore STS client calls
GetCallerIdentity 20 times (5 s timeout each, no retries). Prints the server's RSS before, during and after (once the
connections are closed and some requests have passed), the calls' latencies, and how many of
the connections the server closed within the wait.

Usage: python flood.py PID ENDPOINT CONNECTIONS WAIT_SECONDS   (AWS_* credentials in the env)
"""

import socket
import statistics
import sys
import time
import urllib.parse

import boto3
from botocore.config import Config


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    pid, endpoint, count, wait = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    url = urllib.parse.urlparse(endpoint)
    # A server that stops answering must show as failed calls, not hang the benchmark.
    config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1})
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", config=config)
    sts.get_caller_identity()
    before = rss_kib(pid)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: "
    body = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 61440\r\n\r\nAction=AssumeRoleWithWebIdentity&WebIdentityToken=" + b"a" * 30720)
    held = []
    for i in range(count):
        try:
            s = socket.create_connection((url.hostname, url.port), timeout=5)
            s.sendall(head if i % 2 == 0 else body)
            held.append(s)
        except OSError:
            pass
    opened = time.monotonic()
    latencies, failed, peak = [], 0, rss_kib(pid)
    for _ in range(20):
        started = time.monotonic()
        try:
            sts.get_caller_identity()
            latencies.append((time.monotonic() - started) * 1000)
        except Exception:  # noqa: BLE001 - any failure counts
            failed += 1
        peak = max(peak, rss_kib(pid))
    closed = 0
    for s in held:
        s.settimeout(max(0.01, wait - (time.monotonic() - opened)))
        try:
            while s.recv(65536):
                pass
            closed += 1
        except OSError:
            pass
        s.close()
    time.sleep(1.5)
    recovered = 0
    for _ in range(100):
        try:
            sts.get_caller_identity()
            recovered += 1
        except Exception:  # noqa: BLE001 - counted
            pass
    time.sleep(1.5)
    after = rss_kib(pid)
    latencies.sort()
    p50 = statistics.median(latencies) if latencies else float("nan")
    p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan")
    print(f"connections {len(held)}; RSS before {before / 1024:.1f} MiB, during {peak / 1024:.1f} MiB "
          f"(+{(peak - before) / 1024:.1f}), after {after / 1024:.1f} MiB; GetCallerIdentity during the flood: "
          f"{len(latencies)} ok, {failed} failed, p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
          f"{closed} connections closed by the server within {wait:.0f} s; {recovered}/100 calls ok afterwards")


if __name__ == "__main__":
    main()
