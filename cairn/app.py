"""The runtime: build the worlds and the engine from the config, drive them with a store, run the clock.

`Runtime` is what the transports and the demo call. A write goes: the engine decides (sync, no
await) → `commit`: the records are applied and handed to the store → the reply waits until its
records are durable. The store is built by the composition root (`cairn/bootstrap.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from cairn import config as configmod
from cairn import malloc
from cairn.core import admin, views, worldgen
from cairn.core.engine import EMPTY_WORLD_TAGS, Engine, Limits, Outcome, StalePlan, compute_plan
from cairn.core.errors import CairnError, HuntExists, WorldConfigured, WorldNotFound
from cairn.core.events import Event
from cairn.core.hints import Landmark
from cairn.core.sites import SiteSet
from cairn.core.spec import HuntSpec
from cairn.store.base import Store

log = logging.getLogger("cairn")

TICK_SECONDS = 0.1
T = TypeVar("T")


def build_world(name: str, wc: configmod.WorldConfig, data_dir: str | Path | None = None) -> SiteSet:
    """A world's sites: the last pack uploaded for it (`<data_dir>/worlds/<name>.pack`), else the
    config's site pack file, else none (`generator = "upload"`), else the procedural generator."""
    from cairn.worlds.pack import load_pack, uploaded_pack_path

    uploaded = uploaded_pack_path(data_dir, name) if data_dir is not None else None
    if uploaded is not None and uploaded.is_file():
        return load_pack(uploaded, verify=wc.verify_pack)
    if wc.sites is not None:
        return load_pack(wc.sites, verify=wc.verify_pack)
    if wc.generator == "upload":
        return SiteSet.empty(EMPTY_WORLD_TAGS)
    if data_dir is None or not wc.cache:
        return worldgen.generate(seed=wc.seed, size=wc.size, density=wc.density)
    return _cached_procedural(name, wc, Path(data_dir))


def world_source(name: str, wc: configmod.WorldConfig | None, data_dir: str | Path) -> str:
    """Where `build_world` takes a world's sites from: `upload`, `pack` (the config's `sites`) or
    `procedural`; a world registered at runtime (no `wc`) is `upload`."""
    from cairn.worlds.pack import uploaded_pack_path

    if wc is None or wc.generator == "upload" or uploaded_pack_path(data_dir, name).is_file():
        return "upload"
    return "pack" if wc.sites is not None else "procedural"


def procedural_pack_path(data_dir: Path, name: str, wc: configmod.WorldConfig) -> Path:
    """Where the generated sites of a procedural world are kept, named by everything that shapes them
    and by the pack format (an older pack would load, but converted into memory instead of mapped)."""
    from cairn.worlds.pack import VERSION as PACK_VERSION

    key = f"v{worldgen.VERSION}-p{PACK_VERSION}-s{wc.seed}-n{wc.size}-d{wc.density!r}"
    return data_dir / "worlds" / f"{name}.procedural-{key}.pack"


def _cached_procedural(name: str, wc: configmod.WorldConfig, data_dir: Path) -> SiteSet:
    """Generate a procedural world once and keep it as a site pack: later starts map the pack
    (milliseconds) instead of generating again (about a second for the default world)."""
    from cairn.worlds.pack import InvalidPack, load_pack, write_pack

    path = procedural_pack_path(data_dir, name, wc)
    if path.is_file():
        try:
            return load_pack(path, verify=wc.verify_pack)
        except InvalidPack as e:
            log.warning("world %s: cached sites unreadable (%s); generating them again", name, e.message)
    sites = worldgen.generate(seed=wc.seed, size=wc.size, density=wc.density)
    try:
        for old in path.parent.glob(f"{name}.procedural-*.pack"):
            old.unlink()
        write_pack(sites, path, meta={"world": name, "source": "procedural", "seed": wc.seed, "size": wc.size,
                                      "density": wc.density, "generator_version": worldgen.VERSION})
    except OSError as e:
        log.warning("world %s: could not keep the generated sites in %s (%s)", name, path, e)
    return sites


class Runtime:
    """One engine and its store, with the clock that drives scheduled changes.

    A command is decided by the engine and committed (`commit`): its records are applied right
    away (the next command must see them) and handed to the store. So the engine runs ahead of the
    store, and nothing it shows leaves the process before the records behind it are durable:
    reads wait for `settled()`, and events are held in `publish` until their records commit. If
    the journal fails, that state can never become durable: the runtime sets `failed`, and the
    server stops (fail-stop) so that a restart rebuilds the state from what the journal holds.

    A reply that is a view of the state after the command (a hunt created or ended, a grant acked,
    a recurring spec) is built by `view` once the records are applied, and sent once they are durable.
    """

    #: The engine runs ahead of the store (records applied before they are durable). A Redis node
    #: applies only committed records, so it needs no holding back.
    runs_ahead = True
    #: Raises `StoreUnavailable` while the store cannot take a write (a Redis node whose Redis is
    #: down): digs, hints and grant reads then fail fast with 503, as SPEC asks. None: never.
    fail_fast: Callable[[], None] | None = None

    def __init__(self, cfg: configmod.Config, store: Store, data_dir: str | Path | None = None) -> None:
        self.cfg = cfg
        self.data_dir = Path(data_dir or cfg.server.data_dir)
        self.secret = configmod.secret_of(cfg, self.data_dir)
        self.store = store
        store.on_failed = self._store_failed
        self.engine: Engine | None = None
        self.listeners: list[Callable[[list[Event]], None]] = []
        self.failed = asyncio.Event()  # the journal failed: the state is ahead of it for good
        self._held: deque[tuple[int, list[Event]]] = deque()  # (seq they need durable, events)
        self._releaser: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._snapshot_task: asyncio.Task[bool] | None = None
        self.clock: Callable[[], float] = time.time
        self._creating: set[str] = set()
        # Placement runs in one thread of its own, so that its numpy temporaries stay in one malloc
        # arena (docs/operations.md, Memory); hunts created at once are placed one after the other.
        self._placer = ThreadPoolExecutor(1, thread_name_prefix="cairn-placement")
        self._instances: asyncio.Task[None] | None = None
        # The largest site upload of any world; a world registered at runtime takes this one.
        caps = [wc.upload_max_bytes for wc in cfg.worlds.values()]
        self.upload_cap = max(caps, default=configmod.WorldConfig().upload_max_bytes)

    @property
    def eng(self) -> Engine:
        assert self.engine is not None, "Runtime.start() first"
        return self.engine

    async def start(self) -> None:
        """Build the engine, recover it from the store, then run the clock and the hunts directory."""
        # The journal writer waits for the GIL after each fsync; a 1 ms switch interval (not 5)
        # hands it over sooner and cuts durable-reply p99 (benchmarks/RESULTS.md, Journal).
        sys.setswitchinterval(float(os.environ.get("CAIRN_SWITCH_INTERVAL", "0.001")))
        await self.prepare()
        engine = self.engine = await self.new_engine()
        info = await self.store.recover(engine)
        log.info("recovered %r", info)
        await self.load_registered_worlds(engine)
        malloc.trim()  # what loading the worlds and replaying the journal freed
        await self.recovered()
        await self.tick()
        await self.load_hunts_dir()
        self._ticker = asyncio.create_task(self._tick_forever())

    async def prepare(self) -> None:
        """Before the engine is built (a Redis node waits for Redis and takes the shared secret)."""

    async def recovered(self) -> None:
        """After recovery, before the clock starts (a Redis node takes the lease and starts reading)."""

    async def new_engine(self) -> Engine:
        """An empty engine over the configured worlds (loaded off the loop)."""
        loop = asyncio.get_running_loop()
        c = self.cfg
        worlds = {}
        for name, wc in c.worlds.items():
            worlds[name] = await loop.run_in_executor(None, build_world, name, wc, self.data_dir)
        cl = c.limits
        limits = Limits(
            max_speed=cl.max_speed, dig_rate=cl.dig_rate, dig_burst=cl.dig_burst, strict_players=cl.strict_players,
            player_idle=cl.player_idle, max_players=cl.max_players,
        )  # fmt: skip
        landmarks = [Landmark(lm.name, lm.world, (lm.pos[0], lm.pos[1], lm.pos[2])) for lm in c.landmarks]
        return Engine(self.secret, worlds, c.loot_tables(), limits, landmarks, c.boards(), c.event_log())

    async def load_hunts_dir(self) -> None:
        """Create every hunt in `hunts_dir` that does not exist yet; register every recurring spec."""
        for path in configmod.hunt_files(self.cfg):
            spec = configmod.load_hunt_file(self.cfg, path)
            if spec.schedule is not None or spec.id not in self.eng.hunts:
                try:
                    await self.create_hunt(spec)
                except HuntExists:
                    pass  # another node (Redis store) created it first
                except CairnError as e:
                    raise configmod.hunt_file_error(path, e) from None

    async def load_registered_worlds(self, eng: Engine) -> None:
        """Open the uploaded sites of the worlds registered at runtime (the journal only says they exist)."""
        from cairn.worlds.pack import load_pack, uploaded_pack_path

        loop = asyncio.get_running_loop()
        for name in eng.registered:
            path = uploaded_pack_path(self.data_dir, name)
            if name not in self.cfg.worlds and len(eng.worlds[name]) == 0 and path.is_file():
                eng.worlds[name] = await loop.run_in_executor(None, load_pack, path)

    # ---- worlds --------------------------------------------------------------------------------
    async def register_world(self, world: str) -> tuple[bool, dict[str, Any]]:
        """Register an upload-only world (idempotent); whether it was created, and its view."""
        from cairn.worlds.pack import uploaded_pack_path

        out = self.eng.register_world(world, self.clock())
        created = bool(out.records)
        if created:  # a pack left by a world of this name retired before a crash is not this world's
            uploaded_pack_path(self.data_dir, world).unlink(missing_ok=True)
        await self.run(out)
        return created, self.world_view(world)

    async def retire_world(self, world: str) -> dict[str, Any]:
        """Retire a runtime-registered world that no live, scheduled or recurring hunt uses; drop its sites."""
        from cairn.worlds.pack import uploaded_pack_path

        if world in self.cfg.worlds or (self.engine is not None and world in self.eng.worlds
                                        and world not in self.eng.registered):  # fmt: skip
            raise WorldConfigured(f"world {world!r} is in the config file; remove it there", field="world")
        result: dict[str, Any] = await self.run(self.eng.retire_world(world, self.clock()))
        uploaded_pack_path(self.data_dir, world).unlink(missing_ok=True)
        return result

    def world_view(self, world: str) -> dict[str, Any]:
        eng = self.eng
        sites = eng.worlds.get(world)
        if sites is None:  # retired meanwhile (by another node)
            raise WorldNotFound(f"no world {world!r}", field="world")
        now = self.clock()
        return {
            "world": world,
            "source": world_source(world, self.cfg.worlds.get(world), self.data_dir),
            "runtime": world in eng.registered and world not in self.cfg.worlds,
            "sites": len(sites),
            "chunks": len(sites.chunk_keys),
            "tags": list(sites.tag_names),
            "hunts": eng.world_users(world, now),
        }

    def worlds_view(self) -> list[dict[str, Any]]:
        return [self.world_view(w) for w in sorted(self.eng.worlds)]

    # ---- commands ------------------------------------------------------------------------------
    def publish(self) -> None:
        """Hand new events to the listeners (event streams, sessions), once their records are durable."""
        eng = self.eng
        if eng.new_events:
            events, eng.new_events = eng.new_events, []
            if self.runs_ahead and (self._held or eng.seq > self.store.durable_seq):
                self._held.append((eng.seq, events))  # in order: later events wait behind earlier ones
                if self._releaser is None:
                    self._releaser = asyncio.get_running_loop().create_task(self._release())
                return
            for fn in self.listeners:
                fn(events)

    async def _release(self) -> None:
        """Hand held events to the listeners as their records become durable; drop them if never."""
        held = self._held
        try:
            while held:
                await self.store.durable(held[0][0])
                while held and held[0][0] <= self.store.durable_seq:
                    events = held.popleft()[1]
                    for fn in self.listeners:
                        fn(events)
        except CairnError:
            held.clear()  # the journal failed: these events describe state that was never saved
        finally:
            self._releaser = None

    def settled(self) -> Awaitable[None] | None:
        """An awaitable that returns once everything the engine shows is durable (None: it is now).

        A read awaits it before answering; it raises `journal_failed` if the journal failed.
        """
        seq = self.eng.seq
        if not self.runs_ahead or seq <= self.store.durable_seq:
            return None
        return self.store.durable(seq)

    def _store_failed(self, exc: BaseException) -> None:
        log.critical(
            "the journal failed (%s): the live state holds records that are not saved; stopping, so "
            "that a restart rebuilds it from the journal (docs/operations.md, Durability)", exc,
        )  # fmt: skip
        self.failed.set()

    def commit(self, out: Outcome) -> None:
        """What follows deciding: apply the records at once, and hand them to the store."""
        if out.records:
            self.eng.apply(out.records)
            self.store.persist(out.records)

    def submit(self, out: Outcome) -> Awaitable[Any] | None:
        """Commit an outcome; return an awaitable if the reply must wait for durability."""
        self.commit(out)
        self.publish()
        if out.wait_seq > self.store.durable_seq:
            return self.when_durable(out.wait_seq, out.result)
        return None

    async def view(self, out: Outcome, view: Callable[[], T]) -> T:
        """Commit an outcome whose reply is `view()` of the state after its records: built once
        they are applied (here at once, before anything else changes), returned once durable."""
        self.commit(out)
        self.publish()
        result = view()
        if out.wait_seq > self.store.durable_seq:
            await self.store.durable(out.wait_seq)
        return result

    async def when_durable(self, seq: int, result: Any) -> Any:
        """`result`, once every record up to `seq` is durable."""
        await self.store.durable(seq)
        return result

    async def run(self, out: Outcome) -> Any:
        waiter = self.submit(out)
        if waiter is not None:
            return await waiter
        return out.result

    async def create_hunt(self, spec: HuntSpec) -> dict[str, Any]:
        """Place a hunt off the event loop, then apply it (re-planning if a hunt was placed near it meanwhile).

        A spec with a `schedule` is registered as recurring instead; its firings create hunts.
        """
        if spec.schedule is not None:
            now = self.clock()
            out = self.eng.register_recurring(spec, now)
            result = await self.view(out, lambda: self.eng.recurring_view(spec.id, now))
            await self.start_due_instances()
            return result
        loop = asyncio.get_running_loop()
        while True:
            inp = self.eng.plan_input(spec)
            plan = await loop.run_in_executor(self._placer, compute_plan, inp)
            now = self.clock()
            try:
                out = self.eng.create_hunt(plan, now)
            except StalePlan:
                continue
            return await self.view(out, functools.partial(self.eng.hunt_view, spec.id, now, reveal=True))

    async def start_due_instances(self) -> None:
        """Create the hunt instances that recurring specs owe now (placement off the loop)."""
        for spec in self.eng.due_instances(self.clock()):
            if spec.id in self._creating:
                continue
            self._creating.add(spec.id)
            try:
                await self.create_hunt(spec)
            except CairnError as e:
                log.warning("recurring hunt %s not created: %s", spec.id, e.message)
            finally:
                self._creating.discard(spec.id)

    async def dig(self, hunt: str, player: str, pos: Any, at: Any, request_id: str | None) -> dict[str, Any]:
        try:
            out = self.eng.dig(hunt, player, tuple(pos), tuple(at), request_id, self.clock())
        finally:
            self.publish()
        result: dict[str, Any] = await self.run(out)
        return result

    async def ack(self, grant_id: str) -> dict[str, Any]:
        out = self.eng.ack(grant_id, self.clock())
        return await self.view(out, lambda: self.eng.ack_view(grant_id))

    async def end_hunt(self, hunt: str, req: admin.Request | None = None) -> dict[str, Any]:
        """End a hunt now; with `req`, an operator's `hunt.end`: audited (unless it has ended already)."""
        now = self.clock()
        out = self.eng.end_hunt(hunt, now) if req is None else self.eng.end_hunt_admin(req, now)
        return await self.view(out, lambda: self.eng.hunt(hunt).summary(now))

    async def admin(self, req: admin.Request) -> dict[str, Any]:
        """An operator's action: decided, journaled and applied; the reply is its audit entry."""
        out = self.eng.decide_admin(req, self.clock())
        rec = out.result
        return await self.view(out, lambda: views.admin_applied(self.eng, rec))

    def delivers_webhooks(self) -> bool:
        """Whether this node delivers webhooks (a Redis node: only while it holds the scheduler lease)."""
        return True

    async def webhook_cursors(self) -> dict[str, int] | None:
        """Per webhook target, the shared event id up to which it was delivered (a Redis node); None: not shared."""
        return None

    async def save_webhook_cursors(self, cursors: dict[str, int]) -> None:
        """Share, per target, the event id up to which this node delivered (a Redis node, while it leads)."""

    # ---- the clock -----------------------------------------------------------------------------
    async def tick(self) -> None:
        records = [r for due in self.eng.tick(self.clock()) for r in due.records]
        if records:
            self.commit(Outcome(None, records, records[-1].seq))
        self.publish()
        if self.eng.recurring and (self._instances is None or self._instances.done()):
            self._instances = asyncio.create_task(self.start_due_instances())
        if self.store.snapshot_due() and (self._snapshot_task is None or self._snapshot_task.done()):
            self._snapshot_task = asyncio.create_task(self.store.snapshot(self.eng))

    async def _tick_forever(self) -> None:
        while not self.failed.is_set():
            await asyncio.sleep(TICK_SECONDS)
            try:
                await self.tick()
            except Exception:
                log.exception("tick failed")

    async def close(self) -> None:
        """Stop the clock and flush the journal."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._snapshot_task is not None:
            await asyncio.gather(self._snapshot_task, return_exceptions=True)
        self._placer.shutdown(wait=False, cancel_futures=True)
        try:
            await self.store.close()
        except CairnError:
            if not self.failed.is_set():
                raise  # a journal failure was logged when it happened

