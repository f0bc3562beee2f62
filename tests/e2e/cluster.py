"""A three-member etcd cluster on loopback (Debian's etcd-server, data on /dev/shm), started
as the README says to run one (`--pre-vote`), each member's peer port behind a FaultProxy
so that a member can be cut off from the other two. Members can be killed, stopped,
restarted, and restarted with an empty data directory (removed from the cluster and added
again, as an operator does)."""
import base64
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time

import httpx

from faults import FaultProxy
from harness import ETCD, free_port, wait_for


class Member:
    def __init__(self, name, workdir, base):
        self.name = name
        self.client_port, self.peer_port = free_port(), free_port()
        self.peer_proxy = FaultProxy(self.peer_port, name=f"{name}-peer")
        self.url = f"http://127.0.0.1:{self.client_port}"
        self.peer_url = f"http://127.0.0.1:{self.peer_proxy.port}"
        self.data = tempfile.mkdtemp(prefix=f"callback-guard-{name}-", dir=base)
        self.log_path = workdir / f"etcd-{name}-{self.client_port}.log"
        self.proc = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def call(self, path, body, timeout=2):
        return httpx.post(f"{self.url}{path}", json=body, timeout=timeout).json()

    def healthy(self):
        try:
            return httpx.get(f"{self.url}/health", timeout=1).json().get("health") == "true"
        except (httpx.HTTPError, ValueError):
            return False

    def status(self):
        """(own id, leader id) as this member sees them, or None."""
        try:
            reply = self.call("/v3/maintenance/status", {}, timeout=1)
            return int(reply["header"]["member_id"]), int(reply.get("leader", 0))
        except (httpx.HTTPError, ValueError, KeyError):
            return None


class EtcdCluster:
    def __init__(self, workdir, size=3):
        base = "/dev/shm" if os.path.isdir("/dev/shm") else str(workdir)
        self.workdir = workdir
        self.token = f"callback-guard-e2e-{secrets.token_hex(4)}"
        self.members = [Member(f"m{i}", workdir, base) for i in range(size)]
        for member in self.members:
            self.start(member, state="new")
        wait_for(self.settled, timeout=60, what="the etcd cluster up with a leader")

    @property
    def client_ports(self):
        return [member.client_port for member in self.members]

    def initial_cluster(self):
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def start(self, member, state="new"):
        """Starts (or restarts, on its data) one member."""
        with open(member.log_path, "a") as log:
            member.proc = subprocess.Popen(
                [ETCD, "--name", member.name, "--data-dir", os.path.join(member.data, "data"),
                 "--listen-client-urls", member.url, "--advertise-client-urls", member.url,
                 "--listen-peer-urls", f"http://127.0.0.1:{member.peer_port}",
                 "--initial-advertise-peer-urls", member.peer_url,
                 "--initial-cluster", self.initial_cluster(),
                 "--initial-cluster-state", state, "--initial-cluster-token", self.token,
                 "--pre-vote", "--log-level", "warn",
                 "--auto-compaction-mode", "revision", "--auto-compaction-retention", "10000"],
                stdout=log, stderr=subprocess.STDOUT)

    def settled(self):
        """Every running member healthy and agreeing on one leader."""
        running = [m for m in self.members if m.running()]
        statuses = [m.status() for m in running]
        if not running or None in statuses or not all(m.healthy() for m in running):
            return False
        leaders = {leader for _, leader in statuses}
        return len(leaders) == 1 and 0 not in leaders

    def leader(self):
        for member in self.members:
            status = member.status() if member.running() else None
            if status and status[1]:
                return next((m for m in self.members if m.status() and m.status()[0] == status[1]), None)
        return None

    def follower(self):
        leader = self.leader()
        return next(m for m in self.members if m is not leader and m.running())

    def member_id(self, member):
        status = member.status()
        return status[0] if status else None

    def kill(self, member, sig=signal.SIGKILL):
        member.proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            member.proc.wait(timeout=15)

    def pause(self, member):
        member.proc.send_signal(signal.SIGSTOP)

    def resume(self, member):
        member.proc.send_signal(signal.SIGCONT)

    def partition(self, member):
        """Cuts `member` off from the other two, both ways (clients still reach it)."""
        cut = format(self.member_id(member), "x")
        for other in self.members:
            if other is member:
                other.peer_proxy.cut(everything=True)
            else:
                other.peer_proxy.cut(senders={cut})

    def heal(self):
        for member in self.members:
            member.peer_proxy.heal()

    def replace_empty(self, member):
        """The member's data is lost: it is removed from the cluster, added again, and
        started on an empty data directory to catch up from the others."""
        gone = self.member_id(member)
        self.kill(member)
        helper = next(m for m in self.members if m is not member and m.running())
        helper.call("/v3/cluster/member/remove", {"ID": str(gone)})
        helper.call("/v3/cluster/member/add", {"peerURLs": [member.peer_url]})
        shutil.rmtree(os.path.join(member.data, "data"), ignore_errors=True)
        self.start(member, state="existing")

    def get(self, key):
        """(value, lease) of a key, read through any running member, or None."""
        for member in self.members:
            if not member.running():
                continue
            try:
                reply = member.call("/v3/kv/range", {"key": base64.b64encode(key.encode()).decode()})
            except (httpx.HTTPError, ValueError):
                continue
            kvs = reply.get("kvs") or []
            return (base64.b64decode(kvs[0].get("value", "")), int(kvs[0].get("lease", 0))) if kvs else None
        return None

    def remove(self):
        for member in self.members:
            if member.running():
                member.proc.send_signal(signal.SIGCONT)
                member.proc.kill()
                member.proc.wait(timeout=15)
            member.peer_proxy.close()
            shutil.rmtree(member.data, ignore_errors=True)
