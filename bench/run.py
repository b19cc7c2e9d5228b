#!/usr/bin/env python3
"""Side-by-side benchmark (issue 11 item 6): our `run` mode against the Python peers that Home
Assistant users run today, on the same emulator in the same run.

For each router kind (ASUS, Deco) and household size (25, 250, 5 000 clients) it starts the
repo's emulator (examples/bench_emulator.rs) and a local mosquitto on a free port, then:

- ours: `bandwidth2mqtt run` (release build) polling every INTERVAL; after a warm-up, CPU time
  of OUR process (all its threads), requests the
  emulator served, and MQTT messages a subscriber saw, over WINDOWS windows; peak RSS (VmHWM).
  CPU time is the sum of the threads' schedstat run time (ns), utime+stime where missing.
  For 250 clients also the time from start until every client's state (and every discovery
  config) has reached the subscriber: the first full publish.
- the peer: asusrouter 1.21.3 (NETWORK + CPU + RAM + CLIENTS per poll) or tplinkrouterc6u 5.37.0
  (`get_status` per poll) in a venv under target/, the same number of polls after a warm-up,
  its own getrusage CPU and peak RSS.

CPU is CPU time, not wall time, so other load on the machine changes it little; the load
average is printed with the table. Usage (from the repo root):

    cargo build --release --bin bandwidth2mqtt --example bench_emulator
    python3 bench/run.py [--sizes 25,250,5000] [--kinds asus,deco] [--windows 3]
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target/release/bandwidth2mqtt"
EMU = ROOT / "target/release/examples/bench_emulator"
VENV = ROOT / "target/bench-venv"
PEERS = ["asusrouter==1.21.3", "tplinkrouterc6u==5.37.0"]
DECO_PASSWORD = "bench-Owner-pw1"
ASUS_USER, ASUS_PASSWORD = "admin", "router-pass"
INTERVAL = 3.0
TICK = os.sysconf("SC_CLK_TCK")

PEER_SCRIPT = r'''
import asyncio, json, resource, sys, time
kind, url, polls, warm, interval = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
def mark(label):
    # The driver reads the emulator's request count at each mark.
    print(json.dumps({"mark": label}), flush=True)
    sys.stdin.readline()
if kind == "asus":
    from asusrouter import AsusData, AsusRouter
    host, port = url.split("//")[1].split(":")
    async def run():
        router = AsusRouter(hostname=host, username="admin", password="router-pass", port=int(port), use_ssl=False)
        await router.async_connect()
        async def poll():
            for d in (AsusData.NETWORK, AsusData.CPU, AsusData.RAM, AsusData.CLIENTS):
                await router.async_get_data(d, force=True)
        for _ in range(warm):
            await poll()
            await asyncio.sleep(interval)
        mark("start")
        c0 = cpu()
        for _ in range(polls):
            t = time.monotonic()
            await poll()
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - t)))
        c1 = cpu()
        mark("end")
        await router.async_disconnect()
        return c1 - c0
    used = asyncio.run(run())
else:
    from tplinkrouterc6u import TPLinkDecoClient
    client = TPLinkDecoClient(url, "bench-Owner-pw1", timeout=60)
    client.authorize()
    for _ in range(warm):
        client.get_status()
        time.sleep(interval)
    mark("start")
    c0 = cpu()
    for _ in range(polls):
        t = time.monotonic()
        client.get_status()
        time.sleep(max(0.0, interval - (time.monotonic() - t)))
    c1 = cpu()
    mark("end")
    used = c1 - c0
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"cpu_s": used, "polls": polls, "peak_rss_kb": peak_kb}), flush=True)
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_venv():
    python = VENV / "bin/python"
    marker = VENV / ".installed-bench"
    if not marker.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PEERS], check=True)
        marker.write_text("\n".join(PEERS))
    return python


class Emulator:
    """bench_emulator: URL on the first line; each line we write returns the request counts."""

    def __init__(self, kind, clients):
        self.proc = subprocess.Popen([str(EMU), kind, str(clients)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        self.lock = threading.Lock()

    def requests(self):
        with self.lock:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            return json.loads(self.proc.stdout.readline())

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Broker:
    def __init__(self, workdir):
        self.port = free_port()
        conf = Path(workdir) / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Subscriber:
    """mosquitto_sub on everything; counts messages and remembers when each topic first came."""

    def __init__(self, port):
        self.proc = subprocess.Popen(
            ["mosquitto_sub", "-p", str(port), "-h", "127.0.0.1", "-t", "#", "-F", "%t", "-q", "0"],
            stdout=subprocess.PIPE, text=True, bufsize=1)
        self.count = 0
        self.first_seen = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            topic = line.rstrip("\n")
            now = time.monotonic()
            with self.lock:
                self.count += 1
                self.first_seen.setdefault(topic, now)

    def messages(self):
        with self.lock:
            return self.count

    def seen(self):
        with self.lock:
            return dict(self.first_seen)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def cpu_seconds(pid):
    """CPU time of the whole process: the nanosecond run time of every thread (schedstat), or
    utime+stime in clock ticks (10 ms, too coarse for 2 ms polls) where schedstat is missing.
    The bridge's threads (tokio workers) live as long as it does."""
    total, found = 0, False
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
            found = True
        except (OSError, ValueError, IndexError):
            pass
    if found:
        return total / 1e9
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def status_kb(pid, key):
    """A /proc/<pid>/status field in kB: VmHWM (peak RSS), RssAnon (private memory now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def ours(kind, clients, emu, workdir, windows, window_polls, warm_polls):
    broker = Broker(workdir)
    sub = Subscriber(broker.port)
    time.sleep(0.3)
    state_dir = Path(workdir) / "state"
    source = (f'[asus.bench]\nurl = "{emu.url}"\nusername = "{ASUS_USER}"\npassword = "{ASUS_PASSWORD}"\n'
              if kind == "asus" else f'[deco.bench]\nurl = "{emu.url}"\npassword = "{DECO_PASSWORD}"\n')
    config = Path(workdir) / "config.toml"
    config.write_text(
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker.port}"\nclient_id = "bench_{os.getpid()}"\n'
        f'[bridge]\nstate_dir = "{state_dir}"\n[host]\nenabled = false\n'
        f'{source}interval = "{int(INTERVAL)}s"\ntimeout = "60s"\n')
    log = open(Path(workdir) / "bridge.log", "w")
    started = time.monotonic()
    proc = subprocess.Popen([str(BIN), "run", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=log,
                            env={**os.environ, "RUST_LOG": "bandwidth2mqtt=warn"})
    result = {}
    try:
        # First full publish: every client's state, and every discovery config.
        deadline = started + 120
        full_states = full_discovery = None
        while time.monotonic() < deadline and (full_states is None or full_discovery is None):
            seen = sub.seen()
            states = [t for t in seen if t.startswith("bandwidth2mqtt/") and "/" not in t[len("bandwidth2mqtt/"):]
                      and not t.endswith("/bridge")]
            configs = [t for t in seen if t.startswith("homeassistant/device/") and "bridge" not in t]
            if full_states is None and len(states) >= clients:
                full_states = max(seen[t] for t in states) - started
            if full_discovery is None and len(configs) >= clients:
                full_discovery = max(seen[t] for t in configs) - started
            time.sleep(0.05)
        result["first_states_s"] = full_states
        result["first_discovery_s"] = full_discovery
        time.sleep(warm_polls * INTERVAL)
        samples = []
        for _ in range(windows):
            c0, r0, m0 = cpu_seconds(proc.pid), emu.requests()["total"], sub.messages()
            time.sleep(window_polls * INTERVAL)
            c1, r1, m1 = cpu_seconds(proc.pid), emu.requests()["total"], sub.messages()
            samples.append({"cpu_ms": (c1 - c0) * 1000 / window_polls, "requests": (r1 - r0) / window_polls,
                            "msgs": (m1 - m0) / window_polls})
        result["cpu_ms"] = statistics.median(s["cpu_ms"] for s in samples)
        result["cpu_ms_all"] = [round(s["cpu_ms"], 2) for s in samples]
        result["requests"] = statistics.median(s["requests"] for s in samples)
        result["msgs"] = statistics.median(s["msgs"] for s in samples)
        result["peak_rss_mb"] = status_kb(proc.pid, "VmHWM") / 1024
        # Most of the peak is the binary's own pages (file-backed, shared, ~14 MB for a build
        # with the emulators and demo in it); the private part is what the household costs.
        result["anon_rss_mb"] = status_kb(proc.pid, "RssAnon") / 1024
        log.flush()
        text = (Path(workdir) / "bridge.log").read_text()
        result["reconnects"] = text.count("MQTT connection failed")
    finally:
        proc.terminate()
        proc.wait()
        sub.stop()
        broker.stop()
    return result


def peer(python, kind, emu, polls, warm_polls):
    proc = subprocess.Popen([str(python), "-c", PEER_SCRIPT, kind, emu.url, str(polls), str(warm_polls), str(INTERVAL)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    counts = {}
    result = None
    # A peer that hangs (a library waiting on its own long timeout) does not stall the bench.
    guard = threading.Timer((polls + warm_polls) * INTERVAL * 3 + 120, proc.kill)
    guard.start()
    for line in proc.stdout:
        msg = json.loads(line)
        if "mark" in msg:
            counts[msg["mark"]] = emu.requests()["total"]
            proc.stdin.write("\n")
            proc.stdin.flush()
        else:
            result = msg
    proc.wait()
    guard.cancel()
    if result is None:
        return None
    return {
        "cpu_ms": result["cpu_s"] * 1000 / polls,
        "requests": (counts["end"] - counts["start"]) / polls,
        "peak_rss_mb": result["peak_rss_kb"] / 1024,
    }


def fmt(v, digits=1):
    return "–" if v is None else f"{v:.{digits}f}"


def main():
    global BIN, EMU
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="25,250,5000")
    ap.add_argument("--kinds", default="asus,deco")
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--window-polls", type=int, default=5)
    ap.add_argument("--warm-polls", type=int, default=2)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--bin", default=str(BIN), help="the bridge binary to measure")
    ap.add_argument("--emulator", default=str(EMU), help="the bench_emulator binary")
    args = ap.parse_args()
    BIN, EMU = Path(args.bin), Path(args.emulator)
    for path in (BIN, EMU):
        if not path.is_file():
            sys.exit(f"missing {path}: cargo build --release --bin bandwidth2mqtt --example bench_emulator")
    python = None if args.no_peers else ensure_venv()
    rows = []
    for kind in args.kinds.split(","):
        for clients in map(int, args.sizes.split(",")):
            with tempfile.TemporaryDirectory() as workdir:
                emu = Emulator(kind, clients)
                try:
                    o = ours(kind, clients, emu, workdir, args.windows, args.window_polls, args.warm_polls)
                    p = None if python is None else peer(python, kind, emu, args.windows * args.window_polls, args.warm_polls)
                finally:
                    emu.stop()
            rows.append((kind, clients, o, p))
            print(json.dumps({"kind": kind, "clients": clients, "ours": o, "peer": p}), flush=True)
    load = os.getloadavg()
    print(f"\nmachine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"interval {INTERVAL:.0f} s, {args.windows} windows of {args.window_polls} polls (median)\n")
    print("| source | clients | ours CPU ms/poll | peer CPU ms/poll | ratio | ours req/poll | peer req/poll "
          "| ours MQTT msgs/poll | ours peak RSS MB (private now) | peer peak RSS MB | first full publish s (states / discovery) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind, clients, o, p in rows:
        ratio = None if not p or not p["cpu_ms"] else o["cpu_ms"] / p["cpu_ms"]
        first = f"{fmt(o['first_states_s'], 2)} / {fmt(o['first_discovery_s'], 2)}"
        print(f"| {kind} | {clients} | {fmt(o['cpu_ms'], 2)} | {fmt(p and p['cpu_ms'], 2)} | {fmt(ratio, 2)} "
              f"| {fmt(o['requests'])} | {fmt(p and p['requests'])} | {fmt(o['msgs'])} "
              f"| {fmt(o['peak_rss_mb'])} ({fmt(o['anon_rss_mb'])}) "
              f"| {fmt(p and p['peak_rss_mb'])} | {first} |")


if __name__ == "__main__":
    main()
