"""Exactly once across the fleet while etcd fails. Two Envoy replicas share an etcd store
reached only through envoy/etcd-cluster.yaml; the faults are real: etcd members killed,
stopped, cut off from each other, restarted empty, quorum lost, and (through a proxy)
writes that etcd applies but whose answers never come back. Every assertion is on the
upstream's own record of what it received; faults are made and undone by count (of
callbacks sent, or of the filter's own store errors), and every wait polls a condition."""
import concurrent.futures
import threading
import time

import httpx
import pytest

from cluster import EtcdCluster
from faults import BLACKHOLE, DROP_ANSWERS, PASS, FaultProxy
from harness import (Envoy, Etcd, deliveries, etcd_cluster, plugin_config, reason,
                     state_in_etcd, store_stat, wait_for)
from harness import voice_callback as callback

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
    path, headers, body, test_id, nonce = callback(body="CallUUID=abc&DemoDelayMs=1000",
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
    path, headers, body, test_id, nonce = callback(body="CallUUID=abc&DemoDelayMs=1000")
    with a.https_client() as client:
        with pytest.raises(httpx.TimeoutException):
            client.post(path, headers=headers, content=body, timeout=0.5)
    wait_for(lambda: state_in_etcd(server, nonce) == 2, timeout=15, what="the claim released")
    with b.https_client() as client:
        retry = client.post(path, headers=headers, content=body)
    assert retry.status_code == 200 and "reason" not in retry.json(), retry.text
    assert len(deliveries(upstream, test_id)) == 2
    wait_for(lambda: state_in_etcd(server, nonce) == 1, what="delivered in etcd")


# ---- a three-member cluster under a stream of callbacks ----

# The stream: genuine voice callbacks at a steady rate, alternating between the replicas;
# each answered with anything but 200 is sent again, as a provider does, up to three times,
# 1, 2 and 4 s later, each retry at the other replica.
CALLBACKS = 1500
PER_SECOND = 25
RETRIES_S = (1, 2, 4)
SENDERS = 32


class Stream:
    """Sends the callbacks and records every attempt: (callback, attempt, replica, sent,
    status, reason). Faults are applied by the callback count (see `run`)."""

    def __init__(self, replicas):
        self.replicas = replicas
        self.attempts = []
        self.clients = {}
        self.lock = threading.Lock()
        self.callbacks = [callback() for _ in range(CALLBACKS)]

    def client(self, replica):
        key = (threading.get_ident(), replica)
        if key not in self.clients:
            self.clients[key] = self.replicas[replica].https_client()
        return self.clients[key]

    def deliver(self, n):
        path, headers, body, _, _ = self.callbacks[n]
        for attempt, wait in enumerate((0, *RETRIES_S)):
            time.sleep(wait)
            replica = (n + attempt) % 2
            sent = time.monotonic()
            try:
                response = self.client(replica).post(path, headers=headers, content=body)
                status, why = response.status_code, response.json().get("reason")
            except (httpx.HTTPError, ValueError) as problem:
                status, why = None, type(problem).__name__
            with self.lock:
                self.attempts.append((n, attempt, replica, sent, status, why))
            if status == 200 and why is None:
                return

    def run(self, faults):
        """Sends every callback on schedule; before callback n, runs faults[n] (which may
        wait for the cluster, holding the schedule back)."""
        with concurrent.futures.ThreadPoolExecutor(SENDERS) as pool:
            started = time.monotonic()
            futures = []
            for n in range(CALLBACKS):
                if n in faults:
                    faults[n]()
                    started = time.monotonic() - n / PER_SECOND
                time.sleep(max(0.0, started + n / PER_SECOND - time.monotonic()))
                futures.append(pool.submit(self.deliver, n))
            for future in futures:
                future.result()
        for client in self.clients.values():
            client.close()


@pytest.fixture(scope="module")
def three(workdir, upstream, cert):
    """A three-member cluster and two replicas reaching it through envoy/etcd-cluster.yaml."""
    cluster = EtcdCluster(workdir)
    replicas = []
    try:
        for _ in range(2):
            replicas.append(Envoy(workdir, upstream, cert, fleet_plugin("grpc"), concurrency=1,
                                  clusters=[etcd_cluster("etcd", "grpc", cluster.client_ports)]))
        yield cluster, replicas
    finally:
        for envoy in replicas:
            envoy.stop()
        cluster.remove()


def etcd_host(envoy, port):
    """(marked failed by the health check, callouts that tried it: requests sent and
    failed to connect) for one etcd member, as this replica's Envoy sees it."""
    text = httpx.get(f"http://127.0.0.1:{envoy.admin_port}/clusters?format=json", timeout=5).json()
    cluster = next(c for c in text["cluster_statuses"] if c["name"] == "etcd")
    host = next(h for h in cluster["host_statuses"]
                if h["address"]["socket_address"]["port_value"] == port)
    tries = sum(int(s.get("value", 0)) for s in host["stats"]
                if s["name"] in ("rq_total", "rq_error"))
    return bool(host["health_status"].get("failed_active_health_check")), tries


@pytest.mark.parametrize("fault", ["killed", "stopped"])
def test_a_member_that_does_not_answer_is_taken_out_of_the_callouts(three, upstream, fault):
    cluster, replicas = three
    wait_for(cluster.settled, timeout=60, what="the etcd cluster settled")
    member = cluster.follower()
    if fault == "killed":
        cluster.kill(member)
    else:
        cluster.pause(member)
    try:
        # The shipped health check (every second, half a second to answer) marks it.
        for envoy in replicas:
            wait_for(lambda: etcd_host(envoy, member.client_port)[0], timeout=15,
                     what=f"the {fault} member marked unhealthy")
        # From then on the other two decide the callbacks. In the first moments after the
        # mark a callout may still meet the member (Envoy's worker learns of it a little
        # later); it is then refused 503 at worst, and the provider's retry is delivered.
        # Sent until ten in a row passed without one callout trying the member.
        tries = lambda: [etcd_host(envoy, member.client_port)[1] for envoy in replicas]
        last, quiet, sent = tries(), 0, 0
        while quiet < 10:
            assert sent < 100, f"the {fault} member still gets callouts: {last}"
            path, headers, body, test_id, _ = callback()
            answers = []
            for attempt in range(2):
                with replicas[(sent + attempt) % 2].https_client() as client:
                    answers.append(client.post(path, headers=headers, content=body))
                if answers[-1].status_code == 200:
                    break
            trace = [(r.status_code, r.text) for r in answers]
            assert answers[-1].status_code == 200 and "reason" not in answers[-1].json(), trace
            assert all(r.status_code == 200 or reason(r) == "replay_store_unavailable"
                       for r in answers), trace
            assert len(deliveries(upstream, test_id)) == 1
            now = tries()
            quiet, last, sent = (quiet + 1 if now == last and len(answers) == 1 else 0), now, sent + 1
        print(f"{fault}: no callout tried it after callback {sent - 10} of {sent}")
    finally:
        if fault == "killed":
            cluster.start(member)
        else:
            cluster.resume(member)
    # Back in the callouts once it answers the health check again.
    for envoy in replicas:
        wait_for(lambda: not etcd_host(envoy, member.client_port)[0], timeout=30,
                 what=f"the {fault} member healthy again")


def test_every_callback_is_delivered_exactly_once_through_the_faults_of_a_fleet(three, upstream):
    cluster, replicas = three
    stream = Stream(replicas)
    windows = {}
    log = []

    def settled():
        wait_for(cluster.settled, timeout=60, what="the etcd cluster settled")

    def fault(name, act):
        def run():
            settled()
            log.append((name, time.monotonic()))
            act()
        return run

    def mark(name, act=lambda: None):
        def run():
            act()
            log.append((name, time.monotonic()))
        return run

    held = {}

    def hold(key, member):
        held[key] = member
        return member

    def lose_quorum():
        a, b = cluster.follower(), cluster.leader()
        held["quorum"] = (a, b)
        cluster.kill(a)
        cluster.kill(b)
        windows["quorum_lost"] = time.monotonic()

    def regain_quorum():
        windows["quorum_back"] = time.monotonic()
        for member in held["quorum"]:
            cluster.start(member)

    step, length = 200, 60
    plan = [
        ("follower killed", lambda: cluster.kill(hold("follower", cluster.follower())),
         "follower restarted", lambda: cluster.start(held["follower"])),
        ("leader killed", lambda: cluster.kill(hold("leader", cluster.leader())),
         "leader restarted", lambda: cluster.start(held["leader"])),
        ("leader stopped", lambda: cluster.pause(hold("stopped", cluster.leader())),
         "leader resumed", lambda: cluster.resume(held["stopped"])),
        ("leader cut off", lambda: cluster.partition(cluster.leader()),
         "partition healed", cluster.heal),
        ("follower restarted empty", lambda: cluster.replace_empty(cluster.follower()),
         "(caught up)", lambda: None),
        ("quorum lost", lose_quorum, "quorum restarted", regain_quorum),
    ]
    faults = {}
    for i, (name, act, undo_name, undo) in enumerate(plan):
        faults[step * (i + 1)] = fault(name, act)
        faults[step * (i + 1) + length] = mark(undo_name, undo)
    faults[step * (len(plan) + 1)] = fault("healthy again", lambda: None)
    stream.run(faults)

    delivered = {}
    for record in upstream.records():
        test_id = dict(record["headers"]).get("x-test-id")
        if test_id and not record["truncated"]:
            delivered[test_id] = delivered.get(test_id, 0) + 1
    counts = [delivered.get(test_id, 0) for _, _, _, test_id, _ in stream.callbacks]
    refusals = [a for a in stream.attempts if a[4] != 200 or a[5] is not None]
    def phase(sent):
        return next((name for name, at in reversed(log) if at <= sent), "before")

    by_phase = {}
    for a in refusals:
        key = f"{phase(a[3])}: {a[4]} {a[5]}"
        by_phase[key] = by_phase.get(key, 0) + 1
    summary = {"attempts": len(stream.attempts), "refused": len(refusals), "by phase": by_phase}
    print(summary)
    twice = [n for n, count in enumerate(counts) if count > 1]
    lost = [n for n, count in enumerate(counts) if count == 0]
    assert not twice, f"delivered twice: {len(twice)}: {twice[:10]} {summary}"
    assert not lost, f"never delivered: {len(lost)}: {[(n, [a for a in stream.attempts if a[0] == n]) for n in lost[:5]]} {summary}"
    # Every refusal is one a provider retries: the store unavailable, or an attempt still
    # in flight elsewhere.
    assert all((a[4], a[5]) in ((503, "replay_store_unavailable"), (409, "in_flight"))
               for a in refusals), refusals[:10]
    # While quorum was lost, etcd decided nothing: every refusal then is 503.
    during = [a for a in refusals if windows["quorum_lost"] < a[3] < windows["quorum_back"]]
    assert during, "no callback arrived while quorum was lost"
    assert all(a[4] == 503 for a in during), during[:10]
