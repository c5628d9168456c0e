"""Shared helpers for Cairn's tests: small worlds, engines and specs."""

from __future__ import annotations

import os
import socket
from typing import Any

import msgspec
import numpy as np

from cairn.core.engine import Engine, Limits, Outcome, Plan, compute_plan
from cairn.core.records import AnyRecord
from cairn.core.sites import SiteSet
from cairn.core.spec import convert_spec

SECRET = b"test-secret"
T0 = 1_800_000_000.0  # a fixed "now" for the core tests


def grid_world(n: int = 64, step: int = 4, y: int = 64) -> SiteSet:
    """A flat world: surface sites on a grid of n×n columns `step` apart around 0,0, half of them forest."""
    xs, zs = np.meshgrid(np.arange(n) * step - n * step // 2, np.arange(n) * step - n * step // 2)
    xyz = np.stack([xs.ravel(), np.full(xs.size, y), zs.ravel()], axis=1)
    tags = np.where((xs.ravel() // step) % 2 == 0, 0b101, 0b001).astype(np.uint32)  # surface, +forest
    caves = xyz.copy()
    caves[:, 1] = y - 20
    return SiteSet.from_arrays(
        np.concatenate([xyz, caves]),
        np.concatenate([tags, np.full(len(caves), 0b010, np.uint32)]),
        ["surface", "cave", "forest"],
    )


def spec(**kw: Any) -> Any:
    base: dict[str, Any] = {
        "id": "h1",
        "area": {"min": [-100, 0, -100], "max": [100, 200, 100]},
        "treasures": 5,
        "spawn": {"tags_any": ["surface"]},
        "duration": "1h",
    }
    base.update(kw)
    return convert_spec(base)


class Live(Engine):
    """The engine as the embedded runtime drives it: each command decided, then its records applied at
    once (`Runtime.commit`), and a reply that is a view of the state after them built then (`Runtime.view`).
    `tick` returns the records it applied. The core tests use it to play a game in few lines."""

    __slots__ = ()

    def _run(self, out: Outcome, view: Any = None) -> Outcome:
        self.apply(out.records)
        return out if view is None else out._replace(result=view())

    def dig(self, *a: Any, **kw: Any) -> Outcome:
        return self._run(super().dig(*a, **kw))

    def ack(self, grant_id: str, now: float) -> Outcome:
        return self._run(super().ack(grant_id, now), lambda: self.grant_view(grant_id))

    def end_hunt(self, hunt_id: str, now: float) -> Outcome:
        return self._run(super().end_hunt(hunt_id, now), lambda: self.hunt(hunt_id).summary(now))

    def create_hunt(self, plan: Plan, now: float) -> Outcome:
        return self._run(super().create_hunt(plan, now), lambda: self.hunt_view(plan.spec.id, now, reveal=True))

    def register_recurring(self, spec: Any, now: float) -> Outcome:
        return self._run(super().register_recurring(spec, now), lambda: self.recurring_view(spec.id, now))

    def register_world(self, world: str, now: float) -> Outcome:
        return self._run(super().register_world(world, now))

    def retire_world(self, world: str, now: float) -> Outcome:
        return self._run(super().retire_world(world, now))

    def tick(self, now: float, lead: bool = True) -> list[AnyRecord]:  # type: ignore[override]
        records = [r for due in super().tick(now, lead) for r in due.records]
        self.apply(records)
        return records


def engine(world: SiteSet | None = None, **limits: Any) -> Live:
    lim = Limits(**limits) if limits else Limits(dig_rate=1000.0, dig_burst=1000, max_speed=1e9)
    return Live(SECRET, {"overworld": world or grid_world()}, limits=lim)


def create(eng: Live, now: float = T0, **kw: Any) -> dict[str, Any]:
    s = spec(**kw)
    out = eng.create_hunt(compute_plan(eng.plan_input(s)), now)
    result: dict[str, Any] = out.result
    return result


def positions(eng: Engine, hunt: str) -> list[tuple[int, int, int]]:
    return [t.pos for t in eng.hunts[hunt].treasures]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


json = msgspec.json
