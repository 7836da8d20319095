"""Steady IAM writes and STS reads across podiam replicas, for the fault tests.

Usage: replica_load.py ENDPOINT[,ENDPOINT...] SECONDS [ATTEMPTS]

Credentials and region come from the environment. Each round creates one user (a write) on
the next replica in turn, reads it back (GetUser) on the other, and asks GetCallerIdentity on
each replica, with botocore's standard retry mode and ATTEMPTS attempts (5, as an SDK user
would have it; 1 shows the server's own behaviour). Prints one JSON object: the users whose
creation was acknowledged (with retries, including those whose first answer was lost and whose
retry found them created), every call that failed, and the calls' latencies.
"""

import json
import sys
import time

import boto3
import botocore.config
import botocore.exceptions

endpoints = sys.argv[1].split(",")
seconds = float(sys.argv[2])
attempts = int(sys.argv[3]) if len(sys.argv) > 3 else 5
config = botocore.config.Config(
    retries={"total_max_attempts": attempts, "mode": "standard"},
    connect_timeout=2,
    read_timeout=10,
)
iam = [boto3.client("iam", endpoint_url=e, config=config) for e in endpoints]
sts = [boto3.client("sts", endpoint_url=e, config=config) for e in endpoints]

acked, failed, answered_twice, reads, latencies, samples, lagged = [], [], [], 0, [], [], []


def timed(call):
    """Runs `call`, recording how long it took, failed or not, and when it started (Unix time)
    with its outcome, so that a test can look at the calls around each fault."""
    started_at, begun, ok = time.time(), time.monotonic(), False
    try:
        result = call()
        ok = True
        return result
    finally:
        took = time.monotonic() - begun
        latencies.append(took)
        samples.append([round(started_at, 4), round(took * 1000, 2), ok])


started = time.monotonic()
i = 0
while time.monotonic() - started < seconds:
    name = f"load-{i}"
    call = "CreateUser"
    try:
        timed(lambda: iam[i % len(iam)].create_user(UserName=name))
        acked.append(name)
        call = "GetUser"
        timed(lambda: iam[(i + 1) % len(iam)].get_user(UserName=name))
        reads += 1
    except botocore.exceptions.ClientError as e:
        if call == "GetUser" and e.response["Error"]["Code"] == "NoSuchEntity":
            # The other replica has not seen the write through its watch yet: not a failure
            # (the sample says so, for the per-fault counts).
            samples[-1][2] = True
            lagged.append(name)
        elif e.response["Error"]["Code"] == "EntityAlreadyExists" and attempts > 1:
            # An attempt whose answer was lost in the failover did commit; the SDK's retry then
            # finds the user. The write is there (checked afterwards), just answered twice.
            acked.append(name)
            answered_twice.append(name)
        else:
            failed.append({"call": call, "user": name, "error": str(e)})
    except botocore.exceptions.BotoCoreError as e:
        failed.append({"call": call, "user": name, "error": repr(e)})
    for client in sts:
        try:
            timed(client.get_caller_identity)
            reads += 1
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            failed.append({"call": "GetCallerIdentity", "error": repr(e)})
    i += 1

latencies.sort()


def percentile(p):
    return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000, 1) if latencies else None


print(
    json.dumps(
        {
            "acked": acked,
            "failed": failed,
            "answered_twice": answered_twice,
            "lagged": lagged,
            "reads": reads,
            "calls": len(latencies),
            "p50_ms": percentile(0.5),
            "p99_ms": percentile(0.99),
            "max_ms": percentile(1.0),
            "samples": samples,
        }
    )
)
