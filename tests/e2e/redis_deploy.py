"""Deployments for the Redis tests: real `cairn serve` nodes sharing a real Redis (one node or a cluster)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.cluster

from cairn.core import records as rec
from tests.e2e.conftest import ADMIN, GAME, SMALL_WORLD, CairnServer
from tests.redis_helpers import RedisCluster, RedisServer


class Deployment:
    """Engine nodes on one Redis topology; `flush()` between tests, `kill_redis()` / `restart_redis()`."""

    def __init__(self, kind: str, backend: RedisServer | RedisCluster, root: Path) -> None:
        self.kind = kind
        self.backend = backend
        self.root = root
        self.nodes: list[CairnServer] = []

    def config(self) -> str:
        if isinstance(self.backend, RedisCluster):
            seeds = ", ".join(f'"{s}"' for s in self.backend.seeds)
            store = f'[store]\nkind = "redis"\nredis_cluster = [{seeds}]\n'
        else:
            store = f'[store]\nkind = "redis"\nredis_url = "{self.backend.url}"\n'
        return SMALL_WORLD + "\n" + store

    def node(self) -> CairnServer:
        d = self.root / f"node{len(self.nodes)}"
        d.mkdir()
        srv = CairnServer(d / "data", self.config())
        srv.start()
        self.nodes.append(srv)
        return srv

    def client(self) -> Any:
        if isinstance(self.backend, RedisCluster):
            host, _, port = self.backend.seeds[0].rpartition(":")
            return redis.cluster.RedisCluster(host=host, port=int(port))
        return redis.Redis.from_url(self.backend.url)

    def flush(self) -> None:
        servers = self.backend.nodes if isinstance(self.backend, RedisCluster) else [self.backend]
        for s in servers:
            s.cli("FLUSHALL")

    def kill_redis(self) -> None:
        self.backend.kill()

    def restart_redis(self) -> None:
        if isinstance(self.backend, RedisCluster):
            self.backend.restart()
        else:
            self.backend.start()

    def records(self, hunt: str) -> list[Any]:
        """Every record in the hunt's stream, decoded."""
        c = self.client()
        try:
            return [rec.decode(f[b"r"]) for _, f in c.xrange(f"cairn:{{{hunt}}}:log")]
        finally:
            c.close()

    def close(self) -> None:
        for n in self.nodes:
            if n.proc is not None:
                n.kill()


@pytest.fixture(scope="session")
def redis_single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    r = RedisServer(tmp_path_factory.mktemp("redis-single"))
    r.start()
    yield r
    r.kill()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    c = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    c.start()
    yield c
    c.kill()


@pytest.fixture(params=["single", "cluster"])
def deploy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    backend = request.getfixturevalue(f"redis_{request.param}")
    d = Deployment(request.param, backend, tmp_path)
    d.flush()
    yield d
    d.close()


def dig_body(player: str, at: list[int], rid: str) -> dict[str, Any]:
    return {"player": player, "pos": at, "at": at, "request_id": rid}


def create(node: CairnServer, spec: dict[str, Any]) -> dict[str, Any]:
    status, body, _ = node.request("POST", "/v1/hunts", spec, key=ADMIN)
    assert status == 201, body
    return body


def settle_wait(pred: Any, timeout: float = 10.0, step: float = 0.05) -> Any:
    """Poll `pred` until it returns something truthy (a cross-node read becoming visible)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def read_events(node: CairnServer, hunt: str, after: int, until: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """SSE events of `hunt` after `after`, read until one of type `until` arrives."""
    with socket.create_connection(("127.0.0.1", node.port), timeout=timeout) as s:
        head = f"GET /v1/events?hunt={hunt}&after={after} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {GAME}\r\n"
        s.sendall(head.encode() + b"\r\n")
        buf, events = b"", []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            buf += s.recv(65536)
            events = [json.loads(line[6:]) for line in buf.decode(errors="replace").split("\n")
                      if line.startswith('data: {"id"')]  # fmt: skip
            if any(e["type"] == until for e in events):
                break
        return events
