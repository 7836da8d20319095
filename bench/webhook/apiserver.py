"""A Kubernetes API server's ServiceAccount endpoints, enough for the webhook's watch cache:
LIST (metadata-only) of COUNT accounts (carts/carts annotated for IRSA, orders/orders plain);
a WATCH that stays open without events; 404 for a GET. Usage: apiserver.py PORT COUNT"""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PORT, COUNT = int(sys.argv[1]), int(sys.argv[2])
ROLE = "eks.amazonaws.com/role-arn"


def account(namespace, name, annotations):
    return {
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "resourceVersion": "1",
            "annotations": annotations,
        },
    }


ITEMS = [
    account("carts", "carts", {ROLE: "arn:aws:iam::000000000000:role/carts-irsa"}),
    account("orders", "orders", {}),
]
ITEMS += [account(f"team-{i % 50}", f"app-{i}", {"team": str(i)}) for i in range(COUNT - 2)]
LIST = json.dumps(
    {
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadataList",
        "metadata": {"resourceVersion": "1"},
        "items": ITEMS,
    }
).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if url.path == "/api/v1/serviceaccounts" and query.get("watch") == ["true"]:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.flush()
            time.sleep(3600)
            return
        if url.path == "/api/v1/serviceaccounts":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(LIST)))
            self.end_headers()
            self.wfile.write(LIST)
            return
        body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
