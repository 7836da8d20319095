"""Measures a server that bench/scale/load.py loaded with N roles and associations.

Usage: measure.py STEP ENDPOINT DATA_DIR KEYS_DIR N [options]

Steps (credentials: DATA_DIR/root-credentials; tokens signed with KEYS_DIR/sa.key):
  requests OUT   writes OUT/irsa.requests and OUT/pia.requests for bench/scale/rotate.lua:
                 AssumeRoleWithWebIdentity and AssumeRoleForPodIdentity (SigV4-signed) for
                 --sample roles drawn at random from the N, each with its own token; sends the
                 first 20 of each once and fails unless they succeed
  paging         ListRoles (MaxItems 100, the SDKs' default page, then 1000, the most) and
                 ListPodIdentityAssociations of every cluster (maxResults 100) to the end,
                 checking that the markers cover the whole set exactly once; prints each
                 page's latency percentiles (signed requests over one connection, timed to the
                 answer's last byte)
  writes         --writes sequential TagRole, CreatePodIdentityAssociation and
                 DeletePodIdentityAssociation calls; prints their latency percentiles
  catch-up URL   --catch-up-writes TagRole calls from --threads threads to ENDPOINT, then one
                 marker tag; prints how long the replica at URL took to serve the marker after
                 ENDPOINT acknowledged it, and checks that the replica serves a sample of the
                 writes

The writes' latencies are measured around the boto3 call, so they include signing and the
client.
"""

import argparse
import json
import os
import random
import sys
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import jwt
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config

ap = argparse.ArgumentParser()
ap.add_argument("step", choices=["requests", "paging", "writes", "catch-up"])
ap.add_argument("endpoint")
ap.add_argument("data_dir")
ap.add_argument("keys_dir")
ap.add_argument("n", type=int)
ap.add_argument("target", nargs="?", help="OUT for requests, the replica's URL for catch-up")
ap.add_argument("--clusters", type=int, default=100)
ap.add_argument("--sample", type=int, default=2000)
ap.add_argument("--writes", type=int, default=1000)
ap.add_argument("--catch-up-writes", type=int, default=10000)
ap.add_argument("--threads", type=int, default=16)
ap.add_argument("--label", default="")
args = ap.parse_args()

os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(args.data_dir, "root-credentials")
os.environ["AWS_CONFIG_FILE"] = "/dev/null"
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
config = Config(retries={"max_attempts": 10, "mode": "standard"}, max_pool_connections=64)
local = threading.local()


def client(service, endpoint=None):
    endpoint = endpoint or args.endpoint
    key = f"{service} {endpoint}"
    c = getattr(local, key, None)
    if c is None:
        c = boto3.session.Session().client(service, config=config, endpoint_url=endpoint)
        setattr(local, key, c)
    return c


def issuer(i):
    return f"https://oidc.eks.us-east-1.amazonaws.com/id/{(i % args.clusters):032X}"


def percentiles(times):
    times = sorted(times)
    at = lambda p: times[min(len(times) - 1, int(len(times) * p / 100))]  # noqa: E731
    return f"p50 {at(50):6.2f} ms   p99 {at(99):6.2f} ms   max {times[-1]:6.2f} ms"


def report(what, times):
    label = f" ({args.label})" if args.label else ""
    print(f"{what + label:<52} {len(times):>6} calls   {percentiles(times)}", flush=True)


def timed(call):
    started = time.perf_counter()
    result = call()
    return result, (time.perf_counter() - started) * 1000


def token(i, audience, key, kid):
    now = int(time.time())
    pod = f"app-{i}-7d8f9c6b5-abcde"
    claims = {
        "aud": [audience],
        "exp": now + 3600,
        "iat": now,
        "nbf": now,
        "iss": issuer(i),
        "jti": str(uuid.uuid4()),
        "sub": f"system:serviceaccount:ns-{i % 50}:sa-{i}",
        "kubernetes.io": {
            "namespace": f"ns-{i % 50}",
            "serviceaccount": {"name": f"sa-{i}", "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"sa-{i}"))},
            "pod": {"name": pod, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, pod))},
        },
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def post(path, body, headers):
    request = urllib.request.Request(args.endpoint + path, data=body.encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status


def step_requests():
    import urllib.parse

    out = args.target
    os.makedirs(out, exist_ok=True)
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    # Parsed once: PyJWT would parse a PEM (and check the RSA key) for every token.
    key = load_pem_private_key(open(os.path.join(args.keys_dir, "sa.key"), "rb").read(), None)
    kid = open(os.path.join(args.keys_dir, "kid")).read().strip()
    account = client("sts").get_caller_identity()["Account"]
    credentials = boto3.session.Session().get_credentials()
    roles = random.Random(18).sample(range(args.n), min(args.sample, args.n))
    form = "application/x-www-form-urlencoded; charset=utf-8"
    with open(os.path.join(out, "irsa.requests"), "w") as irsa, open(
        os.path.join(out, "pia.requests"), "w"
    ) as pia:
        for count, i in enumerate(roles):
            body = urllib.parse.urlencode(
                {
                    "Action": "AssumeRoleWithWebIdentity",
                    "Version": "2011-06-15",
                    "RoleArn": f"arn:aws:iam::{account}:role/role-{i}",
                    "RoleSessionName": "bench",
                    "WebIdentityToken": token(i, "sts.amazonaws.com", key, kid),
                }
            )
            irsa.write(f"/\t{body}\tContent-Type: {form}\n")
            if count < 20:
                post("/", body, {"Content-Type": form})
            path = f"/clusters/c{i % args.clusters}/assume-role-for-pod-identity"
            body = json.dumps({"token": token(i, "pods.eks.amazonaws.com", key, kid)})
            request = AWSRequest(
                method="POST",
                url=args.endpoint + path,
                data=body,
                headers={"Content-Type": "application/json"},
            )
            SigV4Auth(credentials, "eks-auth", "us-east-1").add_auth(request)
            headers = {"Content-Type": "application/json"}
            for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
                if name in request.headers:
                    headers[name] = request.headers[name]
            pia.write("\t".join([path, body] + [f"{k}: {v}" for k, v in headers.items()]) + "\n")
            if count < 20:
                post(path, body, headers)
    print(f"requests for {len(roles)} roles written to {out} (the first 20 of each succeeded)")


class Signed:
    """Signed requests over one kept-alive connection, timed from the send to the last byte of
    the answer (the server and loopback, not the client's parsing)."""

    def __init__(self, endpoint):
        import http.client
        import urllib.parse

        self.url = urllib.parse.urlsplit(endpoint)
        self.connection = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=30)
        self.credentials = boto3.session.Session().get_credentials()

    def call(self, service, method, path, body=b"", content_type=None):
        headers = {"Content-Type": content_type} if content_type else {}
        request = AWSRequest(method=method, url=f"http://{self.url.netloc}{path}", data=body,
                             headers=headers)
        SigV4Auth(self.credentials, service, "us-east-1").add_auth(request)
        started = time.perf_counter()
        self.connection.request(method, path, body=body or None, headers=dict(request.headers))
        answer = self.connection.getresponse()
        data = answer.read()
        ms = (time.perf_counter() - started) * 1000
        if answer.status != 200:
            sys.exit(f"{method} {path}: {answer.status} {data[:300]!r}")
        return data, ms


def list_roles(signed, page_size):
    import urllib.parse
    import xml.etree.ElementTree as ET

    ns = {"iam": "https://iam.amazonaws.com/doc/2010-05-08/"}
    seen, times, marker = set(), [], None
    while True:
        form = {"Action": "ListRoles", "Version": "2010-05-08", "MaxItems": str(page_size)}
        if marker:
            form["Marker"] = marker
        data, ms = signed.call("iam", "POST", "/", urllib.parse.urlencode(form).encode(),
                               "application/x-www-form-urlencoded; charset=utf-8")
        times.append(ms)
        result = ET.fromstring(data).find("iam:ListRolesResult", ns)
        for name in result.iterfind("iam:Roles/iam:member/iam:RoleName", ns):
            if name.text in seen:
                sys.exit(f"ListRoles returned {name.text} twice")
            seen.add(name.text)
        if result.findtext("iam:IsTruncated", "false", ns) != "true":
            break
        marker = result.findtext("iam:Marker", None, ns)
    missing = [i for i in range(args.n) if f"role-{i}" not in seen]
    if missing:
        sys.exit(f"ListRoles never returned {len(missing)} roles, e.g. role-{missing[0]}")
    report(f"ListRoles page of {page_size} ({len(seen)} roles)", times)


def step_paging():
    import urllib.parse

    signed = Signed(args.endpoint)
    list_roles(signed, 100)
    list_roles(signed, 1000)
    times, found = [], 0
    for c in range(args.clusters):
        ids, next_token = set(), None
        while True:
            query = {"maxResults": "100"}
            if next_token:
                query["nextToken"] = next_token
            path = f"/clusters/c{c}/pod-identity-associations?" + urllib.parse.urlencode(query)
            data, ms = signed.call("eks", "GET", path)
            times.append(ms)
            page = json.loads(data)
            for a in page["associations"]:
                if a["associationId"] in ids:
                    sys.exit(f"c{c}: association {a['associationId']} listed twice")
                ids.add(a["associationId"])
                sa = a["serviceAccount"]
                if sa.startswith("sa-"):
                    i = int(sa[3:])
                    if i % args.clusters != c or a["namespace"] != f"ns-{i % 50}":
                        sys.exit(f"c{c}: {a} is not in this cluster's set")
            next_token = page.get("nextToken")
            if not next_token:
                break
        expected = len(range(c, args.n, args.clusters))
        if len(ids) < expected:
            sys.exit(f"c{c}: {len(ids)} associations listed, {expected} loaded")
        found += len(ids)
    report(f"ListPodIdentityAssociations page of 100 ({found} in all)", times)


def step_writes():
    iam, eks = client("iam"), client("eks")
    account = client("sts").get_caller_identity()["Account"]
    run = uuid.uuid4().hex[:8]
    tags = []
    for j in range(args.writes):
        _, ms = timed(
            lambda: iam.tag_role(
                RoleName=f"role-{(j * 7919) % args.n}", Tags=[{"Key": "write", "Value": run}]
            )
        )
        tags.append(ms)
    report("TagRole", tags)
    created, ids = [], []
    for j in range(args.writes):
        answer, ms = timed(
            lambda: eks.create_pod_identity_association(
                clusterName=f"c{j % args.clusters}",
                namespace=f"writes-{run}",
                serviceAccount=f"w-{j}",
                roleArn=f"arn:aws:iam::{account}:role/role-{j % args.n}",
            )
        )
        created.append(ms)
        ids.append((f"c{j % args.clusters}", answer["association"]["associationId"]))
    report("CreatePodIdentityAssociation", created)
    deleted = []
    for cluster, id_ in ids:
        _, ms = timed(
            lambda: eks.delete_pod_identity_association(clusterName=cluster, associationId=id_)
        )
        deleted.append(ms)
    report("DeletePodIdentityAssociation", deleted)


def step_catch_up():
    replica = args.target
    run = uuid.uuid4().hex[:8]
    count = args.catch_up_writes
    roles = [f"role-{(j * 7919) % args.n}" for j in range(count)]
    started = time.monotonic()

    def write(j):
        client("iam").tag_role(RoleName=roles[j], Tags=[{"Key": f"catch-up-{j % 10}", "Value": run}])

    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(write, range(count)))
    wrote = time.monotonic() - started
    marker = uuid.uuid4().hex
    client("iam").tag_role(RoleName="role-0", Tags=[{"Key": "marker", "Value": marker}])
    acknowledged = time.monotonic()
    on_replica = client("iam", replica)
    while True:
        tags = on_replica.list_role_tags(RoleName="role-0")["Tags"]
        if {"Key": "marker", "Value": marker} in tags:
            break
        if time.monotonic() - acknowledged > 30:
            sys.exit("the replica did not serve the marker within 30 s")
        time.sleep(0.001)
    caught_up = (time.monotonic() - acknowledged) * 1000
    for j in random.Random(7).sample(range(count), min(300, count)):
        tags = on_replica.list_role_tags(RoleName=roles[j])["Tags"]
        if {"Key": f"catch-up-{j % 10}", "Value": run} not in tags:
            sys.exit(f"the replica does not serve write {j} ({roles[j]})")
    print(
        f"{count} TagRole writes in {wrote:.1f} s ({count / wrote:.0f}/s, {args.threads} threads); "
        f"the replica served the marker written after them {caught_up:.1f} ms after it was "
        f"acknowledged, and a sample of 300 of the writes",
        flush=True,
    )


{
    "requests": step_requests,
    "paging": step_paging,
    "writes": step_writes,
    "catch-up": step_catch_up,
}[args.step]()
