"""The bench report: a msgspec-defined JSON document, a self-contained HTML page, and a comparison."""

from __future__ import annotations

import html
import math
import statistics
from typing import Literal

import msgspec

from cairn.bench.load import Result
from cairn.bench.recorder import new_histogram

SCHEMA: Literal["cairn-bench/1"] = "cairn-bench/1"


class Settings(msgspec.Struct):
    url: str
    scenario: str
    transport: str
    players: int
    connections: int
    duration_s: float
    warmup_s: float
    tick_hz: float
    positions_per_s: float
    dig_every_s: float
    hint_every_s: float
    world: str
    hunt: str | None


class Latency(msgspec.Struct):
    """Milliseconds, from each request's scheduled send time to its complete reply."""

    count: int
    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    mean: float


class Point(msgspec.Struct, array_like=True):
    """One interval of the timeline: [t, requests, actions, errors, p50 ms, p99 ms, max ms]."""

    t: float
    requests: int
    actions: int
    errors: int
    p50: float
    p99: float
    max: float


class ServerPoint(msgspec.Struct, array_like=True):
    """[t, RSS bytes, allocated blocks, GC pauses so far, GC pause seconds so far], from the server's /metrics."""

    t: float
    rss_bytes: int
    allocated_blocks: int
    gc_pauses: int = 0
    gc_pause_s: float = 0.0


class Growth(msgspec.Struct):
    """Growth from the first to the last tenth of the samples taken after warm-up (median of each)."""

    rss_pct: float
    blocks_pct: float
    rss_start_bytes: int
    rss_end_bytes: int
    blocks_start: int
    blocks_end: int


class Check(msgspec.Struct):
    name: str
    target: str
    value: float
    ok: bool


class Report(msgspec.Struct):
    schema: Literal["cairn-bench/1"]
    started_at: str
    elapsed_s: float
    settings: Settings
    requests: int
    actions: int
    requests_per_s: float
    actions_per_s: float
    errors: dict[str, int]
    error_total: int
    latency_ms: Latency
    send_lag_ms: Latency
    histogram: list[tuple[float, int]]  # [upper bound ms, replies], log-spaced buckets
    hdr: str  # the full HdrHistogram (microseconds) in its standard compressed base64 form
    timeline: list[Point]
    server: list[ServerPoint]
    growth: Growth | None
    grants_acked: int
    checks: list[Check]
    notes: list[str]


def _latency(h: object) -> Latency:
    from hdrh.histogram import HdrHistogram

    assert isinstance(h, HdrHistogram)
    if h.get_total_count() == 0:
        return Latency(0, 0, 0, 0, 0, 0, 0)

    def q(p: float) -> float:
        return round(float(h.get_value_at_percentile(p)) / 1e3, 3)

    return Latency(h.get_total_count(), q(50), q(90), q(99), q(99.9), round(h.get_max_value() / 1e3, 3),
                   round(h.get_mean_value() / 1e3, 3))  # fmt: skip


def _buckets(h: object) -> list[tuple[float, int]]:
    """Counts in log-spaced buckets (4 per power of ten), from 0.01 ms up to the max."""
    from hdrh.histogram import HdrHistogram

    assert isinstance(h, HdrHistogram)
    if h.get_total_count() == 0:
        return []
    bounds = [10 ** (e / 4) for e in range(-8, 4 * 5 + 1)]  # 0.01 ms .. 100 s
    counts = [0] * len(bounds)
    for it in h.get_recorded_iterator():
        ms = it.value_iterated_to / 1e3
        i = min(len(bounds) - 1, next((j for j, b in enumerate(bounds) if ms <= b), len(bounds) - 1))
        counts[i] += it.count_added_in_this_iter_step
    lo = next(i for i, c in enumerate(counts) if c)
    hi = max(i for i, c in enumerate(counts) if c)
    return [(round(bounds[i], 4), counts[i]) for i in range(lo, hi + 1)]


def growth(points: list[ServerPoint], warmup: float) -> Growth | None:
    after = [p for p in points if p.t >= warmup]
    if len(after) < 6:
        return None
    k = max(3, len(after) // 10)
    rss0 = int(statistics.median(p.rss_bytes for p in after[:k]))
    rss1 = int(statistics.median(p.rss_bytes for p in after[-k:]))
    b0 = int(statistics.median(p.allocated_blocks for p in after[:k]))
    b1 = int(statistics.median(p.allocated_blocks for p in after[-k:]))

    def pct(a: int, b: int) -> float:
        return round((b - a) / a * 100, 3) if a else 0.0

    return Growth(pct(rss0, rss1), pct(b0, b1), rss0, rss1, b0, b1)


def checks(r: Report) -> list[Check]:
    """The targets that apply to the scenario (P3, P4, P6)."""
    lat, out = r.latency_ms, []
    if r.settings.scenario in ("steady", "soak"):
        out += [Check("p99", "<= 5 ms", lat.p99, lat.p99 <= 5), Check("p99.9", "<= 20 ms", lat.p999, lat.p999 <= 20)]
    if r.settings.scenario == "hunt-start":
        out.append(Check("max", "<= 50 ms", lat.max, lat.max <= 50))
    out.append(Check("errors", "== 0", r.error_total, r.error_total == 0))
    if r.settings.scenario == "soak" and r.growth is not None:
        out.append(Check("rss growth", "< 2 %", r.growth.rss_pct, r.growth.rss_pct < 2))
        out.append(Check("allocated blocks growth", "< 2 %", r.growth.blocks_pct, r.growth.blocks_pct < 2))
    return out


def build(res: Result) -> Report:
    o, rec = res.opts, res.rec
    measured = max(1e-9, res.elapsed - o.warmup if res.elapsed > o.warmup else res.elapsed)
    measured = min(measured, max(1e-9, o.duration - o.warmup))
    timeline = [Point(round(t, 3), n, a, e, round(p50, 3), round(p99, 3), round(mx, 3))
                for t, n, a, e, p50, p99, mx in rec.timeline()]  # fmt: skip
    server = [
        ServerPoint(s.t, s.rss_bytes, s.allocated_blocks, s.gc_pauses, round(s.gc_pause_s, 6)) for s in res.samples
    ]
    settings = Settings(
        url=o.url, scenario=o.scenario, transport=o.transport, players=o.players, connections=o.connections,
        duration_s=o.duration, warmup_s=o.warmup, tick_hz=o.tick_hz, positions_per_s=o.positions_per_s,
        dig_every_s=o.dig_every, hint_every_s=o.hint_every, world=o.world, hunt=res.hunt,
    )  # fmt: skip
    rep = Report(
        schema=SCHEMA,
        started_at=res.started_at,
        elapsed_s=round(res.elapsed, 3),
        settings=settings,
        requests=rec.requests,
        actions=rec.ops,
        requests_per_s=round(rec.requests / measured, 1),
        actions_per_s=round(rec.ops / measured, 1),
        errors=dict(sorted(rec.errors.items())),
        error_total=sum(rec.errors.values()),
        latency_ms=_latency(rec.hist),
        send_lag_ms=_latency(rec.send_lag),
        histogram=_buckets(rec.hist),
        hdr=rec.hist.encode().decode() if rec.hist.get_total_count() else "",
        timeline=timeline,
        server=server,
        growth=growth(server, o.warmup),
        grants_acked=res.grants_acked,
        checks=[],
        notes=list(res.notes),
    )
    rep.checks = checks(rep)
    return rep


def to_json(rep: Report) -> bytes:
    return msgspec.json.encode(rep)


def from_json(data: bytes) -> Report:
    return msgspec.json.decode(data, type=Report)


def hdr_of(rep: Report) -> object:
    """The report's full histogram, for merging or other percentiles."""
    from hdrh.histogram import HdrHistogram

    return HdrHistogram.decode(rep.hdr.encode()) if rep.hdr else new_histogram()


# ---- comparison -------------------------------------------------------------------------------------
def compare(old: Report, new: Report) -> list[tuple[str, float, float, float | None]]:
    """(metric, old, new, change %) for the headline numbers; lower is better except throughput."""
    rows = [
        ("requests/s", old.requests_per_s, new.requests_per_s),
        ("actions/s", old.actions_per_s, new.actions_per_s),
        ("p50 ms", old.latency_ms.p50, new.latency_ms.p50),
        ("p90 ms", old.latency_ms.p90, new.latency_ms.p90),
        ("p99 ms", old.latency_ms.p99, new.latency_ms.p99),
        ("p99.9 ms", old.latency_ms.p999, new.latency_ms.p999),
        ("max ms", old.latency_ms.max, new.latency_ms.max),
        ("errors", old.error_total, new.error_total),
    ]
    if old.server and new.server:
        rows.append(("peak RSS MB", max(p.rss_bytes for p in old.server) / 2**20,
                     max(p.rss_bytes for p in new.server) / 2**20))  # fmt: skip
    out = []
    for name, a, b in rows:
        out.append((name, float(a), float(b), round((b - a) / a * 100, 1) if a else None))
    return out


# ---- HTML ------------------------------------------------------------------------------------------------
W, H, PAD = 760, 260, 48


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return [round(start + i * step, 10) for i in range(int((hi - start) / step) + 1)]


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:g}"


def line_chart(title: str, unit: str, xs: list[float], series: list[tuple[str, str, list[float]]],
               log: bool = False) -> str:  # fmt: skip
    """An inline SVG line chart; `series` is (name, colour, ys)."""
    if not xs:
        return f"<h3>{html.escape(title)}</h3><p>no data</p>"
    ally = [y for _, _, ys in series for y in ys]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    f = (lambda v: math.log10(max(v, 1e-3))) if log else (lambda v: v)
    y0 = f(min(ally)) if log else 0.0
    y1 = f(max(ally)) if ally else 1.0
    if y1 <= y0:
        y1 = y0 + 1

    def px(x: float) -> float:
        return PAD + (x - x0) / (x1 - x0) * (W - 2 * PAD)

    def py(y: float) -> float:
        return H - PAD + -(f(y) - y0) / (y1 - y0) * (H - 2 * PAD)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" class="chart">',
             f'<text x="{W / 2}" y="18" text-anchor="middle" class="title">{html.escape(title)}</text>']  # fmt: skip
    if log:
        yt = [m * 10**e for e in range(math.floor(y0), math.ceil(y1) + 1) for m in (1, 2, 5)]
        yt = [v for v in yt if y0 <= math.log10(v) <= y1] or [10 ** math.floor(y0)]
    else:
        yt = _ticks(y0, y1)
    for v in yt:
        y = py(v)
        if PAD - 1 <= y <= H - PAD + 1:
            parts.append(f'<line x1="{PAD}" x2="{W - PAD}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
            parts.append(f'<text x="{PAD - 4}" y="{y + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
    for v in _ticks(x0, x1, 8):
        x = px(v)
        parts.append(f'<text x="{x:.1f}" y="{H - PAD + 16}" text-anchor="middle">{_fmt(v)}</text>')
    parts.append(f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle">seconds</text>')
    parts.append(f'<text x="12" y="{H / 2}" transform="rotate(-90 12 {H / 2})" text-anchor="middle">'
                 f"{html.escape(unit)}</text>")  # fmt: skip
    for i, (name, colour, ys) in enumerate(series):
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=False))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        parts.append(f'<text x="{W - PAD - 4}" y="{34 + 14 * i}" text-anchor="end" fill="{colour}">'
                     f"{html.escape(name)}</text>")  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, buckets: list[tuple[float, int]]) -> str:
    if not buckets:
        return f"<h3>{html.escape(title)}</h3><p>no data</p>"
    top = max(c for _, c in buckets) or 1
    bw = (W - 2 * PAD) / len(buckets)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" class="chart">',
             f'<text x="{W / 2}" y="18" text-anchor="middle" class="title">{html.escape(title)}</text>']  # fmt: skip
    for i, (ub, c) in enumerate(buckets):
        h = (H - 2 * PAD) * (math.log10(c + 1) / math.log10(top + 1))
        x = PAD + i * bw
        parts.append(f'<rect x="{x + 1:.1f}" y="{H - PAD - h:.1f}" width="{max(1.0, bw - 2):.1f}" height="{h:.1f}" '
                     f'fill="#4c78a8"><title>≤ {ub:.3g} ms: {c:,}</title></rect>')  # fmt: skip
        if i % max(1, len(buckets) // 10) == 0:
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{H - PAD + 16}" text-anchor="middle">{ub:.3g}</text>')
    parts.append(f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle">latency bucket upper bound, ms '
                 f"(bar height: log count)</text></svg>")  # fmt: skip
    return "".join(parts)


CSS = """body{font:14px system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}td:first-child{text-align:left}
.chart{display:block;margin:12px 0;border:1px solid #eee}.chart text{font-size:11px;fill:#444}
.chart .title{font-size:13px;font-weight:600}.grid{stroke:#eee}.ok{color:#080}.bad{color:#b00}"""


def to_html(rep: Report) -> str:
    s, lat = rep.settings, rep.latency_ms
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(str(v))}</td></tr>" for k, v in msgspec.structs.asdict(s).items())
    lrows = "".join(f"<tr><td>{k}</td><td>{v:,.3f}</td></tr>"
                    for k, v in (("p50", lat.p50), ("p90", lat.p90), ("p99", lat.p99), ("p99.9", lat.p999),
                                 ("max", lat.max), ("mean", lat.mean)))  # fmt: skip
    crow = "".join(f'<tr><td>{esc(c.name)}</td><td>{esc(c.target)}</td><td>{c.value:g}</td>'
                   f'<td class="{"ok" if c.ok else "bad"}">{"met" if c.ok else "missed"}</td></tr>'
                   for c in rep.checks)  # fmt: skip
    erows = "".join(f"<tr><td>{esc(k)}</td><td>{v:,}</td></tr>" for k, v in rep.errors.items()) or \
        "<tr><td>none</td><td>0</td></tr>"  # fmt: skip
    xs = [p.t for p in rep.timeline]
    charts = [
        line_chart(
            "Latency over time (per second, from the scheduled send)",
            "ms (log)",
            xs,
            [
                ("max", "#e45756", [max(p.max, 1e-3) for p in rep.timeline]),
                ("p99", "#f58518", [max(p.p99, 1e-3) for p in rep.timeline]),
                ("p50", "#4c78a8", [max(p.p50, 1e-3) for p in rep.timeline]),
            ],
            log=True,
        ),
        bar_chart("Latency histogram (after warm-up)", rep.histogram),
        line_chart("Throughput", "actions/s", xs, [("actions", "#54a24b", [float(p.actions) for p in rep.timeline])]),
    ]
    if rep.server:
        sx = [p.t for p in rep.server]
        rss = [p.rss_bytes / 2**20 for p in rep.server]
        charts.append(line_chart("Server RSS", "MB", sx, [("RSS", "#b279a2", rss)]))
        charts.append(line_chart("Server allocated blocks", "thousands", sx,
                                 [("blocks", "#9d755d", [p.allocated_blocks / 1e3 for p in rep.server])]))  # fmt: skip
    g = rep.growth
    grow = (f"<p>Growth after warm-up: RSS {g.rss_pct:+.2f}% ({g.rss_start_bytes / 2**20:,.1f} → "
            f"{g.rss_end_bytes / 2**20:,.1f} MB), allocated blocks {g.blocks_pct:+.2f}% "
            f"({g.blocks_start:,} → {g.blocks_end:,}).</p>") if g else ""  # fmt: skip
    if len(rep.server) >= 2:
        a, b = rep.server[0], rep.server[-1]
        n, secs = b.gc_pauses - a.gc_pauses, b.gc_pause_s - a.gc_pause_s
        grow += (f"<p>Server garbage collections during the run: {n:,}, {secs * 1e3:,.1f} ms of pauses in all"
                 f"{f', {secs / n * 1e3:.2f} ms each on average' if n else ''}.</p>")  # fmt: skip
    notes = "".join(f"<li>{esc(n)}</li>" for n in rep.notes)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>cairn bench: {esc(s.scenario)}</title>
<style>{CSS}</style></head><body>
<h1>cairn bench: {esc(s.scenario)}, {s.players:,} players, {esc(s.transport)}</h1>
<p>Started {esc(rep.started_at)}, {rep.elapsed_s:,.1f} s. {rep.requests:,} requests ({rep.requests_per_s:,.1f}/s),
{rep.actions:,} actions ({rep.actions_per_s:,.1f}/s) after a {s.warmup_s:g} s warm-up; {rep.grants_acked} grants acked.
Latency is measured from each request's scheduled send time (open loop).</p>
<table><tr><th>check</th><th>target</th><th>value</th><th></th></tr>{crow}</table>
<table><tr><th>latency</th><th>ms</th></tr>{lrows}</table>
<table><tr><th>error</th><th>count</th></tr>{erows}</table>
{grow}
{"".join(charts)}
<h2>Settings</h2><table>{rows}</table>
<p>Bench send lag (its own lateness against the schedule):
p99 {rep.send_lag_ms.p99:g} ms, max {rep.send_lag_ms.max:g} ms.</p>
<ul>{notes}</ul>
</body></html>
"""
