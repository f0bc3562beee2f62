"""Endpoint handshakes answered by Envoy in each provider's format, so the application needs
no code for them: Slack's url_verification, Meta's GET subscription check, Zoom's
endpoint.url_validation (its reply checked against Zoom's own SDK), Discord's PING and
Twitch's callback verification. Each is answered only once the request verified and is
fresh; none ever reaches the upstream. The unsigned checks (Dropbox's challenge, X's CRC,
Worldline's and Okta's header challenges) are answered at the headers in their formats,
and a CRC only for a token, never for bytes that could be a signed body. And where a public-key provider's SDK is lenient or
strict about a signature's encoding, the filter gives the same answer."""
import base64
import json
import time
import urllib.parse

import pytest
import slack_sdk.signature
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from harness import PROVIDER_SECRETS, shipped_plugin_config
from providers import Discord, SendGrid, Slack, Twitch, Zoom, node_oracle, replace
from raw import assert_never_delivered
from test_providers import delivered, reason, send

CHALLENGE = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"


def slack_url_verification(at=None, challenge=CHALLENGE):
    body = json.dumps({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": challenge,
                       "type": "url_verification"}).encode()
    return Slack().deliver(body, at=at)


def answered(response, content_type, body):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    assert response.content == body


def test_slack_url_verification_is_answered_at_the_edge(envoy, upstream):
    delivery = slack_url_verification()
    assert Slack().sdk_accepts(delivery)
    test_id, response = send(envoy, delivery)
    answered(response, "application/json", json.dumps({"challenge": CHALLENGE}, separators=(",", ":")).encode())
    # Answered every time it comes (it only echoes), never by the application.
    again_id, again = send(envoy, delivery)
    assert again.json() == {"challenge": CHALLENGE}
    assert_never_delivered(upstream, test_id, again_id, envoy=envoy)


def test_a_slack_challenge_that_does_not_verify_or_is_stale_is_refused(envoy, upstream):
    forged = replace(slack_url_verification(), body=slack_url_verification(challenge="evil").body)
    stale = slack_url_verification(at=time.time() - 400)
    sent = []
    for delivery, expected in [(forged, (403, "signature_mismatch")), (stale, (403, "stale"))]:
        test_id, response = send(envoy, delivery)
        assert (response.status_code, reason(response)) == expected, response.text
        sent.append(test_id)
    assert_never_delivered(upstream, *sent, envoy=envoy)


def meta_check(**params):
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444",
             "hub.verify_token": PROVIDER_SECRETS["META_VERIFY_TOKEN"], **params}
    return "/meta/webhook?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})


def test_meta_subscription_check_is_answered_with_the_challenge_as_plain_text(envoy, upstream):
    test_id = f"meta-{time.monotonic_ns()}"
    with envoy.https_client() as client:
        response = client.get(meta_check(), headers={"x-test-id": test_id})
    answered(response, "text/plain", b"1158201444")
    assert_never_delivered(upstream, test_id, envoy=envoy)


@pytest.mark.parametrize("params, expected", [
    ({"hub.verify_token": "not-the-token"}, (403, "signature_mismatch")),
    ({"hub.verify_token": None}, (401, "missing_signature")),
    ({"hub.challenge": None}, (400, "malformed_header")),
    # Not a subscription check: an unsigned GET like any other.
    ({"hub.mode": None}, (401, "missing_signature")),
], ids=["wrong token", "no token", "no challenge", "no mode"])
def test_a_meta_subscription_check_without_the_right_token_is_refused(envoy, upstream, params, expected):
    test_id = f"meta-{time.monotonic_ns()}"
    with envoy.https_client() as client:
        response = client.get(meta_check(**params), headers={"x-test-id": test_id})
    assert (response.status_code, reason(response)) == expected, response.text
    assert_never_delivered(upstream, test_id, envoy=envoy)


def test_zoom_url_validation_is_answered_as_zooms_own_sdk_answers_it(envoy, upstream):
    zoom = Zoom()
    body = json.dumps({"payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"},
                       "event_ts": int(time.time() * 1000), "event": "endpoint.url_validation"},
                      separators=(",", ":")).encode()
    delivery = zoom.deliver(body)
    oracle = node_oracle("zoom", zoom.secret, delivery, delivery.time)
    assert oracle["accepted"] and "encryptedToken" in oracle["reply"]
    test_id, response = send(envoy, delivery)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == oracle["reply"]
    forged = zoom.deliver(body, secret="not-the-secret")
    forged_id, refused = send(envoy, forged)
    assert (refused.status_code, reason(refused)) == (403, "signature_mismatch")
    assert_never_delivered(upstream, test_id, forged_id, envoy=envoy)


def test_discord_ping_is_ponged_and_a_bad_one_is_401(envoy, upstream):
    discord = Discord()
    ping = discord.deliver(b'{"type":1}')
    assert discord.sdk_accepts(ping)
    test_id, response = send(envoy, ping)
    answered(response, "application/json", b'{"type":1}')
    # Discord's own probe: a PING whose signature does not verify.
    probe = discord.deliver(b'{"type":1}', secret=bytes(range(96, 128)))
    probe_id, refused = send(envoy, probe)
    assert (refused.status_code, reason(refused)) == (401, "signature_mismatch")
    assert_never_delivered(upstream, test_id, probe_id, envoy=envoy)


def test_twitch_callback_verification_echoes_the_challenge(envoy, upstream):
    twitch = Twitch()
    body = json.dumps({"challenge": "pogchamp-kappa-360noscope-vohiyo",
                       "subscription": {"type": "channel.follow"}}).encode()
    delivery = twitch.deliver(body, kind="webhook_callback_verification")
    assert twitch.sdk_accepts(delivery)
    test_id, response = send(envoy, delivery)
    answered(response, "text/plain", b"pogchamp-kappa-360noscope-vohiyo")
    # The message type is not signed: claiming a verification without a challenge is refused.
    claimed = twitch.deliver(kind="webhook_callback_verification")
    claimed_id, refused = send(envoy, claimed)
    assert (refused.status_code, reason(refused)) == (400, "malformed_body")
    assert_never_delivered(upstream, test_id, claimed_id, envoy=envoy)


def get(envoy, path, *headers):
    test_id = f"check-{time.monotonic_ns()}"
    with envoy.https_client() as client:
        return test_id, client.get(path, headers=[*headers, ("x-test-id", test_id)])


def test_dropbox_challenge_is_echoed_as_plain_text(envoy, upstream):
    test_id, response = get(envoy, "/dropbox/webhook?challenge=" + CHALLENGE)
    answered(response, "text/plain", CHALLENGE.encode())
    assert response.headers["x-content-type-options"] == "nosniff"
    # Not echoed: a value with a control character, or twice; a GET without one is unsigned.
    refused = [get(envoy, "/dropbox/webhook?challenge=a%0Ab"), get(envoy, "/dropbox/webhook?challenge=a&challenge=b"),
               get(envoy, "/dropbox/webhook")]
    assert [(r.status_code, reason(r)) for _, r in refused] == [
        (400, "malformed_header"), (400, "duplicate_header"), (401, "missing_signature")]
    assert_never_delivered(upstream, test_id, *[t for t, _ in refused], envoy=envoy)


def test_twitter_crc_is_answered_with_the_mac_of_the_token_only(envoy, upstream):
    """X's documented answer, computed here with the standard library; and no answer that
    could serve as the signature of a body: the MAC is only of a token's characters."""
    import hashlib
    import hmac
    token = base64.b64encode(b"a crc token from X").decode()
    test_id, response = get(envoy, "/twitter/webhook?crc_token=" + urllib.parse.quote(token) + "&nonce=1")
    mac = hmac.new(PROVIDER_SECRETS["TWITTER_CONSUMER_SECRET"].encode(), token.encode(), hashlib.sha256).digest()
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == {"response_token": "sha256=" + base64.b64encode(mac).decode()}
    body = json.dumps({"for_user_id": "1", "tweet_create_events": []}).encode()
    forged_id, forged = get(envoy, "/twitter/webhook?crc_token=" + urllib.parse.quote(body))
    assert (forged.status_code, reason(forged)) == (400, "malformed_header"), forged.text
    assert_never_delivered(upstream, test_id, forged_id, envoy=envoy)


@pytest.mark.parametrize("path, header, expected", [
    ("/worldline/webhook", "X-GCS-Webhooks-Endpoint-Verification", ("text/plain", b"verify-me-123")),
    ("/okta/hook", "X-Okta-Verification-Challenge", ("application/json", b'{"verification":"verify-me-123"}')),
], ids=["Worldline", "Okta"])
def test_a_header_challenge_is_echoed_in_the_providers_format(envoy, upstream, path, header, expected):
    test_id, response = get(envoy, path, (header, "verify-me-123"))
    answered(response, *expected)
    assert_never_delivered(upstream, test_id, envoy=envoy)


def test_mandrills_url_probe_is_answered_at_the_edge(envoy, upstream):
    test_id = f"check-{time.monotonic_ns()}"
    with envoy.https_client() as client:
        response = client.head("/mailchimp/webhook", headers={"x-test-id": test_id})
    assert response.status_code == 200 and response.content == b"", response.text
    assert_never_delivered(upstream, test_id, envoy=envoy)


def test_a_route_that_does_not_answer_handshakes_refuses_an_unsigned_check(start_envoy, upstream):
    dropbox = next(r for r in shipped_plugin_config()["routes"] if r["name"] == "dropbox")
    proxy = start_envoy({"routes": [dict(dropbox, answer_handshakes=False)]})
    test_id, response = get(proxy, "/dropbox/webhook?challenge=" + CHALLENGE)
    assert (response.status_code, reason(response)) == (401, "missing_signature"), response.text
    assert_never_delivered(upstream, test_id, envoy=proxy)


def test_a_route_that_does_not_answer_handshakes_forwards_them_verified(start_envoy, upstream):
    slack = next(r for r in shipped_plugin_config()["routes"] if r["name"] == "slack")
    proxy = start_envoy({"routes": [dict(slack, answer_handshakes=False)]})
    delivery = slack_url_verification()
    test_id, response = send(proxy, delivery)
    assert response.status_code == 200 and response.json()["method"] == "POST", response.text
    assert len(delivered(upstream, test_id)) == 1


def test_sendgrid_accepts_the_high_s_twin_as_its_sdk_does(envoy, upstream):
    """OpenSSL, under SendGrid's SDK, accepts (r, n - s) as well as (r, s): so does the filter."""
    sendgrid = SendGrid()
    delivery = sendgrid.deliver()
    headers = dict(delivery.headers)
    r, s = decode_dss_signature(base64.b64decode(headers[sendgrid.signature_header]))
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    twin = base64.b64encode(encode_dss_signature(r, n - s)).decode()
    twinned = replace(delivery, headers=[(k, twin if k == sendgrid.signature_header else v)
                                         for k, v in delivery.headers])
    assert sendgrid.sdk_accepts(twinned)
    test_id, response = send(envoy, twinned)
    assert response.status_code == 200 and reason(response) is None, response.text
    assert len(delivered(upstream, test_id)) == 1


def test_discord_refuses_a_malleated_signature_as_libsodium_does(envoy, upstream):
    """S + L signs the same message to a verifier that reduces S; libsodium (under Discord's
    SDK) refuses it, and so does the filter."""
    discord = Discord()
    delivery = discord.deliver()
    signature = bytes.fromhex(dict(delivery.headers)["X-Signature-Ed25519"])
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(signature[32:], "little") + order
    malleated = (signature[:32] + s.to_bytes(32, "little")).hex()
    moved = replace(delivery, headers=[(k, malleated if k == "X-Signature-Ed25519" else v)
                                       for k, v in delivery.headers])
    assert not discord.sdk_accepts(moved)
    test_id, response = send(envoy, moved)
    assert (response.status_code, reason(response)) == (401, "signature_mismatch")
    assert_never_delivered(upstream, test_id, envoy=envoy)
