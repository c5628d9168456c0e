"""The embedded store: the engine's records in an SQLite WAL journal, with group commit and snapshots.

Recovery loads the newest snapshot (the records the live state still depends on) and replays
the journal after it. Snapshots are written by a forked child from its copy-on-write image, so
the event loop never stalls on them.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

from cairn.core import records as rec
from cairn.core.engine import Engine
from cairn.store.journal import Journal

EVENT_TAIL = 50_000
REPLAY_CHUNK = 65_536


class Recovery:
    __slots__ = ("journal_records", "seconds", "snapshot_records", "snapshot_seq")

    def __init__(self) -> None:
        self.snapshot_seq = 0
        self.snapshot_records = 0
        self.journal_records = 0
        self.seconds = 0.0

    def __repr__(self) -> str:
        return (
            f"Recovery(snapshot_seq={self.snapshot_seq}, snapshot_records={self.snapshot_records}, "
            f"journal_records={self.journal_records}, seconds={self.seconds:.3f})"
        )


class EmbeddedStore:
    """One process, one journal file: the `Store` (`cairn/store/base.py`) of the embedded runtime."""

    kind = "embedded"

    def __init__(
        self, data_dir: str | Path, durability: Literal["fsync", "os"] = "fsync", snapshot_every: int = 200_000,
        on_failed: Callable[[BaseException], None] | None = None,
    ) -> None:  # fmt: skip
        """`on_failed` is called on the loop when the journal's writer fails (disk full, I/O error)."""
        self.dir = Path(data_dir)
        self.on_failed = on_failed
        self.journal = Journal(self.dir / "journal.db", durability, msgpack_records=True, on_failed=self._failed)
        self.snapshot_every = snapshot_every
        self._since_snapshot = 0
        self._snapshotting = False
        self.last_recovery = Recovery()

    def _failed(self, exc: BaseException) -> None:
        if self.on_failed is not None:
            self.on_failed(exc)

    @property
    def durable_seq(self) -> int:
        return self.journal.durable_seq

    async def recover(self, engine: Engine) -> Recovery:
        """`load` off the loop, then start the journal's writer on it."""
        loop = asyncio.get_running_loop()
        info = await loop.run_in_executor(None, self.load, engine)
        self.journal.start(loop)
        return info

    def load(self, engine: Engine) -> Recovery:
        """Open the journal and rebuild `engine` from the newest snapshot plus the records after it."""
        started = time.perf_counter()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.journal.open()
        info = Recovery()
        snap = self.journal.load_snapshot()
        # Events are rebuilt for the last EVENT_TAIL records only: enough for clients to resume.
        quiet = max(0, self.journal.last_seq - EVENT_TAIL)
        # Replay allocates millions of long-lived objects; the collector would rescan them all.
        was_enabled = gc.isenabled()
        gc.disable()
        engine.boards.begin_bulk()
        try:
            if snap is not None:
                info.snapshot_seq, blob = snap
                info.snapshot_records = engine.replay(rec.decode_many(blob), events_after=quiet)
            # A group commit's row decodes in one call; rows are applied in chunks, so that
            # reading, decoding and applying each run in a tight loop.
            chunk: list[rec.AnyRecord] = []
            rows: Iterator[list[tuple[int, rec.AnyRecord]]] = self.journal.read_decoded(
                info.snapshot_seq, rec.AnyRecord  # type: ignore[arg-type]
            )
            for row in rows:
                chunk.extend([r for _, r in row])
                if len(chunk) >= REPLAY_CHUNK:
                    info.journal_records += engine.replay(chunk, events_after=quiet)
                    chunk = []
            if chunk:
                info.journal_records += engine.replay(chunk, events_after=quiet)
        finally:
            engine.boards.end_bulk()
            # Everything replay allocated is long-lived state: move it out of the collector's sight,
            # or the first collection after re-enabling would scan millions of objects (0.5 s).
            gc.freeze()
            if was_enabled:
                gc.enable()
        engine.ids.seen(self.journal.last_seq)
        info.seconds = time.perf_counter() - started
        self.last_recovery = info
        return info

    def persist(self, records: Sequence[rec.AnyRecord]) -> None:
        """Queue records for the next group commit (on the loop, O(1) each)."""
        encode = rec.encode
        append = self.journal.append
        for r in records:
            append(r.seq, encode(r))
        self._since_snapshot += len(records)

    async def durable(self, seq: int) -> None:
        """Return once every record up to `seq` is committed."""
        if seq > self.journal.durable_seq:
            await self.journal.wait_durable(seq)

    def snapshot_due(self) -> bool:
        return self._since_snapshot >= self.snapshot_every and not self._snapshotting

    async def snapshot(self, engine: Engine) -> bool:
        """Write a snapshot from a forked child; prune the journal before it."""
        if self._snapshotting:
            return False
        self._snapshotting = True
        self._since_snapshot = 0
        try:
            # No await before the fork: the child must see the state exactly at `seq`.
            return await self.journal.snapshot_forked(engine.seq, lambda: rec.encode_many(engine.retained()))
        finally:
            self._snapshotting = False

    def ready(self) -> bool:
        return not self.journal.stats().get("failed")

    def stats(self) -> dict[str, float]:
        return self.journal.stats()

    async def close(self) -> None:
        await self.journal.close()


def find_hunt_created(data_dir: str | Path, hunt: str) -> rec.HuntCreated | None:
    """The record that created `hunt`, read without the journal's lock (safe beside a running server)."""
    path = Path(data_dir) / "journal.db"
    for _ in range(5):
        journal = Journal(path, msgpack_records=True)
        journal.open_reader()
        seq, found = 0, None
        snap = journal.load_snapshot()
        if snap is not None:
            seq = snap[0]
            found = _created(rec.decode_many(snap[1]), hunt)
        if found is None:
            for row in journal.read_decoded(seq, rec.AnyRecord):  # type: ignore[arg-type]
                found = _created((r for _, r in row), hunt)
                if found is not None:
                    break
        # A snapshot written meanwhile may have pruned rows after the one read: then read again.
        if found is not None or journal.pruned_now() <= seq:
            return found
    return None


def _created(records: Iterable[rec.AnyRecord], hunt: str) -> rec.HuntCreated | None:
    for r in records:
        if type(r) is rec.HuntCreated and r.hunt == hunt:
            return r
    return None
