"""The peer measurement for benches/evaluate.rs: moto's IAM policy evaluation on the same
documents and requests, timed in the same run (see scripts/bench). moto is the tool people use
today to fake IAM; its evaluator (moto.iam.access_control.IAMPolicy) checks actions,
resources, AWS principals and StringEquals conditions and treats every other condition
operator as satisfied.

Prints one JSON object: {case: {"ns_per_op": float, "result": str}}.
"""

import json
import pathlib
import sys
import timeit

from moto.iam.access_control import IAMPolicy
from moto.iam.policy_validation import IAMPolicyDocumentValidator

DATA = pathlib.Path(__file__).parent / "data"
ISSUER = "oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C"


def per_op(fn, target_seconds=2.0):
    """Nanoseconds per call: calibrate, then take the best of five runs."""
    number = 1
    while timeit.timeit(fn, number=number) < 0.2:
        number *= 2
    number = max(1, int(number * target_seconds / 5 / 0.2))
    best = min(timeit.repeat(fn, number=number, repeat=5))
    return best / number * 1e9


def main():
    trust = IAMPolicy((DATA / "trust-2-conditions.json").read_text())
    context = {
        f"{ISSUER}:sub": "system:serviceaccount:carts:carts",
        f"{ISSUER}:aud": "sts.amazonaws.com",
    }
    identity = IAMPolicy((DATA / "identity-10-statements.json").read_text())
    table = "arn:aws:dynamodb:eu-central-1:637423329338:table/eks-workshop-carts"
    two_kb = (DATA / "2kb.json").read_text()

    cases = {
        "trust_policy_2_conditions": lambda: trust.is_action_permitted(
            "sts:AssumeRoleWithWebIdentity", "*", None, context
        ),
        "identity_policy_10_statements": lambda: identity.is_action_permitted(
            "dynamodb:PutItem", table
        ),
        "parse_2kb_policy": lambda: IAMPolicy(two_kb),
        "validate_2kb_policy": lambda: IAMPolicyDocumentValidator(two_kb).validate(),
    }
    out = {}
    for name, fn in cases.items():
        result = fn()
        out[name] = {
            "ns_per_op": round(per_op(fn), 1),
            "result": getattr(result, "name", type(result).__name__),
        }
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
