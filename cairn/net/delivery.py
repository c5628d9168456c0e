"""Webhook delivery: the engine's events, through the outbox, to each target, at least once.

`Deliverer.on_events` is one of the runtime's listeners: it gets the events once their records are
durable, and for each target that asks for an event it appends the event to the target's pending
deliveries, in memory and in the outbox (`cairn/store/outbox.py`, written by its own thread). It
does a few dictionary lookups per event and never waits.

Each target has one asyncio task: it sends up to `webhooks.concurrency` of its oldest pending
deliveries at once, each a POST with its own timeout. An attempt in which no request succeeded is a
failure; after a failure the task waits `backoff(failures)` (1 s doubling to 5 min, jittered), and
after `webhooks.max_failures` failures in a row the target is paused until an operator resumes it.
A hanging receiver holds only its own task's sockets, for the timeout: the engine never waits on it.

The HTTP client is the one below: a single POST per connection on asyncio streams (TLS from the
standard library's `ssl`), parsed by httptools (a dependency already). Only the reply's status is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httptools
import msgspec

from cairn.core import views
from cairn.core.events import Event
from cairn.core.webhooks import Target, backoff, discord_body, matches, sign
from cairn.store.outbox import Health, Outbox

if TYPE_CHECKING:
    from cairn.app import Runtime
    from cairn.config import WebhooksConfig

log = logging.getLogger("cairn.webhooks")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
USER_AGENT = "Cairn-Webhooks/1"
MAX_REPLY_HEAD = 64 * 1024  # bytes of a reply read before its headers must have ended


class Run:
    """One target's delivery state and task."""

    __slots__ = ("dropped", "failures", "inflight", "inflight_from", "last_error", "last_success_at", "paused",
                 "paused_resumed", "pending", "target", "task", "wake", "wants")  # fmt: skip

    def __init__(self, target: Target, health: Health) -> None:
        self.target = target
        self.pending: deque[tuple[int, bytes]] = deque()  # not yet delivered, oldest first (not those in flight)
        self.inflight = 0
        self.inflight_from = 0  # the oldest event id in flight
        self.failures = health.failures
        self.last_error = health.last_error
        self.last_success_at = health.last_success_at
        # A pause is lifted by a resume applied after it (the resume's event id moved on).
        self.paused = health.paused and health.paused_resumed == target.resumed
        self.paused_resumed = health.paused_resumed
        self.dropped = health.dropped
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.wants: dict[str, bool] = {}  # event type -> whether the target asks for it

    def health(self) -> Health:
        return Health(self.failures, self.last_error, self.last_success_at, self.paused, self.paused_resumed,
                      self.dropped)  # fmt: skip


class Deliverer:
    """Every webhook target's pending deliveries and delivery task, on one node."""

    def __init__(self, rt: Runtime, cfg: WebhooksConfig, outbox: Outbox | None = None) -> None:
        self.rt = rt
        self.cfg = cfg
        self.outbox = outbox or Outbox(rt.data_dir / "webhooks.db")
        self.runs: dict[str, Run] = {}
        self.hwm = 0
        self._saved_hwm = 0
        self._health: dict[str, Health] = {}
        self._loaded: dict[str, list[tuple[int, bytes]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ssl: ssl.SSLContext | None = None
        # Name lookups block a thread: they get threads of their own, so that a slow DNS server never
        # holds the loop's default executor (which the journal uses).
        self._resolver = ThreadPoolExecutor(4, thread_name_prefix="cairn-webhook-dns")
        self.delivered = 0
        self._cursors: dict[str, int] = {}
        self.clock: Callable[[], float] = time.time

    async def start(self) -> None:
        """Read the outbox back, catch up on the events it may have missed, and start delivering."""
        loaded = await asyncio.get_running_loop().run_in_executor(None, self.outbox.load)
        self._health, self._loaded = loaded.health, loaded.pending
        eng = self.rt.eng
        self.hwm = self._saved_hwm = loaded.hwm
        self.sync()
        # At least once across a crash: the events after the high-water id that replay rebuilt
        # (the outbox ignores a delivery it holds already), then every new event as it comes.
        self.on_events(views.events_after(eng, self.hwm, None)[0])
        self.rt.listeners.append(self.on_events)
        self._task = asyncio.create_task(self._watch())

    # ---- targets --------------------------------------------------------------------------------------
    def sync(self) -> None:
        """Start, stop and update the tasks to match the engine's targets."""
        targets = views.webhook_targets(self.rt.eng)
        for tid, gone in list(self.runs.items()):
            if tid not in targets:
                self._stop(gone)
                del self.runs[tid]
                self.outbox.forget(tid)
        for tid, t in targets.items():
            run: Run | None = self.runs.get(tid)
            if run is None:
                run = self.runs[tid] = Run(t, self._health.pop(tid, Health(paused_resumed=t.resumed)))
                run.pending.extend(self._loaded.pop(tid, ()))
                run.task = asyncio.create_task(self._deliver_forever(run), name=f"webhook-{tid}")
            elif run.target != t:
                if t.resumed != run.target.resumed:  # an operator resumed it
                    if run.paused:
                        log.info("webhook %s resumed (%d pending)", tid, len(run.pending))
                    run.paused, run.failures, run.paused_resumed = False, 0, t.resumed
                    self.outbox.save(tid, run.health())
                    run.wake.set()
                run.target = t
        for tid in list(self._loaded):  # deliveries of a target removed while the node was down
            del self._loaded[tid]
            self.outbox.forget(tid)

    def _stop(self, run: Run) -> None:
        if run.task is not None:
            run.task.cancel()

    async def _watch(self) -> None:
        """Once a second: follow target changes, save the high-water id, and share the delivered cursor."""
        while True:
            await asyncio.sleep(1.0)
            try:
                self.sync()
                if self.hwm > self._saved_hwm:
                    self._saved_hwm = self.hwm
                    self.outbox.mark(self.hwm)
                await self._follow_lease()
            except Exception:
                log.exception("webhook watch failed")

    async def _follow_lease(self) -> None:
        """A Redis node. Every node queues every event; only the lease holder sends. The lease holder
        shares, per target, the event id below every delivery it still holds; the other nodes drop
        what is at or below it. So a node that takes the lease holds what the last one had not
        delivered (a receiver may get an event twice, never not at all)."""
        if self.rt.delivers_webhooks():
            cursors = {}
            for tid, run in self.runs.items():
                held = [run.pending[0][0]] if run.pending else []
                if run.inflight:
                    held.append(run.inflight_from)
                cursors[tid] = min(held) - 1 if held else self.hwm
            if cursors and cursors != self._cursors:
                self._cursors = cursors
                await self.rt.save_webhook_cursors(cursors)
            return
        self._cursors = {}
        shared = await self.rt.webhook_cursors()
        for tid, cursor in (shared or {}).items():
            follower = self.runs.get(tid)
            while follower is not None and follower.pending and follower.pending[0][0] <= cursor:
                self.outbox.done(tid, follower.pending.popleft()[0])

    # ---- events in --------------------------------------------------------------------------------------
    def on_events(self, events: list[Event]) -> None:
        """A runtime listener: queue each event for the targets that ask for it. Never waits."""
        if not events:
            return
        last = events[-1].id
        if any(e.type.startswith("webhook.") for e in events):
            self.sync()
        if not self.runs:
            if last > self.hwm:
                self.hwm = last
            return
        items: list[tuple[str, int, bytes]] = []
        cap = self.cfg.max_backlog
        for ev in events:
            body: bytes | None = None
            for run in self.runs.values():
                t = run.target
                wanted = run.wants.get(ev.type)
                if wanted is None:
                    wanted = run.wants[ev.type] = matches(t.events, ev.type)
                if not wanted or ev.id <= t.since:
                    continue
                if body is None:
                    body = _encode(ev)
                run.pending.append((ev.id, body))
                items.append((t.id, ev.id, body))
                if len(run.pending) > cap:
                    dropped_id = run.pending.popleft()[0]
                    run.dropped += 1
                    self.outbox.done(t.id, dropped_id)
                    if run.dropped == 1 or run.dropped % 1000 == 0:
                        log.warning("webhook %s: backlog at its cap (%d); dropped the oldest delivery "
                                    "(%d dropped so far)", t.id, cap, run.dropped)  # fmt: skip
                run.wake.set()
        if last > self.hwm:
            self.hwm = last
        if items:
            self._saved_hwm = self.hwm
            self.outbox.enqueue(items, self.hwm)

    # ---- events out -------------------------------------------------------------------------------------
    async def _deliver_forever(self, run: Run) -> None:
        cfg = self.cfg
        while True:
            if run.paused or not run.pending:
                run.wake.clear()
                await run.wake.wait()
                continue
            if not self.rt.delivers_webhooks():  # a Redis node without the lease: the holder sends
                await asyncio.sleep(0.5)
                continue
            # The oldest pending deliveries go in flight (out of `pending`, so that the cap never drops
            # one mid-request); the failed ones go back to the front, in order.
            batch = [run.pending.popleft() for _ in range(min(cfg.concurrency, len(run.pending)))]
            run.inflight, run.inflight_from = len(batch), batch[0][0]
            try:
                results = await asyncio.gather(*(self.send(run.target, ev_id, body) for ev_id, body in batch))
            except asyncio.CancelledError:
                run.pending.extendleft(reversed(batch))
                raise
            finally:
                run.inflight = 0
            now = self.clock()
            failed = [item for item, err in zip(batch, results, strict=True) if err is not None]
            run.pending.extendleft(reversed(failed))
            errors = [err for err in results if err is not None]
            if len(failed) < len(batch):
                for (ev_id, _), err in zip(batch, results, strict=True):
                    if err is None:
                        self.outbox.done(run.target.id, ev_id)
                self.delivered += len(batch) - len(failed)
                run.last_success_at = now
                run.failures = 0
            else:
                run.failures += 1
            if errors:
                run.last_error = errors[0]
                if run.failures >= cfg.max_failures:
                    run.paused = True
                    run.paused_resumed = run.target.resumed
                    log.warning("webhook %s paused after %d failed attempts in a row (last error: %s); "
                                "POST /v1/webhooks/%s/resume to resume it", run.target.id, run.failures,
                                run.last_error, run.target.id)  # fmt: skip
            self.outbox.save(run.target.id, run.health())
            if errors and not run.paused:
                await asyncio.sleep(backoff(max(run.failures, 1), random.random(), cfg.backoff_first,
                                            cfg.backoff_max))  # fmt: skip

    async def send(self, t: Target, ev_id: int, body: bytes) -> str | None:
        """POST one delivery; None when the target answered 2xx, else what went wrong."""
        if t.format == "discord":
            body = _encode(discord_body(_decode(body)))
        ts = int(self.clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Cairn-Event-Id": str(ev_id),
            "Cairn-Signature": sign(t.secret, ts, body),
        }
        try:
            async with asyncio.timeout(self.cfg.timeout):
                status = await self.post(t.url, headers, body)
        except TimeoutError:
            return f"timed out after {self.cfg.timeout:g} s"
        except (OSError, ValueError, UnicodeError, httptools.HttpParserError, ssl.SSLError) as e:
            return f"{type(e).__name__}: {e}"[:300]
        if 200 <= status < 300:
            return None
        return f"HTTP {status}"

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> int:
        """One POST on a fresh connection; the reply's status code."""
        u = urlsplit(url)
        https = u.scheme == "https"
        host = u.hostname or ""
        port = u.port or (443 if https else 80)
        ctx = None
        if https:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            ctx = self._ssl
        loop = asyncio.get_running_loop()
        infos = await loop.run_in_executor(self._resolver, socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
        if not infos:
            raise OSError(f"no address for {host}")
        family, _, _, _, addr = infos[0]
        reader, writer = await asyncio.open_connection(str(addr[0]), int(addr[1]), family=family, ssl=ctx,
                                                       server_hostname=host if https else None)  # fmt: skip
        try:
            path = (u.path or "/") + (f"?{u.query}" if u.query else "")
            hostport = host if u.port is None else f"{host}:{u.port}"
            lines = [f"POST {path} HTTP/1.1", f"Host: {hostport}", f"Content-Length: {len(body)}",
                     "Connection: close"] + [f"{k}: {v}" for k, v in headers.items()]  # fmt: skip
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            head = _Head()
            parser = httptools.HttpResponseParser(head)
            seen = 0
            while not head.done:
                data = await reader.read(16384)
                if not data:
                    raise ConnectionError("the target closed the connection before replying")
                seen += len(data)
                if seen > MAX_REPLY_HEAD and not head.done:
                    raise ValueError("the reply's headers are too long")
                parser.feed_data(data)
            return int(parser.get_status_code())
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    # ---- reads and shutdown -------------------------------------------------------------------------------
    def view(self, tid: str) -> dict[str, Any]:
        """A target's delivery state, for `GET /v1/webhooks` (never its secret)."""
        run = self.runs.get(tid)
        if run is None:
            return {"state": "active", "failures": 0, "last_error": None, "last_success_at": None, "backlog": 0,
                    "dropped": 0}  # fmt: skip
        return {
            "state": "paused" if run.paused else "active",
            "failures": run.failures,
            "last_error": run.last_error or None,
            "last_success_at": run.last_success_at,
            "backlog": len(run.pending) + run.inflight,
            "dropped": run.dropped,
        }

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for run in self.runs.values():
            self._stop(run)
        tasks = [t for t in [self._task, *(r.task for r in self.runs.values())] if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.hwm > self._saved_hwm:
            self.outbox.mark(self.hwm)
        await self.outbox.flush()
        await asyncio.get_running_loop().run_in_executor(None, self.outbox.close)
        self._resolver.shutdown(wait=False, cancel_futures=True)


class _Head:
    """httptools callbacks: note when the reply's headers are complete (the body is not needed)."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = False

    def on_headers_complete(self) -> None:
        self.done = True
