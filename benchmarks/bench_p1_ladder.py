"""P1's ladder, live: how near the ceiling a Python dig can get on this machine, rung by rung.

`vs-ceiling` compares the whole Cairn dig with the ceiling. This runs four servers under the same
`wrk` load as `vs-ceiling` (`../shared/bench/dig.lua`, 64 connections, `wrk` pinned to core 1, the
server to core 0), alternated round by round so that a noisy machine disturbs them alike:

- `ceiling`: `../shared/bench/ceiling.py`;
- `transport`: the real `cairn serve` stack with the dig route's handler replaced by one that
  returns a constant 200 body (parsing, routing, the `Request`, the fast path, the reply);
- `minimal`: the same stack with a dig handler that does only what a dig must do for `dig.lua`'s
  requests, written as one flat function over the engine's own state: the key (once checked), the body's
  schema, the player's movement check and dig token bucket, the hunt's state and reach, and the
  temperature tile. No key quota, no latency histogram, no player-id pattern, no engine call. It is
  a bound, not a product: it hands any other case (a new player, a player with a claim, a dig
  near a treasure) to the real handler;
- `cairn`: the real dig.

For each: requests per second (the ratio to the ceiling's in the same round is what P1 measures)
and the server's CPU time per request, read from /proc. So the ratio that a perfect transport, or
a dig with nothing but its rules, would reach here is measured, not estimated.

`--players N` (default 20,000, `dig.lua`'s) changes how many players the requests come from; with it
the per-player and per-key dig limits are raised, as a few players then dig faster than a real
server's would allow. Fewer players keep their state in the CPU's caches: the difference tells what
the players' cold state costs.

Run by hand, not in pytest (a round is 4 × (seconds + ~2 s)):
    flock -x /tmp/cairn-bench.lock .venv/bin/python benchmarks/bench_p1_ladder.py [--rounds 5] [--seconds 8]
"""

import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dig_budget import ADMIN, GAME, HUNT, SHARED  # the same keys, hunt and shared/bench

PORT = 7483
RUNGS = ("ceiling", "transport", "minimal", "cairn")
DIG_LUA_PLAYERS = 20_000


def minimal_handler(api: Any, real: Any) -> Any:
    """The `minimal` rung's dig handler (see the docstring): the dig's rules and nothing else."""
    import msgspec

    from cairn.core import hints
    from cairn.core.engine import MISSES
    from cairn.net import schemas

    class Dig(schemas.Body):  # the dig body's schema, without the player-id pattern
        player: str
        pos: schemas.Position
        at: schemas.Position
        request_id: schemas.RequestId
        teleport: bool = False

    decode = msgspec.json.Decoder(Dig).decode
    replies = [msgspec.json.encode(m.result) for m in MISSES]
    eng = api.rt.engine
    players, hunts, by_player, verified, clock = eng.players, eng.hunts, eng.by_player, api.verified_keys, api.clock
    lim = eng.limits
    speed, slack = float(lim.max_speed), float(lim.movement_slack)
    rate, burst = float(lim.dig_rate), float(lim.dig_burst)
    shift, mask, near = hints.TILE_SHIFT, hints.TILE - 1, hints.NEAR_FLAG

    def dig(req: Any) -> Any:
        if req.authorization not in verified:
            return real(req)  # the full check, which remembers a good key
        b = decode(req.body)
        player = b.player
        p = players.get(player)
        h = hunts.get(req.params["hunt"])
        if p is None or player in by_player or h is None or b.teleport:
            return real(req)
        now = clock()
        if h.ended is not None or not h.starts_at <= now < h.ends_at or h.paused is not None:
            return real(req)
        pos, at = b.pos, b.at
        dx, dy, dz = pos[0] - at[0], pos[1] - at[1], pos[2] - at[2]
        if dx * dx + dy * dy + dz * dz > h.reach * h.reach:
            return real(req)
        last = p.last_pos
        if last is not None:
            dt = now - p.last_t
            mx, my, mz = pos[0] - last[0], pos[1] - last[1], pos[2] - last[2]
            bound = speed * dt + slack if dt > 0.0 else slack
            if mx * mx + my * my + mz * mz > bound * bound:
                return real(req)
        tokens = p.tokens + (now - p.tokens_t) * rate
        if tokens > burst:
            tokens = burst
        if tokens < 1.0:
            return real(req)
        ax, az = at[0], at[2]
        tile = h.tiles.get((ax >> shift, az >> shift))
        if tile is None:
            return real(req)
        band = tile[((ax & mask) << shift) | (az & mask)]
        if band >= near:
            return real(req)
        p.last_pos, p.last_t, p.tokens, p.tokens_t = pos, now, tokens - 1.0, now
        return replies[band]

    return dig


async def serve(rung: str, port: int, data: str, unlimited: bool) -> None:
    """One Cairn rung on `port` until SIGTERM."""
    from cairn import config as configmod
    from cairn.bootstrap import make_runtime
    from cairn.net.server import Service

    cfg = configmod.Config()
    cfg.server.data_dir, cfg.server.port = data, port
    if unlimited:
        cfg.limits.dig_rate = cfg.limits.key_dig_rate = cfg.limits.dig_burst = cfg.limits.key_dig_burst = 10**9
    svc = Service(cfg, lambda c: make_runtime(c, data))
    await svc.start()
    assert svc.server is not None and svc.api is not None
    route = svc.server.router.resolve(b"/v1/hunts/bench/dig")[2]["POST"]  # type: ignore[index]
    real = route.handler
    if rung == "transport":
        constant = b'{"result":"miss","temperature":"cold"}'
        route.handler = lambda req: constant
    elif rung == "minimal":
        route.handler = minimal_handler(svc.api, real)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await svc.stop()


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait_ready(port: int, proc: subprocess.Popen[bytes], log: Any) -> None:
    for _ in range(150):
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the server exited:\n{log.read().decode()}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no server came up on {port}")


def measure(rung: str, seconds: int, conns: int, players: int) -> tuple[float, float]:
    """(requests/s, server CPU µs per request) of one rung, from a fresh server."""
    env = dict(os.environ, CAIRN_ADMIN_KEY=ADMIN, CAIRN_GAME_KEY=GAME, HUNT="bench", PLAYERS=str(players))
    with tempfile.TemporaryDirectory(prefix="cairn-ladder-") as data:
        if rung == "ceiling":
            cmd = [sys.executable, str(SHARED / "ceiling.py"), str(PORT)]
        else:
            cmd = [sys.executable, __file__, "--serve", rung, "--data", data]
            if players != DIG_LUA_PLAYERS:
                cmd.append("--unlimited")
        log = open(Path(data) / "server.log", "w+b")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen(["taskset", "-c", "0", *cmd], env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            if rung == "ceiling":
                time.sleep(1)
            else:
                wait_ready(PORT, proc, log)
                req = urllib.request.Request(
                    f"http://127.0.0.1:{PORT}/v1/hunts", data=HUNT, method="POST",
                    headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
                )  # fmt: skip
                urllib.request.urlopen(req, timeout=10).read()
            t0 = cpu_ticks(proc.pid)
            out = subprocess.run(
                ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "-s", str(SHARED / "dig.lua"),
                 f"http://127.0.0.1:{PORT}"],
                env=env, capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            ticks = cpu_ticks(proc.pid) - t0
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
    if re.search(r"Non-2xx", out):
        raise RuntimeError(f"{rung}: non-2xx replies\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    n = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rps, ticks / os.sysconf("SC_CLK_TCK") / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--players", type=int, default=DIG_LUA_PLAYERS)
    ap.add_argument("--rungs", default=",".join(RUNGS), help="which rungs, comma-separated (ceiling is always run)")
    ap.add_argument("--serve", choices=RUNGS[1:], help=argparse.SUPPRESS)
    ap.add_argument("--unlimited", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        import uvloop

        uvloop.run(serve(a.serve, PORT, a.data, a.unlimited))
        return
    rungs = ["ceiling", *(r for r in RUNGS[1:] if r in a.rungs.split(","))]
    rps: dict[str, list[float]] = {r: [] for r in rungs}
    cpu: dict[str, list[float]] = {r: [] for r in rungs}
    ratio: dict[str, list[float]] = {r: [] for r in rungs}
    for n in range(a.rounds):
        for rung in rungs:
            r, c = measure(rung, a.seconds, a.connections, a.players)
            rps[rung].append(r)
            cpu[rung].append(c)
        for rung in rungs:
            ratio[rung].append(rps[rung][-1] / rps["ceiling"][-1])
        print(f"round {n + 1}: " + "  ".join(f"{r} {rps[r][-1]:,.0f}/s {cpu[r][-1]:.2f}µs" for r in rungs), flush=True)
    print(f"\n{a.rounds} rounds of {a.seconds} s, {a.connections} connections, {a.players:,} players; medians:")
    print(f"{'rung':10} {'req/s':>9} {'CPU µs/req':>11} {'ratio to ceiling':>17}   per-round ratios")
    for r in rungs:
        runs = " ".join(f"{x:.2f}" for x in ratio[r])
        print(f"{r:10} {statistics.median(rps[r]):9,.0f} {statistics.median(cpu[r]):11.2f} "
              f"{statistics.median(ratio[r]):17.2f}   {runs}")  # fmt: skip


if __name__ == "__main__":
    main()
