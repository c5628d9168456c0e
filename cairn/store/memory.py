"""The in-memory store: records kept in a list, durable the moment they are handed over.

The third `Store` (`cairn/store/base.py`), beside the embedded journal and Redis. Nothing survives
the process, so it is for tests, demos and benchmarks of the engine without a disk; it is chosen
with `store.kind = "memory"`. It keeps every record, so that `recover` can rebuild another engine
from it exactly as the journal would (the store contract suite checks that), and so it grows with
the records: do not run a long live event on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from cairn.core.engine import Engine
from cairn.core.records import AnyRecord


class Recovery:
    __slots__ = ("records", "seconds")

    def __init__(self, records: int = 0, seconds: float = 0.0) -> None:
        self.records = records
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"Recovery(memory, records={self.records}, seconds={self.seconds:.3f})"


class MemoryStore:
    """Every record in a list; `durable_seq` is the last one handed over."""

    kind = "memory"

    def __init__(self) -> None:
        self.on_failed: Callable[[BaseException], None] | None = None
        self.records: list[AnyRecord] = []
        self.last_recovery = Recovery()
        self._durable = 0
        self._commits = 0

    @property
    def durable_seq(self) -> int:
        return self._durable

    async def recover(self, engine: Engine) -> Recovery:
        """Rebuild `engine` from every record handed over so far (none, in a new process)."""
        started = time.perf_counter()
        engine.replay(self.records)
        self.last_recovery = Recovery(len(self.records), time.perf_counter() - started)
        return self.last_recovery

    def persist(self, records: Sequence[AnyRecord]) -> None:
        if not records:
            return
        self.records.extend(records)
        self._commits += 1
        self._durable = max(self._durable, records[-1].seq)

    async def durable(self, seq: int) -> None:
        return None  # durable when handed over

    def ready(self) -> bool:
        return True

    def stats(self) -> dict[str, Any]:
        return {"commits": self._commits, "records": len(self.records), "failed": False}

    def snapshot_due(self) -> bool:
        return False

    async def snapshot(self, engine: Engine) -> bool:
        return False

    async def close(self) -> None:
        return None
