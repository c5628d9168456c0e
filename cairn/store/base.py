"""The store protocol: what a runtime needs of the place its records become durable.

Two stores implement it: `EmbeddedStore` (an SQLite journal in one process, `cairn/store/embedded.py`)
and `RedisNodeStore` (a Redis node's commits, `cairn/distributed.py`). The composition root
(`cairn/bootstrap.py`) builds one and hands it to the runtime.

A record is decided by the engine, handed to `persist`, and is durable once `durable_seq` has
reached its seq; `durable(seq)` waits for that, and raises the error of a record that never will
be (a journal that failed, a Redis commit refused). `recover` rebuilds an engine from what the
store holds, through `Engine.replay` or `Engine.apply`. Snapshots bound recovery time; a store
that needs none is never due.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from cairn.core.records import AnyRecord

if TYPE_CHECKING:
    from cairn.core.engine import Engine


class Store(Protocol):
    kind: str  # "embedded" or "redis", as `store.kind` in the config
    #: Called on the loop when the store fails for good (the engine's state is then ahead of it).
    on_failed: Callable[[BaseException], None] | None

    @property
    def last_recovery(self) -> object:
        """What the last `recover` did, for the log line at start."""
        ...

    @property
    def durable_seq(self) -> int:
        """Every record up to this seq is durable."""
        ...

    async def recover(self, engine: Engine) -> object:
        """Rebuild `engine` from the store, then start taking records; returns what it did."""
        ...

    def persist(self, records: Sequence[AnyRecord]) -> None:
        """Hand over records to be made durable, in seq order (on the loop; returns at once)."""
        ...

    async def durable(self, seq: int) -> None:
        """Return once every record up to `seq` is durable; raise if one of them never will be."""
        ...

    def ready(self) -> bool:
        """The store takes records now (for /readyz)."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counters for /metrics: `commits`, `records`, `failed` at least."""
        ...

    def snapshot_due(self) -> bool: ...

    async def snapshot(self, engine: Engine) -> bool:
        """Save `engine.retained()` so that recovery replays less; False if none was written."""
        ...

    async def close(self) -> None:
        """Make what was handed over durable (as far as it can be), then let go."""
        ...
