"""Steady IAM writes and STS reads across podiam replicas, for the fault tests.

Usage: replica_load.py ENDPOINT[,ENDPOINT...] SECONDS

Credentials and region come from the environment. Each round creates one user (a write) on
the next replica in turn and asks GetCallerIdentity (a read) on each replica, with botocore's
standard retry mode (5 attempts) as an SDK user would have it. Prints one JSON object: the
users whose creation was acknowledged (including those whose first answer was lost and whose
retry found them created), and every call that failed after the retries.
"""

import json
import sys
import time

import boto3
import botocore.config
import botocore.exceptions

endpoints = sys.argv[1].split(",")
seconds = float(sys.argv[2])
config = botocore.config.Config(
    retries={"max_attempts": 5, "mode": "standard"},
    connect_timeout=2,
    read_timeout=10,
)
iam = [boto3.client("iam", endpoint_url=e, config=config) for e in endpoints]
sts = [boto3.client("sts", endpoint_url=e, config=config) for e in endpoints]

acked, failed, answered_twice, reads = [], [], [], 0
started = time.monotonic()
i = 0
while time.monotonic() - started < seconds:
    name = f"load-{i}"
    try:
        iam[i % len(iam)].create_user(UserName=name)
        acked.append(name)
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] == "EntityAlreadyExists":
            # An attempt whose answer was lost in the failover did commit; the SDK's retry then
            # finds the user. The write is there (checked afterwards), just answered twice.
            acked.append(name)
            answered_twice.append(name)
        else:
            failed.append({"call": "CreateUser", "user": name, "error": str(e)})
    except botocore.exceptions.BotoCoreError as e:
        failed.append({"call": "CreateUser", "user": name, "error": repr(e)})
    for client in sts:
        try:
            client.get_caller_identity()
            reads += 1
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            failed.append({"call": "GetCallerIdentity", "error": repr(e)})
    i += 1

print(json.dumps({"acked": acked, "failed": failed, "answered_twice": answered_twice, "reads": reads}))
