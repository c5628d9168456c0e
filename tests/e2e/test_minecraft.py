"""Cairn inside a real game: a real `cairn serve`, the flying-squid server with the Cairn plugin, and
mineflayer bots that play over the real Minecraft protocol (integrations/minecraft/)."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN, GAME, CairnServer
from tests.e2e.minecraft import ROOT, Bots, MinecraftServer, node_ready

WORLD = "overworld"  # a Cairn with no config has it; the plugin replaces its sites
RADIUS = 48  # blocks of the world generated (and uploaded) around spawn

why = node_ready()
if why and os.environ.get("CI") == "true":
    raise RuntimeError(f"CI=true: the Minecraft tests must not skip: {why}")
pytestmark = pytest.mark.skipif(why is not None, reason=why or "")


@pytest.fixture(scope="module")
def cairn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CairnServer]:
    srv = CairnServer(tmp_path_factory.mktemp("mc-cairn") / "data", config="")  # built-in defaults
    srv.start()
    yield srv
    if srv.proc is not None:
        srv.kill()


@pytest.fixture(scope="module")
def game(cairn: CairnServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinecraftServer]:
    d = tmp_path_factory.mktemp("mc-game")
    mc = MinecraftServer(cairn.url, d / "server.log", world=WORLD, radius=RADIUS,
                         extra=("--ops", "--gamemode", "creative", "--state-dir", str(d / "state")),
                         env={"CAIRN_ADMIN_KEY": ADMIN, "CAIRN_GAME_KEY": GAME})  # fmt: skip
    mc.start()
    yield mc
    assert mc.stop() == 0


@pytest.fixture(scope="module")
def bots(game: MinecraftServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bots]:
    b = Bots(game.port, tmp_path_factory.mktemp("mc-bots") / "bots.log")
    yield b
    b.close()


@pytest.fixture(autouse=True)
def no_bots_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every bot a test joined leaves after it, passed or failed."""
    yield
    if "bots" in request.fixturenames:
        request.getfixturevalue("bots").do("quit_all")


@pytest.fixture
def hunts(cairn: CairnServer) -> Iterator[list[str]]:
    """Hunts a test creates; ended afterwards, so no treasure is left for the next test to stumble on."""
    made: list[str] = []
    yield made
    if cairn.proc is not None:
        for h in made:
            cairn.request("POST", f"/v1/hunts/{h}/end", {}, key=ADMIN)


def make_hunt(
    cairn: CairnServer, hunts: list[str], hunt_id: str, treasures: int, half: int = 40, **kw: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "id": hunt_id, "name": hunt_id.title(), "world": WORLD, "treasures": treasures, "duration": "1h",
        "area": {"min": [-half, -64, -half], "max": [half, 320, half]},
        "spawn": {"tags_any": ["surface"], "min_spacing": 4},
        "hints": {"cooldown": "0s"},
        **kw,
    }  # fmt: skip
    status, body, _ = cairn.request("POST", "/v1/hunts", spec, key=ADMIN)
    assert status == 201, body
    hunts.append(hunt_id)
    return body


def treasures(cairn: CairnServer, hunt_id: str) -> list[dict[str, Any]]:
    status, body, _ = cairn.request("GET", f"/v1/hunts/{hunt_id}?reveal=true", key=ADMIN)
    assert status == 200, body
    return list(body["treasures"])


def loot(treasure: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for it in treasure["loot"]:
        name = it["item"].removeprefix("minecraft:")
        out[name] = out.get(name, 0) + it["count"]
    return out


def player(cairn: CairnServer, name: str) -> dict[str, Any]:
    status, body, _ = cairn.request("GET", f"/v1/players/{name}", key=ADMIN)
    assert status == 200, body
    return dict(body)


def until(pred: Any, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)


def join(bots: Bots, name: str) -> None:
    assert bots.do("join", name=name, gamemode="creative")["gamemode"] == "creative"


def on_a_treasure(cairn: CairnServer, bots: Bots, hunts: list[str], hunt_id: str, name: str) -> dict[str, Any]:
    """A hunt of one treasure, and player `name` joined and standing on it, its position known to Cairn
    and the treasure's chunk loaded in its client (a dig that follows needs nothing more from the game
    server, even with Cairn stopped: the bots' recovery from a chunk flying-squid lost teleports)."""
    make_hunt(cairn, hunts, hunt_id, 1)
    (t,) = treasures(cairn, hunt_id)
    x, y, z = t["pos"]
    join(bots, name)
    bots.do("tp", name=name, x=x + 0.5, y=y, z=z + 0.5)
    bots.do("ground", name=name, x=x, z=z)
    time.sleep(0.6)  # its position reaches Cairn (4 Hz)
    return t


def test_launcher_registers_its_world_in_a_cairn_without_config(cairn: CairnServer, tmp_path: Path) -> None:
    """The module's Cairn runs on built-in defaults; `elsewhere` exists only once the launcher registers it."""
    status, body, _ = cairn.request("GET", "/v1/worlds", key=ADMIN)
    assert status == 200 and "elsewhere" not in {w["world"] for w in body["worlds"]}
    mc = MinecraftServer(cairn.url, tmp_path / "server.log", world="elsewhere", radius=16,
                         env={"CAIRN_ADMIN_KEY": ADMIN, "CAIRN_GAME_KEY": GAME})  # fmt: skip
    mc.start()
    try:
        _, body, _ = cairn.request("GET", "/v1/worlds", key=ADMIN)
        (w,) = [w for w in body["worlds"] if w["world"] == "elsewhere"]
        assert w["runtime"] is True and w["source"] == "upload" and w["sites"] > 1000, w
    finally:
        assert mc.stop() == 0
    status, _, _ = cairn.request("DELETE", "/v1/worlds/elsewhere", key=ADMIN)
    assert status == 200


def test_fifty_treasures_lie_on_valid_cells_of_the_game_world(cairn: CairnServer, bots: Bots, hunts: list[str]) -> None:
    make_hunt(cairn, hunts, "fifty", 50, half=RADIUS, spawn={"min_spacing": 2})
    placed = treasures(cairn, "fifty")
    assert len(placed) == 50
    join(bots, "auditor")
    m = bots.mark()
    bots.do("chat", name="auditor", text="/cairn verify fifty")
    bots.wait_text("auditor", r"^verify fifty: \d+ of 50", since=m)
    lines = [s for s in bots.seen("auditor", m) if re.match(r"^verify fifty#\d+ ", s)]
    assert len(lines) == 50
    solid_never = {"air", "cave_air", "void_air", "water", "lava", "bedrock"}
    for line in lines:
        cell = re.search(r"cell=(\S+)", line)
        floor = re.search(r"floor=(\S+)", line)
        assert cell and floor, line
        assert cell[1] in {"air", "cave_air", "water"}, line
        assert floor[1] not in solid_never and not floor[1].endswith("_leaves"), line
        assert " ok " in line, line
    # The bot's own view of the world (the blocks the game server sent it) agrees, at those near it.
    bx, _, bz = bots.do("pos", name="auditor")["pos"]
    near = [tr["pos"] for tr in placed if abs(tr["pos"][0] - bx) <= 32 and abs(tr["pos"][2] - bz) <= 32][:8]
    for x, y, z in near:
        got = bots.do("blocks", name="auditor", positions=[[x, y, z], [x, y - 1, z]])
        assert got["blocks"][0] in {"air", "water"} and got["solid"][1], ([x, y, z], got)
    bots.do("quit", name="auditor")


def test_bot_finds_a_treasure_from_the_hints_it_is_shown(cairn: CairnServer, bots: Bots, hunts: list[str]) -> None:
    """The bot has no key: it reads /hint in chat and the action bar, searches the box by digging."""
    make_hunt(cairn, hunts, "hints", 1, hints={"cooldown": "0s", "solve_by": "1s"})
    (t,) = treasures(cairn, "hints")
    time.sleep(1.2)  # past solve_by: the hint's box is at most 16×16 columns
    join(bots, "seeker")
    m = bots.mark()
    bots.do("chat", name="seeker", text="/hint")
    area = bots.wait_text("seeker", r"Search area: x (-?\d+) to (-?\d+), z (-?\d+) to (-?\d+)", since=m)
    bots.wait_text("seeker", r"^(BURNING|HOT|WARM|COOL|COLD) \(", since=m, kind="actionbar")
    x0, x1, z0, z1 = map(int, re.findall(r"-?\d+", area.split(":", 1)[1]))
    assert x1 - x0 < 16 and z1 - z0 < 16
    # Hot and cold, as a player plays it: each dig's action bar says how far its column is from the
    # treasure (burning: at most 8 columns, hot: at most 32), which rules candidate columns out. A dig
    # at a column's ground finds a treasure that lies on that column.
    cands = {(x, z) for x in range(x0, x1 + 1) for z in range(z0, z1 + 1)}
    corners = [(x0, z0), (x1, z1), (x0, z1), (x1, z0)]
    found = None
    while cands and found is None:
        probe = corners.pop() if corners else None
        if probe is None or probe not in cands:
            cx = sum(c[0] for c in cands) / len(cands)
            cz = sum(c[1] for c in cands) / len(cands)
            probe = min(cands, key=lambda c: ((c[0] - cx) ** 2 + (c[1] - cz) ** 2, c))
        cands.discard(probe)
        mark = bots.mark()
        bots.do("tp_dig", name="seeker", x=probe[0], z=probe[1])
        try:
            text = bots.wait_text("seeker", r"You found a treasure!|^Dig: ", since=mark, timeout=5)
        except TimeoutError:
            continue  # no answer: a column outside the hunt's area, which is no dig of the hunt
        if "You found" in text:
            found = text
            break
        d2 = {c: (c[0] - probe[0]) ** 2 + (c[1] - probe[1]) ** 2 for c in cands}
        if text.startswith("Dig: BURNING"):
            cands = {c for c in cands if d2[c] <= 64}
        elif text.startswith("Dig: HOT"):
            cands = {c for c in cands if 64 < d2[c] <= 1024}
    assert found is not None and "You found a treasure!" in found
    bots.wait_text("seeker", r"Reward delivered", since=m)
    inv = bots.do("inventory", name="seeker")["items"]
    for item, count in loot(t).items():
        assert inv.get(item, 0) >= count, (inv, t["loot"])
    # Nothing the player was shown holds the treasure's position.
    tx, ty, tz = t["pos"]
    for text in bots.seen("seeker"):
        nums = {int(n) for n in re.findall(r"-?\d+", text)}
        assert not {tx, ty, tz} <= nums, text
    bots.do("quit", name="seeker")


@pytest.mark.parametrize("blocks", ["same", "adjacent"])
def test_two_bots_break_the_treasure_block_in_the_same_tick(
    cairn: CairnServer, bots: Bots, hunts: list[str], blocks: str
) -> None:
    """`same`: both break the block under the treasure; the game lets one break it. `adjacent`: each
    breaks a block touching the treasure, so both digs reach Cairn together and Cairn picks one."""
    hunt = f"race-{blocks}"
    make_hunt(cairn, hunts, hunt, 1)
    (t,) = treasures(cairn, hunt)
    x, y, z = t["pos"]
    for name in ("red", "blue"):
        join(bots, name)
        bots.do("tp", name=name, x=x + 0.5, y=y, z=z + 0.5)
    floor = [x, y - 1, z]
    other = floor
    if blocks == "adjacent":
        around = [[x + dx, y - 1, z + dz] for dx in (-1, 0, 1) for dz in (-1, 0, 1) if dx or dz]
        around += [[x + dx, y, z + dz] for dx in (-1, 0, 1) for dz in (-1, 0, 1) if dx or dz]
        solid = bots.do("blocks", name="blue", positions=around)["solid"]
        other = next(p for p, ok in zip(around, solid, strict=True) if ok)
    time.sleep(0.6)  # the positions of both reach Cairn (4 Hz)
    m = bots.mark()
    bots.do("dig_together", digs=[{"name": "red", "pos": floor}, {"name": "blue", "pos": other}])
    hunt_id = hunt
    until(lambda: treasures(cairn, hunt_id)[0]["finders"], what="a finder")
    time.sleep(1.5)  # a second, wrong delivery would have arrived by now
    (after,) = treasures(cairn, hunt_id)
    assert len(after["finders"]) == 1
    winner = after["finders"][0]
    loser = "blue" if winner == "red" else "red"
    bots.wait_text(winner, r"Reward delivered", since=m)
    inv_w = bots.do("inventory", name=winner)["items"]
    inv_l = bots.do("inventory", name=loser)["items"]
    assert inv_w == loot(t)
    assert inv_l == {}
    assert player(cairn, winner)["pending_grants"] == 0
    if blocks == "adjacent":
        bots.wait_text(loser, rf"Too late: {winner} found this treasure first", since=m)
    for name in ("red", "blue"):
        bots.do("quit", name=name)


def test_a_dig_refused_for_a_stale_position_is_sent_again(cairn: CairnServer, bots: Bots, hunts: list[str]) -> None:
    """Cairn last heard of the player far away (a move it never saw), so the plugin's next position is
    refused as implausible, and so is the dig behind it in the same batch. The game has broken the block:
    the plugin sends the dig once more, behind the position resent as a teleport, and the player gets
    the treasure instead of leaving it under air."""
    t = on_a_treasure(cairn, bots, hunts, "stale", "stale")
    x, y, z = t["pos"]
    m = bots.mark()
    assert bots.do("dig", name="stale", pos=[x, y - 1, z])["dug"]
    far = {"world": WORLD, "updates": [{"player": "stale", "pos": [x + 3000, y, z], "teleport": True}]}
    status, body, _ = cairn.request("POST", "/v1/positions", far, key=GAME)  # before the plugin's next batch
    assert status == 200, body
    until(lambda: treasures(cairn, "stale")[0]["finders"] == ["stale"], what="the dig sent again")
    bots.wait_text("stale", r"Reward delivered", since=m)
    assert bots.do("inventory", name="stale")["items"] == loot(t)
    bots.do("quit", name="stale")


def test_cairn_killed_while_a_dig_is_in_flight(cairn: CairnServer, bots: Bots, hunts: list[str]) -> None:
    t = on_a_treasure(cairn, bots, hunts, "crash", "crash")
    x, y, z = t["pos"]
    assert cairn.proc is not None
    cairn.proc.send_signal(signal.SIGSTOP)  # the dig's request is sent and waits for an answer...
    try:
        m = bots.mark()
        bots.do("dig", name="crash", pos=[x, y - 1, z])
        time.sleep(0.5)
    finally:
        cairn.kill()  # ...and Cairn dies with it: kill -9
    bots.wait_text("crash", r"not answering\. Your dig is saved", since=m)
    cairn.start()
    bots.wait_text("crash", r"You found a treasure!", since=m, timeout=30)
    bots.wait_text("crash", r"Reward delivered", since=m)
    time.sleep(1.5)
    assert bots.do("inventory", name="crash")["items"] == loot(t)
    (after,) = treasures(cairn, "crash")
    assert after["finders"] == ["crash"]
    assert player(cairn, "crash")["pending_grants"] == 0
    delivered = [s for s in bots.seen("crash", m) if s.startswith("Reward delivered")]
    assert len(delivered) == 1
    bots.do("quit", name="crash")


def test_grant_waits_for_a_player_who_logged_out_and_arrives_once(
    cairn: CairnServer, bots: Bots, hunts: list[str]
) -> None:
    t = on_a_treasure(cairn, bots, hunts, "away", "leaver")
    x, y, z = t["pos"]
    assert cairn.proc is not None
    cairn.proc.send_signal(signal.SIGSTOP)  # hold the dig's reply until the player has gone
    try:
        bots.do("dig", name="leaver", pos=[x, y - 1, z])
        time.sleep(0.3)
        bots.do("quit", name="leaver")
        time.sleep(0.5)
    finally:
        cairn.proc.send_signal(signal.SIGCONT)
    until(lambda: treasures(cairn, "away")[0]["finders"] == ["leaver"], what="the claim")
    time.sleep(1.0)
    assert player(cairn, "leaver")["pending_grants"] == 1  # nobody to give it to: it waits in Cairn
    m = bots.mark()
    join(bots, "leaver")
    bots.wait_text("leaver", r"Reward delivered", since=m)
    until(lambda: player(cairn, "leaver")["pending_grants"] == 0, what="the ack")
    time.sleep(1.5)
    assert bots.do("inventory", name="leaver")["items"] == loot(t)
    assert len([s for s in bots.seen("leaver", m) if s.startswith("Reward delivered")]) == 1
    bots.do("quit", name="leaver")


def test_teleport_is_not_flagged_but_a_hundred_block_step_is(cairn: CairnServer, bots: Bots) -> None:
    join(bots, "runner")
    time.sleep(0.6)
    pos = bots.do("pos", name="runner")["pos"]
    bots.do("tp", name="runner", x=round(pos[0]) + 60, y=80, z=round(pos[2]))
    time.sleep(1.0)
    p = player(cairn, "runner")
    assert p["flags"] == 0 and p["last_pos"][0] == round(pos[0]) + 60, p
    bots.do("jump", name="runner", dx=100)
    until(lambda: player(cairn, "runner")["flags"] >= 1, what="the anticheat flag")
    time.sleep(1.0)
    assert player(cairn, "runner")["flags"] == 1  # the plugin resynchronises after one flag
    bots.do("quit", name="runner")


def test_dashboard_screenshot_during_play(cairn: CairnServer, bots: Bots, hunts: list[str]) -> None:
    """Bots play a hunt in the game while the dashboard shows it; the screenshot is the README's."""
    chromium = "/usr/bin/chromium"
    if not os.path.exists(chromium):
        if os.environ.get("CI") == "true":
            raise RuntimeError("CI=true: Chromium must be installed for the dashboard screenshot")
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import expect, sync_playwright

    make_hunt(cairn, hunts, "showcase", 12, half=RADIUS, spawn={"min_spacing": 12})
    placed = treasures(cairn, "showcase")
    names = ["Steve", "Alex", "Noor", "Kenji"]
    for name in names:
        join(bots, name)
    # Three search and dig at spots of their own while the dashboard watches; one digs out a treasure.
    stop = threading.Event()

    def search(i: int, name: str) -> None:
        k = 0
        while not stop.is_set():
            bots.do("tp_dig", name=name, x=-30 + 25 * i + 3 * (k % 5), z=-20 + 15 * i + 2 * (k // 5 % 4))
            k += 1
            stop.wait(0.4)

    searchers = [threading.Thread(target=search, args=(i, n), daemon=True) for i, n in enumerate(names[1:])]
    for th in searchers:
        th.start()
    x, y, z = placed[0]["pos"]
    bots.do("tp", name="Steve", x=x + 0.5, y=y, z=z + 0.5)
    time.sleep(0.6)
    bots.do("dig", name="Steve", pos=[x, y - 1, z])
    until(lambda: treasures(cairn, "showcase")[0]["finders"] == ["Steve"], what="Steve's find")
    out = ROOT / "test-artifacts" / "minecraft"
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 860})
        page.goto(cairn.url + "/dashboard")
        page.fill("#key", ADMIN)
        page.click("#login-form button[type=submit]")
        page.click('#hunts tbody tr[data-hunt="showcase"]')
        expect(page.locator("#map")).to_have_attribute("data-players", "4", timeout=10000)
        # Steve's find, and maybe a searcher's
        expect(page.locator("#map")).not_to_have_attribute("data-claimed", "0", timeout=10000)
        expect(page.locator('#board tbody tr[data-player="Steve"]')).to_be_visible(timeout=5000)
        expect(page.locator("#map")).not_to_have_attribute("data-digs", "0", timeout=10000)
        expect(page.locator("#health-panel")).not_to_have_attribute("data-samples", "0", timeout=10000)
        time.sleep(4)  # a few health samples make the charts
        page.screenshot(path=str(out / "dashboard-minecraft.png"))
        browser.close()
    stop.set()
    for th in searchers:
        th.join(10)
    for name in names:
        bots.do("quit", name=name)
