"""Plugin configuration through Envoy YAML: bad configuration is refused with one log line
naming the field, and `callback-guard check` says the same of the same file offline;
transport options behave as documented."""
import base64
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import CLI, ROOT, Envoy, plugin_config, seal, vobiz_headers, wait_for

SHIPPED = ["envoy/envoy.yaml", "envoy/istio/envoyfilter.yaml", "envoy/istio/wasmplugin.yaml",
           "envoy/gateway/envoyextensionpolicy.yaml", "envoy/live-keys/callback-guard.yaml"]
# The sealing key envoy/live-keys/callback-guard.yaml's demo keys are sealed under (its comment).
DEMO_SEALING_KEY = "AeRwvPei6AjB5gJcx+J4+LPu/Ci1Zamf7CCwwSS/76Q="


def check(*files, env=None):
    """`callback-guard check` of the files: (exit status, report)."""
    proc = subprocess.run([str(CLI), "check", *map(str, files)], capture_output=True, text=True,
                          timeout=60, env=env if env is not None else dict(os.environ), cwd=ROOT)
    return proc.returncode, proc.stdout + proc.stderr

INVALID = {
    "unset environment variable": (
        plugin_config(keys=[{"env": "VOBIZ_UNSET_TOKEN"}]),
        'routes[0].keys[0].env: environment variable "VOBIZ_UNSET_TOKEN" is not set'),
    "unknown field": (
        plugin_config(kyes=[]), "routes[0].kyes: unknown field `kyes`"),
    "empty inline key": (
        plugin_config(keys=[{"value": ""}]), "routes[0].keys[0]: key from value is empty"),
    "missing origin": (
        plugin_config(public_origin=None), "routes[0].public_origin: is required for scheme vobiz_voice"),
    "origin with a path": (
        plugin_config(public_origin="https://127.0.0.1:8443/vobiz"), "routes[0].public_origin: must be scheme://host[:port]"),
    "no routes": ({"routes": []}, "routes: must list at least one protected route"),
}


@pytest.mark.parametrize("case", INVALID.keys())
def test_envoy_refuses_to_start_with_an_invalid_configuration(workdir, upstream, cert, case):
    plugin, message = INVALID[case]
    envoy = Envoy(workdir, upstream, cert, plugin, wait=False)
    try:
        envoy.proc.wait(timeout=30)
    finally:
        envoy.stop()
    assert envoy.proc.returncode != 0
    lines = [l for l in envoy.log_text().splitlines() if "invalid configuration" in l]
    assert lines, envoy.log_text()[-2000:]
    assert all(f"invalid configuration: {message}" in l for l in lines), lines
    assert "[error]" in lines[0] or "[critical]" in lines[0]
    # The same file checked offline, with what the VM had: the same message, exit status 1.
    status, report = check(envoy.config_path, env=envoy.environment)
    assert status == 1 and f"invalid configuration: {message}" in report, report


def test_an_empty_token_in_the_environment_is_refused(workdir, upstream, cert):
    envoy = Envoy(workdir, upstream, cert, plugin_config(), env={"VOBIZ_AUTH_TOKEN": ""}, wait=False)
    try:
        envoy.proc.wait(timeout=30)
    finally:
        envoy.stop()
    assert envoy.proc.returncode != 0
    assert "routes[0].keys[0]: key from VOBIZ_AUTH_TOKEN is empty" in envoy.log_text()
    status, report = check(envoy.config_path, env=envoy.environment)
    assert status == 1 and "routes[0].keys[0]: key from VOBIZ_AUTH_TOKEN is empty" in report, report


def test_check_passes_every_shipped_manifest_and_each_protects_every_route():
    """What CI runs (make check-config): the demo's Envoy, Istio's EnvoyFilter and
    WasmPlugin, Envoy Gateway's EnvoyExtensionPolicy, each filter with every route of
    envoy/routes/routes.yaml its target takes, and the live-keys example (the voice route),
    the keys' values unknown here (checked in form only)."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_SECRET", "_TOKEN", "_KEY"))}
    status, report = check(*SHIPPED, env=env)
    assert status == 0, report
    source = yaml.safe_load((ROOT / "envoy/routes/routes.yaml").read_text())
    left_out = set(source["targets"]["envoygateway"]["routes_left_out"])
    protected = [line for line in report.splitlines() if ": ok: protecting " in line]
    # Two listeners, the EnvoyFilter, the WasmPlugin, the EnvoyExtensionPolicy, live keys.
    assert len(protected) == 6, report
    live = [line for line in protected if line.startswith("envoy/live-keys/")]
    assert len(live) == 1 and live[0].endswith(": ok: protecting vobiz-voice=/vobiz/"), report
    for line in set(protected) - set(live):
        routes = [r for r in source["routes"]
                  if not (line.startswith("envoy/gateway/") and r["name"] in left_out)]
        assert line.endswith(", ".join(f"{r['name']}={r['path_prefix']}" for r in routes)), line
    assert "invalid configuration" not in report


def test_check_opens_the_shipped_sealed_keys_with_their_sealing_key_only():
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_SECRET", "_TOKEN", "_KEY"))}
    example = "envoy/live-keys/callback-guard.yaml"
    status, report = check(example, env={**env, "CALLBACK_GUARD_SEALING_KEY": DEMO_SEALING_KEY})
    assert status == 0 and "ok: protecting vobiz-voice=/vobiz/" in report, report
    assert "checked as written" not in report
    other = base64.b64encode(bytes(32)).decode()
    status, report = check(example, env={**env, "CALLBACK_GUARD_SEALING_KEY": other})
    assert status == 1, report
    assert ("invalid configuration: routes[0].keys[0].sealed: does not open with the sealing key"
            in report), report


def test_a_wasmplugin_with_sealed_keys_needs_its_sealing_key_passed_into_the_vm(tmp_path):
    """Istio pushes a changed WasmPlugin over ECDS; with sealed keys its pluginConfig holds
    no secret, and the sealing key must come from the gateway (vmConfig.env)."""
    env = {**os.environ, "CALLBACK_GUARD_SEALING_KEY": DEMO_SEALING_KEY}
    sealed = seal("a-rotated-token", DEMO_SEALING_KEY)

    def seal_voice(passed):
        def change(documents):
            [plugin] = [d for d in documents if d and d.get("kind") == "WasmPlugin"]
            config = plugin["spec"]["pluginConfig"]
            config["sealing_key"] = {"env": "CALLBACK_GUARD_SEALING_KEY"}
            config["routes"][0]["keys"] = [{"name": "next", "sealed": sealed}]
            if passed:
                plugin["spec"]["vmConfig"]["env"].append(
                    {"name": "CALLBACK_GUARD_SEALING_KEY", "valueFrom": "HOST"})
        return change

    status, report = check(broken(tmp_path, "envoy/istio/wasmplugin.yaml", seal_voice(False)), env=env)
    assert status == 1 and ('invalid configuration: sealing_key.env: environment variable '
                            '"CALLBACK_GUARD_SEALING_KEY" is not set in the VM') in report, report
    status, report = check(broken(tmp_path, "envoy/istio/wasmplugin.yaml", seal_voice(True)), env=env)
    assert status == 0 and "WasmPlugin callback-guard: ok: protecting vobiz-voice=/vobiz/" in report, report


def broken(tmp_path, name, change):
    """A shipped manifest changed by `change` (on its parsed documents)."""
    documents = list(yaml.safe_load_all((ROOT / name).read_text()))
    change(documents)
    path = tmp_path / Path(name).name
    path.write_text(yaml.safe_dump_all(documents))
    return path


def drop_cluster(name):
    def change(documents):
        clusters = documents[0]["static_resources"]["clusters"]
        clusters[:] = [c for c in clusters if c["name"] != name]
    return change


def hold_in_wasmplugin(documents):
    documents[0]["spec"]["pluginConfig"]["allow_on_headers_stop_iteration"] = True


def drop_env(documents):
    env = documents[0]["spec"]["vmConfig"]["env"]
    env[:] = [e for e in env if e["name"] != "STRIPE_WEBHOOK_SECRET"]


@pytest.mark.parametrize("name, change, message", [
    ("envoy/envoy.yaml", drop_cluster("sns_certificates"),
     'routes[70].certificate.cluster: cluster "sns_certificates" is not in static_resources.clusters'),
    ("envoy/istio/wasmplugin.yaml", hold_in_wasmplugin, "allow_on_headers_stop_iteration: the plugin is told"),
    ("envoy/istio/wasmplugin.yaml", drop_env,
     'routes[5].keys[0].env: environment variable "STRIPE_WEBHOOK_SECRET" is not set in the VM'),
], ids=["a certificate cluster missing", "WasmPlugin holding headers", "a key's variable not passed"])
def test_check_refuses_a_broken_manifest_naming_the_field(tmp_path, name, change, message):
    status, report = check(broken(tmp_path, name, change))
    assert status == 1 and f"invalid configuration: {message}" in report, report


# A route behind a TLS-terminating load balancer: Envoy keeps the client's
# x-forwarded-proto only when it is not the edge (use_remote_address: false).
BEHIND_LB = {"use_remote_address": False}


def test_trusted_forwarded_proto_admits_plain_http_from_the_balancer(start_envoy, upstream):
    envoy = start_envoy(plugin_config(trust_x_forwarded_proto=True), hcm=BEHIND_LB)
    path = "/vobiz/answer"
    with envoy.http_client() as client:
        ok = client.post(path, headers={**vobiz_headers(path), "X-Forwarded-Proto": "https"})
        no_proto = client.post(path, headers=vobiz_headers(path))
        http_proto = client.post(path, headers={**vobiz_headers(path), "X-Forwarded-Proto": "http"})
    assert ok.status_code == 200, ok.text
    assert no_proto.status_code == 403 and no_proto.json()["reason"] == "tls_required"
    assert http_proto.status_code == 403 and http_proto.json()["reason"] == "tls_required"


def test_a_route_answers_a_refusal_under_the_status_it_gives_it(start_envoy, upstream):
    """`refusal_status`: a GitLab route answers a wrong token 503 (GitLab disables a hook for
    good on 4xx answers, only for a while on 5xx); the reason, and the upstream's silence,
    stay as they were."""
    from raw import seen_by_upstream
    route = {"name": "gitlab", "path_prefix": "/gitlab/", "scheme": "gitlab",
             "keys": [{"name": "t", "value": "right-token"}],
             "refusal_status": {"signature_mismatch": 503}}
    envoy = start_envoy(plugin_config(extra_routes=[route]))
    test_id = "refusal-status-1"
    with envoy.https_client() as client:
        wrong = client.post("/gitlab/hook", content=b"{}", headers={
            "content-type": "application/json", "x-gitlab-token": "wrong-token", "x-test-id": test_id})
        missing = client.post("/gitlab/hook", content=b"{}", headers={
            "content-type": "application/json", "x-test-id": test_id})
    assert (wrong.status_code, wrong.json()) == (503, {"error": "unavailable", "reason": "signature_mismatch"})
    assert (missing.status_code, missing.json()["reason"]) == (401, "missing_signature")
    assert seen_by_upstream(upstream).get(test_id) is None


def test_allow_plain_http_is_explicit(start_envoy):
    envoy = start_envoy(plugin_config(allow_plain_http=True, public_origin="http://127.0.0.1:8080"))
    path = "/vobiz/answer"
    with envoy.http_client() as client:
        ok = client.post(path, headers=vobiz_headers(path, origin="http://127.0.0.1:8080"))
        unsigned = client.post(path)
    assert ok.status_code == 200, ok.text
    assert unsigned.status_code == 401


def test_host_restricts_the_route(start_envoy, upstream):
    envoy = start_envoy(plugin_config(host="callbacks.example.com"))
    path = "/vobiz/answer"
    with envoy.https_client() as client:
        other_host = client.post(path, headers={"Host": "app.example.com"})
        this_host = client.post(path, headers={"Host": "callbacks.example.com:8443"})
    assert other_host.status_code == 200  # not protected: passes untouched
    assert this_host.status_code == 401


def test_envoy_refuses_to_apply_an_invalid_update_and_keeps_the_old_one(start_envoy):
    envoy = start_envoy(plugin_config(), dynamic_listeners=True)
    path = "/vobiz/answer"
    rejected_before = envoy.stat("listener_manager.lds.update_rejected") or 0
    envoy.update_plugin(plugin_config(keys=[{"env": "VOBIZ_UNSET_TOKEN"}]))
    wait_for(lambda: (envoy.stat("listener_manager.lds.update_rejected") or 0) > rejected_before,
             what="the LDS update to be rejected")
    assert 'routes[0].keys[0].env: environment variable "VOBIZ_UNSET_TOKEN" is not set' in envoy.log_text()
    with envoy.https_client() as client:
        assert client.post(path, headers=vobiz_headers(path)).status_code == 200
        assert client.post(path).status_code == 401
