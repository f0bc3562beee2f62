import pytest

from harness import Envoy, Upstream, make_certificate, shipped_plugin_config


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def cert(workdir):
    return make_certificate(workdir / "tls")


@pytest.fixture(scope="session")
def upstream(workdir):
    up = Upstream(workdir)
    yield up
    up.stop()


@pytest.fixture(scope="session")
def envoy(workdir, upstream, cert):
    """Envoy with the shipped configuration (four workers) plus a route accepting the V2
    families (replay protection remembers one nonce family per route)."""
    plugin = shipped_plugin_config()
    v2 = dict(plugin["routes"][0], name="vobiz-voice-v2", path_prefix="/vobiz-v2/",
              accept=["v2", "ma_v2"])
    plugin["routes"].append(v2)
    proxy = Envoy(workdir, upstream, cert, plugin, concurrency=4)
    yield proxy
    proxy.stop()


@pytest.fixture
def start_envoy(workdir, upstream, cert):
    """Starts extra Envoys with other plugin configurations; stops them after the test."""
    started = []

    def start(plugin, **kwargs):
        proxy = Envoy(workdir, upstream, cert, plugin, **kwargs)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()
