"""Open-loop latency recording: every reply is timed from the moment its request was *scheduled*.

A reply that arrives late because the server (or the network, or this process) stalled counts
its whole delay, and so do the replies to the requests scheduled during the stall. Nothing is
hidden by waiting for one answer before sending the next (no coordinated omission).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 60_000_000  # one minute
DIGITS = 3


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def _pct(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return 0.0
    i = min(len(sorted_ms) - 1, max(0, math.ceil(q / 100.0 * len(sorted_ms)) - 1))
    return sorted_ms[i]


@dataclass
class Interval:
    """Replies whose requests were scheduled within one interval of the run."""

    latencies_ms: list[float] = field(default_factory=list)
    ops: int = 0
    errors: int = 0


class Recorder:
    """Latency (HdrHistogram, microseconds), throughput and errors, overall and per interval.

    `start` is the run's time origin; requests scheduled before `start + warmup` go to the
    timeline but not to the summary histogram.
    """

    def __init__(self, start: float, warmup: float = 0.0, interval: float = 1.0) -> None:
        self.start = start
        self.warmup = warmup
        self.interval = interval
        self.hist = new_histogram()
        self.intervals: dict[int, Interval] = {}
        self.errors: dict[str, int] = {}
        self.requests = 0
        self.ops = 0
        self.op_errors = 0
        self.send_lag = new_histogram()  # how late this process sent after the scheduled time

    def sent(self, scheduled: float, actual: float) -> None:
        self.send_lag.record_value(min(HIGHEST_US, max(LOWEST_US, round((actual - scheduled) * 1e6))))

    def record(self, scheduled: float, done: float, ops: int = 1, errors: dict[str, int] | None = None) -> float:
        """One reply: to a request scheduled at `scheduled`, complete at `done`. Returns latency in seconds."""
        latency = max(0.0, done - scheduled)
        offset = scheduled - self.start
        slot = self.intervals.get(int(offset // self.interval))
        if slot is None:
            slot = self.intervals[int(offset // self.interval)] = Interval()
        slot.latencies_ms.append(latency * 1e3)
        slot.ops += ops
        if errors:
            n = sum(errors.values())
            slot.errors += n
        if offset >= self.warmup:
            self.hist.record_value(min(HIGHEST_US, max(LOWEST_US, round(latency * 1e6))))
            self.requests += 1
            self.ops += ops
            if errors:
                for code, k in errors.items():
                    self.errors[code] = self.errors.get(code, 0) + k
                    self.op_errors += k
        return latency

    def error(self, code: str, n: int = 1) -> None:
        """An error that is not tied to a timed reply (setup, grants, a lost connection)."""
        self.errors[code] = self.errors.get(code, 0) + n
        self.op_errors += n

    def percentile_ms(self, q: float) -> float:
        return self.hist.get_value_at_percentile(q) / 1e3 if self.hist.get_total_count() else 0.0

    def max_ms(self) -> float:
        return self.hist.get_max_value() / 1e3 if self.hist.get_total_count() else 0.0

    def mean_ms(self) -> float:
        return self.hist.get_mean_value() / 1e3 if self.hist.get_total_count() else 0.0

    def timeline(self) -> list[tuple[float, int, int, int, float, float, float]]:
        """Per interval: (t, requests, ops, errors, p50 ms, p99 ms, max ms), in time order."""
        out = []
        for idx in sorted(self.intervals):
            iv = self.intervals[idx]
            lat = sorted(iv.latencies_ms)
            out.append((idx * self.interval, len(lat), iv.ops, iv.errors, _pct(lat, 50), _pct(lat, 99), lat[-1]))
        return out
