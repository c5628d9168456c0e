"""`cairn hunt verify|preview|validate` and `cairn config check` against the data a server really uses:
several worlds, uploaded sites, a server still running, the Redis store; hunt files named in errors."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from tests.e2e.conftest import ADMIN, SMALL_WORLD, CairnServer, hunt_spec
from tests.e2e.redis_deploy import Deployment, create
from tests.e2e.test_cli import HUNT_TOML, cairn
from tests.e2e.test_world_upload import NDJSON, crystal_rows, put

TWO_WORLDS = SMALL_WORLD + "\n[worlds.arena]\nseed = 5\nsize = 512\ndensity = 1.0\n"
ID_PATTERN = "^[a-z0-9-]{1,48}(@[0-9]{8}T[0-9]{4})?$"


def spec_file(tmp_path: Path, spec: dict[str, object]) -> str:
    path = tmp_path / f"{spec['id']}.json"
    path.write_bytes(msgspec.json.encode(spec))
    return str(path)


def test_verify_and_preview_use_the_servers_worlds_while_it_runs(tmp_path: Path) -> None:
    srv = CairnServer(tmp_path / "data", TWO_WORLDS)
    srv.start()
    try:
        rows = crystal_rows()
        assert put(srv, b"\n".join(msgspec.json.encode(r) for r in rows), NDJSON, world="arena")[0] == 200
        # A world registered at runtime, upload-only: its sites live in the data dir alone.
        assert srv.request("PUT", "/v1/worlds/minecraft:the_end", key=ADMIN)[0] == 201
        end_rows = b"\n".join(msgspec.json.encode(r) for r in crystal_rows(30, y=90))
        assert put(srv, end_rows, NDJSON, world="minecraft:the_end")[0] == 200
        over = hunt_spec("over", treasures=4)
        arena = hunt_spec("arena-h", world="arena", treasures=5, spawn={"tags_any": ["crystal"], "min_spacing": 8})
        end = hunt_spec("end-h", world="minecraft:the_end", treasures=3, spawn={"tags_any": ["crystal"]})
        created = {s["id"]: srv.request("POST", "/v1/hunts", s, key=ADMIN)[1] for s in (over, arena, end)}
        assert all("treasures" in c for c in created.values()), created
        assert {tuple(t["pos"]) for t in created["arena-h"]["treasures"]} <= {(r["x"], r["y"], r["z"]) for r in rows}
        args = ("--config", str(srv.config), "--data-dir", str(srv.data_dir))
        # The server holds the journal meanwhile: verify reads it beside the server.
        for spec in (over, arena, end):
            out = cairn("hunt", "verify", spec_file(tmp_path, spec), *args)
            assert out.returncode == 0 and f"verified hunt {spec['id']}" in out.stderr, out.stderr
        preview = cairn("hunt", "preview", spec_file(tmp_path, arena), *args)
        assert preview.returncode == 0, preview.stderr
        for t in created["arena-h"]["treasures"]:  # the uploaded sites, as the server placed them
            assert str(t["pos"]) in preview.stdout
        assert "5 treasures placed; 40 eligible sites" in preview.stdout
        missing = cairn("hunt", "verify", spec_file(tmp_path, hunt_spec("nope")), *args)
        assert missing.returncode == 1 and "hunt 'nope' is not in" in missing.stderr
        empty = cairn("hunt", "verify", spec_file(tmp_path, over), "--config", str(srv.config),
                      "--data-dir", str(tmp_path / "elsewhere"))  # fmt: skip
        assert empty.returncode == 1 and "no journal in" in empty.stderr and "Traceback" not in empty.stderr
    finally:
        srv.kill()


def test_verify_and_preview_with_the_redis_store(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    d = Deployment("single", request.getfixturevalue("redis_single"), tmp_path)
    d.flush()
    node = d.node()
    try:
        spec = hunt_spec("red", treasures=4)
        created = create(node, spec)
        args = ("--config", str(node.config), "--data-dir", str(tmp_path / "another-dir"))
        out = cairn("hunt", "verify", spec_file(tmp_path, spec), *args)
        assert out.returncode == 0 and "verified hunt red" in out.stderr, out.stderr
        preview = cairn("hunt", "preview", spec_file(tmp_path, spec), *args)
        assert preview.returncode == 0, preview.stderr
        for t in created["treasures"]:  # the secret comes from Redis: the same placement
            assert str(t["pos"]) in preview.stdout
    finally:
        d.close()


def test_unknown_leaderboard_is_refused_by_hunt_validate(tmp_path: Path) -> None:
    spec = tmp_path / "typo.toml"
    spec.write_text(HUNT_TOML + 'leaderboards = ["weekly", "weekyl"]\n')
    out = cairn("hunt", "validate", str(spec))
    assert out.returncode == 2 and "(unknown_leaderboard)" in out.stderr, out.stderr
    assert "typo.toml" in out.stderr and "leaderboards[1]" in out.stderr and "'weekyl'" in out.stderr
    cfg = tmp_path / "cairn.toml"
    cfg.write_text('[[leaderboards]]\nid = "weekyl"\n[[leaderboards]]\nid = "weekly"\n')
    assert cairn("hunt", "validate", str(spec), "--config", str(cfg)).returncode == 0


def test_config_check_and_serve_name_the_bad_hunt_file_and_keep_the_regex(tmp_path: Path) -> None:
    hunts = tmp_path / "hunts"
    hunts.mkdir()
    (hunts / "good.toml").write_text(HUNT_TOML)
    cfg = tmp_path / "cairn.toml"
    cfg.write_text(f'hunts_dir = "{hunts}"\n')
    ok = cairn("config", "check", str(cfg))
    assert ok.returncode == 0 and "1 hunt file(s)" in ok.stderr, ok.stderr
    (hunts / "bad.toml").write_text(HUNT_TOML.replace('id = "friday-night"', 'id = "Friday Night"'))
    out = cairn("config", "check", str(cfg))
    assert out.returncode == 2 and str(hunts / "bad.toml") in out.stderr and "at id" in out.stderr, out.stderr
    assert ID_PATTERN in out.stderr  # printed as is, not read as terminal markup
    served = cairn("serve", "--config", str(cfg), "--port", "0", "--data-dir", str(tmp_path / "data"))
    assert served.returncode == 2 and str(hunts / "bad.toml") in served.stderr and ID_PATTERN in served.stderr
    assert "Traceback" not in served.stderr
    (hunts / "bad.toml").write_text(HUNT_TOML.replace('id = "friday-night"', 'id = "b"') + 'loot = "nope"\n')
    out = cairn("config", "check", str(cfg))
    assert out.returncode == 2 and "bad.toml" in out.stderr and "(unknown_loot_table)" in out.stderr, out.stderr
