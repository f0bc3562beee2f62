"""The command line's sender (target/release/callback-guard, built by `make build`, also
installed as vobiz-sim for one release) against a real
Envoy: what it signs verifies, what it replays or tampers is refused, and nothing refused
reaches the upstream. The test Envoy listens on a random port, so every voice request
passes the registered origin https://127.0.0.1:8443 with --origin."""
import json
import os
import subprocess

import pytest
import yaml

from harness import CLI, PARENT_TOKEN, PROVIDER_SECRETS, ROOT, TOKEN, WHATSAPP_SECRET, deliveries, new_nonce

ORIGIN = "https://127.0.0.1:8443"


@pytest.fixture(scope="module")
def sim_binary():
    assert CLI.exists(), f"{CLI} is missing: run `make build`"
    return CLI


class Result:
    """A callback-guard run: exit code and its result lines, as (status, body) per request."""

    def __init__(self, proc):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.lines = [line for line in proc.stdout.splitlines() if line.startswith("#")]

    def status(self, n):
        """The HTTP status of request #n (1-based)."""
        head, _, rest = self.lines[n - 1].partition(" -> ")
        assert head.startswith(f"#{n} "), self.stdout
        return int(rest.split(" ", 1)[0])

    def reason(self, n):
        """The `reason` of a JSON local reply from Envoy, or None."""
        rest = self.lines[n - 1].partition(" -> ")[2]
        body = rest.split(" ", 1)[1] if " " in rest else ""
        try:
            return json.loads(body).get("reason")
        except ValueError:
            return None


@pytest.fixture
def run_sim(sim_binary, envoy):
    """Runs `callback-guard <command> --url https://127.0.0.1:<port><path> ...` with the test
    Envoy's CA; returns a Result."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VOBIZ_")}

    def run(command, path, *args):
        argv = [str(sim_binary), command, "--url", f"https://127.0.0.1:{envoy.https_port}{path}",
                "--cacert", str(envoy.cert[0]), *args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=environment)
        return Result(proc)

    return run


def tag():
    """A unique x-test-id and the --header option carrying it."""
    test_id = f"sim-{new_nonce()}"
    return test_id, ["--header", f"x-test-id: {test_id}"]


def voice(run_sim, *args, path="/vobiz/answer", token=TOKEN):
    return run_sim("voice", path, "--origin", ORIGIN, "--token", token, *args)


def test_a_signed_voice_callback_is_delivered_unchanged(run_sim, upstream):
    test_id, header = tag()
    form = "CallUUID=sim-1&Event=StartApp&From=919876543210&To=918071387000"
    result = voice(run_sim, "--form", form, *header, "--expect", "200")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.status(1) == 200
    [seen] = deliveries(upstream, test_id)
    assert seen["method"] == "POST" and seen["path"] == "/vobiz/answer"
    assert seen["body"] == form
    received = dict(seen["headers"])
    assert received["user-agent"] == "Vobiz"
    assert received["content-type"] == "application/x-www-form-urlencoded"
    assert len(received["x-vobiz-signature-v3-nonce"]) == 20


def test_the_default_callback_with_parent_signature_is_delivered(run_sim, upstream):
    test_id, header = tag()
    result = voice(run_sim, "--parent-token", PARENT_TOKEN, *header)
    assert result.returncode == 0 and result.status(1) == 200, result.stdout + result.stderr
    [seen] = deliveries(upstream, test_id)
    assert "Event=StartApp" in seen["body"]
    assert "x-vobiz-signature-ma-v3" in dict(seen["headers"])


def test_only_the_parent_family(run_sim, upstream):
    test_id, header = tag()
    result = run_sim("voice", "/vobiz/answer", "--origin", ORIGIN, "--parent-token", PARENT_TOKEN,
                     "--families", "ma_v3", *header)
    assert result.status(1) == 200, result.stdout
    assert len(deliveries(upstream, test_id)) == 1


def test_a_replay_is_answered_already_delivered(run_sim, upstream):
    test_id, header = tag()
    result = voice(run_sim, "--replay", "1", *header, "--expect", "200")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [result.status(1), result.status(2)] == [200, 200]
    assert result.reason(2) == "already_delivered"
    assert "(replay)" in result.lines[1]
    assert len(deliveries(upstream, test_id)) == 1


def test_a_tampered_body_is_refused_as_replay_tampering(run_sim, upstream):
    test_id, header = tag()
    form = "CallUUID=sim-2&Event=StartApp"
    result = voice(run_sim, "--form", form, "--tamper", "body", *header, "--expect", "200,409")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.status(2) == 409 and result.reason(2) == "replay_tampered"
    [seen] = deliveries(upstream, test_id)
    assert seen["body"] == form


@pytest.mark.parametrize("part, status, reason", [
    ("query", 409, "replay_tampered"),
    ("path", 403, "signature_mismatch"),
    ("signature", 403, "signature_mismatch"),
    ("nonce", 403, "signature_mismatch"),
])
def test_every_tampered_part_is_refused(run_sim, upstream, part, status, reason):
    test_id, header = tag()
    result = voice(run_sim, "--tamper", part, *header)
    assert result.status(1) == 200, result.stdout
    assert (result.status(2), result.reason(2)) == (status, reason), result.stdout
    assert len(deliveries(upstream, test_id)) == 1


def test_a_wrong_token_is_refused(run_sim, upstream):
    test_id, header = tag()
    result = voice(run_sim, *header, token="not-the-token")
    assert result.returncode == 0  # a response arrived, and nothing was expected
    assert (result.status(1), result.reason(1)) == (403, "signature_mismatch")
    assert deliveries(upstream, test_id) == []


def test_expect_sets_the_exit_code(run_sim, upstream):
    _, header = tag()
    result = voice(run_sim, *header, "--expect", "200", token="not-the-token")
    assert result.returncode == 1
    assert "-> 403 (expected 200)" in result.lines[0]


def test_the_sdk_construction_verifies(run_sim, upstream):
    test_id, header = tag()
    result = voice(run_sim, "--construction", "sdk", "--form", "To=14155550100&From=14155550123",
                   *header, path="/vobiz/answer?x=1")
    assert result.status(1) == 200, result.stdout + result.stderr
    [seen] = deliveries(upstream, test_id)
    assert seen["path"] == "/vobiz/answer?x=1"


def test_a_get_callback_carries_its_parameters_in_the_query(run_sim, upstream):
    test_id, header = tag()
    result = voice(run_sim, "--method", "GET", "--form", "CallUUID=sim-3&Event=Hangup", *header)
    assert result.status(1) == 200, result.stdout + result.stderr
    [seen] = deliveries(upstream, test_id)
    assert seen["method"] == "GET"
    assert seen["path"] == "/vobiz/answer?CallUUID=sim-3&Event=Hangup"


def test_v2_families_verify_on_the_v2_route(run_sim, upstream):
    test_id, header = tag()
    result = voice(run_sim, "--parent-token", PARENT_TOKEN, "--families", "v2,ma_v2",
                   *header, path="/vobiz-v2/answer")
    assert result.status(1) == 200, result.stdout + result.stderr
    [seen] = deliveries(upstream, test_id)
    received = dict(seen["headers"])
    assert {"x-vobiz-signature-v2", "x-vobiz-signature-ma-v2", "x-vobiz-signature-v2-nonce"} <= set(received)


def test_dry_run_sends_nothing_and_hides_the_token(run_sim, upstream):
    test_id, header = tag()
    result = voice(run_sim, "--parent-token", PARENT_TOKEN, "--dry-run", *header)
    assert result.returncode == 0
    assert f"signed v3 (--token): {ORIGIN}/vobiz/answer." in result.stdout
    assert TOKEN not in result.stdout and PARENT_TOKEN not in result.stdout
    assert deliveries(upstream, test_id) == []


def test_a_whatsapp_event_is_delivered_once(run_sim, upstream):
    test_id, header = tag()
    result = run_sim("whatsapp", "/whatsapp/events", "--secret", WHATSAPP_SECRET,
                     "--replay", "1", *header)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.status(1) == 200
    assert (result.status(2), result.reason(2)) == (200, "already_delivered")
    [seen] = deliveries(upstream, test_id)
    envelope = json.loads(seen["body"])
    assert envelope["event_type"] == "message.inbound"
    assert dict(seen["headers"])["x-webhook-event"] == "message.inbound"


@pytest.mark.parametrize("option, reason", [("--age", "stale"), ("--ahead", "future")])
def test_stale_and_future_whatsapp_events_are_refused(run_sim, upstream, option, reason):
    test_id, header = tag()
    shift = "2h" if option == "--age" else "10m"
    result = run_sim("whatsapp", "/whatsapp/events", "--secret", WHATSAPP_SECRET,
                     option, shift, *header)
    assert (result.status(1), result.reason(1)) == (403, reason), result.stdout
    assert deliveries(upstream, test_id) == []


def test_a_tampered_whatsapp_body_does_not_verify(run_sim, upstream):
    test_id, header = tag()
    result = run_sim("whatsapp", "/whatsapp/events", "--secret", WHATSAPP_SECRET,
                     "--tamper", "body", *header, "--expect", "200,403")
    assert result.returncode == 0, result.stdout
    assert result.reason(2) == "signature_mismatch"
    assert len(deliveries(upstream, test_id)) == 1


def test_a_kyc_webhook_is_delivered(run_sim, upstream):
    test_id, header = tag()
    result = run_sim("kyc", "/kyc/events", "--parent-token", PARENT_TOKEN, *header,
                     "--expect", "200")
    assert result.returncode == 0, result.stdout + result.stderr
    [seen] = deliveries(upstream, test_id)
    assert json.loads(seen["body"])["event"] == "kyc.completed"
    assert dict(seen["headers"])["x-vobiz-signature"].startswith("sha256=")


def test_a_kyc_webhook_signed_with_the_own_token_is_refused(run_sim, upstream):
    test_id, header = tag()
    result = run_sim("kyc", "/kyc/events", "--parent-token", TOKEN, *header)
    assert (result.status(1), result.reason(1)) == (403, "signature_mismatch")
    assert deliveries(upstream, test_id) == []


def test_an_untrusted_certificate_is_a_transport_error(sim_binary, envoy):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VOBIZ_")}
    url = f"https://127.0.0.1:{envoy.https_port}/vobiz/answer"
    proc = subprocess.run([str(sim_binary), "voice", "--url", url, "--token", TOKEN],
                          capture_output=True, text=True, timeout=60, env=environment)
    assert proc.returncode == 1
    assert "-> error:" in proc.stdout
    insecure = subprocess.run([str(sim_binary), "voice", "--url", url, "--token", TOKEN,
                               "--origin", ORIGIN, "--insecure"],
                              capture_output=True, text=True, timeout=60, env=environment)
    assert insecure.returncode == 0 and " -> 200" in insecure.stdout, insecure.stdout


# Every other provider: `webhook --provider`, and `voice --brand plivo`.
WEBHOOKS = [
    ("standard-webhooks", "/standard/events", "STANDARD_WEBHOOKS_SECRET", True),
    ("svix", "/svix/events", "SVIX_WEBHOOK_SECRET", True),
    ("stripe", "/stripe/events", "STRIPE_WEBHOOK_SECRET", True),
    ("github", "/github/events", "GITHUB_WEBHOOK_SECRET", False),
    ("slack", "/slack/events", "SLACK_SIGNING_SECRET", True),
    ("twilio", "/twilio/voice?x=1", "TWILIO_AUTH_TOKEN", False),
    ("shopify", "/shopify/orders", "SHOPIFY_WEBHOOK_SECRET", False),
    ("meta", "/meta/events", "META_APP_SECRET", False),
]


@pytest.mark.parametrize("provider, path, env, timed", WEBHOOKS, ids=[w[0] for w in WEBHOOKS])
def test_the_simulator_signs_every_provider(run_sim, upstream, provider, path, env, timed):
    from harness import PROVIDER_SECRETS
    secret = ["--secret", PROVIDER_SECRETS[env], "--origin", ORIGIN] if provider == "twilio" \
        else ["--secret", PROVIDER_SECRETS[env]]
    test_id, header = tag()
    result = run_sim("webhook", path, "--provider", provider, *secret, *header,
                     "--replay", "1", "--tamper", "body", "--expect", "200,200,403")
    assert result.returncode == 0, result.stdout + result.stderr
    # Twilio itself sends identical signed requests as new ones: its repeat is delivered.
    repeats = provider == "twilio"
    assert result.reason(2) == (None if repeats else "already_delivered")
    assert result.reason(3) == "signature_mismatch"
    delivered = [r for r in upstream.records() if ["x-test-id", test_id] in r["headers"]]
    assert len(delivered) == (2 if repeats else 1)
    wrong = run_sim("webhook", path, "--provider", provider, "--secret", "whsec_d3Jvbmc=",
                    *secret[2:], "--expect", "403")
    assert wrong.returncode == 0, wrong.stdout + wrong.stderr
    if timed:
        stale = run_sim("webhook", path, "--provider", provider, *secret, "--age", "10m",
                        "--expect", "403")
        assert stale.returncode == 0 and stale.reason(1) == "stale", stale.stdout


def test_the_simulator_signs_plivo_under_plivos_header_names(run_sim):
    from harness import PROVIDER_SECRETS
    result = run_sim("voice", "/plivo/hangup", "--brand", "plivo", "--origin", ORIGIN,
                     "--token", PROVIDER_SECRETS["PLIVO_AUTH_TOKEN"], "--construction", "sdk",
                     "--replay", "1", "--expect", "200")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.reason(2) == "already_delivered"
    assert "X-Plivo-Signature-V3" in run_sim("voice", "/plivo/hangup", "--brand", "plivo",
                                             "--token", "t", "--dry-run").stdout


# Every scheme of the registry: the demo's routes (envoy/routes/routes.yaml) have one each.
DEMO_ROUTES = yaml.safe_load((ROOT / "envoy/routes/routes.yaml").read_text())["routes"]
# Each route's secret, by the env variable its keys name (as harness.Envoy sets them)...
SECRETS = {"VOBIZ_AUTH_TOKEN": TOKEN, "VOBIZ_PARENT_AUTH_TOKEN": PARENT_TOKEN,
           "VOBIZ_WHATSAPP_SECRET": WHATSAPP_SECRET, **PROVIDER_SECRETS}
# ...and the private keys of the public keys there (tests/e2e/providers.py signs with them).
PRIVATE_KEYS = {"DISCORD_PUBLIC_KEY": bytes(range(32, 64)).hex(),  # the Ed25519 seed
                "SENDGRID_PUBLIC_KEY": "22" * 32,                  # the P-256 scalar
                "TELNYX_PUBLIC_KEY": bytes(range(96, 128)).hex()}  # the Ed25519 seed


def scheme_of(route):
    return route.get("scheme", "vobiz_voice")


def signing_options(route):
    """What `webhook --scheme` needs to sign for this route: its key, the public origin
    where the scheme signs the URL, the generic or token block."""
    if "public_keys" in route:
        options = ["--private-key", PRIVATE_KEYS[route["public_keys"][0]["env"]]]
    else:
        options = ["--secret", SECRETS[route["keys"][0]["env"]]]
    if "public_origin" in route:
        options += ["--origin", ORIGIN]
    if "generic" in route:
        options += ["--generic", json.dumps(route["generic"])]
    if "token" in route:
        options += ["--token", json.dumps(route["token"])]
    if "jwt" in route:
        options += ["--audience", route["jwt"]["audience"].replace("${public_origin}", ORIGIN)]
    return options


def test_the_demo_routes_are_every_scheme_the_command_line_signs(sim_binary):
    """79 routes, one per scheme, and exactly the schemes `webhook --scheme` takes (clap
    lists them when refusing another)."""
    schemes = [scheme_of(route) for route in DEMO_ROUTES]
    assert len(schemes) == len(set(schemes)) == 79
    proc = subprocess.run([str(sim_binary), "webhook", "--scheme", "nope", "--url", "https://h/",
                           "--secret", "s"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    listed = proc.stderr.split("[possible values: ", 1)[1].split("]", 1)[0].split(", ")
    assert sorted(listed) == sorted(schemes)


@pytest.mark.parametrize("route", DEMO_ROUTES, ids=[scheme_of(r) for r in DEMO_ROUTES])
def test_webhook_signs_every_scheme_as_its_route_verifies(run_sim, upstream, route):
    """Signed by the core's signer of the scheme, from the CLI's defaults: delivered; the
    same again is already delivered (Twilio, which repeats itself, is delivered again); a
    copy with another body is refused (the signature, or the replay memory where the body
    is not signed: voice, Mailgun); nothing refused reaches the upstream."""
    scheme = scheme_of(route)
    test_id, header = tag()
    result = run_sim("webhook", route["path_prefix"] + "events?x=1", "--scheme", scheme,
                     *signing_options(route), *header, "--replay", "1", "--tamper", "body")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.status(1) == 200 and result.reason(1) is None, result.stdout
    repeats = scheme == "twilio"
    assert result.status(2) == 200, result.stdout
    assert result.reason(2) == (None if repeats else "already_delivered"), result.stdout
    mismatch = 401 if scheme in ("discord", "xero") else 403  # Discord and Xero insist on 401
    # An SNS message has SNS's members only: the tamper's extra member is refused unread.
    refused = [(400, "malformed_body")] if scheme == "sns" else [
        (mismatch, "signature_mismatch"), (409, "replay_tampered")]
    assert (result.status(3), result.reason(3)) in refused, result.stdout
    assert len(deliveries(upstream, test_id)) == (2 if repeats else 1)


def test_webhook_signs_standard_webhooks_v1a_with_a_private_key(sim_binary, start_envoy):
    """A route with a whpk_ public key verifies what `--private-key whsk_...` signs."""
    import base64
    import nacl.signing
    seed = bytes(range(64, 96))
    public = nacl.signing.SigningKey(seed).verify_key.encode()
    route = {"name": "v1a", "path_prefix": "/v1a/", "scheme": "standard_webhooks",
             "public_keys": [{"name": "ed", "value": "whpk_" + base64.b64encode(public).decode()}]}
    proxy = start_envoy({"routes": [route]})
    whsk = "whsk_" + base64.b64encode(seed).decode()
    argv = [str(sim_binary), "webhook", "--scheme", "standard_webhooks",
            "--url", f"https://127.0.0.1:{proxy.https_port}/v1a/events", "--cacert", str(proxy.cert[0]),
            "--private-key", whsk, "--replay", "1", "--tamper", "body", "--expect", "200,200,403"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "already_delivered" in proc.stdout.splitlines()[1]
    assert "webhook-signature: v1a," in subprocess.run(
        argv + ["--dry-run"], capture_output=True, text=True, timeout=60).stdout.lower()


def test_vobiz_sim_is_the_same_command_under_its_old_name(sim_binary):
    """The alias signs exactly what callback-guard signs (the same nonce given, the same
    bytes out) and names itself in its errors, for one release."""
    alias = sim_binary.with_name("vobiz-sim")
    assert alias.exists(), f"{alias} is missing: run `make build`"
    argv = ["voice", "--url", "https://127.0.0.1:8443/vobiz/answer", "--origin", ORIGIN,
            "--token", TOKEN, "--nonce", "12345678901234567890", "--form", "CallUUID=a&Event=StartApp",
            "--dry-run"]
    new, old = (subprocess.run([str(binary), *argv], capture_output=True, text=True, timeout=60)
                for binary in (sim_binary, alias))
    assert new.returncode == old.returncode == 0, new.stderr + old.stderr
    assert "X-Vobiz-Signature-V3" in new.stdout
    assert new.stdout == old.stdout
    bad = ["voice", "--url", "not a url", "--token", "t", "--dry-run"]
    for binary, name in ((sim_binary, "callback-guard"), (alias, "vobiz-sim")):
        proc = subprocess.run([str(binary), *bad], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and proc.stderr.startswith(f"{name}: "), proc.stderr
