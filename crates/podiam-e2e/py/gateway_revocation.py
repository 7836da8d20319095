"""A permission revoked under load is enforced by `podiam gateway` within a second.

Usage: gateway_revocation.py --gateway URL --upstream URL --upstream-log FILE
                             --audit-log FILE --upstream-kind moto|dynalite

The user `reader` may GetItem on the table Revoke. Four threads call GetItem through the gateway
without pause (no retries). After a second of that, the root deletes reader's policy through the
server's IAM API. Every call that starts more than a second after the deletion was acknowledged
must be answered AccessDeniedException; no call may fail any other way. Prints how long the
gateway kept allowing.
"""

import json
import sys
import threading
import time

import boto3
import botocore.exceptions
from botocore.config import Config

import gateway_common
from gateway_common import REGION

TABLE = "Revoke"
LOAD_BEFORE = 1.0
LOAD_AFTER = 2.5
THREADS = 4
BOUND = 1.0


def main():
    args = gateway_common.arguments().parse_args()
    account = boto3.client("sts").get_caller_identity()["Account"]
    iam = boto3.client("iam")
    upstream = boto3.client(
        "dynamodb",
        endpoint_url=args.upstream,
        region_name=REGION,
        aws_access_key_id="upstream",
        aws_secret_access_key="upstream",
    )
    upstream.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    upstream.put_item(TableName=TABLE, Item={"id": {"S": "1"}, "v": {"S": "kept"}})
    policy = {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": "dynamodb:GetItem",
            "Resource": f"arn:aws:dynamodb:{REGION}:{account}:table/{TABLE}",
        }],
    }
    iam.create_user(UserName="reader")
    iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="reader")["AccessKey"]

    def client():
        return boto3.client(
            "dynamodb",
            endpoint_url=args.gateway,
            region_name=REGION,
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    # The new key and policy reach the gateway (a replica follows the store's watch).
    probe = client()
    deadline = time.time() + 10
    while True:
        try:
            probe.get_item(TableName=TABLE, Key={"id": {"S": "1"}})
            break
        except botocore.exceptions.ClientError:
            if time.time() > deadline:
                raise
            time.sleep(0.02)

    calls = []
    lock = threading.Lock()
    stop = threading.Event()

    def load():
        c = client()
        while not stop.is_set():
            started = time.time()
            try:
                c.get_item(TableName=TABLE, Key={"id": {"S": "1"}})
                outcome = "allowed"
            except botocore.exceptions.ClientError as e:
                outcome = e.response["Error"]["Code"]
            except Exception as e:  # noqa: BLE001 - a connection failure is a failure here
                outcome = type(e).__name__
            with lock:
                calls.append((started, outcome))

    threads = [threading.Thread(target=load) for _ in range(THREADS)]
    for t in threads:
        t.start()
    time.sleep(LOAD_BEFORE)
    asked = time.time()
    iam.delete_user_policy(UserName="reader", PolicyName="read")
    revoked = time.time()
    time.sleep(LOAD_AFTER)
    stop.set()
    for t in threads:
        t.join()

    allowed_after = [s - revoked for s, o in calls if o == "allowed" and s >= revoked]
    denied_after = [s - revoked for s, o in calls if o == "AccessDeniedException" and s >= revoked]
    others = [o for _, o in calls if o not in ("allowed", "AccessDeniedException")]
    late = [s - revoked for s, o in calls if o == "allowed" and s - revoked > BOUND]
    before = [o for s, o in calls if s < asked]
    duration = LOAD_BEFORE + LOAD_AFTER
    print(
        f"{len(calls)} GetItem calls in {duration:.1f} s ({len(calls) / duration:.0f}/s, "
        f"{THREADS} threads); before the revocation {before.count('allowed')} of {len(before)} "
        f"allowed; DeleteUserPolicy took {(revoked - asked) * 1000:.0f} ms; after it "
        f"{len(allowed_after)} allowed (the last started "
        f"{max(allowed_after, default=0) * 1000:.0f} ms after), {len(denied_after)} denied "
        f"(the first started {min(denied_after, default=0) * 1000:.0f} ms after); "
        f"{len(others)} other answers"
    )
    failures = []
    if others:
        failures.append(f"answers other than allowed or AccessDenied: {sorted(set(others))}")
    if late:
        failures.append(f"{len(late)} calls allowed more than {BOUND} s after the revocation")
    if not denied_after:
        failures.append("nothing was denied after the revocation")
    if before.count("allowed") == 0:
        failures.append("nothing was allowed before the revocation")
    for f in failures:
        print("FAIL:", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
