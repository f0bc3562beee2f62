"""The usual alternative to callback-guard: verification inside a small Python web app,
the way the Vobiz docs show it (hmac.new + hmac.compare_digest), run by gunicorn."""
import base64
import hashlib
import hmac
import os

TOKEN = os.environ["VOBIZ_AUTH_TOKEN"].encode()
SECRET = os.environ["VOBIZ_WHATSAPP_SECRET"].encode()
ORIGIN = os.environ["PUBLIC_ORIGIN"]


def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    path = environ["PATH_INFO"]
    if path.startswith("/whatsapp/"):
        expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(expected, environ.get("HTTP_X_WEBHOOK_SIGNATURE", ""))
    else:
        nonce = environ.get("HTTP_X_VOBIZ_SIGNATURE_V3_NONCE", "")
        message = f"{ORIGIN}{path}.{nonce}".encode()
        expected = base64.b64encode(hmac.new(TOKEN, message, hashlib.sha256).digest()).decode()
        ok = hmac.compare_digest(expected, environ.get("HTTP_X_VOBIZ_SIGNATURE_V3", ""))
    status = "200 OK" if ok else "403 Forbidden"
    start_response(status, [("content-type", "text/plain"), ("content-length", "2")])
    return [b"ok"]
