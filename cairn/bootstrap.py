"""The composition root: the one place that chooses and builds the runtime for the configured store.

`cairn.net` is handed what this builds; it imports no wiring module, and nothing under `cairn`
imports this one but the command line.
"""

from __future__ import annotations

from cairn import config as configmod
from cairn.app import Runtime


def make_runtime(cfg: configmod.Config) -> Runtime:
    """The runtime for `store.kind`: embedded (one process) or redis (several nodes). The Redis
    runtime and its client are imported only when configured (a faster start without them)."""
    if cfg.store.kind == "redis":
        from cairn.distributed import RedisRuntime

        return RedisRuntime(cfg)
    return Runtime(cfg)
