"""No spelling of a protected path reaches the application unverified.

Every way servers read a path differently (escaped slashes and backslashes, `;` parameters,
dot segments, repeated slashes, double encoding, letter case, IIS escapes, Unicode look-alikes,
trailing dots, control characters) and a host differently (case, trailing dot, port,
X-Forwarded-Host, Forwarded), sent over raw HTTP/1.1 and HTTP/2 exactly as written, on every
route of the shipped configuration, twice: through the shipped envoy/envoy.yaml, and through
a bare Envoy with none of Envoy's path or host options, where the filter alone stands. Then
a real application server (Flask on gunicorn) behind Envoy: the spellings it would route to
a protected handler never reach that handler.
"""
import json
import os
import socket
import subprocess
import sys

import pytest
import yaml

from harness import (FORM_TYPE, ROOT, Envoy, free_port, fresh_nonce, kyc_headers, port_open,
                     shipped_plugin_config, vobiz_headers, wait_for, whatsapp_body,
                     whatsapp_headers)
from raw import PROTOCOLS, as_bytes, assert_never_delivered, seen_by_upstream, send

# Envoy's path and host options, as the shipped configuration sets them; the bare Envoy has
# none of them (and Envoy's defaults: no normalisation, escaped slashes kept, underscores
# allowed).
ENVOY_PATH_OPTIONS = ("normalize_path", "merge_slashes", "path_with_escaped_slashes_action",
                      "strip_trailing_host_dot", "strip_matching_host_port",
                      "common_http_protocol_options")
BARE = {option: None for option in ENVOY_PATH_OPTIONS}
CONFIGS = ["shipped", "bare"]
TAIL = "hangup"
LOOK_ALIKES = {"i": "\u0131", "s": "\u017f", "k": "\u212a"}


def spellings(prefix):
    """(class, path) for every class of non-canonical spelling of `prefix + TAIL`."""
    stem, name = prefix.rstrip("/"), prefix.strip("/")
    letter = next((c for c in name if c in LOOK_ALIKES), name[0])
    # ı ſ K where the name has i, s or k; else the fullwidth form of its first letter.
    look_alike = name.replace(letter, LOOK_ALIKES.get(letter, chr(ord(letter) + 0xFEE0)), 1)
    encoded_look_alike = "".join(f"%{b:02X}" for b in look_alike.encode())
    return [
        ("encoded slash", f"{stem}%2F{TAIL}"),
        ("encoded slash, lowercase", f"{stem}%2f{TAIL}"),
        ("encoded backslash", f"{stem}%5C{TAIL}"),
        ("backslash", f"{stem}\\{TAIL}"),
        ("path parameter", f"{stem};jsessionid=1/{TAIL}"),
        ("encoded path parameter", f"{stem}%3Bx/{TAIL}"),
        ("parameter on a dot segment", f"/x/..;{prefix}{TAIL}"),
        ("dot segment", f"/x/..{prefix}{TAIL}"),
        ("current-directory segment", f"/.{prefix}{TAIL}"),
        ("encoded dot segment", f"/x/%2e%2e{prefix}{TAIL}"),
        ("dot segment inside", f"{prefix}x/../{TAIL}"),
        ("leading repeated slash", f"/{prefix}{TAIL}"),
        ("repeated slash inside", f"{prefix}/{TAIL}"),
        ("double encoding", f"{stem}%252F{TAIL}"),
        ("letter case", f"{prefix.upper()}{TAIL}"),
        ("encoded letter", f"/%{ord(name[0]):02x}{name[1:]}/{TAIL}"),
        ("IIS %u escape", f"{stem}%u002f{TAIL}"),
        ("Unicode look-alike, encoded", f"/{encoded_look_alike}/{TAIL}"),
        ("Unicode look-alike, raw UTF-8", f"/{look_alike}/{TAIL}"),
        ("fullwidth solidus", f"{stem}%EF%BC%8F{TAIL}"),
        ("overlong UTF-8 slash", f"{stem}%C0%AF{TAIL}"),
        ("trailing dot", f"{stem}./{TAIL}"),
        ("trailing space", f"{stem}%20/{TAIL}"),
        ("tab", f"{stem}%09/{TAIL}"),
        ("NUL", f"{stem}%00/{TAIL}"),
    ]


def routes():
    return shipped_plugin_config()["routes"]


def test_every_class_is_spelled_for_every_shipped_route():
    classes = {what for what, _ in spellings("/vobiz/")}
    assert len(classes) == 25
    for route in routes():
        paths = [path for _, path in spellings(route["path_prefix"])]
        assert len(set(paths)) == len(paths), route["name"]
        assert all(not path.startswith(route["path_prefix"] + TAIL) for path in paths)


@pytest.fixture(scope="module")
def proxies(workdir, upstream, cert):
    """The shipped configuration and the bare one, both with the shipped routes."""
    started = {"shipped": Envoy(workdir, upstream, cert, shipped_plugin_config()),
               "bare": Envoy(workdir, upstream, cert, shipped_plugin_config(), hcm=BARE)}
    yield started
    for proxy in started.values():
        proxy.stop()


def test_the_bare_envoy_has_none_of_envoys_path_options(proxies):
    bare = yaml.safe_load(proxies["bare"].config_path.read_text())
    shipped = yaml.safe_load(proxies["shipped"].config_path.read_text())
    for config, expected in ((bare, False), (shipped, True)):
        for listener in config["static_resources"]["listeners"]:
            manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
            present = [option for option in ENVOY_PATH_OPTIONS if option in manager]
            assert present == (list(ENVOY_PATH_OPTIONS) if expected else []), present


def refusals(answers):
    """The (class, path, answer) that were not refused: a 4xx from Envoy or the filter, or,
    over HTTP/2, a reset of a header block Envoy will not decode."""
    return [(what, path, answer) for what, path, answer in answers
            if not (answer.status is None and answer.reset)
            and not (answer.status is not None and 400 <= answer.status < 500)]


def noncanonical_count(proxy):
    return sum(proxy.stat(f"wasmcustom.callback_guard.rejected.route.{r['name']}.reason.noncanonical_path") or 0
               for r in routes())


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("config", CONFIGS)
def test_no_spelling_of_a_protected_path_reaches_the_upstream(proxies, upstream, config, protocol):
    proxy = proxies[config]
    before = noncanonical_count(proxy)
    answers, test_ids, by_filter = [], [], 0
    for route in routes():
        for what, path in spellings(route["path_prefix"]):
            test_id = f"paths-{config}-{protocol}-{route['name']}-{what}"
            test_ids.append(test_id)
            answer = send(proxy, protocol, path.encode(), [("x-test-id", test_id)], b"x=1")
            answers.append((what, path, answer))
            if answer.from_filter:
                by_filter += 1
                if config == "bare":
                    # Without Envoy's options the filter itself saw every spelling.
                    assert answer.reason == "noncanonical_path", (what, path, answer)
    assert refusals(answers) == []
    # Every request was answered by Envoy or the filter; one forwarded would have been
    # recorded before its answer came back.
    assert_never_delivered(upstream, *test_ids)
    if config == "bare":
        assert by_filter >= 20 * len(routes()), by_filter
        assert noncanonical_count(proxy) - before == by_filter


@pytest.mark.parametrize("config", CONFIGS)
def test_a_genuinely_signed_callback_never_reaches_the_application_under_another_spelling(
        proxies, upstream, config):
    """Body signatures do not cover the path: a genuine WhatsApp or KYC event (and a voice
    callback signed for its canonical path) sent to another spelling is refused, or, where
    Envoy's own normalisation rewrote the spelling, delivered under the canonical path only."""
    proxy = proxies[config]
    sent = []
    for route in routes():
        prefix = route["path_prefix"]
        for what, path in spellings(prefix):
            test_id = f"signed-{config}-{route['name']}-{what}"
            if route.get("scheme") == "vobiz_whatsapp":
                body = whatsapp_body()
                headers = whatsapp_headers(body)
            elif route.get("scheme") == "vobiz_kyc":
                body = json.dumps({"event": "kyc.completed", "id": test_id}).encode()
                headers = kyc_headers(body)
            else:
                body = b"CallUUID=1&Event=Hangup"
                headers = [FORM_TYPE,
                           *vobiz_headers(prefix + TAIL, nonce_v3=fresh_nonce()).items()]
            answer = send(proxy, "http1", path.encode(), [*headers, ("x-test-id", test_id)], body)
            sent.append((what, path, test_id, answer, prefix + TAIL))
    seen = seen_by_upstream(upstream)
    for what, path, test_id, answer, canonical in sent:
        records = seen.get(test_id, [])
        if config == "bare":
            assert answer.reason == "noncanonical_path" or not answer.from_filter, (what, answer)
            assert records == [], (what, path)
        else:
            assert all(record["path"] == canonical for record in records), (what, path, records)


HOST = "callbacks.example.com"


@pytest.fixture(scope="module")
def host_proxies(workdir, upstream, cert):
    plugin = shipped_plugin_config()
    for route in plugin["routes"]:
        route["host"] = HOST
    started = {"shipped": Envoy(workdir, upstream, cert, plugin),
               "bare": Envoy(workdir, upstream, cert, plugin, hcm=BARE)}
    yield started
    for proxy in started.values():
        proxy.stop()


HOST_SPELLINGS = [
    ("letter case", "CALLBACKS.Example.COM", []),
    ("trailing dot", f"{HOST}.", []),
    ("port", f"{HOST}:8443", []),
    ("other port", f"{HOST}:1", []),
    ("trailing dot and port", f"{HOST}.:443", []),
    ("X-Forwarded-Host", "other.example", [("X-Forwarded-Host", HOST)]),
    ("X-Forwarded-Host list", "other.example", [("X-Forwarded-Host", f"a.example, {HOST.upper()}")]),
    ("Forwarded", "other.example", [("Forwarded", f'for=192.0.2.1;host="{HOST}"')]),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("config", CONFIGS)
def test_every_spelling_of_a_protected_host_is_protected(host_proxies, upstream, config, protocol):
    proxy = host_proxies[config]
    test_ids, answers = [], []
    for route in routes():
        for what, host, extra in HOST_SPELLINGS:
            test_id = f"host-{config}-{protocol}-{route['name']}-{what}"
            test_ids.append(test_id)
            answer = send(proxy, protocol, (route["path_prefix"] + TAIL).encode(),
                          [*extra, ("x-test-id", test_id)], b"x=1", host=host.encode())
            answers.append((what, host, answer))
    assert refusals(answers) == []
    # Every request was answered by Envoy or the filter; one forwarded would have been
    # recorded before its answer came back.
    assert_never_delivered(upstream, *test_ids)
    # Other hosts are not protected: the restriction is real, so the refusals above mean
    # something.
    test_id = f"host-{config}-{protocol}-control"
    answer = send(proxy, protocol, b"/vobiz/hangup", [("x-test-id", test_id)], b"x=1",
                  host=b"other.example")
    assert answer.status == 200, answer
    assert len(seen_by_upstream(upstream)[test_id]) == 1


# ---------------------------------------------------------------------------------------
# A real application server behind Envoy: Flask on gunicorn.

FLASK_APP = ROOT / "tests/e2e/apps/callbacks_app.py"


class Gunicorn:
    """tests/e2e/apps/callbacks_app.py on gunicorn (one sync worker): a Flask app with a
    handler under each shipped route's prefix, recording which handler ran for each
    x-test-id."""
    certificates_port = None  # no SNS certificates: the sns route's fetch finds nothing

    def __init__(self, workdir):
        self.port = free_port()
        self.record = workdir / f"flask-{self.port}.jsonl"
        self.record.touch()
        env = dict(os.environ, CALLBACKS_RECORD=str(self.record),
                   CALLBACKS_PREFIXES=",".join(r["path_prefix"] for r in routes()))
        self.log = open(workdir / f"gunicorn-{self.port}.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{self.port}",
             "--chdir", str(FLASK_APP.parent), "callbacks_app:app"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait_for(self.listening, what="gunicorn")

    def listening(self):
        assert self.proc.poll() is None, "gunicorn exited"
        return port_open(self.port)

    def handled(self):
        """x-test-id -> the handler that ran for it."""
        lines = self.record.read_text().splitlines()
        return {entry["test_id"]: entry["handler"] for entry in map(json.loads, lines)}

    def send_direct(self, path, test_id):
        """One raw HTTP/1.1 request straight to gunicorn, the request line as given."""
        head = (b"POST " + as_bytes(path) + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Length: 3\r\nConnection: close\r\nx-test-id: " + test_id.encode()
                + b"\r\n\r\nx=1")
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(head)
            while s.recv(65536):
                pass

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def flask_app(workdir):
    app = Gunicorn(workdir)
    yield app
    app.stop()


def test_spellings_a_real_application_server_routes_to_a_protected_handler_never_reach_it(
        workdir, cert, flask_app):
    # What gunicorn + Flask itself routes to each protected handler, asked directly.
    protected = []
    for route in routes():
        for what, path in spellings(route["path_prefix"]):
            test_id = f"direct-{route['name']}-{what}"
            flask_app.send_direct(path.encode(), test_id)
            protected.append((route["path_prefix"], what, path, test_id))
    handled = flask_app.handled()
    reachable = [(prefix, what, path) for prefix, what, path, test_id in protected
                 if handled.get(test_id) == prefix]
    # gunicorn decodes %2F (and every escape) before Flask routes: the example.
    assert ("/vobiz/", "encoded slash", "/vobiz%2Fhangup") in reachable, reachable
    assert len(reachable) >= 3 * len(routes()), reachable

    for config in CONFIGS:
        proxy = Envoy(workdir, flask_app, cert, shipped_plugin_config(),
                      hcm=BARE if config == "bare" else None)
        try:
            for protocol in PROTOCOLS:
                for prefix, what, path in reachable:
                    test_id = f"through-{config}-{protocol}-{prefix}-{what}"
                    answer = send(proxy, protocol, path.encode(), [("x-test-id", test_id)], b"x=1")
                    assert answer.status is None or 400 <= answer.status < 500, (what, answer)
        finally:
            proxy.stop()
    handled = flask_app.handled()
    reached = {test_id: handler for test_id, handler in handled.items()
               if test_id.startswith("through-") and handler != "unprotected"}
    assert reached == {}
