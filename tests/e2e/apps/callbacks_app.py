"""A stock Flask application as the one callback-guard protects: a handler under each
protected prefix (CALLBACKS_PREFIXES, comma-separated) and one for everything else. Each
request appends {"test_id", "handler", "path"} to the file CALLBACKS_RECORD, so a test can
tell which handler Flask, behind gunicorn, routed a spelling to."""
import json
import os
import threading

from flask import Flask, request

app = Flask(__name__)
RECORD = os.environ["CALLBACKS_RECORD"]
_lock = threading.Lock()


def record(handler):
    entry = {"test_id": request.headers.get("x-test-id", ""), "handler": handler,
             "path": request.path}
    with _lock, open(RECORD, "a") as out:
        out.write(json.dumps(entry) + "\n")
    return {"handler": handler}


def protected_handler(prefix):
    def handler(rest):
        return record(prefix)
    return handler


for index, prefix in enumerate(os.environ["CALLBACKS_PREFIXES"].split(",")):
    app.add_url_rule(f"{prefix}<path:rest>", f"protected_{index}", protected_handler(prefix),
                     methods=["GET", "POST"])


@app.route("/", defaults={"rest": ""}, methods=["GET", "POST"])
@app.route("/<path:rest>", methods=["GET", "POST"])
def unprotected(rest):
    return record("unprotected")
