"""The live dashboard: its static files at `/dashboard`, and the admin reads its views need.

Everything here reads engine state that exists anyway; nothing is added to the dig, hint,
positions or batch paths. The per-hunt live view (player markers, dig activity, treasure
states) is built at most once per `LIVE_EVERY` seconds and shared by every open dashboard,
so five dashboards cost the engine what one does; and when many players make a view slow to
build, it is rebuilt less often, so that building it stays under `BUDGET` of the engine's time.
The site density grid of a hunt's area is computed once, off the event loop, and cached.

- `GET /dashboard`, `GET /dashboard/{file}`: the single-page app (`cairn/web/`), from memory.
- `GET /v1/dashboard/hunts` (admin): every hunt's summary with its recent players and finders.
- `GET /v1/hunts/{hunt}/map` (admin): area, density grid, treasures with positions and
  tiers, fence radius, boards, and the event id to resume the event stream from.
- `GET /v1/hunts/{hunt}/live` (admin): recent player positions, the players who dug in the
  last seconds (where they stand, and when), treasure states and fence occupancy.
- `GET /v1/admin/health` (admin): request rate, p50/p99 latency and RSS over the last
  minutes, event subscribers, pending grants.
- `POST /v1/dashboard/login` (no key): trade a one-time login token (printed by `cairn demo`)
  for the admin key.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import secrets
import time
from collections import deque
from importlib import resources
from typing import Any

import msgspec
import numpy as np

from cairn.core import views
from cairn.core.errors import Unauthorized
from cairn.core.sites import SiteSet
from cairn.net.api import ADMIN, Api, wire_error
from cairn.net.metrics import BUCKETS, rss_bytes
from cairn.net.request import Request
from cairn.net.response import Response
from cairn.net.router import Router

_enc = msgspec.json.Encoder()

#: Seconds a shared live view is reused before it is rebuilt (dashboards poll every second).
LIVE_EVERY = 0.9
#: Seconds the shared hunts list is reused (dashboards poll it every 3 seconds).
HUNTS_EVERY = 2.5
#: The share of the engine's time the shared views may take: a view that took t seconds to build
#: is reused for at least t / BUDGET seconds (10 ms with 20,000 players: 2 s).
BUDGET = 0.005
#: A view lists the players whose last dig is at most this old, with its age: a client that polls
#: more often than this sees every player's latest dig, and counts it once by its time.
DIG_WINDOW = 3.0
#: A player whose last position is older than this is not drawn.
RECENT = 30.0
#: At most this many player markers per view (evenly thinned beyond it; the total is reported).
MAX_MARKERS = 5_000
#: Density grid: cells along the longer side of the area.
DENSITY_CELLS = 160
#: Health samples: taken at most every SAMPLE_EVERY seconds while a dashboard asks, kept for KEEP seconds.
SAMPLE_EVERY = 2.0
KEEP = 600.0
#: A one-time login token is good for this long.
TOKEN_TTL = 600.0

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
]


class Asset(msgspec.Struct, frozen=True):
    body: bytes
    content_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """Every file of `cairn/web/`, read once."""
    out: dict[str, Asset] = {}
    root = resources.files("cairn") / "web"
    if not root.is_dir():
        return out
    for entry in root.iterdir():
        name = entry.name
        ext = name[name.rfind(".") :] if "." in name else ""
        if not entry.is_file() or ext not in CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        etag = '"' + hashlib.blake2b(body, digest_size=8).hexdigest() + '"'
        out[name] = Asset(body, CONTENT_TYPES[ext], etag)
    return out


class LoginBody(msgspec.Struct, forbid_unknown_fields=True):
    token: str


def percentile(deltas: list[int], q: float) -> float | None:
    """The q-quantile in seconds of a latency histogram (per-bucket counts), interpolated in its bucket."""
    total = sum(deltas)
    if total <= 0:
        return None
    rank = q * total
    acc = 0
    lower = 0.0
    for i, c in enumerate(deltas):
        upper = BUCKETS[i] if i < len(BUCKETS) else BUCKETS[-1]
        if c and acc + c >= rank:
            if i >= len(BUCKETS):
                return BUCKETS[-1]
            return lower + (upper - lower) * (rank - acc) / c
        acc += c
        lower = upper
    return BUCKETS[-1]


class Dashboard:
    """The dashboard's routes, bound to one API (runtime, keys, hub, metrics)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.assets = load_assets()
        # view -> (reuse until, body, seq, built at); per hunt, and "" for the hunts list
        self.cache: dict[str, tuple[float, bytes, int, float]] = {}
        self.live_seq = 0
        self.density: dict[tuple[str, tuple[int, ...], tuple[int, ...]], tuple[Any, dict[str, Any]]] = {}
        self.samples: deque[tuple[float, int, list[int], int]] = deque()
        self.tokens: dict[str, float] = {}
        self.hunts_version: tuple[int, int] = (-1, -1)  # `views.hunts_version` of the cached hunts list
        self.live_versions: dict[str, tuple[int, str]] = {}  # `views.hunt_version` of each cached live view

    # ---- static files ---------------------------------------------------------------------------
    def index(self, req: Request) -> Response:
        return self._asset(req, "index.html")

    def static(self, req: Request) -> Response:
        return self._asset(req, req.params["file"])

    def _asset(self, req: Request, name: str) -> Response:
        a = self.assets.get(name)
        if a is None:
            return Response(404, b'{"error":{"code":"not_found","message":"no such dashboard file"}}')
        headers = [("ETag", a.etag), ("Cache-Control", "no-cache"), *SECURITY_HEADERS]
        if req.headers.get("if-none-match") == a.etag:
            return Response(304, b"", a.content_type, headers)
        return Response(200, a.body, a.content_type, headers)

    # ---- login ------------------------------------------------------------------------------------
    def one_time_login(self) -> str:
        """A token that `POST /v1/dashboard/login` trades once for the admin key."""
        token = secrets.token_urlsafe(24)
        now = time.monotonic()
        self.tokens = {t: exp for t, exp in self.tokens.items() if exp > now}
        self.tokens[token] = now + TOKEN_TTL
        return token

    def login(self, req: Request) -> bytes:
        try:
            body = msgspec.json.decode(req.body, type=LoginBody)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeDecodeError) as e:
            raise wire_error(e) from None  # 400 invalid_body, or 422 with the field (as the API does)
        now = time.monotonic()
        found = None
        for t, exp in list(self.tokens.items()):
            if hmac.compare_digest(t.encode(), body.token.encode()):
                found = (t, exp)
        if found is None or found[1] <= now:
            raise Unauthorized("unknown or expired login token")
        del self.tokens[found[0]]
        keys = self.api.keys.active_static("admin")
        if not keys:
            raise Unauthorized("no admin key is configured")
        return _enc.encode({"key": keys[0].decode()})

    # ---- hunts list ---------------------------------------------------------------------------------
    def hunts(self, req: Request) -> bytes:
        """Every hunt's summary, with its recent players (in its area) and distinct finders; shared view."""
        self.api.auth(req, ADMIN)
        mono = time.monotonic()
        eng = self.api.rt.eng
        version = views.hunts_version(eng)  # an operator's action shows on the next poll, not 2.5 s later
        hit = self.cache.get("")
        if hit is not None and mono < hit[0] and version == self.hunts_version:
            return hit[1]
        now = self.api.clock()
        out = views.hunt_rows(eng, now, RECENT)
        body = _enc.encode({"hunts": out, "now": now})
        self.cache[""] = (mono + max(HUNTS_EVERY, (time.monotonic() - mono) / BUDGET), body, 0, mono)
        self.hunts_version = version
        return body

    # ---- hunt map -----------------------------------------------------------------------------------
    async def hunt_map(self, req: Request) -> bytes:
        self.api.auth(req, ADMIN)
        eng = self.api.rt.eng
        h = eng.hunt(req.params["hunt"])
        now = self.api.clock()
        lo, hi = tuple(h.spec.area.min), tuple(h.spec.area.max)
        key = (h.world, lo, hi)
        sites = views.sites(eng, h.world)
        if sites is None:  # an ended hunt of a world retired since
            sites = SiteSet.empty(())
        hit = self.density.get(key)
        if hit is not None and hit[0] is sites:  # a world's sites may be replaced (site upload)
            density = hit[1]
        else:
            density = await asyncio.to_thread(density_grid, sites, lo, hi)
            self.density[key] = (sites, density)
        boards = views.board_names(eng, h.spec.leaderboards)
        return _enc.encode({
            "hunt": h.summary(now),
            "area": {"min": list(lo), "max": list(hi)},
            "fence_radius": h.spec.proximity.radius,
            "prize": h.spec.prize.mode,
            "density": density,
            "treasures": views.map_treasures(eng, h),
            "leaderboards": boards,
            "last_event": views.last_event(eng),
            "live_every": LIVE_EVERY,
        })  # fmt: skip

    def hunt_live(self, req: Request) -> bytes:
        """Recent players, dig activity and treasure states; one shared view per LIVE_EVERY seconds."""
        self.api.auth(req, ADMIN)
        hunt_id = req.params["hunt"]
        mono = time.monotonic()
        hit = self.cache.get(hunt_id)
        # An operator's action or a change of state shows in the next view at once: the page asks for
        # one right after an action, and a view kept for a slow rebuild's budget would hide it.
        version = views.hunt_version(self.api.rt.eng, self.api.rt.eng.hunt(hunt_id), self.api.clock())
        if hit is None or mono >= hit[0] or self.live_versions.get(hunt_id) != version:
            # the digs since the previous view was built, with a margin: a slow rebuild misses none
            window = DIG_WINDOW if hit is None else max(DIG_WINDOW, min(RECENT, mono - hit[3] + 1.0))
            body = self._build_live(hunt_id, window)
            until = mono + max(LIVE_EVERY, (time.monotonic() - mono) / BUDGET)
            hit = self.cache[hunt_id] = (until, body, self.live_seq, mono)
            self.live_versions[hunt_id] = version
        if req.query.get("seen") == str(hit[2]):  # the caller has this view already
            return b'{"seq":%d,"same":true}' % hit[2]
        return hit[1]

    def _build_live(self, hunt_id: str, dig_window: float) -> bytes:
        """The view; `dig_window` is how far back to list digs (seconds)."""
        eng = self.api.rt.eng
        h = eng.hunt(hunt_id)
        now = self.api.clock()
        lo, hi = h.spec.area.min, h.spec.area.max
        x0, z0, x1, z1 = lo[0], lo[2], hi[0], hi[2]
        pts, digs = views.area_activity(eng, x0, z0, x1, z1, now - RECENT, now - dig_window, now)
        total = len(pts) // 2
        if total > MAX_MARKERS:
            step = math.ceil(total / MAX_MARKERS)
            pts = [v for i in range(0, len(pts), 2 * step) for v in (pts[i], pts[i + 1])]
        dig_weight = 1
        if len(digs) > 3 * MAX_MARKERS:  # thinned the same way; each kept dig stands for `dig_weight`
            dig_weight = math.ceil(len(digs) / (3 * MAX_MARKERS))
            digs = [v for i in range(0, len(digs), 3 * dig_weight) for v in digs[i : i + 3]]
        inside = views.fence_occupancy(eng, h)
        self.live_seq += 1
        return _enc.encode({
            "seq": self.live_seq,
            "at": now,
            "state": h.state_at(now),
            "left": h.left,
            "players": pts,
            "player_count": total,
            "digs": digs,
            "dig_window": round(dig_window, 3),
            "dig_weight": dig_weight,
            "states": views.treasure_states(h),
            "inside": {str(n): c for n, c in inside.items() if c},
            "last_event": views.last_event(eng),
        })  # fmt: skip

    # ---- health -------------------------------------------------------------------------------------
    def health(self, req: Request) -> bytes:
        self.api.auth(req, ADMIN)
        mono = time.monotonic()
        if not self.samples or mono - self.samples[-1][0] >= SAMPLE_EVERY:
            self.samples.append(self._sample(mono))
            while self.samples and mono - self.samples[0][0] > KEEP:
                self.samples.popleft()
        series = []
        prev = None
        wall = time.time()
        for s in self.samples:
            if prev is not None and s[0] > prev[0]:
                dt = s[0] - prev[0]
                deltas = [b - a for a, b in zip(prev[2], s[2], strict=False)]
                p50, p99 = percentile(deltas, 0.5), percentile(deltas, 0.99)
                series.append({
                    "t": round(wall - (mono - s[0]), 3),
                    "rps": round((s[1] - prev[1]) / dt, 2),
                    "p50_ms": None if p50 is None else round(p50 * 1000, 3),
                    "p99_ms": None if p99 is None else round(p99 * 1000, 3),
                    "rss_mb": round(s[3] / 1048576, 2),
                })  # fmt: skip
            prev = s
        rt, hub = self.api.rt, self.api.hub
        eng = rt.engine
        totals = views.totals(eng, rt.clock()) if eng is not None else views.Totals(0, 0, 0, 0)
        return _enc.encode({
            "series": series,
            "every": SAMPLE_EVERY,
            "rss_mb": round(rss_bytes() / 1048576, 2),
            "subscribers": hub.subscribers,
            "dropped_subscribers": hub.dropped_total,
            "pending_grants": totals.pending_grants,
            "live_hunts": totals.live_hunts,
            "players": totals.players,
            "errors": dict(self.api.metrics.errors),
            "requests": self._requests()[0],
        })  # fmt: skip

    def _requests(self) -> tuple[int, list[int]]:
        """Requests served and per-bucket latency counts, over every route but the dashboard's own."""
        total = 0
        buckets = [0] * (len(BUCKETS) + 1)
        for route, hist in list(self.api.metrics.latency.items()):
            if route.startswith("dashboard"):
                continue
            counts = getattr(hist, "counts", None)
            if counts is None:
                continue
            total += getattr(hist, "count", 0)
            for i, c in enumerate(counts[: len(buckets)]):
                buckets[i] += c
        return total, buckets

    def _sample(self, mono: float) -> tuple[float, int, list[int], int]:
        total, buckets = self._requests()
        return (mono, total, buckets, rss_bytes())

    # ---- routes -------------------------------------------------------------------------------------
    def routes(self, router: Router) -> None:
        m = self.api.metrics.timed
        router.add("GET", "/dashboard", self.index)
        router.add("GET", "/dashboard/", self.index)
        router.add("GET", "/dashboard/{file}", self.static)
        router.add("POST", "/v1/dashboard/login", m("dashboard_login", self.login), max_body=4096)
        r = self.api.durable_read  # the dashboard shows finders and grants: only durable ones
        router.add("GET", "/v1/dashboard/hunts", m("dashboard_hunts", r(self.hunts)))
        router.add("GET", "/v1/hunts/{hunt}/map", m("dashboard_map", r(self.hunt_map)))
        router.add("GET", "/v1/hunts/{hunt}/live", m("dashboard_live", r(self.hunt_live)))
        router.add("GET", "/v1/admin/health", m("dashboard_health", r(self.health)))


def density_grid(sites: Any, lo: tuple[int, ...], hi: tuple[int, ...]) -> dict[str, Any]:
    """Sites per cell over the area's (x, z), log-scaled to 0..255, row-major by z then x (base64)."""
    w = max(1, hi[0] - lo[0] + 1)
    d = max(1, hi[2] - lo[2] + 1)
    scale = min(1.0, DENSITY_CELLS / max(w, d))  # a cell is at least one block
    nx = max(1, min(DENSITY_CELLS, round(w * scale)))
    nz = max(1, min(DENSITY_CELLS, round(d * scale)))
    idx = sites.query(lo, hi)
    grid = np.zeros((nz, nx), dtype=np.float64)
    if len(idx):
        xyz = sites.positions(idx)
        grid, _, _ = np.histogram2d(xyz[:, 2], xyz[:, 0], bins=(nz, nx), range=((lo[2], hi[2] + 1), (lo[0], hi[0] + 1)))
    peak = float(grid.max()) if grid.size else 0.0
    scaled = np.log1p(grid) / math.log1p(peak) * 255 if peak > 0 else grid
    cells = scaled.astype(np.uint8).tobytes()
    return {"nx": nx, "nz": nz, "sites": len(idx), "peak": peak, "cells": base64.b64encode(cells).decode()}
