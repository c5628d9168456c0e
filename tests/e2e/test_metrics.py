"""`/metrics` parses with prometheus_client's parser, with the names and types operators rely on."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import CairnServer, hunt_spec

EXPECTED = {
    "cairn_request_seconds": "histogram",
    "cairn_requests": "counter",
    "cairn_errors": "counter",
    "cairn_journal_commits": "counter",
    "cairn_journal_last_batch_records": "gauge",
    "cairn_journal_last_commit_seconds": "gauge",
    "cairn_event_subscribers": "gauge",
    "cairn_event_queue_depth": "gauge",
    "cairn_event_subscribers_dropped": "counter",
    "cairn_live_hunts": "gauge",
    "cairn_live_treasures": "gauge",
    "cairn_players": "gauge",
    "cairn_process_resident_memory_bytes": "gauge",
    "cairn_python_allocated_blocks": "gauge",
    "cairn_gc_pause_seconds": "histogram",
    "cairn_gc_collections": "counter",
    "cairn_op_seconds": "histogram",
    "cairn_journal_commit_seconds": "summary",
    "cairn_journal_batch_records": "summary",
    "cairn_journal_max_batch_records": "gauge",
    "cairn_journal_pending_records": "gauge",
}


def test_metrics_parse_and_carry_the_expected_families(cairn: CairnServer) -> None:
    from tests.e2e.conftest import ADMIN

    cairn.request("POST", "/v1/hunts", hunt_spec(), key=ADMIN)
    cairn.request("POST", "/v1/hunts/h1/dig", {"player": "a", "pos": [0, 70, 0], "at": [0, 69, 0], "request_id": "x"})
    cairn.request("POST", "/v1/hunts/nope/dig", {"player": "a", "pos": [0, 70, 0], "at": [0, 69, 0], "request_id": "y"})
    dig = {"op": "dig", "hunt": "h1", "player": "b", "pos": [0, 70, 0], "at": [0, 69, 0], "request_id": "z"}
    cairn.request("POST", "/v1/batch", {"ops": [dig, {"op": "hint", "hunt": "h1", "player": "c", "pos": [0, 70, 0]},
                                               {"op": "nonsense"}]})  # fmt: skip
    with urllib.request.urlopen(cairn.url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, kind in EXPECTED.items():
        assert families[name].type == kind, name
    routes = {s.labels.get("route") for s in families["cairn_request_seconds"].samples}
    assert "dig" in routes
    codes = {s.labels["code"] for s in families["cairn_errors"].samples}
    assert "hunt_not_found" in codes
    live = next(s.value for s in families["cairn_live_hunts"].samples)
    assert live == 1
    statuses = {(s.labels["route"], s.labels["code"]) for s in families["cairn_requests"].samples if s.value}
    assert {("create_hunt", "201"), ("dig", "200"), ("dig", "404")} <= statuses
    commits = {s.name: s.value for s in families["cairn_journal_commit_seconds"].samples}
    assert commits["cairn_journal_commit_seconds_count"] >= 1 and commits["cairn_journal_commit_seconds_sum"] > 0
    batch = {s.name: s.value for s in families["cairn_journal_batch_records"].samples}
    assert batch["cairn_journal_batch_records_sum"] >= batch["cairn_journal_batch_records_count"] >= 1
    rss = next(s.value for s in families["cairn_process_resident_memory_bytes"].samples)
    assert 10 * 2**20 < rss < 4 * 2**30
    blocks = next(s.value for s in families["cairn_python_allocated_blocks"].samples)
    assert blocks > 10_000
    ops = families["cairn_op_seconds"].samples
    op_counts = {s.labels["op"]: s.value for s in ops if s.name.endswith("_count") and s.value}
    assert op_counts == {"dig": 1, "hint": 1, "invalid": 1}, op_counts
    gens = {s.labels["generation"] for s in families["cairn_gc_collections"].samples}
    assert gens == {"0", "1", "2"}


def test_access_log_is_off_by_default_and_json_lines_when_on(tmp_path) -> None:
    import json

    quiet = CairnServer(tmp_path / "a")
    loud = CairnServer(tmp_path / "b", env={"CAIRN_SERVER_ACCESS_LOG": "true"})
    for srv in (quiet, loud):
        srv.start()
        try:
            srv.request("GET", "/v1/hunts", headers={"X-Request-Id": "req-42"})
            srv.request("GET", "/v1/hunts/nope")
        finally:
            srv.stop()
    assert "cairn.access" not in quiet.log.read_text()
    lines = [json.loads(ln) for ln in loud.log.read_text().splitlines() if ln.startswith("{")]
    access = [ln for ln in lines if ln["logger"] == "cairn.access"]
    assert any(a["request_id"] == "req-42" and a["route"] == "list_hunts" and a["status"] == 200 for a in access)
    assert any(a["route"] == "get_hunt" and a["status"] == 404 and a["request_id"] for a in access)
    assert all(isinstance(a["ms"], float) for a in access)


def test_metrics_are_served_only_to_configured_addresses(tmp_path) -> None:
    import urllib.error

    srv = CairnServer(tmp_path / "data", env={"CAIRN_SERVER_METRICS_FROM": '["10.0.0.0/8"]'})
    srv.start()
    try:
        try:
            urllib.request.urlopen(srv.url + "/metrics", timeout=10)
            raise AssertionError("metrics must be refused to 127.0.0.1 when only 10.0.0.0/8 may read them")
        except urllib.error.HTTPError as e:
            assert e.code == 403 and b"forbidden" in e.read()
        assert srv.request("GET", "/healthz", key=None)[0] == 200
    finally:
        srv.kill()
