"""Loads a podiam server with N roles and N pod identity associations over C clusters.

Usage: load.py ENDPOINT DATA_DIR KEYS_DIR N [--clusters C] [--threads T] [--podiam PATH]
                [--shared-documents] [--first F]

Each role has a distinct IRSA trust policy (a per-role `sub` condition on a per-cluster
issuer) and one inline policy (PutRolePolicy); association i binds service account `sa-i` in
namespace `ns-{i % 50}` of cluster `c{i % C}` to role i. Clusters are created with
`podiam cluster create` against the server, each with an external issuer in EKS's form whose
keys are KEYS_DIR/jwks (made here with `podiam keys generate` when KEYS_DIR/sa.key is missing;
bench/scale/measure.py mints tokens with that key), and each issuer gets an IAM OIDC provider,
so every loaded role can really be assumed. Everything but the clusters goes through boto3
(IAM and EKS), from T threads, with a progress line on stderr. `--first F` loads roles and
associations F..N-1 into a server that already has the clusters and the first F. With --shared-documents every role has the
Pod Identity trust policy and one of 10 inline policies instead (what a Pod Identity fleet with
templated permissions looks like). Credentials: DATA_DIR/root-credentials.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

ap = argparse.ArgumentParser()
ap.add_argument("endpoint")
ap.add_argument("data_dir")
ap.add_argument("keys_dir")
ap.add_argument("n", type=int)
ap.add_argument("--first", type=int, default=0)
ap.add_argument("--clusters", type=int, default=100)
ap.add_argument("--threads", type=int, default=16)
ap.add_argument("--podiam", default="target/release/podiam")
ap.add_argument(
    "--shared-documents",
    action="store_true",
    help="every role gets the Pod Identity trust policy and one of 10 inline policies",
)
args = ap.parse_args()

os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(args.data_dir, "root-credentials")
os.environ["AWS_CONFIG_FILE"] = "/dev/null"
os.environ["AWS_ENDPOINT_URL"] = args.endpoint
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
config = Config(retries={"max_attempts": 10, "mode": "standard"}, max_pool_connections=64)
local = threading.local()


def client(service):
    c = getattr(local, service, None)
    if c is None:
        c = boto3.session.Session().client(service, config=config)
        setattr(local, service, c)
    return c


def cluster_name(i):
    return f"c{i % args.clusters}"


def issuer(i):
    # EKS's form: trust policies name oidc.eks.REGION.amazonaws.com/id/ID.
    return f"oidc.eks.us-east-1.amazonaws.com/id/{(i % args.clusters):032X}"


POD_IDENTITY_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }
)


def trust(i):
    if args.shared_documents:
        return POD_IDENTITY_TRUST
    iss = issuer(i)
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{iss}"},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{iss}:sub": f"system:serviceaccount:ns-{i % 50}:sa-{i}",
                            f"{iss}:aud": "sts.amazonaws.com",
                        }
                    },
                },
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "pods.eks.amazonaws.com"},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                },
            ],
        }
    )


def inline(i):
    if args.shared_documents:
        i = i % 10
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                    "Resource": [
                        f"arn:aws:s3:::bucket-{i}",
                        f"arn:aws:s3:::bucket-{i}/*",
                    ],
                },
                {
                    "Effect": "Allow",
                    "Action": "dynamodb:GetItem",
                    "Resource": f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/t-{i}",
                    "Condition": {
                        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"tenant-{i}-*"]}
                    },
                },
            ],
        }
    )


class Progress:
    def __init__(self, what, total):
        self.what, self.total, self.done, self.failed = what, total, 0, 0
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.last = 0.0

    def tick(self, ok=True):
        with self.lock:
            self.done += 1
            self.failed += 0 if ok else 1
            now = time.monotonic()
            if now - self.last >= 1 or self.done == self.total:
                self.last = now
                rate = self.done / max(now - self.started, 1e-9)
                sys.stderr.write(
                    f"\r{self.what}: {self.done}/{self.total} ({self.failed} failed) "
                    f"{rate:7.0f}/s"
                )
                if self.done == self.total:
                    sys.stderr.write("\n")
                sys.stderr.flush()


def run(what, total, work):
    progress = Progress(what, total)
    errors = []

    def one(i):
        try:
            work(i)
            progress.tick()
        except Exception as e:  # noqa: BLE001 - counted and reported
            progress.tick(False)
            if len(errors) < 5:
                errors.append(f"{i}: {e}")

    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(one, range(total)))
    for e in errors:
        print(f"  error {e}", file=sys.stderr)
    return progress


def bench_keys():
    """The issuers' signing key and JWKS in KEYS_DIR, made once."""
    os.makedirs(args.keys_dir, exist_ok=True)
    key = os.path.join(args.keys_dir, "sa.key")
    if not os.path.exists(key):
        kid = subprocess.run(
            [args.podiam, "keys", "generate", "--alg", "RS256", "--out", key],
            check=True, capture_output=True, text=True, timeout=60,
        ).stdout.split()[-1]
        with open(os.path.join(args.keys_dir, "kid"), "w") as f:
            f.write(kid)
        site = os.path.join(args.keys_dir, "site")
        subprocess.run(
            [args.podiam, "token", "discovery", "--key", key, "--issuer",
             "https://" + issuer(0), "--out-dir", site],
            check=True, capture_output=True, timeout=60,
        )
        os.replace(os.path.join(site, "openid", "v1", "jwks"), os.path.join(args.keys_dir, "jwks"))
    return os.path.join(args.keys_dir, "jwks")


def make_cluster(i):
    subprocess.run(
        [args.podiam, "cluster", "create", "--name", cluster_name(i), "--endpoint", args.endpoint,
         "--external-issuer", "https://" + issuer(i), "--jwks-file", JWKS],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=60,
    )
    client("iam").create_open_id_connect_provider(
        Url="https://" + issuer(i), ClientIDList=["sts.amazonaws.com"]
    )


def make_role(i):
    iam = client("iam")
    name = f"role-{i}"
    try:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust(i))
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    iam.put_role_policy(RoleName=name, PolicyName="app", PolicyDocument=inline(i))


def make_association(i):
    client("eks").create_pod_identity_association(
        clusterName=cluster_name(i),
        namespace=f"ns-{i % 50}",
        serviceAccount=f"sa-{i}",
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/role-{i}",
    )


ACCOUNT = client("sts").get_caller_identity()["Account"]
started = time.monotonic()
failed = 0
JWKS = bench_keys()
if args.first == 0:
    failed += run("clusters", args.clusters, make_cluster).failed
todo = args.n - args.first
failed += run("roles", todo, lambda i: make_role(args.first + i)).failed
failed += run("associations", todo, lambda i: make_association(args.first + i)).failed
print(f"loaded {todo} roles and associations (to {args.n}) over {args.clusters} clusters in "
      f"{time.monotonic() - started:.1f} s ({failed} failed)")
sys.exit(1 if failed else 0)
