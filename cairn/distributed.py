"""The distributed runtime: several identical nodes share one Redis or Redis Cluster.

Each node keeps the core `Engine` as a cache of every hunt, built from the hunts' record streams
in Redis. A command is decided by the core, on the node, without an `await`; the records it
decides are *not* applied yet (`RedisRuntime.commit`). They are committed through an atomic script
(a compare-and-set plus the idempotency record, see `cairn/store/redis.py`), and only a committed
record is applied (`Engine.apply`), in the stream's order. When the script says another node won
(the treasure was taken, the window closed, the request was a replay), the node catches up with
the stream and answers from the cache: `taken` (with the temperature decided, which already left
that treasure out), or the replayed claim. Every node applies every record of every hunt in the
same per-hunt order, so they all derive the same state, events and leaderboards.

Timers (hunt start and end, bounty windows) and recurring firings are run by the node holding the
scheduler lease; its writes carry the lease's fencing token, and each hunt rejects a token older
than one it has seen, so a node whose lease expired while it was paused writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from cairn import config as configmod
from cairn.app import Runtime
from cairn.core import records as rec
from cairn.core.engine import Engine, Outcome
from cairn.core.errors import (
    AdminConflict,
    CairnError,
    ClaimVoided,
    GrantAcked,
    GrantCancelled,
    GrantNotFound,
    HuntExists,
    HuntNotActive,
    HuntNotFound,
    StoreUnavailable,
)
from cairn.core.ids import ADMIN_SPAN
from cairn.core.records import (
    Acked,
    Admin,
    AnyRecord,
    Claimed,
    HuntCreated,
    HuntEnded,
    HuntStarted,
    Recurring,
    Settled,
    WorldAdded,
    WorldRetired,
)  # fmt: skip
from cairn.store.redis import ADMIN, HEALTH_EVERY, INDEX, LOST, RECURRING, WORLDS, RedisStore, Watch, hunt_keys, sid

log = logging.getLogger("cairn.distributed")

READ_GAP = 0.005  # seconds: reads of announced streams start at least this far apart (under load they batch)
LEASE_TTL_MS = 3000
LEASE_RENEW = 0.5
ZERO = b"0-0"
T = TypeVar("T")


class Job:
    """The records of one command, waiting to be committed, and the reply to fix up afterwards."""

    __slots__ = ("ctx", "error", "kind", "records", "result", "task")

    def __init__(self, kind: str, records: list[AnyRecord], result: Any, ctx: Any = None) -> None:
        self.kind = kind
        self.records = records
        self.result = result
        self.ctx = ctx
        self.task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None


def job_kind(records: Sequence[AnyRecord]) -> str:
    """How the records of one command are committed, by what the command decided."""
    last = records[-1]
    if isinstance(records[0], Admin):
        return "admin"
    if isinstance(last, (Claimed, Settled)):
        return "dig"  # a claim, after a settlement that fell due; or a settlement alone
    if isinstance(last, HuntEnded):
        return "end"
    if isinstance(last, Acked):
        return "ack"
    if isinstance(last, (HuntCreated, HuntStarted)):
        return "create"
    if isinstance(last, Recurring):
        return "recurring"
    assert isinstance(last, (WorldAdded, WorldRetired))
    return "world"


def admin_flags(eng: Engine, r: Admin) -> list[str]:
    """The once-flags of an operator's action on a hunt (`cairn/store/redis.py`, APPEND): of two nodes
    voiding one claim, or cancelling and acking one grant, at once, only the first append is taken."""
    if r.action == "claim.void":
        rehide = [f"~t:{eng.claims[r.target].n}"] if r.args.get("rehide") else []
        return [f"v:{r.target}", *rehide]
    if r.action == "grant.cancel":
        return [f"a:{r.target}"]  # the ack's flag: a grant is acked or cancelled, never both
    if r.action == "grant.reissue":
        return [f"g:{r.args['grant_id']}"]
    return []


def lost_race(eng: Engine, r: Admin) -> CairnError:
    """The error of an action whose once-flag another node's record set first (its append was 'dup')."""
    if r.action == "claim.void":
        return ClaimVoided(f"claim {r.target!r} is voided already", field="claim_id")
    if r.action == "grant.cancel":
        g = eng.grants.get(r.target)
        if g is not None and g.ack is not None and g.undone is None:
            return GrantAcked(f"grant {r.target!r} was delivered: only a pending grant can be cancelled",
                              field="grant_id")  # fmt: skip
        return GrantCancelled(f"grant {r.target!r} is cancelled already", field="grant_id")
    return AdminConflict(f"{r.action} on {r.target or r.hunt!r} was done by another request meanwhile")


class Recovery:
    def __init__(self) -> None:
        self.hunts = 0
        self.records = 0
        self.seconds = 0.0

    def __repr__(self) -> str:
        return f"Recovery(redis, hunts={self.hunts}, records={self.records}, seconds={self.seconds:.3f})"


class RedisNodeStore:
    """A Redis node's `Store` (`cairn/store/base.py`): records are committed by the node's scripts
    (`RedisRuntime.commit_job`), which apply them once Redis has them. Recovery reads the streams."""

    kind = "redis"

    def __init__(self, redis: RedisStore) -> None:
        self.redis = redis
        self.node: RedisRuntime | None = None  # the node this store commits for (`RedisRuntime.__init__`)
        self.pending: dict[int, Job] = {}  # seq -> the job committing it
        self.failed: dict[int, Job] = {}  # last seq of a failed job -> the job, until its reply sees it
        self.committed = 0
        self.last_recovery = Recovery()
        self.on_failed: Callable[[BaseException], None] | None = None  # Redis never fails for good

    @property
    def _node(self) -> RedisRuntime:
        assert self.node is not None, "a RedisRuntime first"
        return self.node

    @property
    def durable_seq(self) -> int:
        pending = self.pending
        if pending:
            return min(pending) - 1
        eng = self._node.engine
        return eng.seq if eng is not None else 0

    async def recover(self, engine: Engine) -> Recovery:
        return await self._node.load(engine)

    def ready(self) -> bool:
        return self.redis.up and self._node.loaded

    def stats(self) -> dict[str, Any]:
        return {"commits": self.redis.calls, "records": self.committed, "failed": not self.redis.up}

    def snapshot_due(self) -> bool:
        return False  # every node rebuilds from the streams

    async def snapshot(self, engine: Engine) -> bool:
        return False

    async def close(self) -> None:
        await self.redis.close()

    def persist(self, records: Sequence[AnyRecord], result: Any = None, ctx: Any = None) -> None:
        """Commit the records of one command in the background; `result`, the reply, is fixed up
        if another node won (`RedisRuntime.commit_job`)."""
        if records:
            self.start(Job(job_kind(records), list(records), result, ctx))

    def start(self, job: Job) -> None:
        for r in job.records:
            self.pending[r.seq] = job
        job.task = asyncio.create_task(self._node.commit_job(job))
        job.task.add_done_callback(functools.partial(self._done, job))

    def _done(self, job: Job, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            job.error = StoreUnavailable("the store (Redis) is unreachable; retry shortly")
        elif task.exception() is not None:
            job.error = task.exception()
        for r in job.records:
            self.pending.pop(r.seq, None)
        if job.error is None:
            self.committed += len(job.records)
            return
        if job.kind == "dig" and isinstance(job.error, CairnError):
            job.result.clear()  # a batch slot shows the op's own error
            job.result.update(job.error.to_wire())
        # The reply waiting for this job raises its error (found by the seq the reply waits for).
        last = max(r.seq for r in job.records)
        self.failed[last] = job
        asyncio.get_running_loop().call_later(10.0, self.failed.pop, last, None)

    async def durable(self, seq: int) -> None:
        """Return once every record up to `seq` is committed; raise if the command that made `seq` failed."""
        tasks = {j.task for s, j in self.pending.items() if s <= seq and j.task is not None}
        if tasks:
            await asyncio.wait(tasks)
        job = self.failed.pop(seq, None)
        if job is not None and job.error is not None:
            raise job.error


class RedisRuntime(Runtime):
    """A `Runtime` whose engine is a cache of the hunts in Redis (see the module docstring)."""

    runs_ahead = False  # only committed records are applied

    def __init__(self, cfg: configmod.Config, store: RedisNodeStore, data_dir: str | Path | None = None) -> None:
        super().__init__(cfg, store, data_dir)
        self.store: RedisNodeStore = store
        store.node = self
        self.redis = store.redis
        self.fail_fast = self.redis.check
        self.node = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.redis.node = self.node
        self.last: dict[str, tuple[int, int]] = {}  # hunt -> last stream id applied
        self.tails: dict[str, bytes] = {INDEX: ZERO, RECURRING: ZERO, WORLDS: ZERO, ADMIN: ZERO}
        self.creating: set[str] = set()  # hunts this node is committing: not read from their streams meanwhile
        self.loaded = False
        self.token = 0
        self.leading = 0  # the scheduler lease's fencing token while this node holds it
        self.lease_until = 0.0
        self._tasks: list[asyncio.Task[Any]] = []
        self._busy: set[asyncio.Task[Any]] = set()
        self._reading: dict[str, asyncio.Future[None]] = {}  # hunt -> the stream read in flight
        self.watch = Watch(self.redis)
        self.changed: set[str] = set()  # hunts whose streams got records since this node last read them
        self.meta: set[str] = set()  # of INDEX, RECURRING, WORLDS, ADMIN: likewise
        self.sweep = False  # notices may have been lost: read every stream from its last applied id
        self._wake = asyncio.Event()
        self._reads_started = self._reads_done = 0  # reads of announced streams (`_read_forever`)
        self._read_waiters: list[tuple[int, asyncio.Future[None]]] = []  # (read, its end) for `caught_up`

    async def start(self) -> None:
        await super().start()
        self.redis.on_up = self._resync
        self._tasks = [
            asyncio.create_task(self.watch.run(self._noticed, self._resync)),
            asyncio.create_task(self._read_forever()),
            asyncio.create_task(self._lease_forever()),
        ]

    async def prepare(self) -> None:
        """Wait for Redis, and take the secret every node shares (unless the config sets one)."""
        await self.redis.wait_up(time.monotonic() + 60)
        self.redis.start()
        if not self.cfg.server.secret:
            self.secret = await self.redis.shared_secret(self.secret)

    async def load(self, engine: Engine) -> Recovery:
        """Recovery (`RedisNodeStore.recover`): open the watch, then apply every world's and every hunt's stream."""
        started = time.perf_counter()
        assert engine is self.engine
        deadline = time.monotonic() + 60
        while True:  # before the load: every record committed from now on is announced
            try:
                await self.watch.open()
                break
            except StoreUnavailable:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(HEALTH_EVERY)
        while await self.read_worlds():  # every world first: hunts are placed in them
            pass
        while await self.poll_once():  # load every hunt from its stream
            pass
        self.changed.clear()  # read by the load
        info = self.store.last_recovery
        info.hunts = len(engine.hunts)
        info.records = self.store.committed
        info.seconds = time.perf_counter() - started
        return info

    async def recovered(self) -> None:
        self.eng.new_events.clear()
        self.loaded = True
        log.info("node %s loaded %r", self.node, self.store.last_recovery)
        await self.renew_lease()

    # ---- committing what this node decides -----------------------------------------------------
    def commit(self, out: Outcome) -> None:
        """Commit the outcome's records through Redis in the background; they are applied once
        committed (`commit_job`). Raises StoreUnavailable at once while Redis is unreachable."""
        self.redis.check()
        self.store.persist(out.records, out.result)

    async def view(self, out: Outcome, view: Callable[[], T]) -> T:
        """As `Runtime.view`, but the view is built once Redis committed the records and they are applied."""
        self.commit(out)
        await self.store.durable(out.wait_seq)
        result = view()
        self.publish()
        return result

    # ---- reading the streams -----------------------------------------------------------------
    def _apply_entries(self, hunt: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> int:
        eng = self.eng
        last = self.last.get(hunt, (0, 0))
        applied = 0
        for eid, fields in entries:
            k = sid(eid)
            if k <= last:
                continue
            last = k
            try:
                r = rec.decode(fields[b"r"])
                r = msgspec.structs.replace(r, seq=eng.seq + 1, ev=int(fields.get(b"ev", b"0")))
                if isinstance(r, HuntCreated) and r.hunt in eng.hunts:
                    continue
                eng.apply((r,))
                applied += 1
            except Exception:
                log.exception("record %s of hunt %s not applied", eid, hunt)
        self.last[hunt] = last
        self.store.committed += applied
        return applied

    async def catch_up(self, hunt: str, until: tuple[int, int] | None = None) -> None:
        """Apply the hunt's stream up to its end, or at least through `until`.

        Reads for `until` are shared: many commits of one hunt landing at once cost one read."""
        if until is None:
            await self._read_rest(hunt)
            return
        for _ in range(100):  # bounded: a stream that lost entries (a Redis without AOF) must not spin
            if self.last.get(hunt, (0, 0)) >= until:
                return
            task = self._reading.get(hunt)
            if task is None:
                task = self._reading[hunt] = asyncio.ensure_future(self._read_rest(hunt))
                task.add_done_callback(lambda _t, h=hunt: self._reading.pop(h, None))
            await task

    async def _read_rest(self, hunt: str) -> None:
        key = hunt_keys(hunt)[1]
        while True:
            entries = await self.redis.range_after(key, b"%d-%d" % self.last.get(hunt, (0, 0)))
            self._apply_entries(hunt, entries)
            self.publish()
            if len(entries) < 1000:
                return

    def _apply_worlds(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Apply world records after the last one applied (a poll and a commit may read the same)."""
        eng = self.eng
        for eid, fields in entries:
            if sid(eid) <= sid(self.tails[WORLDS]):
                continue
            self.tails[WORLDS] = eid
            try:
                eng.apply((msgspec.structs.replace(rec.decode(fields[b"r"]), seq=eng.seq + 1),))
            except Exception:
                log.exception("world record %s not applied", eid)

    def _apply_admin(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Apply operator actions on no hunt after the last one applied. Their event ids come from the
        entry's stream id (its milliseconds, in microseconds), so that every node gives the same."""
        eng = self.eng
        for eid, fields in entries:
            ms, n = sid(eid)
            if (ms, n) <= sid(self.tails[ADMIN]):
                continue
            self.tails[ADMIN] = eid
            try:
                r = rec.decode(fields[b"r"])
                eng.apply((msgspec.structs.replace(r, seq=eng.seq + 1, ev=ms * 1000 + n * ADMIN_SPAN),))
            except Exception:
                log.exception("operator record %s not applied", eid)

    async def read_admin(self) -> bool:
        """Apply the operator actions on no hunt this node has not seen; True if the stream may hold more."""
        entries = await self.redis.range_after(ADMIN, self.tails[ADMIN])
        self._apply_admin(entries)
        self.publish()
        return len(entries) >= 1000

    async def read_worlds(self) -> bool:
        """Apply the world records this node has not seen; True if the stream may hold more."""
        entries = await self.redis.range_after(WORLDS, self.tails[WORLDS])
        self._apply_worlds(entries)
        return len(entries) >= 1000

    async def poll_once(self) -> bool:
        """Read every stream from its last applied id (at start, and when notices may have been lost);
        True if a stream may hold more."""
        more = await self.read_meta()
        return await self.read_hunts(list(self.last)) or more

    async def read_meta(self) -> bool:
        """Apply what INDEX, RECURRING and WORLDS got; True if a new hunt was listed or a stream may hold more."""
        eng = self.eng
        keys = [(k, self.tails[k]) for k in (INDEX, RECURRING, WORLDS, ADMIN)]
        index, recurring, worlds, admin = await self.redis.poll(keys)
        more = any(len(entries) >= 1000 for entries in (index, recurring, worlds, admin))
        for eid, fields in index:
            self.tails[INDEX] = eid
            h = fields[b"h"].decode()
            if h not in self.last:
                self.last[h] = (0, 0)
                self.changed.add(h)
            more = True
        for eid, fields in recurring:
            self.tails[RECURRING] = eid
            try:
                r = rec.decode(fields[b"r"])
                eng.apply((msgspec.structs.replace(r, seq=eng.seq + 1),))
            except Exception:
                log.exception("recurring record %s not applied", eid)
        self._apply_worlds(worlds)
        self._apply_admin(admin)
        if index:  # a new hunt's world was registered before the hunt was listed: read it now
            while await self.read_worlds():
                pass
        return more

    async def read_hunts(self, hunts: list[str]) -> bool:
        """Apply what the hunts' streams got after their last applied ids, one pipeline per 1,000 hunts;
        True if a stream may hold more (it is noted as changed)."""
        hunts = [h for h in hunts if h not in self.creating]
        more = False
        for i in range(0, len(hunts), 1000):
            chunk = hunts[i : i + 1000]
            results = await self.redis.poll([(hunt_keys(h)[1], b"%d-%d" % self.last.get(h, (0, 0))) for h in chunk])
            for h, entries in zip(chunk, results, strict=True):
                if entries and h not in self.creating:
                    self._apply_entries(h, entries)
                if len(entries) >= 1000:
                    self.changed.add(h)
                    self._wake.set()
                    more = True
        self.publish()
        return more

    async def read_changed(self) -> None:
        """Read the streams Redis announced since the last read: each hunt once, in one pipeline."""
        if self.meta or any(h not in self.last for h in self.changed):  # a hunt not listed here yet
            self.meta.clear()
            await self.read_meta()
        hunts = [h for h in self.changed if h not in self.creating]  # one being created here: once committed
        self.changed.difference_update(hunts)
        for h in hunts:
            self.last.setdefault(h, (0, 0))
        await self.read_hunts(hunts)

    def _noticed(self, key: bytes) -> None:
        """Redis announced an `XADD` to `key`."""
        k = key.decode(errors="replace")
        if k in self.tails:
            self.meta.add(k)
        elif k.startswith("cairn:{") and k.endswith("}:log"):
            self.changed.add(k[7:-5])
        else:
            return
        self._wake.set()

    def _resync(self) -> None:
        """Notices may have been lost (a reconnect): read every stream once."""
        log.info("node %s reads every stream again (reconnected)", self.node)
        self.sweep = True
        self._wake.set()

    async def _read_forever(self) -> None:
        loop = asyncio.get_running_loop()
        started = 0.0
        while True:
            await self._wake.wait()
            gap = started + READ_GAP - loop.time()
            if gap > 0:  # busy: let more notices come, and read them in one pipeline
                await asyncio.sleep(gap)
            started = loop.time()
            self._wake.clear()
            self._reads_started += 1
            try:
                await self._read_announced()
            finally:
                self._reads_done = self._reads_started
                waiting, self._read_waiters = self._read_waiters, []
                for n, fut in waiting:
                    if n > self._reads_done:
                        self._read_waiters.append((n, fut))
                    elif not fut.done():
                        fut.set_result(None)
            if self.changed and not self._wake.is_set():  # only hunts being created here
                await asyncio.sleep(0.01)
                self._wake.set()

    async def _read_announced(self) -> None:
        """One read: the streams Redis announced since the last, or every stream after a lost watch."""
        if not self.redis.up:
            self.sweep = True
            return  # the store's health check calls `_resync` once Redis answers
        try:
            if self.sweep:
                self.sweep = False
                self.changed.clear()
                self.meta.clear()
                while await self.poll_once():
                    pass
            else:
                await self.read_changed()
        except StoreUnavailable:
            self.sweep = True
        except Exception:
            log.exception("reading the streams failed")
            self.sweep = True
            await asyncio.sleep(HEALTH_EVERY)
            self._wake.set()

    async def caught_up(self) -> bool:
        """Wait until every record committed before this call, on any node, is applied here: the
        notices Redis sent before it (`Watch.barrier`), then the read they start. One PING per Redis,
        not a read of every stream. False when the watch cannot vouch for that (away, or notices lost)."""
        if self.sweep or not self.redis.up or not await self.watch.barrier():
            return False
        # Every notice sent before the barrier is in `changed` or `meta`, and `_wake` is set if one is
        # not read yet: wait for the read that starts next. Else for the read in flight, if any.
        target = self._reads_started + 1 if self._wake.is_set() else self._reads_started
        if target > self._reads_done:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._read_waiters.append((target, fut))
            try:
                async with asyncio.timeout(max(1.0, self.redis.timeout)):
                    await fut
            except TimeoutError:
                return False
        return not self.sweep

    # ---- the scheduler lease -----------------------------------------------------------------
    async def renew_lease(self) -> None:
        try:
            asked = time.monotonic()
            token = await self.redis.lease(self.node, LEASE_TTL_MS)
        except StoreUnavailable:
            self.token = 0
            return
        if token and token != self.token:
            log.info("node %s holds the scheduler lease (token %d)", self.node, token)
        self.token = token
        # Trust the lease for less than its TTL, counted from before the request was sent.
        self.lease_until = asked + LEASE_TTL_MS / 1000 * 0.8 if token else 0.0

    async def _lease_forever(self) -> None:
        while True:
            await asyncio.sleep(LEASE_RENEW)
            if self.redis.up:
                await self.renew_lease()

    def delivers_webhooks(self) -> bool:
        return self.leading != 0

    async def webhook_cursors(self) -> dict[str, int] | None:
        try:
            return await self.redis.webhook_cursors()
        except (CairnError, *LOST):
            return None  # Redis is down: try again in a second

    async def save_webhook_cursors(self, cursors: dict[str, int]) -> None:
        with contextlib.suppress(CairnError, *LOST):
            await self.redis.set_webhook_cursors(cursors)

    async def tick(self) -> None:
        """Board periods and hint escalations on every node; records (start, settle, end) only on
        the lease holder, one job per timer (queued again if the commit fails)."""
        eng = self.eng
        self.leading = self.token if time.monotonic() < self.lease_until and self.redis.up else 0
        for due in eng.tick(self.clock(), lead=bool(self.leading)):
            self._spawn(self.commit_job(Job("timer", due.records, None, (due.timer, self.leading))))
        self.publish()
        if self.leading and eng.recurring and (self._instances is None or self._instances.done()):
            self._instances = asyncio.create_task(self.start_due_instances())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._busy.add(task)
        task.add_done_callback(self._busy.discard)

    async def ack(self, grant_id: str) -> dict[str, Any]:
        try:
            out = self.eng.ack(grant_id, self.clock())
        except GrantNotFound:
            # The grant may be a moment old, from another node: wait for what Redis announced before
            # now. Only if the watch cannot vouch for that, read every stream (an unknown id must not
            # cost a full read each: that made bogus acks an amplifier).
            if not await self.caught_up():
                await self.poll_once()
            out = self.eng.ack(grant_id, self.clock())
        return await self.view(out, lambda: self.eng.ack_view(grant_id))

    # ---- committing ----------------------------------------------------------------------------
    async def commit_job(self, job: Job) -> None:
        """Commit one job's records through the scripts; what Redis took is applied (`_own`)."""
        if job.kind == "dig":
            await self._commit_dig(job)
        elif job.kind == "timer":
            await self._commit_timer(job)
        elif job.kind == "end":
            await self._commit_end(job)
        elif job.kind == "ack":
            await self._commit_ack(job)
        elif job.kind == "create":
            await self._commit_create(job)
        elif job.kind == "recurring":
            await self.redis.recurring_add(rec.encode(job.records[0]))
            self.eng.apply(job.records)  # at once, for the reply; its stream entry applies again in order
        elif job.kind == "admin":
            await self._commit_admin(job)
        elif job.kind == "world":
            await self.redis.world_add(rec.encode(job.records[0]))
            while await self.read_worlds():  # applied here as on every node: in the stream's order
                pass

    async def _own(self, hunt: str, recs: list[AnyRecord], out: list[bytes]) -> None:
        """Apply records this node committed: directly if nothing came between, else from the stream."""
        last_id, prev = sid(out[1]), sid(out[2])
        eng = self.eng
        if self.last.get(hunt, (0, 0)) == prev and (hunt in eng.hunts or isinstance(recs[0], HuntCreated)):
            eng.apply([msgspec.structs.replace(r, ev=ev) if (ev := int(out[4 + 2 * i])) else r
                       for i, r in enumerate(recs)])  # fmt: skip
            self.store.committed += len(recs)
            self.last[hunt] = last_id
            self.publish()
        else:
            await self.catch_up(hunt, last_id)

    async def _append_one(self, r: AnyRecord, fence: int) -> bytes:
        """Commit one once-only record (start, end, settle, ack); returns the script's status."""
        eng = self.eng
        if isinstance(r, Acked):
            g = eng.grants[r.grant_id]
            hunt = eng.claims[g.claim_id].hunt
            flags, settle = [f"a:{r.grant_id}"], None
        else:
            hunt = r.hunt  # type: ignore[union-attr]
            settle = None
            if isinstance(r, HuntStarted):
                flags = ["started"]
            elif isinstance(r, HuntEnded):
                flags = ["ended"]
            elif isinstance(r, Settled):
                flags, settle = [], (r.n, len(r.amounts))
            elif isinstance(r, Admin):
                flags = admin_flags(eng, r)
            else:
                flags = []
        out = await self.redis.append(hunt, [(r.ev, eng.event_span(r), rec.encode(r))], flags, fence, settle)
        status: bytes = out[0]
        if status == b"ok":
            # Claim ids in `out` are (id, ev) pairs after the head: reshape for `_own`.
            await self._own(hunt, [r], [out[0], out[1], out[2], out[3], out[4]])
        elif status in (b"dup", b"stale"):
            await self.catch_up(hunt)
        return status

    async def _commit_dig(self, job: Job) -> None:
        """A dig's settlement (a window fell due), then its claim. The reply, decided as if the claim
        were applied, stands if Redis takes the claim; else it becomes the claim of a replayed
        request, or `taken`. The temperature decided stands: it already left that treasure out."""
        eng = self.eng
        for r in job.records:
            if isinstance(r, Settled):
                await self._append_one(r, 0)
                continue
            assert isinstance(r, Claimed)
            hunt = r.hunt
            h = eng.hunts[hunt]
            ff = r.share is not None
            rkey = f"{r.player}\x00{r.request_id}" if r.request_id is not None else ""
            out = await self.redis.claim(
                hunt, r.n, r.claim_id, rkey, "ff" if ff else "sb", r.at, h.window, r.ev, eng.event_span(r),
                rec.encode(r),
            )  # fmt: skip
            status = out[0]
            if status == b"ok":
                await self._own(hunt, [r], [out[0], out[1], out[2], out[1], out[3]])
                return
            if status == b"nohunt":
                raise HuntNotFound(f"no hunt {hunt!r}", field="hunt")
            await self.catch_up(hunt)
            if status == b"ended":
                raise HuntNotActive(f"hunt {hunt!r} is ended", field="hunt")
            res = job.result
            temperature = res["temperature"]
            res.clear()
            c = eng.claims.get(out[1].decode()) if status == b"replay" else None
            if c is not None:
                res.update({"result": "found", "temperature": temperature, "claim": eng.claim_view(c)})
            else:
                finders = eng.finders_of(h.treasures[r.n - 1])
                res.update({"result": "taken", "temperature": temperature, "finders": finders})

    async def _commit_timer(self, job: Job) -> None:
        item, token = job.ctx
        try:
            for r in job.records:
                status = await self._append_one(r, token)
                if status in (b"stale", b"fenced"):
                    raise StoreUnavailable(status.decode())
        except CairnError as e:
            if e.code == "store_unavailable":
                self.eng.rearm(item)  # the lease holder tries again
            else:
                raise

    async def _commit_end(self, job: Job) -> None:
        """End a hunt; a settlement Redis finds stale (a finder came meanwhile) is decided again."""
        hunt = job.records[-1].hunt  # type: ignore[union-attr]
        recs = job.records
        for _attempt in range(10):
            stale = False
            for r in recs:
                if await self._append_one(r, 0) == b"stale":
                    stale = True
                    break
            if not stale:
                break
            h = self.eng.hunts[hunt]
            if h.ended is not None:
                break
            recs = list(self.eng.end_hunt(hunt, self.clock()).records)
        await self.catch_up(hunt)

    async def _commit_admin(self, job: Job) -> None:
        """An operator's action: on a hunt, into its stream (in order with its claims); else into the
        stream of actions on no hunt. Applied here as on every node: in the stream's order."""
        r = job.records[0]
        assert isinstance(r, Admin)
        if r.hunt:
            if await self._append_one(r, 0) == b"dup":
                raise lost_race(self.eng, r)
            if len(job.records) > 1:  # `hunt.end`: then the records that end the hunt
                await self._commit_end(Job("end", job.records[1:], None))
            return
        await self.redis.admin_add(rec.encode(r))
        while await self.read_admin():
            pass

    async def _commit_ack(self, job: Job) -> None:
        r = job.records[0]
        assert isinstance(r, Acked)
        await self._append_one(r, 0)

    async def _commit_create(self, job: Job) -> None:
        """Create a hunt (and start it, if it starts now); applied here once Redis has it."""
        recs = job.records
        assert isinstance(recs[0], HuntCreated)
        hunt = recs[0].hunt
        eng = self.eng
        flags = ["created"] + (["started"] if any(isinstance(r, HuntStarted) for r in recs) else [])
        self.creating.add(hunt)
        try:
            await self.redis.index_add(hunt)
            entries = [(r.ev, eng.event_span(r), rec.encode(r)) for r in recs]
            out = await self.redis.append(hunt, entries, flags, self.leading)
        except StoreUnavailable:
            self.last.setdefault(hunt, (0, 0))
            raise
        finally:
            self.creating.discard(hunt)
        if out[0] == b"ok":
            await self._own(hunt, recs, out)
            return
        self.last.setdefault(hunt, (0, 0))
        await self.catch_up(hunt)
        raise HuntExists(f"hunt {hunt!r} already exists", field="id")

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self.watch.close()
        if self._busy:
            await asyncio.wait(list(self._busy), timeout=2)
        await super().close()  # the clock, then the store (the connection to Redis)
