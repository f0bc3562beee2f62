"""AWS SNS, whose key the network holds: the filter fetches the certificate a message names
through the route's Envoy cluster, once per Envoy, and only from where the route allows.
Each test runs its own certificate server (the harness's Upstream), so that every fetch it
counts is its own. What can be refused without the certificate is refused before any
fetch; a certificate that cannot be had is a 503 the provider retries, and nothing of it
is kept; the shipped production cluster (envoy/sns-certificates-cluster.yaml) fetches over
TLS that checks the server's name, and a server without that name gets no request."""
import shutil
import time

import pytest

from harness import (ROOT, SNS_DEMO_FILE, Envoy, Upstream, free_port,
                     shipped_plugin_config)
from key_clusters import only_from_a_server_of_that_name
from providers import Sns
from raw import assert_delivered_once, assert_never_delivered
from test_providers import reason, send

SNS = Sns()
CERTIFICATES = ROOT / "core/src/providers/sns"
DEMO_PATH = f"/{SNS_DEMO_FILE}"
HOST = "sns.us-east-1.amazonaws.com"


def certificate_file(n):
    """The n-th name SNS could give a certificate: SimpleNotificationService-<32 hex>."""
    return f"SimpleNotificationService-{n:032x}.pem"


def sns_plugin(**certificate):
    """The shipped sns route alone, its certificate block changed by `certificate`."""
    [route] = [r for r in shipped_plugin_config()["routes"] if r["name"] == "sns"]
    return {"routes": [{**route, "certificate": {**route["certificate"], **certificate}}]}


@pytest.fixture
def own(tmp_path, cert):
    """A fresh upstream and certificate server, and Envoys in front of them (the shipped
    sns route, two workers): (upstream, start(plugin=None, **Envoy options))."""
    started = []
    upstream = Upstream(tmp_path)

    def start(plugin=None, **kwargs):
        proxy = Envoy(tmp_path, upstream, cert, plugin or sns_plugin(), **kwargs)
        started.append(proxy)
        return proxy

    yield upstream, start
    for proxy in started:
        proxy.stop()
    upstream.stop()


def signed(at=None, url=None, **fields):
    """A genuine delivery of the route's topic naming the certificate at `url`."""
    members = SNS.message(at=at, **({"SigningCertURL": url} if url else {}), **fields)
    return SNS.delivery(SNS.signed(members))


def test_one_fetch_serves_every_later_message_of_its_certificate(own):
    upstream, start = own
    envoy = start()
    deliveries = [signed() for _ in range(6)]
    for delivery in deliveries:
        assert SNS.sdk_accepts(delivery)
        test_id, response = send(envoy, delivery)
        assert (response.status_code, reason(response)) == (200, None), response.text
        assert_delivered_once(upstream, test_id, body=delivery.body)
    # One GET, of the path the URL names, with the URL's host as :authority.
    assert upstream.fetches() == [{"path": DEMO_PATH, "host": HOST}]


def test_both_signature_versions_and_a_subscription_confirmation_are_delivered(own):
    upstream, start = own
    envoy = start()
    confirmation = SNS.message(kind="SubscriptionConfirmation", Token="2336412f37fb687f5d51e6e2425" * 4,
                               SubscribeURL=f"https://{HOST}/?Action=ConfirmSubscription&TopicArn={SNS.secret}"
                                            "&Token=2336412f37fb687f5d51e6e2425",
                               Message="You have chosen to subscribe to the topic. To confirm, visit the SubscribeURL.")
    for delivery in (signed(SignatureVersion="2"), SNS.delivery(SNS.signed(confirmation)),
                     signed(Subject="Alarm: café")):
        assert SNS.sdk_accepts(delivery)
        test_id, response = send(envoy, delivery)
        assert (response.status_code, reason(response)) == (200, None), response.text
        assert_delivered_once(upstream, test_id, body=delivery.body)
        repeat_id, repeat = send(envoy, delivery)
        assert (repeat.status_code, reason(repeat)) == (200, "already_delivered")
    assert len(upstream.fetches()) == 1


def test_a_route_that_confirms_subscriptions_confirms_them_itself_and_the_application_sees_none(own):
    """certificate.confirm_subscriptions: a verified SubscriptionConfirmation is confirmed by
    the filter (a GET of its signed SubscribeURL through the route's cluster) and answered
    there; SNS answering otherwise than 200 is a 503 SNS retries, and the retry goes through."""
    upstream, start = own
    envoy = start(sns_plugin(confirm_subscriptions=True))

    def confirmation(token):
        members = SNS.message(kind="SubscriptionConfirmation", Token=token,
                              SubscribeURL=f"https://{HOST}/?Action=ConfirmSubscription&TopicArn={SNS.secret}"
                                           f"&Token={token}",
                              Message="You have chosen to subscribe to the topic.")
        return SNS.delivery(SNS.signed(members))

    first = confirmation("2336412f37fb687f5d51e6e2425" * 4)
    assert SNS.sdk_accepts(first)
    test_id, response = send(envoy, first)
    assert (response.status_code, response.json()) == (200, {"result": "confirmed"}), response.text
    # SNS's repeat (it may not have had the answer) is answered alike, not confirmed again.
    repeat_id, repeat = send(envoy, first)
    assert (repeat.status_code, repeat.json()) == (200, {"result": "confirmed"}), repeat.text
    # A notification on the route goes to the application as ever.
    notification = signed()
    notified_id, notified = send(envoy, notification)
    assert (notified.status_code, reason(notified)) == (200, None), notified.text
    assert_delivered_once(upstream, notified_id, body=notification.body)
    # SNS refuses the confirmation (an expired token): 503, and nothing kept of it.
    (upstream.certificates / "refuse-confirmations").write_text("")
    second = confirmation("5a7c" * 32)
    refused_id, refused = send(envoy, second)
    assert (refused.status_code, reason(refused)) == (503, "key_unavailable"), refused.text
    (upstream.certificates / "refuse-confirmations").unlink()
    retry_id, retried = send(envoy, second)
    assert (retried.status_code, retried.json()) == (200, {"result": "confirmed"}), retried.text
    assert_never_delivered(upstream, test_id, repeat_id, refused_id, retry_id, envoy=envoy)
    confirms = [f for f in upstream.fetches() if f["path"].startswith("/?Action=ConfirmSubscription&")]
    assert [(f["host"], f["path"].rsplit("=", 1)[1]) for f in confirms] == [
        (HOST, "2336412f37fb687f5d51e6e2425" * 4), (HOST, "5a7c" * 32), (HOST, "5a7c" * 32)]


def test_what_can_be_refused_without_the_certificate_is_refused_before_any_fetch(own):
    upstream, start = own
    envoy = start()
    elsewhere = "arn:aws:sns:us-east-1:123456789012:someone-elses-topic"
    cases = [
        # Where the certificate would come from: only https://sns.us-east-1.amazonaws.com/<name>.pem.
        (signed(url=f"https://{HOST}.evil.example/{SNS_DEMO_FILE}"), (400, "malformed_body")),
        (signed(url=f"https://sns.eu-west-1.amazonaws.com/{SNS_DEMO_FILE}"), (400, "malformed_body")),
        (signed(url=f"http://{HOST}/{SNS_DEMO_FILE}"), (400, "malformed_body")),
        (signed(url=f"https://{HOST}/certs/{SNS_DEMO_FILE}"), (400, "malformed_body")),
        (signed(url=f"https://{HOST}:8443/{SNS_DEMO_FILE}"), (400, "malformed_body")),
        # A file SNS would not name, or the legacy endpoint of an S3 bucket called "sns".
        (signed(url=f"https://{HOST}/callback-guard.pem"), (400, "malformed_body")),
        (signed(url=f"https://sns.s3-us-east-1.amazonaws.com/{SNS_DEMO_FILE}"), (400, "malformed_body")),
        # Another topic, a stale or future message, a header that says otherwise.
        (signed(TopicArn=elsewhere), (403, "signature_mismatch")),
        (signed(at=time.time() - 3700), (403, "stale")),
        (signed(at=time.time() + 400), (403, "future")),
        (signed(MessageId="not-a-uuid"), (400, "malformed_body")),
    ]
    topic_header = signed()
    topic_header.headers = [(k, elsewhere if k == "x-amz-sns-topic-arn" else v) for k, v in topic_header.headers]
    cases.append((topic_header, (400, "malformed_header")))
    sent = []
    for delivery, expected in cases:
        test_id, response = send(envoy, delivery)
        assert (response.status_code, reason(response)) == expected, (delivery.body, response.text)
        sent.append(test_id)
    assert_never_delivered(upstream, *sent, envoy=envoy)
    assert upstream.fetches() == []


def test_a_certificate_that_cannot_be_had_is_a_503_and_nothing_of_it_is_kept(own):
    upstream, start = own
    envoy = start()
    missing, garbage, small, other, later = (certificate_file(n) for n in range(1, 6))
    (upstream.certificates / garbage).write_text("-----BEGIN CERTIFICATE-----\nAAAA\n")
    shutil.copy(CERTIFICATES / "small-certificate.pem", upstream.certificates / small)
    shutil.copy(CERTIFICATES / "other-certificate.pem", upstream.certificates / other)
    cases = [(missing, (503, "key_unavailable")), (garbage, (503, "key_unavailable")),
             (small, (503, "key_unavailable")), (other, (403, "signature_mismatch"))]
    sent = []
    for name, expected in cases:
        delivery = signed(url=f"https://{HOST}/{name}")
        test_id, response = send(envoy, delivery)
        assert (response.status_code, reason(response)) == expected, (name, response.text)
        sent.append(test_id)
    assert_never_delivered(upstream, *sent, envoy=envoy)
    assert [f["path"] for f in upstream.fetches()] == [f"/{name}" for name, _ in cases]
    # SNS retries the same message; once its certificate is there, it goes through.
    retry = signed(url=f"https://{HOST}/{later}")
    _, refused = send(envoy, retry)
    assert (refused.status_code, reason(refused)) == (503, "key_unavailable")
    shutil.copy(CERTIFICATES / "demo-certificate.pem", upstream.certificates / later)
    test_id, response = send(envoy, retry)
    assert (response.status_code, reason(response)) == (200, None), response.text
    assert_delivered_once(upstream, test_id, body=retry.body)


def test_an_unreachable_or_undeclared_cluster_is_a_503(own, cert):
    upstream, start = own
    closed = {"name": "sns_certificates", "type": "STATIC", "connect_timeout": "0.25s",
              "load_assignment": {"cluster_name": "sns_certificates", "endpoints": [{"lb_endpoints": [
                  {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": free_port()}}}}]}]}}
    unreachable = start(clusters=[closed])
    undeclared = start(sns_plugin(cluster="no_such_cluster"))
    sent = []
    for envoy in (unreachable, undeclared):
        test_id, response = send(envoy, signed())
        assert (response.status_code, reason(response)) == (503, "key_unavailable"), response.text
        sent.append(test_id)
    assert_never_delivered(upstream, *sent)
    assert upstream.fetches() == []


@pytest.mark.parametrize("name, expected", [(HOST, (200, None)), ("sns.evil.example", (503, "key_unavailable"))])
def test_the_shipped_production_cluster_fetches_only_from_a_server_of_that_name(tmp_path, cert, name, expected):
    only_from_a_server_of_that_name(tmp_path, cert, cluster="sns-certificates-cluster.yaml", name=name,
                                    plugin=sns_plugin(), deliver=signed, expected=expected,
                                    fetched=[{"path": DEMO_PATH, "host": HOST}])
