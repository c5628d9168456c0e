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
}


def test_metrics_parse_and_carry_the_expected_families(cairn: CairnServer) -> None:
    from tests.e2e.conftest import ADMIN

    cairn.request("POST", "/v1/hunts", hunt_spec(), key=ADMIN)
    cairn.request("POST", "/v1/hunts/h1/dig", {"player": "a", "pos": [0, 70, 0], "at": [0, 69, 0], "request_id": "x"})
    cairn.request("POST", "/v1/hunts/nope/dig", {"player": "a", "pos": [0, 70, 0], "at": [0, 69, 0], "request_id": "y"})
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
