"""What a dig's per-player state costs, by how many players there are, and what a packed layout would.

Every dig reads and writes its player's state (`Engine._move`: the movement check and the dig token
bucket). With 20,000 players, as in the P1 load (`dig.lua`), that state is cold in the cache on each
dig; the ceiling keeps no per-player state at all. This times, per dig, in one process:

- `engine`: the real `Engine._move` after decoding a dig body with the API's decoder, less the
  decode alone (the baseline, timed in the same round);
- `packed`: the same checks on a candidate layout, each player's numbers packed in one
  `array('d')` row (8 doubles) behind a name-to-offset dict, less the same baseline.

Rounds alternate the variants, so a noisy machine disturbs them alike; the median of the rounds is
printed. Run by hand, not in pytest:
    flock -x /tmp/cairn-bench.lock taskset -c 0 .venv/bin/python benchmarks/bench_player_state.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import functools
import math
import random
import statistics
import sys
import time
from array import array
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cairn.core.engine import Engine
from cairn.core.players import Limits
from cairn.net.api import dec_dig

DIGS = 100_000


def bodies(players: int) -> list[bytes]:
    """Dig bodies as `../shared/bench/dig.lua` makes them: a random player of `players`, at its own spot."""
    rnd = random.Random(1)
    out = []
    for i in range(DIGS):
        p = rnd.randint(1, players)
        x, z = (p * 7919) % 1000 - 500, (p * 104729) % 1000 - 500
        ax, az = x + rnd.randint(-3, 3), z + rnd.randint(-3, 3)
        out.append(b'{"player":"p%d","pos":[%d,64,%d],"at":[%d,63,%d],"request_id":"r-%d"}' % (p, x, z, ax, az, i))
    return out


class Packed:
    """The candidate layout: a dict from player to the offset of its row of 8 doubles in one array
    (x, y, z, last_t, tokens, tokens_t, flags, has_pos), so that a player's numbers share a cache line."""

    def __init__(self, rate: float, burst: float, max_speed: float, slack: float) -> None:
        self.offset: dict[str, int] = {}
        self.rows = array("d")
        self.rate, self.burst, self.max_speed, self.slack = rate, burst, max_speed, slack

    def move(self, player: str, pos: tuple[int, int, int], now: float) -> None:
        o = self.offset.get(player)
        r = self.rows
        if o is None:
            o = self.offset[player] = len(r)
            r.extend((0.0, 0.0, 0.0, 0.0, 0.0, -math.inf, 0.0, 0.0))
        x, y, z = pos
        if r[o + 7]:
            dt = now - r[o + 3]
            dx, dy, dz = x - r[o], y - r[o + 1], z - r[o + 2]
            limit = self.max_speed * dt + self.slack if dt > 0.0 else self.slack
            if dx * dx + dy * dy + dz * dz > limit * limit:
                raise ValueError("implausible movement")
        else:
            r[o + 7] = 1.0
        r[o], r[o + 1], r[o + 2], r[o + 3] = x, y, z, now
        tokens = r[o + 4] + (now - r[o + 5]) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        r[o + 5] = now
        if tokens < 1.0:
            raise ValueError("rate limited")
        r[o + 4] = tokens - 1.0


Step = Callable[[str, tuple[int, int, int], float], object]


class Timer:
    """Times the decode of every body, then `step` on it, with a clock that only moves forward."""

    def __init__(self, work: list[bytes]) -> None:
        self.work = work
        self.now = 1_800_000_000.0

    def run(self, step: Step | None) -> float:
        """Microseconds per body."""
        now = self.now
        t0 = time.perf_counter()
        for body in self.work:
            d = dec_dig(body)
            now += 1e-5
            if step is not None:
                step(d.player, d.pos, now)
        self.now = now + 1.0
        return (time.perf_counter() - t0) * 1e6 / len(self.work)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    lim = Limits(dig_rate=1e9, dig_burst=10**9, max_speed=1e12)
    print(f"{'players':>8} {'decode µs':>10} {'engine µs':>10} {'packed µs':>10}  (state per dig, decode subtracted)")
    for players in (200, 20_000):
        timer = Timer(bodies(players))
        eng = Engine(b"bench", {}, limits=lim)
        packed = Packed(1e9, 1e9, 1e12, lim.movement_slack)
        engine_step = functools.partial(_engine_move, eng)
        for step in (engine_step, packed.move):  # warm-up: every player tracked
            timer.run(step)
        base, on_engine, on_packed = [], [], []
        for _ in range(a.rounds):
            b = timer.run(None)
            base.append(b)
            on_engine.append(timer.run(engine_step) - b)
            on_packed.append(timer.run(packed.move) - b)
        m = statistics.median
        print(f"{players:>8} {m(base):>10.3f} {m(on_engine):>10.3f} {m(on_packed):>10.3f}")


def _engine_move(eng: Engine, player: str, pos: tuple[int, int, int], now: float) -> object:
    return eng._move(player, pos, False, now, "bench", True)


if __name__ == "__main__":
    main()
