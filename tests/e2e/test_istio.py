"""The Istio manifests in envoy/istio/, without a cluster: their shape against JSON Schemas
transcribed from istio/api, their consistency with each other and with envoy/envoy.yaml, and
the Envoy configuration each one produces, run in a real Envoy 1.40 with the built filter.

- EnvoyFilter: the patch `value` is applied to a minimal gateway-like bootstrap (listener +
  TLS + HCM + router) exactly as the patch says (INSERT_BEFORE the router), with only the
  module path changed; Envoy must validate and serve it.
- WasmPlugin: the filter Istio generates from it (istio/istio pilot/pkg/model/extensions.go,
  buildWasmPluginConfigCommon/buildVMConfig): name "<ns>.<name>", root_id = pluginName,
  runtime v8, pluginConfig as JSON in a StringValue, vmConfig.env HOST entries as
  host_env_keys, no vm_id and no allow_on_headers_stop_iteration; the module path is what
  istio-agent rewrites the OCI URL to (here the built file).
"""
import copy
import json
import os
import ssl
import subprocess
from pathlib import Path

import httpx
import jsonschema
import pytest
import yaml

from harness import (PARENT_TOKEN, PROVIDER_SECRETS, ROOT, TOKEN, VENV_BIN, WASM, WHATSAPP_SECRET, free_port,
                     new_nonce, shipped_plugin_config, vobiz_headers, wait_for)

ISTIO = ROOT / "envoy/istio"
SCHEMAS = Path(__file__).resolve().parent / "istio_schemas"
HOST = "callbacks.example.com"
ORIGIN = "https://callbacks.example.com"
FORM = {"content-type": "application/x-www-form-urlencoded"}
TOKEN_ENV = ["VOBIZ_AUTH_TOKEN", "VOBIZ_PARENT_AUTH_TOKEN", "VOBIZ_WHATSAPP_SECRET", *PROVIDER_SECRETS]
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue"


def documents(name):
    return list(yaml.safe_load_all((ISTIO / name).read_text()))


def manifest(name):
    """The file's first (main) resource."""
    return documents(name)[0]


def validator(kind):
    schema = json.loads((SCHEMAS / f"{kind}.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def errors(kind, document):
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator(kind).iter_errors(document)]


def patch_of(envoyfilter, apply_to):
    [patch] = [p for p in envoyfilter["spec"]["configPatches"] if p["applyTo"] == apply_to]
    return patch


def wasm_patch(envoyfilter):
    return patch_of(envoyfilter, "HTTP_FILTER")


def hardening(name):
    """The HTTP connection manager fields the file's NETWORK_FILTER MERGE patch sets."""
    [patch] = [patch_of(d, "NETWORK_FILTER") for d in documents(name) if d["kind"] == "EnvoyFilter"]
    assert patch["patch"]["operation"] == "MERGE"
    assert patch["match"]["listener"]["filterChain"]["filter"] == {
        "name": "envoy.filters.network.http_connection_manager"}
    typed_config = dict(patch["patch"]["value"]["typed_config"])
    assert typed_config.pop("@type").endswith(".HttpConnectionManager")
    return typed_config


def envoyfilter_wasm_config(envoyfilter):
    return wasm_patch(envoyfilter)["patch"]["value"]["typed_config"]["config"]


def plugin_json(wasm_config):
    configuration = wasm_config["configuration"]
    assert configuration["@type"] == STRING_VALUE
    return json.loads(configuration["value"])


def env_names_in_keys(plugin):
    return {key["env"] for route in plugin["routes"]
            for key in route.get("keys", []) + route.get("parent_keys", [])}


# ---------------------------------------------------------------------------------------
# Shape: the manifests against the transcribed istio/api schemas.


@pytest.mark.parametrize("kind", ["wasmplugin", "envoyfilter"])
def test_the_schemas_are_valid_json_schemas(kind):
    schema = json.loads((SCHEMAS / f"{kind}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "istio/api" in schema["$comment"]


@pytest.mark.parametrize("name", ["wasmplugin.yaml", "envoyfilter.yaml"])
def test_the_manifest_matches_the_istio_api(name):
    for document in documents(name):
        assert errors(document["kind"].lower(), document) == [], document["metadata"]["name"]


def test_both_variants_harden_path_and_host_handling_as_envoy_yaml_does():
    shipped = yaml.safe_load((ROOT / "envoy/envoy.yaml").read_text())
    manager = shipped["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    # No port mode: it would replace the one Istio sets with ISTIO_GATEWAY_STRIP_HOST_PORT.
    expected = {key: manager[key] for key in (
        "normalize_path", "merge_slashes", "path_with_escaped_slashes_action",
        "strip_trailing_host_dot", "common_http_protocol_options",
        # What unauthenticated senders can hold open, as in envoy.yaml.
        "request_headers_timeout", "stream_idle_timeout", "request_timeout",
        "http2_protocol_options")}
    assert hardening("envoyfilter.yaml") == hardening("wasmplugin.yaml") == expected
    # The WasmPlugin's hardening applies to the same gateway pods and listener.
    [plugin, path_hardening] = documents("wasmplugin.yaml")
    assert path_hardening["metadata"]["namespace"] == plugin["metadata"]["namespace"]
    assert path_hardening["spec"]["workloadSelector"]["labels"] == plugin["spec"]["selector"]["matchLabels"]
    [patch] = path_hardening["spec"]["configPatches"]
    assert patch["match"]["context"] == "GATEWAY"
    assert {patch["match"]["listener"]["portNumber"]} == {p["number"] for m in plugin["spec"]["match"] for p in m["ports"]}


def _set(document, path, value):
    *parents, last = path
    for step in parents:
        document = document[step]
    document[last] = value


def _rename(document, path, new_name):
    *parents, last = path
    for step in parents:
        document = document[step]
    document[new_name] = document.pop(last)


BROKEN = [
    # (kind, what is broken, mutation, text the error must name)
    ("wasmplugin", "misspelled spec field",
     lambda d: _rename(d, ["spec", "failStrategy"], "failStratgy"), "failStratgy"),
    ("wasmplugin", "misspelled nested field",
     lambda d: _rename(d, ["spec", "vmConfig", "env", 0, "valueFrom"], "value_from"), "value_from"),
    ("wasmplugin", "misspelled metadata field",
     lambda d: _rename(d, ["metadata", "namespace"], "namepsace"), "namepsace"),
    ("wasmplugin", "bad phase",
     lambda d: _set(d, ["spec", "phase"], "AUTHENTICATION"), "AUTHENTICATION"),
    ("wasmplugin", "bad failStrategy",
     lambda d: _set(d, ["spec", "failStrategy"], "FAIL_CLOSED"), "FAIL_CLOSED"),
    ("wasmplugin", "bad match mode",
     lambda d: _set(d, ["spec", "match", 0, "mode"], "GATEWAY"), "GATEWAY"),
    ("wasmplugin", "bad env source",
     lambda d: _set(d, ["spec", "vmConfig", "env", 0, "valueFrom"], "SECRET"), "SECRET"),
    ("wasmplugin", "inline value on a HOST env",
     lambda d: _set(d, ["spec", "vmConfig", "env", 0, "value"], "token"), "value"),
    ("wasmplugin", "unsupported url scheme",
     lambda d: _set(d, ["spec", "url"], "s3://bucket/callback_guard.wasm"), "s3://"),
    ("wasmplugin", "sha256 not hex",
     lambda d: _set(d, ["spec", "sha256"], "sha256:abc"), "sha256:abc"),
    ("wasmplugin", "selector and targetRefs together",
     lambda d: _set(d, ["spec", "targetRefs"], [{"kind": "Gateway", "name": "gw"}]), "should not be valid"),
    ("envoyfilter", "misspelled spec field",
     lambda d: _rename(d, ["spec", "workloadSelector"], "workloadSelecter"), "workloadSelecter"),
    ("envoyfilter", "misspelled match field",
     lambda d: _rename(d, ["spec", "configPatches", 0, "match", "listener", "filterChain", "filter",
                           "subFilter"], "subfilter"), "subfilter"),
    ("envoyfilter", "bad applyTo",
     lambda d: _set(d, ["spec", "configPatches", 0, "applyTo"], "HTTP_FILTERS"), "HTTP_FILTERS"),
    ("envoyfilter", "bad context",
     lambda d: _set(d, ["spec", "configPatches", 0, "match", "context"], "INGRESS"), "INGRESS"),
    ("envoyfilter", "bad operation",
     lambda d: _set(d, ["spec", "configPatches", 0, "patch", "operation"], "INSERT_BEFOR"), "INSERT_BEFOR"),
    ("envoyfilter", "wrong apiVersion",
     lambda d: _set(d, ["apiVersion"], "networking.istio.io/v1beta1"), "apiVersion"),
]


@pytest.mark.parametrize("kind, what, mutate, named", BROKEN, ids=[b[1] + f" ({b[0]})" for b in BROKEN])
def test_the_schema_rejects_misspelled_fields_and_bad_enums(kind, what, mutate, named):
    document = manifest(f"{kind}.yaml")
    mutate(document)
    found = errors(kind, document)
    assert found, f"{what} was accepted"
    assert any(named in e for e in found), found


# ---------------------------------------------------------------------------------------
# Consistency: what Istio will do with the manifests, and that they agree with each other.


def test_the_wasmplugin_fits_an_istio_ingress_gateway():
    plugin = manifest("wasmplugin.yaml")
    spec = plugin["spec"]
    assert plugin["metadata"]["namespace"] == "istio-system"
    assert spec["selector"] == {"matchLabels": {"istio": "ingressgateway"}}
    assert spec["url"].startswith("oci://")
    assert spec["pluginName"] == "callback_guard"
    # After jwt_authn, whose verified Pub/Sub payload the google-pubsub route reads.
    assert spec["phase"] == "AUTHZ"
    assert spec["failStrategy"] == "FAIL_RELOAD"
    # Gateway listeners are CLIENT in Istio; SERVER would never match them
    # (pilot/pkg/model/extensions.go workloadModeForListenerClass).
    assert spec["match"] and all(m["mode"] in ("CLIENT", "CLIENT_AND_SERVER") for m in spec["match"])
    ports = {p["number"] for m in spec["match"] for p in m["ports"]}
    listener = wasm_patch(manifest("envoyfilter.yaml"))["match"]["listener"]
    assert ports == {listener["portNumber"]} == {8443}
    env = spec["vmConfig"]["env"]
    assert [e["name"] for e in env] == TOKEN_ENV  # unique (listType=map), in one place
    assert all(e["valueFrom"] == "HOST" and "value" not in e for e in env)
    # WasmPlugin cannot hold headers, so the plugin must be told.
    assert spec["pluginConfig"]["allow_on_headers_stop_iteration"] is False


def test_the_envoyfilter_inserts_a_header_holding_filter_before_the_gateway_router():
    envoyfilter = manifest("envoyfilter.yaml")
    assert envoyfilter["metadata"]["namespace"] == "istio-system"
    assert envoyfilter["spec"]["workloadSelector"] == {"labels": {"istio": "ingressgateway"}}
    patch = wasm_patch(envoyfilter)
    assert patch["applyTo"] == "HTTP_FILTER"
    assert patch["match"]["context"] == "GATEWAY"
    assert patch["match"]["listener"]["filterChain"]["filter"] == {
        "name": "envoy.filters.network.http_connection_manager",
        "subFilter": {"name": "envoy.filters.http.router"}}
    assert patch["patch"]["operation"] == "INSERT_BEFORE"
    value = patch["patch"]["value"]
    assert value["typed_config"]["@type"] == WASM_TYPE
    config = value["typed_config"]["config"]
    assert config["failure_policy"] == "FAIL_RELOAD"
    assert config["allow_on_headers_stop_iteration"] is True
    assert plugin_json(config)["allow_on_headers_stop_iteration"] is True
    assert config["vm_config"]["vm_id"] == "callback_guard"
    assert config["vm_config"]["runtime"] == "envoy.wasm.runtime.v8"
    assert config["vm_config"]["environment_variables"] == {"host_env_keys": TOKEN_ENV}


def test_both_variants_protect_the_shipped_routes_at_the_public_origin():
    """The routes of envoy/envoy.yaml, with the deployment's host and public origin; the two
    variants differ only in the header-holding declaration."""
    expected = []
    # SNS's and PayPal's certificates come through the gateway's own clusters for their
    # hosts (sns-egress.yaml, paypal-egress.yaml).
    target = yaml.safe_load((ROOT / "envoy/routes/routes.yaml").read_text())["targets"]["envoyfilter"]
    clusters = {"sns": target["sns_certificate_cluster"], "paypal": target["paypal_certificate_cluster"]}
    assert clusters == {"sns": "outbound|80||sns.us-east-1.amazonaws.com", "paypal": "outbound|80||api.paypal.com"}
    for route in shipped_plugin_config()["routes"]:
        route = dict(route, host=HOST)
        if "public_origin" in route:
            route["public_origin"] = ORIGIN
        if "certificate" in route:
            route["certificate"] = dict(route["certificate"], cluster=clusters[route["scheme"]])
        if "jwt" in route:  # Pub/Sub's audience: the push endpoint at the public origin
            route["jwt"] = dict(route["jwt"], audience=f"{ORIGIN}/pubsub/push")
        expected.append(route)
    from_wasmplugin = manifest("wasmplugin.yaml")["spec"]["pluginConfig"]
    from_envoyfilter = plugin_json(envoyfilter_wasm_config(manifest("envoyfilter.yaml")))
    assert from_wasmplugin["routes"] == expected
    assert from_envoyfilter["routes"] == expected
    assert set(from_wasmplugin) == set(from_envoyfilter) == {"routes", "allow_on_headers_stop_iteration"}


@pytest.mark.parametrize("scheme", ["sns", "paypal"])
def test_the_egress_makes_the_cluster_the_route_names_and_checks_its_tls(scheme):
    """Istio names a ServiceEntry's cluster outbound|<port>||<host>: the one the gateway's
    sns (paypal) route fetches certificates through, TLS originated to 443 and its name
    checked."""
    entry, rule = documents(f"{scheme}-egress.yaml")
    [route] = [r for r in manifest("wasmplugin.yaml")["spec"]["pluginConfig"]["routes"] if r.get("scheme") == scheme]
    [host] = entry["spec"]["hosts"]
    [port] = entry["spec"]["ports"]
    assert (entry["kind"], rule["kind"]) == ("ServiceEntry", "DestinationRule")
    assert route["certificate"]["cluster"] == f"outbound|{port['number']}||{host}"
    assert route["certificate"]["hosts"] == [host]
    assert (port["protocol"], port["targetPort"], entry["spec"]["resolution"]) == ("HTTP", 443, "DNS")
    assert rule["spec"]["host"] == host
    [level] = rule["spec"]["trafficPolicy"]["portLevelSettings"]
    assert level["port"] == {"number": port["number"]}
    assert level["tls"] == {"mode": "SIMPLE", "sni": host, "subjectAltNames": [host]}
    assert entry["metadata"]["namespace"] == rule["metadata"]["namespace"] == "istio-system"


def test_the_request_authentication_verifies_what_the_pubsub_route_reads():
    """Istio's jwt_authn for the google-pubsub route: Google's keys and both forms of its
    issuer, the route's audience, on the gateway the plugin runs on, before it (phase
    AUTHZ): the payload it leaves is the one the route reads (Istio's key, `payload`)."""
    [authn] = documents("pubsub-requestauthentication.yaml")
    plugin = manifest("wasmplugin.yaml")
    [route] = [r for r in plugin["spec"]["pluginConfig"]["routes"] if r.get("scheme") == "google_pubsub"]
    assert authn["kind"] == "RequestAuthentication" and authn["apiVersion"] == "security.istio.io/v1"
    assert authn["metadata"]["namespace"] == plugin["metadata"]["namespace"]
    assert authn["spec"]["selector"] == plugin["spec"]["selector"]
    rules = authn["spec"]["jwtRules"]
    assert [r["issuer"] for r in rules] == ["https://accounts.google.com", "accounts.google.com"]
    for rule in rules:
        assert rule["jwksUri"] == "https://www.googleapis.com/oauth2/v3/certs"
        assert rule["audiences"] == [route["jwt"]["audience"]]
        assert rule["forwardOriginalToken"] is False
        assert rule["fromHeaders"] == [{"name": "Authorization", "prefix": "Bearer "}]
    assert "metadata_key" not in route["jwt"]  # Istio 1.21+'s key, the route's default
    assert plugin["spec"]["phase"] == "AUTHZ"


def test_the_tokens_reach_the_vm_from_the_secret_and_nowhere_else():
    wasmplugin = manifest("wasmplugin.yaml")
    envoyfilter = manifest("envoyfilter.yaml")
    secret = manifest("secret.yaml")
    patch = manifest("gateway-env.yaml")
    # Every env a key names is passed into the VM by both variants.
    for plugin, passed in [
            (wasmplugin["spec"]["pluginConfig"], [e["name"] for e in wasmplugin["spec"]["vmConfig"]["env"]]),
            (plugin_json(envoyfilter_wasm_config(envoyfilter)),
             envoyfilter_wasm_config(envoyfilter)["vm_config"]["environment_variables"]["host_env_keys"])]:
        assert env_names_in_keys(plugin) <= set(passed) == set(TOKEN_ENV)
    # The gateway container gets exactly those from the Secret, in the gateway's namespace.
    assert secret["kind"] == "Secret" and secret["apiVersion"] == "v1"
    assert secret["metadata"]["namespace"] == wasmplugin["metadata"]["namespace"] == "istio-system"
    [container] = patch["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "istio-proxy"
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert list(refs) == TOKEN_ENV
    assert all(ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
               for ref in refs.values())
    # Unfilled placeholders are empty, which the plugin refuses (fail closed), never a
    # sample string that would work as a publicly known key.
    assert set(secret["stringData"]) == set(TOKEN_ENV)
    assert all(value == "" for value in secret["stringData"].values())


def test_the_envoyfilter_module_path_is_the_mounted_configmap():
    filename = envoyfilter_wasm_config(manifest("envoyfilter.yaml"))["vm_config"]["code"]["local"]["filename"]
    pod = manifest("gateway-wasm-volume.yaml")["spec"]["template"]["spec"]
    [volume] = pod["volumes"]
    [container] = pod["containers"]
    [mount] = container["volumeMounts"]
    assert container["name"] == "istio-proxy"
    assert mount["name"] == volume["name"] and volume["configMap"]["name"] == "callback-guard-wasm"
    assert str(Path(filename).parent) == mount["mountPath"]
    assert Path(filename).name == WASM.name  # the ConfigMap key made by --from-file


# ---------------------------------------------------------------------------------------
# The Envoy configuration each manifest produces, in a real Envoy.


def apply_http_filter_patch(http_filters, patch):
    """What istiod does with an HTTP_FILTER patch (envoyfilter/listener_patch.go)."""
    operation, value = patch["patch"]["operation"], copy.deepcopy(patch["patch"]["value"])
    anchor = patch["match"]["listener"]["filterChain"]["filter"].get("subFilter", {}).get("name")
    names = [f["name"] for f in http_filters]
    if operation == "INSERT_FIRST" or (operation == "INSERT_BEFORE" and anchor is None):
        return [value, *http_filters]
    if operation == "ADD":
        return [*http_filters, value]
    if operation == "INSERT_BEFORE":
        at = names.index(anchor)
        return [*http_filters[:at], value, *http_filters[at:]]
    raise AssertionError(f"unexpected operation {operation}")


def bootstrap(http_filters, cert, upstream_port, port, admin_port, hardening=None):
    """A minimal stand-in for an Istio gateway: TLS listener, HCM with the gateway's edge
    settings (Istio's default BASE path normalization), the given filters, a
    static upstream; `hardening` is merged into the HCM as a NETWORK_FILTER MERGE patch is."""
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "gateway",
        "codec_type": "AUTO",
        "use_remote_address": True,
        "normalize_path": True,
        "route_config": {"name": "gateway", "virtual_hosts": [
            {"name": "all", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "app"}}]}]},
        "http_filters": http_filters,
        **(hardening or {}),
    }
    tls = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": {"alpn_protocols": ["h2", "http/1.1"], "tls_certificates": [
                {"certificate_chain": {"filename": str(cert[0])}, "private_key": {"filename": str(cert[1])}}]}}}
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{
                "name": "0.0.0.0_8443",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "filter_chains": [{"transport_socket": tls, "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}]}],
            }],
            "clusters": [{
                "name": "app", "type": "STATIC", "connect_timeout": "1s",
                "load_assignment": {"cluster_name": "app", "endpoints": [{"lb_endpoints": [{"endpoint": {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": upstream_port}}}}]}]},
            }],
        },
    }


ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}


def envoyfilter_http_filters():
    """The gateway's HTTP filters after the EnvoyFilter patch, the module path pointing at the
    built filter instead of the ConfigMap mount."""
    patch = copy.deepcopy(wasm_patch(manifest("envoyfilter.yaml")))
    patch["patch"]["value"]["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] = str(WASM)
    return apply_http_filter_patch([copy.deepcopy(ROUTER)], patch)


def struct_to_json(value):
    """istiod serializes pluginConfig (a protobuf Struct, numbers are doubles) with protojson:
    integral doubles below 1e21 print without a fraction, map keys sorted."""
    def convert(v):
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, (int, float)):
            v = float(v)
            return int(v) if v.is_integer() and abs(v) < 1e21 else v
        if isinstance(v, dict):
            return {k: convert(x) for k, x in v.items()}
        return [convert(x) for x in v]
    return json.dumps(convert(value), sort_keys=True, separators=(",", ":"))


def istio_generated_filter(wasmplugin):
    """The HTTP filter istiod generates from a WasmPlugin (delivered by ECDS; here inline)."""
    meta, spec = wasmplugin["metadata"], wasmplugin["spec"]
    env = spec.get("vmConfig", {}).get("env", [])
    key_values = {"ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION": "1"}
    if spec.get("imagePullPolicy", "UNSPECIFIED_POLICY") != "UNSPECIFIED_POLICY":
        key_values["ISTIO_META_WASM_IMAGE_PULL_POLICY"] = spec["imagePullPolicy"]
    key_values.update({e["name"]: e.get("value", "") for e in env if e.get("valueFrom", "INLINE") == "INLINE"})
    config = {
        "name": f"{meta['namespace']}.{meta['name']}",
        "root_id": spec["pluginName"],
        "vm_config": {
            "runtime": "envoy.wasm.runtime.v8",
            # istio-agent fetches the oci:// module and rewrites the code to its local copy.
            "code": {"local": {"filename": str(WASM)}},
            "environment_variables": {
                "key_values": key_values,
                "host_env_keys": [e["name"] for e in env if e.get("valueFrom") == "HOST"],
            },
        },
        "configuration": {"@type": STRING_VALUE, "value": struct_to_json(spec["pluginConfig"])},
    }
    failure = {"FAIL_OPEN": "FAIL_OPEN", "FAIL_CLOSE": "FAIL_CLOSED", "FAIL_RELOAD": "FAIL_RELOAD"}
    if "failStrategy" in spec:
        config["failure_policy"] = failure[spec["failStrategy"]]
    return {"name": f"extensions.istio.io/wasmplugin/{meta['namespace']}.{meta['name']}",
            "typed_config": {"@type": WASM_TYPE, "config": config}}


def token_env():
    return dict(os.environ, VOBIZ_AUTH_TOKEN=TOKEN, VOBIZ_PARENT_AUTH_TOKEN=PARENT_TOKEN,
                VOBIZ_WHATSAPP_SECRET=WHATSAPP_SECRET, **PROVIDER_SECRETS)


class GatewayEnvoy:
    """Envoy 1.40 from .venv serving a bootstrap built by `bootstrap`."""

    def __init__(self, workdir, http_filters, cert, upstream, hardening=None):
        self.port, self.admin_port = free_port(), free_port()
        self.cert = cert
        self.config_path = workdir / f"istio-gateway-{self.admin_port}.yaml"
        self.config_path.write_text(yaml.safe_dump(
            bootstrap(http_filters, cert, upstream.port, self.port, self.admin_port, hardening)))
        self.log_path = workdir / f"istio-gateway-{self.admin_port}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "envoy"), "-c", str(self.config_path), "--concurrency", "2",
             "--disable-hot-restart"], stdout=self.log, stderr=subprocess.STDOUT, env=token_env())
        wait_for(self.ready, timeout=30, what=f"Envoy ready (log: {self.log_path})")

    def ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"Envoy exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
        try:
            return httpx.get(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1).text.strip() == "LIVE"
        except httpx.HTTPError:
            return False

    def client(self):
        return httpx.Client(base_url=f"https://127.0.0.1:{self.port}", timeout=10,
                            verify=ssl.create_default_context(cafile=str(self.cert[0])))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
        self.log.close()


@pytest.fixture
def gateway(workdir, cert, upstream):
    started = []

    def start(http_filters, hardening=None):
        proxy = GatewayEnvoy(workdir, http_filters, cert, upstream, hardening)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


def records(upstream, test_id):
    return [r for r in upstream.records() if ["x-test-id", test_id] in r["headers"]]


def complete(upstream, test_id):
    return [r for r in records(upstream, test_id) if not r["truncated"]]


def voice_callback(path="/vobiz/answer", body="CallUUID=abc&Event=StartApp"):
    test_id = new_nonce()
    headers = {**FORM, **vobiz_headers(path, origin=ORIGIN), "Host": HOST, "x-test-id": test_id}
    return path, headers, body, test_id


def variant_filters(variant):
    """The gateway's HTTP filters as the variant's manifest makes them."""
    if variant == "envoyfilter":
        return envoyfilter_http_filters()
    return [istio_generated_filter(manifest("wasmplugin.yaml")), copy.deepcopy(ROUTER)]


@pytest.mark.parametrize("variant", ["envoyfilter", "wasmplugin"])
def test_envoy_validates_the_generated_configuration(variant, workdir, cert):
    path = workdir / f"istio-{variant}-validate.yaml"
    path.write_text(yaml.safe_dump(bootstrap(variant_filters(variant), cert, free_port(), free_port(),
                                             free_port(), hardening(f"{variant}.yaml"))))
    result = subprocess.run([str(VENV_BIN / "envoy"), "--mode", "validate", "-c", str(path)],
                            capture_output=True, text=True, env=token_env(), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout + result.stderr


def test_an_unfilled_secret_keeps_the_plugin_from_loading(workdir, cert):
    """With secret.yaml's empty placeholders as the gateway's env, the plugin refuses its
    configuration (validate mode runs on_configure), so nothing is served unverified."""
    path = workdir / "istio-unfilled-secret.yaml"
    path.write_text(yaml.safe_dump(bootstrap(envoyfilter_http_filters(), cert, free_port(), free_port(), free_port())))
    env = dict(os.environ, **manifest("secret.yaml")["stringData"])
    result = subprocess.run([str(VENV_BIN / "envoy"), "--mode", "validate", "-c", str(path)],
                            capture_output=True, text=True, env=env, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "invalid configuration" in output and "VOBIZ_AUTH_TOKEN" in output, output


def test_the_envoyfilter_variant_guards_callbacks_with_headers_held(gateway, upstream):
    http_filters = envoyfilter_http_filters()
    assert [f["name"] for f in http_filters] == ["callback_guard", "envoy.filters.http.router"]
    envoy = gateway(http_filters, hardening("envoyfilter.yaml"))
    path, headers, body, test_id = voice_callback()
    unsigned_id = new_nonce()
    other_host_id = new_nonce()
    with envoy.client() as client:
        signed = client.post(path, headers=headers, content=body)
        tampered = client.post(path, headers=headers, content="CallUUID=abc&Event=Hangup")
        unsigned = client.post(path, headers={**FORM, "Host": HOST, "x-test-id": unsigned_id}, content=body)
        # Routes are scoped to the callbacks host: other hosts on the gateway pass untouched.
        other_host = client.post(path, headers={**FORM, "Host": "other.example.com",
                                                "x-test-id": other_host_id}, content=body)
    assert signed.status_code == 200, signed.text
    assert tampered.status_code == 409 and tampered.json()["reason"] == "replay_tampered"
    assert unsigned.status_code == 401 and unsigned.json()["reason"] == "missing_signature"
    assert other_host.status_code == 200
    # Headers held until the verdict: the tampered copy never reached the upstream at all.
    [delivered] = records(upstream, test_id)
    assert delivered["body"] == body and not delivered["truncated"]
    assert records(upstream, unsigned_id) == []
    assert len(complete(upstream, other_host_id)) == 1


def test_the_wasmplugin_variant_is_accepted_and_guards_callbacks_without_header_holding(gateway, upstream):
    wasmplugin = manifest("wasmplugin.yaml")
    generated = istio_generated_filter(wasmplugin)
    config = generated["typed_config"]["config"]
    # What Istio cannot express, and what the plugin is told instead.
    assert "allow_on_headers_stop_iteration" not in config
    assert "vm_id" not in config["vm_config"]
    assert json.loads(config["configuration"]["value"])["allow_on_headers_stop_iteration"] is False
    envoy = gateway([generated, copy.deepcopy(ROUTER)], hardening("wasmplugin.yaml"))
    path, headers, body, test_id = voice_callback()
    unsigned_id = new_nonce()
    with envoy.client() as client:
        signed = client.post(path, headers=headers, content=body)
        tampered = client.post(path, headers=headers, content="CallUUID=evil")
        unsigned = client.post(path, headers={**FORM, "Host": HOST, "x-test-id": unsigned_id}, content=body)
    assert signed.status_code == 200, signed.text
    # Refused even though its headers already went upstream: the upstream request is reset,
    # so the application never receives the tampered request complete.
    assert tampered.status_code == 409 and tampered.json()["reason"] == "replay_tampered"
    assert unsigned.status_code == 401 and unsigned.json()["reason"] == "missing_signature"
    [delivered] = complete(upstream, test_id)
    assert delivered["body"] == body
    # A header-only verdict still stops the request before the upstream sees anything.
    assert records(upstream, unsigned_id) == []


@pytest.mark.parametrize("hardened", [True, False], ids=["hardened", "istio-defaults"])
@pytest.mark.parametrize("variant", ["envoyfilter", "wasmplugin"])
def test_no_spelling_of_a_protected_path_passes_a_gateway(variant, hardened, gateway, upstream):
    """Spellings of /vobiz/answer, unsigned, for the callbacks host: refused by the gateway's
    hardened connection manager or by the filter; with Istio's defaults alone (BASE
    normalisation, escaped slashes kept), by the filter."""
    envoy = gateway(variant_filters(variant), hardening(f"{variant}.yaml") if hardened else None)
    spellings = ["/vobiz%2Fanswer", "/vobiz%5Canswer", "//vobiz/answer", "/VOBIZ/answer",
                 "/x/..;/vobiz/answer", "/vobiz;x/answer", "/vob%C4%B1z/answer", "/vobiz%252Fanswer"]
    sent = []
    with envoy.client() as client:
        for path in spellings:
            test_id = new_nonce()
            request = client.build_request("POST", path, headers={**FORM, "Host": f"{HOST}.", "x-test-id": test_id},
                                           content="CallUUID=abc")
            request.url = request.url.copy_with(raw_path=path.encode())
            response = client.send(request)
            assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
            sent.append(test_id)
    assert all(records(upstream, test_id) == [] for test_id in sent)
