"""Real `redis-server` processes for the tests: a single node, or a 3-master cluster.

Each server runs on a spare port in its own temp dir and is killed at the end. The system Redis
(6379) is never used. Where `redis-server` is missing, tests skip with the install hint, except
under CI=true, where they fail with it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import free_port

INSTALL_HINT = (
    "redis-server is not installed: `sudo apt-get install redis-server` (Debian/Ubuntu) or `brew install redis`"
)


def require_redis() -> str:
    """The redis-server binary, or skip (fail under CI=true) with the install hint."""
    exe = shutil.which("redis-server")
    if exe is None or shutil.which("redis-cli") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(INSTALL_HINT + " (CI=true: Redis tests must not skip)")
        pytest.skip(INSTALL_HINT)
    return exe


class RedisServer:
    """One redis-server on a spare port; `kill()` is SIGKILL, `start()` starts it again on the same port and dir."""

    def __init__(
        self, root: Path, *, durable: bool = True, cluster: bool = False, port: int | None = None,
        extra: tuple[str, ...] = (),
    ) -> None:  # fmt: skip
        self.exe = require_redis()
        self.port = port or (cluster_port() if cluster else free_port())
        self.dir = root / f"redis-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.durable = durable
        self.cluster = cluster
        self.extra = extra  # more `--option value` arguments
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        args = [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                "--save", "", "--protected-mode", "no", "--logfile", "redis.log"]  # fmt: skip
        if self.durable:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        args += self.extra
        if self.cluster:
            args += [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.dir / "redis.log").read_text() if (self.dir / "redis.log").exists() else ""
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}:\n{log[-2000:]}")
            if self.cli("PING", check=False) == "PONG":
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server on {self.port} did not answer PING")

    def cli(self, *args: str, check: bool = True) -> str:
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, timeout=10,
                             check=False)  # fmt: skip
        if check and out.returncode != 0:
            raise RuntimeError(f"redis-cli {args}: {out.stderr}")
        return out.stdout.strip()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class RedisCluster:
    """Three masters, no replicas, joined with `redis-cli --cluster create`."""

    def __init__(self, root: Path) -> None:
        self.nodes = [RedisServer(root, cluster=True) for _ in range(3)]

    @property
    def seeds(self) -> list[str]:
        return [n.addr for n in self.nodes]

    def start(self) -> None:
        for n in self.nodes:
            n.start()
        out = subprocess.run(["redis-cli", "--cluster", "create", *self.seeds, "--cluster-replicas", "0",
                              "--cluster-yes"], capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{out.stdout}\n{out.stderr}")
        self.wait_ok()

    def wait_ok(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all("cluster_state:ok" in n.cli("CLUSTER", "INFO", check=False) for n in self.nodes):
                return
            time.sleep(0.05)
        raise RuntimeError("the Redis cluster did not reach cluster_state:ok")

    def kill(self) -> None:
        for n in self.nodes:
            n.kill()

    def restart(self) -> None:
        for n in self.nodes:
            n.start()
        self.wait_ok()


def cluster_port() -> int:
    """A spare port whose cluster bus port (+10000) is spare too."""
    for _ in range(200):
        p = free_port()
        if p + 10000 < 65536 and not port_open(p + 10000):
            return p
    raise RuntimeError("no spare port pair for a cluster node")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0
