"""Request counts by route and status (`Metrics.requests`): a timed route's fast 200s are counted by its
latency histogram only, and come out exact beside every other way a reply is recorded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cairn.core.errors import HuntNotFound
from cairn.net.metrics import Metrics


def test_requests_count_every_reply_once_by_route_and_status() -> None:
    m = Metrics()
    try:
        replies: list[Any] = []

        def handler(req: Any) -> Any:
            res = replies.pop()
            if isinstance(res, Exception):
                raise res
            return res

        async def later(res: Any) -> Any:
            return res

        dig, other = m.timed("dig", handler), m.timed("other", handler)
        want: dict[tuple[str, int], int] = {("dig", 200): 0, ("other", 200): 0}
        plan = [b"{}"] * 7 + [(404, b"{}")] * 2 + [HuntNotFound("no")] * 3 + [(201, b"{}")] + ["async"] * 2
        for i, res in enumerate(plan):
            route, fn = ("dig", dig) if i % 3 else ("other", other)
            if res == "async":
                replies.append(later((202, b"{}")))
                asyncio.run(fn(object()))
                status = 202
            elif isinstance(res, Exception):
                replies.append(res)
                with pytest.raises(HuntNotFound):
                    fn(object())
                status = 404
            else:
                replies.append(res)
                assert fn(object()) == res
                status = 200 if type(res) is bytes else res[0]
            want[(route, status)] = want.get((route, status), 0) + 1
        m.observe("dig", 200, 0.001)  # a reply recorded directly: counted once as well
        want[("dig", 200)] += 1
        assert m.requests() == want
        assert sum(m.latency["dig"].counts) + sum(m.latency["other"].counts) == sum(want.values())
    finally:
        m.close()
