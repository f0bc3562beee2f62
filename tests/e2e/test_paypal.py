"""PayPal, whose key the network holds too: the filter fetches the certificate
PAYPAL-CERT-URL names through the route's Envoy cluster, once per Envoy, and only PayPal's
path on the hosts the route allows. The body is signed only through its CRC-32, so a second
body of the same CRC under a captured transmission is refused as tampering, though PayPal's
own SDK accepts it. The table-driven suite (test_providers.py) covers the rest: delivered
once, wrong key, changed byte, stale, retried."""
from dataclasses import replace
import time
import zlib

import pytest

from harness import PAYPAL_DEMO_FILE, Envoy, Upstream, shipped_plugin_config
from key_clusters import only_from_a_server_of_that_name
from providers import PayPal
from raw import assert_delivered_once, assert_never_delivered
from test_providers import reason, send

PAYPAL = PayPal()
HOST = "api.paypal.com"
DEMO_PATH = f"/v1/notifications/certs/{PAYPAL_DEMO_FILE}"


def paypal_plugin():
    """The shipped paypal route alone."""
    return {"routes": [r for r in shipped_plugin_config()["routes"] if r["name"] == "paypal"]}


@pytest.fixture
def own(tmp_path, cert):
    """A fresh upstream and certificate server, and an Envoy in front of them (the shipped
    paypal route, two workers)."""
    upstream = Upstream(tmp_path)
    envoy = Envoy(tmp_path, upstream, cert, paypal_plugin())
    yield upstream, envoy
    envoy.stop()
    upstream.stop()


def with_header(delivery, name, value):
    return replace(delivery, headers=[(k, value if k == name else v) for k, v in delivery.headers])


def same_crc(body, target):
    """`body` with a member appended whose string makes its CRC-32 `target`: what anyone can
    do to a body PayPal signs only through its CRC. The CRC is affine over GF(2), so the bit
    flips that move it by the difference are solved for; each of twelve characters flips only
    its low five bits from a backtick, staying within `a-z{|}~ and DEL, which a JSON string
    holds as they are."""
    free = 12
    base = body[:-1] + b',"x":"' + b"`" * free + b'"}'
    at = len(body) - 1 + len(b',"x":"')

    def flipped(data, bit):
        data = bytearray(data)
        data[at + bit // 5] ^= 1 << (bit % 5)
        return data

    crc = zlib.crc32(base)
    basis = []  # (effect on the CRC, the flips that make it), by decreasing effect
    for bit in range(free * 5):
        row = (zlib.crc32(flipped(base, bit)) ^ crc, 1 << bit)
        for effect, flips in basis:
            if row[0] ^ effect < row[0]:
                row = (row[0] ^ effect, row[1] ^ flips)
        if row[0]:
            basis = sorted([*basis, row], reverse=True)
    want = (crc ^ target, 0)
    for effect, flips in basis:
        if want[0] ^ effect < want[0]:
            want = (want[0] ^ effect, want[1] ^ flips)
    assert want[0] == 0, "the flips span every CRC"
    forged = base
    for bit in (b for b in range(free * 5) if want[1] >> b & 1):
        forged = flipped(forged, bit)
    return bytes(forged)


def test_one_fetch_serves_every_later_transmission_of_its_certificate(own):
    upstream, envoy = own
    for _ in range(5):
        delivery = PAYPAL.deliver()
        assert PAYPAL.sdk_accepts(delivery)
        test_id, response = send(envoy, delivery)
        assert (response.status_code, reason(response)) == (200, None), response.text
        assert_delivered_once(upstream, test_id, body=delivery.body)
    # One GET, of the path the URL names, with the URL's host as :authority.
    assert upstream.fetches() == [{"path": DEMO_PATH, "host": HOST}]


def test_another_body_of_the_same_crc_is_tampering_though_the_sdk_accepts_it(own):
    upstream, envoy = own
    genuine = PAYPAL.deliver()
    test_id, response = send(envoy, genuine)
    assert (response.status_code, reason(response)) == (200, None), response.text
    refund = genuine.body.replace(b"PAYMENT.CAPTURE.COMPLETED", b"PAYMENT.CAPTURE.REFUNDED")
    forged = replace(genuine, body=same_crc(refund, zlib.crc32(genuine.body)))
    assert b"REFUNDED" in forged.body and zlib.crc32(forged.body) == zlib.crc32(genuine.body)
    assert PAYPAL.sdk_accepts(forged), "the SDK cannot tell: the body is signed only through its CRC"
    forged_id, answer = send(envoy, forged)
    assert (answer.status_code, reason(answer)) == (409, "replay_tampered"), answer.text
    assert_delivered_once(upstream, test_id, body=genuine.body)
    assert_never_delivered(upstream, forged_id, envoy=envoy)


def test_what_can_be_refused_without_the_certificate_is_refused_before_any_fetch(own):
    upstream, envoy = own
    url = "PAYPAL-CERT-URL"
    cases = [
        # Where the certificate would come from: only https://api.paypal.com/v1/notifications/certs/CERT-...
        (with_header(PAYPAL.deliver(), url, f"https://{HOST}.evil.example{DEMO_PATH}"), (400, "malformed_header")),
        (with_header(PAYPAL.deliver(), url, f"https://api.sandbox.paypal.com{DEMO_PATH}"), (400, "malformed_header")),
        (with_header(PAYPAL.deliver(), url, f"http://{HOST}{DEMO_PATH}"), (400, "malformed_header")),
        (with_header(PAYPAL.deliver(), url, f"https://{HOST}/v1/oauth2/token"), (400, "malformed_header")),
        (with_header(PAYPAL.deliver(), url, f"https://{HOST}{DEMO_PATH}?x=1"), (400, "malformed_header")),
        # A digest PayPal does not sign with, a transmission not in PayPal's format, a stale one.
        (with_header(PAYPAL.deliver(), "PAYPAL-AUTH-ALGO", "SHA1withRSA"), (400, "malformed_header")),
        (with_header(PAYPAL.deliver(), "PAYPAL-TRANSMISSION-ID", "WH-1|2"), (400, "malformed_header")),
        (with_header(PAYPAL.deliver(), "PAYPAL-TRANSMISSION-TIME", "Thu, 03 Dec 2026 18:00:00 GMT"),
         (400, "malformed_header")),
        (PAYPAL.deliver(at=time.time() - 1000), (403, "stale")),
    ]
    sent = []
    for delivery, expected in cases:
        test_id, response = send(envoy, delivery)
        assert (response.status_code, reason(response)) == expected, (delivery.headers, response.text)
        sent.append(test_id)
    assert_never_delivered(upstream, *sent, envoy=envoy)
    assert upstream.fetches() == []


@pytest.mark.parametrize("name, expected", [(HOST, (200, None)), ("api.paypal.evil.example", (503, "key_unavailable"))])
def test_the_shipped_production_cluster_fetches_only_from_a_server_of_that_name(tmp_path, cert, name, expected):
    only_from_a_server_of_that_name(tmp_path, cert, cluster="paypal-certificates-cluster.yaml", name=name,
                                    plugin=paypal_plugin(), deliver=PAYPAL.deliver, expected=expected,
                                    fetched=[{"path": DEMO_PATH, "host": HOST}])


def test_forgeries_naming_fresh_certificates_spend_the_minutes_fetches_not_the_kept_keys(tmp_path, cert):
    """Nothing secret gates a fetch (a forgery needs only PayPal's format and a fresh time),
    so a cluster starts at most `certificate.fetches_per_minute` fetches a minute in one
    Envoy; beyond, 503 without a fetch. A certificate already kept still verifies."""
    [route] = paypal_plugin()["routes"]
    route = {**route, "certificate": {**route["certificate"], "fetches_per_minute": 3}}
    upstream = Upstream(tmp_path)
    envoy = Envoy(tmp_path, upstream, cert, {"routes": [route]})
    try:
        # All within one minute of the clock the budget counts by (the test takes seconds).
        if time.time() % 60 > 45:
            time.sleep(61 - time.time() % 60)
        genuine = PAYPAL.deliver()
        test_id, response = send(envoy, genuine)
        assert (response.status_code, reason(response)) == (200, None), response.text
        sent = []
        for n in range(1, 5):
            fresh = f"https://{HOST}/v1/notifications/certs/CERT-00000000-00000000-{n:08x}"
            test_id, answer = send(envoy, with_header(PAYPAL.deliver(), "PAYPAL-CERT-URL", fresh))
            assert (answer.status_code, reason(answer)) == (503, "key_unavailable"), answer.text
            sent.append(test_id)
        # The kept certificate, and two fetches of absent ones: the fourth was never made.
        assert [f["path"].rsplit("-", 1)[1] for f in upstream.fetches()] == ["0000de30", "00000001", "00000002"]
        again = PAYPAL.deliver()
        again_id, response = send(envoy, again)
        assert (response.status_code, reason(response)) == (200, None), response.text
        assert_delivered_once(upstream, again_id, body=again.body)
        assert_never_delivered(upstream, *sent, envoy=envoy)
    finally:
        envoy.stop()
        upstream.stop()
