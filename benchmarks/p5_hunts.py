"""P5 setup: create many live hunts spread over the world through the HTTP API (admin key).

Usage: p5_hunts.py URL [hunts] [treasures-per-hunt] [world-size]
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time

import uvloop

from cairn.bench.load import parse_metrics
from cairn.net.client import HttpClient


def spec(i: int, rnd: random.Random, treasures: int, half: int) -> dict[str, object]:
    x, z = rnd.randrange(-half + 600, half - 600), rnd.randrange(-half + 600, half - 600)
    return {
        "id": f"p5-{i:05d}",
        "name": f"P5 hunt {i}",
        "area": {"min": [x - 500, -64, z - 500], "max": [x + 500, 320, z + 500]},
        "treasures": treasures,
        "duration": "6h",
        "spawn": {"tags_any": ["surface"], "min_spacing": 8},
    }


async def server_memory(client: HttpClient) -> str:
    """The server's RSS and allocated blocks, from /metrics."""
    _, _, body = await client.raw("GET", "/metrics")
    rss, blocks, _, _ = parse_metrics(body.decode())
    return f"RSS {rss / 2**20:,.1f} MB, {blocks:,} allocated blocks"


async def main(url: str, hunts: int, treasures: int, size: int) -> None:
    client = HttpClient(url, os.environ["CAIRN_ADMIN_KEY"], max_connections=9)
    rnd = random.Random(5)
    print(f"0 hunts: {await server_memory(client)}", flush=True)
    t0 = last = time.monotonic()
    sem = asyncio.Semaphore(8)
    done = 0

    async def one(i: int) -> None:
        nonlocal done, last
        async with sem:
            await client.post("/v1/hunts", spec(i, rnd, treasures, size // 2))
        done += 1
        if done % 1000 == 0:
            now = time.monotonic()
            print(f"{done} hunts in {now - t0:.1f}s (last 1000: {now - last:.1f}s); {await server_memory(client)}",
                  flush=True)  # fmt: skip
            last = now

    await asyncio.gather(*(one(i) for i in range(hunts)))
    print(f"created {hunts} hunts × {treasures} treasures in {time.monotonic() - t0:.1f}s; "
          f"{await server_memory(client)}", flush=True)  # fmt: skip
    await client.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    uvloop.run(main(args[0], int(args[1]) if len(args) > 1 else 10_000, int(args[2]) if len(args) > 2 else 10,
                    int(args[3]) if len(args) > 3 else 14928))  # fmt: skip
