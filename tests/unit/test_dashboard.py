"""The dashboard's helpers: latency quantiles from histogram buckets, the density grid, login tokens."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from types import SimpleNamespace
from typing import Any

import msgspec
import numpy as np
import pytest

from cairn.core import admin
from cairn.core.errors import Unauthorized
from cairn.core.sites import SiteSet
from cairn.net.auth import Keys
from cairn.net.dashboard import Dashboard, density_grid, load_assets, percentile
from cairn.net.metrics import BUCKETS
from cairn.net.request import Request
from tests.support import T0, create, engine


def test_percentile_interpolates_inside_the_bucket() -> None:
    counts = [0] * (len(BUCKETS) + 1)
    assert percentile(counts, 0.5) is None
    counts[2] = 100  # all between 1 ms and 2 ms
    assert percentile(counts, 0.5) == pytest.approx(0.0015)
    assert percentile(counts, 0.99) == pytest.approx(0.00199)
    counts[-1] = 1000  # most beyond the last bound: reported as the last bound
    assert percentile(counts, 0.99) == BUCKETS[-1]


def test_density_grid_counts_sites_in_the_area() -> None:
    xyz = np.array([[0, 64, 0], [1, 64, 1], [99, 64, 99], [500, 64, 500]])
    sites = SiteSet.from_arrays(xyz, np.ones(4, np.uint32), ["surface"])
    d = density_grid(sites, (0, 0, 0), (99, 320, 99))
    assert (d["nx"], d["nz"], d["sites"]) == (100, 100, 3)
    cells = np.frombuffer(base64.b64decode(d["cells"]), np.uint8).reshape(d["nz"], d["nx"])
    assert cells[0, 0] == cells[1, 1] == cells[99, 99] == 255 and np.count_nonzero(cells) == 3
    big = density_grid(sites, (-800, 0, -800), (799, 320, 799))  # 10 blocks a cell
    cells = np.frombuffer(base64.b64decode(big["cells"]), np.uint8).reshape(160, 160)
    assert big["peak"] == 2 and cells[80, 80] == 255 and 0 < cells[89, 89] < 255 and np.count_nonzero(cells) == 3
    empty = density_grid(sites, (1000, 0, 1000), (1399, 320, 1799))
    assert empty["sites"] == 0 and (empty["nx"], empty["nz"]) == (80, 160)


def test_assets_are_loaded_with_types() -> None:
    assets = load_assets()
    assert {"index.html", "app.js", "style.css"} <= set(assets)
    assert assets["app.js"].content_type.startswith("text/javascript")
    assert b"sessionStorage" in assets["app.js"].body


def test_one_time_login_token_works_once() -> None:
    keys = Keys(None, ["the-admin-key"], [])
    api: Any = SimpleNamespace(keys=keys, metrics=None)
    d = Dashboard(api)
    token = d.one_time_login()
    req = Request.build("POST", "/v1/dashboard/login", body=b'{"token": "%s"}' % token.encode())
    assert d.login(req) == b'{"key":"the-admin-key"}'
    with pytest.raises(Unauthorized):
        d.login(req)
    with pytest.raises(Unauthorized):
        d.login(Request.build("POST", "/v1/dashboard/login", body=b'{"token": "guess"}'))


def test_the_shared_hunts_list_shows_an_operator_action_at_once() -> None:
    eng = engine()
    create(eng)
    now = [T0 + 1]
    api: Any = SimpleNamespace(rt=SimpleNamespace(eng=eng), clock=lambda: now[0], auth=lambda req, scope: None)
    d = Dashboard(api)
    req = Request.build("GET", "/v1/dashboard/hunts")
    state = lambda: msgspec.json.decode(d.hunts(req))["hunts"][0]["state"]  # noqa: E731
    assert state() == "active"
    first = d.hunts(req)
    now[0] += 1
    assert d.hunts(req) is first  # reused: nothing an operator did
    eng.end_hunt("h1", now[0])
    assert state() == "ended"  # rebuilt at once, within HUNTS_EVERY
    ended = d.hunts(req)
    eng.apply(eng.decide_admin(admin.Request("player.bar", player="steve", label="admin", reason="x"), now[0]).records)
    assert d.hunts(req) is not ended  # every action may change a hunt: rebuilt



def test_a_hunts_live_view_shows_an_operator_action_or_a_change_of_state_at_once() -> None:
    """The live view is shared and kept for LIVE_EVERY seconds (longer when it was slow to build), but
    not past an operator's action or a change of the hunt's state: the page asks for it right after."""
    eng = engine()
    create(eng)
    now = [T0 + 1]
    api: Any = SimpleNamespace(rt=SimpleNamespace(eng=eng), clock=lambda: now[0], auth=lambda req, scope: None)
    d = Dashboard(api)
    req = Request.build("GET", "/v1/hunts/h1/live", params={"hunt": "h1"})
    state = lambda: msgspec.json.decode(d.hunt_live(req))["state"]  # noqa: E731
    assert state() == "active"
    first = d.hunt_live(req)
    assert d.hunt_live(req) is first  # reused: nothing changed
    now[0] += 0.1
    eng.end_hunt("h1", now[0])
    assert state() == "ended"  # rebuilt at once, within LIVE_EVERY
    ended = d.hunt_live(req)
    eng.apply(eng.decide_admin(admin.Request("player.bar", player="steve", label="admin", reason="x"), now[0]).records)
    assert d.hunt_live(req) is not ended  # an action may change what the view shows: rebuilt

class Page(HTMLParser):
    """The dashboard page's ids, and what its Content-Security-Policy would refuse to run or apply."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.refused: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if "id" in names:
            self.ids.add(str(names["id"]))
        self.refused += [f"<{tag} {n}>" for n in names if n.startswith("on") or n == "style"]
        if tag == "script" and not names.get("src"):
            self.refused.append("<script> without src")
        if (names.get("href") or names.get("action") or "").startswith("javascript:"):
            self.refused.append(f"<{tag}> javascript: URL")


def test_the_page_runs_under_its_csp_and_every_element_the_script_uses_exists() -> None:
    assets = load_assets()
    page = Page()
    page.feed(assets["index.html"].body.decode())
    assert page.refused == []
    script = assets["app.js"].body.decode()
    used = set(re.findall(r"""\$\("#([\w-]+)""", script))
    assert {"confirm", "confirm-reason", "confirm-ok", "audit", "claims", "keys", "hunt-end"} <= used
    assert used - page.ids == set()
    bad = Page()
    bad.feed('<p id="x" style="color:red"><button onclick="go()">')
    assert bad.refused == ["<p style>", "<button onclick>"]  # the scan can fail
