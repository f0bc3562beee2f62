"""One replay memory for the whole fleet: a real etcd (Debian's etcd-server, started here)
behind two Envoy replicas running the filter with `replay.store.type: etcd`. Every refused
request is proven never to reach the upstream; the failure policy is checked with etcd
stopped and with etcd hung, and no request may wait longer than the store's timeout. Every
test runs with the store's gRPC API and with its JSON gateway; replicas using one and the
other share one store."""
import concurrent.futures
import threading
import time

import httpx
import pytest

from harness import (Envoy, Etcd, deliveries, plugin_config, reason, replay_key, state_in_etcd,
                     store_stat, wait_for)
from harness import voice_callback as callback

ROUTE = "vobiz-voice"
TIMEOUT_MS = 300
# What a request may take beyond the store's timeout on a loaded two-core machine: TLS on a
# warm connection, Envoy, the upstream. Far below the timeout itself would prove nothing.
MARGIN_S = 0.5


def etcd_store(api, **overrides):
    return {"type": "etcd", "cluster": f"etcd-{api}", "api": api, "timeout": f"{TIMEOUT_MS}ms",
            **overrides}


@pytest.fixture(scope="module", params=["grpc", "json"])
def api(request):
    return request.param


@pytest.fixture(scope="module")
def etcd(workdir):
    server = Etcd(workdir)
    yield server
    server.remove()


@pytest.fixture(scope="module")
def replicas(workdir, upstream, cert, etcd, api):
    """Two Envoy processes with the same plugin configuration, sharing only etcd."""
    plugin = plugin_config(replay={"store": etcd_store(api)})
    started = []
    try:
        for _ in range(2):
            clusters = [etcd.cluster(f"etcd-{api}", api)]
            started.append(Envoy(workdir, upstream, cert, plugin, clusters=clusters))
        yield tuple(started)
    finally:
        for proxy in started:
            proxy.stop()


def test_replicas_on_either_api_share_one_store(workdir, upstream, cert, etcd):
    # A fleet moving from the JSON gateway to gRPC: each sees what the other wrote.
    started = {}
    try:
        for api in ("grpc", "json"):
            plugin = plugin_config(replay={"store": etcd_store(api)})
            started[api] = Envoy(workdir, upstream, cert, plugin,
                                 clusters=[etcd.cluster(f"etcd-{api}", api)])
        for first, then in (("grpc", "json"), ("json", "grpc")):
            path, headers, body, test_id, nonce = callback()
            with started[first].https_client() as client:
                assert client.post(path, headers=headers, content=body).status_code == 200
            assert state_in_etcd(etcd, nonce) == 1
            with started[then].https_client() as client:
                again = client.post(path, headers=headers, content=body)
                tampered = client.post(path, headers=headers, content=body + "&Evil=1")
            assert (again.status_code, reason(again)) == (200, "already_delivered")
            assert (tampered.status_code, reason(tampered)) == (409, "replay_tampered")
            assert len(deliveries(upstream, test_id)) == 1
    finally:
        for proxy in started.values():
            proxy.stop()


def test_a_callback_delivered_through_one_replica_is_a_replay_at_the_other(replicas, upstream, etcd):
    a, b = replicas
    path, headers, body, test_id, nonce = callback()
    with a.https_client() as client_a, b.https_client() as client_b:
        first = client_a.post(path, headers=headers, content=body)
        # A settles in etcd just after its response (off the request path); until then B
        # would answer 409 in_flight, also a refusal. Wait for it to see "delivered".
        wait_for_state(etcd, nonce, 1)
        again = client_b.post(path, headers=headers, content=body)
    assert first.status_code == 200 and "reason" not in first.json(), first.text
    assert again.status_code == 200
    assert again.json() == {"result": "duplicate", "reason": "already_delivered"}
    assert len(deliveries(upstream, test_id)) == 1


def test_a_tampered_replay_is_refused_by_the_other_replica(replicas, upstream):
    a, b = replicas
    path, headers, body, test_id, _ = callback()
    with a.https_client() as client_a, b.https_client() as client_b:
        assert client_a.post(path, headers=headers, content=body).status_code == 200
        other_body = client_b.post(path, headers=headers, content="CallUUID=abc&Event=Hangup")
        other_query = client_b.post(path + "?x=1", headers=headers, content=body)
        # Refused at A too, where the first copy went.
        back_at_a = client_a.post(path, headers=headers, content="CallUUID=evil")
    for response in (other_body, other_query, back_at_a):
        assert response.status_code == 409 and reason(response) == "replay_tampered"
    [delivered] = deliveries(upstream, test_id)
    assert delivered["body"] == body
    assert "reason=replay_tampered" in b.log_text()


def test_fifty_concurrent_copies_split_over_both_replicas_deliver_once(replicas, upstream):
    # The upstream takes 300 ms, so most copies arrive while the first is in flight.
    path, headers, body, test_id, _ = callback(body="CallUUID=abc&DemoDelayMs=300")
    start = threading.Barrier(50)

    def send(i):
        with replicas[i % 2].https_client() as client:
            client.get("/health")
            start.wait(timeout=30)
            return i % 2, client.post(path, headers=headers, content=body)

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(send, range(50)))
    assert len(deliveries(upstream, test_id)) == 1
    outcomes = {(r.status_code, r.json().get("reason")) for _, r in results}
    assert outcomes <= {(200, None), (200, "already_delivered"), (409, "in_flight")}, outcomes
    assert sum(r.status_code == 200 and "reason" not in r.json() for _, r in results) == 1
    # Both replicas refused copies: the decision really was fleet-wide.
    refused_by = {replica for replica, r in results if "reason" in r.json()}
    assert refused_by == {0, 1}


def test_a_failed_delivery_is_retried_through_the_other_replica(replicas, upstream, etcd):
    a, b = replicas
    path, headers, body, test_id, nonce = callback(body="CallUUID=abc&DemoFail=1")
    with a.https_client() as client_a, b.https_client() as client_b:
        assert client_a.post(path, headers=headers, content=body).status_code == 500
        # A's settle reaches etcd a moment after its response: failed, so retryable.
        wait_for_state(etcd, nonce, 2)
        retry = client_b.post(path, headers=headers, content=body)
    assert retry.status_code == 500  # the demo upstream fails this body every time
    assert len(deliveries(upstream, test_id)) == 2
    assert "retry=true" in b.log_text()


def steady_store_stat(envoy, result, timeout=5.0):
    """The counter once it has stopped moving (no callout answer still on its way)."""
    deadline = time.monotonic() + timeout
    last = store_stat(envoy, result)
    while True:
        time.sleep(0.1)
        now = store_stat(envoy, result)
        if now == last:
            return now
        assert time.monotonic() < deadline, f"store {result} still moving: {now}"
        last = now


def wait_for_state(etcd, nonce, state, timeout=5.0):
    deadline = time.monotonic() + timeout
    while state_in_etcd(etcd, nonce) != state:
        assert time.monotonic() < deadline, f"etcd state {state_in_etcd(etcd, nonce)}, want {state}"
        time.sleep(0.02)


def test_repeats_on_the_same_replica_cost_no_round_trip(replicas, upstream, etcd):
    a, _ = replicas
    path, headers, body, test_id, nonce = callback()
    with a.https_client() as client:
        assert client.post(path, headers=headers, content=body).status_code == 200
        wait_for_state(etcd, nonce, 1)
        before = steady_store_stat(a, "ok")  # the settle's answer counted too
        again = client.post(path, headers=headers, content=body)
        tampered = client.post(path, headers=headers, content="CallUUID=evil")
        after = store_stat(a, "ok")
    assert reason(again) == "already_delivered"
    assert reason(tampered) == "replay_tampered"
    assert after == before, "answered from the local first level"
    assert len(deliveries(upstream, test_id)) == 1


def test_keys_values_and_leases_in_etcd(replicas, etcd):
    a, _ = replicas
    nonces = []
    with a.https_client() as client:
        for _ in range(2):
            path, headers, body, _, nonce = callback()
            assert client.post(path, headers=headers, content=body).status_code == 200
            nonces.append(nonce)
    for nonce in nonces:
        wait_for_state(etcd, nonce, 1)
    values = [etcd.get(replay_key(ROUTE, nonce)) for nonce in nonces]
    for value, lease in values:
        assert len(value) == 34 and value[0] == 2  # format, fingerprint, 2 times, state, claim
        assert lease > 0
    # Nonces of the same hour share one lease (one per bucket, not one per nonce).
    (_, first_lease), (_, second_lease) = values
    if first_lease != second_lease:  # the two straddled an hour boundary: check it holds
        assert int(time.time()) % 3600 < 5
    ttl = etcd.call("/v3/lease/timetolive", {"ID": str(first_lease)})
    # Until the end of its hour + the 24 h window + 5 min of clock slack.
    assert 24 * 3600 < int(ttl["TTL"]) <= 25 * 3600 + 300, ttl
    keys = etcd.keys(f"/callback-guard/{ROUTE}/")
    assert replay_key(ROUTE, nonces[0]) in keys
    assert all(len(k) == len(f"/callback-guard/{ROUTE}/") + 22 for k in keys)


def test_store_round_trips_are_measured(replicas):
    a, _ = replicas
    text = httpx.get(f"http://127.0.0.1:{a.admin_port}/stats/prometheus", timeout=5).text
    assert f'callback_guard_store{{route="{ROUTE}",result="ok"}}' in text.replace("envoy_wasmcustom_", "")
    assert store_stat(a, "ok") > 0
    assert store_stat(a, "error") == 0 and store_stat(a, "timeout") == 0

    def latencies_recorded():
        # Histograms show values after Envoy's next stats flush (every 5 s).
        stats = httpx.get(f"http://127.0.0.1:{a.admin_port}/stats?filter=store_us", timeout=5)
        return f"callback_guard.store_us.route.{ROUTE}: P0" in stats.text

    wait_for(latencies_recorded, timeout=12, what="store_us samples")


# ---- the failure policy, with an etcd of its own that the tests stop and hang ----


@pytest.fixture(scope="module")
def outage(workdir, upstream, cert, api):
    """etcd, and one Envoy with a fail-closed route (/vobiz/) and a fail-open one (/open/)."""
    server = Etcd(workdir)
    closed = plugin_config(replay={"store": etcd_store(api)})["routes"][0]
    opened = dict(closed, name="voice-open", path_prefix="/open/",
                  replay={"store": etcd_store(api, on_error="fail_open")})
    proxy = Envoy(workdir, upstream, cert, {"routes": [closed, opened]},
                  clusters=[server.cluster(f"etcd-{api}", api)])
    try:
        yield server, proxy
    finally:
        proxy.stop()
        server.remove()


@pytest.fixture
def etcd_down(outage):
    """Runs the test with etcd in the given condition, then brings it back."""
    server, proxy = outage
    conditions = []

    def make(condition):
        conditions.append(condition)
        if condition == "stopped":
            server.stop()
        else:
            server.pause()

    yield make
    for condition in conditions:
        if condition == "stopped":
            server.start()
        else:
            server.resume()


def timed_post(client, path, headers, body):
    started = time.monotonic()
    response = client.post(path, headers=headers, content=body)
    return response, time.monotonic() - started


@pytest.mark.parametrize("condition", ["stopped", "hung"])
def test_fail_closed_refuses_with_503_within_the_timeout(outage, etcd_down, upstream, condition):
    _, proxy = outage
    with proxy.https_client() as client:
        client.get("/health")
        timeouts = store_stat(proxy, "timeout")
        etcd_down(condition)
        path, headers, body, test_id, _ = callback()
        response, took = timed_post(client, path, headers, body)
    assert response.status_code == 503 and reason(response) == "replay_store_unavailable"
    assert took < TIMEOUT_MS / 1000 + MARGIN_S, took
    if condition == "hung":
        # It waited for the timeout, and not longer.
        assert took >= TIMEOUT_MS / 1000 * 0.9, took
        assert store_stat(proxy, "timeout") > timeouts
    assert deliveries(upstream, test_id) == []
    assert "reason=replay_store_unavailable" in proxy.log_text()


@pytest.mark.parametrize("condition", ["stopped", "hung"])
def test_fail_open_forwards_counted_and_keeps_local_protection(outage, etcd_down, upstream,
                                                              condition):
    _, proxy = outage
    path, headers, body, test_id, _ = callback("/open/answer")
    with proxy.https_client() as client:
        client.get("/health")
        failed_open = proxy.stat("wasmcustom.callback_guard.store_fail_open.route.voice-open") or 0
        etcd_down(condition)
        response, took = timed_post(client, path, headers, body)
        # The replica's own memory still refuses what it has seen.
        again = client.post(path, headers=headers, content=body)
        tampered = client.post(path, headers=headers, content="CallUUID=evil")
    assert response.status_code == 200 and "reason" not in response.json(), response.text
    assert took < TIMEOUT_MS / 1000 + MARGIN_S, took
    assert proxy.stat("wasmcustom.callback_guard.store_fail_open.route.voice-open") == failed_open + 1
    assert reason(again) == "already_delivered"
    assert tampered.status_code == 409 and reason(tampered) == "replay_tampered"
    assert len(deliveries(upstream, test_id)) == 1


def test_repeats_seen_before_the_outage_are_answered_locally(outage, etcd_down, upstream):
    server, proxy = outage
    path, headers, body, test_id, nonce = callback()
    with proxy.https_client() as client:
        assert client.post(path, headers=headers, content=body).status_code == 200
        wait_for_state(server, nonce, 1)
        etcd_down("hung")
        again, took = timed_post(client, path, headers, body)
        tampered = client.post(path, headers=headers, content="CallUUID=evil")
    assert reason(again) == "already_delivered" and took < MARGIN_S, took
    assert tampered.status_code == 409 and reason(tampered) == "replay_tampered"
    assert len(deliveries(upstream, test_id)) == 1


def test_the_store_recovers_when_etcd_is_back(outage, etcd_down, upstream):
    server, proxy = outage
    etcd_down("stopped")
    server.start()  # back on the same data
    path, headers, body, test_id, nonce = callback()
    with proxy.https_client() as client:
        response = client.post(path, headers=headers, content=body)
    assert response.status_code == 200, response.text
    assert len(deliveries(upstream, test_id)) == 1
    wait_for_state(server, nonce, 1)
    server.stop()  # the fixture starts it again


def etcd_writes(etcd):
    """Entries etcd has committed through raft: one per transaction, however many
    nested transactions it carries."""
    text = httpx.get(f"{etcd.url}/metrics", timeout=5).text
    line = next(l for l in text.splitlines() if l.startswith("etcd_server_proposals_committed_total "))
    return float(line.split()[1])


def test_reservations_that_wait_together_go_together_and_each_gets_its_own_verdict(
        workdir, upstream, cert, etcd, api):
    # While etcd is stopped, thirty callbacks reach one Envoy worker: two reservations go
    # out and hang, the rest wait for them. When etcd answers, those that waited go as one
    # transaction of nested ones (over gRPC), and each request must get its own answer: a
    # mix of new callbacks, copies of ones another replica delivered, and tampered copies.
    plugin = plugin_config(replay={"store": etcd_store(api, timeout="10s", attempts=1)})
    clusters = [etcd.cluster(f"etcd-{api}", api)]
    earlier, later = (Envoy(workdir, upstream, cert, plugin, clusters=clusters, concurrency=1)
                      for _ in range(2))
    try:
        copied, tampered = [callback() for _ in range(10)], [callback() for _ in range(10)]
        with earlier.https_client() as client:
            for path, headers, body, _, _ in copied + tampered:
                assert client.post(path, headers=headers, content=body).status_code == 200
        # Its first callback grants the bucket's lease; then nothing is owed to etcd.
        warm = callback()
        with later.https_client() as client:
            assert client.post(warm[0], headers=warm[1], content=warm[2]).status_code == 200
        for *_, nonce in copied + tampered + [warm]:
            wait_for_state(etcd, nonce, 1)
        fresh = [callback() for _ in range(10)]
        sends = ([(c, c[2], (200, None)) for c in fresh]
                 + [(c, c[2], (200, "already_delivered")) for c in copied]
                 + [(c, c[2] + "&Evil=1", (409, "replay_tampered")) for c in tampered])
        before = etcd_writes(etcd)

        def send(item):
            (path, headers, _, _, _), body, _ = item
            with later.https_client() as client:
                return client.post(path, headers=headers, content=body, timeout=30)

        etcd.pause()
        try:
            with concurrent.futures.ThreadPoolExecutor(len(sends)) as pool:
                futures = [pool.submit(send, item) for item in sends]
                wait_for(lambda: (later.stat("http.callbacks.downstream_rq_active") or 0)
                         >= len(sends), timeout=30, what="every callback in Envoy")
                # Over gRPC two go out and the rest wait; the gateway takes each alone.
                out = 2 if api == "grpc" else len(sends)
                wait_for(lambda: later.stat(f"cluster.etcd-{api}.upstream_rq_active") == out,
                         timeout=30, what=f"{out} reservations out")
                etcd.resume()
                answers = [future.result() for future in futures]
        finally:
            etcd.resume()
        got = [(a.status_code, reason(a)) for a in answers]
        assert got == [expected for _, _, expected in sends], got
        # Each delivered once: the new ones now, the others earlier through `earlier`.
        for (_, _, _, test_id, _), _, _ in sends:
            assert len(deliveries(upstream, test_id)) == 1
        for *_, nonce in fresh:
            wait_for_state(etcd, nonce, 1)
        # Alone, 30 reservations and 10 settles would be 40 entries.
        writes = etcd_writes(etcd) - before
        print(f"{api}: {writes:.0f} etcd writes for 30 reservations and 10 settles")
        if api == "grpc":
            assert writes < 40, writes
    finally:
        earlier.stop()
        later.stop()
