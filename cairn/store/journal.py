"""The durable journal: SQLite WAL with group commit, recovery by replay, forked snapshots.

Handlers `append` records on the event loop (O(1), no I/O). One writer thread takes everything
pending, commits it as one SQLite transaction, then wakes, once per commit, every reply waiting
in `wait_durable`. A durable reply therefore costs about one fsync, whatever the rate.

On disk, one row holds one commit batch: `last_seq` is the key, and `data` is a MessagePack
array of `[seq, record]` pairs, or the record itself when the row holds just one (`first_seq ==
last_seq`, the usual case at low load, read back without decoding). Python's sqlite3 releases
and retakes the GIL around every statement step, so a row per record would make a commit of N
records wait N times for a busy event loop to hand the GIL back (measured: 160 ms instead of
5.6 ms for 100 records). A batch row is one step, and it reads back faster.

Recovery, before serving::

    journal.open()
    snap = journal.load_snapshot()            # (seq, blob) or None
    after = snap[0] if snap else 0
    for seq, data in journal.read(after): ...  # replay
    journal.start(loop)

Snapshots are files beside the journal, `<journal name>.snapshot-<seq>.bin`, each with a
header (magic, version, seq, length) and a blake2b digest of header and blob. A snapshot file
is only ever published once its seq is durable in the journal, so it never gets ahead of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import hashlib
import heapq
import itertools
import logging
import os
import signal
import sqlite3
import struct
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

from cairn.core.errors import StoreUnavailable

__all__ = ["Journal", "JournalError", "JournalPruned"]

log = logging.getLogger("cairn.journal")


class JournalError(StoreUnavailable):
    """The journal cannot make records durable: the writer failed (disk full, I/O error) or it is closed."""

    code, status = "journal_failed", 503


class JournalPruned(JournalError):
    """`read(after)` asked for records that a snapshot already replaced; load the snapshot first."""

    code = "journal_pruned"


_SCHEMA_VERSION = 1
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS journal ("
    " last_seq INTEGER PRIMARY KEY, first_seq INTEGER NOT NULL, data BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)
_INSERT = "INSERT INTO journal (last_seq, first_seq, data) VALUES (?, ?, ?)"

# Snapshot file: header, then a blake2b-128 digest of header + blob, then the blob.
_SNAP_MAGIC = b"CAIRNSNP"
_SNAP_VERSION = 1
_SNAP_HEADER = struct.Struct("<8sIIqQ")  # magic, version, flags (0), seq, blob length
_SNAP_DIGEST = 16

# Writer states, as seen from the loop.
_NEW, _OPEN, _RUNNING, _CLOSED = "new", "open", "running", "closed"

_Record = tuple[int, bytes]
T = TypeVar("T")


class Journal:
    """An append-only, group-committed record journal in one SQLite file (WAL mode).

    Single event loop: `append`, `append_many`, `wait_durable`, `snapshot_forked` and `close`
    must be called from the loop passed to `start`. `open`, `read`, `load_snapshot` and
    `write_snapshot` are synchronous, for recovery before serving.
    """

    #: Most records in one row; a bigger batch is split over several rows of one transaction.
    ROW_RECORDS = 2048
    #: Most rows deleted per pruning transaction, so pruning never stalls commits for long.
    PRUNE_ROWS = 512
    #: Snapshot files kept after a successful `snapshot_forked`.
    KEEP_SNAPSHOTS = 2
    #: WAL bytes written between background checkpoints (SQLite's own default is ~4 MB).
    CHECKPOINT_BYTES = 4 << 20
    #: If background checkpoints fall behind or fail, the writer checkpoints inline past this.
    CHECKPOINT_INLINE_BYTES = 64 << 20

    def __init__(
        self, path: str | os.PathLike[str], durability: Literal["fsync", "os"] = "fsync", msgpack_records: bool = False,
        on_failed: Callable[[BaseException], None] | None = None,
    ) -> None:  # fmt: skip
        """`msgpack_records=True` promises every record is one MessagePack value: a group commit's
        row then embeds them as they are, and `read_decoded` decodes a row in one call. `on_failed`
        is called on the loop, once, when the writer fails (after every waiter got its error)."""
        if durability not in ("fsync", "os"):
            raise ValueError(f"durability must be 'fsync' or 'os', not {durability!r}")
        self._path = Path(path)
        self._embed = msgpack_records
        self._durability = durability
        self._on_failed = on_failed
        self._state = _NEW
        self._accepting = False  # open and not closing: append() takes records
        self._running = False  # the writer thread is running
        self._conn: sqlite3.Connection | None = None
        self._lock_fd = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ckpt_thread: threading.Thread | None = None
        self._ckpt_conn: sqlite3.Connection | None = None
        self._writer_done: asyncio.Future[None] | None = None
        self._closer: asyncio.Future[None] | None = None

        # Loop side.
        self._last_seq = 0
        self._durable_seq = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._late: list[tuple[int, int, asyncio.Future[None]]] = []  # out-of-order waiters, a heap
        self._late_ids = itertools.count()
        self._prune_waiters: list[tuple[int, asyncio.Future[bool]]] = []
        self._snapshotting = False

        # Shared with the writer thread; `_lock` guards `_pending`, `_closing` and `_prune_target`.
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: list[_Record] = []
        self._closing = False
        self._prune_target = 0
        self._pruned_through = 0
        self._failed: BaseException | None = None

        # Checkpoints: the checkpointer thread copies most of the WAL into the database off the
        # commit path; the writer then finishes the (short) rest inline so the WAL can restart.
        self._ckpt_wake = threading.Event()
        self._ckpt_stop = False
        self._ckpt_done = False
        self._wal_bytes = 0
        self._checkpoints = 0
        self._inline_checkpoints = 0
        self._checkpoint_errors = 0

        # Written by the writer thread only.
        self._commits = 0
        self._records = 0
        self._last_batch = 0
        self._max_batch = 0
        self._last_commit_s = 0.0
        self._commit_s_total = 0.0

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> None:
        """Create the directory, file and schema (or open an existing journal); WAL mode.

        Takes an exclusive lock on `<path>.lock`: a second process (or a second `Journal`) on the
        same file gets `JournalError`. Calling `open` on an open journal does nothing.
        """
        if self._state != _NEW:
            if self._state == _CLOSED:
                raise JournalError("journal is closed; make a new Journal to reopen it")
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(f"{self._path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise JournalError(f"journal {self._path} is in use by another process or Journal") from None
        try:
            conn = self._connect()
        except BaseException:
            os.close(lock_fd)
            raise
        self._lock_fd = lock_fd
        self._conn = conn
        row = conn.execute("SELECT max(last_seq) FROM journal").fetchone()
        pruned = conn.execute("SELECT value FROM meta WHERE key = 'pruned_through'").fetchone()
        self._pruned_through = pruned[0] if pruned else 0
        self._last_seq = self._durable_seq = max(row[0] or 0, self._pruned_through)
        self._prune_target = self._pruned_through
        self._remove_snapshot_temps()
        self._quarantine_snapshots_ahead()
        self._state = _OPEN
        self._accepting = True

    def open_reader(self) -> None:
        """Open for reading only, without the writer's lock, so that a running `cairn serve` may hold it.

        `load_snapshot` and `read_decoded` work; appends are refused. There is nothing to close.
        """
        if self._state != _NEW:
            raise RuntimeError(f"open_reader() needs a new Journal (it is {self._state})")
        if not self._path.is_file():
            raise JournalError(f"no journal at {self._path}")
        self._pruned_through = self.pruned_now()
        last = self._scalar("SELECT max(last_seq) FROM journal")
        self._last_seq = self._durable_seq = max(self._pruned_through, last)
        self._state = _OPEN

    def pruned_now(self) -> int:
        """The seq a snapshot has pruned the journal through, read from the file now."""
        return self._scalar("SELECT value FROM meta WHERE key = 'pruned_through'")

    def _scalar(self, sql: str) -> int:
        """One integer read from the file now, through a read-only connection of its own (0 if none)."""
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA query_only=1")
            row = conn.execute(sql).fetchone()
        except sqlite3.Error as e:
            raise JournalError(f"journal {self._path} cannot be read: {e}") from None
        finally:
            conn.close()
        return int(row[0] or 0) if row else 0

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                raise JournalError(f"journal {self._path} has schema version {version}, expected 1")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise JournalError(f"journal {self._path} cannot use WAL mode (got {mode})")
            conn.execute(f"PRAGMA synchronous={'FULL' if self._durability == 'fsync' else 'OFF'}")
            conn.execute("PRAGMA journal_size_limit=67108864")  # truncate a WAL that a burst made big
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run off the commit path
            conn.execute("BEGIN IMMEDIATE")
            for ddl in _SCHEMA:
                conn.execute(ddl)
            conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        # The file and its -wal were maybe just created: make their directory entries durable.
        _fsync_dir(self._path.parent)
        return conn

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the writer thread; its commits wake waiters on `loop`."""
        if self._state != _OPEN:
            raise RuntimeError(f"start() needs an open journal that is not started (it is {self._state})")
        self._loop = loop
        self._writer_done = loop.create_future()
        ckpt_conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        ckpt_conn.execute(f"PRAGMA synchronous={'FULL' if self._durability == 'fsync' else 'OFF'}")
        self._ckpt_conn = ckpt_conn
        self._thread = threading.Thread(target=self._writer_main, name="cairn-journal-writer", daemon=True)
        self._ckpt_thread = threading.Thread(
            target=self._checkpointer_main, args=(ckpt_conn,), name="cairn-journal-checkpointer", daemon=True
        )
        self._state = _RUNNING
        self._running = True
        self._thread.start()
        self._ckpt_thread.start()
        if self._pending:
            self._wake.set()

    async def close(self) -> None:
        """Commit everything pending, stop the writer, close the database.

        Raises `JournalError` (after releasing everything) if the writer had failed, since some
        appended records are then not durable. Closing twice, or concurrently, closes once.
        """
        if self._closer is None:
            self._closer = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closer)

    async def _close(self) -> None:
        self._accepting = False  # appends are refused from here on
        if self._state == _RUNNING:
            assert self._writer_done is not None
            with self._lock:
                self._closing = True
            self._wake.set()
            await asyncio.shield(self._writer_done)  # waiters of the last batch are woken before this
            self._state = _CLOSED
            # Joining threads and the final checkpoint of the last close take a moment: off the loop.
            await asyncio.get_running_loop().run_in_executor(None, self._release)
        else:
            if self._state == _OPEN and self._pending and self._failed is None:
                # Never started: flush what was appended, as the writer would.
                try:
                    self._commit(self._take_pending()[0], 0)
                    self._durable_seq = self._last_seq
                except Exception as exc:
                    self._failed = exc
            self._state = _CLOSED
            self._release()
        self._fail_waiters(self._failed)
        if self._failed is not None:
            raise JournalError(f"journal writer failed: {self._failed!r}") from self._failed

    def _release(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self._ckpt_thread is not None:
            self._ckpt_stop = True
            self._ckpt_wake.set()
            self._ckpt_thread.join()  # it closes its own connection, before the writer's below
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    # ------------------------------------------------------------------ reading

    @property
    def path(self) -> Path:
        return self._path

    @property
    def last_seq(self) -> int:
        """Highest seq on disk at `open`, or appended since."""
        return self._last_seq

    @property
    def durable_seq(self) -> int:
        """Every record with seq <= this is committed."""
        return self._durable_seq

    def read(self, after: int = 0) -> Iterator[tuple[int, bytes]]:
        """Every durable record with seq > `after`, in seq order, as (seq, data).

        Reads through its own connection, so it is safe while the writer runs. Raises
        `JournalPruned` if records after `after` were pruned by a snapshot (load it first).
        """
        self._require_open()
        if after < self._pruned_through:
            raise JournalPruned(
                f"records up to seq {self._pruned_through} were pruned by a snapshot; "
                f"load the snapshot and read after its seq, not after {after}"
            )
        return self._read_rows(after)

    def _read_rows(self, after: int) -> Iterator[tuple[int, bytes]]:
        for records in self._read_decoded(after, _same, _split_row):
            yield from records

    def read_decoded(self, after: int, typ: type[T]) -> Iterator[list[tuple[int, T]]]:
        """Like `read`, but each record decoded as `typ` (MessagePack), a whole row per call.

        Yields one list of (seq, record) per journal row: a group commit is decoded in one
        msgspec call, which is what makes recovery fast.
        """
        self._require_open()
        if after < self._pruned_through:
            raise JournalPruned(f"records up to seq {self._pruned_through} were pruned by a snapshot")
        one = msgspec.msgpack.Decoder(typ).decode
        many = msgspec.msgpack.Decoder(list[tuple[int, typ]]).decode  # type: ignore[valid-type]

        def split(blob: bytes) -> list[tuple[int, T]]:
            try:
                return many(blob)
            except msgspec.ValidationError:  # a row written before records were embedded
                return [(seq, one(data)) for seq, data in _split_row(blob)]

        return self._read_decoded(after, one, split)

    def _read_decoded(
        self, after: int, one: Callable[[bytes], T], many: Callable[[bytes], list[tuple[int, T]]]
    ) -> Iterator[list[tuple[int, T]]]:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA query_only=1")
            rows = conn.execute(
                "SELECT last_seq, first_seq, data FROM journal WHERE last_seq > ? ORDER BY last_seq", (after,)
            )
            for last_seq, first_seq, blob in rows:
                if first_seq == last_seq:
                    yield [(last_seq, one(blob))]
                    continue
                records = many(blob)
                if first_seq <= after:  # only the first row can straddle `after`
                    records = [r for r in records if r[0] > after]
                yield records
        finally:
            conn.close()

    def _require_open(self) -> None:
        if self._state not in (_OPEN, _RUNNING):
            raise RuntimeError(f"journal is {self._state}; call open() first")

    # ------------------------------------------------------------------ appending

    def append(self, seq: int, data: bytes) -> None:
        """Queue one record for the next commit. O(1), no I/O, never waits.

        Raises ValueError unless seq > every earlier seq, TypeError unless data is bytes, and
        `JournalError` once the journal failed or is closing.
        """
        if not self._accepting:
            raise JournalError(f"journal is {self._state}; it takes no records")
        if self._failed is not None:
            raise JournalError(f"journal writer failed: {self._failed!r}") from self._failed
        if seq <= self._last_seq:
            raise ValueError(f"seq {seq} is not greater than the last seq {self._last_seq}")
        if type(data) is not bytes:
            raise TypeError(f"record data must be bytes, not {type(data).__name__}")
        self._last_seq = seq
        with self._lock:
            self._pending.append((seq, data))
        if not self._wake.is_set():
            self._wake.set()

    def append_many(self, items: Sequence[tuple[int, bytes]]) -> None:
        """Queue several records in order; all or none of them (same checks as `append`). O(len)."""
        if not self._accepting:
            raise JournalError(f"journal is {self._state}; it takes no records")
        if self._failed is not None:
            raise JournalError(f"journal writer failed: {self._failed!r}") from self._failed
        last = self._last_seq
        for seq, data in items:
            if seq <= last:
                raise ValueError(f"seq {seq} is not greater than the last seq {last}")
            if type(data) is not bytes:
                raise TypeError(f"record data must be bytes, not {type(data).__name__}")
            last = seq
        if not items:
            return
        self._last_seq = last
        with self._lock:
            self._pending.extend(items)
        if not self._wake.is_set():
            self._wake.set()

    async def wait_durable(self, seq: int) -> None:
        """Return once every record with seq <= `seq` is committed.

        Returns at once, without a future, when it already is. Raises `JournalError` if the
        writer failed (or the journal closed) first, ValueError if `seq` was never appended.
        """
        if seq <= self._durable_seq:
            return
        if self._failed is not None:
            raise JournalError(f"journal writer failed: {self._failed!r}") from self._failed
        if not self._running:
            if self._loop is None:
                raise RuntimeError("start() the journal before waiting on it")
            raise JournalError(f"journal is closed; seq {seq} will not become durable")
        if seq > self._last_seq:
            raise ValueError(f"seq {seq} was never appended (last seq is {self._last_seq})")
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        waiters = self._waiters
        if not waiters or waiters[-1][0] <= seq:
            waiters.append((seq, fut))
        else:
            heapq.heappush(self._late, (seq, next(self._late_ids), fut))
        await fut

    # ------------------------------------------------------------------ writer thread

    def _take_pending(self) -> tuple[list[_Record], bool, int]:
        with self._lock:
            batch, self._pending = self._pending, []
            return batch, self._closing, self._prune_target

    def _writer_main(self) -> None:
        try:
            while True:
                self._wake.wait()
                self._wake.clear()  # before taking the batch, so a later append sets it again
                batch, closing, prune_to = self._take_pending()
                if batch:
                    self._commit(batch, 0)
                    self._notify(self._on_commit, batch[-1][0])
                    self._checkpoint_if_due()
                if closing:
                    return
                if prune_to > self._pruned_through:
                    self._commit([], prune_to)
                    self._notify(self._on_pruned, self._pruned_through)
                    if self._pruned_through < prune_to:
                        self._wake.set()  # more to prune, after whatever arrives meanwhile
        except BaseException as exc:
            self._failed = exc
            self._notify(self._writer_failed, exc)
        finally:
            self._notify(self._on_writer_exit)

    def _commit(self, batch: list[_Record], prune_to: int) -> None:
        """Write `batch` (and/or prune a chunk up to `prune_to`) in one transaction."""
        conn = self._conn
        if conn is None:
            raise JournalError("journal connection is closed")
        t0 = time.perf_counter()
        step = self.ROW_RECORDS
        if prune_to == 0 and len(batch) <= step:
            # Autocommit: one statement step is the whole transaction (one GIL hand-back).
            blob = _row_data(batch, self._embed)
            conn.execute(_INSERT, (batch[-1][0], batch[0][0], blob))
            self._wal_bytes += len(blob) + 8192  # a commit also rewrites a leaf and a header page
        else:
            rows = []
            for i in range(0, len(batch), step):
                part = batch[i : i + step]
                rows.append((part[-1][0], part[0][0], _row_data(part, self._embed)))
                self._wal_bytes += len(rows[-1][2]) + 4096
            conn.execute("BEGIN IMMEDIATE")
            try:
                if rows:
                    conn.executemany(_INSERT, rows)
                pruned = self._prune_chunk(conn, prune_to) if prune_to else 0
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            if pruned:
                self._pruned_through = pruned
        if batch:
            dt = time.perf_counter() - t0
            self._commits += 1
            self._records += len(batch)
            self._last_batch = len(batch)
            self._max_batch = max(self._max_batch, len(batch))
            self._last_commit_s = dt
            self._commit_s_total += dt

    def _checkpoint_if_due(self) -> None:
        """After a commit: finish a background checkpoint inline, or start the next one."""
        if self._ckpt_done or self._wal_bytes >= self.CHECKPOINT_INLINE_BYTES:
            # Only frames written since the background pass are left: cheap. Once every frame is
            # in the database, the next commit restarts the WAL from its start.
            self._ckpt_done = False
            self._wal_bytes = 0
            try:
                assert self._conn is not None
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self._inline_checkpoints += 1
            except sqlite3.Error:
                self._checkpoint_errors += 1  # records are safe in the WAL; the next commit tells
        elif self._wal_bytes >= self.CHECKPOINT_BYTES and not self._ckpt_wake.is_set():
            self._ckpt_wake.set()

    def _checkpointer_main(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                self._ckpt_wake.wait()
                if self._ckpt_stop:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self._checkpoints += 1
                    self._ckpt_done = True
                except sqlite3.Error:
                    self._checkpoint_errors += 1
                self._ckpt_wake.clear()  # after `_ckpt_done`: the writer signals again only after it
                if self._ckpt_stop:  # set (with the event this just cleared) during the checkpoint
                    return
        finally:
            conn.close()

    def _prune_chunk(self, conn: sqlite3.Connection, target: int) -> int:
        """Delete up to PRUNE_ROWS rows whose records are all <= target; return the new pruned seq."""
        row = conn.execute(
            "SELECT last_seq FROM journal WHERE last_seq <= ? ORDER BY last_seq LIMIT 1 OFFSET ?",
            (target, self.PRUNE_ROWS - 1),
        ).fetchone()
        upto = target if row is None else row[0]
        conn.execute("DELETE FROM journal WHERE last_seq <= ?", (upto,))
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('pruned_through', ?)", (upto,))
        return upto

    def _notify(self, callback: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left to wake
            loop.call_soon_threadsafe(callback, *args)

    # ------------------------------------------------------------------ loop-side callbacks

    def _on_commit(self, durable: int) -> None:
        if durable <= self._durable_seq:
            return
        self._durable_seq = durable
        waiters = self._waiters
        while waiters and waiters[0][0] <= durable:
            fut = waiters.popleft()[1]
            if not fut.done():
                fut.set_result(None)
        late = self._late
        while late and late[0][0] <= durable:
            fut = heapq.heappop(late)[2]
            if not fut.done():
                fut.set_result(None)

    def _on_pruned(self, upto: int) -> None:
        keep = []
        for target, fut in self._prune_waiters:
            if target <= upto:
                if not fut.done():
                    fut.set_result(True)
            else:
                keep.append((target, fut))
        self._prune_waiters = keep

    def _fail_waiters(self, exc: BaseException | None) -> None:
        waiting = [fut for _, fut in self._waiters] + [fut for _, _, fut in self._late]
        self._waiters.clear()
        self._late.clear()
        for fut in waiting:
            if not fut.done():
                if exc is None:
                    fut.set_exception(JournalError("journal closed before the record was durable"))
                else:
                    err = JournalError(f"journal writer failed: {exc!r}")
                    err.__cause__ = exc
                    fut.set_exception(err)
        for _, pruned in self._prune_waiters:
            if not pruned.done():
                pruned.set_result(False)
        self._prune_waiters = []

    def _writer_failed(self, exc: BaseException) -> None:
        log.error(
            "journal writer failed: records after seq %d are not durable and never will be (%s)",
            self._durable_seq, exc, exc_info=exc,
        )  # fmt: skip
        self._fail_waiters(exc)
        if self._on_failed is not None:
            self._on_failed(exc)

    def _on_writer_exit(self) -> None:
        self._running = False
        if self._writer_done is not None and not self._writer_done.done():
            self._writer_done.set_result(None)

    # ------------------------------------------------------------------ snapshots

    def _snapshot_path(self, seq: int) -> Path:
        return self._path.with_name(f"{self._path.name}.snapshot-{seq:020d}.bin")

    def _snapshot_files(self) -> list[tuple[int, Path]]:
        """Published snapshot files, newest first."""
        prefix = f"{self._path.name}.snapshot-"
        found = []
        for entry in self._path.parent.glob(f"{prefix}*.bin"):
            digits = entry.name[len(prefix) : -len(".bin")]
            if digits.isdigit():
                found.append((int(digits), entry))
        found.sort(reverse=True)
        return found

    def _remove_snapshot_temps(self) -> None:
        for entry in self._path.parent.glob(f"{self._path.name}.snapshot-*.bin.tmp"):
            with contextlib.suppress(OSError):
                entry.unlink()

    def _quarantine_snapshots_ahead(self) -> None:
        """Rename snapshots newer than the journal to `.stale`: their records were lost.

        Snapshots are published only once durable, so this needs lost journal writes (power loss
        with durability "os", an older database restored). The journal will reuse those seqs for
        other records, so such a snapshot must never be loaded; it is kept for a person to look at.
        """
        for seq, path in self._snapshot_files():
            if seq > self._last_seq:
                with contextlib.suppress(OSError):
                    path.rename(path.with_name(path.name + ".stale"))

    def load_snapshot(self) -> tuple[int, bytes] | None:
        """The newest valid snapshot as (seq, blob), or None.

        A file that is truncated, corrupt (digest mismatch) or ahead of the journal is skipped,
        and an older one is tried.
        """
        self._require_open()
        for seq, path in self._snapshot_files():
            if seq > self._last_seq:
                continue
            snap = _read_snapshot_file(path)
            if snap is not None and snap[0] == seq:
                return snap
        return None

    def write_snapshot(self, seq: int, blob: bytes) -> None:
        """Write the snapshot of the state at `seq`, atomically: tmp file, fsync, rename, dir fsync.

        When the journal is open, `seq` must already be durable (so a snapshot never gets ahead
        of the journal). Old snapshot files are kept; `snapshot_forked` prunes them.
        """
        if self._state in (_OPEN, _RUNNING) and seq > self._durable_seq:
            raise ValueError(f"snapshot seq {seq} is not durable yet (durable seq is {self._durable_seq})")
        final = self._snapshot_path(seq)
        tmp = final.with_name(final.name + ".tmp")
        _write_snapshot_file(tmp, seq, blob)
        _publish_snapshot(tmp, final)

    async def snapshot_forked(self, seq: int, make_blob: Callable[[], bytes]) -> bool:
        """Snapshot the state at `seq` in a forked child, without stalling the loop.

        Call it when the in-memory state is exactly the state at `seq` (the fork happens before
        the first await). The child calls `make_blob()` on its copy-on-write image, writes and
        fsyncs a temp file, and exits. The parent then waits for `seq` to be durable, publishes
        the file, prunes journal rows with seq <= `seq` in the writer thread, and keeps the
        KEEP_SNAPSHOTS newest files. Returns False if the child failed or another snapshot is
        running; raises `JournalError` if the writer failed.
        """
        if not self._running or not self._accepting:
            raise RuntimeError(f"snapshot_forked() needs a started journal (it is {self._state})")
        if seq > self._last_seq:
            raise ValueError(f"snapshot seq {seq} is ahead of the last seq {self._last_seq}")
        if self._snapshotting:
            return False
        self._snapshotting = True
        final = self._snapshot_path(seq)
        tmp = final.with_name(final.name + ".tmp")
        loop = asyncio.get_running_loop()
        try:
            pid = os.fork()
            if pid == 0:
                _snapshot_child(tmp, seq, make_blob, self._lock_fd)
            try:
                exit_code = await _wait_child(pid)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                raise
            ok = exit_code == 0
            if exit_code is None:  # someone else reaped the child: trust the file only if it checks
                snap = await loop.run_in_executor(None, _read_snapshot_file, tmp)
                ok = snap is not None and snap[0] == seq
            if not ok:
                return False
            await self.wait_durable(seq)
            await loop.run_in_executor(None, _publish_snapshot, tmp, final)
            if not await self._prune(seq):
                return True  # published, but the journal closed before it was pruned
            await loop.run_in_executor(None, self._remove_old_snapshots)
            return True
        finally:
            self._snapshotting = False
            with contextlib.suppress(OSError):
                tmp.unlink()

    async def _prune(self, seq: int) -> bool:
        """Have the writer delete rows with every record <= seq; True once done."""
        if self._pruned_through >= seq:
            return True
        assert self._loop is not None
        fut: asyncio.Future[bool] = self._loop.create_future()
        self._prune_waiters.append((seq, fut))
        with self._lock:
            self._prune_target = max(self._prune_target, seq)
        self._wake.set()
        return await fut

    def _remove_old_snapshots(self) -> None:
        for _, path in self._snapshot_files()[self.KEEP_SNAPSHOTS :]:
            with contextlib.suppress(OSError):
                path.unlink()

    def _check(self) -> None:
        """Assert the invariants, for tests: seqs ordered, waiters sorted and all not yet durable."""
        assert 0 <= self._pruned_through <= max(self._durable_seq, self._prune_target)
        assert self._durable_seq <= self._last_seq
        seqs = [seq for seq, _ in self._waiters]
        assert seqs == sorted(seqs), "waiters out of seq order"
        assert all(seq > self._durable_seq for seq in seqs), "a durable waiter was not released"
        late = self._late
        assert all(late[(i - 1) // 2] <= late[i] for i in range(1, len(late))), "late waiters lost heap order"
        assert all(seq > self._durable_seq for seq, _, _ in late), "a durable late waiter was not released"
        with self._lock:
            pending = [seq for seq, _ in self._pending]
        assert all(a < b for a, b in itertools.pairwise(pending)), "pending seqs not increasing"
        assert not pending or (pending[0] > self._durable_seq and pending[-1] <= self._last_seq)

    # ------------------------------------------------------------------ metrics

    def stats(self) -> dict[str, float]:
        """Counters for /metrics: commits, records, batch sizes, commit times, seqs, backlog."""
        return {
            "commits": float(self._commits),
            "records": float(self._records),
            "last_batch": float(self._last_batch),
            "max_batch": float(self._max_batch),
            "last_commit_seconds": self._last_commit_s,
            "commit_seconds_total": self._commit_s_total,
            "pending": float(len(self._pending)),
            "waiters": float(len(self._waiters) + len(self._late)),
            "last_seq": float(self._last_seq),
            "durable_seq": float(self._durable_seq),
            "pruned_through": float(self._pruned_through),
            "checkpoints": float(self._checkpoints),
            "inline_checkpoints": float(self._inline_checkpoints),
            "checkpoint_errors": float(self._checkpoint_errors),
            "failed": 1.0 if self._failed is not None else 0.0,
        }


def _row_data(records: list[_Record], embed: bool) -> bytes:
    """A row's `data`: the record itself if it is alone, else a MessagePack array of [seq, record].

    MessagePack records are embedded as they are (`embed`), so that a reader can decode a whole
    row in one call (`read_decoded`); other bytes go in as binary strings.
    """
    if len(records) == 1:
        return records[0][1]
    if embed:
        return _encode([(seq, msgspec.Raw(data)) for seq, data in records])
    return _encode(records)


def _split_row(blob: bytes) -> list[tuple[int, bytes]]:
    """A multi-record row back into (seq, record bytes); also reads rows that held records as binary strings."""
    out = []
    for seq, raw in _decode_split(blob):
        data = bytes(raw)
        if data[:1] in _BIN_MARKERS:  # the older layout: each record a binary string
            data = _decode_bin(data)
        out.append((seq, data))
    return out


def _same(data: bytes) -> bytes:
    return data


_encode = msgspec.msgpack.Encoder().encode
_decode_split = msgspec.msgpack.Decoder(list[tuple[int, msgspec.Raw]]).decode
_decode_bin = msgspec.msgpack.Decoder(bytes).decode
_BIN_MARKERS = (b"\xc4", b"\xc5", b"\xc6")


# ---------------------------------------------------------------------- snapshot files


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_snapshot_file(tmp: Path, seq: int, blob: bytes) -> None:
    """Write header, digest and blob to `tmp` and fsync it (no rename)."""
    header = _SNAP_HEADER.pack(_SNAP_MAGIC, _SNAP_VERSION, 0, seq, len(blob))
    digest = hashlib.blake2b(header, digest_size=_SNAP_DIGEST)
    digest.update(blob)
    with open(tmp, "wb") as f:
        f.write(header)
        f.write(digest.digest())
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())


def _publish_snapshot(tmp: Path, final: Path) -> None:
    os.replace(tmp, final)
    _fsync_dir(final.parent)


def _read_snapshot_file(path: Path) -> tuple[int, bytes] | None:
    """(seq, blob) if the file is complete and its digest matches, else None."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return None
    head = _SNAP_HEADER.size
    if len(raw) < head + _SNAP_DIGEST:
        return None
    magic, version, _flags, seq, length = _SNAP_HEADER.unpack_from(raw)
    if magic != _SNAP_MAGIC or version != _SNAP_VERSION or len(raw) != head + _SNAP_DIGEST + length:
        return None
    digest = hashlib.blake2b(raw[:head], digest_size=_SNAP_DIGEST)
    blob = raw[head + _SNAP_DIGEST :]
    digest.update(blob)
    if digest.digest() != raw[head : head + _SNAP_DIGEST]:
        return None
    return seq, blob


def _snapshot_child(tmp: Path, seq: int, make_blob: Callable[[], bytes], lock_fd: int) -> None:
    """In the forked child: write the snapshot temp file and exit; never returns, touches no sqlite or loop."""
    status = 1
    try:
        gc.disable()  # no collection: it would copy pages and could run finalizers of parent objects
        if lock_fd >= 0:
            os.close(lock_fd)  # so a crashed parent's restart is not locked out by this child
        with contextlib.suppress(ValueError):  # only possible from the main thread
            signal.set_wakeup_fd(-1)  # the parent's loop owns that fd
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        blob = make_blob()
        if type(blob) is not bytes:
            raise TypeError(f"make_blob() must return bytes, not {type(blob).__name__}")
        _write_snapshot_file(tmp, seq, blob)
        status = 0
    except BaseException:
        with contextlib.suppress(BaseException):
            os.write(2, f"cairn journal snapshot child failed:\n{traceback.format_exc()}".encode())
    finally:
        os._exit(status)


async def _wait_child(pid: int) -> int | None:
    """Await a child's exit without blocking the loop; its exit code, or None if already reaped."""
    loop = asyncio.get_running_loop()
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = -1
    if pidfd >= 0:
        exited: asyncio.Future[None] = loop.create_future()

        def on_readable() -> None:
            if not exited.done():
                exited.set_result(None)

        try:
            loop.add_reader(pidfd, on_readable)
            try:
                await exited
            finally:
                loop.remove_reader(pidfd)
        finally:
            os.close(pidfd)
    try:
        if pidfd >= 0:
            _, status = os.waitpid(pid, 0)  # it has exited: this does not block
        else:
            _, status = await loop.run_in_executor(None, os.waitpid, pid, 0)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status)
