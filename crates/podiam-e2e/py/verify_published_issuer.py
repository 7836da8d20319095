"""Verifies tokens as AWS STS would against an issuer published to S3 (moto here).

Usage: verify_published_issuer.py S3_ENDPOINT BUCKET PREFIX TOKEN...

Reads PREFIX/.well-known/openid-configuration and the JWKS its jwks_uri names from the
bucket, then checks each token with PyJWT: RS256, the key picked by kid, the published
issuer, audience sts.amazonaws.com. Prints the JWKS's kids and each token's sub.
"""

import json
import sys

import boto3
import jwt

endpoint, bucket, prefix, *tokens = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint)


def read(key):
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


discovery = read(f"{prefix}/.well-known/openid-configuration")
issuer = discovery["issuer"]
assert discovery["jwks_uri"].startswith(issuer + "/"), discovery
jwks = read(prefix + "/" + discovery["jwks_uri"][len(issuer) + 1 :])
keys = {k["kid"]: jwt.PyJWK(k, algorithm="RS256") for k in jwks["keys"]}
print("kids", " ".join(sorted(keys)))
for token in tokens:
    kid = jwt.get_unverified_header(token)["kid"]
    claims = jwt.decode(
        token,
        key=keys[kid],
        algorithms=["RS256"],
        audience="sts.amazonaws.com",
        issuer=issuer,
    )
    print("verified", claims["sub"], kid)
