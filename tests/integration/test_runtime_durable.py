"""The runtime shows nothing that is not durable: a real SQLite journal, in process.

A claim is applied at once (the next dig must see it), but its events reach listeners and a
read is answered only once its record is committed; when the commit fails, they never do.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from cairn import config as configmod
from cairn.app import Runtime
from cairn.bootstrap import make_runtime
from cairn.core.events import Event
from cairn.core.spec import convert_spec
from cairn.store.journal import JournalError

CONFIG = "[worlds.overworld]\nseed = 3\nsize = 512\ndensity = 1.0\n"


async def started(tmp_path: Path) -> tuple[Runtime, list[Event], list[int]]:
    (tmp_path / "cairn.toml").write_text(CONFIG)
    rt = make_runtime(configmod.load(tmp_path / "cairn.toml", env={}), tmp_path / "data")
    await rt.start()
    got: list[Event] = []
    rt.listeners.append(got.extend)
    spec = convert_spec({"id": "h1", "area": {"min": [-200, -64, -200], "max": [200, 320, 200]}, "treasures": 2,
                         "spawn": {"tags_any": ["surface"]}})  # fmt: skip
    created = await rt.create_hunt(spec)
    await until(lambda: any(e.type == "hunt.started" for e in got))  # released once the hunt is durable
    return rt, got, [t["pos"] for t in created["treasures"]]


async def until(pred: Any) -> None:
    for _ in range(500):  # the loop runs the releaser once the writer's commit is seen
        if pred():
            return
        await asyncio.sleep(0.01)


def test_events_and_reads_wait_for_the_commit(tmp_path: Path) -> None:
    async def main() -> None:
        rt, got, spots = await started(tmp_path)
        try:
            got.clear()
            out = rt.eng.dig("h1", "ann", tuple(spots[0]), tuple(spots[0]), "r", rt.clock())
            waiter = rt.submit(out)
            # Applied (a second dig would see it), not yet durable: nothing of it leaves the process.
            assert rt.eng.hunts["h1"].treasures[0].state == "claimed"
            settled = rt.settled()  # what a read awaits before it answers
            assert waiter is not None and settled is not None and got == []
            await settled
            await waiter
            await until(lambda: len(got) >= 2)
            assert [e.type for e in got] == ["treasure.found", "treasure.claimed"] and rt.settled() is None
        finally:
            await rt.close()

    asyncio.run(main())


def test_a_failed_commit_is_never_shown_and_sets_failed(tmp_path: Path) -> None:
    async def main() -> None:
        rt, got, spots = await started(tmp_path)
        try:
            got.clear()
            conn = rt.store.journal._conn
            assert conn is not None
            conn.close()  # the writer's next statement fails inside sqlite3
            out = rt.eng.dig("h1", "ann", tuple(spots[0]), tuple(spots[0]), "r", rt.clock())
            waiter = rt.submit(out)
            assert waiter is not None
            with pytest.raises(JournalError):
                await waiter
            assert rt.failed.is_set()
            settled = rt.settled()
            assert settled is not None
            with pytest.raises(JournalError):
                await settled  # every read answers journal_failed
            await until(lambda: rt._releaser is None)
            assert got == []  # the claim's events were dropped, never delivered
        finally:
            await rt.close()

    asyncio.run(main())
