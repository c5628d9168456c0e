"""`cairn bench` against a real `cairn serve`: a short run over HTTP and over the WebSocket session."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from cairn.bench import report
from tests.e2e.conftest import ADMIN, GAME, CairnServer


def bench(srv: CairnServer, tmp: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], report.Report]:
    out = tmp / "r.json"
    cmd = [sys.executable, "-m", "cairn", "bench", "--url", srv.url, "--key", GAME, "--admin-key", ADMIN,
           "--players", "60", "--duration", "3", "--warmup", "1", "--radius", "300", "--dig-every", "0.5",
           "--hint-every", "1", "--json", str(out), "--html", str(tmp / "r.html"), "--quiet", *extra]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, report.from_json(out.read_bytes())


def _old_report() -> report.Report:
    from cairn.bench.load import Options, Result
    from cairn.bench.recorder import Recorder

    rec = Recorder(0.0)
    for i in range(100):
        rec.record(i * 0.01, i * 0.01 + 0.2, ops=2)  # 200 ms each: the new run is faster
    return report.build(Result(Options(duration=1, warmup=0), rec, "2026-01-01T00:00:00Z", 1.0, None))


@pytest.mark.parametrize("transport", ["http", "ws"])
def test_bench_drives_a_real_server_and_writes_its_reports(cairn: CairnServer, tmp_path: Path, transport: str) -> None:
    old = tmp_path / "old.json"
    old.write_bytes(report.to_json(_old_report()))
    profile = tmp_path / "bench-profile.html"
    proc, rep = bench(cairn, tmp_path, "--transport", transport, "--compare", str(old), "--profile", str(profile))
    assert rep.settings.transport == transport and rep.settings.hunt and rep.settings.hunt.startswith("bench-")
    # 4 connections × 20 ticks/s over the 2 measured seconds; every player moves 4×/s, digs 2×/s, hints 1×/s
    assert 150 <= rep.requests <= 170, rep.requests
    assert rep.actions >= 0.8 * 60 * (4 + 2 + 1) * 2, rep.actions
    assert rep.error_total == 0, rep.errors
    assert 0 < rep.latency_ms.p50 <= rep.latency_ms.p99 <= rep.latency_ms.max
    assert rep.server and all(p.rss_bytes > 10_000_000 and p.allocated_blocks > 10_000 for p in rep.server)
    page = (tmp_path / "r.html").read_text()
    assert page.count("<svg") == 5 and "Server RSS" in page
    assert "p99" in proc.stdout
    # --profile: a pyinstrument profile of the load generator's own loop
    assert "pyinstrument" in profile.read_text() and "cairn/bench/" in profile.read_text()
    # --compare: 200 ms before, a few ms now; errors 0 → 0 has no ratio
    assert re.search(r"p50 ms .* -9\d\.\d%", proc.stdout) and re.search(r"errors .* n/a", proc.stdout), proc.stdout
    # the hunt saw the digs: the server counted them
    status, body, _ = cairn.request("GET", f"/v1/players/{'b1-00000'}", key=ADMIN)
    assert status == 200 and body["last_pos"] is not None
