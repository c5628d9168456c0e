"""What open dashboards cost the engine: the P1 dig load with and without 5 dashboards open.

Method: one `cairn serve` pinned to core 0, with the P1 bench hunt (the hunt vs-ceiling creates).
The load is the P1 benchmark's: wrk, 1 thread, 64 connections, /work/shared/bench/dig.lua (20,000
players digging), pinned to core 1. Three modes, alternating in rounds (off, browser, http, then
reversed) after a discarded warm-up:

- off: no dashboard (the five tabs parked on about:blank: no polling, no event stream);
- browser: five dashboards in one headless Chromium (five tabs, each its own browser context,
  signed in and showing the bench hunt, every map live before wrk starts). The browser is pinned
  to core 1 under SCHED_IDLE (`chrt --idle`), so it competes with wrk, never with the engine, and
  runs only when wrk leaves core 1 idle; this script and Playwright's driver are on core 1 too;
- http: the same requests five dashboards make (event stream, live view every second, hunts list
  every 3 s, health every 2 s, leaderboard every 5 s) from five threads of this script, without a
  browser: what the dashboards cost the engine itself, apart from the browser's CPU on core 1.

Reported per mode: median requests/s and its ratio to off, the engine's CPU use and requests per
engine CPU-second, wrk's CPU use, and the dashboard requests/s the engine served during the run.

Usage: flock -x /tmp/cairn-bench.lock .venv/bin/python benchmarks/bench_dashboard.py [rounds] [seconds]
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
DIG_LUA = Path(os.environ.get("DIG_LUA", "/work/shared/bench/dig.lua"))
PORT = int(os.environ.get("PORT", "7491"))
ADMIN, GAME = "bench-admin-key-0123", "bench-game-key-01234"
DASHBOARDS = 5
MODES = ("off", "browser", "http")
HUNT = (
    b'{"id":"bench","name":"Bench","world":"overworld","area":{"min":[-500,0,-500],"max":[500,320,500]},'
    b'"treasures":200,"spawn":{"tags_any":["surface"],"min_spacing":8},"dig":{"reach":6,"tolerance":1},'
    b'"hints":{"cooldown":"0s"},"duration":"2h"}'
)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def post(url: str, body: bytes, key: str) -> None:
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("Content-Type", "application/json")
    urllib.request.urlopen(req, timeout=60).read()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dashboard_requests(base: str) -> int:
    """Requests served so far on the dashboard's data routes (from /metrics, served to loopback)."""
    text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    return sum(int(n) for n in re.findall(r'cairn_requests_total\{route="dashboard_\w+",code="\d+"\} (\d+)', text))


def wrk(base: str, seconds: int) -> float:
    env = {**os.environ, "CAIRN_GAME_KEY": GAME, "HUNT": "bench"}
    cmd = ["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{seconds}s", "-s", str(DIG_LUA), base]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m is None:
        raise RuntimeError(out)
    if bad and int(bad.group(1)) > 0.5 * float(m.group(1)) * seconds:
        raise RuntimeError(f"most requests failed:\n{out}")
    return float(m.group(1))


def browser_cpu() -> float:
    """CPU time of every running Chromium process so far."""
    total = 0.0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                if "chrom" in (d / "comm").read_text():
                    total += cpu_seconds(int(d.name))
    return total


def children_cpu() -> float:
    """CPU time of finished child processes (wrk) so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class Emulated:
    """Five dashboards' requests without a browser: each an event stream and the same polls."""

    def __init__(self, base: str) -> None:
        self.host, self.port = base.split("//")[1].split(":")
        self.stop = threading.Event()
        self.streams: list[http.client.HTTPConnection] = []
        self.threads = [
            threading.Thread(target=f, daemon=True) for _ in range(DASHBOARDS) for f in (self.poll, self.sse)
        ]
        for t in self.threads:
            t.start()

    def conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, int(self.port), timeout=30)

    def poll(self) -> None:
        c, hdr, n = self.conn(), {"Authorization": f"Bearer {ADMIN}"}, 0
        plan = [("/v1/hunts/bench/live", 1), ("/v1/dashboard/hunts", 3), ("/v1/admin/health", 2),
                ("/v1/leaderboards/weekly?limit=15", 5)]  # fmt: skip
        seen = -1  # like the page: a view it has already is answered with {"same": true}
        while not self.stop.is_set():
            for path, every in plan:
                if n % every == 0:
                    c.request("GET", path + (f"?seen={seen}" if path.endswith("/live") else ""), headers=hdr)
                    body = c.getresponse().read()
                    if path.endswith("/live"):
                        seen = json.loads(body)["seq"]
            n += 1
            self.stop.wait(1.0)
        c.close()

    def sse(self) -> None:
        c = self.conn()
        c.request("GET", "/v1/events?hunt=bench", headers={"Authorization": f"Bearer {ADMIN}"})
        r = c.getresponse()
        self.streams.append(c)
        with contextlib.suppress(OSError, ValueError, http.client.HTTPException):  # ends at close()
            while not self.stop.is_set() and r.read1(65536):
                pass

    def close(self) -> None:
        self.stop.set()
        for c in self.streams:
            with contextlib.suppress(OSError):
                c.sock.shutdown(socket.SHUT_RDWR)
        for t in self.threads:
            t.join(5)


def open_dashboards(pages: list[Page], base: str) -> None:
    for pg in pages:
        pg.goto(base + "/dashboard")
    for pg in pages:
        pg.wait_for_selector('#map[data-hunt="bench"]', timeout=30_000)
        pg.wait_for_selector("#conn.live", timeout=30_000)


def park(pages: list[Page]) -> None:
    for pg in pages:
        pg.goto("about:blank")


def main() -> int:
    os.sched_setaffinity(0, {1})  # this script and Playwright's driver stay off the engine's core
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    data = Path(tempfile.mkdtemp(prefix="cairn-bench-dash-"))
    env = {**os.environ, "CAIRN_ADMIN_KEY": ADMIN, "CAIRN_GAME_KEY": GAME}
    cairn = str(ROOT / ".venv" / "bin" / "cairn")
    log = (data / "serve.log").open("wb")  # open for the server's lifetime
    serve = subprocess.Popen(
        ["taskset", "-c", "0", cairn, "serve", "--port", str(PORT), "--data-dir", str(data)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{PORT}"
    wrapper = data / "chromium-core1"
    wrapper.write_text('#!/bin/sh\nexec chrt --idle 0 taskset -c 1 /usr/bin/chromium "$@"\n')
    wrapper.chmod(0o755)
    try:
        for _ in range(300):
            if serve.poll() is not None:
                raise RuntimeError("cairn serve exited:\n" + (data / "serve.log").read_text()[-3000:])
            try:
                urllib.request.urlopen(base + "/readyz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        post(base + "/v1/hunts", HUNT, ADMIN)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(wrapper), headless=True, args=CHROMIUM_ARGS)
            pages = []
            for _ in range(DASHBOARDS):
                ctx = browser.new_context(viewport={"width": 1400, "height": 860})
                pg = ctx.new_page()
                pg.goto(base + "/dashboard")
                pg.fill("#key", ADMIN)
                pg.click("#login-form button[type=submit]")
                pg.wait_for_selector('#map[data-hunt="bench"]', timeout=30_000)
                pages.append(pg)
            park(pages)
            wrk(base, 3)  # warm-up: fills the player table (20,000 players), discarded
            rps: dict[str, list[float]] = {m: [] for m in MODES}
            eff: dict[str, list[float]] = {m: [] for m in MODES}  # requests per engine CPU-second
            for i in range(rounds):
                order = MODES if i % 2 == 0 else MODES[::-1]
                for mode in order:
                    emulated = None
                    if mode == "browser":
                        open_dashboards(pages, base)
                    elif mode == "http":
                        emulated = Emulated(base)
                    time.sleep(2)  # dashboards polling, streaming and drawing before the load starts
                    d0 = dashboard_requests(base)
                    c0, w0, b0, t0 = cpu_seconds(serve.pid), children_cpu(), browser_cpu(), time.monotonic()
                    r = wrk(base, seconds)
                    wall = time.monotonic() - t0
                    busy = (cpu_seconds(serve.pid) - c0) / wall
                    wrk_busy = (children_cpu() - w0) / wall
                    browser_busy = (browser_cpu() - b0) / wall
                    polls = (dashboard_requests(base) - d0 - 1) / wall
                    note = ""
                    if mode == "browser":
                        drawn = [pg.get_attribute("#map", "data-players") for pg in pages]
                        note = f" players drawn={drawn}"
                        if i == 0:
                            ps = subprocess.run(["ps", "-eo", "cls=,psr=,comm="], capture_output=True, text=True).stdout
                            procs = [ln.split() for ln in ps.splitlines() if "chrom" in ln]
                            note += f" chromium (class, core): {sorted({(c, r_) for c, r_, _ in procs})}"
                        park(pages)
                    if emulated is not None:
                        emulated.close()
                    rps[mode].append(r)
                    eff[mode].append(r / busy)
                    print(f"round {i + 1} {mode:7s} rps={r:,.0f} engine cpu={100 * busy:.0f}% "
                          f"wrk cpu={100 * wrk_busy:.0f}% browser cpu={100 * browser_busy:.0f}% "
                          f"rps/engine-cpu={r / busy:,.0f} "
                          f"dashboard requests/s={polls:.1f}{note}", flush=True)  # fmt: skip
            browser.close()
        # Engine time spent in the dashboard's own routes, from /metrics (served to loopback).
        text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
        spent = 0.0
        for route in ("dashboard_hunts", "dashboard_map", "dashboard_live", "dashboard_health"):
            n = re.search(rf'cairn_request_seconds_count{{route="{route}"}} (\d+)', text)
            t = re.search(rf'cairn_request_seconds_sum{{route="{route}"}} ([\d.]+)', text)
            if n and t and int(n.group(1)):
                spent += float(t.group(1))
                print(f"{route}: {n.group(1)} requests, mean {1000 * float(t.group(1)) / int(n.group(1)):.2f} ms")
        print(f"handler time in dashboard routes: {spent:.2f}s over {2 * rounds} runs of {seconds}s (+ set-up)")
        base_rps, base_eff = statistics.median(rps["off"]), statistics.median(eff["off"])
        print(f"off: median {base_rps:,.0f} rps  {[round(x) for x in rps['off']]}")
        for mode in MODES[1:]:
            m = statistics.median(rps[mode])
            pairs = statistics.median(b / a for a, b in zip(rps["off"], rps[mode], strict=True))
            e = statistics.median(eff[mode])
            print(f"{mode} ({DASHBOARDS} dashboards): median {m:,.0f} rps  {[round(x) for x in rps[mode]]}")
            print(f"  ratio {mode}/off = {m / base_rps:.3f} (cost {100 * (1 - m / base_rps):.1f}%), "
                  f"median of per-round ratios {pairs:.3f}; "
                  f"requests per engine CPU-second {e / base_eff:.3f} of off")  # fmt: skip
        return 0
    finally:
        serve.terminate()
        serve.wait(30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
