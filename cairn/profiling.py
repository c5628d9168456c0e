"""`--profile FILE` of `cairn serve` and `cairn bench`: a pyinstrument profile of the process's loop."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

INTERVAL = 0.0005  # seconds between samples


@contextlib.contextmanager
def profiled(path: str | None) -> Iterator[None]:
    """Sample the calling thread while the block runs and write an HTML profile to `path` at its end,
    even when the block fails or is interrupted. With no path, run the block unprofiled."""
    if not path:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="disabled", interval=INTERVAL)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        with open(path, "w") as f:
            f.write(profiler.output_html())
