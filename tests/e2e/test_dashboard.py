"""The dashboard in a real Chromium against a real `cairn serve`, while simulated players dig over HTTP.

Screenshots go to test-artifacts/dashboard/.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN, GAME, CairnServer, hunt_spec

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip

if not os.path.exists(CHROMIUM) and os.environ.get("CI") != "true":
    pytest.skip("Chromium is not installed at /usr/bin/chromium", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 860})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    # Everything the page loads must come from the engine: no CDN, no other host.
    hosts: set[str] = set()
    pg.on("request", lambda r: hosts.add(re.sub(r"^(\w+://[^/]+).*$", r"\1", r.url)))
    yield pg
    ctx.close()
    assert not errors, errors
    assert len(hosts) <= 1, hosts


def sign_in(page: Page, srv: CairnServer, key: str = ADMIN) -> None:
    page.goto(srv.url + "/dashboard")
    page.fill("#key", key)
    page.click("#login-form button[type=submit]")


class Players(threading.Thread):
    """Simulated players: each walks a little and digs near where it stands, through the HTTP API.

    They never dig within 8 columns of a position in `avoid` (the hunt's treasures), so that only the
    test's own digs claim anything.
    """

    def __init__(self, srv: CairnServer, hunt: str, n: int, avoid: list[list[int]] | None = None) -> None:
        super().__init__(daemon=True)
        self.srv, self.hunt, self.n, self.avoid = srv, hunt, n, avoid or []
        self.stop = threading.Event()
        self.digs = self.errors = 0
        rnd = random.Random(7)
        self.pos = {f"sim{i}": [rnd.randrange(-300, 300), 64, rnd.randrange(-300, 300)] for i in range(n)}

    def run(self) -> None:
        rnd = random.Random(11)
        while not self.stop.is_set():
            ops: list[dict[str, Any]] = []
            for name, p in self.pos.items():
                p[0] += rnd.randint(-2, 2)
                p[2] += rnd.randint(-2, 2)
                at = [p[0] + rnd.randint(-3, 3), 63, p[2] + rnd.randint(-3, 3)]
                if any(abs(at[0] - x) <= 8 and abs(at[2] - z) <= 8 for x, _, z in self.avoid):
                    continue
                self.digs += 1
                ops.append({"op": "dig", "hunt": self.hunt, "player": name, "pos": list(p), "at": at,
                            "request_id": f"{name}-{self.digs}"})  # fmt: skip
            status, body, _ = self.srv.request("POST", "/v1/batch", {"ops": ops})
            assert status == 200, body
            self.errors += sum(1 for r in body["results"] if "error" in r)
            self.stop.wait(0.25)


def test_login_map_claim_and_leaderboard_live(cairn: CairnServer, page: Page) -> None:
    assert cairn.request("POST", "/v1/hunts", hunt_spec("h1"), key=ADMIN)[0] == 201
    _, hunt, _ = cairn.request("GET", "/v1/hunts/h1?reveal=1", key=ADMIN)
    target = hunt["treasures"][0]
    players = Players(cairn, "h1", 40, avoid=[t["pos"] for t in hunt["treasures"]])
    players.start()
    try:
        sign_in(page, cairn)
        expect(page.locator("#app")).to_be_visible()
        expect(page.locator('#hunts tbody tr[data-hunt="h1"]')).to_be_visible()
        page.click('#hunts tbody tr[data-hunt="h1"]')
        expect(page.locator("#treasure-list li")).to_have_count(10)
        expect(page.locator(f'#treasure-list li[data-treasure="{target["id"]}"]')).to_have_attribute(
            "data-state", "hidden"
        )
        # The map shows the simulated players and their digs (from the live view).
        expect(page.locator("#map")).to_have_attribute("data-players", "40", timeout=5000)
        expect(page.locator("#map")).not_to_have_attribute("data-digs", "0", timeout=5000)
        expect(page.locator("#conn")).to_have_text("live")
        expect(page.locator("#health-panel")).not_to_have_attribute("data-samples", "0", timeout=6000)
        # The key is kept in session storage only, and never appears in the URL.
        assert page.evaluate("sessionStorage.getItem('cairn.adminKey')") == ADMIN
        assert ADMIN not in page.url

        pos = target["pos"]
        t0 = time.monotonic()
        status, body, _ = cairn.request(
            "POST",
            "/v1/hunts/h1/dig",
            {"player": "alice", "pos": [pos[0], pos[1] + 1, pos[2]], "at": pos, "request_id": "alice-1"},
        )
        assert status == 200 and body["result"] == "found", body
        claimed = page.locator(f'#treasure-list li[data-treasure="{target["id"]}"]')
        expect(claimed).to_have_attribute("data-state", "claimed", timeout=2000)
        expect(page.locator("#map")).to_have_attribute("data-claimed", "1", timeout=100)
        expect(page.locator('#board tbody tr[data-player="alice"]')).to_be_visible(timeout=2000)
        elapsed = time.monotonic() - t0
        assert elapsed < 2.0, f"claim took {elapsed:.2f}s to show"
        assert "alice" in (claimed.text_content() or "")
        expect(page.locator("#feed")).to_contain_text("alice found #1")
        page.screenshot(path=str(ARTIFACTS / "dashboard-live.png"))
        assert players.digs > 0 and players.errors == 0
    finally:
        players.stop.set()
        players.join(5)


def test_bad_key_is_refused(cairn: CairnServer, page: Page) -> None:
    sign_in(page, cairn, "not-a-key")
    expect(page.locator("#login-error")).to_contain_text("Refused")
    expect(page.locator("#app")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('cairn.adminKey')") is None
    # A game key is a real key, but not enough for the dashboard.
    page.fill("#key", GAME)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("admin")
    expect(page.locator("#app")).to_be_hidden()
    page.screenshot(path=str(ARTIFACTS / "dashboard-refused.png"))
    # The admin routes behind it refuse too, whatever the page does.
    for path in ("/v1/hunts/x/map", "/v1/hunts/x/live", "/v1/admin/health", "/v1/dashboard/hunts"):
        assert cairn.request("GET", path, key="nope")[0] == 401
        assert cairn.request("GET", path, key=GAME)[0] == 403


def test_smooth_with_2500_players(cairn: CairnServer, page: Page) -> None:
    assert cairn.request("POST", "/v1/hunts", hunt_spec("big", treasures=40), key=ADMIN)[0] == 201
    rnd = random.Random(3)
    updates = [{"player": f"p{i}", "pos": [rnd.randrange(-400, 400), 64, rnd.randrange(-400, 400)]}
               for i in range(2500)]  # fmt: skip
    assert cairn.request("POST", "/v1/positions", {"world": "overworld", "updates": updates})[0] == 200
    sign_in(page, cairn)
    page.click('#hunts tbody tr[data-hunt="big"]')
    expect(page.locator("#map")).to_have_attribute("data-players", "2500", timeout=5000)
    times = []
    for i in range(12):  # pan and zoom: each input is one coalesced frame
        page.click("#zoom-in" if i % 2 == 0 else "#zoom-out")
        page.wait_for_function("(n) => Number(document.querySelector('#map').dataset.frames) > n",
                               arg=int(page.get_attribute("#map", "data-frames") or 0))  # fmt: skip
        times.append(float(page.get_attribute("#map", "data-draw-ms") or "inf"))
    times.sort()
    assert times[len(times) // 2] < 16.0, times  # a frame at 60 fps
    page.screenshot(path=str(ARTIFACTS / "dashboard-2500.png"))


def test_static_files_and_caching(cairn: CairnServer) -> None:
    import urllib.request

    with urllib.request.urlopen(cairn.url + "/dashboard/app.js") as r:
        assert r.headers["Content-Type"].startswith("text/javascript")
        etag = r.headers["ETag"]
        assert r.headers["Cache-Control"] == "no-cache"
    req = urllib.request.Request(cairn.url + "/dashboard/app.js", headers={"If-None-Match": etag})
    try:
        urllib.request.urlopen(req)
        raise AssertionError("expected 304")
    except urllib.error.HTTPError as e:
        assert e.code == 304
    status, body, _ = cairn.request("GET", "/dashboard/..%2Fapi.py", key=None)
    assert status == 404 and body["error"]["code"] == "not_found"


def test_demo_prints_a_one_time_login_link(tmp_path: Path, browser: Browser) -> None:
    cmd = [sys.executable, "-m", "cairn", "demo", "--plain", "--seconds", "30", "--players", "5",
           "--port", "0", "--data-dir", str(tmp_path / "d")]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        link = key = None
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and link is None:
            line = proc.stdout.readline()
            if not line:
                break
            if "admin key:" in line:
                key = line.split()[-1]
            m = re.search(r"(http://\S+/dashboard#login=\S+)", line)
            if m:
                link = m.group(1)
        assert link and key, "demo printed no dashboard login link"
        ctx = browser.new_context()
        pg = ctx.new_page()
        pg.goto(link)
        expect(pg.locator("#app")).to_be_visible()
        assert "#login" not in pg.url
        assert pg.evaluate("sessionStorage.getItem('cairn.adminKey')") == key
        pg2 = ctx.new_page()  # the link works once
        pg2.goto(link)
        expect(pg2.locator("#login-error")).to_contain_text("already used")
        ctx.close()
    finally:
        proc.terminate()
        proc.wait(20)
        shutil.rmtree(tmp_path / "d", ignore_errors=True)


# ---- operator actions ---------------------------------------------------------------------------------
# One server for the module's action tests. A test that needs a route this build does not serve yet is
# skipped, naming the route, and fails under CI=true, where every dashboard test must run.


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CairnServer]:
    srv = CairnServer(tmp_path_factory.mktemp("ops") / "data")
    srv.start()
    yield srv
    srv.kill()


def served(srv: CairnServer, method: str, path: str) -> bool:
    """Whether the engine has a route `method path`: asked of a target that does not exist, with no
    reason, so that no action can happen; only a route that is not there answers "no such path" (or 405)."""
    probe = re.sub(r"\{[^}]*\}", "no-such-target", path)
    status, body, _ = srv.request(method, probe, {} if method == "POST" else None, key=ADMIN)
    missing = status == 404 and isinstance(body, dict) and body["error"]["message"] == "no such path"
    return not missing and status != 405


def needs(srv: CairnServer, *routes: str) -> None:
    """Skip the test unless the engine serves every route ("METHOD /path"); under CI=true, fail instead."""
    missing = [r for r in routes if not served(srv, *r.split(" ", 1))]
    if missing:
        lacking(f"the engine does not serve {', '.join(missing)} yet")


def lacking(text: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{text}: every dashboard test must run under CI")
    pytest.skip(text)


def open_hunt(page: Page, srv: CairnServer, hunt: str) -> None:
    sign_in(page, srv)
    page.click(f'#hunts tbody tr[data-hunt="{hunt}"]')
    expect(page.locator("#map")).to_have_attribute("data-hunt", hunt)


def confirm(page: Page, reason: str) -> None:
    """The dialog is open: Confirm stays disabled until a reason (not just blanks) is typed; then confirm."""
    dialog, ok = page.locator("#confirm"), page.locator("#confirm-ok")
    expect(dialog).to_be_visible()
    expect(ok).to_be_disabled()
    page.fill("#confirm-reason", "   ")
    expect(ok).to_be_disabled()
    page.fill("#confirm-reason", reason)
    expect(ok).to_be_enabled()
    ok.click()


def audit_row(page: Page, reason: str) -> Any:
    return page.locator("#audit tbody tr", has_text=reason)


def test_end_a_hunt_from_the_dialog(ops: CairnServer, page: Page) -> None:
    assert ops.request("POST", "/v1/hunts", hunt_spec("end1"), key=ADMIN)[0] == 201
    open_hunt(page, ops, "end1")
    page.click("#hunt-end")
    expect(page.locator("#confirm-title")).to_contain_text("End the hunt")
    page.click("#confirm-cancel")  # cancel sends nothing
    expect(page.locator("#confirm")).to_be_hidden()
    assert ops.request("GET", "/v1/hunts/end1")[1]["state"] == "active"

    page.click("#hunt-end")
    with page.expect_request(lambda r: r.url.endswith("/v1/hunts/end1/end")) as sent:
        confirm(page, "server restart at 18:00")
    req = sent.value
    assert req.method == "POST" and req.post_data_json == {"reason": "server restart at 18:00"}
    assert req.headers["authorization"] == f"Bearer {ADMIN}" and "cookie" not in req.headers
    expect(page.locator("#confirm")).to_be_hidden()
    expect(page.locator("#notice")).to_contain_text("ended")
    # Refreshed at once, not at the next poll: the row, the map's state and the buttons.
    row = page.locator('#hunts tbody tr[data-hunt="end1"]')
    expect(row).to_have_attribute("data-state", "ended", timeout=1500)
    expect(page.locator("#map-stats")).to_contain_text("ended")
    expect(page.locator("#hunt-end")).to_be_disabled()
    assert ops.request("GET", "/v1/hunts/end1")[1]["state"] == "ended"
    page.screenshot(path=str(ARTIFACTS / "dashboard-ended.png"))

    entries = ops.request("GET", "/v1/audit?hunt=end1", key=ADMIN)[1]["entries"]
    if not entries:
        lacking("the engine does not audit POST /v1/hunts/{hunt}/end (with its reason) yet")
    expect(audit_row(page, "server restart at 18:00")).to_contain_text("end1")
    expect(audit_row(page, "server restart at 18:00")).to_contain_text(entries[0]["by"])


def test_bar_and_unbar_a_player_from_the_dialog(ops: CairnServer, page: Page) -> None:
    sign_in(page, ops)
    expect(page.locator("#player-bar")).to_be_disabled()
    page.fill("#player-name", "griefer")
    page.click("#player-bar")
    expect(page.locator("#confirm-title")).to_have_text("Bar griefer")
    confirm(page, "x-ray mod, ticket 812")
    row = audit_row(page, "x-ray mod, ticket 812")
    expect(row).to_be_visible(timeout=1500)
    expect(row).to_have_attribute("data-action", "player.bar")
    expect(row).to_contain_text("griefer")
    [entry] = ops.request("GET", "/v1/audit?player=griefer", key=ADMIN)[1]["entries"]
    expect(row.locator("td").nth(2)).to_have_text(entry["by"])  # the label of the key that acted
    assert ops.request("GET", "/v1/players/griefer", key=ADMIN)[1]["barred"]["reason"] == "x-ray mod, ticket 812"

    # Barring again is refused (409): the engine's message shows in the dialog, which stays open.
    page.click("#player-bar")
    confirm(page, "twice")
    expect(page.locator("#confirm-error")).to_have_text("player 'griefer' is barred already (409 conflict)")
    expect(page.locator("#confirm")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "dashboard-conflict.png"))
    page.click("#confirm-cancel")
    assert audit_row(page, "twice").count() == 0

    page.click("#player-unbar")
    with page.expect_request(lambda r: "/v1/players/griefer/bar" in r.url) as sent:
        confirm(page, "appeal granted")
    assert sent.value.method == "DELETE" and sent.value.url.endswith("?reason=appeal%20granted")
    expect(audit_row(page, "appeal granted")).to_have_attribute("data-action", "player.unbar", timeout=1500)
    assert ops.request("GET", "/v1/players/griefer", key=ADMIN)[1].get("barred") is None


def test_a_refused_key_or_a_missing_route_shows_the_error(ops: CairnServer, page: Page) -> None:
    sign_in(page, ops)
    swap = {"key": GAME}

    def as_other_key(route: Any) -> None:  # the action goes out with another key; the engine answers
        route.continue_(headers={**route.request.headers, "authorization": f"Bearer {swap['key']}"})

    page.route("**/v1/players/*/bar", as_other_key)
    page.fill("#player-name", "steve")
    page.click("#player-bar")
    confirm(page, "with a game key")
    expect(page.locator("#confirm-error")).to_have_text("this route needs an admin key (403 forbidden)")
    swap["key"] = "not-a-key"
    page.click("#confirm-ok")
    expect(page.locator("#confirm-error")).to_contain_text("(401 unauthorized)")
    expect(page.locator("#app")).to_be_visible()  # still signed in: the reads' key is still good
    page.click("#confirm-cancel")
    page.unroute("**/v1/players/*/bar")
    assert ops.request("GET", "/v1/players/steve", key=ADMIN)[1].get("barred") is None

    # A route the engine does not serve answers 404 "no such path": said plainly, nothing breaks.
    page.route("**/v1/players/*/bar", lambda r: r.continue_(url=ops.url + "/v1/players/steve/no-such-action"))
    page.click("#player-bar")
    confirm(page, "missing route")
    expect(page.locator("#confirm-error")).to_have_text(
        "This engine does not offer POST /v1/players/{player}/bar (404 no such path)."
    )
    page.click("#confirm-cancel")


def test_extend_a_hunt_from_the_dialog(ops: CairnServer, page: Page) -> None:
    needs(ops, "POST /v1/hunts/{hunt}/extend")
    assert ops.request("POST", "/v1/hunts", hunt_spec("ext1"), key=ADMIN)[0] == 201
    before = ops.request("GET", "/v1/hunts/ext1")[1]["ends_at"]
    open_hunt(page, ops, "ext1")
    page.click("#hunt-extend")
    expect(page.locator("#confirm-by")).to_have_value("30m")
    with page.expect_request(lambda r: r.url.endswith("/v1/hunts/ext1/extend")) as sent:
        confirm(page, "the raid ran late")
    assert sent.value.post_data_json == {"reason": "the raid ran late", "by": "30m"}
    expect(page.locator("#confirm")).to_be_hidden()
    expect(audit_row(page, "the raid ran late")).to_contain_text("ext1", timeout=1500)
    after = ops.request("GET", "/v1/hunts/ext1")[1]["ends_at"]
    assert after > before


def test_void_a_claim_from_the_dialog(ops: CairnServer, page: Page) -> None:
    needs(ops, "GET /v1/hunts/{hunt}/export", "POST /v1/claims/{claim_id}/void")
    assert ops.request("POST", "/v1/hunts", hunt_spec("void1"), key=ADMIN)[0] == 201
    target = ops.request("GET", "/v1/hunts/void1?reveal=1", key=ADMIN)[1]["treasures"][0]
    pos = target["pos"]
    dug = {"player": "cheater", "pos": [pos[0], pos[1] + 1, pos[2]], "at": pos, "request_id": "cheater-1"}
    status, body, _ = ops.request("POST", "/v1/hunts/void1/dig", dug)
    assert status == 200 and body["result"] == "found", body
    open_hunt(page, ops, "void1")
    row = page.locator("#claims tbody tr", has_text="cheater")
    expect(row).to_be_visible(timeout=3000)
    claim = row.get_attribute("data-claim")
    row.locator("button").click()
    page.check("#confirm-rehide")
    with page.expect_request(lambda r: r.url.endswith(f"/v1/claims/{claim}/void")) as sent:
        confirm(page, "duplicated item exploit")
    assert sent.value.post_data_json == {"reason": "duplicated item exploit", "rehide": True}
    expect(page.locator("#confirm")).to_be_hidden()
    expect(audit_row(page, "duplicated item exploit")).to_be_visible(timeout=1500)
    # Hidden again, to be found anew.
    expect(page.locator(f'#treasure-list li[data-treasure="{target["id"]}"]')).to_have_attribute(
        "data-state", "hidden", timeout=2000
    )


def test_revoke_a_key_from_the_dialog(ops: CairnServer, page: Page) -> None:
    needs(ops, "GET /v1/keys", "POST /v1/keys", "DELETE /v1/keys/{id}")
    made = {"scope": "game", "label": "plugin-eu", "reason": "EU plugin"}
    status, key, _ = ops.request("POST", "/v1/keys", made, key=ADMIN)
    assert status == 201, key
    assert ops.request("GET", "/v1/hunts", key=key["secret"])[0] == 200
    sign_in(page, ops)
    row = page.locator(f'#keys tbody tr[data-key="{key["id"]}"]')
    expect(row).to_contain_text("plugin-eu")
    row.locator("button").click()
    expect(page.locator("#confirm-title")).to_have_text("Revoke the key plugin-eu")
    confirm(page, "leaked in a plugin's logs")
    expect(page.locator("#confirm")).to_be_hidden()
    expect(row).to_contain_text("revoked", timeout=1500)
    expect(audit_row(page, "leaked in a plugin's logs")).to_be_visible(timeout=1500)
    assert ops.request("GET", "/v1/hunts", key=key["secret"])[0] == 401
