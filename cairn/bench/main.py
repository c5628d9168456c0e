"""`cairn bench`: run a scenario against a Cairn server and write its reports."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import uvloop
from rich.console import Console
from rich.live import Live
from rich.table import Table

from cairn.bench import report
from cairn.bench.load import Load, Options
from cairn.profiling import profiled

DURATION = {"steady": 60.0, "hunt-start": 20.0, "soak": 600.0}


def options(args: argparse.Namespace) -> Options:
    scenario = getattr(args, "scenario", "steady")
    duration = getattr(args, "duration", None) or DURATION[scenario]
    o = Options(
        url=args.url,
        key=getattr(args, "key", None) or os.environ.get("CAIRN_GAME_KEY"),
        admin_key=getattr(args, "admin_key", None) or os.environ.get("CAIRN_ADMIN_KEY"),
        scenario=scenario,
        duration=duration,
    )
    for name in ("transport", "players", "warmup", "connections", "tick_hz", "positions_per_s", "dig_every",
                 "hint_every", "world", "radius", "hunt", "treasures", "burst_at", "sample_every", "seed"):  # fmt: skip
        value = getattr(args, name, None)
        if value is not None:
            setattr(o, name, value)
    if o.warmup >= o.duration:
        o.warmup = 0.0
    return o


def _view(load: Load) -> Table:
    rec, o = load.rec, load.o
    from cairn.bench.transport import clock

    t = clock() - load.t0
    tab = Table(title=f"cairn bench · {o.scenario} · {o.players:,} players · {o.transport}", min_width=60)
    tab.add_column("")
    tab.add_column("", justify="right")
    last = rec.timeline()[-2:-1]
    rows: list[tuple[str, str]] = [
        ("elapsed", f"{t:,.1f} / {o.duration:,.0f} s" + (" (warm-up)" if t < o.warmup else "")),
        ("requests sent / answered", f"{load.sent:,} / {load.answered:,}"),
        ("in flight", f"{sum(p.inflight for p in load.pipes):,}"),
    ]
    if last:
        _, n, a, _e, p50, p99, mx = last[0]
        rows += [("last second: requests, actions", f"{n:,}, {a:,}"),
                 ("last second: p50 / p99 / max ms", f"{p50:.2f} / {p99:.2f} / {mx:.2f}")]  # fmt: skip
    if rec.hist.get_total_count():
        rows.append(("run: p50 / p99 / p99.9 / max ms", f"{rec.percentile_ms(50):.2f} / {rec.percentile_ms(99):.2f} / "
                     f"{rec.percentile_ms(99.9):.2f} / {rec.max_ms():.2f}"))  # fmt: skip
    rows.append(("errors", ", ".join(f"{k} {v:,}" for k, v in sorted(rec.errors.items())) or "0"))
    if load.samples:
        s = load.samples[-1]
        rows.append(("server RSS / allocated blocks", f"{s.rss_bytes / 2**20:,.1f} MB / {s.allocated_blocks:,}"))
    for k, v in rows:
        tab.add_row(k, v)
    return tab


def summary(rep: report.Report) -> Table:
    lat = rep.latency_ms
    tab = Table(title=f"cairn bench · {rep.settings.scenario} · {rep.settings.players:,} players")
    tab.add_column("")
    tab.add_column("", justify="right")
    for k, v in (
        ("requests/s", f"{rep.requests_per_s:,.1f}"), ("actions/s", f"{rep.actions_per_s:,.1f}"),
        ("p50 / p90 ms", f"{lat.p50:.3f} / {lat.p90:.3f}"), ("p99 / p99.9 ms", f"{lat.p99:.3f} / {lat.p999:.3f}"),
        ("max ms", f"{lat.max:.3f}"),
        ("errors", ", ".join(f"{k} {v:,}" for k, v in rep.errors.items()) or "0"),
        ("send lag p99 ms", f"{rep.send_lag_ms.p99:.3f}"),
    ):  # fmt: skip
        tab.add_row(k, v)
    if rep.server:
        tab.add_row("server peak RSS", f"{max(p.rss_bytes for p in rep.server) / 2**20:,.1f} MB")
    if rep.growth:
        tab.add_row("growth RSS / blocks", f"{rep.growth.rss_pct:+.2f}% / {rep.growth.blocks_pct:+.2f}%")
    for c in rep.checks:
        tab.add_row(f"{c.name} {c.target}", f"[{'green' if c.ok else 'red'}]{c.value:g}[/]")
    return tab


def comparison(old: report.Report, new: report.Report) -> Table:
    tab = Table(title="compared with the old report")
    for col in ("metric", "old", "new", "change"):
        tab.add_column(col, justify="left" if col == "metric" else "right")
    for name, a, b, pct in report.compare(old, new):
        tab.add_row(name, f"{a:,.3f}", f"{b:,.3f}", "n/a" if pct is None else f"{pct:+.1f}%")
    return tab


def main(args: Any) -> int:
    o = options(args)
    console = Console(stderr=True)
    live_on = not getattr(args, "quiet", False) and console.is_terminal
    old = report.from_json(Path(args.compare).read_bytes()) if getattr(args, "compare", None) else None

    async def go() -> Any:
        if not live_on:
            return await Load(o).run()
        with Live(console=console, refresh_per_second=2, transient=True) as live:
            return await Load(o, on_progress=lambda ld: live.update(_view(ld))).run()

    with profiled(getattr(args, "profile", None)):
        result = uvloop.run(go())
    rep = report.build(result)
    out = Console()
    if getattr(args, "profile", None):
        out.print(f"profile of the load generator: {args.profile}")
    out.print(summary(rep))
    for n in rep.notes:
        out.print(f"[yellow]note[/yellow]: {n}")
    if getattr(args, "json", None):
        Path(args.json).write_bytes(report.to_json(rep) + b"\n")
        out.print(f"JSON report: {args.json}")
    if getattr(args, "html", None):
        Path(args.html).write_text(report.to_html(rep))
        out.print(f"HTML report: {args.html}")
    if old is not None:
        out.print(comparison(old, rep))
    if getattr(args, "check", False) and not all(c.ok for c in rep.checks):
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(argparse.Namespace(url="http://127.0.0.1:7420")))
