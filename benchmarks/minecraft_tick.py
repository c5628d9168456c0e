"""What the Cairn plugin costs a Minecraft server's tick: 20 mineflayer bots hunting, with and without it.

Method: one `cairn serve` with a 20-treasure hunt; the flying-squid server (integrations/minecraft/
server.js, creative mode, 160 blocks pregenerated, view distance 4) started fresh for each run, with
the plugin or with `--no-plugin`; 20 bots (one bots.js process) that each, every ~1.5 s, walk for
0.5 s, then /tp to a spot of their own lane (lanes 4 blocks apart near spawn) and break the block
under their feet, and ask /hint every 10th time. The same workload runs in both modes (without
the plugin, /hint is an unknown command).
After a 10 s warm-up, the server prints every 5 s its event loop's busy time divided by the ticks
in the interval (`busy_ms_per_tick`: the game's whole work per tick, packets and physics included;
the ticks run every 50 ms) and the event loop's p99 delay. Runs alternate (with, without, ...);
the report gives the median of the runs' means, and the difference is what the plugin adds.

The plugin also times itself: every game event it handles and every Cairn reply it processes
(`plugin_ms_per_tick`, Node's own socket and HTTP parsing excluded); with the process CPU time per
tick (`cpu_ms_per_tick`), which the other jobs on the machine disturb less than wall time.

Cairn's p99 is read two ways in the plugin runs: from Cairn's own `cairn_request_seconds`
histogram (`/metrics`, bucket upper bound of the 99th percentile, per route, over the measuring
window) and as the plugin sees it (round trip of every call, p99 over each 5 s interval).

Usage: flock -x /tmp/cairn-bench.lock .venv/bin/python benchmarks/minecraft_tick.py [rounds] [seconds]
"""

from __future__ import annotations

import json
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import ADMIN, GAME, CairnServer  # noqa: E402
from tests.e2e.minecraft import Bots, MinecraftServer  # noqa: E402

BOTS = 20
WARMUP = 10.0


def metrics(url: str) -> dict[tuple[str, float], float]:
    """Cumulative counts of `cairn_request_seconds` buckets: (route, le) -> count."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[tuple[str, float], float] = {}
    for m in re.finditer(r'cairn_request_seconds_bucket\{route="(\w+)",le="([^"]+)"\} (\S+)', text):
        le = float("inf") if m[2] == "+Inf" else float(m[2])
        out[(m[1], le)] = float(m[3])
    return out


def p99(before: dict[tuple[str, float], float], after: dict[tuple[str, float], float], route: str) -> Any:
    les = sorted(le for (r, le) in after if r == route)
    if not les:
        return None
    counts = [after[(route, le)] - before.get((route, le), 0.0) for le in les]
    total = counts[-1]
    if total <= 0:
        return None
    for le, c in zip(les, counts, strict=True):
        if c >= 0.99 * total:
            return {"requests": int(total), "p99_ms_at_most": le * 1000}
    return None


def run(cairn: CairnServer, plugin: bool, seconds: float, work: Path, n: int) -> dict[str, Any]:
    extra = ["--gamemode", "creative", "--ops", "--stats-every", "5", "--view-distance", "4"]
    if not plugin:
        extra.append("--no-plugin")
    mc = MinecraftServer(cairn.url, work / f"server-{n}.log", radius=160, extra=tuple(extra),
                         env={"CAIRN_ADMIN_KEY": ADMIN, "CAIRN_GAME_KEY": GAME})  # fmt: skip
    mc.start(timeout=300)
    bots = Bots(mc.port, work / f"bots-{n}.log")
    stop = threading.Event()
    try:
        names = [f"bot{i:02d}" for i in range(BOTS)]
        ids = [bots.send("join", name=name, gamemode="creative") for name in names]
        for i in ids:
            bots.reply(i, timeout=120)

        def hunt(i: int, name: str) -> None:
            rnd = random.Random(i)
            k = 0
            while not stop.is_set():
                # Lanes 4 blocks apart near spawn: the chunks are loaded once, as on a server where
                # players hunt the same area (chunk generation is not what is measured here).
                x0, z0 = -40 + 4 * i, -40 + rnd.randrange(0, 80)
                try:
                    bots.do("walk", name=name, x=x0, z=z0 + 5, ms=500)
                    bots.do("tp_dig", name=name, x=x0 + rnd.randrange(-1, 2), z=z0 + rnd.randrange(-3, 4))
                    if k % 10 == 0:
                        bots.do("chat", name=name, text="/hint")
                except (RuntimeError, TimeoutError) as e:
                    print(f"{name}: {e}", file=sys.stderr)
                k += 1
                stop.wait(1.0)

        threads = [threading.Thread(target=hunt, args=(i, nm), daemon=True) for i, nm in enumerate(names)]
        for th in threads:
            th.start()
        time.sleep(WARMUP)
        start_line = len(mc.lines)
        before = metrics(cairn.url)
        time.sleep(seconds)
        after = metrics(cairn.url)
        stats = [json.loads(s) for s in mc.lines[start_line:] if s.startswith('{"stats"')]
        stop.set()
        for th in threads:
            th.join(30)
    finally:
        stop.set()
        bots.close()
        mc.stop()

    def mean(key: str) -> Any:
        xs = [s[key] for s in stats if s.get(key) is not None]
        return statistics.mean(xs) if xs else None

    out: dict[str, Any] = {
        "plugin": plugin,
        "intervals": len(stats),
        "busy_ms_per_tick": mean("busy_ms_per_tick"),
        "cpu_ms_per_tick": mean("cpu_ms_per_tick"),
        "plugin_ms_per_tick": mean("plugin_ms_per_tick"),
        "ticks_per_s": statistics.mean(s["ticks"] / s["seconds"] for s in stats) if stats else None,
        "loop_delay_p99_ms": statistics.median(s["loop_delay_p99_ms"] for s in stats) if stats else None,
        "players": stats[-1]["players"] if stats else None,
    }
    if plugin:
        out["cairn_metrics_p99"] = {r: p99(before, after, r) for r in ("dig", "positions", "hint", "grants", "ack")}
        lat = [s["cairn"]["latency"] for s in stats if s.get("cairn", {}).get("latency")]
        out["plugin_seen_p99_ms"] = statistics.median(x["p99_ms"] for x in lat) if lat else None
        out["plugin_seen_p50_ms"] = statistics.median(x["p50_ms"] for x in lat) if lat else None
        out["plugin_stats"] = stats[-1].get("cairn") if stats else None
    return out


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    work = Path(tempfile.mkdtemp(prefix="cairn-mc-bench-"))
    cairn = CairnServer(work / "data", config="")
    cairn.start()
    results: list[dict[str, Any]] = []
    try:
        # Sites first (a plugin run uploads them), then the hunt, so both modes play the same hunt.
        first = run(cairn, True, 5.0, work, 0)
        print("warm-up run (discarded):", json.dumps(first), flush=True)
        spec = {"id": "bench", "world": "overworld", "treasures": 20, "duration": "2h",
                "area": {"min": [-60, -64, -60], "max": [60, 320, 60]},
                "spawn": {"tags_any": ["surface"], "min_spacing": 8}, "hints": {"cooldown": "5s"}}  # fmt: skip
        status, body, _ = cairn.request("POST", "/v1/hunts", spec, key=ADMIN)
        assert status == 201, body
        n = 1
        for r in range(rounds):
            for plugin in (True, False) if r % 2 == 0 else (False, True):
                res = run(cairn, plugin, seconds, work, n)
                n += 1
                print(json.dumps(res), flush=True)
                results.append(res)
    finally:
        cairn.kill()

    def med(key: str, plugin: bool) -> Any:
        xs = [r[key] for r in results if r["plugin"] is plugin and r.get(key) is not None]
        return statistics.median(xs) if xs else None

    summary: dict[str, Any] = {"rounds": rounds, "seconds": seconds, "bots": BOTS}
    for key in ("busy_ms_per_tick", "cpu_ms_per_tick", "ticks_per_s", "loop_delay_p99_ms"):
        summary[key] = {"with_plugin": med(key, True), "without_plugin": med(key, False)}
    summary["plugin_ms_per_tick_measured"] = med("plugin_ms_per_tick", True)
    summary["plugin_seen_p99_ms"] = med("plugin_seen_p99_ms", True)
    summary["runs"] = results
    out = ROOT / "benchmarks" / "reports" / "minecraft-tick.json"
    out.write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=1))
    print(f"work dir (logs): {work}")


if __name__ == "__main__":
    main()
