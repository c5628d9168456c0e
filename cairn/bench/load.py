"""The simulated game server: players walking on the world, one batch per connection per tick.

Each of `connections` connections stands for one game server carrying `players / connections`
players. At every tick (`tick_hz`), each connection sends one batch with the position updates,
digs and hints due at that tick. Sends follow the schedule whatever the replies do (open loop);
every reply is timed from its tick's scheduled time.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec
import numpy as np

from cairn.bench.recorder import Recorder
from cairn.bench.transport import ConnectionLost, HttpPipe, WsPipe, clock
from cairn.net.schemas import BatchRequest, DigOp, HintOp, PositionsOp, PositionUpdate

MAX_OPS = 1000  # per batch (server limit)
MAX_UPDATES = 10_000  # per positions op (server limit)


@dataclass
class Options:
    url: str = "http://127.0.0.1:7420"
    key: str | None = None
    admin_key: str | None = None
    scenario: str = "steady"  # steady | hunt-start | soak
    transport: str = "http"  # http | ws
    players: int = 2500
    duration: float = 60.0
    warmup: float = 5.0  # seconds at the start left out of the summary
    connections: int = 4
    tick_hz: float = 20.0
    positions_per_s: float = 4.0
    dig_every: float = 2.0  # seconds; 0 = never
    hint_every: float = 30.0  # seconds; 0 = never
    speed: float = 4.3  # blocks per second (walking)
    world: str = "overworld"
    radius: int = 1000  # players and the created hunt live in [-radius, radius]²
    y: int = 70
    hunt: str | None = None  # an existing hunt; else one is created with the admin key
    treasures: int = 100
    hint_cooldown: str | None = None  # of a created hunt; default: under the hint interval, at most 5 s
    burst_at: float = 5.0  # hunt-start: seconds after the start
    sample_every: float = 1.0  # seconds between /metrics samples; 0 = none
    grants: bool = True  # fetch and ack the grants of players who found something
    seed: int = 1
    drain: float = 10.0  # seconds to wait for replies after the last send


@dataclass
class Sample:
    t: float
    rss_bytes: int
    allocated_blocks: int
    gc_pauses: int = 0  # the server's garbage collections so far
    gc_pause_s: float = 0.0  # and their total pause


@dataclass
class Result:
    opts: Options
    rec: Recorder
    started_at: str
    elapsed: float
    hunt: str | None
    samples: list[Sample] = field(default_factory=list)
    sent: int = 0
    grants_acked: int = 0
    unanswered: int = 0
    notes: list[str] = field(default_factory=list)


def hunt_spec(hunt_id: str, o: Options, starts_at: datetime | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "id": hunt_id,
        "name": "cairn bench",
        "world": o.world,
        "area": {"min": [-o.radius, -64, -o.radius], "max": [o.radius, 320, o.radius]},
        "treasures": o.treasures,
        "duration": "2h",
        "prize": {"mode": "first_finder"},
        "spawn": {"tags_any": ["surface"], "min_spacing": 16},
        "hints": {"cooldown": o.hint_cooldown or f"{int(min(5.0, o.hint_every / 2) * 1000)}ms"},
    }
    if starts_at is not None:
        spec["starts_at"] = starts_at.isoformat().replace("+00:00", "Z")
    return spec


def parse_metrics(text: str) -> tuple[int, int, int, float]:
    """(RSS bytes, allocated blocks, GC pauses, GC pause seconds) from Cairn's /metrics text."""
    rss = blocks = pauses = 0
    pause_s = 0.0
    for line in text.splitlines():
        if line.startswith("cairn_process_resident_memory_bytes "):
            rss = int(float(line.split()[1]))
        elif line.startswith("cairn_python_allocated_blocks "):
            blocks = int(float(line.split()[1]))
        elif line.startswith("cairn_gc_pause_seconds_count "):
            pauses = int(float(line.split()[1]))
        elif line.startswith("cairn_gc_pause_seconds_sum "):
            pause_s = float(line.split()[1])
    return rss, blocks, pauses, pause_s


class Players:
    """Positions and the per-tick schedule of every simulated player (numpy, no per-player objects)."""

    def __init__(self, o: Options) -> None:
        rng = self.rng = np.random.default_rng(o.seed)
        n = o.players
        self.o = o
        self.names = [f"b{o.seed}-{i:05d}" for i in range(n)]
        self.x = rng.uniform(-o.radius * 0.9, o.radius * 0.9, n)
        self.z = rng.uniform(-o.radius * 0.9, o.radius * 0.9, n)
        self.heading = rng.uniform(0, 2 * math.pi, n)
        self.pos_period = max(1, round(o.tick_hz / o.positions_per_s))
        self.dig_period = max(1, round(o.dig_every * o.tick_hz)) if o.dig_every > 0 else 0
        self.hint_period = max(1, round(o.hint_every * o.tick_hz)) if o.hint_every > 0 else 0
        conn = np.arange(n) % o.connections
        self.groups: list[dict[str, dict[int, np.ndarray]]] = []
        phases = {
            "pos": rng.integers(0, self.pos_period, n),
            "dig": rng.integers(0, self.dig_period or 1, n),
            "hint": rng.integers(0, self.hint_period or 1, n),
            "burst": rng.integers(0, max(1, round(o.tick_hz)), n),
        }
        for c in range(o.connections):
            mine = conn == c
            g: dict[str, dict[int, np.ndarray]] = {}
            for kind, ph in phases.items():
                g[kind] = {int(p): np.flatnonzero(mine & (ph == p)) for p in np.unique(ph[mine])}
            self.groups.append(g)
        self.step = o.speed / o.tick_hz * self.pos_period
        self.rid = 0

    def move(self, idx: np.ndarray) -> None:
        h = self.heading[idx] + self.rng.normal(0.0, 0.3, len(idx))
        x = self.x[idx] + np.cos(h) * self.step
        z = self.z[idx] + np.sin(h) * self.step
        r = self.o.radius
        out = (np.abs(x) > r) | (np.abs(z) > r)
        h[out] += math.pi
        self.x[idx] = np.clip(x, -r, r)
        self.z[idx] = np.clip(z, -r, r)
        self.heading[idx] = h

    def ops(self, conn: int, tick: int, hunt: str | None, digs_on: bool, burst: bool) -> tuple[list[Any], list[Any]]:
        """The ops due for `conn` at `tick`, and (result index, player) of each dig."""
        g = self.groups[conn]
        o, y, names = self.o, self.o.y, self.names
        ops: list[Any] = []
        dig_slots: list[Any] = []
        idx = g["pos"].get(tick % self.pos_period)
        if idx is not None and len(idx):
            self.move(idx)
            xs, zs = np.rint(self.x[idx]).astype(int).tolist(), np.rint(self.z[idx]).astype(int).tolist()
            ups = [PositionUpdate(names[i], (x, y, z)) for i, x, z in zip(idx.tolist(), xs, zs, strict=True)]
            for k in range(0, len(ups), MAX_UPDATES):
                ops.append(PositionsOp(o.world, ups[k : k + MAX_UPDATES]))
        if hunt is None or not digs_on:
            return ops, dig_slots
        hinting: list[int] = []
        digging: list[int] = []
        if burst:
            b = g["burst"].get(tick % max(1, round(o.tick_hz)))
            if b is not None:
                hinting.extend(b.tolist())
                digging.extend(b.tolist())
        else:
            if self.hint_period:
                h = g["hint"].get(tick % self.hint_period)
                if h is not None:
                    hinting.extend(h.tolist())
            if self.dig_period:
                d = g["dig"].get(tick % self.dig_period)
                if d is not None:
                    digging.extend(d.tolist())
        for i in hinting:
            p = (round(self.x[i]), y, round(self.z[i]))
            ops.append(HintOp(hunt, names[i], p))
        if digging:
            off = self.rng.integers(-2, 3, (len(digging), 2)).tolist()
            r = self.o.radius  # a dig cell stays inside the hunt's area
            for i, (dx, dz) in zip(digging, off, strict=True):
                p = (round(self.x[i]), y, round(self.z[i]))
                self.rid += 1
                dig_slots.append((len(ops), i))
                at = (min(max(p[0] + dx, -r), r), y - 1, min(max(p[2] + dz, -r), r))
                ops.append(DigOp(hunt, names[i], p, at, f"bench-{self.rid}"))
        return ops, dig_slots


class Load:
    """One run: set up, drive the schedule, sample the server, drain, and return the result."""

    def __init__(self, o: Options, on_progress: Callable[[Load], None] | None = None) -> None:
        self.o = o
        u = urlsplit(o.url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.on_progress = on_progress
        self.enc = msgspec.json.Encoder()
        self.dec = msgspec.json.Decoder()
        self.rec = Recorder(0.0, o.warmup)
        self.samples: list[Sample] = []
        self.found: set[str] = set()
        self.sent = 0
        self.answered = 0
        self.acked = 0
        self.pipes: list[Any] = []
        self.last_latency_ms = 0.0
        self.t0 = 0.0
        self.stop = False
        self.notes: list[str] = []

    # ---- replies ------------------------------------------------------------------------------------
    def on_reply(self, sched: float, done: float, status: int, body: bytes, meta: Any) -> None:
        n_ops, dig_slots, n_actions = meta
        self.answered += 1
        errors: dict[str, int] = {}
        if status == 0:
            errors["connection_lost"] = n_ops
        else:
            try:
                msg = self.dec.decode(body)
            except msgspec.DecodeError:
                msg = None
            results = msg.get("results") if isinstance(msg, dict) else None
            if status != 200 or not isinstance(results, list):
                code = msg.get("error", {}).get("code") if isinstance(msg, dict) else None
                errors[str(code or f"http_{status}")] = n_ops
            else:
                for r in results:
                    if type(r) is dict and "error" in r:
                        code = str(r["error"].get("code", "unknown"))
                        errors[code] = errors.get(code, 0) + 1
                for slot, player in dig_slots:
                    r = results[slot] if slot < len(results) else None
                    if type(r) is dict and r.get("result") == "found":
                        self.found.add(self.players.names[player])
        self.last_latency_ms = self.rec.record(sched, done, n_actions, errors) * 1e3

    # ---- setup ----------------------------------------------------------------------------------------
    async def setup(self, ctl: HttpPipe) -> str | None:
        o = self.o
        if o.hunt is not None:
            return o.hunt
        if not o.admin_key:
            self.notes.append("no hunt and no admin key: positions only")
            return None
        hunt_id = f"bench-{os.getpid()}-{int(time.time())}"
        starts = None
        if o.scenario == "hunt-start":
            starts = datetime.fromtimestamp(time.time() + o.burst_at + 1.0 - 0.2, UTC)
        admin = await HttpPipe.open(self.host, self.port, o.admin_key)
        try:
            status, body = await admin.call("POST", "/v1/hunts", self.enc.encode(hunt_spec(hunt_id, o, starts)))
        finally:
            admin.close()
        if status != 201:
            raise RuntimeError(f"creating the bench hunt failed: {status} {body[:300]!r}")
        return hunt_id

    async def sample(self, mpipe: HttpPipe) -> None:
        while not self.stop:
            try:
                status, body = await mpipe.call("GET", "/metrics")
            except ConnectionLost:
                return
            if status == 200:
                rss, blocks, pauses, pause_s = parse_metrics(body.decode())
                self.samples.append(Sample(round(clock() - self.t0, 3), rss, blocks, pauses, pause_s))
            else:
                self.notes.append(f"/metrics answered {status}; server memory not sampled")
                return
            await asyncio.sleep(self.o.sample_every)

    async def ack_grants(self, ctl: HttpPipe) -> None:
        while True:
            await asyncio.sleep(1.0)
            players, self.found = self.found, set()
            for p in sorted(players):
                try:
                    status, body = await ctl.call("GET", f"/v1/players/{p}/grants")
                    if status != 200:
                        self.rec.error(f"grants_{status}")
                        continue
                    for g in self.dec.decode(body).get("grants", []):
                        st, _ = await ctl.call("POST", f"/v1/grants/{g['grant_id']}/ack", b"{}")
                        if st == 200:
                            self.acked += 1
                        else:
                            self.rec.error(f"ack_{st}")
                except ConnectionLost:
                    return
            if self.stop and not self.found:
                return

    # ---- the run --------------------------------------------------------------------------------------
    async def run(self) -> Result:
        o = self.o
        started_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        ctl = await HttpPipe.open(self.host, self.port, o.key)
        hunt = await self.setup(ctl)
        self.players = Players(o)
        opener = WsPipe.open if o.transport == "ws" else HttpPipe.open
        self.pipes = [await opener(self.host, self.port, o.key) for _ in range(o.connections)]
        mpipe = await HttpPipe.open(self.host, self.port, None) if o.sample_every > 0 else None
        self.t0 = t0 = clock()
        self.rec.start = t0
        tasks = []
        if mpipe is not None:
            tasks.append(asyncio.create_task(self.sample(mpipe)))
        if o.grants and hunt is not None:
            tasks.append(asyncio.create_task(self.ack_grants(ctl)))
        progress = asyncio.create_task(self._progress()) if self.on_progress else None
        dt = 1.0 / o.tick_hz
        n_ticks = int(o.duration * o.tick_hz)
        burst_tick = round((o.burst_at + 1.0) * o.tick_hz) if o.scenario == "hunt-start" else -1
        quiet = (burst_tick - round(o.tick_hz), burst_tick + round(o.tick_hz) * 8)
        try:
            # Each connection is a game server with its own tick phase: connection c sends at
            # t0 + k·dt + c·dt/C. Its next batch is built half a slot after the send, not while
            # replies are due, so that a busy loop does not delay their timestamps.
            conns = o.connections
            slot = dt / conns
            nxt = [self._build(0, c, hunt, burst_tick, quiet) for c in range(conns)]
            for j in range(n_ticks * conns):
                k, c = divmod(j, conns)
                sched = t0 + j * slot
                delay = sched - clock()
                if delay > 0.002:
                    await asyncio.sleep(delay - 0.0015)
                while clock() < sched:
                    await asyncio.sleep(0)
                pipe = self.pipes[c]
                for body, meta in nxt[c]:
                    ok = (pipe.send_ops(body, sched, self.on_reply, meta) if o.transport == "ws"
                          else pipe.send("POST", "/v1/batch", body, sched, self.on_reply, meta))  # fmt: skip
                    if ok:
                        self.sent += 1
                        self.rec.sent(sched, clock())
                    else:
                        self.rec.record(sched, clock(), meta[2], {"connection_lost": meta[0]})
                if k + 1 < n_ticks:
                    mid = sched + slot / 2 - clock()
                    if mid > 0:
                        await asyncio.sleep(mid)
                    nxt[c] = self._build(k + 1, c, hunt, burst_tick, quiet)
            deadline = clock() + o.drain
            while any(p.inflight for p in self.pipes) and clock() < deadline:
                await asyncio.sleep(0.01)
        finally:
            self.stop = True
            elapsed = clock() - t0
            unanswered = sum(p.inflight for p in self.pipes)
            for p in self.pipes:
                p.close()
            if progress is not None:
                progress.cancel()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, *([progress] if progress else []), return_exceptions=True)
            if mpipe is not None:
                mpipe.close()
            ctl.close()
        if unanswered:
            self.rec.error("no_reply", unanswered)
        return Result(o, self.rec, started_at, elapsed, hunt, self.samples, self.sent, self.acked, unanswered,
                      self.notes)  # fmt: skip

    def _build(self, k: int, c: int, hunt: str | None, burst_tick: int, quiet: tuple[int, int]) -> list[Any]:
        """The encoded batches (body, meta) of connection `c` for tick `k`."""
        o = self.o
        if o.scenario == "hunt-start":
            burst = burst_tick <= k < burst_tick + round(o.tick_hz)
            digs_on = burst or k >= quiet[1]
        else:
            burst, digs_on = False, True
        ops, digs = self.players.ops(c, k, hunt, digs_on, burst)
        batches = []
        for s in range(0, len(ops), MAX_OPS):
            part = ops[s : s + MAX_OPS]
            slots = [(i - s, p) for i, p in digs if s <= i < s + MAX_OPS]
            body = self.enc.encode(part) if o.transport == "ws" else self.enc.encode(BatchRequest(part))
            actions = sum(len(op.updates) if type(op) is PositionsOp else 1 for op in part)
            batches.append((body, (len(part), slots, actions)))
        return batches

    async def _progress(self) -> None:
        assert self.on_progress is not None
        while True:
            await asyncio.sleep(0.5)
            self.on_progress(self)
