"""Two views of one deployment for the operator's tests: node `a` acts, node `b` must see it.

`embedded`: one `cairn serve` on an SQLite journal, so `a` and `b` are the same node. `redis`: two
nodes on one real redis-server. `restart()` kills every node with SIGKILL and starts them again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN, SMALL_WORLD, CairnServer
from tests.e2e.redis_deploy import Deployment
from tests.redis_helpers import RedisServer


class Pair:
    def __init__(self, kind: str, a: CairnServer, b: CairnServer) -> None:
        self.kind = kind
        self.a = a
        self.b = b

    @property
    def nodes(self) -> list[CairnServer]:
        return [self.a] if self.a is self.b else [self.a, self.b]

    def restart(self) -> None:
        for n in self.nodes:
            n.kill()
        for n in self.nodes:
            n.start()

    def admin(self, node: CairnServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        status, reply, _ = node.request(method, path, body, key=ADMIN)
        return status, reply


@pytest.fixture(params=["embedded", "redis"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    if request.param == "embedded":
        srv = CairnServer(tmp_path / "data", SMALL_WORLD)
        srv.start()
        yield Pair("embedded", srv, srv)
        srv.kill()
        return
    backend: RedisServer = request.getfixturevalue("redis_single")
    d = Deployment("single", backend, tmp_path)
    d.flush()
    try:
        yield Pair("redis", d.node(), d.node())
    finally:
        d.close()
