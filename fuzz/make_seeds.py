#!/usr/bin/env python3
"""Writes the committed seed corpus (fuzz/seeds/<target>/): the spec's test vectors, the
shipped plugin configuration, real Vobiz form bodies, and the inputs of bugs the fuzzers
found. Re-run after changing it: .venv/bin/python fuzz/make_seeds.py (after `make tools`)."""
import base64, hashlib, hmac, json, os
here = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(here, "seeds")
OWN, PARENT, WA = b"test_auth_token", b"test_parent_token", b"your-shared-secret"
ORIGIN = "https://example.com"
def b64(key, msg): return base64.b64encode(hmac.new(key, msg.encode(), hashlib.sha256).digest()).decode()
def hx(key, body): return hmac.new(key, body, hashlib.sha256).hexdigest()
def write(target, name, data):
    d = os.path.join(root, target); os.makedirs(d, exist_ok=True)
    if isinstance(data, str): data = data.encode()
    open(os.path.join(d, name), "wb").write(data)
def req(headers, body=""):
    return "".join(f"{k}: {v}\n" for k, v in headers) + "\n" + body

# ---- config ----
yaml = open(os.path.join(here, "..", "envoy", "envoy.yaml")).read().splitlines()
i = next(n for n, l in enumerate(yaml) if l.strip() == "value: |")
ind = len(yaml[i+1]) - len(yaml[i+1].lstrip())
block = []
for l in yaml[i+1:]:
    if l.strip() and len(l) - len(l.lstrip()) < ind: break
    block.append(l[ind:])
write("config", "envoy-yaml-plugin.json", "\n".join(block).strip() + "\n")
readme = open(os.path.join(here, "..", "README.md")).read().splitlines()
i = next(n for n, l in enumerate(readme) if l.strip() == "value: |")
ind = len(readme[i+1]) - len(readme[i+1].lstrip())
block = []
for l in readme[i+1:]:
    if l.strip() and len(l) - len(l.lstrip()) < ind: break
    block.append(l[ind:])
text = "\n".join(block).strip() + "\n"
json.loads(text)
write("config", "readme-full-routes.json", text)
write("config", "settings.json", json.dumps({"routes": [{"name": "voice", "path_prefix": "/vobiz/", "host": "callbacks.example.com:8443",
  "public_origin": "https://callbacks.example.com:8443", "keys": [{"name": "primary", "env": "TOKEN"}], "parent_keys": [{"env": "PARENT"}],
  "accept": ["v2", "ma_v2"], "v3_construction": "sdk", "replay": {"window": "10m", "max_entries": 64, "in_flight_timeout": "5s", "on_duplicate": "reject"},
  "freshness": {"max_age": "2m", "max_future_skew": "30s", "require": True}, "max_body_bytes": 1000, "mode": "shadow",
  "trust_x_forwarded_proto": True, "trusted_proxies": ["10.0.0.0/8", "fd00::/8"], "allowed_sources": ["35.154.59.246", "2001:db8::/32"],
  "debug_signed_string": True}], "upstream_header": "x-callback-guard", "allow_on_headers_stop_iteration": False}, indent=1))
write("config", "whatsapp-kyc.json", json.dumps({"routes": [
  {"name": "wa", "path_prefix": "/wa/", "scheme": "vobiz_whatsapp", "keys": [{"value": "your-shared-secret"}], "freshness": {"max_age": "1h"}},
  {"name": "kyc", "path_prefix": "/kyc/", "scheme": "vobiz_kyc", "keys": [{"name": "parent", "env": "VOBIZ_PARENT_AUTH_TOKEN"}], "replay": {"enabled": False}}]}))
write("config", "errors.json", '{"routes": [{"name": "x", "path_prefix": "/x/", "public_origin": "http://e.example", "keys": [{"env": "EMPTY"}, {"env": "SPACED"}], "replay": {"window": "24"}}]}')
write("config", "empty-routes.json", '{"routes": []}')

# ---- headers & guard_body ----
N2, N3 = "12345678901234567890", "09876543210987654321"
base = [(":method", "POST"), (":authority", "example.com"), (":scheme", "https")]
inbound = ("BillRate=0&CallStatus=ringing&CallUUID=12d86ccd-5f0b-4a2e-9c1d-3e4f5a6b7c8d&CallerName=%2B917900000000"
  "&CountryCode=&Direction=inbound&Event=StartApp&From=917900000000&ParentAuthID=MA_XXXXXXXX&RouteType="
  "&STIRAttestation=Not+Applicable&STIRVerification=Not+Applicable&SessionStart=2026-06-08+06%3A07%3A34.130248&To=07971234567")
hangup = ("AnswerTime=2026-06-08+11%3A37%3A40&BillDuration=12&BillRate=0.45&CallStatus=completed"
  "&CallUUID=12d86ccd-5f0b-4a2e-9c1d-3e4f5a6b7c8d&CallerName=%2B917900000000&Direction=inbound&Duration=12"
  "&EndTime=2026-06-08+11%3A37%3A52&Event=Hangup&From=917900000000&HangupCause=NORMAL_CLEARING&HangupCauseCode=4000"
  "&HangupCauseName=Normal+Hangup&HangupSource=Callee&ParentAuthID=MA_XXXXXXXX&STIRAttestation=Not+Applicable"
  "&STIRVerification=Not+Applicable&SessionStart=2026-06-08+06%3A07%3A34.130248&StartTime=2026-06-08+11%3A37%3A34"
  "&To=07971234567&TotalCost=0.09000&timestamp=2026-03-25T09%3A58%3A00Z")
write("form", "inbound-answer", inbound)
write("form", "hangup", hangup)
write("form", "sdk-post", "To=14155550100&From=14155550123&CallUUID=abc")
write("form", "edge-cases", "&&a&=&=x&b=&a+b=c+d%20e&%2B=%2b+&x=%zz%4%41%%41%&k=%C3%A9&k=%C3\xa9&;b=2".encode("latin-1"))
write("form", "raw-utf8", "\u00e9=%FF%fe&e=%e2%82%ac%E2%82".encode())

def v(path, fam, key, nonce, sep):
    return b64(key, ORIGIN + path + sep + nonce)
rows = {
 "v2": ("x-vobiz-signature-v2", "x-vobiz-signature-v2-nonce", OWN, N2, ""),
 "v3": ("x-vobiz-signature-v3", "x-vobiz-signature-v3-nonce", OWN, N3, "."),
 "ma_v2": ("x-vobiz-signature-ma-v2", "x-vobiz-signature-v2-nonce", PARENT, N2, ""),
 "ma_v3": ("x-vobiz-signature-ma-v3", "x-vobiz-signature-v3-nonce", PARENT, N3, "."),
}
def signed(path, fams, query=""):
    hs = [(":path", path + query)] + base
    nonces = {}
    for f in fams:
        sh, nh, key, nonce, sep = rows[f]
        hs.append((sh, v(path, f, key, nonce, sep)))
        nonces[nh] = nonce
    hs += list(nonces.items())
    return hs
assert v("/vobiz/answer", "v3", OWN, N3, ".") == "hcnUcstlkOnYpO6mUNMBs51VJnZ5p6T+dE1Ov5NShuk="
for f in rows:
    write("headers", f"spec-{f}", req(signed("/vobiz/answer", [f])))
write("headers", "spec-v3-ma-v3-query", req(signed("/vobiz/answer", ["v3", "ma_v3"], "?CallUUID=abc&x=y")))
write("headers", "spec-row5-trailing-slash", req([(":path", "/vobiz/answer/")] + base + [("x-vobiz-signature-v3", "/E8tviQI0nZ9RXQc+5iNcv+0rZsae82baORpraBujXc="), ("x-vobiz-signature-v3-nonce", N3)]))
write("headers", "rotation-list", req([(":path", "/vobiz/answer")] + base + [("x-vobiz-signature-v3", "A"*43 + "=, hcnUcstlkOnYpO6mUNMBs51VJnZ5p6T+dE1Ov5NShuk="), ("x-vobiz-signature-v3-nonce", N3), ("x-request-id", "3f1c-req.1")]))
write("headers", "duplicate-and-malformed", req([(":path", "/vobiz/answer")] + base + [("x-vobiz-signature-v2", "garbage"), ("x-vobiz-signature-v2-nonce", "has space"), ("X-Vobiz-Signature-V3", "AAAA"), ("x-vobiz-signature-v3", "hcnUcstlkOnYpO6mUNMBs51VJnZ5p6T+dE1Ov5NShuk="), ("x-vobiz-signature-v3-nonce", N3), ("x-vobiz-signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")]))
src = signed("/src/answer", ["v3"]) + [("x-forwarded-proto", "https"), ("x-forwarded-for", "6.6.6.6, 35.154.59.246, 10.0.0.9")]
write("headers", "trusted-proxy", req(src))
write("headers", "trusted-proxy-v6", req(signed("/src/answer", ["v3"]) + [("x-forwarded-proto", "HTTPS"), ("x-forwarded-for", "2001:db8::7, fd00::1")]))
write("headers", "length-and-kyc", req([(":path", "/kyc/events"), (":method", "POST"), ("content-length", "99999999"), ("x-vobiz-signature", "sha256=265cd474f955da2f32c6e2af7d7ed9e4778730b0f8877fbba6379553af763cdc")]))

WA_BODY = '{"event_id":"f4c1a0d2-3b6e-4a9c-8e2f-0a1b2c3d4e5f","event_type":"message.inbound","account_id":"MA_XXXXXXXX","occurred_at":"2026-03-25T10:00:00Z","payload":{}}'
assert hx(WA, WA_BODY.encode()) == "6c82a2dbcf397903ffaea500dffa3b4875fe6388361c8ea1c590354868bc48b1"
KYC_BODY = '{"event":"kyc.completed"}'
wa_h = [(":method", "POST"), (":path", "/whatsapp/events"), (":authority", "example.com"), ("content-type", "application/json"), ("x-webhook-event", "message.inbound")]
write("headers", "whatsapp", req(wa_h + [("x-webhook-signature", hx(WA, WA_BODY.encode()))]))
write("guard_body", "whatsapp-spec", req(wa_h + [("x-webhook-signature", hx(WA, WA_BODY.encode()))], WA_BODY))
wa2 = json.dumps({"event_id": "evt-2", "event_type": "message.status", "account_id": "MA_X", "occurred_at": "2026-03-25T15:25:00+05:30", "payload": {"status": "read", "entry": [1, {"a": None}]}})
write("guard_body", "whatsapp-offset", req(wa_h + [("x-webhook-signature", hx(WA, wa2.encode()).upper())], wa2))
kyc_h = [(":method", "POST"), (":path", "/kyc/events"), (":authority", "example.com"), ("content-type", "application/json")]
write("guard_body", "kyc-spec", req(kyc_h + [("x-vobiz-signature", "sha256=" + hx(PARENT, KYC_BODY.encode()))], KYC_BODY))
write("guard_body", "open-v3-inbound", req(signed("/vobiz/answer", ["v3"], "?CallUUID=abc"), inbound))
write("guard_body", "voice-replay-v3-ma-v3", req(signed("/callbacks/answer", ["v3", "ma_v3"]), inbound))
write("guard_body", "voice-replay-hangup-timestamp", req(signed("/callbacks/hangup", ["ma_v3"]), hangup))
write("guard_body", "v2-route", req(signed("/v2/hangup", ["v2", "ma_v2"]), hangup))
SDK_NONCE = "05429567804466091622"
sdk_h = [(":method", "POST"), (":path", "/answer"), (":authority", "example.com"), ("content-type", "application/x-www-form-urlencoded"),
         ("x-vobiz-signature-v3", "x6sWqj1bWCTFPaPgeo9CQQ6Wb1uhdE93JZ8NwCC/2Ic="), ("x-vobiz-signature-v3-nonce", SDK_NONCE)]
assert b64(OWN, "https://example.com/answer?CallUUIDabcFrom14155550123To14155550100." + SDK_NONCE) == "x6sWqj1bWCTFPaPgeo9CQQ6Wb1uhdE93JZ8NwCC/2Ic="
write("guard_body", "sdk-post-spec", req(sdk_h, "To=14155550100&From=14155550123&CallUUID=abc"))
get_h = [(":method", "GET"), (":path", "/answer?x=1&CallUUID=abc"), (":authority", "example.com"),
         ("x-vobiz-signature-v3", b64(OWN, "https://example.com/answer?CallUUID=abc&x=1." + SDK_NONCE)), ("x-vobiz-signature-v3-nonce", SDK_NONCE)]
write("guard_body", "sdk-get", req(get_h))
write("guard_body", "src-proxy", req(src, inbound))
write("guard_body", "forged", req(base + [(":path", "/callbacks/answer"), ("x-vobiz-signature-v3", "A"*43 + "="), ("x-vobiz-signature-v3-nonce", N3)], inbound))

# ---- whatsapp_body ----
write("whatsapp_body", "whatsapp-spec", hx(WA, WA_BODY.encode()) + "\n" + WA_BODY)
write("whatsapp_body", "kyc-spec", "sha256=" + hx(PARENT, KYC_BODY.encode()) + "\n" + KYC_BODY)
write("whatsapp_body", "envelope-escapes", "x\n" + ' \n{"payload":{"a":[1,{"b":null}]},"event_id":"e\\u0031","occurred_at":"2026-03-25T15:30:00.25+05:30","new_field":true}\n')
write("whatsapp_body", "envelope-duplicate", "sha256=00\n" + '{"event_id":"e1","event_id":"e2","occurred_at":"2026-03-25T10:00:00Z"}')
write("whatsapp_body", "array", "\n[\"f4c1\",\"2026-03-25T10:00:00Z\"]")

# ---- base_string ----
for name, data in [
  ("spec-post-params", "POST\n/answer\nTo=14155550100&From=14155550123&CallUUID=abc"),
  ("spec-post-query-params", "POST\n/answer?x=1\nTo=14155550100&From=14155550123"),
  ("spec-get-merge", "GET\n/answer?x=1\nb=2"),
  ("spec-post-empty", "POST\n/answer\n"),
  ("get-query-edges", "GET\n/answer?x=1&x=0&y&=z&&a=%41%zz+b\nx=9"),
  ("params-and-fragment", "GET\n/a;p/answer;q=1?x=1#frag\n"),
  ("post-utf8", "POST\n/answer\n%C3%A9=x&z=1&k=b&j=1&k=a"),
  ("inbound", "POST\n/vobiz/answer?CallUUID=abc\n" + inbound),
  ("unsignable", "GET\n/answer?x=%C3%A9\n"),
]:
    write("base_string", name, data)

# ---- timestamp ----
for name, data in [
  ("whatsapp", "2026-03-25T10:00:00Z"), ("session-start", "2026-06-08 06:07:34.130248"),
  ("offset-fraction", "2026-03-25T15:30:00.5+05:30"), ("negative-offset", "2026-03-25T05:00:00-05:00"),
  ("leap", "2024-02-29T23:59:60z"), ("epoch", "1970-01-01t00:00:00Z"), ("edge-years", "0000-01-01T00:00:00+23:59"),
  ("max", "9999-12-31T23:59:60-23:59"),
]:
    write("timestamp", name, data)

# ---- path_view: the spellings of issue 9, and the property test's finds ----
for name, data in [
  ("canonical", "/vobiz/hangup?CallUUID=1"), ("encoded-slash", "/vobiz%2Fhangup"),
  ("backslash", "/vobiz\\hangup"), ("tomcat", "/x/..;/api/hooks/y"), ("parameter", "/api;x%2Fy/hooks/x"),
  ("double", "/vobiz%252Fhangup"), ("iis", "/vobiz%u002fhangup"), ("dotless-i", "/vob%C4%B1z/x"),
  ("kelvin", "/wa/\u212a"), ("fullwidth", "/vobiz\uff0fhangup"), ("overlong", "/vobiz%C0%AFhangup"),
  ("partial-decode-dots", "/a%252Fb/../vobiz/x"), ("kestrel-dots", "/a%2Fb/%2e%2e/vobiz/x"),
  ("trailing-space", " %2Fvobiz/"), ("space-after-slash", "/vobiz%2F "), ("case", "/VOBIZ/x"),
]:
    write("path_view", name, data)

# ---- providers: one valid request per provider, signed with the target's known key ----
KNOWN, NOW_TS, PB = b"fuzz-provider-key", "1774432800", b'{"id":"evt_1","note":"caf\xc3\xa9"}'
def hmac256(*parts): return hmac.new(KNOWN, b"".join(parts), hashlib.sha256).digest()
def seed(index, headers, body=PB):
    return bytes([index]) + "".join(f"{k}: {v}\n" for k, v in headers).encode() + b"\n" + body
sw = base64.b64encode(hmac256(b"msg_1.", NOW_TS.encode(), b".", PB)).decode()
tw_form = b"CallSid=CA1&From=%2B1"
tw_msg = b"https://example.com/hook?x=1" + b"CallSidCA1From+1"
for name, data in [
  ("standard_webhooks", seed(0, [("webhook-id", "msg_1"), ("webhook-timestamp", NOW_TS), ("webhook-signature", "v1a,x v1," + sw)])),
  ("svix", seed(1, [("svix-id", "msg_1"), ("svix-timestamp", NOW_TS), ("svix-signature", "v1," + sw)])),
  ("stripe", seed(2, [("stripe-signature", f"t={NOW_TS},v1=" + hmac256(NOW_TS.encode(), b".", PB).hex() + ",v0=00")])),
  ("slack", seed(3, [("x-slack-request-timestamp", NOW_TS), ("x-slack-signature", "v0=" + hmac256(b"v0:", NOW_TS.encode(), b":", PB).hex())])),
  ("github", seed(4, [("x-hub-signature-256", "sha256=" + hmac256(PB).hex())])),
  ("meta", seed(5, [("x-hub-signature-256", "sha256=" + hmac256(PB).hex())])),
  ("shopify", seed(6, [("x-shopify-hmac-sha256", base64.b64encode(hmac256(PB)).decode())])),
  ("twilio", seed(7, [("x-twilio-signature", base64.b64encode(hmac.new(KNOWN, tw_msg, hashlib.sha1).digest()).decode())], tw_form)),
  ("clerk", seed(8, [("svix-id", "msg_1"), ("svix-timestamp", NOW_TS), ("svix-signature", "v1," + sw)])),
  ("resend", seed(9, [("svix-id", "msg_1"), ("svix-timestamp", NOW_TS), ("svix-signature", "v1," + sw)])),
  ("mailgun", seed(10, [], json.dumps({"signature": {"timestamp": NOW_TS, "token": "tok1",
      "signature": hmac256(NOW_TS.encode(), b"tok1").hex()}, "event-data": {"id": "e1"}}).encode())),
  ("razorpay", seed(11, [("x-razorpay-signature", hmac256(PB).hex())])),
  ("paddle", seed(12, [("paddle-signature", f"ts={NOW_TS};h1=" + hmac256(NOW_TS.encode(), b":", PB).hex())])),
  ("square", seed(13, [("x-square-hmacsha256-signature", base64.b64encode(hmac256(b"https://example.com/hook?x=1", PB)).decode())])),
  ("hubspot", seed(14, [("x-hubspot-request-timestamp", NOW_TS + "000"), ("x-hubspot-signature-v3",
      base64.b64encode(hmac256(b"POST", b"https://example.com/hook?x=1", PB, NOW_TS.encode() + b"000")).decode())])),
  ("linear", seed(15, [("linear-signature", hmac256(b'{"webhookTimestamp":' + NOW_TS.encode() + b'000}').hex())],
      b'{"webhookTimestamp":' + NOW_TS.encode() + b'000}')),
  ("zoom", seed(16, [("x-zm-request-timestamp", NOW_TS), ("x-zm-signature", "v0=" + hmac256(b"v0:", NOW_TS.encode(), b":", PB).hex())])),
  ("zoom-url-validation", seed(16, [("x-zm-request-timestamp", NOW_TS), ("x-zm-signature", "v0=" + hmac256(b"v0:", NOW_TS.encode(), b":",
      b'{"event":"endpoint.url_validation","payload":{"plainToken":"abc"}}').hex())], b'{"event":"endpoint.url_validation","payload":{"plainToken":"abc"}}')),
  ("pagerduty", seed(17, [("x-pagerduty-signature", "v1=00, v1=" + hmac256(PB).hex())])),
  ("intercom", seed(18, [("x-hub-signature", "sha1=" + hmac.new(KNOWN, PB, hashlib.sha1).hexdigest())])),
  ("twitch", seed(19, [("twitch-eventsub-message-id", "m1"), ("twitch-eventsub-message-timestamp", "2026-03-25T10:00:00.5Z"),
      ("twitch-eventsub-message-type", "webhook_callback_verification"),
      ("twitch-eventsub-message-signature", "sha256=" + hmac256(b"m1", b"2026-03-25T10:00:00.5Z", b'{"challenge":"c1"}').hex())],
      b'{"challenge":"c1"}')),
  ("bitbucket", seed(22, [("x-hub-signature", "sha256=" + hmac256(PB).hex()), ("x-event-key", "repo:push")])),
  ("gitlab", seed(23, [("content-type", "application/json"), ("x-gitlab-token", KNOWN.decode()), ("idempotency-key", "k1"), ("x-gitlab-event", "Push Hook")])),
  ("telegram", seed(24, [("content-type", "application/json"), ("x-telegram-bot-api-secret-token", KNOWN.decode())], b'{"update_id":7,"message":{"text":"h\xc3\xa9"}}')),
  ("static_token", seed(25, [("content-type", "application/json"), ("x-token", KNOWN.decode()), ("x-id", "d1")])),
  ("basic_auth", seed(26, [("content-type", "application/json"), ("authorization", "Basic " + base64.b64encode(b"fuzz:" + KNOWN).decode())])),
  ("xero", seed(27, [("content-type", "application/json"), ("x-xero-signature", base64.b64encode(hmac256(PB)).decode())])),
  ("dropbox", seed(28, [("content-type", "application/json"), ("x-dropbox-signature", hmac256(PB).hex())])),
  ("dropbox-challenge", seed(28, [(":method", "GET"), (":path", "/hook?challenge=abc")], b"")),
  ("twitter", seed(29, [("content-type", "application/json"), ("x-twitter-webhooks-signature", "sha256=" + base64.b64encode(hmac256(PB)).decode())])),
  ("twitter-crc", seed(29, [(":method", "GET"), (":path", "/hook?crc_token=Y3Jj&nonce=1")], b"")),
  ("box", seed(30, [("content-type", "application/json"), ("box-delivery-timestamp", "2026-03-25T10:00:00+00:00"),
      ("box-signature-secondary", base64.b64encode(hmac256(PB, b"2026-03-25T10:00:00+00:00")).decode())])),
  ("docusign", seed(31, [("content-type", "application/json"), ("x-docusign-signature-3", base64.b64encode(hmac256(PB)).decode())])),
  ("worldline", seed(32, [("content-type", "application/json"), ("x-gcs-signature", base64.b64encode(hmac256(PB)).decode())])),
  ("worldline-verification", seed(32, [(":method", "GET"), ("x-gcs-webhooks-endpoint-verification", "v1")], b"")),
  ("okta", seed(33, [("content-type", "application/json"), ("authorization", KNOWN.decode())], b'{"eventId":"e1"}')),
  ("meta-subscribe", seed(5, [(":method", "GET"), (":path", "/hook?hub.mode=subscribe&hub.verify_token=fuzz-verify-token&hub.challenge=42")], b"")),
]:
    write("providers", name, data)

# The public-key schemes: keys derived from KNOWN as the target derives them (needs the
# `cryptography` package: run with .venv/bin/python).
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives import hashes
derived = hashlib.sha256(KNOWN).digest()
ping = b'{"type":1}'
discord = ed25519.Ed25519PrivateKey.from_private_bytes(derived).sign(NOW_TS.encode() + ping).hex()
write("providers", "discord-ping", seed(20, [("x-signature-timestamp", NOW_TS), ("x-signature-ed25519", discord)], ping))
telnyx = ed25519.Ed25519PrivateKey.from_private_bytes(derived).sign(NOW_TS.encode() + b"|" + PB)
write("providers", "telnyx", seed(34, [("content-type", "application/json"), ("telnyx-timestamp", NOW_TS),
      ("telnyx-signature-ed25519", base64.b64encode(telnyx).decode())]))
sendgrid = ec.derive_private_key(int.from_bytes(derived, "big"), ec.SECP256R1()).sign(NOW_TS.encode() + PB, ec.ECDSA(hashes.SHA256()))
write("providers", "sendgrid", seed(21, [("x-twilio-email-event-webhook-timestamp", NOW_TS),
      ("x-twilio-email-event-webhook-signature", base64.b64encode(sendgrid).decode())]))

# SNS: a notification of the known topic, signed with the demo certificate's key (the one
# the target's cluster serves).
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
sns_key = serialization.load_pem_private_key(open(os.path.join(here, "..", "core", "src", "providers", "sns", "demo-key.pem"), "rb").read(), None)
sns = {"Type": "Notification", "MessageId": "4d1ab1a1-2a7e-4b3c-9d5e-6f7a8b9c0d1e",
       "TopicArn": "arn:aws:sns:us-east-1:123456789012:" + KNOWN.decode(), "Subject": "caf\u00e9",
       "Message": '{"id":"evt_1"}', "Timestamp": "2026-03-25T10:00:00.000Z", "SignatureVersion": "1"}
sns_signed = "".join(f"{n}\n{sns[n]}\n" for n in ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")).encode()
sns["Signature"] = base64.b64encode(sns_key.sign(sns_signed, padding.PKCS1v15(), hashes.SHA1())).decode()
sns["SigningCertURL"] = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-3011a86d709cb093a778a7e29ababe5d.pem"
write("providers", "sns", seed(68, [("content-type", "text/plain; charset=UTF-8"), ("x-amz-sns-message-type", "Notification"),
      ("x-amz-sns-message-id", sns["MessageId"]), ("x-amz-sns-topic-arn", sns["TopicArn"])],
      json.dumps(sns, ensure_ascii=False).encode()))

# PayPal: a transmission for the known key's webhook id, signed with the demo certificate's key.
import zlib
paypal_key = serialization.load_pem_private_key(open(os.path.join(here, "..", "core", "src", "providers", "paypal", "demo-key.pem"), "rb").read(), None)
paypal_id, paypal_time = "2c0a5f20-2830-11f1-9d3e-77339302725b", "2026-03-25T10:00:00Z"
paypal_webhook = "".join(c.upper() for c in KNOWN.decode() if c.isalnum())
paypal_signed = f"{paypal_id}|{paypal_time}|{paypal_webhook}|{zlib.crc32(PB)}".encode()
paypal_sig = base64.b64encode(paypal_key.sign(paypal_signed, padding.PKCS1v15(), hashes.SHA256())).decode()
write("providers", "paypal", seed(69, [("content-type", "application/json"), ("paypal-transmission-id", paypal_id),
      ("paypal-transmission-time", paypal_time), ("paypal-transmission-sig", paypal_sig),
      ("paypal-cert-url", "https://api.paypal.com/v1/notifications/certs/CERT-00000000-00000000-0000de30"),
      ("paypal-auth-algo", "SHA256withRSA")]))
# Contentful: its canonical request, the path (/hook?x=1) escaped as its toolkit escapes it;
# the key padded to the 64 characters a Contentful secret has.
ctf_secret = (KNOWN.decode() + "x" * 64)[:64]
ctf = [("content-type", "application/json"), ("x-contentful-topic", "ContentManagement.Entry.publish"),
       ("x-contentful-timestamp", NOW_TS + "000")]
ctf_names = sorted([k for k, _ in ctf] + ["x-contentful-signed-headers"])
ctf.append(("x-contentful-signed-headers", ",".join(ctf_names)))
ctf_signed = "\n".join(["POST", "/hook?x%253D1", ";".join(f"{n}:{dict(ctf)[n]}" for n in ctf_names)]).encode() + b"\n" + PB
write("providers", "contentful", seed(70, ctf + [("x-contentful-signature", hmac.new(ctf_secret.encode(), ctf_signed, hashlib.sha256).hexdigest())]))
# Hygraph: the JSON document of the body (escaped as JSON.stringify escapes it), the
# environment and the time in ms.
hyg_ms = NOW_TS + "000"
hyg_doc = json.dumps({"Body": PB.decode(), "EnvironmentName": "master", "TimeStamp": int(hyg_ms)},
                     ensure_ascii=False, separators=(",", ":")).encode()
write("providers", "hygraph", seed(71, [("content-type", "application/json"),
      ("gcms-signature", f"sign={base64.b64encode(hmac256(hyg_doc)).decode()}, env=master, t={hyg_ms}")]))
# Zendesk: its timestamp (YYYY-MM-DDTHH:MM:SSZ) then the body.
zd_ts = "2026-03-25T10:00:00Z"
write("providers", "zendesk", seed(72, [("content-type", "application/json"),
      ("x-zendesk-webhook-signature-timestamp", zd_ts),
      ("x-zendesk-webhook-signature", base64.b64encode(hmac256(zd_ts.encode(), PB)).decode())]))

# ---- regressions: inputs of bugs the fuzzers found ----
# An SNS member named with a control character reached the log detail through the JSON
# parser's error (Rejection::new now escapes every detail's control characters).
write("providers", "regression-sns-control-in-member-name", seed(68, [("content-type", "text/plain; charset=UTF-8"),
      ("x-amz-sns-message-type", "Notification"), ("x-amz-sns-message-id", sns["MessageId"]),
      ("x-amz-sns-topic-arn", sns["TopicArn"])], json.dumps({**sns, "Me\x7f\x1bssage": "x"}, ensure_ascii=False).encode()))
# A duration ending in a multi-byte character panicked (config::parse_duration).
write("config", "regression-multibyte-duration.json", '{"routes": [{"name": "a", "path_prefix": "/", "public_origin": "https://e", "keys": [{"value": "k"}], "replay": {"window": "1\u0552"}}]}')
# An unknown field named "" was reported with an empty field name.
write("config", "regression-empty-field-name.json", '{"": "/x/"}')
# Invalid UTF-8 in a skipped envelope field was accepted as JSON.
write("whatsapp_body", "regression-invalid-utf8", b"x\n" + WA_BODY.replace("MA_XXXXXXXX", "MA_\xea\xea").encode("latin-1"))
# A host with two ports ("h:8:43") was accepted and read as "h:8", not its own name.
write("config", "regression-two-ports.json", '{"routes": [{"name": "a", "path_prefix": "/", "host": "callbacks.example.com:8:43", "public_origin": "https://e", "keys": [{"value": "k"}]}]}')
