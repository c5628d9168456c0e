"""The webhook outbox: pending deliveries and each target's health, in SQLite (`data_dir/webhooks.db`).

Writes never block the event loop: every change is put on a queue, and one thread of the outbox
commits whatever has queued up in one transaction (group commit), in the order asked. The
database is in WAL mode with `synchronous=NORMAL`: a commit survives a kill of the process; the
events a crash of the machine may lose are still after the outbox's high-water event id, and are
enqueued again from the engine's replayed events on restart (`cairn/net/delivery.py`).

Tables: `pending(target, event, body)` (the event's JSON), `targets(id, failures, last_error,
last_success_at, paused, paused_resumed, dropped)`, `meta(name, value)` holding `hwm`, the highest
event id that was offered to the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from pathlib import Path
from typing import Any, NamedTuple

log = logging.getLogger("cairn.webhooks")

SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (target TEXT NOT NULL, event INTEGER NOT NULL, body BLOB NOT NULL,
                                    PRIMARY KEY (target, event)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS targets (id TEXT PRIMARY KEY, failures INTEGER NOT NULL, last_error TEXT NOT NULL,
                                    last_success_at REAL, paused INTEGER NOT NULL, paused_resumed INTEGER NOT NULL,
                                    dropped INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class Health(NamedTuple):
    """A target's delivery health, as saved."""

    failures: int = 0  # attempts failed in a row
    last_error: str = ""
    last_success_at: float | None = None
    paused: bool = False
    paused_resumed: int = 0  # the target's `resumed` when it was paused: a later resume lifts the pause
    dropped: int = 0  # deliveries dropped at the backlog cap


class Loaded(NamedTuple):
    hwm: int
    health: dict[str, Health]
    pending: dict[str, list[tuple[int, bytes]]]  # target -> (event id, body), oldest first


_STOP = object()


class Outbox:
    """The outbox's SQLite file and its writer thread; every method but `load` and `flush` returns at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.commits = 0
        self.failed: BaseException | None = None

    def load(self) -> Loaded:
        """Open the database and read it back (call it off the loop, before anything else)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        row = db.execute("SELECT value FROM meta WHERE name = 'hwm'").fetchone()
        health = {r[0]: Health(r[1], r[2], r[3], bool(r[4]), r[5], r[6])
                  for r in db.execute("SELECT * FROM targets")}  # fmt: skip
        pending: dict[str, list[tuple[int, bytes]]] = {}
        for target, event, body in db.execute("SELECT target, event, body FROM pending ORDER BY target, event"):
            pending.setdefault(target, []).append((event, bytes(body)))
        self._thread = threading.Thread(target=self._write_forever, args=(db,), name="cairn-outbox", daemon=True)
        self._thread.start()
        return Loaded(row[0] if row else 0, health, pending)

    # ---- changes, queued for the writer ----------------------------------------------------------------
    def enqueue(self, items: list[tuple[str, int, bytes]], hwm: int) -> None:
        """Add pending deliveries (target, event id, body) and raise the high-water event id."""
        self._q.put(("enqueue", items, hwm))

    def mark(self, hwm: int) -> None:
        self._q.put(("enqueue", [], hwm))

    def done(self, target: str, event: int) -> None:
        self._q.put(("done", target, event))

    def save(self, target: str, h: Health) -> None:
        self._q.put(("health", target, h))

    def forget(self, target: str) -> None:
        """A removed target: its pending deliveries and its health go."""
        self._q.put(("forget", target))

    async def flush(self) -> None:
        """Return once everything asked so far is committed."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._q.put(("flush", fut))
        await fut

    def close(self) -> None:
        if self._thread is not None:
            self._q.put(_STOP)
            self._thread.join(timeout=10)
            self._thread = None

    # ---- the writer thread ------------------------------------------------------------------------------
    def _write_forever(self, db: sqlite3.Connection) -> None:
        try:
            while True:
                ops = [self._q.get()]
                while True:
                    try:
                        ops.append(self._q.get_nowait())
                    except queue.Empty:
                        break
                stop = any(op is _STOP for op in ops)
                try:
                    self._commit(db, [op for op in ops if op is not _STOP])
                except Exception as e:  # a full disk, say: log it, keep the process up, try later batches
                    self.failed = e
                    log.error("webhook outbox write failed: %s", e)
                for op in ops:
                    if op is not _STOP and op[0] == "flush":
                        fut = op[1]
                        fut.get_loop().call_soon_threadsafe(_resolve, fut)
                if stop:
                    return
        finally:
            db.close()

    def _commit(self, db: sqlite3.Connection, ops: list[Any]) -> None:
        db.execute("BEGIN")
        try:
            hwm = 0
            for op in ops:
                kind = op[0]
                if kind == "enqueue":
                    if op[1]:
                        db.executemany("INSERT OR IGNORE INTO pending VALUES (?, ?, ?)", op[1])
                    hwm = max(hwm, op[2])
                elif kind == "done":
                    db.execute("DELETE FROM pending WHERE target = ? AND event = ?", (op[1], op[2]))
                elif kind == "health":
                    h: Health = op[2]
                    db.execute("INSERT OR REPLACE INTO targets VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (op[1], h.failures, h.last_error, h.last_success_at, int(h.paused),
                                h.paused_resumed, h.dropped))  # fmt: skip
                elif kind == "forget":
                    db.execute("DELETE FROM pending WHERE target = ?", (op[1],))
                    db.execute("DELETE FROM targets WHERE id = ?", (op[1],))
            if hwm:
                db.execute("INSERT INTO meta VALUES ('hwm', ?) ON CONFLICT(name) DO UPDATE SET "
                           "value = max(value, excluded.value)", (hwm,))  # fmt: skip
            db.execute("COMMIT")
            self.commits += 1
        except BaseException:
            db.execute("ROLLBACK")
            raise


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
