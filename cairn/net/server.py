"""`cairn serve` and `cairn demo`: build the runtime and the API, listen, and shut down in order.

Shutdown on SIGTERM or SIGINT: stop accepting, let in-flight requests finish (bounded by
`server.shutdown_timeout`), flush the journal, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import os
import resource
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

from cairn import config as configmod
from cairn import malloc
from cairn.app import Runtime
from cairn.core import views
from cairn.log import JsonLines as _JsonLines
from cairn.net import http, websocket
from cairn.net.api import Api
from cairn.net.auth import Keys, check_env
from cairn.net.config import ServerConfig
from cairn.net.delivery import Deliverer
from cairn.net.hub import Hub
from cairn.net.metrics import Metrics
from cairn.net.openapi import build_openapi
from cairn.net.router import Router
from cairn.profiling import profiled

log = logging.getLogger("cairn")


JsonLines = _JsonLines  # one JSON object per log line (cairn/log.py)
EXIT_JOURNAL_FAILED = 75  # EX_TEMPFAIL: a supervisor should start Cairn again
# Builds the runtime for a config; the composition root (`cairn.bootstrap`) passes it in.
MakeRuntime = Callable[[configmod.Config], Runtime]


def setup_logging() -> None:
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonLines) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLines())
        root.addHandler(handler)
    root.setLevel(os.environ.get("CAIRN_LOG_LEVEL", "INFO").upper())


def tune_gc() -> None:
    """Move everything built at start (worlds, recovered state) out of the collector's sight and
    collect the young generation less often: the hot path allocates many short-lived objects,
    and full collections over a large heap were a quarter of a batch's time (docs/performance.md)."""
    # No gc.collect() first: over a recovered heap of millions of objects it took about 0.5 s of
    # every restart (P7), and start-up leaves little cyclic garbage to find.
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)


def release_memory() -> None:
    """After a flood of connections: collect their cycles and hand the freed memory back to the system.

    The young-generation thresholds set by `tune_gc` leave such garbage for a full collection that
    may not come for a long time; this runs once per flood, not per connection.
    """
    started = time.perf_counter()
    found = gc.collect()
    malloc.trim()
    log.info("connections fell after a flood: collected %d objects, trimmed the heap in %.0f ms",
             found, (time.perf_counter() - started) * 1000)  # fmt: skip


def build_router(api: Api, deliverer: Deliverer | None = None) -> tuple[Router, Any]:
    """Every route the server answers (the API's, the session's, the dashboard's), and the dashboard.
    Each has its entry in `cairn.net.openapi.ROUTES`."""
    from cairn.net.admin import AdminRoutes
    from cairn.net.dashboard import Dashboard
    from cairn.net.keys import KeyRoutes
    from cairn.net.session import Sessions
    from cairn.net.webhooks import WebhookRoutes

    router = Router()
    api.routes(router)
    sessions = Sessions(api)
    sessions.routes(router)
    AdminRoutes(api).routes(router)
    WebhookRoutes(api, deliverer).routes(router)
    KeyRoutes(api, sessions).routes(router)
    dashboard = Dashboard(api)
    dashboard.routes(router)
    return router, dashboard


class Service:
    """A running engine with its HTTP server."""

    def __init__(self, cfg: configmod.Config, make_runtime: MakeRuntime) -> None:
        self.cfg = cfg
        check_env(os.environ, cfg.server.host)  # before anything starts: a weak key is a configuration error
        self.rt: Runtime = make_runtime(cfg)
        self.hub = Hub(max_per_key=cfg.events.max_subscribers_per_key)
        self.metrics = Metrics(access_log=cfg.server.access_log)
        self.server: http.HttpServer | None = None
        self.keys: Keys | None = None
        self.api: Api | None = None
        self.dashboard: Any = None
        self.deliverer: Deliverer | None = None

    async def start(self) -> None:
        started = time.perf_counter()
        await self.rt.start()
        self.keys = Keys.load(self.rt.data_dir, os.environ, self.cfg.server.host)
        self.keys.ring = views.api_keys(self.rt.eng)
        self.rt.listeners.append(self.hub.publish)
        self.deliverer = Deliverer(self.rt, self.cfg.webhooks)
        await self.deliverer.start()
        api = self.api = Api(self.rt, self.keys, self.hub, self.metrics)
        api.openapi = build_openapi()
        router, self.dashboard = build_router(api, self.deliverer)
        s = self.cfg.server
        spool_dir = self.rt.data_dir / "uploads"  # beside the data, not in a RAM-backed /tmp
        spool_dir.mkdir(parents=True, exist_ok=True)
        tcfg = ServerConfig(
            max_body=s.max_body, header_timeout=s.header_timeout, idle_timeout=s.idle_timeout,
            max_inflight=s.max_inflight, max_uploads=s.max_uploads, spool_dir=str(spool_dir),
            max_connections=s.max_connections, max_connections_per_address=s.max_connections_per_address,
            first_request_timeout=s.first_request_timeout, trusted_addresses=tuple(s.trusted_proxies),
            auth_failures_slow=s.auth_failures_slow, auth_failures_close=s.auth_failures_close,
        )  # fmt: skip
        self.server = http.HttpServer(router, tcfg, on_error=api.on_error, upgrade=websocket.UPGRADE)
        self.server.on_quiet = release_memory
        tune_gc()
        await self.server.start(s.host, s.port)
        log.info(
            "cairn listening on http://%s:%d (data %s, ready in %.2fs, recovered %r)",
            s.host, self.server.port, self.rt.data_dir, time.perf_counter() - started, self.rt.store.last_recovery,
        )  # fmt: skip
        if self.keys.created:
            log.info("created API keys in %s", self.keys.path)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown(self.cfg.server.shutdown_timeout)
        if self.deliverer is not None:
            await self.deliverer.close()
        await self.rt.close()
        self.metrics.close()


async def run_until_signal(svc: Service, also: Callable[[Service], Awaitable[Any]] | None = None) -> int:
    """Serve until SIGTERM or SIGINT (exit status 0), or until the journal fails (EXIT_JOURNAL_FAILED)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await svc.start()
    side: asyncio.Task[Any] | None = None
    if also is not None:
        side = asyncio.create_task(also(svc))
        side.add_done_callback(lambda _t: stop.set())
    failed = asyncio.create_task(svc.rt.failed.wait())
    failed.add_done_callback(lambda _t: stop.set())
    await stop.wait()
    code = 0
    if svc.rt.failed.is_set():
        # Fail-stop: the state is ahead of the journal for good. Meanwhile every read and write
        # answers 503 (and /healthz, /readyz), so probes and a metrics scrape can see why.
        grace = svc.cfg.store.fail_stop_grace
        log.critical("journal failed: exiting with status %d in %gs; a restart replays the journal",
                     EXIT_JOURNAL_FAILED, grace)  # fmt: skip
        await asyncio.sleep(grace)
        code = EXIT_JOURNAL_FAILED
    else:
        failed.cancel()
    log.info("shutting down")
    if side is not None:
        if not side.done():
            side.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await side
            except Exception:
                log.exception("demo driver failed")
    await svc.stop()
    log.info("stopped")
    return code


def raise_fd_limit(want: int) -> None:
    """Raise the soft limit on open files towards the hard one (every connection is a file), and log it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, want)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            log.warning("could not raise the open-files limit from %d to %d: %s", soft, target, e)
    log.info("open-files limit %s (hard %s); server.max_connections = %d", soft, hard, want)
    if soft != resource.RLIM_INFINITY and soft < want + 256:
        log.warning("the open-files limit (%d) is below server.max_connections (%d) plus room for files: "
                    "raise it (ulimit -n, LimitNOFILE=) or lower server.max_connections", soft, want)  # fmt: skip


def serve(cfg: configmod.Config, make_runtime: MakeRuntime, profile: str | None = None) -> int:
    setup_logging()
    raise_fd_limit(cfg.server.max_connections)
    svc = Service(cfg, make_runtime)
    with profiled(profile):
        code = uvloop.run(run_until_signal(svc))
    if profile:
        log.info("profile written to %s", profile)
    return code


def run_demo(
    cfg: configmod.Config, make_runtime: MakeRuntime, players: int = 40, seconds: float = 0, live: bool = True
) -> int:
    """Serve, create a sample hunt, and drive simulated players through the real HTTP API."""
    from cairn.demo import Board, demo_spec, play, show
    from cairn.net.client import HttpClient

    setup_logging()
    if live:
        logging.getLogger().setLevel(logging.WARNING)
    os.environ.setdefault("CAIRN_ADMIN_KEY", "demo-admin-" + os.urandom(6).hex())
    os.environ.setdefault("CAIRN_GAME_KEY", "demo-game-" + os.urandom(6).hex())

    async def drive(svc: Service) -> None:
        base = f"http://{cfg.server.host}:{svc.port}"
        admin = HttpClient(base, os.environ["CAIRN_ADMIN_KEY"])
        game = HttpClient(base, os.environ["CAIRN_GAME_KEY"])
        print(f"\nCairn is serving at {base}   (data: {cfg.server.data_dir})")
        print(f"  admin key:  {os.environ['CAIRN_ADMIN_KEY']}")
        print(f"  game key:   {os.environ['CAIRN_GAME_KEY']}")
        print(f"  dashboard:  {base}/dashboard   (sign in with the admin key)")
        print(f"  one-time dashboard login: {base}/dashboard#login={svc.dashboard.one_time_login()}", flush=True)
        print("  rounds of a 12-treasure hunt, played by simulated players through the HTTP API; Ctrl-C stops\n")
        deadline = time.monotonic() + seconds if seconds else None
        try:
            for round_no in itertools.count(1):
                hunt_id = f"demo-{time.strftime('%H%M%S')}-{round_no}"
                created = await admin.post("/v1/hunts", demo_spec(hunt_id))
                board = Board(hunt_id, created["treasures_total"])
                left = deadline - time.monotonic() if deadline else 0
                size = cfg.worlds["overworld"].size
                await show(board, play(game, hunt_id, board, players, left, seed=round_no, world_size=size), live)
                print(f"round {round_no}: {sum(board.count.values())} of {board.total} treasures found, "
                      f"{board.digs:,} digs, {board.hints:,} hints, {board.acked} rewards acked")  # fmt: skip
                if deadline and time.monotonic() >= deadline:
                    return
        finally:
            await admin.close()
            await game.close()

    uvloop.run(run_until_signal(Service(cfg, make_runtime), drive))
    return 0
