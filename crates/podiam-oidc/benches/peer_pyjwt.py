"""Peer for benches/tokens.rs: PyJWT (with the cryptography package) verifying the same kind of
token: an RS256 Kubernetes service-account token, signature, issuer, audience and expiry checked.

Usage: peer_pyjwt.py TOKEN_FILE JWKS_FILE ISSUER NOW
Prints {"pyjwt_rs256_token_verify": {"ns_per_op": float}}.
"""

import json
import pathlib
import sys
import timeit

import jwt
from jwt.algorithms import RSAAlgorithm


def per_op(fn):
    number = 1
    while timeit.timeit(fn, number=number) < 0.2:
        number *= 2
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e9


def main():
    token = pathlib.Path(sys.argv[1]).read_text().strip()
    jwks = json.loads(pathlib.Path(sys.argv[2]).read_text())
    jwks = jwks.get("jwks", jwks)
    issuer, now = sys.argv[3], int(sys.argv[4])
    key = RSAAlgorithm.from_jwk(json.dumps(jwks["keys"][0]))

    def verify():
        return jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience="sts.amazonaws.com",
            issuer=issuer,
            leeway=60,
            options={"verify_iat": False},
        )

    import unittest.mock as mock

    with mock.patch("jwt.api_jwt.datetime") as fake:
        import datetime

        fixed = datetime.datetime.fromtimestamp(now, tz=datetime.timezone.utc)
        fake.now.return_value = fixed
        fake.timezone = datetime.timezone
        fake.timedelta = datetime.timedelta
        verify()
        result = {"pyjwt_rs256_token_verify": {"ns_per_op": round(per_op(verify), 1)}}
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
