"""One signature, one delivery, end to end through the shipped configuration: each kind of
request the attacker's review carried to the application under a captured signature (a
signed string re-split, a signature relabelled, bytes moved between URL and body, a
handshake re-sent as an event, a "retry" under another event type, one secret across two
schemes, a host servers read differently) is refused and never reaches the upstream, while
what a provider really sends twice (Twilio's repeats) is delivered, and unauthenticated
streams leave no memory held."""
import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest

from harness import FORM_TYPE, PARENT_TOKEN, plugin_config, vobiz_headers, wait_for
from providers import (ORIGIN, Discord, GitHub, HubSpot, Plivo, Shopify, Slack, Square, Twilio,
                       Twitch, Zoom, replace)
from raw import H2, PROTOCOLS, assert_never_delivered, seen_by_upstream, send as raw_send

JSON_TYPE = ("content-type", "application/json")


def post(envoy, path, headers, body, test_id=None):
    """One request with a fresh (or the given) x-test-id: (test id, response)."""
    test_id = test_id or f"one-{uuid.uuid4().hex}"
    headers = list(headers.items()) if isinstance(headers, dict) else list(headers)
    with envoy.https_client() as client:
        response = client.post(path, headers=[*headers, ("x-test-id", test_id)], content=body)
    return test_id, response


def answer(response):
    try:
        return response.status_code, response.json().get("reason")
    except ValueError:
        return response.status_code, None


def delivered(upstream, test_id):
    return [r for r in seen_by_upstream(upstream).get(test_id, []) if not r["truncated"]]


def nonce():
    return f"{uuid.uuid4().int % 10**20:020d}"


# ---- a signed string re-split ----

@pytest.mark.parametrize("tail, split", [
    ("answer.php", ("answer", "php.")),
    ("a.b.c", ("a", "b.c.")),
    ("v1.hangup.json", ("v1.hangup", "json.")),
])
def test_a_voice_capture_re_split_between_path_and_nonce_is_refused(envoy, upstream, tail, split):
    """V3 signs `origin ‖ path ‖ "." ‖ nonce`: a capture of /vobiz/answer.php with nonce N
    signs /vobiz/answer with nonce php.N too. Nonces are 20 digits, so it is refused."""
    n = nonce()
    headers = {**dict([FORM_TYPE]), **vobiz_headers(f"/vobiz/{tail}", families=("v3", "ma_v3"),
                                                    nonce_v3=n)}
    path, moved = split
    forged = {**headers, "X-Vobiz-Signature-V3-Nonce": moved + n}
    forged_id, refused = post(envoy, f"/vobiz/{path}", forged, b"CallUUID=forged&Event=Hangup")
    assert answer(refused) == (400, "malformed_header"), refused.text
    # The capture itself, where it was meant to go, is still delivered once.
    genuine_id, genuine = post(envoy, f"/vobiz/{tail}", headers, b"CallUUID=real")
    assert answer(genuine) == (200, None), genuine.text
    assert len(delivered(upstream, genuine_id)) == 1
    assert_never_delivered(upstream, forged_id)


def test_a_plivo_capture_re_split_or_moved_is_refused(envoy, upstream):
    """Plivo's SDK signs a request without parameters as `base ‖ "." ‖ nonce`, the docs'
    V3: the route verifies only the SDK's construction, and only 20-digit nonces."""
    import plivo.utils.signature_v3 as sdk
    n = nonce()
    url = sdk.construct_post_url(ORIGIN + "/plivo/answer.php", {})
    signature = sdk.get_signature_v3(Plivo().secret.encode(), url.decode(), n.encode()).decode()
    capture = Plivo().deliver()  # for its shape; signed again below without parameters
    capture = replace(capture, path="/plivo/answer.php", body=b"",
                      headers=[FORM_TYPE, ("X-Plivo-Signature-V3", signature),
                               ("X-Plivo-Signature-V3-Nonce", n)])
    forged = replace(capture, path="/plivo/answer",
                     headers=[(k, "php." + n if k == "X-Plivo-Signature-V3-Nonce" else v)
                              for k, v in capture.headers],
                     body=b"CallUUID=forged&Event=Hangup")
    forged_id, refused = post(envoy, forged.path, forged.headers, forged.body)
    assert answer(refused) == (400, "malformed_header"), refused.text
    # The same signature with any body, query or method: the SDK's construction signs
    # the parameters, so none verifies.
    with_body = replace(capture, body=b"CallUUID=forged")
    body_id, mismatch = post(envoy, with_body.path, with_body.headers, with_body.body)
    assert answer(mismatch) == (403, "signature_mismatch"), mismatch.text
    assert_never_delivered(upstream, forged_id, body_id)


# ---- a signature relabelled ----

def test_a_v3_signature_relabelled_as_v2_is_refused(envoy, upstream):
    """V2 signs `origin ‖ path ‖ nonce`: every V3 MAC is a V2 MAC for nonce "." ‖ N3, and
    `/answer/` + N equals `/answer` + `/N`. Both need a nonce that is not 20 digits."""
    n3 = nonce()
    v3 = vobiz_headers("/vobiz-v2/answer", families=("v3",), nonce_v3=n3)
    relabelled = {**dict([FORM_TYPE]), "X-Vobiz-Signature-V2": v3["X-Vobiz-Signature-V3"],
                  "X-Vobiz-Signature-V2-Nonce": "." + n3}
    relabel_id, refused = post(envoy, "/vobiz-v2/answer", relabelled, b"CallUUID=forged")
    assert answer(refused) == (400, "malformed_header"), refused.text
    n2 = nonce()
    slash = vobiz_headers("/vobiz-v2/answer/", families=("v2",), nonce_v2=n2)
    moved = {**dict([FORM_TYPE]), **slash, "X-Vobiz-Signature-V2-Nonce": "/" + n2}
    slash_id, refused = post(envoy, "/vobiz-v2/answer", moved, b"CallUUID=forged")
    assert answer(refused) == (400, "malformed_header"), refused.text
    # A 20-digit nonce cannot be re-cut: one digit moved from path to nonce is another
    # message.
    n2 = nonce()
    digit = vobiz_headers("/vobiz-v2/answer1", families=("v2",), nonce_v2=n2)
    cut = {**dict([FORM_TYPE]), **digit, "X-Vobiz-Signature-V2-Nonce": "1" + n2[:-1]}
    cut_id, refused = post(envoy, "/vobiz-v2/answer", cut, b"CallUUID=forged")
    assert answer(refused) == (403, "signature_mismatch"), refused.text
    assert_never_delivered(upstream, relabel_id, slash_id, cut_id)


# ---- bytes moved between the URL and the body ----

def test_square_bytes_moved_from_url_to_body_are_refused(envoy, upstream):
    """Square signs `url ‖ body`: the last byte of the URL can move to the start of the
    body under the same signature. Before and after the genuine delivery, refused."""
    square = Square()
    genuine = square.deliver()
    moved = replace(genuine, path=genuine.path[:-1], body=genuine.path[-1:].encode() + genuine.body)
    assert square.sdk_accepts(moved), "the SDK verifies the moved bytes: only the filter can tell"
    before_id, before = post(envoy, moved.path, moved.headers, moved.body)
    assert answer(before) == (400, "malformed_body"), before.text
    genuine_id, delivered_once = post(envoy, genuine.path, genuine.headers, genuine.body)
    assert answer(delivered_once) == (200, None), delivered_once.text
    after_id, after = post(envoy, moved.path, moved.headers, moved.body)
    assert answer(after)[0] in (400, 409), after.text
    assert len(delivered(upstream, genuine_id)) == 1
    assert_never_delivered(upstream, before_id, after_id)


def test_hubspot_bytes_moved_between_body_and_timestamp_are_refused(envoy, upstream):
    """HubSpot signs `method ‖ url ‖ body ‖ timestamp`, nothing between: the body's last
    byte can move into the timestamp, the timestamp's first into the body."""
    hubspot = HubSpot()
    genuine = hubspot.deliver()
    stamp = dict(genuine.headers)["X-HubSpot-Request-Timestamp"]
    cases = [
        replace(genuine, body=genuine.body[:-1],
                headers=[(k, genuine.body[-1:].decode() + v if k == "X-HubSpot-Request-Timestamp" else v)
                         for k, v in genuine.headers]),
        replace(genuine, body=genuine.body + stamp[:1].encode(),
                headers=[(k, v[1:] if k == "X-HubSpot-Request-Timestamp" else v)
                         for k, v in genuine.headers]),
    ]
    refused = []
    for moved in cases:
        test_id, response = post(envoy, moved.path, moved.headers, moved.body)
        assert answer(response)[0] in (400, 403), response.text
        refused.append(test_id)
    assert_never_delivered(upstream, *refused)


# ---- a handshake re-sent as an event ----

def test_twitch_verification_re_sent_as_a_revocation_is_tampering(envoy, upstream):
    twitch = Twitch()
    body = json.dumps({"challenge": "pogchamp-kappa-360noscope",
                       "subscription": {"type": "channel.follow"}}).encode()
    check = twitch.deliver(body=body, kind="webhook_callback_verification")
    first_id, first = post(envoy, check.path, check.headers, check.body)
    assert first.status_code == 200 and first.text == "pogchamp-kappa-360noscope", first.text
    again_id, again = post(envoy, check.path, check.headers, check.body)
    assert again.status_code == 200 and again.text == "pogchamp-kappa-360noscope", again.text
    revocation = replace(check, headers=[(k, "revocation" if k == "Twitch-Eventsub-Message-Type" else v)
                                         for k, v in check.headers])
    revoked_id, revoked = post(envoy, revocation.path, revocation.headers, revocation.body)
    assert answer(revoked) == (409, "replay_tampered"), revoked.text
    assert_never_delivered(upstream, first_id, again_id, revoked_id)


@pytest.mark.parametrize("provider, body", [
    (Slack(), {"token": "t", "challenge": "3eZbrw1aBm2r", "type": "url_verification"}),
    (Zoom(), {"event": "endpoint.url_validation", "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"},
              "event_ts": 1654503849680}),
    (Discord(), {"type": 1, "id": "1", "application_id": "2"}),
], ids=["Slack", "Zoom", "Discord"])
def test_a_handshake_answered_at_the_edge_cannot_come_again_elsewhere(envoy, upstream, provider, body):
    check = provider.deliver(body=json.dumps(body, separators=(",", ":")).encode())
    first_id, first = post(envoy, check.path, check.headers, check.body)
    assert first.status_code == 200 and "reason" not in first.text, first.text
    moved = replace(check, path=provider.path("other"))
    moved_id, refused = post(envoy, moved.path, moved.headers, moved.body)
    assert answer(refused)[1] in ("replay_tampered", "signature_mismatch"), refused.text
    assert_never_delivered(upstream, first_id, moved_id)


# ---- a retry that changes what the application dispatches on ----

RETRY_CHANGES = [
    (GitHub(), [("X-GitHub-Event", "delete"), ("X-GitHub-Delivery", str(uuid.uuid4()))]),
    (Shopify(), [("X-Shopify-Topic", "customers/redact"), ("X-Shopify-Shop-Domain", "evil.myshopify.com")]),
    (Twitch(), [("Twitch-Eventsub-Message-Type", "revocation"),
                ("Twitch-Eventsub-Subscription-Type", "channel.ban")]),
]


def with_header(headers, name, value):
    return [h for h in headers if h[0].lower() != name.lower()] + [(name, value)]


@pytest.mark.parametrize("provider, changes", RETRY_CHANGES, ids=["GitHub", "Shopify", "Twitch"])
def test_a_retry_must_equal_the_failed_delivery_in_everything_the_app_reads(envoy, upstream, provider,
                                                                            changes):
    genuine = provider.deliver()
    failed_id, failed = post(envoy, genuine.path, [*genuine.headers, ("x-demo-fail", "1")], genuine.body)
    assert failed.status_code == 500, failed.text
    refused = []
    variants = [with_header(genuine.headers, name, value) for name, value in changes]
    variants.append(with_header(genuine.headers, "content-type", "application/json; charset=utf-8"))
    for changed in variants:
        test_id, response = post(envoy, genuine.path, changed, genuine.body)
        assert answer(response) == (409, "replay_tampered"), (changed, response.text)
        refused.append(test_id)
    retry_id, retry = post(envoy, genuine.path, genuine.headers, genuine.body)
    assert answer(retry) == (200, None), retry.text
    assert len(delivered(upstream, retry_id)) == 1
    assert_never_delivered(upstream, *refused)


# ---- one secret, two schemes ----

def test_a_voice_signature_cannot_sign_a_kyc_body(envoy, upstream):
    """The parent token keys both voice MA-V3 and KYC: a captured MA-V3 value, hex-encoded,
    signs a KYC body equal to the voice base string. KYC takes only JSON objects."""
    n = nonce()
    voice = vobiz_headers("/vobiz/answer", families=("ma_v3",), nonce_v3=n)
    base = f"https://127.0.0.1:8443/vobiz/answer.{n}".encode()
    mac = base64.b64decode(voice["X-Vobiz-Signature-MA-V3"]).hex()
    assert mac == hmac.new(PARENT_TOKEN.encode(), base, hashlib.sha256).hexdigest()
    signed = {"X-Vobiz-Signature": "sha256=" + mac}
    as_json_id, as_json = post(envoy, "/kyc/events", {**signed, "content-type": "application/json"}, base)
    assert answer(as_json) == (400, "malformed_body"), as_json.text
    as_text_id, as_text = post(envoy, "/kyc/events", {**signed, "content-type": "text/plain"}, base)
    assert answer(as_text) == (415, "unsupported_media_type"), as_text.text
    assert_never_delivered(upstream, as_json_id, as_text_id)
    # The configuration says so when it loads, naming both routes.
    log = envoy.log_text()
    assert "are the same secret" in log and "route vobiz-voice" in log and "route vobiz-kyc" in log


# ---- hosts as servers read them ----

AMBIGUOUS_HOSTS = [b"callbacks.example.com:443@x", b"x@callbacks.example.com", b"callbacks.example.com@",
                   b"callbacks.example.com:443:1", b"callbacks.example.com%2e", b"callbacks.example.com\\x",
                   b"[::1]@callbacks.example.com", b"callbacks.example.com,x"]


@pytest.fixture(scope="module")
def hosted(workdir, upstream, cert):
    from harness import Envoy
    proxy = Envoy(workdir, upstream, cert, plugin_config(host="callbacks.example.com"))
    yield proxy
    proxy.stop()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_host_servers_read_differently_reaches_no_protected_route_unsigned(hosted, upstream, protocol):
    sent = []
    for host in AMBIGUOUS_HOSTS:
        test_id = f"host-{uuid.uuid4().hex}"
        reply = raw_send(hosted, protocol, "/vobiz/answer", [FORM_TYPE, ("x-test-id", test_id)],
                         b"CallUUID=unsigned", host=host)
        assert reply.status is None or 400 <= reply.status < 500, (host, reply)
        sent.append(test_id)
    assert_never_delivered(upstream, *sent, envoy=hosted)
    # Another host is not the route's: delivered, unsigned, as before.
    other = f"host-{uuid.uuid4().hex}"
    reply = raw_send(hosted, protocol, "/vobiz/answer", [FORM_TYPE, ("x-test-id", other)],
                     b"CallUUID=elsewhere", host=b"other.example")
    assert reply.status == 200, reply
    assert len(delivered(upstream, other)) == 1


# ---- genuine repeats ----

def test_twilios_identical_repeats_are_delivered_and_a_changed_one_is_not(envoy, upstream):
    """The same digits pressed twice in a <Gather>: identical signed requests, both real.
    Delivered both times; the same signature with the form re-encoded is tampering."""
    twilio = Twilio()
    press = twilio.deliver()
    delivered_ids = []
    for _ in range(2):
        test_id, response = post(envoy, press.path, press.headers, press.body)
        assert answer(response) == (200, None), response.text
        delivered_ids.append(test_id)
    pairs = press.body.split(b"&")
    reordered = replace(press, body=b"&".join(reversed(pairs)))
    assert twilio.sdk_accepts(reordered), "the same parameters sign alike, in any order"
    reordered_id, refused = post(envoy, reordered.path, reordered.headers, reordered.body)
    assert answer(refused) == (409, "replay_tampered"), refused.text
    assert [len(delivered(upstream, t)) for t in delivered_ids] == [1, 1]
    assert_never_delivered(upstream, reordered_id)


# ---- memory held by unauthenticated streams ----

HOSTILE_STREAMS = 300
HOSTILE_BODY = 127 * 1024
STREAMS_PER_CONNECTION = 50


def memory(envoy):
    """tcmalloc's allocated bytes, its physical bytes, and Envoy's resident set (which
    also holds the Wasm VMs' linear memory, mapped by V8 outside tcmalloc)."""
    import httpx
    from pathlib import Path
    stats = httpx.get(f"http://127.0.0.1:{envoy.admin_port}/memory", timeout=5).json()
    rss = next(int(line.split()[1]) * 1024
               for line in Path(f"/proc/{envoy.proc.pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return int(stats["allocated"]), int(stats["total_physical_bytes"]), rss


def test_unfinished_hostile_streams_are_bounded_and_leave_nothing_held(start_envoy, upstream):
    """300 HTTP/2 streams with a well-formed but forged GitHub signature, each sending
    127 KiB of body and never ending it. Envoy holds their bodies (the filter waits for the
    last byte); the filter copies none of them into its VM, and Envoy's stream idle timeout
    frees them all without the client closing anything."""
    envoy = start_envoy(plugin_config(extra_routes=[
        {"name": "github", "path_prefix": "/github/", "scheme": "github",
         "keys": [{"name": "webhook", "env": "GITHUB_WEBHOOK_SECRET"}]}]))
    baseline = memory(envoy)
    forged = [JSON_TYPE, ("x-hub-signature-256", "sha256=" + "0" * 64)]
    body = b'{"pad":"' + b"x" * (HOSTILE_BODY - 10) + b'"}'
    connections, test_ids = [], []
    try:
        for _ in range(HOSTILE_STREAMS // STREAMS_PER_CONNECTION):
            connection = H2(envoy)
            connections.append(connection)
            for _ in range(STREAMS_PER_CONNECTION):
                test_id = f"hostile-{uuid.uuid4().hex}"
                stream = connection.start("/github/events", [*forged, ("x-test-id", test_id),
                                                             ("content-length", str(len(body) + 1))],
                                          end=False)
                connection.send(stream, body, end=False)
                test_ids.append(test_id)
        wait_for(lambda: (envoy.stat("http.callbacks.downstream_rq_active") or 0) >= HOSTILE_STREAMS,
                 timeout=60, what="every hostile stream open in Envoy")
        held = memory(envoy)
        # The idle timeout (15 s in envoy.yaml) ends every stream; nothing is closed here.
        wait_for(lambda: (envoy.stat("http.callbacks.downstream_rq_active") or 0) == 0,
                 timeout=90, what="the stream idle timeout to end every hostile stream")
        timed_out = envoy.stat("http.callbacks.downstream_rq_idle_timeout") or 0
    finally:
        for connection in connections:
            connection.tls.close()
    wait_for(lambda: (envoy.stat("http.callbacks.downstream_cx_active") or 0) == 0,
             timeout=90, what="every hostile connection closed")
    after = memory(envoy)
    mib = 1 << 20
    print(f"\n{HOSTILE_STREAMS} hostile streams of {HOSTILE_BODY} B: allocated {baseline[0]} -> held "
          f"{held[0]} ({(held[0] - baseline[0]) / mib:+.1f} MiB) -> after {after[0]} "
          f"({(after[0] - baseline[0]) / mib:+.1f} MiB); RSS {baseline[2]} -> {held[2]} "
          f"({(held[2] - baseline[2]) / mib:+.1f} MiB) -> {after[2]} ({(after[2] - baseline[2]) / mib:+.1f} MiB); "
          f"outside tcmalloc {(after[2] - after[1]) - (baseline[2] - baseline[1]):+d} B; "
          f"{timed_out} streams ended by the idle timeout")
    assert timed_out >= HOSTILE_STREAMS
    # Envoy really held the bodies while the streams were open ...
    assert held[0] - baseline[0] > HOSTILE_STREAMS * HOSTILE_BODY * 0.8
    # ... and holds none once they are gone, in its heap or outside it (the VM's linear
    # memory never shrinks: a copy of each body there would stay, 37 MiB of it).
    assert after[0] - baseline[0] < 8 * mib
    assert (after[2] - after[1]) - (baseline[2] - baseline[1]) < 8 * mib
    assert_never_delivered(upstream, *test_ids)
