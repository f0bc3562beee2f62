#!/usr/bin/env python3
"""Demo upstream: answers 200 with a JSON echo of what it received.

A form body carrying DemoFail=1, or any request with the header `x-demo-fail: 1`, gets a
500 instead, so anyone can watch a failed delivery and the provider's retry go through; DemoDelayMs=N makes the answer take N milliseconds
(at most 5000), to watch a repeat arrive while the first delivery is still in flight. Every request is also recorded (one JSON object per
line) to the file named by --record, so tests can prove what did and did not reach the
application.

With --certificates DIR it also serves, on --certificates-port (plain HTTP, or HTTPS with
--certificates-tls CERT KEY), GET /<name>.pem and /v1/notifications/certs/<name> from the
files in DIR, and GET /oauth2/v3/certs from DIR/jwks.json: the demo's stand-in for SNS's and
PayPal's certificate hosts and Google's token keys, reached only through Envoy's
sns_certificates, paypal_certificates and google_jwks clusters, and answers SNS's
GET /?Action=ConfirmSubscription&... as SNS does. Each fetch is recorded to
<record>.certificates.
"""
import argparse
import base64
import json
import re
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without this, Nagle and delayed ACKs add 40 ms.
    disable_nagle_algorithm = True
    record_lock = threading.Lock()
    record_path = None
    active = 0

    def handle_any(self):
        with self.record_lock:
            Echo.active += 1
            self.write_active()
        try:
            self.echo()
        finally:
            with self.record_lock:
                Echo.active -= 1
                self.write_active()

    def write_active(self):
        """With --record, the number of requests being read or answered right now, in
        <record>.active: a test waits for 0 before it concludes nothing more will arrive."""
        if self.record_path:
            with open(self.record_path + ".active", "w", encoding="utf-8") as f:
                f.write(str(Echo.active))

    def echo(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            body = self.read_chunked()
        seen = {
            "method": self.command,
            "path": self.path,
            "headers": [[k.lower(), v] for k, v in self.headers.items()],
            "body": body.decode("utf-8", "replace"),
            "body_b64": base64.b64encode(body).decode(),
            # The connection ended before the declared body did (a reset from the proxy).
            "truncated": len(body) < length,
        }
        if self.record_path:
            with self.record_lock, open(self.record_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(seen) + "\n")
        reply = json.dumps(seen, indent=2).encode()
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        delay = form.get("DemoDelayMs", ["0"])[0]
        if delay.isdigit():
            time.sleep(min(int(delay), 5000) / 1000)
        fail = form.get("DemoFail") == ["1"] or self.headers.get("x-demo-fail") == "1"
        self.send_response(500 if fail else 200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def read_chunked(self):
        body = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return body
            body += self.rfile.read(size)
            self.rfile.readline()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

    def log_message(self, fmt, *args):
        pass


class Certificates(BaseHTTPRequestHandler):
    """GET /<name>.pem (SNS's) or /v1/notifications/certs/CERT-... (PayPal's): the file of
    that name in `directory`; /oauth2/v3/certs (Google's JWKS): its jwks.json; else 404."""

    protocol_version = "HTTP/1.1"
    directory = None
    record_path = None
    record_lock = threading.Lock()

    def do_GET(self):
        if self.record_path:
            seen = {"path": self.path, "host": self.headers.get("host")}
            with self.record_lock, open(self.record_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(seen) + "\n")
        if self.path.startswith("/?Action=ConfirmSubscription&"):
            return self.confirm()
        if self.path == "/oauth2/v3/certs":  # Google's token-signing keys
            file, kind = Path(self.directory) / "jwks.json", "application/json"
        else:
            named = re.fullmatch(r"/([A-Za-z0-9_-]+\.pem)|/v1/notifications/certs/(CERT-[0-9a-f-]+)", self.path)
            file, kind = (Path(self.directory) / (named[1] or named[2]) if named else None), "application/x-pem-file"
        found = file is not None and file.is_file()
        body = file.read_bytes() if found else b"no such certificate\n"
        self.send_response(200 if found else 404)
        self.send_header("content-type", kind if found else "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def confirm(self):
        """SNS's answer to a subscription's confirmation; 403, as SNS answers an expired
        token, while a file `refuse-confirmations` is in the directory."""
        refused = (Path(self.directory) / "refuse-confirmations").exists()
        body = (b"<ErrorResponse><Error><Code>AuthorizationError</Code></Error></ErrorResponse>" if refused else
                b"<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>confirmed"
                b"</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>")
        self.send_response(403 if refused else 200)
        self.send_header("content-type", "text/xml")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


def serve_certificates(args):
    Certificates.directory = args.certificates
    Certificates.record_path = args.record and args.record + ".certificates"
    server = ThreadingHTTPServer(("127.0.0.1", args.certificates_port), Certificates)
    server.daemon_threads = True
    if args.certificates_tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.certificates_tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--record", help="append each request as a JSON line to this file")
    parser.add_argument("--certificates", help="serve the .pem files in this directory")
    parser.add_argument("--certificates-port", type=int, default=8082)
    parser.add_argument("--certificates-tls", nargs=2, metavar=("CERT", "KEY"),
                        help="serve them over HTTPS with this certificate")
    args = parser.parse_args()
    Echo.record_path = args.record
    if args.certificates:
        serve_certificates(args)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Echo)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
