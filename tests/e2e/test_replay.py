"""Replay protection, body-signed schemes and body handling through a real Envoy with
several worker threads. Every refused request is proven never to reach the upstream."""
import concurrent.futures
import hashlib
import hmac
import json
import socket
import ssl
import threading
import time
from datetime import datetime, timedelta, timezone

import h2.config
import h2.connection
import h2.events
import httpx
import pytest

from harness import (PARENT_TOKEN, TOKEN, WHATSAPP_SECRET, deliveries, new_nonce,
                     plugin_config, reason, sign, vobiz_headers, wait_for)

FORM_TYPE = {"content-type": "application/x-www-form-urlencoded"}


def tagged(headers):
    test_id = new_nonce()
    return {**headers, "x-test-id": test_id}, test_id


def callback(path="/vobiz/answer", body="CallUUID=abc&Event=StartApp", **sign_options):
    """Signed voice callback headers (V3, docs construction) with a test id."""
    headers, test_id = tagged({**FORM_TYPE, **vobiz_headers(path, **sign_options)})
    return path, headers, body, test_id


def test_replayed_nonce_with_a_new_body_is_tampering(envoy, upstream):
    path, headers, body, test_id = callback()
    with envoy.https_client() as client:
        first = client.post(path, headers=headers, content=body)
        replay = client.post(path, headers=headers, content="CallUUID=abc&Event=Hangup")
        other_query = client.post(path + "?x=1", headers=headers, content=body)
    assert first.status_code == 200
    assert replay.status_code == 409 and reason(replay) == "replay_tampered"
    assert other_query.status_code == 409 and reason(other_query) == "replay_tampered"
    [delivered] = deliveries(upstream, test_id)
    assert delivered["body"] == body
    assert "reason=replay_tampered" in envoy.log_text()


def test_identical_replay_after_delivery_is_not_delivered_twice(envoy, upstream):
    path, headers, body, test_id = callback()
    with envoy.https_client() as client:
        first = client.post(path, headers=headers, content=body)
        again = client.post(path, headers=headers, content=body)
    assert first.status_code == 200
    assert again.status_code == 200
    assert again.json() == {"result": "duplicate", "reason": "already_delivered"}
    assert len(deliveries(upstream, test_id)) == 1


def test_the_mv_signature_of_a_delivered_callback_is_the_same_nonce(envoy, upstream):
    path = "/vobiz/answer"
    nonce = new_nonce()
    own, test_id = tagged({**FORM_TYPE, **vobiz_headers(path, nonce_v3=nonce)})
    parent = {**FORM_TYPE, **vobiz_headers(path, families=("ma_v3",), nonce_v3=nonce),
              "x-test-id": test_id}
    with envoy.https_client() as client:
        assert client.post(path, headers=own, content="a=1").status_code == 200
        swapped = client.post(path, headers=parent, content="a=2")
    assert swapped.status_code == 409 and reason(swapped) == "replay_tampered"
    assert len(deliveries(upstream, test_id)) == 1


def test_a_retry_after_an_upstream_failure_is_delivered(envoy, upstream):
    path, headers, body, test_id = callback(body="CallUUID=abc&DemoFail=1")
    with envoy.https_client() as client:
        failed = client.post(path, headers=headers, content=body)
        retry = client.post(path, headers=headers, content=body)
    assert failed.status_code == 500
    assert retry.status_code == 500  # the demo upstream fails this body every time
    assert len(deliveries(upstream, test_id)) == 2


def test_fifty_identical_concurrent_callbacks_deliver_exactly_once(envoy, upstream):
    # The upstream takes 300 ms, so most copies arrive while the first is in flight.
    path, headers, body, test_id = callback(body="CallUUID=abc&DemoDelayMs=300")
    start = threading.Barrier(50)

    def send(_):
        # A connection per request, so Envoy spreads them over its four workers; each is
        # open and warm before all fifty fire at once.
        with envoy.https_client() as client:
            client.get("/health")
            start.wait(timeout=30)
            return client.post(path, headers=headers, content=body)

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(send, range(50)))
    assert len(deliveries(upstream, test_id)) == 1
    outcomes = {(r.status_code, r.json().get("reason")) for r in responses}
    assert all(o in {(200, None), (200, "already_delivered"), (409, "in_flight")}
               for o in outcomes), outcomes
    assert sum(r.status_code == 200 and "reason" not in r.json() for r in responses) == 1
    assert (409, "in_flight") in outcomes  # the copies really overlapped


def test_sdk_v3_construction_is_accepted_and_reported(envoy, upstream):
    path = "/vobiz/answer?x=1"
    body = "To=14155550100&From=14155550123"
    nonce = new_nonce()
    # The official SDK signs URL + sorted query + "." + sorted POST params (key+value).
    url = "https://127.0.0.1:8443/vobiz/answer?x=1.From14155550123To14155550100"
    signature = sign("v3", url, "", nonce, TOKEN)
    headers, test_id = tagged({**FORM_TYPE, "X-Vobiz-Signature-V3": signature,
                               "X-Vobiz-Signature-V3-Nonce": nonce})
    with envoy.https_client() as client:
        response = client.post(path, headers=headers, content=body)
        changed = client.post(path, headers={**headers, "x-test-id": "other"}, content=body + "&x=2")
    assert response.status_code == 200, response.text
    assert len(deliveries(upstream, test_id)) == 1
    # The SDK construction signs the POST parameters: another body does not verify.
    assert changed.status_code == 403 and reason(changed) == "signature_mismatch"


def test_body_over_the_limit_is_413_declared_or_chunked(start_envoy, upstream):
    envoy = start_envoy(plugin_config(max_body_bytes=1024))
    path, headers, _, test_id = callback()
    big = "CallUUID=" + "x" * 2000

    def chunks():
        for i in range(0, len(big), 100):
            yield big[i:i + 100].encode()

    with envoy.https_client() as client:
        declared = client.post(path, headers=headers, content=big)
        chunked = client.post(path, headers=headers, content=chunks())
    for response in (declared, chunked):
        assert response.status_code == 413 and reason(response) == "body_too_large"
    assert deliveries(upstream, test_id) == []


def test_chunked_and_http2_bodies_are_verified_and_delivered_whole(envoy, upstream):
    body = "CallUUID=abc&" + "Field=" + "y" * 5000
    for http2 in (False, True):
        path, headers, _, test_id = callback()

        def chunks():
            for i in range(0, len(body), 1000):
                yield body[i:i + 1000].encode()

        with envoy.https_client(http2=http2) as client:
            response = client.post(path, headers=headers, content=chunks())
        assert response.status_code == 200, response.text
        [delivered] = deliveries(upstream, test_id)
        assert delivered["body"] == body


def h2_post_with_trailers(envoy, path, headers, body):
    """An HTTP/2 request whose end of stream is its trailers (no library sends these)."""
    context = ssl.create_default_context(cafile=str(envoy.cert[0]))
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", envoy.https_port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            conn.initiate_connection()
            request = [(":method", "POST"), (":path", path), (":scheme", "https"),
                       (":authority", "127.0.0.1")] + [(k.lower(), v) for k, v in headers.items()]
            conn.send_headers(1, request)
            conn.send_data(1, body.encode())
            conn.send_headers(1, [("x-trailer", "done")], end_stream=True)
            tls.sendall(conn.data_to_send())
            status, data = None, b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                for event in conn.receive_data(chunk):
                    if isinstance(event, h2.events.ResponseReceived):
                        status = int(dict(event.headers)[b":status"])
                    elif isinstance(event, h2.events.DataReceived):
                        data += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length, 1)
                    elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                        return status, data
                tls.sendall(conn.data_to_send())
    return status, data


def test_trailer_terminated_http2_bodies_are_judged_at_the_trailers(envoy, upstream):
    path, headers, body, test_id = callback()
    status, _ = h2_post_with_trailers(envoy, path, headers, body)
    assert status == 200
    assert len(deliveries(upstream, test_id)) == 1
    status, data = h2_post_with_trailers(envoy, path, headers, "CallUUID=tampered")
    assert status == 409 and json.loads(data)["reason"] == "replay_tampered"
    assert len(deliveries(upstream, test_id)) == 1


def test_trailer_terminated_bodies_hashed_as_they_arrive_are_judged_at_the_trailers(envoy,
                                                                                   upstream):
    # WhatsApp's body is hashed as it arrives; with trailers, its last piece comes before
    # the end of the stream, and the verdict at the trailers must still see all of it.
    headers, body, test_id, _ = whatsapp()
    status, _ = h2_post_with_trailers(envoy, "/whatsapp/events", headers, body)
    assert status == 200
    assert [r["body"] for r in deliveries(upstream, test_id)] == [body]
    forged_headers, forged, forged_id, _ = whatsapp(secret="wrong")
    status, data = h2_post_with_trailers(envoy, "/whatsapp/events", forged_headers, forged)
    assert status == 403 and json.loads(data)["reason"] == "signature_mismatch"
    assert deliveries(upstream, forged_id) == []


def whatsapp(event_id=None, occurred_at=None, secret=WHATSAPP_SECRET, extra=""):
    occurred = occurred_at or datetime.now(timezone.utc)
    envelope = {
        "event_id": event_id or f"evt-{new_nonce()}",
        "event_type": "message.inbound",
        "account_id": "MA_XXXXXXXX",
        "occurred_at": occurred.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "payload": {"text": "hello" + extra},
    }
    body = json.dumps(envelope, separators=(",", ":"))
    signature = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    headers, test_id = tagged({"content-type": "application/json",
                               "X-Webhook-Signature": signature,
                               "X-Webhook-Event": "message.inbound"})
    return headers, body, test_id, envelope["event_id"]


def test_whatsapp_events_verify_and_are_deduplicated_on_their_signed_body(envoy, upstream):
    headers, body, test_id, event_id = whatsapp()
    replay_headers, replay_body, _, _ = whatsapp(event_id=event_id, extra=" changed")
    replay_headers["x-test-id"] = test_id
    with envoy.https_client() as client:
        first = client.post("/whatsapp/events", headers=headers, content=body)
        again = client.post("/whatsapp/events", headers=headers, content=body)
        # Another body signed with the secret (only the key holder can sign one) is another
        # signed message, so another delivery, whatever event id it carries: the replay
        # identity is the whole signed message.
        changed = client.post("/whatsapp/events", headers=replay_headers, content=replay_body)
        moved = client.post("/whatsapp/events?copy=1", headers=headers, content=body)
        forged = client.post("/whatsapp/events", headers=headers, content=body + " ")
    assert first.status_code == 200, first.text
    assert again.status_code == 200 and reason(again) == "already_delivered"
    assert changed.status_code == 200 and reason(changed) is None, changed.text
    assert moved.status_code == 409 and reason(moved) == "replay_tampered"
    assert forged.status_code == 403 and reason(forged) == "signature_mismatch"
    assert [d["body"] for d in deliveries(upstream, test_id)] == [body, replay_body]


@pytest.mark.parametrize("shift, expected", [(timedelta(hours=-2), "stale"),
                                             (timedelta(minutes=10), "future")])
def test_stale_and_future_whatsapp_events_are_refused(envoy, upstream, shift, expected):
    headers, body, test_id, _ = whatsapp(occurred_at=datetime.now(timezone.utc) + shift)
    with envoy.https_client() as client:
        response = client.post("/whatsapp/events", headers=headers, content=body)
    assert response.status_code == 403 and reason(response) == expected
    assert deliveries(upstream, test_id) == []


def test_whatsapp_without_or_with_a_bad_signature_header(envoy, upstream):
    headers, body, test_id, _ = whatsapp()
    with envoy.https_client() as client:
        missing = client.post("/whatsapp/events", content=body,
                              headers={"x-test-id": test_id})
        garbage = client.post("/whatsapp/events", content=body,
                              headers={**headers, "X-Webhook-Signature": "zz"})
    assert missing.status_code == 401 and reason(missing) == "missing_signature"
    assert garbage.status_code == 400 and reason(garbage) == "malformed_header"
    assert deliveries(upstream, test_id) == []


def test_kyc_webhook_verifies_with_the_parent_token(envoy, upstream):
    body = json.dumps({"event": "kyc.completed", "session_id": new_nonce()})
    digest = hmac.new(PARENT_TOKEN.encode(), body.encode(), hashlib.sha256).hexdigest()
    headers, test_id = tagged({"content-type": "application/json",
                               "X-Vobiz-Signature": f"sha256={digest}"})
    wrong = hmac.new(TOKEN.encode(), body.encode(), hashlib.sha256).hexdigest()
    with envoy.https_client() as client:
        ok = client.post("/kyc/events", headers=headers, content=body)
        again = client.post("/kyc/events", headers=headers, content=body)
        forged = client.post("/kyc/events", content=body,
                             headers={**headers, "X-Vobiz-Signature": f"sha256={wrong}"})
    assert ok.status_code == 200, ok.text
    assert again.status_code == 200 and reason(again) == "already_delivered"
    assert forged.status_code == 403 and reason(forged) == "signature_mismatch"
    assert len(deliveries(upstream, test_id)) == 1


SLOT_ENTRIES = 64  # src/replay.rs: the most live entries one slot holds


def test_a_full_cache_fails_closed_with_503(start_envoy, upstream):
    # One slot of 64 entries: the 65th live nonce finds no room and nothing is evicted.
    envoy = start_envoy(plugin_config(replay={"max_entries": 1}))
    sent = []
    first_path, first_headers, first_body, _ = callback()
    with envoy.https_client() as client:
        sent.append((client.post(first_path, headers=first_headers, content=first_body), None))
        for _ in range(SLOT_ENTRIES):
            path, headers, body, test_id = callback()
            sent.append((client.post(path, headers=headers, content=body), test_id))
        # The first nonce is still remembered: its replay is still recognised.
        first_again = client.post(first_path, headers=first_headers, content=first_body)
    *fits, (overflow, overflow_id) = sent
    assert all(r.status_code == 200 for r, _ in fits)
    assert overflow.status_code == 503 and reason(overflow) == "replay_cache_full"
    assert deliveries(upstream, overflow_id) == []
    assert reason(first_again) == "already_delivered"
    assert "reason=replay_cache_full" in envoy.log_text()


def test_a_full_cache_may_forget_its_oldest_delivered_callback(start_envoy, upstream):
    """when_full: forget_oldest_delivered: the new callback is delivered, the oldest
    delivered one is forgotten (its replay would be new again), and it is counted."""
    envoy = start_envoy(plugin_config(replay={"max_entries": 1,
                                              "when_full": "forget_oldest_delivered"}))
    forgotten = "wasmcustom.callback_guard.replay_forgotten.route.vobiz-voice"
    first = callback()
    with envoy.https_client() as client:
        for path, headers, body, _ in [first, *(callback() for _ in range(SLOT_ENTRIES - 1))]:
            assert client.post(path, headers=headers, content=body).status_code == 200
        assert envoy.stat(forgotten) == 0
        path, headers, body, test_id = callback()
        overflow = client.post(path, headers=headers, content=body)
        assert overflow.status_code == 200 and "reason" not in overflow.json()
        assert len(deliveries(upstream, test_id)) == 1
        assert envoy.stat(forgotten) == 1
        # The forgotten callback is taken as new: the protection the operator traded away.
        path, headers, body, test_id = first
        again = client.post(path, headers=headers, content=body)
    assert again.status_code == 200 and "reason" not in again.json()
    assert len(deliveries(upstream, test_id)) == 2


def test_the_occupancy_gauge_reports_live_entries_against_max_entries(start_envoy):
    envoy = start_envoy(plugin_config(replay={"max_entries": 100}))
    gauge = "wasmcustom.callback_guard.replay_occupancy_percent.route.vobiz-voice"
    with envoy.https_client() as client:
        for _ in range(45):
            path, headers, body, _ = callback()
            assert client.post(path, headers=headers, content=body).status_code == 200
    # Sampled every 10 s by each VM; five slots, all sampled: exact.
    wait_for(lambda: envoy.stat(gauge) == 45, timeout=60, what="occupancy gauge at 45 %")
    text = httpx.get(f"http://127.0.0.1:{envoy.admin_port}/stats/prometheus", timeout=5).text
    assert 'callback_guard_replay_occupancy_percent{route="vobiz-voice"} 45' in text


def test_entries_expire_after_the_window(start_envoy, upstream):
    envoy = start_envoy(plugin_config(replay={"window": "2s", "in_flight_timeout": "1s"}))
    path, headers, body, test_id = callback()
    with envoy.https_client() as client:
        assert client.post(path, headers=headers, content=body).status_code == 200
        assert reason(client.post(path, headers=headers, content=body)) == "already_delivered"
        time.sleep(3.1)
        assert client.post(path, headers=headers, content=body).status_code == 200
    assert len(deliveries(upstream, test_id)) == 2


def test_duplicates_can_be_refused_with_409(start_envoy, upstream):
    envoy = start_envoy(plugin_config(replay={"on_duplicate": "reject"}))
    path, headers, body, test_id = callback()
    with envoy.https_client() as client:
        assert client.post(path, headers=headers, content=body).status_code == 200
        again = client.post(path, headers=headers, content=body)
    assert again.status_code == 409 and reason(again) == "duplicate"
    assert len(deliveries(upstream, test_id)) == 1


def test_voice_timestamp_check_is_opt_in(start_envoy, upstream):
    envoy = start_envoy(plugin_config(freshness={"max_age": "5m", "require": True}))
    now = datetime.now(timezone.utc)
    cases = [
        (now.strftime("timestamp=%Y-%m-%dT%H:%M:%SZ"), 200, None),
        ((now - timedelta(hours=1)).strftime("timestamp=%Y-%m-%dT%H:%M:%SZ"), 403, "stale"),
        ("timestamp=yesterday", 400, "malformed_body"),
        ("CallUUID=abc", 400, "missing_timestamp"),
    ]
    with envoy.https_client() as client:
        for body, status, why in cases:
            path, headers, _, test_id = callback(body=body)
            response = client.post(path, headers=headers, content=body)
            assert response.status_code == status, (body, response.text)
            assert reason(response) == why if why else True
            assert len(deliveries(upstream, test_id)) == (1 if status == 200 else 0)


def test_without_stop_iteration_the_guarantee_is_weaker_but_nothing_passes(start_envoy, upstream):
    """Istio's WasmPlugin cannot set allow_on_headers_stop_iteration: the headers of a
    body-judged request reach the upstream first, and a refusal resets the request, so the
    application never receives a complete forged request."""
    plugin = plugin_config()
    plugin["allow_on_headers_stop_iteration"] = False
    envoy = start_envoy(plugin, plugin_options={"allow_on_headers_stop_iteration": False})
    path, headers, body, test_id = callback()
    with envoy.https_client() as client:
        ok = client.post(path, headers=headers, content=body)
        tampered = client.post(path, headers=headers, content="CallUUID=evil")
        unsigned = client.post(path, headers={"x-test-id": test_id}, content=body)
    assert ok.status_code == 200
    assert tampered.status_code == 409 and reason(tampered) == "replay_tampered"
    assert unsigned.status_code == 401  # header-only verdicts still stop at the headers
    [delivered] = deliveries(upstream, test_id)
    assert delivered["body"] == body
