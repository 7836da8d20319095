"""The peer measurement for benches/who.rs: what "who can dynamodb:PutItem on the carts table"
costs with moto's IAM policy evaluator (moto.iam.access_control.IAMPolicy), over the same
10,000 roles and 10,000 associations, in the same run (see scripts/bench). Nothing else answers
the question for Kubernetes workloads, so the peer is the loop a user would write with moto:
parse each role's trust and permission documents, ask the trust (EKS Pod Identity's
sts:AssumeRole and sts:TagSession for each association; IRSA's
sts:AssumeRoleWithWebIdentity with the trust's sub and aud), then ask the permissions.

Prints one JSON object: {"who_10k_roles_10k_associations": {"ms": float, "allowed": int}}.
"""

import json
import sys
import time

from moto.iam.access_control import IAMPolicy

ACCOUNT = "111122223333"
ISSUER = "oidc.example.com/id/big"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}"
PIA_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]})
CARTS = f"arn:aws:dynamodb:us-west-2:{ACCOUNT}:table/carts"


def allow(action, resource):
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]})


def irsa_trust(subject):
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Federated": PROVIDER}, "Action": "sts:AssumeRoleWithWebIdentity", "Condition": {"StringEquals": {f"{ISSUER}:sub": subject, f"{ISSUER}:aud": "sts.amazonaws.com"}}}]})


def world():
    """The benchmark's state: as benches/who.rs builds it."""
    roles, associations = {}, []
    for i in range(5000):
        table = "carts" if i % 10 == 0 else f"t{i}"
        resource = f"arn:aws:dynamodb:us-west-2:{ACCOUNT}:table/{table}"
        roles[f"pia-{i}"] = (PIA_TRUST, allow("dynamodb:PutItem", resource))
        roles[f"irsa-{i}"] = (irsa_trust(f"system:serviceaccount:irsa-{i}:app"), allow("dynamodb:*", resource))
        associations.append((f"ns-{i}", "app", f"pia-{i}"))
        associations.append((f"ns-{i}", "worker", f"pia-{i}"))
    return roles, associations


def who(roles, associations):
    allowed = 0
    parsed = {name: (IAMPolicy(trust), IAMPolicy(permissions)) for name, (trust, permissions) in roles.items()}
    for _ns, _sa, role in associations:
        trust, permissions = parsed[role]
        if all(trust.is_action_permitted(a, f"arn:aws:iam::{ACCOUNT}:role/{role}").name == "PERMITTED" for a in ("sts:AssumeRole", "sts:TagSession")):
            if permissions.is_action_permitted("dynamodb:PutItem", CARTS).name == "PERMITTED":
                allowed += 1
    for name, (trust, permissions) in parsed.items():
        if not name.startswith("irsa-"):
            continue
        i = name.split("-", 1)[1]
        context = {f"{ISSUER}:sub": f"system:serviceaccount:irsa-{i}:app", f"{ISSUER}:aud": "sts.amazonaws.com"}
        if trust.is_action_permitted("sts:AssumeRoleWithWebIdentity", "*", None, context).name == "PERMITTED":
            if permissions.is_action_permitted("dynamodb:PutItem", CARTS).name == "PERMITTED":
                allowed += 1
    return allowed


def main():
    roles, associations = world()
    best, allowed = None, 0
    for _ in range(3):
        started = time.perf_counter()
        allowed = who(roles, associations)
        elapsed = (time.perf_counter() - started) * 1000
        best = elapsed if best is None else min(best, elapsed)
    json.dump({"who_10k_roles_10k_associations": {"ms": round(best, 1), "allowed": allowed}}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
