"""A kube-apiserver's OIDC endpoints, for `publish-issuer --apiserver` tests.

Usage: apiserver_oidc.py DIR CERT KEY TOKEN

Serves DIR/.well-known/openid-configuration and DIR/openid/v1/jwks (as `podiam token
discovery --out-dir DIR` writes them) over HTTPS on 127.0.0.1 at a free port, to requests
that carry `Authorization: Bearer TOKEN`; others get 401, as an apiserver gives anonymous
callers when the issuer-discovery role is not bound to them. Prints its URL when ready.
"""

import http.server
import os
import ssl
import sys

directory, cert, key, token = sys.argv[1:]
PATHS = {"/.well-known/openid-configuration", "/openid/v1/jwks"}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Authorization") != f"Bearer {token}":
            self.send_error(401, "Unauthorized")
            return
        if self.path not in PATHS:
            self.send_error(404, "Not Found")
            return
        with open(os.path.join(directory, self.path.lstrip("/")), "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print(f"serving https://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
