"""What the gateway test scripts share: their arguments, reading the upstream's and the
gateway's logs as they grow, and raw SigV4-signed requests on one kept-alive connection (so the
exact headers, duplicates included, query string and body bytes are under control)."""

import argparse
import http.client
import json
import os
import urllib.parse

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest

REGION = "us-east-1"
PREFIX = "DynamoDB_20120810."
JSON10 = "application/x-amz-json-1.0"


def arguments():
    """The arguments every gateway script takes (see tests/gateway_upstreams.rs)."""
    p = argparse.ArgumentParser()
    p.add_argument("--gateway", required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--upstream-log", required=True)
    p.add_argument("--audit-log", required=True)
    p.add_argument("--upstream-kind", required=True, choices=["moto", "dynalite"])
    return p


class Tail:
    """The complete lines appended to a file since the last read."""

    def __init__(self, path):
        self.path = path
        self.partial = b""
        try:
            self.offset = os.path.getsize(path)
        except FileNotFoundError:
            self.offset = 0

    def read(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self.partial + data
        *lines, self.partial = data.split(b"\n")
        return [line for line in lines if line.strip()]


def audit_event(line):
    """The audit object of a gateway log line (target `audit`), or None."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("target") != "audit":
        return None
    fields = record.get("fields") if isinstance(record.get("fields"), dict) else {}
    message = fields.get("message", record.get("message"))
    if isinstance(message, str):
        try:
            message = json.loads(message)
        except ValueError:
            return None
    return message if isinstance(message, dict) else None


class Raw:
    """One kept-alive HTTP connection to the gateway, sending exactly what it is given."""

    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        self.url = url.rstrip("/")
        self.netloc = parts.netloc
        self.host = parts.hostname
        self.port = parts.port
        self.conn = None
        self.reconnects = 0

    def exchange(self, method, path, headers, body):
        """Sends one request; returns (status, response headers, response body)."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                self.reconnects += 1
            try:
                self.conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    self.conn.putheader(name, value)
                self.conn.endheaders(body)
                response = self.conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.conn.close()
                    self.conn = None
                return response.status, response.getheaders(), data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # The gateway closed the kept-alive connection (after a refusal whose body it
                # did not read): nothing was processed; send again on a new connection.
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def sign(self, creds, method, path, headers, body, presign=False, length=True):
        """Signs (method, gateway URL + path, headers in order, body) with `creds`; returns the
        request target (path and query) and the headers to send."""
        request = AWSRequest(method=method, url=self.url + path, data=body)
        request.headers["Host"] = self.netloc
        for name, value in headers:
            request.headers[name] = value  # HTTPHeaders appends: duplicates are kept and signed
        if presign:
            SigV4QueryAuth(creds, "dynamodb", REGION, expires=300).add_auth(request)
        else:
            SigV4Auth(creds, "dynamodb", REGION).add_auth(request)
        # The request target exactly as given (a bare "?" included), plus what a presigning
        # signer appended.
        assert request.url.startswith(self.url)
        target = request.url[len(self.url):]
        sent = list(request.headers.items())
        if length:
            sent.append(("Content-Length", str(len(body))))
        return target, sent
