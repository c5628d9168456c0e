"""A real `cairn serve` on a spare port, driven over real sockets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cairn.net.auth import static_id
from tests.support import free_port

ADMIN = "e2e-admin-key-0123456789"
GAME = "e2e-game-key-0123456789"
ADMIN_ID = static_id("env", "admin", ADMIN.encode())  # its id, and its label in the audit log
GAME_ID = static_id("env", "game", GAME.encode())

SMALL_WORLD = """
[worlds.overworld]
seed = 3
size = 1024
density = 1.0

[[landmarks]]
name = "the Old Mill"
pos = [120, 70, -40]
"""


class CairnServer:
    """One `cairn serve` process; `kill()` is SIGKILL, `stop()` is SIGTERM, `start()` restarts it."""

    def __init__(self, data_dir: Path, config: str = SMALL_WORLD, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.config = data_dir.parent / f"cairn-{self.port}.toml"
        self.config.write_text(config)
        self.env = {**os.environ, "CAIRN_ADMIN_KEY": ADMIN, "CAIRN_GAME_KEY": GAME, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"serve-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        cmd = [sys.executable, "-m", "cairn", "serve", "--config", str(self.config),
               "--port", str(self.port), "--data-dir", str(self.data_dir)]  # fmt: skip
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cairn serve exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise RuntimeError("cairn serve did not become ready:\n" + self.log.read_text()[-3000:])

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def request(
        self, method: str, path: str, body: Any = None, key: str | None = GAME, raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:  # fmt: skip
        data = raw if raw is not None else (None if body is None else msgspec.json.encode(body))
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if key is not None:
            req.add_header("Authorization", f"Bearer {key}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                payload = r.read()
                return r.status, msgspec.json.decode(payload) if payload else None, dict(r.headers)
        except urllib.error.HTTPError as e:
            payload = e.read()
            try:
                decoded = msgspec.json.decode(payload) if payload else None
            except msgspec.DecodeError:
                decoded = payload
            return e.code, decoded, dict(e.headers)


@pytest.fixture
def cairn(tmp_path: Path) -> Iterator[CairnServer]:
    srv = CairnServer(tmp_path / "data")
    srv.start()
    yield srv
    if srv.proc is not None:
        srv.kill()


def hunt_spec(hunt_id: str = "h1", **kw: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "id": hunt_id,
        "name": "E2E",
        "area": {"min": [-400, -64, -400], "max": [400, 320, 400]},
        "treasures": 10,
        "spawn": {"tags_any": ["surface"], "min_spacing": 8},
        "hints": {"cooldown": "0s"},
        "duration": "1h",
    }
    spec.update(kw)
    return spec


# Redis deployments (real redis-server processes), for the Redis store tests.
from tests.e2e.operator import pair  # noqa: E402, F401
from tests.e2e.redis_deploy import deploy, redis_cluster, redis_single  # noqa: E402, F401
