"""Differential: each provider's official SDK judges the same mutated bytes the filter judges.

For every provider route of the shipped configuration, about thirty mutations of a genuine
delivery (its body, its signature header, its signed time, its path, method, Content-Type
and header names), each made from its OWN fresh genuine delivery (so the replay memory never
decides: the unmutated delivery is never sent first), go through the session Envoy. The
filter ACCEPTS a request iff it answers 200 with no JSON `reason` and the upstream recorded
it; anything else is REFUSED. The provider's SDK (providers.py `sdk_accepts`) is then asked
about the same request, called as an application behind Envoy would call it:

- its clock at the real time the request was sent (`sdk_accepts` freezes the SDK's clock at
  `delivery.time`, so the judged delivery carries the send time there, not the signed time);
- headers looked up case-insensitively and without surrounding whitespace, as every HTTP
  server hands them to the application (RFC 9110 §5.5);
- a form provider's parameters parsed from the body only for a POST whose Content-Type is
  a form (a framework gives a GET, or a `text/plain` POST, no form parameters);
- Stripe with `construct_event`'s tolerance (300 s, the past only);
- any exception the SDK raises counts as a refusal.

The verdicts must agree, except for the disagreements listed in DELIBERATE with their reason;
an entry there that no longer disagrees fails the test too, so the table stays true. A tally
per provider is printed and written to target/differential-tally.json.
"""
import base64
import hashlib
import hmac
import json
import re
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import nacl.signing
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from twilio.request_validator import RequestValidator

import providers as P
from harness import ROOT
from providers import ORIGIN, PROVIDERS, changed, replace
from raw import http1_exchange, http1_head, seen_by_upstream


def ident(provider):
    """The provider's name in the tally and DELIBERATE (both Twilio modes share a route)."""
    return "twilio-json" if isinstance(provider, P.TwilioJson) else provider.name


# ----------------------------------------------------------------------------------------
# Where each provider's signature is: the header (or Mailgun's body field), how the MAC is
# encoded, the label or prefix in front of it, and for list headers how entries are joined.

HEX = "hex"
B64 = "b64"


class Anatomy:
    def __init__(self, header=None, encoding=HEX, label="", sep=None, unknown=(), spaced=None):
        self.header = header
        self.encoding = encoding
        self.label = label      # what precedes the MAC in its entry: "sha256=", "v1,", "v1="
        self.sep = sep          # the list separator, for headers holding several signatures
        self.unknown = unknown  # (mutation name, entry) of entries a verifier must skip
        self.spaced = spaced    # the separator written with a space, where that is a question

    def get(self, delivery):
        return next(v for k, v in delivery.headers if k.lower() == self.header.lower())

    def put(self, delivery, value):
        return replace(delivery, headers=[(k, value if k.lower() == self.header.lower() else v)
                                          for k, v in delivery.headers])

    def locate(self, value):
        """(start, end) of the (first) MAC in the value."""
        start = value.index(self.label) + len(self.label) if self.label else 0
        alphabet = "0-9a-fA-F" if self.encoding == HEX else "A-Za-z0-9+/"
        end = re.compile(f"[{alphabet}]*" + ("=*" if self.encoding == B64 else "")).match(value, start).end()
        return start, end


class MailgunAnatomy(Anatomy):
    """Mailgun's signature is the `signature.signature` field of the JSON body."""

    def get(self, delivery):
        return json.loads(delivery.body)["signature"]["signature"]

    def put(self, delivery, value):
        return P.Mailgun().signed_field(delivery, "signature", value)


class SnsAnatomy(Anatomy):
    """SNS's signature is the `Signature` member of the JSON body."""

    def get(self, delivery):
        return json.loads(delivery.body)["Signature"]

    def put(self, delivery, value):
        return P.Sns().delivery({**json.loads(delivery.body), "Signature": value}, delivery.path)


SW = dict(encoding=B64, label="v1,", sep=" ",
          unknown=[("sig_unknown_entry_v2", "v2," + base64.b64encode(bytes(32)).decode())],
          spaced="  ")
ANATOMY = {
    "standard-webhooks": Anatomy("webhook-signature", **SW),
    "svix": Anatomy("svix-signature", **SW),
    "clerk": Anatomy("svix-signature", **SW),
    "resend": Anatomy("svix-signature", **SW),
    "stripe": Anatomy("Stripe-Signature", label="v1=", sep=",", spaced=", ",
                      unknown=[("sig_unknown_entry_v0", "v0=" + "0" * 64), ("sig_unknown_entry_x", "x=1")]),
    "github": Anatomy("X-Hub-Signature-256", label="sha256="),
    "generic": Anatomy("X-Hub-Signature-256", label="sha256="),
    "slack": Anatomy("X-Slack-Signature", label="v0="),
    "twilio": Anatomy("X-Twilio-Signature", B64),
    "twilio-json": Anatomy("X-Twilio-Signature", B64),
    "plivo": Anatomy("X-Plivo-Signature-V3", B64, sep=",", spaced=", ",
                     unknown=[("sig_list_wrong_first", base64.b64encode(bytes(32)).decode())]),
    "shopify": Anatomy("X-Shopify-Hmac-Sha256", B64),
    "meta": Anatomy("X-Hub-Signature-256", label="sha256="),
    "discord": Anatomy("X-Signature-Ed25519"),
    "sendgrid": Anatomy("X-Twilio-Email-Event-Webhook-Signature", B64),
    "telnyx": Anatomy("telnyx-signature-ed25519", B64),
    "mailgun": MailgunAnatomy(),
    "razorpay": Anatomy("X-Razorpay-Signature"),
    "paddle": Anatomy("Paddle-Signature", label="h1=", sep=";",
                      unknown=[("sig_unknown_entry_h2", "h2=" + "0" * 64)]),
    "square": Anatomy("X-Square-Hmacsha256-Signature", B64),
    "hubspot": Anatomy("X-HubSpot-Signature-v3", B64),
    "linear": Anatomy("Linear-Signature"),
    "zoom": Anatomy("x-zm-signature", label="v0="),
    "pagerduty": Anatomy("X-PagerDuty-Signature", label="v1=", sep=",", spaced=", ",
                         unknown=[("sig_unknown_entry_v2", "v2=" + "0" * 64)]),
    "intercom": Anatomy("X-Hub-Signature", label="sha1="),
    "twitch": Anatomy("Twitch-Eventsub-Message-Signature", label="sha256="),
    "bitbucket": Anatomy("X-Hub-Signature", label="sha256="),
    "xero": Anatomy("x-xero-signature", B64),
    "dropbox": Anatomy("X-Dropbox-Signature"),
    "twitter": Anatomy("x-twitter-webhooks-signature", B64, label="sha256="),
    "box": Anatomy("box-signature-primary", B64),
    "docusign": Anatomy("X-DocuSign-Signature-1", B64),
    "worldline": Anatomy("X-GCS-Signature", B64),
    "sns": SnsAnatomy(encoding=B64),
    "paypal": Anatomy("PAYPAL-TRANSMISSION-SIG", B64),
    "contentful": Anatomy("x-contentful-signature"),
    "hygraph": Anatomy("gcms-signature", B64, label="sign="),
}

B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def b64_flip(mac, bit):
    """The base64 text with one bit of its last significant sextet flipped: bit 5 always
    changes the decoded bytes; bit 0 changes only padding bits when there is padding."""
    i = len(mac.rstrip("=")) - 1
    return mac[:i] + B64_ALPHABET[B64_ALPHABET.index(mac[i]) ^ (1 << bit)] + mac[i + 1:]


# ----------------------------------------------------------------------------------------
# Re-signing with another timestamp text (what a sender who writes `+t` or `t.5` sends).

def hmac_hex(key, message, digest=hashlib.sha256):
    key = key if isinstance(key, bytes) else key.encode()
    return hmac.new(key, message, digest).hexdigest()


def header(delivery, name):
    return next(v for k, v in delivery.headers if k.lower() == name.lower())


def with_header(delivery, name, value):
    return replace(delivery, headers=[(k, value if k.lower() == name.lower() else v)
                                      for k, v in delivery.headers])


def retime(provider, d, text, resign):
    """`d` with its signed time written as `text`, re-signed over that text or not."""
    name, body = ident(provider), d.body
    if isinstance(provider, P.StandardWebhooks):  # Svix, Clerk, Resend too
        id_name, ts_name, sig_name = provider.ids
        d = with_header(d, ts_name, text)
        if resign:
            key = base64.b64decode(provider.secret.removeprefix("whsec_"))
            mac = hmac.new(key, f"{header(d, id_name)}.{text}.".encode() + body, hashlib.sha256).digest()
            d = with_header(d, sig_name, "v1," + base64.b64encode(mac).decode())
        return d
    if name == "stripe":
        mac = header(d, "Stripe-Signature").split("v1=")[1]
        if resign:
            mac = hmac_hex(provider.secret, f"{text}.".encode() + body)
        return with_header(d, "Stripe-Signature", f"t={text},v1={mac}")
    if name == "paddle":
        mac = header(d, "Paddle-Signature").split("h1=")[1]
        if resign:
            mac = hmac_hex(provider.secret, f"{text}:".encode() + body)
        return with_header(d, "Paddle-Signature", f"ts={text};h1={mac}")
    if name in ("slack", "zoom"):
        ts_name, sig_name = ("X-Slack-Request-Timestamp", "X-Slack-Signature") if name == "slack" else \
            ("x-zm-request-timestamp", "x-zm-signature")
        d = with_header(d, ts_name, text)
        if resign:
            d = with_header(d, sig_name, "v0=" + hmac_hex(provider.secret, f"v0:{text}:".encode() + body))
        return d
    if name == "discord":
        d = with_header(d, "X-Signature-Timestamp", text)
        if resign:
            signature = nacl.signing.SigningKey(P.DISCORD_SEED).sign(text.encode() + body).signature.hex()
            d = with_header(d, "X-Signature-Ed25519", signature)
        return d
    if name == "sendgrid":
        d = with_header(d, "X-Twilio-Email-Event-Webhook-Timestamp", text)
        if resign:
            key = ec.derive_private_key(P.SENDGRID_SCALAR, ec.SECP256R1())
            der = key.sign(text.encode() + body, ec.ECDSA(hashes.SHA256()))
            d = with_header(d, provider.signature_header, base64.b64encode(der).decode())
        return d
    if name == "hubspot":
        d = with_header(d, "X-HubSpot-Request-Timestamp", text)
        if resign:
            signature = P.hubspot.utils.signature.Signature.get_signature(
                provider.secret, body.decode(), "v3", ORIGIN + d.path, "POST", text)
            d = with_header(d, "X-HubSpot-Signature-v3", signature)
        return d
    if name == "mailgun":
        d = provider.signed_field(d, "timestamp", text)
        if resign:
            d = provider.signed_field(d, "signature", hmac_hex(provider.secret, f"{text}{d.identity}".encode()))
        return d
    raise AssertionError(f"no timestamp text for {name}")


def timestamp_text(provider, d):
    """The signed time as the delivery writes it (HubSpot's in milliseconds)."""
    name = ident(provider)
    if isinstance(provider, P.StandardWebhooks):
        return header(d, provider.ids[1])
    return {"stripe": lambda: header(d, "Stripe-Signature").split(",")[0][2:],
            "paddle": lambda: header(d, "Paddle-Signature").split(";")[0][3:],
            "slack": lambda: header(d, "X-Slack-Request-Timestamp"),
            "zoom": lambda: header(d, "x-zm-request-timestamp"),
            "discord": lambda: header(d, "X-Signature-Timestamp"),
            "sendgrid": lambda: header(d, "X-Twilio-Email-Event-Webhook-Timestamp"),
            "hubspot": lambda: header(d, "X-HubSpot-Request-Timestamp"),
            "mailgun": lambda: json.loads(d.body)["signature"]["timestamp"]}[name]()


TEXT_TIMESTAMPS = {"standard-webhooks", "svix", "clerk", "resend", "stripe", "paddle", "slack",
                   "zoom", "discord", "sendgrid", "hubspot", "mailgun"}


# ----------------------------------------------------------------------------------------
# The mutations: (name, build), where build() returns the request to send, made from a
# fresh genuine delivery of its own.

def genuine(provider, **kwargs):
    if isinstance(provider, P.SendGrid):
        # A DER signature of 72 bytes has no base64 padding: sign until it has some, so
        # the padding mutations mean the same on every run.
        for _ in range(64):
            d = provider.deliver(**kwargs)
            if header(d, provider.signature_header).endswith("="):
                return d
    return provider.deliver(**kwargs)


def with_method(d, method):
    return replace(d, extra={**d.extra, "method": method})


def set_content_type(d, value):
    headers = [(k, v) for k, v in d.headers if k.lower() != "content-type"]
    return replace(d, headers=headers if value is None else [("content-type", value), *headers])


def content_type(d):
    return next((v for k, v in d.headers if k.lower() == "content-type"), None)


def flip(body, index):
    body = bytearray(body)
    body[index] ^= 0x01
    return bytes(body)


def mutations(provider):
    name = ident(provider)
    anatomy = ANATOMY[name]
    out = []

    def add(mutation, build):
        out.append((mutation, build))

    def sig(transform, **kwargs):
        """A mutation of the signature value: transform(value, start, end) -> value."""
        def build():
            d = genuine(provider, **kwargs)
            value = anatomy.get(d)
            start, end = anatomy.locate(value)
            return anatomy.put(d, transform(value, start, end))
        return build

    add("genuine", lambda: genuine(provider))
    add("signed_with_wrong_secret", lambda: genuine(provider, secret=provider.wrong_secret))
    add("signature_removed", lambda: provider.without_signature(genuine(provider))[0])

    # The body.
    add("body_flip_first_byte", lambda: (lambda d: replace(d, body=flip(d.body, 0)))(genuine(provider)))
    add("body_flip_middle_byte", lambda: (lambda d: replace(d, body=flip(d.body, len(d.body) // 2)))(genuine(provider)))
    add("body_flip_last_byte", lambda: (lambda d: replace(d, body=flip(d.body, len(d.body) - 1)))(genuine(provider)))
    add("body_space_appended", lambda: (lambda d: replace(d, body=d.body + b" "))(genuine(provider)))
    add("body_last_byte_removed", lambda: (lambda d: replace(d, body=d.body[:-1]))(genuine(provider)))
    add("body_empty", lambda: replace(genuine(provider), body=b""))

    # The signature.
    add("sig_mac_uppercased", sig(lambda v, s, e: v[:s] + v[s:e].upper() + v[e:]))
    if anatomy.encoding == HEX:
        add("sig_last_char_changed", sig(lambda v, s, e: v[:s] + changed(v[s:e]) + v[e:]))
    else:
        add("sig_last_char_changed", sig(lambda v, s, e: v[:s] + b64_flip(v[s:e], 5) + v[e:]))
        add("sig_b64_padding_removed", sig(lambda v, s, e: v[:s] + v[s:e].rstrip("=") + v[e:]))
        add("sig_b64_padding_bits_set", sig(lambda v, s, e: v[:s] + b64_flip(v[s:e], 0) + v[e:]))
    add("sig_space_before_mac", sig(lambda v, s, e: v[:s] + " " + v[s:]))
    add("sig_space_after_mac", sig(lambda v, s, e: v[:e] + " " + v[e:]))
    if anatomy.label:
        add("sig_label_uppercased",
            sig(lambda v, s, e: v[:s - len(anatomy.label)] + anatomy.label.upper() + v[s:]))
        add("sig_label_removed", sig(lambda v, s, e: v[:s - len(anatomy.label)] + v[s:]))
    if name in ("github", "generic"):
        # githubkit checks a value not starting with `sha256=` as `sha1=` (sdk-verifiers.md §7).
        add("sig_sha1_downgrade", lambda: (lambda d: anatomy.put(d, "sha1=" + hmac_hex(
            provider.secret, d.body, hashlib.sha1)))(genuine(provider)))
    if anatomy.sep:
        entry_start = lambda s: s - len(anatomy.label)  # noqa: E731
        add("sig_entry_duplicated", sig(lambda v, s, e: v + anatomy.sep + v[entry_start(s):e]))
        for mutation, entry in anatomy.unknown:
            add(mutation, sig(lambda v, s, e, entry=entry:
                              v[:entry_start(s)] + entry + anatomy.sep + v[entry_start(s):]))
        if anatomy.spaced:
            if name == "stripe":  # t=…, v1=…
                add("sig_list_separator_spaced",
                    sig(lambda v, s, e: v[:entry_start(s) - 1] + anatomy.spaced + v[entry_start(s):]))
            else:  # a wrong entry, then the genuine one after the spaced separator
                wrong = anatomy.label + ("0" * 64 if anatomy.encoding == HEX
                                         else base64.b64encode(bytes(32)).decode())
                add("sig_list_separator_spaced",
                    sig(lambda v, s, e: v[:entry_start(s)] + wrong + anatomy.spaced + v[entry_start(s):]))

    # The signed time.
    if provider.window:
        past, future = provider.window
        for mutation, shift in (("ts_past_beyond_by_2s", -past - 2), ("ts_past_inside_by_2s", -past + 2),
                                ("ts_future_beyond_by_2s", future + 2), ("ts_future_inside_by_2s", future - 2)):
            add(mutation, lambda shift=shift: genuine(provider, at=time.time() + shift))
    if name in TEXT_TIMESTAMPS:
        for mutation, spell in (("leading_zero", lambda t: "0" + t), ("plus_sign", lambda t: "+" + t),
                                ("fraction", lambda t: t + ".5")):
            for resign in (True, False):
                add(f"ts_{mutation}_{'resigned' if resign else 'original_sig'}",
                    lambda spell=spell, resign=resign: (lambda d: retime(
                        provider, d, spell(timestamp_text(provider, d)), resign))(genuine(provider)))

    # The path, the method.
    def moved(transform):
        def build():
            d = genuine(provider)
            path, _, query = d.path.partition("?")
            return replace(d, path=transform(path) + ("?" + query if query else ""))
        return build

    add("path_other_under_prefix", moved(lambda p: provider.prefix + "other"))
    add("path_trailing_slash", moved(lambda p: p + "/"))
    add("path_query_added", lambda: (lambda d: replace(
        d, path=d.path + ("&" if "?" in d.path else "?") + "copy=1"))(genuine(provider)))
    add("method_get", lambda: with_method(genuine(provider), "GET"))

    # The Content-Type, the header names.
    add("content_type_text_plain", lambda: set_content_type(genuine(provider), "text/plain"))
    add("content_type_removed", lambda: set_content_type(genuine(provider), None))
    add("content_type_charset_utf8",
        lambda: (lambda d: set_content_type(d, content_type(d) + "; charset=utf-8"))(genuine(provider)))
    if name in JSON_ROUTES or name == "generic":
        add("content_type_plus_json", lambda: set_content_type(genuine(provider), "application/cloudevents+json"))
    else:  # a form route: the form declared as JSON
        add("content_type_json", lambda: set_content_type(genuine(provider), "application/json"))
    add("content_encoding_gzip", lambda: (lambda d: replace(
        d, headers=[*d.headers, ("Content-Encoding", "gzip")]))(genuine(provider)))
    add("header_names_uppercased",
        lambda: (lambda d: replace(d, headers=[(k.upper(), v) for k, v in d.headers]))(genuine(provider)))

    # Provider specifics.
    if name in ("svix", "clerk", "resend"):
        def renamed(which):
            def build():
                d = genuine(provider)
                return replace(d, headers=[(k.replace("svix-", "webhook-") if k in which else k, v)
                                           for k, v in d.headers])
            return build
        add("svix_names_as_webhook", renamed({"svix-id", "svix-timestamp", "svix-signature"}))
        add("svix_names_mixed", renamed({"svix-timestamp", "svix-signature"}))
    if name == "twilio":
        def signed_at(origin):
            def build():
                d = genuine(provider)
                params = dict(urllib.parse.parse_qsl(d.body.decode(), keep_blank_values=True))
                signature = RequestValidator(provider.secret).compute_signature(origin + d.path, params)
                return with_header(d, "X-Twilio-Signature", signature)
            return build
        add("twilio_signed_without_port", signed_at("https://127.0.0.1"))
        add("twilio_signed_with_another_port", signed_at("https://127.0.0.1:9443"))
    return out


# ----------------------------------------------------------------------------------------
# Disagreements the filter means to have, with why. (provider, mutation): (who accepts, why).

SVIX_FAMILY = ("standard-webhooks", "svix", "clerk")  # standardwebhooks' verifier (Svix's wraps it)
JSON_ROUTES = ("standard-webhooks", "svix", "clerk", "resend", "stripe", "github", "slack",
               "twilio-json", "shopify", "meta", "discord", "sendgrid", "mailgun", "razorpay",
               "paddle", "square", "hubspot", "linear", "zoom", "pagerduty", "intercom", "twitch",
               "bitbucket", "xero", "dropbox", "twitter", "box", "worldline", "telnyx", "paypal",
               "hygraph")
HEX_MACS = ("stripe", "github", "generic", "slack", "meta", "mailgun", "razorpay", "paddle",
            "linear", "zoom", "pagerduty", "intercom", "twitch", "bitbucket", "dropbox")
REFORMATS = SVIX_FAMILY + ("stripe", "paddle", "zoom")  # MAC the timestamp re-formatted as a number

STRICT_TYPE = ("the filter requires the provider's Content-Type (application/json or +json); "
               "the SDK verifies the raw bytes whatever the type says")
HEX_CASE = "the filter compares hex as bytes, so an upper-cased MAC is the same MAC; the SDK compares text"
NO_SDK_CLOCK = "the SDK checks no time at all; the route bounds the signed time (±300 s)"
VERBATIM_ZERO = ("the SDK MACs the timestamp text verbatim and its int() takes `0t`; the filter "
                 "refuses a leading zero, which no provider sends")
ORIGINAL_ZERO = "the SDK MACs the timestamp re-formatted (`0t` -> `t`); the filter MACs the text it got"
ORIGINAL_PLUS = ("the SDK reads `+t` as t and MACs `t`; the filter MACs the text it got and "
                 "refuses a signed timestamp")
ORIGINAL_FRACTION = "the SDK floors `t.5` and MACs `t`; the filter refuses a fractional timestamp"
VERBATIM_PLUS = ("the SDK MACs the timestamp text verbatim and its int()/float() (or no check) takes "
                 "`+t`; the filter refuses a signed timestamp, which no provider sends")
VERBATIM_FRACTION = ("the SDK MACs the timestamp text verbatim and takes `t.5` (or checks no time); "
                     "the filter refuses a fractional timestamp, which no provider sends")

DELIBERATE = {
    # The media type.
    **{(p, m): ("sdk", STRICT_TYPE) for p in JSON_ROUTES
       for m in ("content_type_text_plain", "content_type_removed")},
    **{(p, "content_encoding_gzip"): ("sdk", "the filter refuses a Content-Encoding (the application, or a "
                                             "filter after it, may decode the signed bytes into others); "
                                             "the SDK MACs the bytes as they came")
       for p in JSON_ROUTES + ("twilio", "plivo", "contentful")},
    # The MAC's spelling.
    **{(p, "sig_mac_uppercased"): ("filter", HEX_CASE) for p in HEX_MACS},
    **{(p, "sig_b64_padding_bits_set"): ("sdk", "the filter decodes base64 strictly (padding bits zero, "
                                                "as every encoder writes them); the SDK's b64decode ignores them")
       for p in SVIX_FAMILY + ("sendgrid", "telnyx", "paypal")},
    **{(p, "sig_list_separator_spaced"): ("filter", "harmless: a genuine v1 MAC of the message is in the "
                                                    "list; the filter skips the empty entry a double space "
                                                    "makes, the SDK's split(',') raises ValueError on it")
       for p in SVIX_FAMILY},
    **{(p, "sig_sha1_downgrade"): ("sdk", "githubkit checks any value not starting `sha256=` as HMAC-SHA1 "
                                          "(a downgrade); the filter takes only `sha256=` in X-Hub-Signature-256")
       for p in ("github", "generic")},
    **{("sns", m): ("sdk", "the filter decodes SNS's Signature as strict base64 (padded, padding bits zero, "
                           "no spaces: what SNS writes); Node's Buffer.from(..., 'base64') skips what it cannot read")
       for m in ("sig_b64_padding_removed", "sig_b64_padding_bits_set", "sig_space_before_mac",
                 "sig_space_after_mac")},
    ("sns", "content_type_removed"): ("sdk", "the filter requires SNS's type (text/plain, or application/json "
                                             "by delivery policy); AWS's validator reads the bytes whatever the type"),
    ("sns", "content_encoding_gzip"): ("sdk", "the filter refuses a Content-Encoding (SNS sends none); AWS's "
                                              "validator reads the bytes as they came"),
    ("resend", "sig_label_uppercased"): ("sdk", "Resend's SDK ignores the version label (`V1,`, anything); "
                                                "the filter verifies `v1,` entries, as the spec says"),
    ("hygraph", "sig_label_removed"): ("sdk", "@hygraph/utils strips `sign=` wherever it is (String.replace), "
                                              "so a value without it verifies; the filter reads the header only "
                                              "as the utility writes it"),
    ("zoom", "body_space_appended"): ("sdk", "@zoom/rivet MACs JSON.stringify(JSON.parse(body)), blind to "
                                             "whitespace; the filter MACs the raw bytes the application reads"),
    # Header names.
    **{("resend", m): ("filter", "harmless: the filter reads Svix's `webhook-*` names as Svix's SDK does "
                                 "(the same signed content); Resend's SDK is handed only `svix-*` values")
       for m in ("svix_names_as_webhook", "svix_names_mixed")},
    # The signed time's window.
    ("stripe", "ts_future_beyond_by_2s"): ("sdk", "the filter bounds the future (300 s); Stripe's SDK checks the past only"),
    ("hubspot", "ts_future_beyond_by_2s"): ("sdk", "the filter bounds the future (300 s); HubSpot's SDK checks the past only"),
    ("mailgun", "ts_future_beyond_by_2s"): ("sdk", "the filter bounds the future at 300 s; Mailgun's SDK allows 900 s either way"),
    ("contentful", "ts_future_beyond_by_2s"): ("sdk", "the filter bounds the future (30 s); Contentful's toolkit checks the past only"),
    **{(p, m): ("sdk", NO_SDK_CLOCK) for p in ("discord", "sendgrid", "zoom")
       for m in ("ts_past_beyond_by_2s", "ts_future_beyond_by_2s")},
    **{("twitch", m): ("sdk", "Twitch has no SDK: the standard-library oracle checks no time; the route "
                              "bounds it (10 min past, Twitch's advice; 5 min ahead)")
       for m in ("ts_past_beyond_by_2s", "ts_future_beyond_by_2s")},
    **{("box", m): ("sdk", "Box's Python SDK checks no time; the route bounds it (10 min past, "
                           "box-node-sdk's window; 5 min ahead)")
       for m in ("ts_past_beyond_by_2s", "ts_future_beyond_by_2s")},
    **{("sns", m): ("sdk", "AWS's validator checks no time; the route bounds Timestamp (1 h past, as SNS's "
                           "retries keep it; 5 min ahead)")
       for m in ("ts_past_beyond_by_2s", "ts_future_beyond_by_2s")},
    **{("paypal", m): ("sdk", "PayPal's SDK checks no time; the route bounds the transmission time (15 min "
                              "past, as PayPal re-signs each attempt; 5 min ahead)")
       for m in ("ts_past_beyond_by_2s", "ts_future_beyond_by_2s")},
    **{("hygraph", m): ("sdk", "Hygraph's utility checks no time; the route bounds t (1 h past, as a queued "
                                "and retried webhook needs; 5 min ahead)")
       for m in ("ts_past_beyond_by_2s", "ts_future_beyond_by_2s")},
    # The signed time's text.
    **{(p, "ts_leading_zero_resigned"): ("sdk", VERBATIM_ZERO)
       for p in ("slack", "resend", "discord", "sendgrid", "mailgun", "hubspot")},
    **{(p, "ts_leading_zero_original_sig"): ("sdk", ORIGINAL_ZERO) for p in REFORMATS},
    **{(p, "ts_plus_sign_original_sig"): ("sdk", ORIGINAL_PLUS) for p in REFORMATS},
    **{(p, "ts_fraction_original_sig"): ("sdk", ORIGINAL_FRACTION) for p in SVIX_FAMILY},
    **{(p, "ts_plus_sign_resigned"): ("sdk", VERBATIM_PLUS)
       for p in ("slack", "resend", "discord", "sendgrid", "mailgun", "hubspot")},
    **{(p, "ts_fraction_resigned"): ("sdk", VERBATIM_FRACTION) for p in ("discord", "sendgrid", "hubspot", "zoom")},
}


# ----------------------------------------------------------------------------------------
# Sending, and asking the SDK.

def send(envoy, delivery):
    """Sends a delivery with a fresh x-test-id; returns (test id, status, JSON reason).
    httpx (h11) refuses to send a header value with a space at either end: those go as
    raw HTTP/1.1 bytes."""
    test_id = f"differential-{time.monotonic_ns()}"
    method = delivery.extra.get("method", "POST")
    headers = [*delivery.headers, ("x-test-id", test_id)]
    if any(v != v.strip(" \t") for _, v in headers):
        head = http1_head(delivery.path, headers, method=method.encode(), length=len(delivery.body))
        answer = http1_exchange(envoy, head, [delivery.body])
        return test_id, answer.status, answer.reason
    with envoy.https_client() as client:
        response = client.request(method, delivery.path, headers=headers, content=delivery.body)
    try:
        why = response.json().get("reason")
    except (ValueError, AttributeError):
        why = None
    return test_id, response.status_code, why


FORM_TYPE = "application/x-www-form-urlencoded"


def as_application_sees(provider, wire, canonical, sent_at):
    """The request as the application behind Envoy hands it to the SDK."""
    headers = [(canonical.get(k.lower(), k), v.strip(" \t")) for k, v in wire.headers]
    body = wire.body
    if isinstance(provider, (P.Twilio, P.Plivo)) and not isinstance(provider, P.TwilioJson):
        kind = (content_type(wire) or "").split(";")[0].strip().lower()
        if wire.extra.get("method", "POST") != "POST" or kind != FORM_TYPE:
            body = b""  # no form parameters
    return replace(wire, headers=headers, body=body, time=sent_at, extra=dict(wire.extra))


def sdk_verdict(provider, seen):
    kwargs = {"tolerance": 300} if isinstance(provider, P.Stripe) else {}
    try:
        return bool(provider.sdk_accepts(seen, **kwargs))
    except Exception:  # noqa: BLE001 - every SDK raises its own kinds (sdk-verifiers.md)
        return False


TALLY = {}


@pytest.fixture(scope="module", autouse=True)
def tally_report():
    yield
    if not TALLY:
        return
    total = {key: sum(t[key] for t in TALLY.values()) for key in next(iter(TALLY.values()))}
    report = {"providers": TALLY, "total": total}
    path = ROOT / "target/differential-tally.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print("\ndifferential tally (agree / filter-only accepts / SDK-only accepts / both refuse):")
    for name, t in [*TALLY.items(), ("TOTAL", total)]:
        print(f"  {name:18} {t['mutations']:3} mutations: {t['agree']:3} agree "
              f"({t['both_accept']} both accept, {t['both_refuse']} both refuse), "
              f"{t['filter_only_accepts']} filter-only, {t['sdk_only_accepts']} SDK-only")


# A static credential (GitLab, Telegram, Okta, a token, Basic auth) is no MAC: there is no
# signature to mutate, and its oracle is plain equality (test_providers changes the token).
# A described preset has no SDK to differ from: its oracle is providers.Described's reading
# of its documentation, and test_providers covers it.
SIGNED = [p for p in PROVIDERS if not isinstance(p, (P.StaticToken, P.Described))]


@pytest.mark.parametrize("provider", SIGNED, ids=ident)
def test_the_filter_and_the_sdk_judge_each_mutation_alike(envoy, upstream, provider):
    name = ident(provider)
    canonical = {k.lower(): k for k, _ in genuine(provider).headers}
    cases = []
    for mutation, build in mutations(provider):
        wire = build()
        sent_at = time.time()
        test_id, status, why = send(envoy, wire)
        cases.append((mutation, wire, sent_at, test_id, status, why))
    names = [c[0] for c in cases]
    assert len(names) == len(set(names)), names

    seen = seen_by_upstream(upstream)
    judged = [as_application_sees(provider, wire, canonical, sent_at) for _, wire, sent_at, *_ in cases]
    if isinstance(provider, (P.Linear, P.Zoom)):  # a Node process per call: two at once
        with ThreadPoolExecutor(2) as pool:
            sdk = list(pool.map(lambda d: sdk_verdict(provider, d), judged))
    else:  # one at a time: the SDK clocks are module globals
        sdk = [sdk_verdict(provider, d) for d in judged]

    rows, unexpected = [], []
    tally = dict(mutations=len(cases), agree=0, both_accept=0, both_refuse=0,
                 filter_only_accepts=0, sdk_only_accepts=0)
    for (mutation, wire, _, test_id, status, why), sdk_ok in zip(cases, sdk):
        delivered = [r for r in seen.get(test_id, []) if not r["truncated"]]
        filter_ok = status == 200 and why is None and len(delivered) == 1
        verdict = f"{status} {why or ''}".strip()
        rows.append(f"  {mutation:32} filter {'ACCEPT' if filter_ok else 'refuse'} ({verdict:26}) "
                    f"sdk {'ACCEPT' if sdk_ok else 'refuse'}")
        if filter_ok == sdk_ok:
            tally["agree"] += 1
            tally["both_accept" if sdk_ok else "both_refuse"] += 1
            if (name, mutation) in DELIBERATE:
                unexpected.append(f"{mutation}: listed in DELIBERATE but both "
                                  f"{'accept' if sdk_ok else 'refuse'} ({verdict})")
            continue
        who = "filter" if filter_ok else "sdk"
        tally[f"{who}_only_accepts"] += 1
        listed = DELIBERATE.get((name, mutation))
        if listed is None:
            unexpected.append(f"{mutation}: only the {who} accepts (filter {verdict}); not in DELIBERATE")
        elif listed[0] != who:
            unexpected.append(f"{mutation}: only the {who} accepts (filter {verdict}); "
                              f"DELIBERATE says the {listed[0]}")
    TALLY[name] = tally
    print(f"\n{name}:\n" + "\n".join(rows))
    built = set(names)
    stale = [m for (p, m) in DELIBERATE if p == name and m not in built]
    assert not stale, f"DELIBERATE names mutations {name} does not have: {stale}"
    assert not unexpected, f"{name}:\n" + "\n".join(unexpected) + "\n" + "\n".join(rows)


def test_deliberate_names_only_real_mutations():
    built = {(ident(p), name) for p in SIGNED for name, _ in mutations(p)}
    assert not set(DELIBERATE) - built, sorted(set(DELIBERATE) - built)
    assert all(who in ("filter", "sdk") and why for who, why in DELIBERATE.values())
