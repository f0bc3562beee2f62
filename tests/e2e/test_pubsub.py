"""Google Cloud Pub/Sub push, composed as the README describes: Envoy's own jwt_authn
(envoy/envoy.yaml) fetches the token keys through its cluster, verifies each push's token
and leaves the payload in the request's metadata; callback-guard's google-pubsub route
checks the account, the audience and the time there and keeps each message to one
delivery. Tokens are signed by Google's auth library (google.auth.jwt) with a key the
test made and served as Google serves its JWKS, and judged by the same library as Google's
samples judge them (id_token.verify_oauth2_token, then email and email_verified)."""
import base64
import copy
import json
import time
from pathlib import Path
from unittest import mock

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt, exceptions, jwt
from google.oauth2 import id_token

from harness import (PROVIDER_SECRETS, ROOT, Envoy, Upstream,
                     shipped_plugin_config)
from key_clusters import only_from_a_server_of_that_name
from raw import assert_delivered_once, assert_never_delivered
from test_providers import reason, send

ACCOUNT = PROVIDER_SECRETS["PUBSUB_SERVICE_ACCOUNT"]
JWKS_PATH = "/oauth2/v3/certs"
JWKS_HOST = "www.googleapis.com"


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def jwk(key, kid):
    numbers = key.public_key().public_numbers()
    b64 = lambda n: base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()
    return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": b64(numbers.n), "e": b64(numbers.e)}


GOOGLE, OTHER = new_key(), new_key()
KID = "e2e-google-key"


def pubsub_route():
    [route] = [r for r in shipped_plugin_config()["routes"] if r.get("scheme") == "google_pubsub"]
    return route


AUDIENCE = pubsub_route()["jwt"]["audience"]


class Push:
    """A push as Pub/Sub sends it: a wrapped message and a token issued `iat` seconds ago."""

    def __init__(self, message_id=None, data=b'{"order":42}', *, key=GOOGLE, kid=KID, **claims):
        now = int(time.time())
        self.claims = {"aud": AUDIENCE, "azp": "113774264463038321964", "email": ACCOUNT,
                       "email_verified": True, "iat": now, "exp": now + 3600,
                       "iss": "https://accounts.google.com", "sub": "113774264463038321964", **claims}
        self.claims = {k: v for k, v in self.claims.items() if v is not None}
        signer = crypt.RSASigner.from_string(pem(key), key_id=kid)
        self.token = jwt.encode(signer, self.claims).decode()
        message_id = message_id or str(time.monotonic_ns())
        self.body = json.dumps({"message": {"attributes": {"kind": "order"},
                                            "data": base64.b64encode(data).decode(),
                                            "messageId": message_id, "message_id": message_id,
                                            "publishTime": "2026-12-04T10:00:00.000Z",
                                            "publish_time": "2026-12-04T10:00:00.000Z"},
                                "subscription": "projects/e2e/subscriptions/orders"}).encode()
        self.path = "/pubsub/push"

    @property
    def headers(self):
        token = [("authorization", f"Bearer {self.token}")] if self.token else []
        return [("content-type", "application/json"), *token]

    def with_token(self, token):
        other = copy.copy(self)
        other.token = token
        return other

    def with_body(self, body):
        other = copy.copy(self)
        other.body = body
        return other


def sdk_accepts(push):
    """What Google's samples accept: verify_oauth2_token (signature under Google's keys,
    issuer, audience, expiry), then the service account and email_verified."""
    certs = {KID: public_pem(GOOGLE)}
    try:
        with mock.patch.object(id_token, "_fetch_certs", lambda request, url: certs):
            claims = id_token.verify_oauth2_token(push.token, None, AUDIENCE)
    except (ValueError, exceptions.GoogleAuthError):
        return False
    return claims.get("email") == ACCOUNT and claims.get("email_verified") is True


def serve_keys(upstream, *keys):
    (upstream.certificates / "jwks.json").write_text(json.dumps({"keys": list(keys)}))


@pytest.fixture
def own(tmp_path, cert):
    """A fresh upstream serving the test's JWKS as Google's, and the shipped Envoy (its
    jwt_authn, the google-pubsub route alone)."""
    upstream = Upstream(tmp_path)
    serve_keys(upstream, jwk(GOOGLE, KID))
    envoy = Envoy(tmp_path, upstream, cert, {"routes": [pubsub_route()]})
    yield upstream, envoy
    envoy.stop()
    upstream.stop()


def answer(envoy, push):
    test_id, response = send(envoy, push)
    return test_id, (response.status_code, reason(response)), response


def test_a_push_is_delivered_once_under_its_token_and_its_keys_are_fetched_once(own):
    upstream, envoy = own
    push = Push()
    assert sdk_accepts(push)
    test_id, verdict, response = answer(envoy, push)
    assert verdict == (200, None), response.text
    record = assert_delivered_once(upstream, test_id, body=push.body)
    # jwt_authn strips the token (forward: false): the application never holds it.
    assert "authorization" not in {name for name, _ in record["headers"]}
    again_id, verdict, _ = answer(envoy, push)
    assert verdict == (200, "already_delivered")
    # Another message under the same token (Pub/Sub reuses a token for an hour) is new.
    other = Push()
    other_id, verdict, _ = answer(envoy, other.with_token(push.token))
    assert verdict == (200, None)
    assert_delivered_once(upstream, other_id, body=other.body)
    # Another body under a message id the token delivered is tampering, though Google's
    # library accepts the token: it does not cover the body.
    forged = Push(message_id=json.loads(push.body)["message"]["messageId"], data=b'{"order":666}')
    forged = forged.with_token(push.token)
    assert sdk_accepts(forged)
    forged_id, verdict, _ = answer(envoy, forged)
    assert verdict == (409, "replay_tampered")
    assert_never_delivered(upstream, again_id, forged_id, envoy=envoy)
    # jwt_authn caches the keys in each worker (two here): at most one fetch each.
    fetches = upstream.fetches()
    assert 1 <= len(fetches) <= 2 and all(f == {"path": JWKS_PATH, "host": JWKS_HOST} for f in fetches)


def test_a_failed_delivery_is_delivered_again_when_pubsub_retries(own):
    upstream, envoy = own
    push = Push()
    failing = ("x-demo-fail", "1")
    test_id, response = send(envoy, push, failing)
    assert response.status_code == 500
    retry_id, verdict, response = answer(envoy, push)
    assert verdict == (200, None), response.text
    assert_delivered_once(upstream, retry_id, body=push.body)


def tampered_signature(token):
    head, payload, signature = token.split(".")
    flipped = "A" if signature[5] != "A" else "B"
    return f"{head}.{payload}.{signature[:5]}{flipped}{signature[6:]}"


def tampered_payload(token):
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["email"] = "attacker@evil.iam.gserviceaccount.com"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{signature}"


# What jwt_authn refuses itself: callback-guard never sees these, nor does the application.
REFUSED_BY_JWT_AUTHN = [
    ("no token", lambda: Push().with_token(None), 401),
    ("signed by a key Google does not publish", lambda: Push(key=OTHER), 401),
    ("signed by another key under Google's kid", lambda: Push(key=OTHER, kid=KID), 401),
    ("a byte of the signature changed", lambda: (p := Push()).with_token(tampered_signature(p.token)), 401),
    ("the payload changed", lambda: (p := Push()).with_token(tampered_payload(p.token)), 401),
    ("expired", lambda: Push(iat=int(time.time()) - 4000, exp=int(time.time()) - 400), 401),
    ("another audience", lambda: Push(aud="https://127.0.0.1:8443/pubsub/other"), 403),
    ("another issuer", lambda: Push(iss="https://evil.example"), 401),
]

# Tokens jwt_authn verifies that callback-guard refuses, as Google's samples do.
REFUSED_BY_THE_ROUTE = [
    ("another service account", lambda: Push(email="other@e2e.iam.gserviceaccount.com"), (403, "signature_mismatch")),
    ("an unverified email", lambda: Push(email_verified=False), (403, "signature_mismatch")),
    ("no email", lambda: Push(email=None), (400, "malformed_header")),
    ("issued in the future", lambda: Push(iat=int(time.time()) + 600, exp=int(time.time()) + 4200), (403, "future")),
    ("a body that is not a push", lambda: Push().with_body(b'{"messageId": "1"}'), (400, "malformed_body")),
]


@pytest.mark.parametrize("what, make, status", REFUSED_BY_JWT_AUTHN, ids=[c[0] for c in REFUSED_BY_JWT_AUTHN])
def test_what_jwt_authn_refuses_reaches_neither_the_filter_nor_the_app(own, what, make, status):
    upstream, envoy = own
    push = make()
    test_id, response = send(envoy, push)
    assert response.status_code == status, response.text
    assert reason(response) is None, "refused by jwt_authn, not by callback-guard"
    if push.token:
        assert not sdk_accepts(push), "Google's library refuses it too"
    assert_never_delivered(upstream, test_id, envoy=envoy)


@pytest.mark.parametrize("what, make, expected", REFUSED_BY_THE_ROUTE, ids=[c[0] for c in REFUSED_BY_THE_ROUTE])
def test_what_the_route_refuses_of_a_verified_token_never_reaches_the_app(own, what, make, expected):
    upstream, envoy = own
    push = make()
    test_id, verdict, response = answer(envoy, push)
    assert verdict == expected, response.text
    if what != "a body that is not a push":
        assert not sdk_accepts(push), "Google's samples refuse it too"
    assert_never_delivered(upstream, test_id, envoy=envoy)


def test_a_token_in_the_query_is_not_taken(own):
    """Only Authorization carries the token: ?access_token= (which jwt_authn takes by
    default and cannot strip) is no token at all, and never reaches the application."""
    upstream, envoy = own
    push = Push()
    query = copy.copy(push.with_token(None))
    query.path = f"{push.path}?access_token={push.token}"
    test_id, response = send(envoy, query)
    assert response.status_code == 401 and reason(response) is None, response.text
    assert_never_delivered(upstream, test_id, envoy=envoy)


def test_without_jwt_authn_in_front_a_genuine_token_is_refused(tmp_path, cert):
    """The route trusts only what jwt_authn verified: with the filter missing from the
    chain (a misconfiguration), a genuine push is refused, never passed unverified."""
    upstream = Upstream(tmp_path)
    config = yaml.safe_load((ROOT / "envoy/envoy.yaml").read_text())
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    filters = [f for f in manager["http_filters"] if f["name"] != "envoy.filters.http.jwt_authn"]
    envoy = Envoy(tmp_path, upstream, cert, {"routes": [pubsub_route()]}, hcm={"http_filters": filters})
    try:
        push = Push()
        test_id, verdict, response = answer(envoy, push)
        assert verdict == (401, "missing_signature"), response.text
        # The log line names what is missing and where it should have come from.
        assert "no token verified by jwt_authn" in envoy.log_text()
        assert_never_delivered(upstream, test_id, envoy=envoy)
    finally:
        envoy.stop()
        upstream.stop()


def test_the_shipped_jwt_authn_verifies_what_the_route_reads():
    """envoy/envoy.yaml's jwt_authn: Google's JWKS through google_jwks, both forms of the
    issuer, the route's audience, the payload under the route's key, on the route's path."""
    config = yaml.safe_load((ROOT / "envoy/envoy.yaml").read_text())
    route = pubsub_route()
    for listener in config["static_resources"]["listeners"]:
        filters = listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
        names = [f["name"] for f in filters]
        assert names.index("envoy.filters.http.jwt_authn") < names.index("callback_guard")
        [authn] = [f["typed_config"] for f in filters if f["name"] == "envoy.filters.http.jwt_authn"]
        providers = authn["providers"]
        assert {p["issuer"] for p in providers.values()} == {"https://accounts.google.com", "accounts.google.com"}
        for provider in providers.values():
            assert provider["audiences"] == [route["jwt"]["audience"]]
            assert provider["payload_in_metadata"] == route["jwt"].get("metadata_key", "payload")
            assert provider["remote_jwks"]["http_uri"]["uri"] == f"https://{JWKS_HOST}{JWKS_PATH}"
            assert provider["remote_jwks"]["http_uri"]["cluster"] == "google_jwks"
            assert not provider.get("forward", False)
            # Authorization only: a token jwt_authn takes from ?access_token= stays in the path.
            assert provider["from_headers"] == [{"name": "Authorization", "value_prefix": "Bearer "}]
        [rule] = authn["rules"]
        assert rule["match"] == {"prefix": route["path_prefix"]}
        required = rule["requires"]["requires_any"]["requirements"]
        assert {r["provider_name"] for r in required} == set(providers)


@pytest.mark.parametrize("name, expected", [(JWKS_HOST, (200, None)), ("www.googleapis.evil.example", (401, None))])
def test_the_shipped_jwks_cluster_takes_keys_only_from_a_server_of_that_name(tmp_path, cert, name, expected):
    """No keys from another server: jwt_authn refuses every token (401, its own answer)."""
    only_from_a_server_of_that_name(tmp_path, cert, cluster="google-jwks-cluster.yaml", name=name,
                                    plugin={"routes": [pubsub_route()]}, deliver=Push, expected=expected,
                                    fetched=[{"path": JWKS_PATH, "host": JWKS_HOST}],  # one push, one worker
                                    serve=lambda upstream: serve_keys(upstream, jwk(GOOGLE, KID)))
