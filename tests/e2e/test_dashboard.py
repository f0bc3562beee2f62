"""The shipped Grafana dashboard (envoy/prometheus/callback-guard.dashboard.json): every
panel's every query, as Grafana would send it with all routes selected, returns data from a
real Prometheus that scraped a real Envoy, for the traffic this test sent: genuine, forged,
replayed and failed callbacks on a route whose replay memory is the fleet-wide store."""
import json

import pytest

from harness import (FORM_TYPE, ROOT, Envoy, Etcd, Prometheus, plugin_config, vobiz_headers,
                     voice_callback, wait_for)

DASHBOARD = json.loads((ROOT / "envoy/prometheus/callback-guard.dashboard.json").read_text())
# What no traffic here moves: callbacks forwarded with etcd down (test_etcd.py sends those).
AT_ZERO = {"callback_guard_store_fail_open"}


def targets():
    for panel in DASHBOARD["panels"]:
        for target in panel["targets"]:
            yield panel["title"], target["expr"]


def as_sent(expression):
    """The query Grafana sends: every route (the variable's allValue), a rate window."""
    [route] = [v for v in DASHBOARD["templating"]["list"] if v["name"] == "route"]
    return expression.replace("$route", route["allValue"]).replace("$__rate_interval", "5m")


def test_the_dashboard_is_grafanas_and_names_only_metrics_the_filter_exports():
    assert DASHBOARD["uid"] == "callback-guard" and DASHBOARD["schemaVersion"] >= 36
    names = {p["title"] for p in DASHBOARD["panels"]}
    assert {"Refusals by reason", "Accepted by key", "Delivery outcomes", "Replay memory occupancy",
            "Verify time (p50, p99)", "Store round trips by result"} <= names
    documented = (ROOT / "docs/operations.md").read_text()
    for _, expression in targets():
        for metric in {w.split("{")[0] for w in expression.replace("(", " ").split() if w.startswith("callback_guard_")}:
            base = metric.removesuffix("_bucket")
            assert f"`{base}`" in documented, f"{metric} is not in docs/operations.md's metrics table"


@pytest.fixture
def observed(workdir, upstream, cert):
    etcd = Etcd(workdir)
    # Room for 64 entries, so that this test's few fill a whole percent of the memory.
    store = {"type": "etcd", "cluster": "etcd-grpc", "api": "grpc"}
    plugin = plugin_config(replay={"store": store, "max_entries": 64})
    envoy = Envoy(workdir, upstream, cert, plugin, clusters=[etcd.cluster("etcd-grpc", "grpc")])
    prometheus = Prometheus(workdir, [envoy])
    yield envoy, prometheus
    prometheus.stop()
    envoy.stop()
    etcd.remove()


def test_every_panel_shows_the_traffic_sent(observed):
    envoy, prometheus = observed
    with envoy.https_client() as client:
        for _ in range(5):
            path, headers, body, *_ = voice_callback()
            response = client.post(path, headers=headers, content=body)
            assert response.status_code == 200, response.text
        # Replayed, forged, and a failed delivery with the provider's retry.
        assert client.post(path, headers=headers, content=body).json()["reason"] == "already_delivered"
        forged = {**dict([FORM_TYPE]), **vobiz_headers("/vobiz/answer", token="not-the-token")}
        assert client.post("/vobiz/answer", headers=forged, content=b"x=1").status_code == 403
        path, headers, body, *_ = voice_callback()
        assert client.post(path, headers={**headers, "x-demo-fail": "1"}, content=body).status_code == 500
        # The retry, once the failure is settled in etcd (until then it is in flight: 409).
        wait_for(lambda: client.post(path, headers=headers, content=body).status_code == 200,
                 timeout=30, what="the retry of the failed delivery delivered")

    def empty():
        missing = []
        for title, expression in targets():
            result = prometheus.query(as_sent(expression))
            values = [float(series["value"][1]) for series in result]
            moved = not any(metric in expression for metric in AT_ZERO)
            if not values or (moved and not any(v > 0 for v in values)):
                missing.append(f"{title}: {expression} -> {result}")
        return missing

    # The occupancy gauge is sampled every 10 s, rates need two scrapes after the traffic.
    try:
        wait_for(lambda: not empty(), timeout=90, what="every panel's queries to show the traffic")
    except TimeoutError:
        pass
    assert not empty(), "\n".join(empty())
