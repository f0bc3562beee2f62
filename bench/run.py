#!/usr/bin/env python3
"""`make bench`: callback-guard against Envoy without it, against the smallest wasm filter,
and against verification inside a Python app, side by side in one run on this machine.

Envoy runs one worker thread; the upstream is nginx; the load generator is wrk. Each setup
gets the same stream of pre-signed requests (every one a fresh nonce or event id). Two
phases per setup: throughput (many connections) and latency (one connection). Prints
requests/s, p50 and p99, and the ratios b/a, b/f, b/c, then the .wasm size and Envoy's
memory with one million remembered nonces.
"""
import argparse
import base64
import copy
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/e2e"))
from harness import free_port, wait_for  # noqa: E402

import httpx  # noqa: E402

VENV_BIN = Path(sys.executable).parent
WASM = ROOT / "target/wasm32-wasip1/release/callback_guard.wasm"
MINIMAL = ROOT / "bench/minimal-filter/target/wasm32-wasip1/release/minimal_filter.wasm"
TOKEN, SECRET = "bench-auth-token", "bench-whatsapp-secret"
# The registered origin: configuration, not the request, so every setup signs alike.
ORIGIN = "https://callbacks.example.com"
WORK = Path(tempfile.mkdtemp(prefix="callback-guard-bench-"))
PROCS = []


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
    start(["nginx", "-c", str(conf), "-p", str(WORK)])
    wait_for(lambda: listening(port), what="nginx")
    return port


def gunicorn(origin):
    port = free_port()
    env = dict(os.environ, VOBIZ_AUTH_TOKEN=TOKEN, VOBIZ_WHATSAPP_SECRET=SECRET, PUBLIC_ORIGIN=origin)
    start([str(VENV_BIN / "gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{port}",
           "--chdir", str(ROOT / "bench"), "--log-level", "warning", "inapp:app"], env=env)
    wait_for(lambda: listening(port), timeout=30, what="gunicorn")
    return port


def envoy(upstream_port, wasm=None, plugin=None, port=None):
    """Envoy from the shipped config: its plain-HTTP listener only, one worker, no access
    log, with the given wasm filter (or none) in front of the upstream."""
    config = yaml.safe_load((ROOT / "envoy/envoy.yaml").read_text())
    port = port or free_port()
    admin = free_port()
    config["admin"]["address"]["socket_address"]["port_value"] = admin
    listener = copy.deepcopy(config["static_resources"]["listeners"][1])
    config["static_resources"]["listeners"] = [listener]
    listener["address"]["socket_address"]["port_value"] = port
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    manager.pop("access_log", None)
    guard, router = manager["http_filters"]
    if wasm is None:
        manager["http_filters"] = [router]
    else:
        guard["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] = str(wasm)
        guard["typed_config"]["config"]["configuration"]["value"] = json.dumps(plugin or {})
    endpoint = config["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]
    endpoint["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"] = upstream_port
    path = WORK / f"envoy-{port}.yaml"
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
    return proc, port, admin


def guard_plugin(max_entries=1_000_000):
    keys = [{"name": "bench", "env": "VOBIZ_AUTH_TOKEN"}]
    return {"routes": [
        {"name": "voice", "path_prefix": "/vobiz/", "public_origin": ORIGIN,
         "allow_plain_http": True, "keys": keys, "replay": {"max_entries": max_entries}},
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


def measure(name, proc, port, kind, path, lines, seconds):
    cpu_before = cpu_seconds(proc.pid)
    throughput = wrk(port, kind, path, lines["throughput"], connections=32, seconds=seconds)
    cpu_us = (cpu_seconds(proc.pid) - cpu_before) * 1e6 / max(throughput["requests"], 1)
    latency = wrk(port, kind, path, lines["latency"], connections=1, seconds=max(2, seconds // 2))
    row = {"setup": name, "rps": throughput["rps"], "envoy_cpu_us": cpu_us,
           "p50_us": latency["p50_us"], "p99_us": latency["p99_us"],
           "bad": sum(m[k] for m in (throughput, latency) for k in ("non2xx", "errors", "wrapped"))}
    warning = f"   !! {row['bad']} non-2xx, errors or reused lines" if row["bad"] else ""
    print(f"  {name:<36} {row['rps']:>8.0f} req/s   Envoy CPU {cpu_us:>6.1f} µs/req   "
          f"p50 {row['p50_us']:>5} µs   p99 {row['p99_us']:>5} µs{warning}", flush=True)
    return row


def stop(proc):
    proc.terminate()
    proc.wait(timeout=15)


def workload(kind, seconds, upstream, app, lines):
    path = "/vobiz/answer" if kind == "voice" else "/whatsapp/events"
    title = "header-signed V3" if kind == "voice" else "16 KiB body-signed WhatsApp"
    print(f"\n{title}, replay protection on: {seconds} s at 32 connections (req/s), "
          f"then {max(2, seconds // 2)} s at 1 connection (latency)", flush=True)
    rows = {}
    for key, name, wasm, upstream_port in [
        ("a", "(a) Envoy, no filter", None, upstream),
        ("f", "(f) Envoy + minimal wasm filter", MINIMAL, upstream),
        ("b", "(b) Envoy + callback-guard", WASM, upstream),
        ("c", "(c) Envoy -> Python app verifying", None, app),
    ]:
        proc, port, _ = envoy(upstream_port, wasm, guard_plugin() if wasm == WASM else {})
        rows[key] = measure(name, proc, port, kind, path, lines, seconds)
        stop(proc)
    a, f, b, c = (rows[k] for k in "afbc")
    ratios = {"b/a": b["rps"] / a["rps"], "b/f": b["rps"] / f["rps"], "b/c": b["rps"] / c["rps"],
              "f/a": f["rps"] / a["rps"], "c/a": c["rps"] / a["rps"],
              "p99 b-f (µs)": b["p99_us"] - f["p99_us"], "p50 b-f (µs)": b["p50_us"] - f["p50_us"],
              "CPU b-f (µs/req)": b["envoy_cpu_us"] - f["envoy_cpu_us"],
              "CPU f-a (µs/req)": f["envoy_cpu_us"] - a["envoy_cpu_us"]}
    print("  " + "   ".join(f"{k} {v:+.1f}" if "µs" in k else f"{k} {v:.2f}"
                            for k, v in ratios.items()), flush=True)
    return {"rows": rows, "ratios": ratios}


def stat(admin, name):
    text = httpx.get(f"http://127.0.0.1:{admin}/stats?filter=^{name}$", timeout=5).text
    return int(text.split(": ")[1]) if ": " in text else 0


def memory_with_nonces(upstream, count, rps_hint):
    """Envoy's allocated memory before and after remembering `count` nonces."""
    lines = signed_voice("/vobiz/answer", count, start=10**12)
    proc, port, admin = envoy(upstream, WASM, guard_plugin(max_entries=2 * count))
    accepted = "wasmcustom.callback_guard.accepted.route.voice.scheme.v3.key.bench"
    before = stat(admin, "server.memory_allocated")
    started = time.monotonic()
    # One pass over the file at the measured rate, with margin; reuse only hits the cache.
    seconds = int(count / max(rps_hint, 1000) * 1.5) + 5
    env = dict(os.environ, BENCH_FILE=str(lines), BENCH_KIND="voice", BENCH_PATH="/vobiz/answer",
               BENCH_THREADS="1")
    subprocess.run(["wrk", "-t", "1", "-c", "32", "-d", f"{seconds}s", "-s",
                    str(ROOT / "bench/requests.lua"), f"http://127.0.0.1:{port}/vobiz/answer"],
                   env=env, capture_output=True, text=True, check=True)
    remembered = stat(admin, accepted)
    after = stat(admin, "server.memory_allocated")
    stop(proc)
    return {"remembered": remembered, "allocated_before": before, "allocated_after": after,
            "bytes_per_nonce": (after - before) / max(remembered, 1),
            "fill_seconds": round(time.monotonic() - started)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, help="throughput phase per setup")
    parser.add_argument("--nonces", type=int, default=1_000_000, help="for the memory phase (0: skip)")
    args = parser.parse_args()
    print(f"callback-guard bench: {os.cpu_count()} cores, Envoy 1.40 with one worker thread, "
          f"nginx upstream, wrk; ratios only compare within this run")
    print(f"callback_guard.wasm {WASM.stat().st_size:,} bytes; minimal filter "
          f"{MINIMAL.stat().st_size:,} bytes", flush=True)
    report = {"wasm_bytes": WASM.stat().st_size}
    try:
        upstream = nginx()
        app = gunicorn(ORIGIN)
        voice = {"throughput": signed_voice("/vobiz/answer", 300_000),
                 "latency": signed_voice("/vobiz/answer", 50_000, start=10**9)}
        report["voice"] = workload("voice", args.seconds, upstream, app, voice)
        whatsapp = {"throughput": signed_whatsapp(200_000, "t"),
                    "latency": signed_whatsapp(30_000, "l")}
        report["whatsapp"] = workload("whatsapp", args.seconds, upstream, app, whatsapp)
        if args.nonces:
            print(f"\nmemory: filling the replay cache with {args.nonces:,} unique nonces ...", flush=True)
            rps = report["voice"]["rows"]["b"]["rps"]
            memory = memory_with_nonces(upstream, args.nonces, rps)
            report["memory"] = memory
            print(f"  {memory['remembered']:,} nonces remembered: allocated "
                  f"{memory['allocated_before'] / 2**20:.1f} MiB -> {memory['allocated_after'] / 2**20:.1f} MiB, "
                  f"{memory['bytes_per_nonce']:.1f} bytes per nonce ({memory['fill_seconds']} s to fill)")
        (WORK / "report.json").write_text(json.dumps(report, indent=2))
        print(f"\nfull report: {WORK / 'report.json'}")
    finally:
        for proc in PROCS:
            if proc.poll() is None:
                proc.terminate()


if __name__ == "__main__":
    main()
