"""Fake player ids against a real `cairn serve`: per-key quotas over all players, a bound on new
players per key, strict players (join through positions first), and idle players forgotten with
their durable state kept and memory bounded."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.e2e.conftest import ADMIN, SMALL_WORLD, CairnServer, hunt_spec


def serve(tmp_path: Path, limits: str) -> CairnServer:
    srv = CairnServer(tmp_path / "data", SMALL_WORLD + "\n[limits]\n" + limits)
    srv.start()
    return srv


def metric(srv: CairnServer, name: str) -> float:
    text = urllib.request.urlopen(srv.url + "/metrics", timeout=10).read().decode()
    return float(next(line.split()[1] for line in text.splitlines() if line.startswith(name + " ")))


def test_a_key_spreading_hints_and_digs_over_fresh_ids_hits_its_quotas(tmp_path: Path) -> None:
    srv = serve(tmp_path, "key_hint_rate = 1.0\nkey_hint_burst = 20\nnew_players_rate = 1.0\nnew_players_burst = 30\n"
                "key_dig_rate = 1.0\nkey_dig_burst = 25\n")  # fmt: skip
    try:
        spot = srv.request("POST", "/v1/hunts", hunt_spec(treasures=1), key=ADMIN)[1]["treasures"][0]["pos"]
        # The reported attack: a hint from each of 100 fresh ids, then the dig.
        hints = [srv.request("POST", "/v1/hunts/h1/hint", {"player": f"f{i}", "pos": spot}) for i in range(100)]
        ok = [h for h in hints if h[0] == 200]
        refused = [h for h in hints if h[0] == 429]
        assert 20 <= len(ok) <= 21 and len(ok) + len(refused) == 100, [h[0] for h in hints]
        assert {h[1]["error"]["code"] for h in refused} == {"key_quota"}
        assert "hints" in refused[0][1]["error"]["message"] and int(refused[0][2]["Retry-After"]) >= 1
        # New players, whatever route brings them: 30 in a burst (20 already came with hints).
        fresh = [{"player": f"p{i}", "pos": [0, 70, 0]} for i in range(15)]
        status, body, _ = srv.request("POST", "/v1/positions", {"world": "overworld", "updates": fresh})
        assert status == 429 and body["error"]["code"] == "key_quota" and "new players" in body["error"]["message"]
        assert srv.request("POST", "/v1/positions", {"world": "overworld", "updates": fresh[:9]})[0] == 200
        # Known players move freely; digs count over all players.
        assert srv.request("POST", "/v1/positions", {"world": "overworld", "updates": fresh[:9]})[0] == 200
        digs = [srv.request("POST", "/v1/hunts/h1/dig", {"player": f"p{i % 9}", "pos": [0, 70, 0],
                                                          "at": [0, 69, 1], "request_id": f"d{i}"})
                for i in range(40)]  # fmt: skip
        codes = [d[0] for d in digs]
        assert 25 <= codes.count(200) <= 26 and codes.count(429) == 40 - codes.count(200), codes
        op = {"op": "dig", "hunt": "h1", "player": "p0", "pos": [0, 70, 0], "at": [0, 69, 1], "request_id": "b"}
        batch = srv.request("POST", "/v1/batch", {"ops": [op]})
        assert batch[1]["results"][0]["error"]["code"] == "key_quota"
    finally:
        srv.kill()


def test_strict_players_must_join_through_positions_before_hinting_or_digging(tmp_path: Path) -> None:
    srv = serve(tmp_path, "strict_players = true\n")
    try:
        spot = srv.request("POST", "/v1/hunts", hunt_spec(treasures=1), key=ADMIN)[1]["treasures"][0]["pos"]
        dig = {"player": "ann", "pos": spot, "at": spot, "request_id": "1"}
        for path, body in (("/v1/hunts/h1/hint", {"player": "ann", "pos": spot}), ("/v1/hunts/h1/dig", dig)):
            status, err, _ = srv.request("POST", path, body)
            assert status == 409 and err["error"]["code"] == "player_not_joined" and err["error"]["field"] == "player"
        batch = srv.request("POST", "/v1/batch", {"ops": [{"op": "dig", "hunt": "h1", **dig}]})[1]
        assert batch["results"][0]["error"]["code"] == "player_not_joined"
        join = {"world": "overworld", "updates": [{"player": "ann", "pos": spot}]}
        assert srv.request("POST", "/v1/positions", join)[0] == 200
        assert srv.request("POST", "/v1/hunts/h1/hint", {"player": "ann", "pos": spot})[0] == 200
        assert srv.request("POST", "/v1/hunts/h1/dig", dig)[1]["result"] == "found"
    finally:
        srv.kill()


def test_idle_players_are_forgotten_keeping_durable_state_and_memory_bounded(tmp_path: Path) -> None:
    srv = serve(tmp_path, "player_idle = 1.0\nmax_players = 10000\nnew_players_burst = 10000000\n"
                "new_players_rate = 10000000\n")  # fmt: skip
    try:
        spot = srv.request("POST", "/v1/hunts", hunt_spec(treasures=1), key=ADMIN)[1]["treasures"][0]["pos"]
        dig = {"player": "ann", "pos": spot, "at": spot, "request_id": "r1"}
        claim = srv.request("POST", "/v1/hunts/h1/dig", dig)[1]["claim"]
        rss0 = metric(srv, "cairn_process_resident_memory_bytes")
        # 120,000 fresh ids, 2,000 a request: at most 10,000 are tracked at once.
        refused = 0
        body: dict[str, Any] = {"world": "overworld", "updates": []}
        for r in range(60):
            body["updates"] = [{"player": f"fake-{r}-{i}", "pos": [i % 500, 70, r]} for i in range(2000)]
            status, reply, _ = srv.request("POST", "/v1/positions", body)
            assert status in (200, 429), reply
            if status == 429:
                assert reply["error"]["code"] == "too_many_players"
                refused += 1
                time.sleep(0.3)  # the sweep forgets the ones idle for a second
        assert metric(srv, "cairn_players") <= 10000
        grown = (metric(srv, "cairn_process_resident_memory_bytes") - rss0) / 2**20
        assert refused > 0 and grown < 40, (refused, grown)
        # Everyone is forgotten after a silent second or two, ann too; what is durable stays.
        deadline = time.monotonic() + 10
        while metric(srv, "cairn_players") > 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert metric(srv, "cairn_players") == 0
        assert srv.request("GET", "/v1/players/ann", key=ADMIN)[1]["last_pos"] is None
        assert len(srv.request("GET", "/v1/players/ann/grants")[1]["grants"]) == 1
        replay = srv.request("POST", "/v1/hunts/h1/dig", dig)[1]
        assert replay["result"] == "found" and replay["claim"] == claim
        assert srv.request("GET", "/v1/players/ann", key=ADMIN)[1]["finds"] == 1
    finally:
        srv.kill()
