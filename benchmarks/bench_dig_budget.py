"""Where P1's time goes, without the kernel: the Python cost of one dig request, in process.

The real `cairn serve` stack (Service, router, auth, quotas, metrics, engine, an embedded store in
a temporary directory) is fed the same request bytes as `../shared/bench/dig.lua` sends (20,000
players, each at its own spot), through `HttpProtocol.data_received` on 64 connections whose
transport only counts what is written. No socket, no syscall, no event-loop iteration: what is
timed is the interpreter's and the C extensions' work per request. Three variants, alternated in
every round so that a noisy machine disturbs them alike:

- `cairn`: the full dig;
- `transport`: the same stack with the dig route's handler replaced by one that returns a constant
  200 body: parsing, routing, the `Request`, the fast path and the reply template;
- `ceiling`: the protocol class of `../shared/bench/ceiling.py`, fed the same bytes.

Live, both servers also pay the kernel and uvloop for every request: about 8 µs on the machines of
the seventh session, 4.3 µs on the eighth's (`perf`, benchmarks/RESULTS.md). The printed `live
estimate` adds `--kernel-us` to both, and is only an estimate: `bench_p1_ladder.py` measures the
same rungs live.

Per-player and per-key rate limits are raised: in process the digs come faster than a real server's
clock lets them, and a refused dig would time the error path instead.
The cork (`Cork`) is off for the rounds: no loop iteration ends in them, so replies are written at once.

Run by hand, not in pytest:
    flock -x /tmp/cairn-bench.lock taskset -c 0 .venv/bin/python benchmarks/bench_dig_budget.py \
        [--rounds 7] [--players 20000] [--grouped] [--kernel-us 8]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvloop

from cairn import config as configmod
from cairn.bootstrap import make_runtime
from cairn.net.protocol import HttpProtocol
from cairn.net.server import Service

SHARED = Path(os.environ.get("CAIRN_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "bench"
ADMIN, GAME = "bench-admin-key-0123", "bench-game-key-0123"
HUNT = (
    b'{"id":"bench","name":"Bench","world":"overworld","area":{"min":[-500,0,-500],"max":[500,320,500]},'
    b'"treasures":200,"spawn":{"tags_any":["surface"],"min_spacing":8},"dig":{"reach":6,"tolerance":1},'
    b'"hints":{"cooldown":"0s"},"duration":"2h"}'
)  # vs-ceiling's bench hunt
CONNS = 64


def post(path: str, key: str, body: bytes) -> bytes:
    """A request with wrk's head for dig.lua: Host, Content-Type, Authorization, Content-Length."""
    head = b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:7481\r\nContent-Type: application/json\r\n" % path.encode()
    return head + b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s" % (key.encode(), len(body), body)


def digs(n: int, players: int, tag: int, grouped: bool = False) -> list[bytes]:
    """Requests as dig.lua makes them: a random player, digging within 3 blocks of its own spot,
    each with a request id of its own. `grouped`: each player's digs back to back instead (its state
    stays in the cache from one to the next), to tell what the players' cold state costs."""
    rnd = random.Random(1)
    out = []
    for i in range(n):
        p = 1 + i * players // n if grouped else rnd.randint(1, players)
        x, z = (p * 7919) % 1000 - 500, (p * 104729) % 1000 - 500
        ax, az = x + rnd.randint(-3, 3), z + rnd.randint(-3, 3)
        body = b'{"player":"p%d","pos":[%d,64,%d],"at":[%d,63,%d],"request_id":"r%d-%d"}' % (p, x, z, ax, az, tag, i)
        out.append(post("/v1/hunts/bench/dig", GAME, body))
    return out


class Sink:
    """A transport that keeps nothing: counts the replies and their status codes."""

    def __init__(self) -> None:
        self.status: dict[bytes, int] = {}
        self.replies = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.replies += data.count(b"HTTP/1.1 ")  # held replies of one connection come in one write
        code = data[9:12]
        self.status[code] = self.status.get(code, 0) + 1

    def writelines(self, chunks: list[bytes]) -> None:
        for c in chunks:
            self.write(c)

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def close(self) -> None:
        self.closing = True

    abort = close

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def feed(conns: list[Any], requests: list[bytes]) -> float:
    """Microseconds per request, fed round-robin over the connections."""
    n = len(conns)
    t0 = time.perf_counter()
    for i, r in enumerate(requests):
        conns[i % n].data_received(r)
    return (time.perf_counter() - t0) / len(requests) * 1e6


async def main(rounds: int, per_round: int, players: int, grouped: bool, kernel_us: float) -> None:
    os.environ.update(CAIRN_ADMIN_KEY=ADMIN, CAIRN_GAME_KEY=GAME)
    data = tempfile.mkdtemp(prefix="cairn-budget-")
    cfg = configmod.Config()
    cfg.server.data_dir = data
    cfg.limits.dig_rate = cfg.limits.key_dig_rate = cfg.limits.dig_burst = cfg.limits.key_dig_burst = 10**9
    svc = Service(cfg, lambda c: make_runtime(c, data))
    await svc.start()
    assert svc.server is not None
    server = svc.server
    admin_sink = Sink()
    admin = HttpProtocol(server)
    admin.connection_made(admin_sink)  # type: ignore[arg-type]
    admin.data_received(post("/v1/hunts", ADMIN, HUNT))
    await asyncio.sleep(0.5)  # the hunt's creation is durable
    assert admin_sink.status == {b"201": 1}, admin_sink.status

    spec = importlib.util.spec_from_file_location("ceiling", SHARED / "ceiling.py")
    assert spec is not None and spec.loader is not None
    ceiling = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ceiling)

    sinks = [Sink() for _ in range(CONNS)]
    cairn_conns = []
    for s in sinks:
        p = HttpProtocol(server)
        p.connection_made(s)  # type: ignore[arg-type]
        cairn_conns.append(p)
    ceiling_conns = []
    for _ in range(CONNS):
        c = ceiling.Ceiling()
        c.connection_made(Sink())
        ceiling_conns.append(c)

    route = server.router.resolve(b"/v1/hunts/bench/dig")[2]["POST"]  # type: ignore[index]
    real = route.handler
    constant = b'{"result":"miss","temperature":"cold"}'

    def fixed(req: Any) -> bytes:
        return constant

    def answered() -> int:
        return sum(s.replies for s in sinks)

    # Warm-up: every player tracked, every path warm, and the treasures that these spots find claimed,
    # so that the rounds time the steady state (misses, and `taken` where a spot found one). A claim
    # waits for its commit, and the requests behind it on its connection with it: let them all finish.
    feed(cairn_conns, digs(per_round, players, 0, grouped))
    for _ in range(100):
        await asyncio.sleep(0.02)
        if answered() == per_round:
            break
    results: dict[str, list[float]] = {"cairn": [], "transport": [], "ceiling": []}
    for r in range(rounds):
        requests = digs(per_round, players, r + 1, grouped)
        for name in results:
            server._cork.on, server._cork.scheduled = False, True
            if name == "ceiling":
                results[name].append(feed(ceiling_conns, requests))
            else:
                route.handler = real if name == "cairn" else fixed
                before = answered()
                results[name].append(feed(cairn_conns, requests))
                late = per_round - (answered() - before)
                assert late == 0, f"{name}: {late} requests not answered at once (a claim waited for its commit)"
            await asyncio.sleep(0)  # one loop iteration between variants
    route.handler = real
    bad = {code: n for s in sinks for code, n in s.status.items() if code != b"200"}
    assert not bad, f"non-200 replies: {bad}"

    med = {name: statistics.median(v) for name, v in results.items()}
    order = "each player's digs back to back" if grouped else "in random order"
    print(f"{per_round} requests per round, {rounds} rounds, {players} players {order}; µs per request:")
    for name, v in results.items():
        print(f"  {name:9} median {med[name]:6.2f}   runs {' '.join(f'{x:.2f}' for x in v)}")
    print(f"  app (cairn - transport)      {med['cairn'] - med['transport']:6.2f}")
    print(f"  transport - ceiling          {med['transport'] - med['ceiling']:6.2f}")
    live_c = med["ceiling"] + kernel_us
    print(f"  live estimate, +{kernel_us:g} µs each: P1 ratio {live_c / (med['cairn'] + kernel_us):.2f}"
          f" (transport alone {live_c / (med['transport'] + kernel_us):.2f})")  # fmt: skip
    for p in [admin, *cairn_conns]:
        p.connection_lost(None)
    await svc.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--players", type=int, default=20_000)
    ap.add_argument("--grouped", action="store_true", help="each player's digs back to back")
    ap.add_argument("--kernel-us", type=float, default=8.0, help="kernel and loop µs per request, live")
    a = ap.parse_args()
    uvloop.run(main(a.rounds, a.requests, a.players, a.grouped, a.kernel_us))
