"""The composition root: the one place that chooses and builds the runtime and its store.

`cairn.net` is handed what this builds; it imports no wiring module, and nothing under `cairn`
imports this one but the command line.
"""

from __future__ import annotations

from pathlib import Path

from cairn import config as configmod
from cairn.app import Runtime


def make_runtime(cfg: configmod.Config, data_dir: str | Path | None = None) -> Runtime:
    """The runtime for `store.kind`: embedded (one process, a journal in `data_dir`, by default the
    config's), redis (several nodes) or memory (nothing kept past the process: tests and demos).
    The Redis runtime and its client are imported only when configured (a faster start without them)."""
    data = Path(data_dir or cfg.server.data_dir)
    if cfg.store.kind == "redis":
        from cairn.distributed import RedisNodeStore, RedisRuntime
        from cairn.store.redis import RedisStore

        redis = RedisStore(cfg.store.redis_url, list(cfg.store.redis_cluster), cfg.store.redis_timeout)
        return RedisRuntime(cfg, RedisNodeStore(redis), data)
    if cfg.store.kind == "memory":
        from cairn.store.memory import MemoryStore

        return Runtime(cfg, MemoryStore(), data)
    from cairn.store.embedded import EmbeddedStore

    return Runtime(cfg, EmbeddedStore(data, cfg.store.durability, cfg.store.snapshot_every), data)
