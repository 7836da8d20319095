"""Mints N projected service-account tokens (one pod each) with PyJWT, exactly in
kube-apiserver's claim format, for the agent benchmark's many-pods case.

Usage: mint_tokens.py KEY_PEM KID ISSUER N OUT
"""

import sys
import time
import uuid

import jwt

key_file, kid, issuer, count, out = sys.argv[1:6]
key = open(key_file).read()
now = int(time.time())
with open(out, "w") as f:
    for i in range(int(count)):
        pod = f"carts-{i:05d}"
        claims = {
            "aud": ["pods.eks.amazonaws.com"],
            "exp": now + 3600,
            "iat": now,
            "nbf": now,
            "iss": issuer,
            "jti": str(uuid.uuid4()),
            "sub": "system:serviceaccount:carts:carts",
            "kubernetes.io": {
                "namespace": "carts",
                "serviceaccount": {"name": "carts", "uid": "0e8f3c9e-2b7d-4c1a-9f0e-5d6c7b8a9e01"},
                "pod": {"name": pod, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, pod))},
            },
        }
        f.write(jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid}) + "\n")
