"""The `cairn` command line: config validation, hunt validate/preview/verify, keys."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import ADMIN, CairnServer, hunt_spec

HUNT_TOML = """
id = "friday-night"
name = "Friday Night Hunt"
world = "overworld"
area = { min = [-300, -64, -300], max = [300, 320, 300] }
treasures = 8
seed = "s1"
duration = "2h"
spawn = { tags_any = ["surface"], min_spacing = 24, exclude = [{ center = [0, 64, 0], radius = 50 }] }
"""


def cairn(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cairn", *args], capture_output=True, text=True, timeout=120, cwd=cwd,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_config_check_accepts_good_and_names_file_key_and_reason_for_bad(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[server]\nport = 7500\n[store]\ndurability = "os"\n')
    ok = cairn("config", "check", str(good))
    assert ok.returncode == 0 and "ok" in ok.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nport = "high"\n')
    out = cairn("config", "check", str(bad))
    assert out.returncode == 2 and "bad.toml" in out.stderr and "server.port" in out.stderr
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[server]\nprot = 1\n")
    out = cairn("config", "check", str(unknown))
    assert out.returncode == 2 and "unknown.toml" in out.stderr and "prot" in out.stderr
    redis = tmp_path / "redis.toml"
    redis.write_text('[store]\nkind = "redis"\nredis_url = "http://127.0.0.1:6379"\n')
    out = cairn("config", "check", str(redis))
    assert out.returncode == 2 and "store.redis_url" in out.stderr
    redis.write_text('[store]\nkind = "redis"\nredis_cluster = ["10.0.0.1:6379", "nope"]\n')
    out = cairn("config", "check", str(redis))
    assert out.returncode == 2 and "store.redis_cluster[1]" in out.stderr
    cron = tmp_path / "cron.toml"
    cron.write_text('[[leaderboards]]\nid = "weekly"\nreset = "0 0 30 2 *"\n')
    out = cairn("config", "check", str(cron))
    assert out.returncode == 2 and "leaderboards[0].reset" in out.stderr


def test_serve_refuses_to_start_on_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "cairn.toml"
    bad.write_text("[limits]\nmax_speed = -1\n")
    out = cairn("serve", "--config", str(bad), "--port", "0", "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 2 and "limits.max_speed" in out.stderr and "Traceback" not in out.stderr


def test_hunt_validate_preview_and_verify(tmp_path: Path) -> None:
    spec = tmp_path / "friday.toml"
    spec.write_text(HUNT_TOML)
    cfg = tmp_path / "cairn.toml"
    cfg.write_text("[worlds.overworld]\nseed = 3\nsize = 1024\ndensity = 1.0\n")
    assert cairn("hunt", "validate", str(spec)).returncode == 0
    broken = tmp_path / "broken.toml"
    broken.write_text(HUNT_TOML.replace("treasures = 8", "treasures = 0"))
    out = cairn("hunt", "validate", str(broken))
    assert out.returncode == 2 and "treasures" in out.stderr
    data = tmp_path / "data"
    preview = cairn("hunt", "preview", str(spec), "--config", str(cfg), "--data-dir", str(data))
    assert preview.returncode == 0, preview.stderr
    assert "8 treasures placed" in preview.stdout and "north" in preview.stdout

    srv = CairnServer(data)
    srv.config.write_text(cfg.read_text())
    srv.start()
    try:
        import msgspec

        body = msgspec.toml.decode(HUNT_TOML.encode())
        status, created, _ = srv.request("POST", "/v1/hunts", body, key=ADMIN)
        assert status == 201
        # Determinism: preview (same secret, same spec and seed) showed the same placement.
        for t in created["treasures"]:
            assert str(t["pos"]) in preview.stdout
        srv.request("POST", "/v1/hunts", hunt_spec("other"), key=ADMIN)
    finally:
        srv.stop()
    verified = cairn("hunt", "verify", str(spec), "--config", str(cfg), "--data-dir", str(data))
    assert verified.returncode == 0 and "verified" in verified.stderr, verified.stderr
    # With another secret the recomputation no longer matches: verify can fail.
    (data / "secret").write_text("not-the-secret\n")
    mismatch = cairn("hunt", "verify", str(spec), "--config", str(cfg), "--data-dir", str(data))
    assert mismatch.returncode == 1 and "MISMATCH" in mismatch.stderr


def test_keys_create_adds_a_working_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"CAIRN_ADMIN_KEY": "", "CAIRN_GAME_KEY": ""}
    out = cairn("keys", "create", "--scope", "game", "--data-dir", str(data), env=env)
    assert out.returncode == 0 and out.stdout.strip().startswith("ck_game_")
    assert out.stdout.strip() in (data / "keys.json").read_text()


def test_hunts_dir_is_loaded_at_start_with_one_off_and_recurring_specs(tmp_path: Path) -> None:
    hunts = tmp_path / "hunts"
    hunts.mkdir()
    (hunts / "friday.toml").write_text(HUNT_TOML)
    (hunts / "daily.toml").write_text(
        HUNT_TOML.replace('id = "friday-night"', 'id = "daily"').replace('seed = "s1"', 'schedule = "0 * * * *"')
    )
    srv = CairnServer(tmp_path / "data")
    srv.config.write_text(f'hunts_dir = "{hunts}"\n[worlds.overworld]\nseed = 3\nsize = 1024\ndensity = 1.0\n')
    srv.start()
    try:
        import time

        deadline = time.monotonic() + 20
        ids: list[str] = []
        while time.monotonic() < deadline:
            ids = [h["id"] for h in srv.request("GET", "/v1/hunts")[1]["hunts"]]
            if any(i.startswith("daily@") for i in ids):
                break
            time.sleep(0.2)
        assert "friday-night" in ids
        instances = sorted(i for i in ids if i.startswith("daily@"))
        # The current hour's firing, still inside its 2h; the next hour's would overlap it (max_concurrent 1).
        from datetime import UTC, datetime

        assert instances == [f"daily@{datetime.now(UTC):%Y%m%dT%H}00"]
    finally:
        srv.kill()


def test_demo_stops_on_ctrl_c_without_a_traceback(tmp_path: Path) -> None:
    """`make demo` with its live view: Ctrl-C mid-round stops the simulated players before the server,
    so no task is left to fail against a closed port."""
    cmd = [sys.executable, "-m", "cairn", "demo", "--players", "20", "--port", "0", "--data-dir", str(tmp_path / "d")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    assert proc.stdout is not None
    out = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        out.append(line)
        if not line or "Ctrl-C stops" in line:
            break
    time.sleep(6)  # players are hinting and digging, a round under way
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=30)
    text = "".join(out) + rest
    assert proc.returncode == 0, text[-3000:]
    assert "Traceback" not in text and "never retrieved" not in text, text[-3000:]
