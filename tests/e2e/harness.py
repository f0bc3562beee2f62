"""Real processes for the end-to-end suite: the recording upstream and Envoy loading the
built callback_guard.wasm. Envoy's configuration is derived from the shipped
envoy/envoy.yaml, changing only ports, file paths and the plugin configuration."""
import base64
import copy
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import blake3
import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# The module under test: the development build, or another one (an older build to compare).
WASM = Path(os.environ.get("CALLBACK_GUARD_WASM", ROOT / "target/wasm32-wasip1/release/callback_guard.wasm"))
# The command line (`make build`), or another build of it (e.g. from another CARGO_TARGET_DIR).
CLI = Path(os.environ.get("VOBIZ_SIM_BINARY") or ROOT / "target/release/callback-guard")
# Every secret the shipped routes read, by its environment variable, with the value the
# tests' Envoys get: from the one route source (envoy/routes/routes.yaml).
E2E_SECRETS = {s["env"]: s["e2e"] for s in
               yaml.safe_load((ROOT / "envoy/routes/routes.yaml").read_text())["secrets"]}
TOKEN = E2E_SECRETS["VOBIZ_AUTH_TOKEN"]
PARENT_TOKEN = E2E_SECRETS["VOBIZ_PARENT_AUTH_TOKEN"]
WHATSAPP_SECRET = E2E_SECRETS["VOBIZ_WHATSAPP_SECRET"]
# The other providers' secrets, by the environment variable the shipped routes read.
PROVIDER_SECRETS = {env: value for env, value in E2E_SECRETS.items() if not env.startswith("VOBIZ_")}
# The certificate the filter's SNS demo signer signs under, and the name its URL gives it.
SNS_DEMO_CERTIFICATE = ROOT / "core/src/providers/sns/demo-certificate.pem"
SNS_DEMO_FILE = "SimpleNotificationService-3011a86d709cb093a778a7e29ababe5d.pem"
# The same for PayPal's demo signer (served at /v1/notifications/certs/<file>).
PAYPAL_DEMO_CERTIFICATE = ROOT / "core/src/providers/paypal/demo-certificate.pem"
PAYPAL_DEMO_FILE = "CERT-00000000-00000000-0000de30"
PUBSUB_DEMO_JWKS = ROOT / "core/src/providers/google_pubsub/demo-jwks.json"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def make_certificate(directory: Path, name=None):
    """A self-signed certificate for 127.0.0.1 and localhost, or for the DNS name `name`."""
    directory.mkdir(parents=True, exist_ok=True)
    subject, names = (f"/CN={name}", f"DNS:{name}") if name else ("/CN=127.0.0.1", "IP:127.0.0.1,DNS:localhost")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", subject, "-addext", f"subjectAltName={names}",
         "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem")],
        check=True, capture_output=True)
    return directory / "cert.pem", directory / "key.pem"


def production_cluster(name, port, ca):
    """envoy/`name` (a shipped certificate cluster) as shipped, in front of 127.0.0.1:`port`,
    trusting `ca` instead of the system's CAs."""
    cluster = yaml.safe_load((ROOT / "envoy" / name).read_text())
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    endpoint["address"]["socket_address"].update(address="127.0.0.1", port_value=port)
    tls = cluster["transport_socket"]["typed_config"]["common_tls_context"]["validation_context"]
    tls["trusted_ca"] = {"filename": str(ca)}
    return cluster


class Upstream:
    """envoy/demo_upstream.py, recording every request it receives, and serving SNS's and
    PayPal's demo certificates and the demo's JWKS for Pub/Sub's tokens (and whatever a test
    adds to `certificates`) on `certificates_port`, over
    TLS with `certificates_tls` (a certificate and key), recording every fetch."""

    def __init__(self, workdir: Path, certificates_tls=None):
        self.port, self.certificates_port = free_port(), free_port()
        self.record = workdir / f"upstream-{self.port}.jsonl"
        self.record.touch()
        self.certificates = workdir / f"certificates-{self.port}"
        self.certificates.mkdir()
        shutil.copy(SNS_DEMO_CERTIFICATE, self.certificates / SNS_DEMO_FILE)
        shutil.copy(PAYPAL_DEMO_CERTIFICATE, self.certificates / PAYPAL_DEMO_FILE)
        shutil.copy(PUBSUB_DEMO_JWKS, self.certificates / "jwks.json")
        tls = ["--certificates-tls", *map(str, certificates_tls)] if certificates_tls else []
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "python"), str(ROOT / "envoy/demo_upstream.py"),
             "--port", str(self.port), "--record", str(self.record),
             "--certificates", str(self.certificates),
             "--certificates-port", str(self.certificates_port), *tls])
        wait_for(self._listening, what="upstream")

    def _listening(self):
        return all(port_open(port) for port in (self.port, self.certificates_port))

    def records(self):
        return [json.loads(line) for line in self.record.read_text().splitlines() if line]

    def fetches(self):
        """The certificate requests that arrived, in order."""
        record = Path(f"{self.record}.certificates")
        if not record.exists():
            return []
        return [json.loads(line) for line in record.read_text().splitlines() if line]

    def idle(self):
        """No request is being read or answered (demo_upstream.py keeps the count)."""
        active = Path(f"{self.record}.active")
        return not active.exists() or active.read_text().strip() in ("", "0")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def shipped_plugin_config():
    """The plugin configuration in envoy/envoy.yaml."""
    config = yaml.safe_load((ROOT / "envoy/envoy.yaml").read_text())
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    wasm = guard_filter(manager["typed_config"])["typed_config"]["config"]
    return json.loads(wasm["configuration"]["value"])


def plugin_config(extra_routes=(), **route_overrides):
    """The shipped voice route with overrides (None removes a field), then extra routes."""
    route = dict(shipped_plugin_config()["routes"][0])
    for key, value in route_overrides.items():
        if value is None:
            route.pop(key, None)
        else:
            route[key] = value
    return {"routes": [route, *extra_routes]}


def guard_filter(manager):
    """callback_guard's entry in a connection manager's http_filters (a test may put
    another filter before it)."""
    return next(f for f in manager["http_filters"] if f["name"] == "callback_guard")


class Envoy:
    """Envoy 1.40 from the project's virtual environment, built from envoy/envoy.yaml."""

    def __init__(self, workdir: Path, upstream: Upstream, cert, plugin, *, hcm=None,
                 env=None, concurrency=2, wait=True, dynamic_listeners=False, plugin_options=None,
                 host_env_keys=(), clusters=(), code=None, discovery=None):
        self.workdir = workdir
        self.https_port, self.http_port, self.admin_port = free_port(), free_port(), free_port()
        self.cert = cert
        config = yaml.safe_load((ROOT / "envoy/envoy.yaml").read_text())
        config["admin"]["address"]["socket_address"]["port_value"] = self.admin_port
        https, http = config["static_resources"]["listeners"]
        https["address"]["socket_address"]["port_value"] = self.https_port
        http["address"]["socket_address"]["port_value"] = self.http_port
        tls = https["filter_chains"][0]["transport_socket"]["typed_config"]["common_tls_context"]
        tls["tls_certificates"][0] = {"certificate_chain": {"filename": str(cert[0])},
                                      "private_key": {"filename": str(cert[1])}}
        for listener in (https, http):
            manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
            for key, value in (hcm or {}).items():  # None removes a field
                if value is None:
                    manager.pop(key, None)
                else:
                    manager[key] = copy.deepcopy(value)
            wasm = guard_filter(manager)["typed_config"]["config"]
            wasm.update(plugin_options or {})
            keys = wasm["vm_config"]["environment_variables"]["host_env_keys"]
            keys += [key for key in host_env_keys if key not in keys]  # listeners share it
            # The module: the development build, or another code source (a pulled image,
            # Envoy's remote fetch).
            wasm["vm_config"]["code"] = copy.deepcopy(code) if code else {"local": {"filename": str(WASM)}}
            wasm["configuration"]["value"] = json.dumps(plugin)
        shipped = config["static_resources"]["clusters"]
        ports = {"demo_upstream": upstream.port, "sns_certificates": upstream.certificates_port,
                 "paypal_certificates": upstream.certificates_port,
                 "google_jwks": upstream.certificates_port}
        assert {c["name"] for c in shipped} == set(ports), "a shipped cluster this harness does not place"
        for cluster in shipped:
            port = ports[cluster["name"]]
            if port is None:  # an upstream that serves no certificates
                continue
            endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
            endpoint["address"]["socket_address"]["port_value"] = port
        # A test's cluster replaces the shipped one of its name.
        names = {c["name"] for c in clusters}
        config["static_resources"]["clusters"] = [
            *(c for c in shipped if c["name"] not in names), *map(copy.deepcopy, clusters)]
        self.config_path = workdir / f"envoy-{self.admin_port}.yaml"
        if discovery is not None:
            self.use_discovery(config, discovery, code)
            self.write_discovered(plugin)
        if dynamic_listeners:
            # Listeners from a watched file (LDS), so a test can push a configuration update.
            self.listeners = config["static_resources"].pop("listeners")
            self.lds_path = workdir / f"lds-{self.admin_port}.yaml"
            self.write_listeners(self.listeners)
            config["node"] = {"id": "e2e", "cluster": "e2e"}
            config["dynamic_resources"] = {"lds_config": {
                "path_config_source": {"path": str(self.lds_path)}, "resource_api_version": "V3"}}
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / f"envoy-{self.admin_port}.log"
        environment = dict(os.environ, VOBIZ_AUTH_TOKEN=TOKEN, VOBIZ_PARENT_AUTH_TOKEN=PARENT_TOKEN,
                           VOBIZ_WHATSAPP_SECRET=WHATSAPP_SECRET, **PROVIDER_SECRETS)
        for key, value in (env or {}).items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = value
        self.environment = environment
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "envoy"), "-c", str(self.config_path), "--concurrency", str(concurrency),
             "--disable-hot-restart", "--component-log-level", "wasm:debug"],
            stdout=self.log, stderr=subprocess.STDOUT, env=environment)
        if wait:
            wait_for(self.ready, timeout=30, what=f"Envoy ready (log: {self.log_path})")

    def write_listeners(self, listeners):
        """Atomically replaces the LDS file; Envoy applies or rejects the update."""
        resources = [{"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", **l}
                     for l in listeners]
        staging = self.lds_path.with_suffix(".tmp")
        staging.write_text(yaml.safe_dump({"resources": resources}))
        staging.rename(self.lds_path)

    def use_discovery(self, config, directory, code):
        """The filter as envoy/live-keys/ ships it: its configuration from a file in
        `directory`, which Envoy watches (ECDS), laid out as a Kubernetes Secret volume."""
        entry = yaml.safe_load((ROOT / "envoy/live-keys/http-filter.yaml").read_text())
        source = entry["config_discovery"]["config_source"]["path_config_source"]
        source["path"] = str(directory / "callback-guard.yaml")
        source["watched_directory"]["path"] = str(directory)
        for listener in config["static_resources"]["listeners"]:
            filters = listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
            filters[:] = [copy.deepcopy(entry) if f["name"] == "callback_guard" else f for f in filters]
        config["node"] = {"id": "e2e", "cluster": "e2e"}
        [resource] = yaml.safe_load((ROOT / "envoy/live-keys/callback-guard.yaml").read_text())["resources"]
        resource["typed_config"]["config"]["vm_config"]["code"] = (
            copy.deepcopy(code) if code else {"local": {"filename": str(WASM)}})
        self.discovery, self.discovered, self.versions = directory, resource, 0

    def write_discovered(self, plugin):
        """The next version of the discovered configuration, swapped in as the kubelet
        updates a Secret volume: a new `..<version>` directory, then `..data` re-pointed
        at it by one rename."""
        self.versions += 1
        resource = copy.deepcopy(self.discovered)
        resource["typed_config"]["config"]["configuration"]["value"] = json.dumps(plugin)
        version = self.discovery / f"..{self.versions}"
        version.mkdir()
        (version / "callback-guard.yaml").write_text(yaml.safe_dump({"resources": [resource]}))
        staging = self.discovery / "..data_tmp"
        staging.symlink_to(version.name)
        staging.rename(self.discovery / "..data")
        visible = self.discovery / "callback-guard.yaml"
        if not visible.is_symlink():
            visible.symlink_to("..data/callback-guard.yaml")
        previous = self.discovery / f"..{self.versions - 1}"
        if previous.exists():
            shutil.rmtree(previous)

    def update_plugin(self, plugin):
        listeners = copy.deepcopy(self.listeners)
        for listener in listeners:
            manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
            guard_filter(manager)["typed_config"]["config"]["configuration"]["value"] = json.dumps(plugin)
        self.write_listeners(listeners)

    def quiet(self):
        """No request open downstream or upstream: whatever Envoy forwarded has arrived."""
        active = [self.stat("http.callbacks.downstream_rq_active"),
                  self.stat("cluster.demo_upstream.upstream_rq_active")]
        return all(value in (0, None) for value in active)

    def stat(self, name):
        text = httpx.get(f"http://127.0.0.1:{self.admin_port}/stats?filter=^{name}$", timeout=5).text
        for line in text.splitlines():
            key, _, value = line.partition(": ")
            if key == name:
                return int(value)
        return None

    def ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"Envoy exited with {self.proc.returncode}:\n{self.log_text()}")
        try:
            return httpx.get(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1).text.strip() == "LIVE"
        except httpx.HTTPError:
            return False

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()

    def https_client(self, http2=False):
        return httpx.Client(base_url=f"https://127.0.0.1:{self.https_port}",
                            verify=ssl.create_default_context(cafile=str(self.cert[0])), http2=http2, http1=not http2, timeout=10)

    def http_client(self):
        return httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
        self.log.close()


class Prometheus:
    """A real Prometheus (Debian's) scraping Envoys' /stats/prometheus every second, with
    the given rule files."""

    def __init__(self, workdir: Path, envoys, rules=()):
        port = free_port()
        targets = ", ".join(f"'127.0.0.1:{envoy.admin_port}'" for envoy in envoys)
        config = workdir / f"prometheus-{port}.yml"
        config.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{", ".join(str(r) for r in rules)}]
scrape_configs:
- job_name: envoy
  metrics_path: /stats/prometheus
  static_configs: [{{targets: [{targets}]}}]
""")
        self.log = open(workdir / f"prometheus-{port}.log", "w")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
             f"--storage.tsdb.path={workdir / f'tsdb-{port}'}"], stdout=self.log, stderr=subprocess.STDOUT)
        self.api = f"http://127.0.0.1:{port}/api/v1"
        wait_for(self.scraping, timeout=60, what="Prometheus scraping Envoy")

    def scraping(self):
        try:
            return any(t["health"] == "up" for t in
                       httpx.get(f"{self.api}/targets", timeout=5).json()["data"]["activeTargets"])
        except (httpx.HTTPError, KeyError, ValueError):
            return False

    def query(self, expression):
        """The instant vector `expression` evaluates to now ([] on an error)."""
        answer = httpx.get(f"{self.api}/query", params={"query": expression}, timeout=5).json()
        return answer["data"]["result"] if answer.get("status") == "success" else []

    def get(self, path):
        return httpx.get(f"{self.api}/{path}", timeout=5).json()["data"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


ETCD = shutil.which("etcd") or "/usr/sbin/etcd"


def etcd_cluster(name, api, ports):
    """envoy/etcd-cluster.yaml as shipped, named `name`, in front of the members on these
    loopback ports; HTTP/1.1 (the protocol options left out) for etcd's JSON gateway."""
    cluster = yaml.safe_load((ROOT / "envoy/etcd-cluster.yaml").read_text())
    cluster["name"] = name
    cluster["type"] = "STATIC"
    if api != "grpc":
        cluster.pop("typed_extension_protocol_options")
    cluster["load_assignment"] = {"cluster_name": name, "endpoints": [{"lb_endpoints": [
        {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}
        for port in ports]}]}
    return cluster


class Etcd:
    """A one-member etcd (Debian's etcd-server) on loopback, its data in a fresh directory
    (in memory where /dev/shm exists). Can be stopped, paused (SIGSTOP: accepts
    connections, never answers) and started again on the same data."""

    def __init__(self, workdir: Path):
        self.client_port, self.peer_port = free_port(), free_port()
        base = "/dev/shm" if os.path.isdir("/dev/shm") else str(workdir)
        self.data = Path(tempfile.mkdtemp(prefix="callback-guard-etcd-", dir=base))
        self.log_path = workdir / f"etcd-{self.client_port}.log"
        self.url = f"http://127.0.0.1:{self.client_port}"
        self.proc = None
        self.start()

    def start(self):
        peer = f"http://127.0.0.1:{self.peer_port}"
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(
                [ETCD, "--name", "e2e", "--data-dir", str(self.data / "data"),
                 "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", f"e2e={peer}", "--log-level", "warn",
                 "--auto-compaction-mode", "revision", "--auto-compaction-retention", "10000"],
                stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.healthy, timeout=30, what=f"etcd healthy (log: {self.log_path})")

    def healthy(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"etcd exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
        try:
            return httpx.get(f"{self.url}/health", timeout=1).json().get("health") == "true"
        except (httpx.HTTPError, ValueError):
            return False

    def cluster(self, name="etcd", api="json"):
        """The shipped Envoy cluster for the filter's callouts (envoy/etcd-cluster.yaml),
        in front of this member."""
        return etcd_cluster(name, api, [self.client_port])

    def call(self, path, body):
        return httpx.post(f"{self.url}{path}", json=body, timeout=5).json()

    def get(self, key):
        """(value bytes, lease id) of a key, or None."""
        reply = self.call("/v3/kv/range", {"key": base64.b64encode(key.encode()).decode()})
        kvs = reply.get("kvs") or []
        if not kvs:
            return None
        return base64.b64decode(kvs[0].get("value", "")), int(kvs[0].get("lease", 0))

    def keys(self, prefix):
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        reply = self.call("/v3/kv/range", {"key": base64.b64encode(prefix.encode()).decode(),
                                           "range_end": base64.b64encode(end.encode()).decode(),
                                           "keys_only": True})
        return [base64.b64decode(kv["key"]).decode() for kv in reply.get("kvs") or []]

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(timeout=15)

    def remove(self):
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)


def replay_key(route, nonce, prefix="/callback-guard/", path="/vobiz/answer",
               origin="https://127.0.0.1:8443"):
    """The etcd key the filter uses for a voice callback signed the docs' V3 way with this
    nonce: the replay id is BLAKE3, keyed for "cg3/replay-id", over length-prefixed parts
    (route, the message's family, the BLAKE3 of the whole signed message), 16 bytes,
    base64url (src/replay.rs replay_id, src/etcd Etcd::key)."""
    message = blake3.blake3(f"{origin}{path}.{nonce}".encode()).digest()
    digest = blake3.blake3(derive_key_context="cg3/replay-id")
    for part in (route.encode(), b"vobiz_voice_v3", message):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return prefix + route + "/" + base64.urlsafe_b64encode(digest.digest(16)).decode().rstrip("=")


def seal(secret, sealing_key):
    """`callback-guard seal` as an operator runs it: the secret on standard input, the
    sealing key in the environment (CALLBACK_GUARD_SEALING_KEY)."""
    proc = subprocess.run([str(CLI), "seal"], input=f"{secret}\n", capture_output=True, text=True,
                          env={**os.environ, "CALLBACK_GUARD_SEALING_KEY": sealing_key}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def sign(family, origin, path, nonce, token):
    """What Vobiz sends: base64(HMAC-SHA256(token, origin + path-without-query [+ "."] + nonce))."""
    base = origin + path.split("?", 1)[0]
    message = base + ("." if family.endswith("v3") else "") + nonce
    digest = hmac.new(token.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def vobiz_headers(path, *, origin="https://127.0.0.1:8443", families=("v3",), token=TOKEN,
                  parent=PARENT_TOKEN, nonce_v2=None, nonce_v3=None):
    """Signature headers for the given families, with fresh 20-digit nonces."""
    nonce_v2 = nonce_v2 or new_nonce()
    nonce_v3 = nonce_v3 or new_nonce()
    headers = {}
    for family in families:
        nonce = nonce_v3 if family.endswith("v3") else nonce_v2
        key = parent if family.startswith("ma_") else token
        name = "X-Vobiz-Signature-" + family.upper().replace("_", "-")
        headers[name] = sign(family, origin, path, nonce, key)
        headers[f"X-Vobiz-Signature-{family[-2:].upper()}-Nonce"] = nonce
    return headers


_counter = [int(time.time() * 1000) % 10**12]


def new_nonce():
    _counter[0] += 1
    return f"{_counter[0]:020d}"


def voice_callback(path="/vobiz/answer", body="CallUUID=abc&Event=StartApp"):
    """A signed voice callback (V3) tagged with a test id: (path, headers, body, test_id,
    nonce)."""
    nonce, test_id = new_nonce(), new_nonce()
    headers = {"content-type": "application/x-www-form-urlencoded",
               **vobiz_headers(path, nonce_v3=nonce), "x-test-id": test_id}
    return path, headers, body, test_id, nonce


def deliveries(upstream, test_id):
    """Complete requests the upstream received carrying this x-test-id."""
    return [r for r in upstream.records()
            if ["x-test-id", test_id] in r["headers"] and not r["truncated"]]


def reason(response):
    return response.json().get("reason")


def state_in_etcd(etcd, nonce, route="vobiz-voice", path="/vobiz/answer"):
    """The state byte of a voice nonce's etcd value (0 in flight, 1 delivered, 2 failed),
    or None."""
    found = etcd.get(replay_key(route, nonce, path=path))
    return None if found is None else found[0][25]


def store_stat(envoy, result, route="vobiz-voice"):
    """The filter's count of etcd round trips on a route with this result."""
    return envoy.stat(f"wasmcustom.callback_guard.store.route.{route}.result.{result}") or 0


# Unique identities without locks (several threads send at once, and the session Envoy's
# replay cache is shared between modules, some of which use new_nonce above).

def fresh_nonce():
    """20 digits like Vobiz's, starting with 9: never one of harness.new_nonce()'s."""
    return f"9{secrets.randbelow(10**19):019d}"


def fresh_id():
    return uuid.uuid4().hex


# Body-signed callbacks, as Vobiz sends them.

FORM_TYPE = ("content-type", "application/x-www-form-urlencoded")
JSON_TYPE = ("content-type", "application/json")


def whatsapp_body(event_id=None, occurred_at=None, text="hello"):
    occurred = (occurred_at or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"event_id": event_id or f"evt-{fresh_id()}",
                       "event_type": "message.inbound", "account_id": "MA_XXXXXXXX",
                       "occurred_at": occurred, "payload": {"text": text}},
                      separators=(",", ":")).encode()


def body_mac(secret, body):
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def whatsapp_headers(body, secret=WHATSAPP_SECRET):
    return [JSON_TYPE, ("X-Webhook-Signature", body_mac(secret, body))]


def kyc_headers(body, token=PARENT_TOKEN):
    return [JSON_TYPE, ("X-Vobiz-Signature", "sha256=" + body_mac(token, body))]
