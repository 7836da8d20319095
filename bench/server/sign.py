"""Signs one awsQuery POST as botocore does and prints the headers wrk must send.

Usage: sign.py ENDPOINT SERVICE BODY_FILE [PATH [CONTENT_TYPE]]
(credentials from the usual AWS environment)
The signature stays valid for the server's 15-minute clock-skew window.
"""

import sys

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

endpoint, service, body_file = sys.argv[1:4]
path = sys.argv[4] if len(sys.argv) > 4 else "/"
content_type = sys.argv[5] if len(sys.argv) > 5 else "application/x-www-form-urlencoded; charset=utf-8"
body = open(body_file, "rb").read()
creds = botocore.session.get_session().get_credentials()
request = AWSRequest(
    method="POST",
    url=endpoint + path,
    data=body,
    headers={"Content-Type": content_type},
)
SigV4Auth(creds, service, "us-east-1").add_auth(request)
for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
    if name in request.headers:
        print(f"{name}: {request.headers[name]}")
