"""Operating the filter: metrics in Envoy's stats and Prometheus output, verdicts in the
access log, shadow mode, key rotation, trust boundaries and signed-string debugging."""
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from harness import (TOKEN, WHATSAPP_SECRET, new_nonce, plugin_config, sign,
                     vobiz_headers, wait_for)

FORM = {"content-type": "application/x-www-form-urlencoded"}
ROUTE = "vobiz-voice"


def counter(envoy, name):
    return envoy.stat(f"wasmcustom.callback_guard.{name}") or 0


def rejected(envoy, reason, route=ROUTE):
    return counter(envoy, f"rejected.route.{route}.reason.{reason}")


def accepted(envoy, scheme, key, route=ROUTE):
    return counter(envoy, f"accepted.route.{route}.scheme.{scheme}.key.{key}")


def prometheus(envoy):
    return httpx.get(f"http://127.0.0.1:{envoy.admin_port}/stats/prometheus", timeout=5).text


def signed(path="/vobiz/answer", **options):
    return {**FORM, **vobiz_headers(path, **options), "x-test-id": new_nonce()}


def whatsapp_event(age=timedelta(0)):
    occurred = (datetime.now(timezone.utc) - age).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = json.dumps({"event_id": f"evt-{new_nonce()}", "event_type": "message.inbound",
                       "account_id": "MA_X", "occurred_at": occurred, "payload": {}})
    signature = hmac.new(WHATSAPP_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "X-Webhook-Signature": signature}, body


def test_every_rejection_moves_its_reason_counter(envoy):
    cases = []
    with envoy.https_client() as client:
        def case(reason, send, route=ROUTE):
            before = rejected(envoy, reason, route)
            response = send()
            cases.append((reason, route, before, response))

        headers = signed()
        case("missing_signature", lambda: client.post("/vobiz/answer", content="a=1"))
        case("signature_mismatch", lambda: client.post(
            "/vobiz/answer", headers=signed(token="wrong"), content="a=1"))
        case("malformed_header", lambda: client.post(
            "/vobiz/answer", headers={**signed(), "X-Vobiz-Signature-V3": "!!"}, content="a=1"))
        client.post("/vobiz/answer", headers=headers, content="a=1")
        case("already_delivered", lambda: client.post("/vobiz/answer", headers=headers, content="a=1"))
        case("replay_tampered", lambda: client.post("/vobiz/answer", headers=headers, content="a=2"))
        case("body_too_large", lambda: client.post(
            "/vobiz/answer", headers=signed(), content="a=" + "x" * 200_000))
        stale_headers, stale_body = whatsapp_event(age=timedelta(hours=3))
        case("stale", lambda: client.post("/whatsapp/e", headers=stale_headers, content=stale_body),
             route="vobiz-whatsapp")
    with envoy.http_client() as client:
        case("tls_required", lambda: client.post("/vobiz/answer", headers=signed(), content="a=1"))
    for reason, route, before, response in cases:
        assert response.json()["reason"] == reason
        assert rejected(envoy, reason, route) == before + 1, reason


def test_accepted_counters_name_the_scheme_and_key(envoy):
    path = "/vobiz/answer"
    nonce = new_nonce()
    sdk_signature = sign("v3", "https://127.0.0.1:8443/vobiz/answer?a1", "", nonce, TOKEN)
    before = {k: accepted(envoy, *k) for k in [("v3", "primary"), ("ma_v3", "parent"),
                                               ("v3_sdk", "primary")]}
    with envoy.https_client() as client:
        assert client.post(path, headers=signed(), content="a=1").status_code == 200
        assert client.post(path, headers=signed(families=("ma_v3",)), content="a=1").status_code == 200
        sdk = {**FORM, "X-Vobiz-Signature-V3": sdk_signature, "X-Vobiz-Signature-V3-Nonce": nonce}
        assert client.post(path, headers=sdk, content="a=1").status_code == 200
    for key, value in before.items():
        assert accepted(envoy, *key) == value + 1, key
    metrics = prometheus(envoy)
    assert 'callback_guard_accepted{route="vobiz-voice",scheme="v3_sdk",key="primary"}' in metrics
    assert 'callback_guard_rejected{route="vobiz-voice",reason="replay_tampered"}' in metrics
    assert 'callback_guard_delivery{route="vobiz-voice",outcome="delivered"}' in metrics


    def histogram_count():
        # Histograms reach the admin output at Envoy's stats flush (every 5 s).
        lines = prometheus(envoy).splitlines()
        prefix = 'callback_guard_verify_us_count{route="vobiz-voice"}'
        return sum(int(l.split()[-1]) for l in lines if l.startswith(prefix))

    wait_for(lambda: histogram_count() > 0, timeout=15, what="verify_us samples")


def test_token_rotation_shows_which_key_is_still_used(start_envoy):
    keys = [{"name": "next", "env": "VOBIZ_NEXT_TOKEN"}, {"name": "current", "env": "VOBIZ_AUTH_TOKEN"}]
    envoy = start_envoy(plugin_config(keys=keys), env={"VOBIZ_NEXT_TOKEN": "rotated-token"},
                        host_env_keys=["VOBIZ_NEXT_TOKEN"])
    with envoy.https_client() as client:
        for _ in range(2):
            assert client.post("/vobiz/answer", headers=signed(), content="a=1").status_code == 200
        assert client.post("/vobiz/answer", headers=signed(token="rotated-token"),
                           content="a=1").status_code == 200
    assert accepted(envoy, "v3", "current") == 2
    assert accepted(envoy, "v3", "next") == 1
    metrics = prometheus(envoy)
    assert 'callback_guard_accepted{route="vobiz-voice",scheme="v3",key="current"} 2' in metrics
    assert 'callback_guard_accepted{route="vobiz-voice",scheme="v3",key="next"} 1' in metrics


def test_the_access_log_line_carries_the_verdict(envoy):
    with envoy.https_client() as client:
        ok = client.post("/vobiz/answer", headers=signed(), content="a=1")
        refused = client.post("/vobiz/answer", content="a=1")

    def line_for(response):
        marker = f'"{response.headers["x-request-id"]}" callback_guard='
        # The access log is flushed to stdout about once a second.
        wait_for(lambda: marker in envoy.log_text(), what="the access log line")
        return next(l for l in envoy.log_text().splitlines() if marker in l)

    assert 'callback_guard="verified route=vobiz-voice scheme=v3 key=primary"' in line_for(ok)
    assert (' 401 ' in line_for(refused) and
            'callback_guard="rejected route=vobiz-voice status=401 reason=missing_signature"'
            in line_for(refused))


def test_shadow_mode_forwards_everything_and_still_counts(start_envoy, upstream):
    envoy = start_envoy(plugin_config(mode="shadow"))
    test_id = new_nonce()
    with envoy.https_client() as client:
        unsigned = client.post("/vobiz/answer", headers={"x-test-id": test_id}, content="a=1")
        forged = client.post("/vobiz/answer", headers={**signed(token="wrong"), "x-test-id": test_id},
                             content="a=1")
        good = client.post("/vobiz/answer", headers={**signed(), "x-test-id": test_id}, content="a=1")
    assert [r.status_code for r in (unsigned, forged, good)] == [200, 200, 200]
    seen = [r for r in upstream.records() if ["x-test-id", test_id] in r["headers"]]
    assert len(seen) == 3
    assert rejected(envoy, "missing_signature") == 1
    assert rejected(envoy, "signature_mismatch") == 1
    assert counter(envoy, f"shadow_forwarded.route.{ROUTE}") == 2
    assert accepted(envoy, "v3", "primary") == 1
    shadow_line = 'callback_guard="shadow-rejected route=vobiz-voice status=401 reason=missing_signature"'
    wait_for(lambda: shadow_line in envoy.log_text(), what="the shadow verdict in the access log")
    assert "protecting vobiz-voice=/vobiz/ (shadow)" in envoy.log_text()


BEHIND_LB = {"use_remote_address": False}


@pytest.mark.parametrize("trusted, expected", [(["10.0.0.0/8"], 403), (["127.0.0.1/32"], 200)])
def test_x_forwarded_proto_counts_only_from_trusted_proxies(start_envoy, trusted, expected):
    envoy = start_envoy(plugin_config(trust_x_forwarded_proto=True, trusted_proxies=trusted),
                        hcm=BEHIND_LB)
    with envoy.http_client() as client:
        response = client.post("/vobiz/answer", headers={**signed(), "X-Forwarded-Proto": "https"},
                               content="a=1")
    assert response.status_code == expected, response.text
    if expected == 403:
        assert response.json()["reason"] == "tls_required"


@pytest.mark.parametrize("sources, expected", [(["127.0.0.1"], 200),
                                               (["35.154.59.246", "15.206.6.156"], 403)])
def test_allowed_sources_restrict_callers(start_envoy, upstream, sources, expected):
    envoy = start_envoy(plugin_config(allowed_sources=sources))
    headers = signed()
    with envoy.https_client() as client:
        response = client.post("/vobiz/answer", headers=headers, content="a=1")
    assert response.status_code == expected, response.text
    seen = [r for r in upstream.records() if ["x-test-id", headers["x-test-id"]] in r["headers"]]
    assert len(seen) == (1 if expected == 200 else 0)
    if expected == 403:
        assert response.json()["reason"] == "source_not_allowed"
        assert "source 127.0.0.1 is not in allowed_sources" in envoy.log_text()


def test_debug_signed_string_shows_what_was_compared(start_envoy):
    envoy = start_envoy(plugin_config(debug_signed_string=True, v3_construction="docs"))
    headers = signed(origin="http://internal:8080")  # what a misconfigured sender signs
    nonce = headers["X-Vobiz-Signature-V3-Nonce"]
    with envoy.https_client() as client:
        response = client.post("/vobiz/answer", headers=headers, content="a=1")
    assert response.status_code == 403
    log = envoy.log_text()
    # The detail is Debug-quoted in the log line: its own quotes escaped.
    assert f'v3=\\"https://127.0.0.1:8443/vobiz/answer.{nonce}\\"' in log
    assert TOKEN not in log


def test_upstream_header_tells_the_app_and_cannot_be_forged(start_envoy, upstream):
    plugin = plugin_config()
    plugin["upstream_header"] = "x-callback-guard"
    envoy = start_envoy(plugin)
    headers = {**signed(), "X-Callback-Guard": "verified route=forged"}
    spoof_id = new_nonce()
    with envoy.https_client() as client:
        assert client.post("/vobiz/answer", headers=headers, content="a=1").status_code == 200
        client.get("/elsewhere", headers={"x-test-id": spoof_id, "X-Callback-Guard": "verified"})
    records = upstream.records()
    [seen] = [r for r in records if ["x-test-id", headers["x-test-id"]] in r["headers"]]
    assert [v for k, v in seen["headers"] if k == "x-callback-guard"] == [
        "verified route=vobiz-voice scheme=v3 key=primary"]
    [other] = [r for r in records if ["x-test-id", spoof_id] in r["headers"]]
    assert not [v for k, v in other["headers"] if k == "x-callback-guard"]
