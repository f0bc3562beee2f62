"""Exactly once across the fleet while etcd fails. Two Envoy replicas share an etcd store
reached only through envoy/etcd-cluster.yaml; the faults are real: etcd members killed,
stopped, cut off from each other, restarted empty, quorum lost, and (through a proxy)
writes that etcd applies but whose answers never come back. Every assertion is on the
upstream's own record of what it received; faults are made and undone by count (of
callbacks sent, or of the filter's own store errors), and every wait polls a condition."""
import concurrent.futures
import time

import httpx
import pytest

from faults import BLACKHOLE, DROP_ANSWERS, PASS, FaultProxy
from harness import (Envoy, Etcd, etcd_cluster, new_nonce, plugin_config, replay_key,
                     vobiz_headers, wait_for)

FORM_TYPE = {"content-type": "application/x-www-form-urlencoded"}
ROUTE = "vobiz-voice"
# Claims on /lapsing/ lapse after this: short, so that a test can wait it out. Elsewhere
# they last the default 30 s, longer than a provider's retries.
INFLIGHT_S = 4


def store(api, **overrides):
    return {"type": "etcd", "cluster": "etcd", "api": api, "timeout": "300ms", **overrides}


def fleet_plugin(api):
    """The voice route on the fleet's store; a copy at /lapsing/ whose claims lapse after
    INFLIGHT_S, and one at /slow/ whose reservations may wait ten seconds (so that a
    client gives up first)."""
    voice = plugin_config(replay={"store": store(api)})["routes"][0]
    lapsing = dict(voice, name="lapsing", path_prefix="/lapsing/",
                   replay={"store": store(api), "in_flight_timeout": f"{INFLIGHT_S}s"})
    slow = dict(voice, name="slow", path_prefix="/slow/",
                replay={"store": store(api, timeout="10s", attempts=1)})
    return {"routes": [voice, lapsing, slow]}


def callback(body="CallUUID=abc&Event=StartApp", path="/vobiz/answer"):
    nonce, test_id = new_nonce(), new_nonce()
    headers = {**FORM_TYPE, **vobiz_headers(path, nonce_v3=nonce), "x-test-id": test_id}
    return path, headers, body, test_id, nonce


def deliveries(upstream, test_id):
    return [r for r in upstream.records()
            if ["x-test-id", test_id] in r["headers"] and not r["truncated"]]


def reason(response):
    return response.json().get("reason")


def store_stat(envoy, result, route=ROUTE):
    return envoy.stat(f"wasmcustom.callback_guard.store.route.{route}.result.{result}") or 0


def state_in_etcd(etcd, nonce, route=ROUTE, path="/vobiz/answer"):
    """The state byte of a nonce's value (0 in flight, 1 delivered, 2 failed), or None."""
    found = etcd.get(replay_key(route, nonce, path=path))
    return None if found is None else found[0][25]


@pytest.fixture(scope="module", params=["grpc", "json"])
def api(request):
    return request.param


@pytest.fixture(scope="module")
def behind_proxy(workdir, upstream, cert, api):
    """One etcd member that two replicas reach only through a FaultProxy."""
    server = Etcd(workdir)
    proxy = FaultProxy(server.client_port, name="etcd-client")
    replicas = []
    try:
        for _ in range(2):
            replicas.append(Envoy(workdir, upstream, cert, fleet_plugin(api),
                                  clusters=[etcd_cluster("etcd", api, [proxy.port])]))
        yield server, proxy, replicas
    finally:
        for envoy in replicas:
            envoy.stop()
        proxy.close()
        server.remove()


@pytest.fixture
def faulty(behind_proxy):
    server, proxy, replicas = behind_proxy
    yield server, proxy, replicas
    proxy.set_mode(PASS)


def test_a_settle_etcd_never_received_is_sent_again_until_it_lands(faulty, upstream):
    server, proxy, (a, b) = faulty
    path, headers, body, test_id, nonce = callback("CallUUID=abc&DemoDelayMs=1000",
                                                   path="/lapsing/answer")
    state = lambda: state_in_etcd(server, nonce, route="lapsing", path=path)
    errors = lambda: store_stat(a, "timeout", "lapsing") + store_stat(a, "error", "lapsing")
    before = errors()
    with a.https_client() as client, concurrent.futures.ThreadPoolExecutor(1) as pool:
        delivered = pool.submit(client.post, path, headers=headers, content=body)
        # Claimed in etcd; while the upstream takes its second, etcd receives nothing more.
        wait_for(lambda: state() == 0, what="the claim in etcd")
        claimed_at = time.monotonic()
        proxy.set_mode(BLACKHOLE)
        response = delivered.result()
    assert response.status_code == 200 and "reason" not in response.json(), response.text
    # The settle's first tries are lost; then etcd is reached again.
    wait_for(lambda: errors() >= before + 2, timeout=30, what="two failed tries of the settle")
    proxy.set_mode(PASS)
    wait_for(lambda: state() == 1, timeout=30, what="the settle landed")
    # Past the claim's in-flight time, the other replica still knows it delivered.
    wait_for(lambda: time.monotonic() > claimed_at + INFLIGHT_S + 1, timeout=INFLIGHT_S + 5)
    with b.https_client() as client:
        again = client.post(path, headers=headers, content=body)
    assert again.json() == {"result": "duplicate", "reason": "already_delivered"}, again.text
    assert len(deliveries(upstream, test_id)) == 1
    assert "cannot settle a delivery in etcd yet" in a.log_text()


def warm(client, path):
    """One callback first, so the route's lease exists: a put naming a missing lease is
    refused, and that answer would be lost too."""
    path, headers, body, _, _ = callback(path=path)
    assert client.post(path, headers=headers, content=body).status_code == 200


def test_a_reservation_whose_answer_was_lost_does_not_hold_up_the_retry(faulty, upstream):
    server, proxy, (a, b) = faulty
    path, headers, body, test_id, nonce = callback()
    with a.https_client() as client:
        warm(client, path)
        proxy.set_mode(DROP_ANSWERS)
        first = client.post(path, headers=headers, content=body)
    assert first.status_code == 503 and reason(first) == "replay_store_unavailable", first.text
    # etcd applied the claim; only its answer was lost.
    assert state_in_etcd(server, nonce) is not None
    proxy.set_mode(PASS)
    # The provider's retries, as Vobiz sends them, at the other replica: the first may
    # still meet the claim in flight, never all of them (the claim lasts INFLIGHT_S).
    answers = []
    with b.https_client() as client:
        for wait in (0.5, 1, 2):
            time.sleep(wait)
            answers.append(client.post(path, headers=headers, content=body))
            if answers[-1].status_code == 200:
                break
    assert answers[-1].status_code == 200 and "reason" not in answers[-1].json(), \
        [(r.status_code, r.text) for r in answers]
    assert all(r.status_code == 200 or reason(r) == "in_flight" for r in answers)
    assert len(deliveries(upstream, test_id)) == 1
    wait_for(lambda: state_in_etcd(server, nonce) == 1, what="delivered in etcd")


def test_a_reservation_cut_off_by_the_client_is_released(faulty, upstream):
    # The client goes away while etcd holds the reservation's answer back: the request
    # context ends before the answer, and its claim is released all the same.
    server, proxy, (a, _) = faulty
    path, headers, body, test_id, nonce = callback(path="/slow/answer")
    state = lambda: state_in_etcd(server, nonce, route="slow", path=path)
    with a.https_client() as client:
        warm(client, path)
        proxy.set_mode(DROP_ANSWERS)
        with pytest.raises(httpx.TimeoutException):
            client.post(path, headers=headers, content=body, timeout=1)
    wait_for(lambda: state() is not None, what="the claim applied")
    proxy.set_mode(PASS)
    wait_for(lambda: state() == 2, timeout=15, what="the claim released")
    with a.https_client() as client:
        retry = client.post(path, headers=headers, content=body)
    assert retry.status_code == 200 and "reason" not in retry.json(), retry.text
    assert len(deliveries(upstream, test_id)) == 1


def test_a_delivery_cut_off_by_the_client_is_released_for_the_retry_elsewhere(faulty, upstream):
    # Forwarded, then the client goes away before the upstream answers: a failed delivery.
    # The claim must be released in etcd, not left in flight for the retry to meet.
    server, _, (a, b) = faulty
    path, headers, body, test_id, nonce = callback("CallUUID=abc&DemoDelayMs=1000")
    with a.https_client() as client:
        with pytest.raises(httpx.TimeoutException):
            client.post(path, headers=headers, content=body, timeout=0.5)
    wait_for(lambda: state_in_etcd(server, nonce) == 2, timeout=15, what="the claim released")
    with b.https_client() as client:
        retry = client.post(path, headers=headers, content=body)
    assert retry.status_code == 200 and "reason" not in retry.json(), retry.text
    assert len(deliveries(upstream, test_id)) == 2
    wait_for(lambda: state_in_etcd(server, nonce) == 1, what="delivered in etcd")
