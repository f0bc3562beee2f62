"""What users install, with real components: `make image` (envoy/release.sh) gives the same
digests twice and from another checkout; the image goes through a real OCI registry
(Debian's docker-registry) with a standard client (skopeo), comes back by digest with its
layer holding exactly the built module, in the layout istio-agent accepts, and Envoy 1.40 on
the pulled module passes a signed callback and refuses a forged one. Envoy's remote code
source (envoy/remote-code.yaml) fetches the released module from an HTTP server and serves;
with a wrong sha256 Envoy refuses the module and nothing reaches the upstream."""
import functools
import gzip
import hashlib
import http.server
import io
import json
import re
import shutil
import subprocess
import tarfile
import threading

import httpx
import pytest
import yaml

from harness import FORM_TYPE, ROOT, Envoy, free_port, plugin_config, vobiz_headers, wait_for
from raw import assert_never_delivered, seen_by_upstream

VERSION = re.search(r'^version = "(.+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
MODULE = ROOT / f"target/release-artifacts/callback_guard-{VERSION}.wasm"


def release(checkout):
    """Runs `make image`'s script in `checkout`; returns its printed manifest digest."""
    done = subprocess.run(["envoy/release.sh"], cwd=checkout, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    return re.search(r"manifest digest sha256:([0-9a-f]{64})", done.stdout).group(1)


@pytest.fixture(scope="module")
def built():
    return release(ROOT)


def test_the_image_and_module_are_reproducible(built, tmp_path):
    """Twice in a row, and in a copy of the tree at another path with its own build."""
    assert release(ROOT) == built
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    copy = tmp_path / "elsewhere" / "callback-guard"
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    assert release(copy) == built
    other = copy / MODULE.relative_to(ROOT)
    assert other.read_bytes() == MODULE.read_bytes()
    sha = (MODULE.parent / f"{MODULE.name}.sha256").read_text().split()
    assert sha == [hashlib.sha256(MODULE.read_bytes()).hexdigest(), MODULE.name]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """Debian's docker-registry (distribution 2.8) on loopback, storing in a temp dir."""
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = root / "config.yml"
    config.write_text(yaml.safe_dump({
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"}}))
    log = open(root / "registry.log", "w")
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)

    def up():
        try:
            return httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=30, what="the registry")
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=15)
    log.close()


def skopeo(*args):
    done = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_image_round_trips_a_registry_by_digest_and_runs(built, registry, tmp_path, upstream, cert):
    ref = f"{registry}/callback-guard"
    # The push command the README gives; --preserve-digests fails rather than re-encode.
    skopeo("copy", "--dest-tls-verify=false", "--preserve-digests",
           f"oci:{ROOT / 'target/image'}:{VERSION}", f"docker://{ref}:{VERSION}")
    served = httpx.head(f"http://{registry}/v2/callback-guard/manifests/{VERSION}",
                        headers={"accept": "application/vnd.oci.image.manifest.v1+json"}, timeout=10)
    assert served.headers["docker-content-digest"] == f"sha256:{built}"
    pulled = tmp_path / "pulled"
    skopeo("copy", "--src-tls-verify=false", f"docker://{ref}@sha256:{built}", f"oci:{pulled}:pulled")
    index = json.loads((pulled / "index.json").read_text())
    [entry] = index["manifests"]
    assert entry["digest"] == f"sha256:{built}"
    manifest = json.loads((pulled / "blobs/sha256" / built).read_bytes())
    # Istio's Wasm image format, "compat" variant: one layer, whose only file is plugin.wasm.
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    blob = (pulled / "blobs/sha256" / layer["digest"].split(":")[1]).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        assert [m.name for m in members] == ["plugin.wasm"]
        module = tar.extractfile(members[0]).read()
    assert module == MODULE.read_bytes()
    path = tmp_path / "plugin.wasm"
    path.write_bytes(module)
    proxy = Envoy(tmp_path, upstream, cert, plugin_config(), code={"local": {"filename": str(path)}})
    try:
        assert_signed_passes_and_forged_is_refused(proxy, upstream, "image")
    finally:
        proxy.stop()


def assert_signed_passes_and_forged_is_refused(proxy, upstream, tag):
    with proxy.https_client() as client:
        form = dict([FORM_TYPE])
        genuine = client.post("/vobiz/answer", headers={**form, **vobiz_headers("/vobiz/answer"),
                                                        "x-test-id": f"{tag}-ok"}, content=b"CallUUID=release")
        forged = client.post("/vobiz/answer", headers={**form, **vobiz_headers("/vobiz/answer", token="forged"),
                                                       "x-test-id": f"{tag}-forged"}, content=b"CallUUID=release")
    assert genuine.status_code == 200, genuine.text
    assert (forged.status_code, forged.json()["reason"]) == (403, "signature_mismatch")
    assert len(seen_by_upstream(upstream)[f"{tag}-ok"]) == 1
    assert_never_delivered(upstream, f"{tag}-forged", envoy=proxy)


@pytest.fixture(scope="module")
def module_server(built):
    """A plain HTTP server for target/release-artifacts, as a fleet's release server."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(MODULE.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def remote(port, sha256):
    """envoy/remote-code.yaml pointed at the local server."""
    shipped = yaml.safe_load((ROOT / "envoy/remote-code.yaml").read_text())
    code = shipped["code"]
    code["remote"]["http_uri"]["uri"] = f"http://127.0.0.1:{port}/{MODULE.name}"
    code["remote"]["sha256"] = sha256
    [cluster] = shipped["clusters"]
    cluster.pop("transport_socket")
    cluster["type"] = "STATIC"
    address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    address["socket_address"] = {"address": "127.0.0.1", "port_value": port}
    return code, [cluster]


def test_envoy_fetches_the_released_module_from_an_http_server(module_server, workdir, upstream, cert):
    code, clusters = remote(module_server, hashlib.sha256(MODULE.read_bytes()).hexdigest())
    proxy = Envoy(workdir, upstream, cert, plugin_config(), code=code, clusters=clusters)
    try:
        assert_signed_passes_and_forged_is_refused(proxy, upstream, "remote")
    finally:
        proxy.stop()


def test_a_wrong_sha256_makes_envoy_refuse_the_module_and_nothing_passes(module_server, workdir, upstream, cert):
    code, clusters = remote(module_server, "0" * 64)
    proxy = Envoy(workdir, upstream, cert, plugin_config(), code=code, clusters=clusters, wait=False)
    try:
        # Every fetch returns the module, none matches the sha256: Envoy gives up on it.
        wait_for(lambda: "Retry limit exceeded" in proxy.log_text() or proxy.proc.poll() is not None,
                 timeout=120, what="Envoy to give up on the module")
        answers = []
        if proxy.proc.poll() is None and ready(proxy):
            with proxy.https_client() as client:
                for path in ("/vobiz/answer", "/unprotected"):
                    answers.append(client.post(path, headers={**vobiz_headers(path), "x-test-id": f"wrong-sha{path}"},
                                               content=b"x=1").status_code)
            # Serving without the module: the plugin fails closed, for every request.
            assert answers == [503, 503], answers
        else:
            # Not serving at all: the listener never opened.
            with pytest.raises(httpx.ConnectError), proxy.https_client() as client:
                client.post("/vobiz/answer", headers={"x-test-id": "wrong-sha/vobiz/answer"}, content=b"x=1")
        assert_never_delivered(upstream, "wrong-sha/vobiz/answer", "wrong-sha/unprotected")
    finally:
        proxy.stop()


def ready(proxy):
    try:
        return httpx.get(f"http://127.0.0.1:{proxy.admin_port}/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
