#!/usr/bin/env python3
"""`make bench`: callback-guard against Envoy without it, against the smallest wasm filter,
and against verification inside a Python app, side by side in one run on this machine.

Envoy runs one worker thread; the upstream is nginx; the load generator is wrk. Each setup
gets the same kind of pre-signed requests (every one a fresh nonce or event id where the
setup remembers them). All setups run side by side and take turns in short bursts, a few
rounds, so that a machine whose speed drifts (shared cloud cores do) slows them alike; each
burst is a throughput phase (many connections) and a latency phase (one connection).
Prints the medians of requests/s, Envoy CPU and whole-system CPU (Envoy and the processes
behind it: nginx, or the Python app and its workers) per request, p50 and p99, and the ratios b/a,
b/f, b/c (with b/f per round, to show how steady they were), then the .wasm size and Envoy's
memory with one million remembered nonces filling the replay cache to 90 %, and the cache's
current layout against its previous one at that fill (refusals, time per reservation,
bytes per nonce; inside one Envoy, by the probe filter). The voice workload also runs (b) with the
fleet-wide etcd store (one etcd member on loopback, started here), printed next to the
shared-data (b) with etcd's own CPU per request, and a last phase measures etcd's memory
per remembered nonce. After the workloads, the priced floor: the host calls one callback
makes, counted by the filter itself (its `count-host-calls` build), at the probe's prices,
plus the one hash its signature needs, next to the measured Envoy CPU b-h and their ratio;
and the same floor measured in place: setup (g), bench/floor-filter, makes exactly those
host calls and that hash and nothing else, under the same load as (b) (the probe's prices
come from hot loops, where caches are warm; a callback under load runs cold).
"""
import argparse
import base64
import copy
import hashlib
import hmac
import json
import math
import os
import re
import subprocess
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/e2e"))
from harness import Etcd, free_port, wait_for  # noqa: E402

import httpx  # noqa: E402

VENV_BIN = Path(sys.executable).parent
WASM = ROOT / "target/wasm32-wasip1/release/callback_guard.wasm"
MINIMAL = ROOT / "target/wasm32-wasip1/release/minimal_filter.wasm"
PROBE = ROOT / "target/wasm32-wasip1/release/probe_filter.wasm"
FLOOR = ROOT / "target/wasm32-wasip1/release/floor_filter.wasm"
# callback-guard built with the count-host-calls feature (make bench builds it).
COUNTING = ROOT / "target/count/wasm32-wasip1/release/callback_guard.wasm"
VOICE_BODY = b"CallUUID=bench&Event=StartApp"
TOKEN, SECRET = "bench-auth-token", "bench-whatsapp-secret"
# The registered origin: configuration, not the request, so every setup signs alike.
ORIGIN = "https://callbacks.example.com"
WORK = Path(tempfile.mkdtemp(prefix="callback-guard-bench-"))
PROCS = []


# The process behind each upstream port (nginx, gunicorn), for whole-system CPU.
BEHIND = {}


def start(args, **kwargs):
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    PROCS.append(proc)
    return proc


def listening(port):
    import socket
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def nginx():
    port = free_port()
    conf = WORK / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
daemon off;
pid {WORK}/nginx.pid;
error_log {WORK}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {WORK}/nginx-body;
  client_max_body_size 1m;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    keepalive_requests 1000000;
    location / {{ return 200 "ok"; }}
  }}
}}
""")
    BEHIND[port] = start(["nginx", "-c", str(conf), "-p", str(WORK)])
    wait_for(lambda: listening(port), what="nginx")
    return port


def gunicorn(origin):
    port = free_port()
    env = dict(os.environ, VOBIZ_AUTH_TOKEN=TOKEN, VOBIZ_WHATSAPP_SECRET=SECRET, PUBLIC_ORIGIN=origin)
    BEHIND[port] = start([str(VENV_BIN / "gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{port}",
                          "--chdir", str(ROOT / "bench"), "--log-level", "warning", "inapp:app"], env=env)
    wait_for(lambda: listening(port), timeout=30, what="gunicorn")
    return port


def envoy(upstream_port, wasm=None, plugin=None, port=None, clusters=(), variants=None):
    """Envoy from the shipped config: its plain-HTTP listener only, one worker, no access
    log, with the given wasm filter (or none) in front of the upstream, and any extra
    clusters (etcd for the fleet-wide replay store). With `variants` (a list of (wasm,
    plugin)), one such listener for each, each filter in a VM of its own, all in this one
    process: returns their ports in place of one."""
    config = yaml.safe_load((ROOT / "envoy/envoy.yaml").read_text())
    admin = free_port()
    config["admin"]["address"]["socket_address"]["port_value"] = admin
    shipped = config["static_resources"]["listeners"][1]
    ports = [free_port() for _ in variants] if variants else [port or free_port()]
    listeners = []
    for i, (port_i, (wasm_i, plugin_i)) in enumerate(zip(ports, variants or [(wasm, plugin)])):
        listener = copy.deepcopy(shipped)
        listener["name"] = f"bench-{i}"
        listener["address"]["socket_address"]["port_value"] = port_i
        manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
        manager.pop("access_log", None)
        # callback_guard and the router only: the shipped jwt_authn serves the Pub/Sub route.
        filters = {f["name"]: f for f in manager["http_filters"]}
        guard, router = filters["callback_guard"], filters["envoy.filters.http.router"]
        manager["http_filters"] = [guard, router]
        if wasm_i is None:
            manager["http_filters"] = [router]
        else:
            vm = guard["typed_config"]["config"]["vm_config"]
            vm["code"]["local"]["filename"] = str(wasm_i)
            if variants:
                vm["vm_id"] = f"bench-{i}"
            value = plugin_i if isinstance(plugin_i, str) else json.dumps(plugin_i or {})
            guard["typed_config"]["config"]["configuration"]["value"] = value
        listeners.append(listener)
    config["static_resources"]["listeners"] = listeners
    endpoint = config["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]
    endpoint["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"] = upstream_port
    config["static_resources"]["clusters"] += list(clusters)
    path = WORK / f"envoy-{ports[0]}.yaml"
    path.write_text(yaml.safe_dump(config))
    env = dict(os.environ, VOBIZ_AUTH_TOKEN=TOKEN, VOBIZ_PARENT_AUTH_TOKEN="unused",
               VOBIZ_WHATSAPP_SECRET=SECRET)
    proc = start([str(VENV_BIN / "envoy"), "-c", str(path), "--concurrency", "1",
                  "--disable-hot-restart", "--log-level", "warn"], env=env)

    def ready():
        try:
            return httpx.get(f"http://127.0.0.1:{admin}/ready", timeout=1).text.strip() == "LIVE"
        except httpx.HTTPError:
            return False

    wait_for(ready, timeout=30, what="envoy")
    return proc, (ports if variants else ports[0]), admin


# The fleet-wide store as an operator would configure it (defaults: 250 ms, fail closed),
# through etcd's gRPC API; and through its JSON gateway, for comparison.
ETCD_STORE = {"type": "etcd", "cluster": "etcd-grpc", "api": "grpc"}
ETCD_JSON_STORE = {"type": "etcd", "cluster": "etcd-json", "api": "json"}


def guard_plugin(max_entries=1_000_000, store=None):
    keys = [{"name": "bench", "env": "VOBIZ_AUTH_TOKEN"}]
    replay = {"max_entries": max_entries, **({"store": store} if store else {})}
    return {"routes": [
        {"name": "voice", "path_prefix": "/vobiz/", "public_origin": ORIGIN,
         "allow_plain_http": True, "keys": keys, "replay": replay},
        {"name": "whatsapp", "path_prefix": "/whatsapp/", "scheme": "vobiz_whatsapp",
         "allow_plain_http": True, "keys": [{"name": "bench", "env": "VOBIZ_WHATSAPP_SECRET"}],
         "replay": {"max_entries": max_entries}, "max_body_bytes": 65536},
    ]}


def signed_voice(path, count, start=0):
    """`nonce signature` lines: every request a fresh nonce, signed ahead of time."""
    out = WORK / f"voice-{start}-{count}.txt"
    key = hmac.new(TOKEN.encode(), digestmod=hashlib.sha256)
    with out.open("w") as f:
        for i in range(start, start + count):
            nonce = f"{i:020d}"
            mac = key.copy()
            mac.update(f"{ORIGIN}{path}.{nonce}".encode())
            f.write(f"{nonce} {base64.b64encode(mac.digest()).decode()}\n")
    return out


def whatsapp_template():
    """A 16 KiB WhatsApp envelope with an EVENT_ID slot, written once per run."""
    path = WORK / "whatsapp-template.json"
    if not path.exists():
        occurred = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        head = '{"event_id":"EVENT_ID","event_type":"message.inbound","account_id":"MA_BENCH",'
        head += f'"occurred_at":"{occurred}","payload":{{"text":"'
        tail = '"}}'
        filler = "x" * (16 * 1024 - len(head) - len(tail) - 8)
        path.write_text(head + filler + tail)
    return path.read_text()


def signed_whatsapp(count, tag):
    """`event_id signature` lines for the 16 KiB envelope of `whatsapp_template`."""
    prefix, suffix = whatsapp_template().split("EVENT_ID")
    key = hmac.new(SECRET.encode(), digestmod=hashlib.sha256)
    out = WORK / f"whatsapp-{tag}.txt"
    with out.open("w") as f:
        for i in range(count):
            event_id = f"{tag}{i:07d}"
            mac = key.copy()
            mac.update((prefix + event_id + suffix).encode())
            f.write(f"{event_id} {mac.hexdigest()}\n")
    return out


def wrk(port, kind, path, lines, connections, seconds, threads=1):
    env = dict(os.environ, BENCH_FILE=str(lines), BENCH_KIND=kind, BENCH_PATH=path,
               BENCH_THREADS=str(threads), BENCH_TEMPLATE=str(WORK / "whatsapp-template.json"))
    result = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
         "-s", str(ROOT / "bench/requests.lua"), f"http://127.0.0.1:{port}{path}"],
        env=env, capture_output=True, text=True, check=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout).group(1))
    total = int(re.search(r"(\d+) requests in", result.stdout).group(1))
    stats = dict(re.findall(r"(\w+)=(\d+)", result.stdout.split("BENCH", 1)[1]))
    return {"rps": rps, "requests": total, "p50_us": int(stats["p50"]), "p99_us": int(stats["p99"]),
            "non2xx": int(stats["non2xx"]), "errors": int(stats["errors"]),
            "wrapped": int(stats["wrapped"])}


def cpu_seconds(pid):
    """User + system CPU time of a process so far (robust to other load on the machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid):
    """CPU time of a process and all its descendants (nginx's worker, gunicorn's workers),
    the live ones: these servers keep their workers for the whole run."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += cpu_seconds(current)
        except OSError:
            continue
        todo += children.get(current, [])
    return total


def burst(setup, kind, path, lines, connections, seconds):
    """One wrk run against one setup, with the CPU it cost per request: Envoy's, and the
    whole system's (Envoy, what is behind it, etcd where the setup uses it; not wrk)."""
    processes = [setup["proc"].pid, BEHIND[setup["upstream"]].pid]
    etcd = setup.get("etcd")
    if etcd:
        processes.append(etcd.proc.pid)
    cpu_before = cpu_seconds(setup["proc"].pid)
    etcd_before = cpu_seconds(etcd.proc.pid) if etcd else 0
    proposals_before = proposals(etcd) if etcd else 0
    system_before = sum(tree_cpu_seconds(pid) for pid in processes)
    result = wrk(setup["port"], kind, path, lines, connections, seconds)
    requests = max(result["requests"], 1)
    result["envoy_cpu_us"] = (cpu_seconds(setup["proc"].pid) - cpu_before) * 1e6 / requests
    result["system_cpu_us"] = (sum(tree_cpu_seconds(pid) for pid in processes) - system_before) * 1e6 / requests
    if etcd:
        result["etcd_cpu_us"] = (cpu_seconds(etcd.proc.pid) - etcd_before) * 1e6 / requests
        result["etcd_writes"] = (proposals(etcd) - proposals_before) / requests
    # Only setups that remember nonces need each line once.
    if not setup["fresh"]:
        result["wrapped"] = 0
    result["bad"] = result["non2xx"] + result["errors"] + result["wrapped"]
    return result


def proposals(etcd):
    """Writes etcd has committed through raft (each transaction or lease grant that
    changed something is one; a batch of settles is one)."""
    text = httpx.get(f"{etcd.url}/metrics", timeout=5).text
    found = re.search(r"^etcd_server_proposals_committed_total ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def median(values):
    return statistics.median(values) if values else 0


def refusals(admin):
    """The filter's own count of what it refused, by reason (non-zero only)."""
    text = httpx.get(f"http://127.0.0.1:{admin}/stats?filter=callback_guard.rejected", timeout=5).text
    found = re.findall(r"route\.([\w-]+)\.reason\.(\w+): (\d+)", text)
    return {f"{route}/{reason}": int(count) for route, reason, count in found if int(count)}


def summarize(name, samples, round_trip=None, refused=""):
    """Medians over the rounds: throughput bursts for req/s and CPU, latency bursts for
    p50 and p99."""
    row = {"setup": name,
           "rps": median([t["rps"] for t, _ in samples]),
           "envoy_cpu_us": median([t["envoy_cpu_us"] for t, _ in samples]),
           "system_cpu_us": median([t["system_cpu_us"] for t, _ in samples]),
           "p50_us": median([l["p50_us"] for _, l in samples]),
           "p99_us": median([l["p99_us"] for _, l in samples]),
           "bad": sum(m["bad"] for pair in samples for m in pair),
           "rounds": [{"rps": t["rps"], "envoy_cpu_us": round(t["envoy_cpu_us"], 1),
                       "system_cpu_us": round(t["system_cpu_us"], 1),
                       "p50_us": l["p50_us"], "p99_us": l["p99_us"]} for t, l in samples]}
    warning = ""
    if row["bad"]:
        counts = {k: sum(m[k] for pair in samples for m in pair) for k in ("non2xx", "errors", "wrapped")}
        warning = (f"   !! {counts['non2xx']} non-2xx, {counts['errors']} socket errors, "
                   f"{counts['wrapped']} reused lines{refused}")
    extra = ""
    if "etcd_cpu_us" in samples[0][0]:
        row["etcd_cpu_us"] = median([t["etcd_cpu_us"] for t, _ in samples])
        row["etcd_writes"] = median([t["etcd_writes"] for t, _ in samples])
        row["round_trip"] = round_trip
        extra = f"   etcd CPU {row['etcd_cpu_us']:.1f} µs/req, {row['etcd_writes']:.2f} writes/req"
    print(f"  {name:<36} {row['rps']:>8.0f} req/s   Envoy CPU {row['envoy_cpu_us']:>6.1f} µs/req   "
          f"system CPU {row['system_cpu_us']:>6.1f} µs/req   "
          f"p50 {row['p50_us']:>5.0f} µs   p99 {row['p99_us']:>5.0f} µs{extra}{warning}", flush=True)
    if round_trip:
        q = round_trip["quantiles"]
        print(f"      etcd round trips at 1 connection (filter's histogram): p50 "
              f"{q.get('50', 0):.0f} µs, p99 {q.get('99', 0):.0f} µs; {round_trip['ok']:,} ok "
              f"({round_trip['per_callback']:.2f} per callback), {round_trip['error']} errors, "
              f"{round_trip['timeout']} timeouts", flush=True)
    return row


def stop(proc):
    proc.terminate()
    proc.wait(timeout=15)


class Lines:
    """Request lines for wrk. Setups that remember nonces get fresh ones for every burst;
    the others share one file (repeats cost them nothing)."""

    def __init__(self, kind):
        self.kind, self.made, self.shared = kind, 0, {}

    def make(self, count):
        self.made += 1
        if self.kind == "voice":
            return signed_voice("/vobiz/answer", count, start=self.made * 10**8)
        return signed_whatsapp(count, f"r{self.made:03d}x")

    def get(self, fresh, count):
        if fresh:
            return self.make(count)
        if count not in self.shared:
            self.shared[count] = self.make(count)
        return self.shared[count]


def build_baseline(rev):
    """callback-guard's .wasm at another git revision (its own Cargo.lock), for an A/B of
    the filter itself in the same run."""
    source = WORK / "baseline-src"
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    target = ROOT / "target/baseline"
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip1", "--lib"],
                   cwd=source, env=dict(os.environ, CARGO_TARGET_DIR=str(target)), check=True)
    return target / "wasm32-wasip1/release/callback_guard.wasm"


def workload(kind, seconds, rounds, upstream, app, calls, etcd=None, baseline=None):
    path = "/vobiz/answer" if kind == "voice" else "/whatsapp/events"
    title = "header-signed V3" if kind == "voice" else "16 KiB body-signed WhatsApp"
    latency_seconds = max(2, seconds // 2)
    print(f"\n{title}, replay protection on: {rounds} rounds, each setup in turn: {seconds} s at "
          f"32 connections (req/s, Envoy CPU), {latency_seconds} s at 1 connection (latency); "
          f"medians", flush=True)
    setups = {
        "a": ("(a) Envoy, no filter", None, upstream, {}),
        "f": ("(f) Envoy + minimal wasm filter", MINIMAL, upstream, {}),
        # The floor for any filter that must see the body before the upstream does.
        "h": ("(h) ... minimal, holding the body", MINIMAL, upstream, "hold_body"),
        # The floor in place: callback-guard's host calls (as counted) and its one hash.
        "g": ("(g) ... the floor: (b)'s host calls + hash", FLOOR, upstream,
              {"calls": calls, "hash": "hmac" if kind == "voice" else "sha256"}),
        "b": ("(b) Envoy + callback-guard", WASM, upstream, guard_plugin()),
        "c": ("(c) Envoy -> Python app verifying", None, app, {}),
    }
    if baseline:
        setups["b0"] = (f"(b0) ... at {baseline[0]}", baseline[1], upstream, guard_plugin())
    if etcd and kind == "voice":
        # The same, with the fleet-wide store: a local shared-data first level in front
        # of etcd, one transaction per new nonce and one settle after the response.
        setups["e"] = ("(b) ... with the etcd store (gRPC)", WASM, upstream,
                       guard_plugin(store=ETCD_STORE))
        setups["e0"] = ("(b) ... etcd through its JSON gateway", WASM, upstream,
                        guard_plugin(store=ETCD_JSON_STORE))
        if baseline:
            setups["eb0"] = ("(b0) ... with the etcd store (gRPC)", baseline[1], upstream,
                             guard_plugin(store=ETCD_STORE))
    running = {}
    for key, (_, wasm, upstream_port, plugin) in setups.items():
        fleet = key in ("e", "e0", "eb0")
        store = plugin["routes"][0]["replay"].get("store", {}) if fleet else {}
        proc, port, admin = envoy(upstream_port, wasm, plugin,
                                  clusters=[etcd.cluster(store["cluster"], store["api"])] if fleet else ())
        running[key] = {"proc": proc, "port": port, "admin": admin, "upstream": upstream_port,
                        "fresh": wasm not in (None, MINIMAL, FLOOR),
                        **({"etcd": etcd} if fleet else {})}
    lines = Lines(kind)
    # Generous: no setup here exceeds 40k req/s (voice) or 15k (WhatsApp) on two cores, nor
    # 10k at one connection (a round trip through Envoy takes over 100 µs).
    per_second = 40_000 if kind == "voice" else 15_000
    throughput_lines, latency_lines = per_second * seconds, 10_000 * latency_seconds
    round_trip = None
    if "e" in running:
        # Unloaded round trips first, read from the filter's own histogram, so that it
        # holds no round trips queued behind 32 connections.
        unloaded = burst(running["e"], kind, path, lines.get(True, latency_lines), 1, latency_seconds)
        round_trip = round_trips(running["e"]["admin"], "voice")
        round_trip["per_callback"] = round_trip["ok"] / max(unloaded["requests"], 1)
    samples = {key: [] for key in running}
    keys = list(running)
    try:
        for r in range(rounds):
            # A different order each round, so no setup always follows the same one.
            for key in keys[r % len(keys):] + keys[:r % len(keys)]:
                setup = running[key]
                throughput = burst(setup, kind, path, lines.get(setup["fresh"], throughput_lines),
                                   32, seconds)
                latency = burst(setup, kind, path, lines.get(setup["fresh"], latency_lines),
                                1, latency_seconds)
                samples[key].append((throughput, latency))
        refused = {key: refusals(setup["admin"]) for key, setup in running.items() if setup["fresh"]}
    finally:
        for setup in running.values():
            stop(setup["proc"])
    rows = {key: summarize(setups[key][0], samples[key], round_trip if key == "e" else None,
                           f" (filter refused: {refused[key]})" if refused.get(key) else "")
            for key in keys}
    # Ratios of the medians; each round's own ratios show how steady they were.
    a, f, b, c = (rows[k] for k in "afbc")
    ratios = {"b/a": b["rps"] / a["rps"], "b/f": b["rps"] / f["rps"], "b/c": b["rps"] / c["rps"],
              "f/a": f["rps"] / a["rps"], "c/a": c["rps"] / a["rps"],
              "p99 b-f (µs)": b["p99_us"] - f["p99_us"], "p50 b-f (µs)": b["p50_us"] - f["p50_us"],
              "b/h": b["rps"] / rows["h"]["rps"],
              "CPU b-f (µs/req)": b["envoy_cpu_us"] - f["envoy_cpu_us"],
              "CPU h-f (µs/req)": rows["h"]["envoy_cpu_us"] - f["envoy_cpu_us"],
              "CPU b-h (µs/req)": b["envoy_cpu_us"] - rows["h"]["envoy_cpu_us"],
              "CPU g-h (µs/req)": rows["g"]["envoy_cpu_us"] - rows["h"]["envoy_cpu_us"],
              "b-h / g-h": ((b["envoy_cpu_us"] - rows["h"]["envoy_cpu_us"])
                            / max(rows["g"]["envoy_cpu_us"] - rows["h"]["envoy_cpu_us"], 0.1)),
              "CPU f-a (µs/req)": f["envoy_cpu_us"] - a["envoy_cpu_us"],
              # Users pay for CPU: the whole system's per callback, (c) charged for its
              # own verification in the app.
              "system CPU b/c": b["system_cpu_us"] / c["system_cpu_us"],
              "system CPU b-a (µs/req)": b["system_cpu_us"] - a["system_cpu_us"],
              "system CPU c-a (µs/req)": c["system_cpu_us"] - a["system_cpu_us"]}
    print("  " + "   ".join(f"{k} {v:.2f}" for k, v in ratios.items() if "µs" not in k), flush=True)
    print("  " + "   ".join(f"{k} {v:+.1f}" for k, v in ratios.items() if "µs" in k), flush=True)
    per_round = [samples["b"][r][0]["rps"] / samples["f"][r][0]["rps"] for r in range(rounds)]
    print("  b/f by round: " + ", ".join(f"{x:.2f}" for x in per_round), flush=True)
    ratios["b/f by round"] = per_round
    if "b0" in rows:
        b0 = rows["b0"]
        ratios.update({"b/b0": b["rps"] / b0["rps"],
                       "CPU b-b0 (µs/req)": b["envoy_cpu_us"] - b0["envoy_cpu_us"],
                       "CPU b-b0 by round (µs/req)": [
                           samples["b"][r][0]["envoy_cpu_us"] - samples["b0"][r][0]["envoy_cpu_us"]
                           for r in range(rounds)]})
        print(f"  callback-guard against {baseline[0]}: req/s x{ratios['b/b0']:.2f}, Envoy CPU "
              f"{ratios['CPU b-b0 (µs/req)']:+.1f} µs/req (by round: "
              + ", ".join(f"{x:+.1f}" for x in ratios["CPU b-b0 by round (µs/req)"]) + ")", flush=True)
    if "e" in rows:
        e = rows["e"]
        ratios.update({"etcd/b": e["rps"] / b["rps"], "p50 etcd-b (µs)": e["p50_us"] - b["p50_us"],
                       "p99 etcd-b (µs)": e["p99_us"] - b["p99_us"],
                       "CPU etcd-b (µs/req)": e["envoy_cpu_us"] - b["envoy_cpu_us"]})
        print(f"  etcd store vs shared data: req/s x{ratios['etcd/b']:.2f}, "
              f"p50 {ratios['p50 etcd-b (µs)']:+.0f} µs, p99 {ratios['p99 etcd-b (µs)']:+.0f} µs, "
              f"Envoy CPU {ratios['CPU etcd-b (µs/req)']:+.1f} µs/req, "
              f"etcd CPU {e['etcd_cpu_us']:.1f} µs/req", flush=True)
    if "e0" in rows:
        e, e0 = rows["e"], rows["e0"]
        ratios.update({"etcd CPU grpc/json": e["etcd_cpu_us"] / e0["etcd_cpu_us"],
                       "CPU etcd grpc-json (µs/req)": e["envoy_cpu_us"] - e0["envoy_cpu_us"]})
        print(f"  etcd's gRPC API vs its JSON gateway: etcd CPU {e['etcd_cpu_us']:.1f} vs "
              f"{e0['etcd_cpu_us']:.1f} µs/req (x{ratios['etcd CPU grpc/json']:.2f}), Envoy CPU "
              f"{ratios['CPU etcd grpc-json (µs/req)']:+.1f} µs/req, req/s x{e['rps'] / e0['rps']:.2f}",
              flush=True)
    if "eb0" in rows:
        e, eb0 = rows["e"], rows["eb0"]
        ratios.update({"etcd CPU e/eb0": e["etcd_cpu_us"] / max(eb0["etcd_cpu_us"], 0.1),
                       "etcd CPU e/eb0 by round": [
                           samples["e"][r][0]["etcd_cpu_us"] / max(samples["eb0"][r][0]["etcd_cpu_us"], 0.1)
                           for r in range(rounds)],
                       "CPU e-eb0 (µs/req)": e["envoy_cpu_us"] - eb0["envoy_cpu_us"],
                       "p99 e-eb0 (µs)": e["p99_us"] - eb0["p99_us"]})
        print(f"  the etcd store against {baseline[0]}: etcd CPU {e['etcd_cpu_us']:.1f} vs "
              f"{eb0['etcd_cpu_us']:.1f} µs/req (x{ratios['etcd CPU e/eb0']:.2f}; by round: "
              + ", ".join(f"x{x:.2f}" for x in ratios["etcd CPU e/eb0 by round"])
              + f"), etcd writes {e['etcd_writes']:.2f} vs {eb0['etcd_writes']:.2f} per request, "
              f"Envoy CPU {ratios['CPU e-eb0 (µs/req)']:+.1f} µs/req, p99 {ratios['p99 e-eb0 (µs)']:+.0f} µs, "
              f"req/s x{e['rps'] / eb0['rps']:.2f}", flush=True)
    return {"rows": rows, "ratios": ratios}


def median_interval(values):
    """The median and a distribution-free 95 % interval for it: the order statistics
    (x_k, x_n-k+1) with the largest k for which the binomial tails leave at most 2.5 %
    each side (None when too few values for one)."""
    n, ordered = len(values), sorted(values)
    k, tail = 0, 0.0
    while k < n and tail + math.comb(n, k) / 2**n <= 0.025:
        tail += math.comb(n, k) / 2**n
        k += 1
    interval = (ordered[k - 1], ordered[n - k]) if k >= 1 else None
    return statistics.median(ordered), interval


def interleaved(kind, upstream, setups, differences, seconds, least, most, title,
                one_process=False):
    """Setups measured in many short rounds, each round every setup in turn (the order
    rotating and reversing, so that none always runs first or after the same one), and per
    round the `differences` of their Envoy CPU per request, which see that round's noise
    alike. Reports their medians with 95 % intervals over the rounds, and keeps going (up
    to `most` rounds) until every difference whose name has no `/` (the ratios are shown,
    not waited for) has an interval narrower than itself, or says which it could not
    resolve."""
    path = "/vobiz/answer" if kind == "voice" else "/whatsapp/events"
    running = {}
    if one_process:
        # Every setup a listener of one Envoy: what differs between processes (where
        # their memory and code landed) cannot differ between setups.
        proc, ports, admin = envoy(upstream, variants=list(setups.values()))
        for (key, (wasm, _)), port in zip(setups.items(), ports):
            running[key] = {"proc": proc, "port": port, "admin": admin, "upstream": upstream,
                            "fresh": wasm == WASM}
    else:
        for key, (wasm, plugin) in setups.items():
            proc, port, admin = envoy(upstream, wasm, plugin)
            running[key] = {"proc": proc, "port": port, "admin": admin, "upstream": upstream,
                            "fresh": wasm == WASM}
    lines = Lines(kind)
    count = (40_000 if kind == "voice" else 15_000) * seconds
    values = {name: [] for name in differences}
    waited = [name for name in differences if "/" not in name]
    try:
        for r in range(most):
            keys = list(running)
            order = keys[r % len(keys):] + keys[:r % len(keys)]
            if r % 2:
                order.reverse()
            cpu = {key: burst(running[key], kind, path, lines.get(running[key]["fresh"], count),
                              32, seconds)["envoy_cpu_us"] for key in order}
            for name, difference in differences.items():
                values[name].append(difference(cpu))
            if r + 1 >= least and all(narrow(values[name]) for name in waited):
                break
    finally:
        for proc in {id(setup["proc"]): setup["proc"] for setup in running.values()}.values():
            stop(proc)
    rounds = len(next(iter(values.values())))
    result = {"rounds": rounds}
    where = "listeners of one Envoy" if one_process else "one Envoy each"
    print(f"\n{title}: {rounds} rounds of {seconds} s at 32 connections, "
          f"{', '.join(setups)} in turn ({where}); medians of each round's differences (Envoy CPU, µs "
          f"per request) with 95 % intervals", flush=True)
    for name, measured in values.items():
        middle, interval = median_interval(measured)
        result[name] = {"median": middle, "interval": interval, "resolved": narrow(measured)}
        shown = f"[{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "(too few rounds)"
        verdict = "" if narrow(measured) else "   !! not resolved: the interval is wider than the value"
        print(f"  {name:<14} {middle:8.2f}  {shown}{verdict}", flush=True)
    return result


def ratio(numerator, denominator):
    return numerator / denominator if abs(denominator) >= 0.1 else float("inf")


def paired(kind, upstream, calls, seconds, least, most):
    """The filter's own cost resolved on a noisy machine: (b), (g) and (h) interleaved,
    b-g (callback-guard's own code), b-h and g-h (its host calls and hash in place)."""
    setups = {"h": (MINIMAL, "hold_body"),
              "g": (FLOOR, {"calls": calls, "hash": "hmac" if kind == "voice" else "sha256"}),
              "b": (WASM, guard_plugin())}
    differences = {"b-g": lambda c: c["b"] - c["g"], "b-h": lambda c: c["b"] - c["h"],
                   "g-h": lambda c: c["g"] - c["h"],
                   "(b-h)/(g-h)": lambda c: ratio(c["b"] - c["h"], c["g"] - c["h"])}
    return interleaved(kind, upstream, setups, differences, seconds, least, most, f"{kind}, paired")


def with_routes(plugin, extra):
    """`plugin` with `extra` routes before its own, each another voice route under its own
    prefix, so that route selection passes them all first."""
    routes = [{"name": f"extra-{i}", "path_prefix": f"/extra-{i}/", "public_origin": ORIGIN,
               "allow_plain_http": True,
               "keys": [{"name": "k", "value": f"another-token-{i}"}]} for i in range(extra)]
    return {**plugin, "routes": routes + plugin["routes"]}


def with_keys(plugin, count):
    """`plugin` with its voice route holding `count` keys, the one that verifies last."""
    routes = copy.deepcopy(plugin["routes"])
    others = [{"name": f"old-{i}", "value": f"a-retired-token-{i}"} for i in range(count - 1)]
    routes[0]["keys"] = others + routes[0]["keys"]
    return {**plugin, "routes": routes}


def growth(upstream, seconds, least, most):
    """How (b)'s own cost grows, each row against the minimal body-holding filter (h) in
    the same rounds: 1, 30 and 300 routes; 1, 2 and 4 keys (rotation). `1'` is a second,
    identical Envoy of one route or key: how far two processes of the same setup differ
    is the resolution of the others."""
    result = {}
    for name, variants in (("routes", {"1": 0, "1'": 0, "30": 29, "300": 299}),
                           ("keys", {"1": 1, "1'": 1, "2": 2, "4": 4})):
        make = (lambda n: with_routes(guard_plugin(), n)) if name == "routes" else \
               (lambda n: with_keys(guard_plugin(), n))
        setups = {"h": (MINIMAL, "hold_body"),
                  **{f"b{label}": (WASM, make(n)) for label, n in variants.items()}}
        labels = list(variants)
        differences = {f"b{label}-h": (lambda c, l=label: c[f"b{l}"] - c["h"]) for label in labels}
        differences.update({f"(b{label}-h)/(b{labels[0]}-h)":
                            (lambda c, l=label: ratio(c[f"b{l}"] - c["h"], c[f"b{labels[0]}"] - c["h"]))
                            for label in labels[1:]})
        result[name] = interleaved("voice", upstream, setups, differences, seconds, least, most,
                                   f"voice, growth with {name}", one_process=True)
    return result


def narrow(values):
    """Whether the median's interval is narrower than the median itself."""
    middle, interval = median_interval(values)
    return interval is not None and interval[1] - interval[0] < abs(middle)


def round_trips(admin, route):
    """The filter's own histogram of etcd round trips (reservations and settles), read
    after Envoy's next stats flush, with its result counters."""
    time.sleep(5.5)
    text = httpx.get(f"http://127.0.0.1:{admin}/stats?filter=callback_guard.store", timeout=5).text
    line = next((l for l in text.splitlines() if f"store_us.route.{route}:" in l), "")
    quantiles = {q: float(v) for q, v in re.findall(r"P(\d+(?:\.\d+)?)\([^,]*,([0-9.]+)\)", line)}
    results = {r: stat(admin, f"wasmcustom.callback_guard.store.route.{route}.result.{r}")
               for r in ("ok", "error", "timeout")}
    return {"quantiles": quantiles, **results}


def stat(admin, name):
    text = httpx.get(f"http://127.0.0.1:{admin}/stats?filter=^{name}$", timeout=5).text
    return int(text.split(": ")[1]) if ": " in text else 0


def etcd_metrics(etcd):
    text = httpx.get(f"{etcd.url}/metrics", timeout=5).text
    values = dict(re.findall(r"^((?:etcd|go)_\w+) ([0-9.e+]+)$", text, re.M))
    rss = int(re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{etcd.proc.pid}/status").read_text()).group(1))
    return {"keys": int(float(values.get("etcd_debugging_mvcc_keys_total", 0))),
            "db_in_use": int(float(values.get("etcd_mvcc_db_total_size_in_use_in_bytes", 0))),
            "heap_in_use": int(float(values.get("go_memstats_heap_inuse_bytes", 0))),
            "rss": rss * 1024}


def etcd_compact(etcd):
    """Drops every old revision, as the auto-compaction an operator configures would."""
    revision = etcd.call("/v3/kv/range", {"key": "AA=="})["header"]["revision"]
    etcd.call("/v3/kv/compaction", {"revision": revision, "physical": True})


def fill(port, lines, count, rps):
    """Sends the `count` voice callbacks of `lines` once, at about `rps`, with margin; what
    the margin sends again only meets the replay cache."""
    wrk(port, "voice", "/vobiz/answer", lines, connections=32, seconds=int(count / rps * 1.5) + 5)


def etcd_memory_per_nonce(upstream, etcd, count, rps_hint):
    """etcd's database and resident memory before and after remembering `count` nonces."""
    lines = signed_voice("/vobiz/answer", count, start=2 * 10**12)
    proc, port, _ = envoy(upstream, WASM, guard_plugin(max_entries=3 * count, store=ETCD_STORE),
                          clusters=[etcd.cluster(ETCD_STORE["cluster"], ETCD_STORE["api"])])
    etcd_compact(etcd)
    before = etcd_metrics(etcd)
    fill(port, lines, count, max(rps_hint, 500))
    stop(proc)
    time.sleep(1)  # the last settles
    etcd_compact(etcd)
    after = etcd_metrics(etcd)
    added = max(after["keys"] - before["keys"], 1)
    return {"nonces": added, "before": before, "after": after,
            "db_bytes_per_nonce": (after["db_in_use"] - before["db_in_use"]) / added,
            "heap_bytes_per_nonce": (after["heap_in_use"] - before["heap_in_use"]) / added,
            "rss_bytes_per_nonce": (after["rss"] - before["rss"]) / added}


def allocated(admin):
    """Bytes tcmalloc has handed out, live (the server.memory_allocated stat is only
    refreshed at each stats flush)."""
    return int(httpx.get(f"http://127.0.0.1:{admin}/memory", timeout=5).json()["allocated"])


def ninety_percent(count):
    """The max_entries that `count` nonces fill to 90 %."""
    return -(-count * 10 // 9)


def memory_with_nonces(upstream, count, rps_hint):
    """Envoy's allocated memory before and after remembering `count` nonces, through real
    callbacks, in a cache they fill to 90 %."""
    lines = signed_voice("/vobiz/answer", count, start=10**12)
    proc, port, admin = envoy(upstream, WASM, guard_plugin(max_entries=ninety_percent(count)))
    accepted = "wasmcustom.callback_guard.accepted.route.voice.scheme.v3.key.bench"
    before = allocated(admin)
    started = time.monotonic()
    fill(port, lines, count, max(rps_hint, 1000))
    remembered = stat(admin, accepted)
    full = stat(admin, "wasmcustom.callback_guard.rejected.route.voice.reason.replay_cache_full")
    after = allocated(admin)
    stop(proc)
    return {"remembered": remembered, "cache_full": full, "max_entries": ninety_percent(count),
            "allocated_before": before, "allocated_after": after,
            "bytes_per_nonce": (after - before) / max(remembered, 1),
            "fill_seconds": round(time.monotonic() - started)}


def layouts(upstream, count):
    """The replay cache in its current layout and the previous one (slots of 32 holding
    32), each filled with `count` nonces to 90 % of its max_entries inside one Envoy by the
    probe filter: refusals, mean time of a reservation in V8, allocated bytes per nonce."""
    proc, port, admin = envoy(upstream, PROBE, {})
    results = {}
    try:
        for layout in ("previous", "current"):
            before = allocated(admin)
            query = f"layout={layout}&entries={ninety_percent(count)}&fill=0.9"
            answer = httpx.get(f"http://127.0.0.1:{port}/layout?{query}", timeout=600).json()
            answer["bytes_per_nonce"] = (allocated(admin) - before) / max(answer["reservations"], 1)
            results[layout] = answer
    finally:
        stop(proc)
    return results


def probe(upstream):
    """What the building blocks of the filter cost inside this Envoy's V8 (see
    bench/probe-filter): asked a few times, as V8 compiles hot code in tiers."""
    proc, port, _ = envoy(upstream, PROBE, {})
    try:
        for _ in range(5):
            answer = httpx.get(f"http://127.0.0.1:{port}/probe", timeout=60).json()
        # What reading a body costs: the voice callback's and the 16 KiB WhatsApp envelope's.
        for body in (VOICE_BODY, whatsapp_template().encode()):
            for _ in range(3):
                read = httpx.post(f"http://127.0.0.1:{port}/body", content=body, timeout=60).json()
            answer.update(read)
        # callback-guard's own steps on the bench's requests, each run over fresh nonces.
        for _ in range(3):
            core = httpx.post(f"http://127.0.0.1:{port}/core", content=whatsapp_template().encode(),
                              timeout=120).json()
        answer.update(core)
    finally:
        stop(proc)
    print("\nbuilding blocks inside Envoy's V8 (probe filter, ns per call):", flush=True)
    names = list(answer)
    for i in range(0, len(names), 3):
        print("  " + "   ".join(f"{n} {answer[n]:,}" for n in names[i:i + 3]), flush=True)
    return answer


# Which probe measurement prices each kind of host call the counting build reports; the
# body read is priced by its size (kind-specific key filled in by `priced_floor`).
PRICES = {"request_headers": "request_headers_pairs", "request_header_set": "property_set_filter_state",
          "response_header": "request_header_one", "shared_data_get": "shared_data_get_cache_key",
          "shared_data_set": "shared_data_set_cache_key", "property_get": "property_get_source_address",
          "property_set": "property_set_filter_state", "clock": "clock_wall",
          "metric_increment": "counter_increment", "metric_record": "histogram_record"}


def host_calls(upstream, kind, count=400):
    """The host calls one callback of `kind` makes, counted by the filter itself (its
    count-host-calls build) over `count` fresh callbacks sent one at a time."""
    proc, port, _ = envoy(upstream, COUNTING, guard_plugin())
    path = "/vobiz/answer" if kind == "voice" else "/whatsapp/events"
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            before = client.get("/__callback_guard/host_calls").json()
            prefix, suffix = whatsapp_template().split("EVENT_ID")
            for line in Lines(kind).make(count).read_text().splitlines():
                ident, signature = line.split()
                if kind == "voice":
                    headers = {"X-Vobiz-Signature-V3": signature, "X-Vobiz-Signature-V3-Nonce": ident,
                               "Content-Type": "application/x-www-form-urlencoded"}
                    body = VOICE_BODY
                else:
                    headers = {"X-Webhook-Signature": signature, "Content-Type": "application/json"}
                    body = (prefix + ident + suffix).encode()
                assert client.post(path, headers=headers, content=body).status_code == 200
            after = client.get("/__callback_guard/host_calls").json()
    finally:
        stop(proc)
    # Not the callbacks': the second count request read its own headers, and the first
    # one's reply went out after its snapshot.
    after["request_headers"] -= 1
    after["local_reply"] -= 1
    return {name: (after[name] - before[name]) / count for name in after if after[name] != before[name]}


def priced_floor(kind, calls, probe_ns):
    """What one callback costs at least, in µs: each host call it makes at the probe's
    price, plus the one hash its signature needs (the HMAC of a voice base string; one
    SHA-256 pass over a 16 KiB body)."""
    body = len(VOICE_BODY) if kind == "voice" else len(whatsapp_template().encode())
    prices = dict(PRICES, body=f"request_body_{body}")
    parts = {name: per_request * probe_ns[prices[name]] / 1000 for name, per_request in calls.items()
             if name in prices}
    parts["hash"] = probe_ns["hmac_sha256_voice_base_string" if kind == "voice" else "sha256_16_kib"] / 1000
    return parts


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, help="throughput phase per setup")
    parser.add_argument("--rounds", type=int, default=3,
                        help="bursts per setup, interleaved; medians are reported")
    parser.add_argument("--nonces", type=int, default=1_000_000, help="for the memory phase (0: skip)")
    parser.add_argument("--etcd-nonces", type=int, default=100_000,
                        help="for the etcd memory phase (0: skip)")
    parser.add_argument("--paired-rounds", type=int, default=40,
                        help="most rounds of the paired phase (0: skip); at least 12 are run")
    parser.add_argument("--paired-seconds", type=int, default=1, help="each paired burst")
    parser.add_argument("--growth-rounds", type=int, default=0,
                        help="rounds of each growth comparison, routes and keys (0: skip)")
    parser.add_argument("--baseline", metavar="GIT_REV",
                        help="also run callback-guard built at this revision, side by side (A/B)")
    args = parser.parse_args()
    print(f"callback-guard bench: {os.cpu_count()} cores, Envoy 1.40 with one worker thread, "
          f"nginx upstream, wrk; ratios only compare within this run")
    print(f"callback_guard.wasm {WASM.stat().st_size:,} bytes; minimal filter "
          f"{MINIMAL.stat().st_size:,} bytes", flush=True)
    report = {"wasm_bytes": WASM.stat().st_size}
    etcd = None
    try:
        upstream = nginx()
        app = gunicorn(ORIGIN)
        # One etcd member on loopback, data in memory (/dev/shm): the cost measured is the
        # round trips and etcd's CPU, not a disk's fsync.
        etcd = Etcd(WORK)
        report["probe_ns"] = probe(upstream)
        baseline = (args.baseline, build_baseline(args.baseline)) if args.baseline else None
        # Counted first: setup (g) makes these calls.
        calls = {kind: host_calls(upstream, kind) for kind in ("voice", "whatsapp")}
        if args.paired_rounds:
            report["paired"] = {kind: paired(kind, upstream, calls[kind], args.paired_seconds,
                                             min(12, args.paired_rounds), args.paired_rounds)
                                for kind in ("voice", "whatsapp")}
        if args.growth_rounds:
            # Every round: the question is the ratio, whose interval narrows with rounds.
            report["growth"] = growth(upstream, args.paired_seconds, args.growth_rounds,
                                      args.growth_rounds)
        if not args.rounds:
            (WORK / "report.json").write_text(json.dumps(report, indent=2))
            print(f"\nfull report: {WORK / 'report.json'}")
            return
        report["voice"] = workload("voice", args.seconds, args.rounds, upstream, app, calls["voice"],
                                   etcd, baseline)
        report["whatsapp"] = workload("whatsapp", args.seconds, args.rounds, upstream, app,
                                      calls["whatsapp"], baseline=baseline)
        print("\nthe priced floor: host calls per callback, counted by the filter (its count-host-calls "
              "build), at the probe's prices, plus the one hash; against the measured Envoy CPU b-h",
              flush=True)
        for kind in ("voice", "whatsapp"):
            floor = priced_floor(kind, calls[kind], report["probe_ns"])
            total = sum(floor.values())
            measured = report[kind]["ratios"]["CPU b-h (µs/req)"]
            report[kind]["host_calls"] = calls[kind]
            report[kind]["floor_us"] = floor
            report[kind]["ratios"]["b-h / floor"] = measured / total
            print(f"  {kind}: " + ", ".join(f"{name} {n:g}" for name, n in calls[kind].items()), flush=True)
            print(f"    floor {total:.1f} µs (" + ", ".join(f"{name} {us:.1f}" for name, us in floor.items())
                  + f"); measured b-h {measured:.1f} µs: {measured / total:.2f}x the floor", flush=True)
            ratios = report[kind]["ratios"]
            print(f"    in place, (g) makes the same calls and hash under the same load: g-h "
                  f"{ratios['CPU g-h (µs/req)']:.1f} µs; b-h is {ratios['b-h / g-h']:.2f}x that", flush=True)
            steps = {step: report["probe_ns"].get(f"core_{kind}_{step}", 0) / 1000
                     for step in ("on_headers", "on_body", "settle")}
            print("    callback-guard's own steps in the probe's loop (shared data included): "
                  + ", ".join(f"{step} {us:.2f} µs" for step, us in steps.items()), flush=True)
        if args.nonces:
            print(f"\nmemory: {args.nonces:,} unique nonces filling the replay cache to 90 % "
                  f"(max_entries {ninety_percent(args.nonces):,}) ...", flush=True)
            rps = report["voice"]["rows"]["b"]["rps"]
            memory = memory_with_nonces(upstream, args.nonces, rps)
            report["memory"] = memory
            print(f"  through Envoy: {memory['remembered']:,} nonces remembered, "
                  f"{memory['cache_full']:,} refused as replay_cache_full; allocated "
                  f"{memory['allocated_before'] / 2**20:.1f} MiB -> {memory['allocated_after'] / 2**20:.1f} MiB, "
                  f"{memory['bytes_per_nonce']:.1f} bytes per nonce ({memory['fill_seconds']} s to fill)",
                  flush=True)
            report["layouts"] = layouts(upstream, args.nonces)
            for name, row in report["layouts"].items():
                print(f"  {name:>8} layout (probe, {row['slots']:,} slots): {row['refused']:,} of "
                      f"{row['reservations']:,} refused, {row['ns_per_reservation'] / 1000:.2f} µs per "
                      f"reservation, {row['bytes_per_nonce']:.1f} bytes per nonce", flush=True)
        if args.etcd_nonces:
            print(f"\netcd memory: {args.etcd_nonces:,} unique nonces through the etcd store, "
                  f"then a compaction ...", flush=True)
            rps = report["voice"]["rows"]["e"]["rps"]
            fleet = etcd_memory_per_nonce(upstream, etcd, args.etcd_nonces, rps)
            report["etcd_memory"] = fleet
            print(f"  {fleet['nonces']:,} keys, per nonce: database in use "
                  f"{fleet['db_bytes_per_nonce']:.0f} bytes, Go heap in use "
                  f"{fleet['heap_bytes_per_nonce']:.0f} bytes, resident memory "
                  f"{fleet['rss_bytes_per_nonce']:.0f} bytes (heap and RSS include etcd's "
                  f"in-memory raft log, bounded by --snapshot-count)", flush=True)
        (WORK / "report.json").write_text(json.dumps(report, indent=2))
        print(f"\nfull report: {WORK / 'report.json'}")
    finally:
        for proc in PROCS:
            if proc.poll() is None:
                proc.terminate()
        if etcd:
            etcd.remove()


if __name__ == "__main__":
    main()
