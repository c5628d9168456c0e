"""Prometheus text metrics: request latency per route, statuses, journal, events, live state, process.

Recording is a few integer operations per request; rendering happens only when scraped.
"""

from __future__ import annotations

import bisect
import gc
import inspect
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cairn.core import views
from cairn.log import access_log, request_id, tag

if TYPE_CHECKING:
    from cairn.app import Runtime
    from cairn.net.hub import Hub

BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _quote(v: object) -> str:
    return f'"{v}"'


class Histogram:
    """Counts per bucket and a sum; recording is one bucket increment and one addition (the count is
    the counts' total, worked out when scraped)."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0

    @property
    def count(self) -> int:
        return sum(self.counts)

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sum += seconds

    def lines(self, name: str, labels: str) -> list[str]:
        def lab(extra: str = "") -> str:
            parts = [p for p in (labels, extra) if p]
            return "{" + ",".join(parts) + "}" if parts else ""

        out, acc = [], 0
        for le, c in zip(BUCKETS, self.counts, strict=False):
            acc += c
            out.append(f"{name}_bucket{lab(f'le={_quote(le)}')} {acc}")
        count = self.count
        out.append(f"{name}_bucket{lab('le=' + _quote('+Inf'))} {count}")
        out.append(f"{name}_sum{lab()} {self.sum:.6f}")
        out.append(f"{name}_count{lab()} {count}")
        return out


class Metrics:
    def __init__(self, access_log: bool = False) -> None:
        self.latency: dict[str, Histogram] = {}
        self.ops: dict[str, Histogram] = {}  # per op of a batch or session frame: op_histograms()
        self.status: dict[tuple[str, int], int] = {}  # by (route, status), but see `requests`
        # Timed routes' histograms: a sync bytes reply (a 200) is counted there only, see `requests`.
        self.fast: dict[str, Histogram] = {}
        self.errors: dict[str, int] = {}
        self.gc_pause = Histogram()
        self.gc_collections = [0, 0, 0]
        self.access_log = access_log
        self._gc_start = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc_pause.observe(time.perf_counter() - self._gc_start)
            gen = info.get("generation", 0)
            if 0 <= gen < 3:
                self.gc_collections[gen] += 1

    def op_histograms(self) -> dict[str, Histogram]:
        """The histograms of ops (`dig`, `hint`, `positions`, `invalid`) inside a batch or a session frame."""
        if not self.ops:
            self.ops.update((op, Histogram()) for op in ("dig", "hint", "positions", "invalid"))
        return self.ops

    def close(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1

    def observe(self, route: str, status: int, seconds: float) -> None:
        h = self.latency.get(route)
        if h is None:
            h = self.latency[route] = Histogram()
        h.observe(seconds)
        key = (route, status)
        self.status[key] = self.status.get(key, 0) + 1

    def requests(self) -> dict[tuple[str, int], int]:
        """Requests answered, by (route, status). A timed route's sync bytes replies (200s) are counted
        only in its histogram, one increment fewer on the fast path: they are the histogram's count
        less the replies that `observe` recorded for the route."""
        out = dict(self.status)
        seen: dict[str, int] = {}
        for (route, _), n in self.status.items():
            seen[route] = seen.get(route, 0) + n
        for route, hist in self.fast.items():
            out[(route, 200)] = out.get((route, 200), 0) + hist.count - seen.get(route, 0)
        return out

    def timed(self, route: str, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """Wrap a handler to record its latency and status; a sync `bytes` reply stays on the fast path."""
        observe = self.observe
        clock = time.perf_counter
        hist = self.latency.setdefault(route, Histogram())
        counts = hist.counts
        bisect_left = bisect.bisect_left
        self.fast[route] = hist
        self.status.setdefault((route, 200), 0)  # a line from the start

        def sync(req: Any) -> Any:
            t0 = clock()
            try:
                res = fn(req)
            except Exception as e:
                observe(route, getattr(e, "status", 500), clock() - t0)
                tag(e, req)
                raise
            if type(res) is bytes:  # Histogram.observe, inlined: this runs on every fast request
                dt = clock() - t0
                counts[bisect_left(BUCKETS, dt)] += 1
                hist.sum += dt  # and its 200 is counted by the histogram (`requests`)
                return res
            if type(res) is tuple:
                observe(route, res[0], clock() - t0)
                return res
            return finish(res, t0)

        async def finish(aw: Any, t0: float, req: Any = None) -> Any:
            try:
                res = await aw
            except Exception as e:
                observe(route, getattr(e, "status", 500), clock() - t0)
                tag(e, req)
                raise
            observe(route, res[0] if type(res) is tuple else getattr(res, "status", 200), clock() - t0)
            return res

        async def run_async(req: Any) -> Any:
            return await finish(fn(req), clock(), req)

        inner = run_async if inspect.iscoroutinefunction(fn) else sync
        return self._logged(route, inner) if self.access_log else inner

    def _logged(self, route: str, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """Wrap a timed handler to write one access-log line per request (off by default)."""
        clock = time.perf_counter

        def line(req: Any, status: int, t0: float) -> None:
            access_log.info(
                "%s %s %d", req.method, req.path, status,
                extra={"request_id": request_id(req), "route": route, "status": status,
                       "ms": round((clock() - t0) * 1e3, 3), "client": req.client},
            )  # fmt: skip

        async def later(aw: Any, req: Any, t0: float) -> Any:
            try:
                res = await aw
            except Exception as e:
                line(req, getattr(e, "status", 500), t0)
                raise
            line(req, res[0] if type(res) is tuple else getattr(res, "status", 200), t0)
            return res

        def logged(req: Any) -> Any:
            t0 = clock()
            try:
                res = fn(req)
            except Exception as e:
                line(req, getattr(e, "status", 500), t0)
                raise
            if inspect.isawaitable(res):
                return later(res, req, t0)
            line(req, res[0] if type(res) is tuple else getattr(res, "status", 200), t0)
            return res

        return logged

    def render(self, rt: Runtime, hub: Hub, key_uses: dict[str, int] | None = None) -> bytes:
        lines: list[str] = []

        def head(name: str, kind: str, help_: str) -> None:
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} {kind}")

        head("cairn_request_seconds", "histogram", "Request latency by route.")
        for route, h in sorted(self.latency.items()):
            lines.extend(h.lines("cairn_request_seconds", f'route="{route}"'))
        head("cairn_op_seconds", "histogram", "Time of each op in a batch or session frame, by op.")
        for op, h in sorted(self.ops.items()):
            lines.extend(h.lines("cairn_op_seconds", f'op="{op}"'))
        head("cairn_requests_total", "counter", "Requests by route and status code.")
        for (route, status), n in sorted(self.requests().items()):
            lines.append(f'cairn_requests_total{{route="{route}",code="{status}"}} {n}')
        head("cairn_errors_total", "counter", "Error replies by error code.")
        for code, n in sorted(self.errors.items()):
            lines.append(f'cairn_errors_total{{code="{code}"}} {n}')
        head("cairn_key_requests_total", "counter",
             "Requests by the label of their API key, on routes that check the key each time (not digs).")
        for label, n in sorted((key_uses or {}).items()):
            lines.append(f'cairn_key_requests_total{{key="{label}"}} {n}')
        stats = rt.store.stats()
        single: list[tuple[str, str, str, float]] = [
            ("cairn_journal_commits_total", "counter", "Group commits of the journal.", stats.get("commits", 0)),
            ("cairn_journal_records_total", "counter", "Records committed.", stats.get("records", 0)),
            ("cairn_journal_last_batch_records", "gauge", "Records in the last group commit.",
             stats.get("last_batch", 0)),
            ("cairn_journal_last_commit_seconds", "gauge", "Duration of the last group commit.",
             stats.get("last_commit_seconds", 0.0)),
            ("cairn_event_subscribers", "gauge", "Connected event subscribers.", hub.subscribers),
            ("cairn_event_queue_depth", "gauge", "Deepest subscriber queue.", hub.depth()),
            ("cairn_event_subscribers_dropped_total", "counter", "Subscribers cut off for falling behind.",
             hub.dropped_total),
        ]  # fmt: skip
        commits = stats.get("commits", 0)
        head("cairn_journal_commit_seconds", "summary", "Group commit durations (one transaction each).")
        lines.append(f"cairn_journal_commit_seconds_sum {stats.get('commit_seconds_total', 0.0):.6f}")
        lines.append(f"cairn_journal_commit_seconds_count {commits:g}")
        head("cairn_journal_batch_records", "summary", "Records per group commit.")
        lines.append(f"cairn_journal_batch_records_sum {stats.get('records', 0):g}")
        lines.append(f"cairn_journal_batch_records_count {commits:g}")
        single += [
            ("cairn_journal_max_batch_records", "gauge", "Largest group commit so far.", stats.get("max_batch", 0)),
            ("cairn_journal_pending_records", "gauge", "Records waiting for the next commit.", stats.get("pending", 0)),
            ("cairn_journal_waiters", "gauge", "Replies waiting for durability.", stats.get("waiters", 0)),
            ("cairn_journal_failed", "gauge", "1 once the store failed (embedded: the journal writer; the "
             "process then stops).", float(stats.get("failed", 0))),
        ]
        eng = rt.engine
        if eng is not None:
            totals = views.totals(eng, rt.clock())
            single += [
                ("cairn_live_hunts", "gauge", "Hunts scheduled or active.", totals.live_hunts),
                ("cairn_live_treasures", "gauge", "Treasures not yet claimed in live hunts.", totals.live_treasures),
                ("cairn_players", "gauge", "Players with a known position.", totals.players),
                ("cairn_pending_grants", "gauge", "Grants not yet acked.", totals.pending_grants),
            ]
        single += [
            ("cairn_process_resident_memory_bytes", "gauge", "Resident set size.", rss_bytes()),
            ("cairn_python_allocated_blocks", "gauge", "sys.getallocatedblocks().", sys.getallocatedblocks()),
        ]
        for name, kind, help_, value in single:
            head(name, kind, help_)
            lines.append(f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}")
        head("cairn_gc_collections_total", "counter", "Garbage collections by generation.")
        for gen, n in enumerate(self.gc_collections):
            lines.append(f'cairn_gc_collections_total{{generation="{gen}"}} {n}')
        head("cairn_gc_pause_seconds", "histogram", "Garbage collector pauses.")
        lines.extend(self.gc_pause.lines("cairn_gc_pause_seconds", ""))
        return ("\n".join(lines) + "\n").encode()


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return 0
