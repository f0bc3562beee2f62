"""Keys that rotate while Envoy runs (envoy/live-keys/): the filter's configuration comes
from a file Envoy watches (ECDS), its keys sealed with `callback-guard seal`, and each new
version is swapped in the way the kubelet updates a Secret volume, under a steady stream
of genuine callbacks. No callback is refused or lost during a swap, the replay memory
outlives both, and a version the filter refuses leaves the one before in place."""
import base64
import secrets
import threading

import httpx

from harness import (PARENT_TOKEN, TOKEN, fresh_id, fresh_nonce, seal,
                     shipped_plugin_config, vobiz_headers, wait_for)

SEALING_ENV = "CALLBACK_GUARD_SEALING_KEY"
PATH = "/vobiz/answer"
OLD, NEW = TOKEN, f"rotated-{secrets.token_hex(16)}"
# Sends per phase at least, and at most per stream: the loop is bounded by count.
PER_PHASE, LIMIT = 100, 4000
BODY = "CallUUID=live&Event=StartApp"
UPDATES = "extension_config_discovery.http_filter.callback_guard"


def sealing_key():
    return base64.b64encode(secrets.token_bytes(32)).decode()


def version(key, **keys):
    """A plugin configuration: the shipped voice route with these keys, sealed under `key`."""
    route = dict(shipped_plugin_config()["routes"][0],
                 keys=[{"name": name, "sealed": seal(secret, key)} for name, secret in keys.items()],
                 parent_keys=[{"name": "parent", "sealed": seal(PARENT_TOKEN, key)}])
    return {"sealing_key": {"env": SEALING_ENV}, "routes": [route]}


class Stream:
    """Genuine voice callbacks, one after another on one connection, each recorded with the
    phase it was sent in and the token that signed it."""

    def __init__(self, envoy, http2):
        self.envoy, self.http2 = envoy, http2
        self.sent, self.failure = [], None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self):
        try:
            with self.envoy.https_client(http2=self.http2) as client:
                for _ in range(LIMIT):
                    if self.stopping.is_set():
                        return
                    phase, token = STATE["now"]
                    headers = {"content-type": "application/x-www-form-urlencoded",
                               **vobiz_headers(PATH, token=token, nonce_v3=fresh_nonce()),
                               "x-test-id": fresh_id()}
                    response = client.post(PATH, headers=headers, content=BODY)
                    self.sent.append({"phase": phase, "token": token, "headers": headers,
                                      "status": response.status_code,
                                      "reason": response.json().get("reason")
                                      if response.status_code != 200 else None})
                raise AssertionError(f"{LIMIT} callbacks sent before the test was done")
        except BaseException as error:  # re-raised by the test
            self.failure = error


# The phase the test is in and the token the senders sign with, replaced as one value.
STATE = {"now": ("before", OLD)}


def in_phase(streams, phase):
    return [s for stream in streams for s in stream.sent if s["phase"] == phase]


def protecting_lines(envoy):
    return envoy.log_text().count(": protecting vobiz-voice=")


def again(envoy, streams, phase):
    """The first callback delivered in `phase`, sent once more: (phase, response)."""
    original = next(s for stream in streams for s in stream.sent if s["phase"] == phase)
    with envoy.https_client() as client:
        return phase, client.post(PATH, headers=original["headers"], content=BODY)


def test_keys_rotate_live_without_a_refused_or_lost_callback(start_envoy, workdir, upstream):
    key = sealing_key()
    directory = workdir / f"live-keys-{fresh_id()}"
    directory.mkdir()
    envoy = start_envoy(version(key, current=OLD), discovery=directory, env={SEALING_ENV: key})
    # Every VM that configured the first version logged it once; each later version the
    # filter accepts is logged as many times more, which is when every worker has it.
    per_version = protecting_lines(envoy)
    assert per_version >= 1
    streams = [Stream(envoy, http2=False), Stream(envoy, http2=True)]
    STATE["now"] = ("before", OLD)
    for stream in streams:
        stream.thread.start()

    def enough(phase):
        def sent():
            for stream in streams:
                if stream.failure:
                    raise stream.failure
            return len(in_phase(streams, phase)) >= PER_PHASE
        wait_for(sent, timeout=120, what=f"{PER_PHASE} callbacks in phase {phase!r}")

    def swap(plugin, phase, applied):
        """Writes the next version while the streams go on; waits until every worker has it."""
        updates = envoy.stat(f"{UPDATES}.update_success") or 0
        STATE["now"] = (phase, STATE["now"][1])
        envoy.write_discovered(plugin)
        wait_for(lambda: (envoy.stat(f"{UPDATES}.update_success") or 0) > updates,
                 timeout=60, what=f"Envoy applying {phase}")
        wait_for(lambda: protecting_lines(envoy) >= applied * per_version, timeout=60,
                 what=f"every worker configuring {phase}")

    try:
        enough("before")
        # Swap 1: the new key next to the old; the senders still sign with the old one.
        swap(version(key, next=NEW, current=OLD), "swap 1", 2)
        STATE["now"] = ("after swap 1", NEW)
        enough("after swap 1")
        # The replay memory outlived the swap: a callback delivered under the first version
        # is a duplicate under the second.
        replayed = [again(envoy, streams, "before")]
        # Swap 2: the old key removed; the senders sign with the new one throughout.
        swap(version(key, next=NEW), "swap 2", 3)
        STATE["now"] = ("after swap 2", NEW)
        enough("after swap 2")
        # A version sealed under another sealing key: the filter refuses it, Envoy keeps the
        # one before, and the stream goes on with the new key.
        rejected = envoy.stat(f"{UPDATES}.update_rejected") or 0
        STATE["now"] = ("refused update", NEW)
        envoy.write_discovered(version(sealing_key(), next=NEW))
        wait_for(lambda: (envoy.stat(f"{UPDATES}.update_rejected") or 0) > rejected,
                 timeout=60, what="Envoy rejecting the update")
        enough("refused update")
        # ... and the second swap and the refused update.
        replayed.append(again(envoy, streams, "after swap 1"))
    finally:
        for stream in streams:
            stream.stopping.set()
        for stream in streams:
            stream.thread.join(timeout=60)
    for stream in streams:
        if stream.failure:
            raise stream.failure

    sent = [s for stream in streams for s in stream.sent]
    wait_for(envoy.quiet, what="Envoy quiet")
    delivered = {}
    for record in upstream.records():
        for name, value in record["headers"]:
            if name == "x-test-id" and not record["truncated"]:
                delivered[value] = delivered.get(value, 0) + 1
    for phase in ["before", "swap 1", "after swap 1", "swap 2", "after swap 2", "refused update"]:
        these = in_phase(streams, phase)
        print(f"{phase}: sent {len(these)}, "
              f"delivered {sum(delivered.get(s['headers']['x-test-id'], 0) for s in these)}, "
              f"refused {sum(s['status'] != 200 for s in these)}")
    refused = [(s["phase"], s["status"], s["reason"]) for s in sent if s["status"] != 200]
    assert not refused, refused
    lost = [s["phase"] for s in sent if delivered.get(s["headers"]["x-test-id"]) != 1]
    assert not lost, lost

    for phase, response in replayed:
        assert (response.status_code, response.json()["reason"]) == (200, "already_delivered"), phase
    # The old key is gone; the new one works.
    with envoy.https_client() as client:
        headers = {"content-type": "application/x-www-form-urlencoded",
                   **vobiz_headers(PATH, token=OLD, nonce_v3=fresh_nonce())}
        response = client.post(PATH, headers=headers, content="a=1")
    assert (response.status_code, response.json()["reason"]) == (403, "signature_mismatch")

    accepted = {name: envoy.stat(f"wasmcustom.callback_guard.accepted.route.vobiz-voice.scheme.v3.key.{name}")
                for name in ("current", "next")}
    assert accepted == {"current": sum(s["token"] == OLD for s in sent),
                        "next": sum(s["token"] == NEW for s in sent)}, accepted
    assert ("invalid configuration: routes[0].keys[0].sealed: does not open with the sealing key"
            in envoy.log_text())
    # /config_dump shows the discovered configuration, sealed: neither token in it.
    dump = httpx.get(f"http://127.0.0.1:{envoy.admin_port}/config_dump", timeout=10).text
    assert "cgs1." in dump and OLD not in dump and NEW not in dump and PARENT_TOKEN not in dump
    assert key not in dump
