"""`cairn bench` internals: open-loop arithmetic, the stall a closed loop would hide, the report schema."""

from __future__ import annotations

import socket
import threading
import time

import httptools
import msgspec
import pytest
import uvloop

from cairn.bench import report
from cairn.bench.load import Load, Options, Result, Sample, parse_metrics
from cairn.bench.recorder import Recorder


def test_latency_counts_from_the_scheduled_time_not_the_send() -> None:
    """100 requests every 10 ms; the server stalls 300 ms at 0.5 s, so replies to the requests
    scheduled during the stall are all late by what is left of it. p99 must show the stall."""
    rec = Recorder(start=0.0)
    stall_from, stall_to = 0.5, 0.8
    for i in range(100):
        sched = i * 0.01
        done = max(sched, stall_to) + 0.001 if sched >= stall_from - 0.001 else sched + 0.001
        rec.record(sched, done)
    # 30 of 100 replies (scheduled 0.50 .. 0.79) waited for the stall to end: 301 ms down to 11 ms.
    assert rec.max_ms() == pytest.approx(301, rel=0.01)
    assert rec.percentile_ms(99) == pytest.approx(291, rel=0.01)
    assert rec.percentile_ms(90) == pytest.approx(201, rel=0.01)
    assert rec.percentile_ms(50) == pytest.approx(1, rel=0.01)
    # a closed loop (timing from the actual send, one request at a time) would have seen one slow reply
    closed = sorted([0.001] * 99 + [0.301])
    assert closed[int(0.9 * len(closed))] == 0.001


def test_warmup_is_left_out_of_the_summary_but_not_the_timeline() -> None:
    rec = Recorder(start=10.0, warmup=1.0)
    rec.record(10.5, 10.6, ops=5, errors={"rate_limited": 1})
    rec.record(11.5, 11.502, ops=3)
    assert rec.requests == 1 and rec.ops == 3 and rec.errors == {}
    assert [p[:4] for p in rec.timeline()] == [(0.0, 1, 5, 1), (1.0, 1, 3, 0)]
    assert rec.percentile_ms(50) == pytest.approx(2, rel=0.01)


class StallingServer:
    """A bare HTTP/1.1 server in a thread: answers every request at once, except that it stops
    answering for `stall` seconds at `at` seconds after its first request (a GC pause, a fsync)."""

    def __init__(self, at: float, stall: float) -> None:
        self.at, self.stall = at, stall
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.first = 0.0
        self.stalled = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn: socket.socket) -> None:
        done: list[bool] = []

        class P:
            def on_message_complete(self) -> None:
                done.append(True)

        parser = httptools.HttpRequestParser(P())
        reply = b'HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n{"results":[]}'
        while True:
            data = conn.recv(65536)
            if not data:
                return
            parser.feed_data(data)
            for _ in range(len(done)):
                now = time.monotonic()
                self.first = self.first or now
                if not self.stalled and now - self.first >= self.at:
                    self.stalled = True
                    time.sleep(self.stall)
                conn.sendall(reply)
            done.clear()

    def close(self) -> None:
        self.sock.close()


def test_an_injected_server_stall_shows_in_p99() -> None:
    srv = StallingServer(at=0.5, stall=0.3)
    try:
        o = Options(url=f"http://127.0.0.1:{srv.port}", key="k", hunt="h1", players=400, connections=1,
                    duration=2.0, warmup=0.0, tick_hz=100, sample_every=0, grants=False, drain=5)  # fmt: skip
        res = uvloop.run(Load(o).run())
    finally:
        srv.close()
    rec = res.rec
    assert srv.stalled
    assert rec.requests == res.sent >= 195 and res.unanswered == 0  # a tick with nothing due sends nothing
    # about 30 of 200 requests were due during the 300 ms stall: p90 is inside it, p99 near its length
    assert rec.percentile_ms(99) >= 200, rec.percentile_ms(99)
    assert rec.percentile_ms(90) >= 20, rec.percentile_ms(90)
    assert rec.percentile_ms(50) < 20, rec.percentile_ms(50)
    slow = sum(1 for lat in (lat for iv in rec.intervals.values() for lat in iv.latencies_ms) if lat > 100)
    assert slow >= 15, slow


def _result(scenario: str = "steady") -> Result:
    o = Options(scenario=scenario, players=10, duration=20, warmup=2)
    rec = Recorder(start=0.0, warmup=2)
    for i in range(2000):
        rec.record(
            i * 0.01, i * 0.01 + 0.001 + (i % 100) * 1e-5, ops=7, errors={"hint_cooldown": 1} if i == 500 else None
        )
        rec.sent(i * 0.01, i * 0.01 + 1e-5)
    samples = [Sample(float(t), 100_000_000 + t * 1000, 500_000 + t) for t in range(20)]
    return Result(o, rec, "2026-11-27T00:00:00Z", 20.0, "h1", samples, 2000, 3, 0, ["a note"])


def test_report_schema_round_trips_and_names_every_field() -> None:
    rep = report.build(_result())
    data = report.to_json(rep)
    raw = msgspec.json.decode(data)
    assert set(raw) == {
        "schema", "started_at", "elapsed_s", "settings", "requests", "actions", "requests_per_s", "actions_per_s",
        "errors", "error_total", "latency_ms", "send_lag_ms", "histogram", "hdr", "timeline", "server", "growth",
        "grants_acked", "checks", "notes",
    }  # fmt: skip
    assert raw["schema"] == "cairn-bench/1"
    assert set(raw["latency_ms"]) == {"count", "p50", "p90", "p99", "p999", "max", "mean"}
    assert len(raw["timeline"][0]) == 7 and len(raw["server"][0]) == 5
    back = report.from_json(data)
    assert back == rep
    assert rep.requests == 1800 and rep.actions == 1800 * 7 and rep.errors == {"hint_cooldown": 1}
    assert rep.latency_ms.p50 == pytest.approx(1.5, abs=0.02) and rep.latency_ms.max == pytest.approx(1.99, abs=0.01)
    assert sum(c for _, c in rep.histogram) == 1800
    assert report.hdr_of(rep).get_total_count() == 1800  # type: ignore[attr-defined]
    assert {c.name: c.ok for c in rep.checks} == {"p99": True, "p99.9": True, "errors": False}
    assert rep.growth is not None and rep.growth.rss_pct == pytest.approx(0.0135, abs=0.002)
    with pytest.raises(msgspec.ValidationError):
        report.from_json(data.replace(b'"cairn-bench/1"', b'"cairn-bench/0"'))


def test_html_report_is_self_contained_with_its_plots() -> None:
    page = report.to_html(report.build(_result("soak")))
    assert page.count("<svg") == 5  # latency over time, histogram, throughput, RSS, allocated blocks
    assert "src=" not in page and "href=" not in page and "<script" not in page
    assert "rss growth" in page


def test_compare_gives_the_change_of_each_headline_number() -> None:
    old = report.build(_result())
    new = msgspec.structs.replace(old, requests_per_s=old.requests_per_s * 2)
    rows = {name: pct for name, _a, _b, pct in report.compare(old, new)}
    assert rows["requests/s"] == 100.0 and rows["p99 ms"] == 0.0


def test_parse_metrics_reads_rss_and_blocks() -> None:
    text = "# TYPE x gauge\ncairn_process_resident_memory_bytes 1.5e+08\ncairn_python_allocated_blocks 4242\n"
    assert parse_metrics(text + "cairn_gc_pause_seconds_sum 0.25\ncairn_gc_pause_seconds_count 7\n") == (
        150_000_000,
        4242,
        7,
        0.25,
    )


def test_a_stall_of_the_load_generator_itself_is_not_hidden() -> None:
    """If this process is late to send (a pause of its own), the replies still count from the schedule."""
    srv = StallingServer(at=1e9, stall=0)
    paused: list[float] = []

    def pause(load: Load) -> None:
        if not paused:
            paused.append(time.monotonic())
            time.sleep(0.25)  # the load generator's loop is blocked: sends fall behind the schedule

    try:
        o = Options(url=f"http://127.0.0.1:{srv.port}", key="k", hunt="h1", players=400, connections=1,
                    duration=1.5, warmup=0.0, tick_hz=100, sample_every=0, grants=False, drain=5)  # fmt: skip
        res = uvloop.run(Load(o, on_progress=pause).run())
    finally:
        srv.close()
    assert paused and not srv.stalled
    assert res.rec.percentile_ms(99) >= 150, res.rec.percentile_ms(99)
    assert res.rec.send_lag.get_max_value() >= 200_000  # microseconds
