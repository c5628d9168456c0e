"""The engine's read-only views (`cairn.core.views`): what the transport reads, on a real engine."""

from __future__ import annotations

from cairn.core import views
from tests.support import T0, create, engine, positions


def test_views_read_hunts_players_and_grants() -> None:
    eng = engine()
    create(eng, treasures=4)  # area x, z in [-100, 100]
    t1 = positions(eng, "h1")[0]
    now = T0 + 1
    eng.positions("overworld", [("in", (0, 64, 0), False), ("out", (500, 64, 500), False), ("near", t1, False)], now)
    eng.dig("h1", "in", (0, 65, 0), (0, 64, 0), None, now)

    assert views.totals(eng, now) == views.Totals(live_hunts=1, live_treasures=4, players=3, pending_grants=0)
    [row] = views.hunt_rows(eng, now, recent=30.0)
    assert (row["id"], row["players"], row["finders"], row["treasures_left"]) == ("h1", 2, 0, 4)
    assert views.hunt_rows(eng, now + 31, recent=30.0)[0]["players"] == 0  # nobody seen within 30 s

    pts, digs = views.area_activity(eng, -100, -100, 100, 100, now - 30, now - 3, now + 0.5)
    assert sorted(zip(pts[::2], pts[1::2], strict=True)) == sorted([(0, 0), (t1[0], t1[2])])
    assert digs == [0, 0, 500]  # "in" dug 500 ms ago, where it stands
    assert views.area_activity(eng, 200, 200, 300, 300, now - 30, now - 3, now) == ([], [])

    assert views.fence_occupancy(eng, eng.hunt("h1"))[1] == 1  # "near" stands on treasure 1
    assert views.player(eng, "in") == {  # a dig moves the player to where it digs from
        "player": "in", "finds": 0, "flags": 0, "last_pos": [0, 65, 0], "pending_grants": 0, "barred": None,
    }  # fmt: skip
    assert views.player(eng, "nobody")["last_pos"] is None
    assert views.has_world(eng, "overworld") and not views.has_world(eng, "nether")
    assert views.sites(eng, "overworld") is eng.worlds["overworld"] and views.sites(eng, "nether") is None
    assert views.board_names(eng, ["weekly", "nope"]) == ["weekly"]
    assert set(views.board_names(eng, ["nope"])) == set(eng.boards.boards)
    assert views.boards(eng) is eng.boards
    backlog, complete = views.events_after(eng, 0, "h1")
    assert complete and backlog and views.last_event(eng) == backlog[-1].id


def test_the_map_lists_each_treasure_with_its_finders_and_the_live_view_its_states() -> None:
    eng = engine()
    create(eng, treasures=3)
    h = eng.hunt("h1")
    pos = h.treasures[1].pos
    assert eng.dig("h1", "ann", pos, pos, "a1", T0 + 1, teleport=True).result["result"] == "found"
    rows = views.map_treasures(eng, h, shown=5)
    assert [(r["id"], r["n"], r["state"], r["finders"], r["finder_count"]) for r in rows] == [
        ("h1#1", 1, "hidden", [], 0), ("h1#2", 2, "claimed", ["ann"], 1), ("h1#3", 3, "hidden", [], 0),
    ]  # fmt: skip
    assert rows[1]["pos"] == list(pos) and rows[1]["tier"] == h.treasures[1].tier
    assert views.treasure_states(h) == "hch"
