"""Envoy Gateway (envoy/gateway/): the EnvoyExtensionPolicy and EnvoyProxy valid by Envoy
Gateway's own CRD schemas (the parts they use, tests/e2e/gateway_schemas), agreeing with
each other and with envoy/routes/routes.yaml, and the Wasm filter Envoy Gateway makes of the
policy (its config as the plugin configuration, its hostKeys passed into the VM, Envoy's
header holding unset) protecting callbacks in a real Envoy."""
import copy
import hashlib
import hmac
import json
import time

import jsonschema
import pytest
import yaml

from harness import PROVIDER_SECRETS, ROOT, Envoy, wait_for
from raw import assert_delivered_once
from test_providers import reason

GATEWAY = ROOT / "envoy/gateway"
SCHEMAS = ROOT / "tests/e2e/gateway_schemas"
SOURCE = yaml.safe_load((ROOT / "envoy/routes/routes.yaml").read_text())


def manifest(name):
    return yaml.safe_load((GATEWAY / f"{name}.yaml").read_text())


def schema(name):
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


@pytest.mark.parametrize("name", ["envoyextensionpolicy", "envoyproxy"])
def test_the_manifests_are_valid_by_envoy_gateways_crds(name):
    jsonschema.validate(manifest(name), schema(name))


def broken(change):
    policy = manifest("envoyextensionpolicy")
    change(policy["spec"])
    return policy


@pytest.mark.parametrize("change", [
    lambda spec: spec["wasm"][0].update(rootId="callback_guard"),            # a misspelt field
    lambda spec: spec["wasm"][0].update(failOpen="false"),                   # not a boolean
    lambda spec: spec["wasm"][0]["code"].update(type="ConfigMap"),           # no such source
    lambda spec: spec["wasm"][0]["code"]["image"].update(sha256=0),          # a digest YAML read as 0
    lambda spec: spec["wasm"][0]["env"].update(hostKeys="VOBIZ_AUTH_TOKEN"),  # not a list
], ids=["misspelt field", "failOpen a string", "ConfigMap code", "numeric sha256", "hostKeys a string"])
def test_the_schemas_refuse_what_envoy_gateway_would(change):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken(change), schema("envoyextensionpolicy"))


def test_the_policy_and_the_proxy_agree_with_routes_yaml():
    policy, proxy = manifest("envoyextensionpolicy"), manifest("envoyproxy")
    [wasm] = policy["spec"]["wasm"]
    assert wasm["rootID"] == "callback_guard" and wasm["failOpen"] is False
    assert wasm["code"]["type"] == "Image" and len(wasm["code"]["image"]["sha256"]) == 64
    assert policy["spec"]["targetRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "callbacks"}]
    assert policy["metadata"]["namespace"] == proxy["metadata"]["namespace"]
    names = [s["env"] for s in SOURCE["secrets"]]
    env = proxy["spec"]["provider"]["kubernetes"]["envoyDeployment"]["container"]["env"]
    assert wasm["env"]["hostKeys"] == [e["name"] for e in env] == names
    assert all(e["valueFrom"]["secretKeyRef"] == {"name": SOURCE["secret_name"], "key": e["name"]} for e in env)
    # Every route but those Envoy Gateway cannot serve, on the gateway's host; told that
    # Envoy does not hold headers (Envoy Gateway cannot set the flag).
    config = wasm["config"]
    target = SOURCE["targets"]["envoygateway"]
    assert [r["name"] for r in config["routes"]] == [
        r["name"] for r in SOURCE["routes"] if r["name"] not in target["routes_left_out"]]
    assert all(r["host"] == target["host"] for r in config["routes"])
    assert config["allow_on_headers_stop_iteration"] is False


def as_envoy_gateway_makes_it():
    """What Envoy Gateway's translator (internal/xds/translator/wasm.go) makes of the policy:
    a Wasm filter whose configuration is the policy's `config` as JSON and whose VM gets the
    hostKeys, without allow_on_headers_stop_iteration (nothing in Envoy Gateway sets it)."""
    [wasm] = manifest("envoyextensionpolicy")["spec"]["wasm"]
    return wasm["config"], wasm["env"]["hostKeys"], {"allow_on_headers_stop_iteration": False,
                                                     "root_id": wasm["rootID"]}


@pytest.fixture
def gateway(workdir, upstream, cert):
    plugin, keys, options = as_envoy_gateway_makes_it()
    envoy = Envoy(workdir, upstream, cert, plugin, plugin_options=options, host_env_keys=keys)
    yield envoy
    envoy.stop()


def github(body, secret=PROVIDER_SECRETS["GITHUB_WEBHOOK_SECRET"]):
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    test_id = f"gateway-{time.monotonic_ns()}"
    return test_id, {"host": "callbacks.example.com", "content-type": "application/json",
                     "x-hub-signature-256": f"sha256={signature}", "x-github-event": "push",
                     "x-github-delivery": test_id, "x-test-id": test_id}


def complete(upstream, test_id):
    return [r for r in upstream.records() if ["x-test-id", test_id] in r["headers"] and not r["truncated"]]


def test_the_filter_envoy_gateway_makes_delivers_genuine_callbacks_once_and_refuses_forgeries(gateway, upstream):
    body = json.dumps({"ref": "refs/heads/main", "note": "café"}).encode()
    with gateway.https_client() as client:
        test_id, headers = github(body)
        assert client.post("/github/push", headers=headers, content=body).status_code == 200
        again_id = f"{test_id}-again"
        again = client.post("/github/push", headers={**headers, "x-test-id": again_id}, content=body)
        assert (again.status_code, reason(again)) == (200, "already_delivered")
        forged_id, forged = github(body, secret="not-the-secret")
        answer = client.post("/github/push", headers=forged, content=body)
        assert (answer.status_code, reason(answer)) == (403, "signature_mismatch")
    assert_delivered_once(upstream, test_id, body=body)
    # Envoy does not hold headers here: a body-dependent refusal may let the headers through,
    # then resets the request, so the application never gets it whole.
    wait_for(lambda: gateway.quiet() and upstream.idle(), timeout=30, what="nothing open")
    assert complete(upstream, again_id) == complete(upstream, forged_id) == []


def test_check_passes_the_policy(tmp_path):
    from test_config import check
    status, report = check(GATEWAY / "envoyextensionpolicy.yaml")
    assert status == 0 and "EnvoyExtensionPolicy callback-guard wasm[0]: ok: protecting" in report, report
    # Told that Envoy holds headers, which Envoy Gateway cannot make it do: refused.
    policy = copy.deepcopy(manifest("envoyextensionpolicy"))
    policy["spec"]["wasm"][0]["config"]["allow_on_headers_stop_iteration"] = True
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    status, report = check(path)
    assert status == 1 and "allow_on_headers_stop_iteration: the plugin is told" in report, report
