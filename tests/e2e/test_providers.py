"""Every provider of the shipped configuration, end to end through a real Envoy: each request
signed by the provider's official SDK (tests/e2e/providers.py), which also cross-checks it.
A genuine callback is delivered once; a wrong secret, one changed byte of the body or of any
signed header, a missing or malformed signature, a signed time outside the window (both
ways) are refused and never reach the upstream; an exact repeat is not delivered twice; the
provider's retry after a failed delivery goes through; a captured request moved to another
path or query is refused."""
import json
import time

import pytest

from providers import PROVIDERS, BasicAuth, provider_id, GitLab, Mailgun, Okta, StaticToken, Telegram, changed, replace
from raw import seen_by_upstream


def send(envoy, delivery, *extra):
    """Posts a delivery with a fresh x-test-id; returns (test id, response)."""
    test_id = f"providers-{time.monotonic_ns()}"
    with envoy.https_client() as client:
        response = client.post(delivery.path, headers=[*delivery.headers, *extra, ("x-test-id", test_id)],
                               content=delivery.body)
    return test_id, response


def reason(response):
    try:
        return response.json().get("reason")
    except ValueError:
        return None


def delivered(upstream, test_id):
    return [r for r in seen_by_upstream(upstream).get(test_id, []) if not r["truncated"]]


providers = pytest.mark.parametrize("provider", PROVIDERS, ids=provider_id)


@providers
def test_a_genuine_callback_is_delivered_once_and_its_repeat_is_not(envoy, upstream, provider):
    delivery = provider.deliver()
    assert provider.sdk_accepts(delivery)
    test_id, response = send(envoy, delivery)
    assert response.status_code == 200 and reason(response) is None, response.text
    [record] = delivered(upstream, test_id)
    assert record["path"] == delivery.path
    assert record["body"].encode() == delivery.body
    repeat_id, repeat = send(envoy, delivery)
    if provider.repeats:
        # Twilio sends identical requests itself (the same digits twice): delivered again.
        assert (repeat.status_code, reason(repeat)) == (200, None), repeat.text
        assert len(delivered(upstream, repeat_id)) == 1
    else:
        assert (repeat.status_code, reason(repeat)) == (200, "already_delivered")
        assert delivered(upstream, repeat_id) == []


@providers
def test_a_wrong_secret_or_one_changed_byte_never_verifies(envoy, upstream, provider):
    refused = []
    wrong = provider.deliver(secret=provider.wrong_secret)
    assert not provider.sdk_accepts(wrong)
    cases = [("wrong secret", wrong)]
    genuine = provider.deliver()
    if provider.body_signed:
        body = bytearray(genuine.body)
        body[len(body) // 2] ^= 0x01
        cases.append(("changed body byte", replace(genuine, body=bytes(body))))
    for name in provider.signed_headers:
        headers = [(k, changed(v) if k == name else v) for k, v in genuine.headers]
        cases.append((f"changed {name}", replace(genuine, headers=headers)))
    for what, delivery in cases:
        test_id, response = send(envoy, delivery)
        assert (response.status_code, reason(response)) == provider.mismatch, (what, response.text)
        refused.append(test_id)
    assert not [t for t in refused if seen_by_upstream(upstream).get(t)]


@providers
def test_a_missing_or_malformed_signature_is_refused(envoy, upstream, provider):
    genuine = provider.deliver()
    sent = []
    for delivery, expected in (provider.without_signature(genuine),
                               provider.with_malformed_signature(genuine)):
        test_id, response = send(envoy, delivery)
        assert (response.status_code, reason(response)) == expected, response.text
        sent.append(test_id)
    assert [delivered(upstream, t) for t in sent] == [[], []]


TIMED = [p for p in PROVIDERS if p.window]


@pytest.mark.parametrize("provider", TIMED, ids=provider_id)
@pytest.mark.parametrize("side, expected", [(0, "stale"), (1, "future")])
def test_a_signed_time_outside_the_window_is_refused_both_ways(envoy, upstream, provider, side, expected):
    # A minute beyond the route's window, on either side.
    shift = provider.window[side] + 60
    delivery = provider.deliver(at=time.time() + (shift if side else -shift))
    assert provider.sdk_accepts(delivery)  # genuinely signed, at that time
    test_id, response = send(envoy, delivery)
    assert (response.status_code, reason(response)) == (403, expected), response.text
    assert delivered(upstream, test_id) == []


@providers
def test_the_providers_retry_after_a_failed_delivery_goes_through(envoy, upstream, provider):
    first = provider.deliver()
    failed_id, failed = send(envoy, first, ("x-demo-fail", "1"))
    assert failed.status_code == 500
    # The provider sends the same event again: re-signed at a new time where it does so.
    retry = provider.deliver(same=first, at=time.time() + 1) if provider.resigns else first
    assert provider.sdk_accepts(retry)
    retry_id, response = send(envoy, retry)
    assert response.status_code == 200 and reason(response) is None, response.text
    assert len(delivered(upstream, failed_id)) == len(delivered(upstream, retry_id)) == 1
    again_id, again = send(envoy, retry)
    expected = (200, None) if provider.repeats else (200, "already_delivered")
    assert (again.status_code, reason(again)) == expected, again.text


@providers
def test_a_captured_callback_moved_elsewhere_is_refused(envoy, upstream, provider):
    delivery = provider.deliver()
    _, response = send(envoy, delivery)
    assert response.status_code == 200, response.text
    moves = [(provider.path("other"), provider.path_signed),
             (delivery.path + ("&" if "?" in delivery.path else "?") + "copy=1", provider.query_signed)]
    for path, signed in moves:
        moved = type(delivery)(path, delivery.headers, delivery.body)
        test_id, answer = send(envoy, moved)
        # A signed path or query fails the signature; an unsigned one is bound by the replay
        # fingerprint: the same delivery elsewhere is tampering.
        expected = provider.mismatch if signed else (409, "replay_tampered")
        assert (answer.status_code, reason(answer)) == expected, (path, answer.text)
        assert delivered(upstream, test_id) == []


def test_mailgun_delivers_each_signature_once_whatever_body_comes_with_it(envoy, upstream):
    """Mailgun signs timestamp and token, not the event data: a captured signature block can
    travel with any body. The filter delivers each token once, and refuses it again with
    another body as tampering; a changed timestamp or token fails the signature."""
    mailgun = Mailgun()
    genuine = mailgun.deliver()
    test_id, response = send(envoy, genuine)
    assert response.status_code == 200, response.text
    forged = replace(genuine, body=genuine.body.replace(b"delivered", b"complained"))
    assert mailgun.sdk_accepts(forged), "the SDK cannot tell: the event data is unsigned"
    forged_id, answer = send(envoy, forged)
    assert (answer.status_code, reason(answer)) == (409, "replay_tampered"), answer.text
    sent = []
    # changed(): the token's last character replaced by another (a fixed "0" would sometimes
    # be the same token, and its genuine signature then a plain repeat).
    for name, value in [("timestamp", str(genuine.time + 1)), ("token", changed(genuine.identity))]:
        changed_id, refused = send(envoy, mailgun.signed_field(genuine, name, value))
        assert (refused.status_code, reason(refused)) == (403, "signature_mismatch"), (name, refused.text)
        sent.append(changed_id)
    assert len(delivered(upstream, test_id)) == 1
    assert [delivered(upstream, t) for t in (forged_id, *sent)] == [[], [], []]


@pytest.mark.parametrize("provider", [StaticToken(), GitLab(), Telegram(), Okta(), BasicAuth()],
                         ids=provider_id)
def test_a_static_credential_delivers_each_id_once_and_binds_its_body(envoy, upstream, provider):
    """Nothing is signed: the credential admits whoever has it. The filter delivers each delivery id
    once, and the same id with another body is tampering; a new id with any body is a new
    delivery (what a static credential cannot prevent, README "Static credentials")."""
    genuine = provider.deliver()
    test_id, response = send(envoy, genuine)
    assert response.status_code == 200, response.text
    altered = provider.deliver(same=genuine, body=genuine.body.replace(b"\xc3", b"\xc3\xa9\xc3"))
    assert altered.body != genuine.body and provider.sdk_accepts(altered)
    altered_id, answer = send(envoy, altered)
    assert (answer.status_code, reason(answer)) == (409, "replay_tampered"), answer.text
    other = provider.deliver()
    other_id, fresh = send(envoy, other)
    assert (fresh.status_code, reason(fresh)) == (200, None), fresh.text
    assert [len(delivered(upstream, t)) for t in (test_id, altered_id, other_id)] == [1, 0, 1]


def test_every_shipped_route_has_a_provider_test():
    from harness import shipped_plugin_config
    routes = {r["name"] for r in shipped_plugin_config()["routes"]}
    # Pub/Sub's own file (test_pubsub.py): Envoy's jwt_authn, not the filter, answers the
    # table's wrong-key and changed-byte cases there.
    tested = {p.name for p in PROVIDERS} | {"vobiz-voice", "vobiz-whatsapp", "vobiz-kyc", "google-pubsub"}
    assert routes == tested, routes ^ tested
    assert json.dumps(sorted(routes))
