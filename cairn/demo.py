"""`cairn demo`: a hunt on a procedural world, played by simulated players, shown live.

The simulated players know only what a game client knows: the ground under their feet (the
world's terrain) and what Cairn tells them in hint and dig replies. They never see a position.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Awaitable
from typing import Any, Protocol

from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cairn.core import worldgen

TIER_STYLE = {"common": "white", "uncommon": "green", "rare": "blue", "epic": "magenta", "legendary": "bold yellow"}


class Client(Protocol):
    """What a simulated player needs from Cairn; in process or over HTTP."""

    async def hint(self, hunt: str, player: str, pos: list[int]) -> dict[str, Any]: ...
    async def dig(self, hunt: str, player: str, pos: list[int], at: list[int], rid: str) -> dict[str, Any]: ...
    async def grants(self, player: str) -> list[dict[str, Any]]: ...
    async def ack(self, grant_id: str) -> dict[str, Any]: ...
    async def get(self, path: str) -> Any: ...


def demo_spec(hunt_id: str, treasures: int = 12, radius: int = 240) -> dict[str, Any]:
    return {
        "id": hunt_id,
        "name": "Demo Hunt",
        "world": "overworld",
        "area": {"min": [-radius, -64, -radius], "max": [radius, 320, radius]},
        "treasures": treasures,
        "duration": "2h",
        "prize": {"mode": "first_finder"},
        "spawn": {"tags_any": ["surface"], "min_spacing": 24},
        "dig": {"reach": 6, "tolerance": 1},
        "hints": {"cooldown": "1s", "kinds": ["temperature", "bearing", "region", "riddle"], "solve_by": "3m"},
    }


class Board:
    """What the live view shows: recent finds and who leads."""

    def __init__(self, hunt: str, total: int) -> None:
        self.hunt = hunt
        self.total = total
        self.finds: deque[tuple[str, str, str, str]] = deque(maxlen=10)
        self.value: dict[str, int] = {}
        self.count: dict[str, int] = {}
        self.leaders: list[dict[str, Any]] = []  # the server's weekly board
        self.digs = 0
        self.hints = 0
        self.acked = 0
        self.started = time.monotonic()

    def found(self, player: str, treasure: str, tier: str, items: list[dict[str, Any]]) -> None:
        loot = ", ".join(f"{i['count']}× {i['item'].split(':')[-1]}" for i in items)
        self.finds.appendleft((time.strftime("%H:%M:%S"), player, treasure, loot))
        self.value[player] = self.value.get(player, 0) + sum(i["value"] for i in items)
        self.count[player] = self.count.get(player, 0) + 1

    def render(self) -> Group:
        left = self.total - sum(self.count.values())
        head = Text.assemble(
            ("Cairn demo  ", "bold"),
            (f"hunt {self.hunt}  ", "cyan"),
            f"treasures left {left}/{self.total}   digs {self.digs:,}   hints {self.hints:,}   "
            f"rewards acked {self.acked}   {time.monotonic() - self.started:,.0f}s",
        )
        finds = Table(title="Latest finds", expand=True)
        for col in ("time", "player", "treasure", "loot"):
            finds.add_column(col)
        for row in self.finds:
            finds.add_row(*row)
        leaders = Table(title="Weekly leaderboard (GET /v1/leaderboards/weekly)", expand=True)
        leaders.add_column("#")
        leaders.add_column("player")
        leaders.add_column("loot value", justify="right")
        for r in self.leaders:
            leaders.add_row(str(r["rank"]), r["player"], f"{r['score']:,.0f}")
        return Group(Panel(head), finds, leaders)


class SimPlayer:
    """Walks toward the region hint, follows the bearing, and digs the ground when it is hot."""

    def __init__(self, name: str, terrain: worldgen.Terrain, rnd: random.Random, speed: float = 20.0) -> None:
        self.name = name
        self.terrain = terrain
        self.rnd = rnd
        self.x = rnd.uniform(-200, 200)
        self.z = rnd.uniform(-200, 200)
        self.speed = speed
        self.target: tuple[float, float] | None = None
        self.box: tuple[list[int], list[int]] | None = None
        self.tried: set[tuple[int, int]] = set()
        self.rid = 0
        self.temperature = "cold"

    def ground(self, x: int, z: int) -> int:
        return int(self.terrain.height([x], [z])[0]) + 1  # the air cell on the solid top block

    def pos(self) -> list[int]:
        x, z = round(self.x), round(self.z)
        return [x, self.ground(x, z), z]

    def step_towards(self, dt: float) -> None:
        if self.target is None:
            return
        dx, dz = self.target[0] - self.x, self.target[1] - self.z
        d = math.hypot(dx, dz)
        move = min(d, self.speed * dt)
        if d > 0:
            self.x += dx / d * move
            self.z += dz / d * move

    def use_hint(self, hint: dict[str, Any]) -> None:
        self.temperature = hint.get("temperature", "cold")
        region = hint.get("region")
        if region:
            (x0, z0), (x1, z1) = region["min"], region["max"]
            if self.box != (region["min"], region["max"]):
                self.box = (region["min"], region["max"])
                self.tried.clear()
            inside = x0 <= self.x <= x1 and z0 <= self.z <= z1
            if not inside:
                self.target = ((x0 + x1) / 2, (z0 + z1) / 2)
                return
        bearing = hint.get("bearing")
        if bearing:
            ang = math.radians(
                {"N": 0, "NE": 45, "E": 90, "SE": 135, "S": 180, "SW": 225, "W": 270, "NW": 315}[bearing]
            )
            hop = {"burning": 2, "hot": 6, "warm": 20, "cool": 40}.get(hint.get("temperature", ""), 60)
            self.target = (self.x + math.sin(ang) * hop, self.z - math.cos(ang) * hop)

    def dig_spots(self, n: int) -> list[list[int]]:
        """Untried ground cells within reach, nearest first."""
        px, pz = round(self.x), round(self.z)
        spots = []
        for dx in range(-4, 5):
            for dz in range(-4, 5):
                if dx * dx + dz * dz <= 16 and (px + dx, pz + dz) not in self.tried:
                    spots.append((dx * dx + dz * dz, px + dx, pz + dz))
        spots.sort()
        out = []
        for _, x, z in spots[:n]:
            self.tried.add((x, z))
            out.append([x, self.ground(x, z), z])
        return out

    def next_rid(self) -> str:
        self.rid += 1
        return f"{self.name}-{self.rid}"


async def play(
    client: Client, hunt: str, board: Board, players: int, seconds: float, seed: int = 7, world_seed: int = 1,
    world_size: int = 8192, tick: float = 0.25,
) -> None:  # fmt: skip
    """Drive `players` simulated players for `seconds` (0: until every treasure is found)."""
    terrain = worldgen.Terrain(world_seed, world_size)
    rnd = random.Random(seed)
    sims = [SimPlayer(f"player{i:03d}", terrain, random.Random(rnd.random())) for i in range(players)]
    end = time.monotonic() + seconds if seconds else math.inf

    async def one(p: SimPlayer) -> None:
        last_hint = 0.0
        while time.monotonic() < end and sum(board.count.values()) < board.total:
            now = time.monotonic()
            if now - last_hint >= 1.0:
                reply = await client.hint(hunt, p.name, p.pos())
                if "hint" in reply:
                    board.hints += 1
                    last_hint = now
                    p.use_hint(reply["hint"])
                    if not reply["hint"]:
                        return
            p.step_towards(tick)
            if p.temperature in ("burning", "hot"):
                for at in p.dig_spots(2):
                    r = await client.dig(hunt, p.name, p.pos(), at, f"{hunt}/{p.next_rid()}")
                    board.digs += 1
                    if r.get("result") == "found":
                        c = r["claim"]
                        board.found(p.name, c["treasure"], "", c["items"])
                        for g in await client.grants(p.name):
                            await client.ack(g["grant_id"])
                            board.acked += 1
                        p.box = None
                        p.temperature = "cold"
                        break
            await asyncio.sleep(tick)

    async def follow_board() -> None:
        while True:
            board.leaders = (await client.get("/v1/leaderboards/weekly?limit=8"))["records"]
            await asyncio.sleep(1.0)

    watcher = asyncio.create_task(follow_board())
    try:
        await asyncio.gather(*(one(p) for p in sims))
        board.leaders = (await client.get("/v1/leaderboards/weekly?limit=8"))["records"]
    finally:
        watcher.cancel()


async def show(board: Board, work: Awaitable[None], live: bool = True) -> None:
    if not live:
        await work
        return
    with Live(board.render(), refresh_per_second=4, screen=False) as view:
        task = asyncio.ensure_future(work)
        try:
            while not task.done():
                view.update(board.render())
                await asyncio.sleep(0.25)
        finally:
            if not task.done():  # Ctrl-C: the players stop with the view, before the server goes away
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        view.update(board.render())
        await task

