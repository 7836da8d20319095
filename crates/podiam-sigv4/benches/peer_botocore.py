"""Peer for benches/verify.rs: botocore's SigV4 computation (botocore.auth.SigV4Auth) on the
same STS form POST. This is the work a Python server does to check a signature (moto recomputes
signatures with it); podiam's verify also parses the header and looks up the key.

Prints {"botocore_sigv4_sign_sts_form_post": {"ns_per_op": float}}.
"""

import datetime
import json
import sys
import timeit
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

BODY = (
    "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A637423329338%3Arole"
    "%2Feks-workshop-carts-dynamo-irsa&RoleSessionName=carts-session&DurationSeconds=3600"
)
CREDENTIALS = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
FIXED = datetime.datetime(2026, 11, 26, 17, 47, 22, tzinfo=datetime.timezone.utc)


def sign_once():
    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:8080/",
        data=BODY,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(CREDENTIALS, "sts", "eu-central-1").add_auth(request)
    return request.headers["Authorization"]


def per_op(fn):
    number = 1
    while timeit.timeit(fn, number=number) < 0.2:
        number *= 2
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e9


def main():
    with mock.patch("botocore.auth.datetime") as fake:
        fake.datetime.now.return_value = FIXED
        fake.datetime.utcnow.return_value = FIXED.replace(tzinfo=None)
        fake.timezone = datetime.timezone
        sign_once()
        result = {"botocore_sigv4_sign_sts_form_post": {"ns_per_op": round(per_op(sign_once), 1)}}
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
