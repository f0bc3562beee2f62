"""What each provider sends, signed by the provider's own official SDK (or the standard
library where the reference says there is none), and that SDK's verifier as a cross-check
of every request a test sends. Secrets are those the harness gives the shipped routes."""
import base64
import datetime as dt
import hashlib
import hmac
import json
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field

import githubkit.webhooks
import plivo.utils
import plivo.utils.signature_v3
import slack_sdk.signature
import standardwebhooks.webhooks
import stripe
import svix.webhooks
from twilio.request_validator import RequestValidator

from harness import PROVIDER_SECRETS

# The public origin of the shipped URL-signed routes (what the provider calls).
ORIGIN = "https://127.0.0.1:8443"
JSON = ("content-type", "application/json")
FORM = ("content-type", "application/x-www-form-urlencoded")


@dataclass
class Delivery:
    """One request as the provider sends it: path (with query), headers, body."""
    path: str
    headers: list
    body: bytes
    time: int = 0
    identity: str = ""
    extra: dict = field(default_factory=dict)


def utc(seconds):
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)


def json_event(kind="event"):
    """A fresh JSON body, with a non-ASCII character as real events have."""
    return json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": kind, "note": "café"},
                      ensure_ascii=False, separators=(",", ":")).encode()


class Provider:
    name = ""            # the shipped route's name
    prefix = ""          # and its path prefix
    env = ""             # the environment variable holding its secret
    signed_headers = ()  # headers a changed byte of must never verify
    signature_header = ""
    timed = False        # signs a time, checked within ±5 min
    resigns = False      # a retry carries a new time and signature
    path_signed = False  # moving a captured request to another path fails its signature
    query_signed = False

    @property
    def secret(self):
        return PROVIDER_SECRETS[self.env]

    def path(self, suffix="events"):
        return self.prefix + suffix

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        """A delivery signed now (or at `at`); `same` re-sends another delivery's event as the
        provider's retry would."""
        raise NotImplementedError

    def sdk_accepts(self, delivery, secret=None):
        raise NotImplementedError


class StandardWebhooks(Provider):
    name, prefix, env = "standard-webhooks", "/standard/", "STANDARD_WEBHOOKS_SECRET"
    ids = ("webhook-id", "webhook-timestamp", "webhook-signature")
    signed_headers = ids[:2]
    signature_header = ids[2]
    timed = resigns = True
    sdk = standardwebhooks.webhooks
    # Where the time check reads the clock (Svix's verifier delegates to this one).
    clock = standardwebhooks.webhooks

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json_event())
        msg_id = same.identity if same else f"msg_{uuid.uuid4().hex}"
        at = int(at if at is not None else time.time())
        signature = self.sdk.Webhook(secret or self.secret).sign(msg_id, utc(at), body.decode())
        names = self.ids
        headers = [JSON, (names[0], msg_id), (names[1], str(at)), (names[2], signature)]
        return Delivery(path or self.path(), headers, body, at, msg_id)

    def sdk_accepts(self, delivery, secret=None):
        frozen = utc(delivery.time)

        class Frozen(dt.datetime):
            @classmethod
            def now(cls, tz=None):
                return frozen

        original = self.clock.datetime
        self.clock.datetime = Frozen
        try:
            self.sdk.Webhook(secret or self.secret).verify(delivery.body, dict(delivery.headers[1:]))
            return True
        except Exception:  # the SDKs raise several kinds (see providers.md §2.1)
            return False
        finally:
            self.clock.datetime = original


class Svix(StandardWebhooks):
    name, prefix, env = "svix", "/svix/", "SVIX_WEBHOOK_SECRET"
    ids = ("svix-id", "svix-timestamp", "svix-signature")
    signed_headers = ids[:2]
    signature_header = ids[2]
    sdk = svix.webhooks


class Stripe(Provider):
    name, prefix, env = "stripe", "/stripe/", "STRIPE_WEBHOOK_SECRET"
    signature_header = "Stripe-Signature"
    timed = resigns = True

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json_event("payment_intent.succeeded"))
        at = int(at if at is not None else time.time())
        header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret or self.secret, at)
        return Delivery(path or self.path(), [JSON, ("Stripe-Signature", header)], body, at)

    def sdk_accepts(self, delivery, secret=None):
        header = dict(delivery.headers)["Stripe-Signature"]
        try:
            return stripe.WebhookSignature.verify_header(delivery.body.decode(), header,
                                                         secret or self.secret, tolerance=None)
        except stripe.SignatureVerificationError:
            return False


class GitHub(Provider):
    name, prefix, env = "github", "/github/", "GITHUB_WEBHOOK_SECRET"
    signature_header = "X-Hub-Signature-256"

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json_event("push"))
        signature = githubkit.webhooks.sign(secret or self.secret, body.decode(), method="sha256")
        headers = [JSON, ("X-Hub-Signature-256", signature), ("X-GitHub-Event", "push"),
                   ("X-GitHub-Delivery", str(uuid.uuid4()))]
        return Delivery(path or self.path(), headers, body)

    def sdk_accepts(self, delivery, secret=None):
        signature = dict(delivery.headers)["X-Hub-Signature-256"]
        return githubkit.webhooks.verify(secret or self.secret, delivery.body.decode(), signature)


class Slack(Provider):
    name, prefix, env = "slack", "/slack/", "SLACK_SIGNING_SECRET"
    signed_headers = ("X-Slack-Request-Timestamp",)
    signature_header = "X-Slack-Signature"
    timed = resigns = True

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json_event("event_callback"))
        at = int(at if at is not None else time.time())
        verifier = slack_sdk.signature.SignatureVerifier(secret or self.secret)
        signature = verifier.generate_signature(timestamp=str(at), body=body)
        headers = [JSON, ("X-Slack-Request-Timestamp", str(at)), ("X-Slack-Signature", signature)]
        return Delivery(path or self.path(), headers, body, at)

    def sdk_accepts(self, delivery, secret=None):
        frozen = delivery.time

        class Clock(slack_sdk.signature.Clock):
            def now(self):
                return float(frozen)

        verifier = slack_sdk.signature.SignatureVerifier(secret or self.secret, clock=Clock())
        headers = dict(delivery.headers)
        return verifier.is_valid(delivery.body, headers["X-Slack-Request-Timestamp"],
                                 headers["X-Slack-Signature"])


class Twilio(Provider):
    """Form POSTs: the URL (query included) and the parameters are signed."""
    name, prefix, env = "twilio", "/twilio/", "TWILIO_AUTH_TOKEN"
    signature_header = "X-Twilio-Signature"
    path_signed = query_signed = True

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or urllib.parse.urlencode(
            {"CallSid": f"CA{uuid.uuid4().hex}", "CallStatus": "ringing", "From": "+12349013030",
             "To": "+18005551212", "Caller": "+12349013030"}).encode())
        path = path or self.path("voice?foo=1")
        params = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        signature = RequestValidator(secret or self.secret).compute_signature(ORIGIN + path, params)
        return Delivery(path, [FORM, ("X-Twilio-Signature", signature)], body)

    def sdk_accepts(self, delivery, secret=None):
        params = dict(urllib.parse.parse_qsl(delivery.body.decode(), keep_blank_values=True))
        signature = dict(delivery.headers)["X-Twilio-Signature"]
        return RequestValidator(secret or self.secret).validate(ORIGIN + delivery.path, params, signature)


class TwilioJson(Twilio):
    """JSON bodies: signed through `bodySHA256` in the URL."""

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json_event("call.status"))
        digest = hashlib.sha256(body).hexdigest()
        path = path or self.path(f"events?bodySHA256={digest}")
        signature = RequestValidator(secret or self.secret).compute_signature(ORIGIN + path, {})
        return Delivery(path, [JSON, ("X-Twilio-Signature", signature)], body)

    def sdk_accepts(self, delivery, secret=None):
        signature = dict(delivery.headers)["X-Twilio-Signature"]
        return RequestValidator(secret or self.secret).validate(ORIGIN + delivery.path,
                                                                delivery.body.decode(), signature)


class Plivo(Provider):
    """V3 as the SDK signs a POST: URL, query and form parameters, and the nonce."""
    name, prefix, env = "plivo", "/plivo/", "PLIVO_AUTH_TOKEN"
    signed_headers = ("X-Plivo-Signature-V3-Nonce",)
    signature_header = "X-Plivo-Signature-V3"
    path_signed = query_signed = True

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or urllib.parse.urlencode(
            {"CallUUID": str(uuid.uuid4()), "Event": "Hangup", "From": "14155550123"}).encode())
        nonce = same.identity if same else f"{uuid.uuid4().int % 10**20:020d}"
        path = path or self.path("hangup?x=1")
        params = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        url = plivo.utils.signature_v3.construct_post_url(ORIGIN + path, params)
        signature = plivo.utils.signature_v3.get_signature_v3(
            (secret or self.secret).encode(), url.decode(), nonce.encode()).decode()
        headers = [FORM, ("X-Plivo-Signature-V3", signature), ("X-Plivo-Signature-V3-Nonce", nonce)]
        return Delivery(path, headers, body, identity=nonce)

    def sdk_accepts(self, delivery, secret=None):
        params = dict(urllib.parse.parse_qsl(delivery.body.decode(), keep_blank_values=True))
        headers = dict(delivery.headers)
        return plivo.utils.validate_v3_signature("POST", ORIGIN + delivery.path,
                                                 headers["X-Plivo-Signature-V3-Nonce"],
                                                 secret or self.secret,
                                                 headers["X-Plivo-Signature-V3"], params)


def stdlib_mac(secret, body, digest=hashlib.sha256):
    return hmac.new(secret.encode(), body, digest).digest()


class Shopify(Provider):
    """No Python SDK verifies Shopify webhooks (providers.md §2.7): the standard library."""
    name, prefix, env = "shopify", "/shopify/", "SHOPIFY_WEBHOOK_SECRET"
    signature_header = "X-Shopify-Hmac-Sha256"

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json_event("orders/create"))
        signature = base64.b64encode(stdlib_mac(secret or self.secret, body)).decode()
        headers = [JSON, ("X-Shopify-Hmac-Sha256", signature), ("X-Shopify-Topic", "orders/create"),
                   ("X-Shopify-Webhook-Id", str(uuid.uuid4()))]
        return Delivery(path or self.path(), headers, body)

    def sdk_accepts(self, delivery, secret=None):
        expected = base64.b64encode(stdlib_mac(secret or self.secret, delivery.body)).decode()
        return hmac.compare_digest(expected, dict(delivery.headers)["X-Shopify-Hmac-Sha256"])


class Meta(Provider):
    """No SDK verifies Meta webhooks (providers.md §2.8): the standard library."""
    name, prefix, env = "meta", "/meta/", "META_APP_SECRET"
    signature_header = "X-Hub-Signature-256"

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json.dumps(
            {"object": "whatsapp_business_account", "entry": [{"id": uuid.uuid4().hex, "changes": []}]},
            separators=(",", ":")).encode())
        signature = "sha256=" + stdlib_mac(secret or self.secret, body).hex()
        return Delivery(path or self.path(), [JSON, ("X-Hub-Signature-256", signature)], body)

    def sdk_accepts(self, delivery, secret=None):
        expected = "sha256=" + stdlib_mac(secret or self.secret, delivery.body).hex()
        return hmac.compare_digest(expected, dict(delivery.headers)["X-Hub-Signature-256"])


class Generic(GitHub):
    """The demo's generic_hmac route, configured as GitHub's scheme: githubkit signs."""
    name, prefix, env = "generic", "/generic/", "GENERIC_WEBHOOK_SECRET"


PROVIDERS = [StandardWebhooks(), Svix(), Stripe(), GitHub(), Slack(), Twilio(), TwilioJson(),
             Plivo(), Shopify(), Meta(), Generic()]
