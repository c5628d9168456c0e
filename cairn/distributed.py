"""The distributed runtime: several identical nodes share one Redis or Redis Cluster.

Each node keeps the core `Engine` as a cache of every hunt, built from the hunts' record streams
in Redis. A command is decided by the core, on the node, without an `await`; the records it
makes are *not* applied to the cache yet. They are committed through an atomic script (a
compare-and-set plus the idempotency record, see `cairn/store/redis.py`), and only a committed
record is applied, in the stream's order. When the script says another node won (the treasure
was taken, the window closed, the request was a replay), the node catches up with the stream and
answers from the cache, as the core would have. Every node applies every record of every hunt in
the same per-hunt order, so they all derive the same state, events and leaderboards.

Timers (hunt start and end, bounty windows) and recurring firings are run by the node holding the
scheduler lease; its writes carry the lease's fencing token, and each hunt rejects a token older
than one it has seen, so a node whose lease expired while it was paused writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec

from cairn import config as configmod
from cairn.app import Runtime
from cairn.core import records as rec
from cairn.core.engine import Engine, Outcome, TimerKind
from cairn.core.errors import CairnError, GrantNotFound, HuntExists, HuntNotActive, HuntNotFound, StoreUnavailable
from cairn.core.records import Acked, AnyRecord, Claimed, HuntCreated, HuntEnded, HuntStarted, Settled
from cairn.store.redis import HEALTH_EVERY, INDEX, RECURRING, WORLDS, RedisStore, Watch, hunt_keys, sid

log = logging.getLogger("cairn.distributed")

READ_GAP = 0.005  # seconds: reads of announced streams start at least this far apart (under load they batch)
LEASE_TTL_MS = 3000
LEASE_RENEW = 0.5
ZERO = b"0-0"


class Job:
    """The records of one command, waiting to be committed, and the reply to fix up afterwards."""

    __slots__ = ("ctx", "error", "kind", "records", "result", "task")

    def __init__(self, kind: str, records: list[AnyRecord], result: Any, ctx: Any) -> None:
        self.kind = kind
        self.records = records
        self.result = result
        self.ctx = ctx
        self.task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None


class CacheEngine(Engine):
    """The core engine, as a node's cache: commands defer their records until Redis accepts them."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.defer: list[AnyRecord] | None = None
        self.jobs: dict[int, Job] = {}  # seq of a record -> its job, until persisted
        self.timer_jobs: list[Job] = []
        self.creating: set[str] = set()  # hunts applied here, not yet committed
        self.leading = 0  # the scheduler lease's fencing token while this node holds it
        self.up: Callable[[], None] = lambda: None  # raises StoreUnavailable while Redis is down

    def _apply(self, rec: AnyRecord) -> None:
        if self.defer is not None:
            self.defer.append(rec)
            return
        super()._apply(rec)

    def deferred(self, fn: Callable[..., Outcome], *args: Any) -> tuple[Outcome, list[AnyRecord]]:
        """Run a core command without applying its records; returns the outcome and the records."""
        self.defer = []
        try:
            out = fn(self, *args)
        finally:
            recs, self.defer = self.defer, None
        return out, recs

    def _job(self, kind: str, recs: list[AnyRecord], result: Any, ctx: Any) -> None:
        job = Job(kind, recs, result, ctx)
        for r in recs:
            self.jobs[r.seq] = job

    # ---- commands ----------------------------------------------------------------------------
    def dig(
        self, hunt_id: str, player: str, pos: Any, at: Any, request_id: str | None, now: float, teleport: bool = False
    ) -> Outcome:
        self.up()
        if hunt_id in self.creating:
            raise HuntNotFound(f"no hunt {hunt_id!r}", field="hunt")
        out, recs = self.deferred(Engine.dig, hunt_id, player, pos, at, request_id, now, teleport)
        if recs:
            self._job("dig", recs, out.result, (hunt_id, player, at, request_id, now))
        return out

    def hint(
        self, hunt_id: str, player: str, pos: Any, request_id: str | None, now: float, teleport: bool = False
    ) -> Outcome:
        self.up()
        return super().hint(hunt_id, player, pos, request_id, now, teleport)

    def ack(self, grant_id: str, now: float) -> Outcome:
        self.up()
        out, recs = self.deferred(Engine.ack, grant_id, now)
        if recs:
            self._job("ack", recs, out.result, grant_id)
        return out

    def end_hunt(self, hunt_id: str, now: float) -> Outcome:
        self.up()
        out, recs = self.deferred(Engine.end_hunt, hunt_id, now)
        if recs:
            self._job("end", recs, out.result, (hunt_id, now))
        return out

    def create_hunt(self, plan: Any, now: float) -> Outcome:
        self.up()
        out = super().create_hunt(plan, now)  # applied here at once: the reply shows the hunt
        self.creating.add(plan.spec.id)
        self._job("create", list(out.records), out.result, (plan.spec.id, self.leading))
        return out

    def register_recurring(self, spec: Any, now: float) -> Outcome:
        self.up()
        out = super().register_recurring(spec, now)
        if out.records:
            self._job("recurring", list(out.records), out.result, None)
        return out

    def grants_of(self, player: str) -> list[dict[str, Any]]:
        self.up()
        return super().grants_of(player)

    def register_world(self, world: str, now: float) -> Outcome:
        self.up()
        out, recs = self.deferred(Engine.register_world, world, now)
        if recs:
            self._job("world", recs, out.result, None)
        return out

    def retire_world(self, world: str, now: float) -> Outcome:
        self.up()
        out, recs = self.deferred(Engine.retire_world, world, now)
        self._job("world", recs, out.result, None)
        return out

    # ---- the clock ---------------------------------------------------------------------------
    def tick(self, now: float) -> list[AnyRecord]:
        """Board periods and hint escalations on every node; records (start, settle, end) only on
        the lease holder, as jobs with the timer that made them (re-armed if the commit fails)."""
        self.forget_idle(now)
        for board, period in self.boards.roll(now):
            self.emit("leaderboard.reset", "", now, {"board": board, "period": period})
        timers = self.timers
        later = []
        while timers and timers[0][0] <= now:
            item = heapq.heappop(timers)
            due, kind, hunt_id, n = item
            h = self.hunts.get(hunt_id)
            if h is None or h.ended is not None:
                continue
            if kind == TimerKind.ESCALATE:
                self._escalate(h, due)
                continue
            if not self.leading:
                later.append(item)
                continue
            recs: list[AnyRecord] = []
            if kind == TimerKind.START and h.started is None:
                recs = [HuntStarted(self._next_seq(), due, self._event_id(due), hunt_id)]
            elif kind == TimerKind.SETTLE:
                t = h.treasures[n - 1]
                if t.state == "open" and t.window_ends <= now:
                    _, recs = self.deferred(lambda eng, t=t: eng._settle(t, t.window_ends))
            elif kind == TimerKind.END:
                self.defer = []
                try:
                    self._end(h, due, "time")
                finally:
                    recs, self.defer = self.defer, None
            if recs:
                self.timer_jobs.append(Job("timer", recs, None, (item, self.leading)))
        for item in later:
            heapq.heappush(timers, item)
        return []

    def forget_hunt(self, hunt_id: str) -> None:
        """Drop a hunt applied here whose creation Redis refused."""
        h = self.hunts.pop(hunt_id, None)
        if h is None:
            return
        prox = self.proximity[h.world]
        live = self.live_treasures[h.world]
        for t in h.treasures:
            prox.remove(t.id)
            if t.live:
                live.remove(t.pos)


def _spans(r: AnyRecord, eng: Engine) -> int:
    """How many event ids a record uses (an upper bound), so that the store can number them."""
    if isinstance(r, Claimed):
        return 2 if r.share is not None else 1
    if isinstance(r, HuntEnded):
        h = eng.hunts.get(r.hunt)
        return 1 + (len(h.treasures) if h else 0)
    if isinstance(r, Acked):
        return 0
    return 1


class Journal:
    """What the transport reads of a journal: the durable seq and some stats."""

    def __init__(self, store: DistributedStore) -> None:
        self.store = store

    @property
    def durable_seq(self) -> int:
        pending = self.store.pending
        if pending:
            return min(pending) - 1
        eng = self.store.rt.engine
        return eng.seq if eng is not None else 0

    def stats(self) -> dict[str, Any]:
        r = self.store.redis
        return {"commits": r.calls, "records": self.store.committed, "failed": not r.up}


class Recovery:
    def __init__(self) -> None:
        self.hunts = 0
        self.records = 0
        self.seconds = 0.0

    def __repr__(self) -> str:
        return f"Recovery(redis, hunts={self.hunts}, records={self.records}, seconds={self.seconds:.3f})"


class DistributedStore:
    """The store interface the transport uses (persist / durable / ready), backed by Redis."""

    kind = "redis"

    def __init__(self, rt: RedisRuntime, redis: RedisStore) -> None:
        self.rt = rt
        self.redis = redis
        self.pending: dict[int, Job] = {}  # seq -> the job committing it
        self.failed: dict[int, Job] = {}  # last seq of a failed job -> the job, until its reply sees it
        self.journal = Journal(self)
        self.committed = 0
        self.last_recovery = Recovery()

    def ready(self) -> bool:
        return self.redis.up and self.rt.loaded

    def persist(self, records: Any) -> None:
        jobs = self.rt.eng.jobs
        for r in records:
            job = jobs.pop(r.seq, None)
            if job is None or job.task is not None:
                continue
            for other in job.records:
                jobs.pop(other.seq, None)
                self.pending[other.seq] = job
            job.task = asyncio.create_task(self.rt.commit(job))
            job.task.add_done_callback(lambda t, job=job: self._done(job, t))

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

    def __init__(self, cfg: configmod.Config, data_dir: Any = None) -> None:
        super().__init__(cfg, data_dir)  # the embedded store it makes is never opened
        self.redis = RedisStore(cfg.store.redis_url, list(cfg.store.redis_cluster), cfg.store.redis_timeout)
        self.dstore = DistributedStore(self, self.redis)
        self.store = self.dstore  # type: ignore[assignment]
        self.engine: CacheEngine | None = None
        self.node = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.redis.node = self.node
        self.last: dict[str, tuple[int, int]] = {}  # hunt -> last stream id applied
        self.tails: dict[str, bytes] = {INDEX: ZERO, RECURRING: ZERO, WORLDS: ZERO}
        self.loaded = False
        self.token = 0
        self.lease_until = 0.0
        self._tasks: list[asyncio.Task[Any]] = []
        self._busy: set[asyncio.Task[Any]] = set()
        self._reading: dict[str, asyncio.Future[None]] = {}  # hunt -> the stream read in flight
        self.watch = Watch(self.redis)
        self.changed: set[str] = set()  # hunts whose streams got records since this node last read them
        self.meta: set[str] = set()  # of INDEX, RECURRING, WORLDS: likewise
        self.sweep = False  # notices may have been lost: read every stream from its last applied id
        self._wake = asyncio.Event()

    @property
    def eng(self) -> CacheEngine:
        assert self.engine is not None, "Runtime.start() first"
        return self.engine

    async def start(self) -> None:
        sys.setswitchinterval(float(os.environ.get("CAIRN_SWITCH_INTERVAL", "0.001")))
        started = time.perf_counter()
        await self.redis.wait_up(time.monotonic() + 60)
        self.redis.start()
        secret = configmod.secret_of(self.cfg, self.data_dir)
        if not self.cfg.server.secret:
            secret = await self.redis.shared_secret(secret)
        self.secret = secret
        eng = await self.new_engine(CacheEngine)
        eng.up = self.redis.check
        self.engine = eng
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
        await self.load_registered_worlds(eng)
        eng.new_events.clear()
        info = self.dstore.last_recovery
        info.hunts = len(eng.hunts)
        info.records = self.dstore.committed
        info.seconds = time.perf_counter() - started
        self.loaded = True
        log.info("node %s loaded %r", self.node, info)
        await self.renew_lease()
        await self.tick()
        await self.load_hunts_dir()
        self._ticker = asyncio.create_task(self._tick_forever())
        self.redis.on_up = self._resync
        self._tasks = [
            asyncio.create_task(self.watch.run(self._noticed, self._resync)),
            asyncio.create_task(self._read_forever()),
            asyncio.create_task(self._lease_forever()),
        ]

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
                eng._apply(r)
                applied += 1
            except Exception:
                log.exception("record %s of hunt %s not applied", eid, hunt)
        self.last[hunt] = last
        self.dstore.committed += applied
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
                eng._apply(msgspec.structs.replace(rec.decode(fields[b"r"]), seq=eng.seq + 1))
            except Exception:
                log.exception("world record %s not applied", eid)

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
        keys = [(INDEX, self.tails[INDEX]), (RECURRING, self.tails[RECURRING]), (WORLDS, self.tails[WORLDS])]
        index, recurring, worlds = await self.redis.poll(keys)
        more = any(len(entries) >= 1000 for entries in (index, recurring, worlds))
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
                eng._apply(msgspec.structs.replace(r, seq=eng.seq + 1))
            except Exception:
                log.exception("recurring record %s not applied", eid)
        self._apply_worlds(worlds)
        if index:  # a new hunt's world was registered before the hunt was listed: read it now
            while await self.read_worlds():
                pass
        return more

    async def read_hunts(self, hunts: list[str]) -> bool:
        """Apply what the hunts' streams got after their last applied ids, one pipeline per 1,000 hunts;
        True if a stream may hold more (it is noted as changed)."""
        eng = self.eng
        hunts = [h for h in hunts if h not in eng.creating]
        more = False
        for i in range(0, len(hunts), 1000):
            chunk = hunts[i : i + 1000]
            results = await self.redis.poll([(hunt_keys(h)[1], b"%d-%d" % self.last.get(h, (0, 0))) for h in chunk])
            for h, entries in zip(chunk, results, strict=True):
                if entries and h not in eng.creating:
                    self._apply_entries(h, entries)
                if len(entries) >= 1000:
                    self.changed.add(h)
                    self._wake.set()
                    more = True
        self.publish()
        return more

    async def read_changed(self) -> None:
        """Read the streams Redis announced since the last read: each hunt once, in one pipeline."""
        eng = self.eng
        if self.meta or any(h not in self.last for h in self.changed):  # a hunt not listed here yet
            self.meta.clear()
            await self.read_meta()
        hunts = [h for h in self.changed if h not in eng.creating]  # one being created here: once committed
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
            if not self.redis.up:
                self.sweep = True
                continue  # the store's health check calls `_resync` once Redis answers
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
            if self.changed and not self._wake.is_set():  # only hunts being created here
                await asyncio.sleep(0.01)
                self._wake.set()

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

    async def tick(self) -> None:
        eng = self.eng
        eng.leading = self.token if time.monotonic() < self.lease_until and self.redis.up else 0
        eng.tick(self.clock())
        jobs, eng.timer_jobs = eng.timer_jobs, []
        for job in jobs:
            self._spawn(self.commit(job))
        self.publish()
        if eng.leading and eng.recurring and (self._instances is None or self._instances.done()):
            self._instances = asyncio.create_task(self.start_due_instances())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._busy.add(task)
        task.add_done_callback(self._busy.discard)

    async def ack(self, grant_id: str) -> dict[str, Any]:
        try:
            out = self.eng.ack(grant_id, self.clock())
        except GrantNotFound:
            await self.poll_once()  # the grant may be a moment old, from another node
            out = self.eng.ack(grant_id, self.clock())
        result: dict[str, Any] = await self.run(out)
        return result

    # ---- committing ----------------------------------------------------------------------------
    async def commit(self, job: Job) -> None:
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
        elif job.kind == "world":
            await self.redis.world_add(rec.encode(job.records[0]))
            while await self.read_worlds():  # applied here as on every node: in the stream's order
                pass

    async def _own(self, hunt: str, recs: list[AnyRecord], out: list[bytes]) -> None:
        """Apply records this node committed: directly if nothing came between, else from the stream."""
        last_id, prev = sid(out[1]), sid(out[2])
        if self.last.get(hunt, (0, 0)) == prev and hunt in self.eng.hunts:
            eng = self.eng
            for i, r in enumerate(recs):
                ev = int(out[4 + 2 * i])
                eng._apply(msgspec.structs.replace(r, ev=ev) if ev else r)
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
            else:
                flags = []
        out = await self.redis.append(hunt, [(r.ev, _spans(r, eng), rec.encode(r))], flags, fence, settle)
        status: bytes = out[0]
        if status == b"ok":
            # Claim ids in `out` are (id, ev) pairs after the head: reshape for `_own`.
            await self._own(hunt, [r], [out[0], out[1], out[2], out[3], out[4]])
        elif status in (b"dup", b"stale"):
            await self.catch_up(hunt)
        return status

    async def _commit_dig(self, job: Job) -> None:
        hunt, player, at, request_id, _now = job.ctx
        eng = self.eng
        for r in job.records:
            if isinstance(r, Settled):
                await self._append_one(r, 0)
                continue
            assert isinstance(r, Claimed)
            h = eng.hunts[hunt]
            ff = r.share is not None
            rkey = f"{player}\x00{request_id}" if request_id is not None else ""
            out = await self.redis.claim(
                hunt, r.n, r.claim_id, rkey, "ff" if ff else "sb", r.at, h.window, r.ev, 2 if ff else 1, rec.encode(r)
            )
            status = out[0]
            res = job.result
            if status == b"ok":
                await self._own(hunt, [r], [out[0], out[1], out[2], out[1], out[3]])
                c = eng.claims.get(r.claim_id)
                res["temperature"] = eng._temperature(h, player, at)
                if c is not None:
                    res["claim"] = eng.claim_view(c)
                return
            if status == b"nohunt":
                raise HuntNotFound(f"no hunt {hunt!r}", field="hunt")
            await self.catch_up(hunt)
            if status == b"ended":
                raise HuntNotActive(f"hunt {hunt!r} is ended", field="hunt")
            res.clear()
            c = eng.claims.get(out[1].decode()) if status == b"replay" else None
            if c is not None:
                res.update({"result": "found", "temperature": eng._temperature(h, player, at)})
                res["claim"] = eng.claim_view(c)
            else:
                res.update({"result": "taken", "temperature": eng._temperature(h, player, at)})

    async def _commit_timer(self, job: Job) -> None:
        item, token = job.ctx
        try:
            for r in job.records:
                status = await self._append_one(r, token)
                if status in (b"stale", b"fenced"):
                    raise StoreUnavailable(status.decode())
        except CairnError as e:
            if e.code == "store_unavailable":
                heapq.heappush(self.eng.timers, item)  # the lease holder tries again
            else:
                raise

    async def _commit_end(self, job: Job) -> None:
        hunt, now = job.ctx
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
            recs = self.eng.deferred(Engine.end_hunt, hunt, now)[1]
        await self.catch_up(hunt)
        job.result.update(self.eng.hunt(hunt).summary(now))

    async def _commit_ack(self, job: Job) -> None:
        r = job.records[0]
        assert isinstance(r, Acked)
        await self._append_one(r, 0)
        job.result.update(self.eng.grants[r.grant_id].view())

    async def _commit_create(self, job: Job) -> None:
        hunt, token = job.ctx
        eng = self.eng
        recs = job.records
        flags = ["created"] + (["started"] if any(isinstance(r, HuntStarted) for r in recs) else [])
        try:
            await self.redis.index_add(hunt)
            out = await self.redis.append(hunt, [(r.ev, _spans(r, eng), rec.encode(r)) for r in recs], flags, token)
        except StoreUnavailable:
            eng.creating.discard(hunt)
            eng.forget_hunt(hunt)
            self.last.setdefault(hunt, (0, 0))
            raise
        eng.creating.discard(hunt)
        if out[0] == b"ok":
            self.last[hunt] = sid(out[1])
            return
        eng.forget_hunt(hunt)
        self.last[hunt] = (0, 0)
        await self.catch_up(hunt)
        raise HuntExists(f"hunt {hunt!r} already exists", field="id")

    async def close(self) -> None:
        for t in [*self._tasks, *([self._ticker] if self._ticker else [])]:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self.watch.close()
        if self._busy:
            await asyncio.wait(list(self._busy), timeout=2)
        await self.redis.close()
