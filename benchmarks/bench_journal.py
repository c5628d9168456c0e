"""Journal benchmark: durable claims/s through group commit, wait latency, and recovery read time.

Run by hand (not part of pytest), e.g. pinned to one core like the server:

    taskset -c 0 .venv/bin/python benchmarks/bench_journal.py
    .venv/bin/python benchmarks/bench_journal.py --only claims --tasks 64 256 1024

Claims: N asyncio tasks on uvloop, each looping `append(seq, ~120-byte record)` then
`await wait_durable(seq)`; 1 s warm-up, then claims counted for --seconds; --runs fresh journals,
median reported. Latency is append -> wait_durable returned. The reference, in the same run, is
the naive design: one SQLite transaction per claim, committed on the loop (synchronous=FULL).

Recovery: 1,000,000 records of ~100 bytes written through the journal, then
`sum(1 for _ in journal.read())` from a fresh `Journal.open()`, --runs times, median (page cache
warm). Two row shapes: batches of 100 records (group commit under load) and the worst case of
one record per row (group commit at a trickle).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import uvloop

from cairn.store.journal import Journal

PAYLOAD = 120


def record(seq: int, size: int = PAYLOAD) -> bytes:
    head = seq.to_bytes(8, "little")
    return head + b"c" * (size - len(head))


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def claims_run(path: Path, durability: str, tasks: int, warmup: float, seconds: float) -> dict[str, float]:
    journal = Journal(path, durability)  # type: ignore[arg-type]
    journal.open()
    journal.start(asyncio.get_running_loop())
    next_seq = 0
    measuring = False
    stop = False
    latencies: list[float] = []
    count = 0
    clock = time.perf_counter

    async def claimer() -> None:
        nonlocal next_seq, count
        while not stop:
            next_seq += 1
            seq = next_seq
            t0 = clock()
            journal.append(seq, record(seq))
            await journal.wait_durable(seq)
            if measuring:
                latencies.append(clock() - t0)
                count += 1

    workers = [asyncio.create_task(claimer()) for _ in range(tasks)]
    await asyncio.sleep(warmup)
    before = journal.stats()
    measuring = True
    t_start = clock()
    await asyncio.sleep(seconds)
    measuring = False
    elapsed = clock() - t_start
    after = journal.stats()
    stop = True
    await asyncio.gather(*workers)
    await journal.close()
    latencies.sort()
    commits = after["commits"] - before["commits"]
    return {
        "claims_per_s": count / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "max_ms": latencies[-1] * 1e3 if latencies else float("nan"),
        "commits_per_s": commits / elapsed,
        "avg_batch": (after["records"] - before["records"]) / commits if commits else 0.0,
        "commit_ms": (after["commit_seconds_total"] - before["commit_seconds_total"]) / commits * 1e3
        if commits
        else 0.0,
    }


async def naive_run(path: Path, tasks: int, warmup: float, seconds: float) -> dict[str, float]:
    """Reference: each claim commits its own transaction, synchronously, on the loop."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    next_seq = 0
    measuring = False
    stop = False
    count = 0

    async def claimer() -> None:
        nonlocal next_seq, count
        while not stop:
            next_seq += 1
            conn.execute("INSERT INTO journal VALUES (?, ?)", (next_seq, record(next_seq)))
            if measuring:
                count += 1
            await asyncio.sleep(0)

    workers = [asyncio.create_task(claimer()) for _ in range(tasks)]
    await asyncio.sleep(warmup)
    measuring = True
    t_start = time.perf_counter()
    await asyncio.sleep(seconds)
    measuring = False
    elapsed = time.perf_counter() - t_start
    stop = True
    await asyncio.gather(*workers)
    conn.close()
    return {"claims_per_s": count / elapsed}


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def bench_claims(work: Path, args: argparse.Namespace) -> None:
    print("\n## claims through group commit (median of runs; latency = append -> wait_durable)")
    print(
        f"{'durability':<10} {'tasks':>6} {'claims/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'commits/s':>10} {'avg batch':>9} {'commit ms':>9}  runs (claims/s)"
    )
    for tasks in args.tasks:
        for durability in ("fsync", "os"):
            runs = []
            for i in range(args.runs):
                path = work / f"claims-{durability}-{tasks}-{i}.db"
                runs.append(uvloop.run(claims_run(path, durability, tasks, args.warmup, args.seconds)))
            m = median_of(runs)
            each = ", ".join(f"{r['claims_per_s']:,.0f}" for r in runs)
            print(
                f"{durability:<10} {tasks:>6} {m['claims_per_s']:>10,.0f} {m['p50_ms']:>8.2f} {m['p99_ms']:>8.2f} "
                f"{m['max_ms']:>8.1f} {m['commits_per_s']:>10,.0f} {m['avg_batch']:>9.1f} "
                f"{m['commit_ms']:>9.3f}  {each}"
            )
        naive = [
            uvloop.run(naive_run(work / f"naive-{tasks}-{i}.db", tasks, args.warmup, args.seconds / 2))
            for i in range(args.runs)
        ]
        each = ", ".join(f"{r['claims_per_s']:,.0f}" for r in naive)
        print(
            f"{'reference: one commit per claim on the loop, fsync':<52} "
            f"{median_of(naive)['claims_per_s']:>10,.0f}  {each}"
        )


async def fill(path: Path, n: int, per_row: int) -> None:
    journal = Journal(path, "os")  # same file format; "os" only makes writing the fixture faster
    journal.open()
    journal.start(asyncio.get_running_loop())
    journal.ROW_RECORDS = per_row
    chunk = 100_000 if per_row == 1 else per_row
    for start in range(1, n + 1, chunk):
        stop = min(n + 1, start + chunk)
        journal.append_many([(seq, record(seq, 100)) for seq in range(start, stop)])
        await journal.wait_durable(stop - 1)
    await journal.close()


def bench_recovery(work: Path, args: argparse.Namespace) -> None:
    print(f"\n## recovery: read {args.records:,} records of 100 bytes from a fresh open (median of runs)")
    print(f"{'rows':<24} {'file MB':>8} {'open s':>7} {'read s':>7} {'records/s':>11}  runs (read s)")
    for per_row, label in ((100, "100 records per row"), (1, "1 record per row (worst)")):
        path = work / f"recovery-{per_row}.db"
        uvloop.run(fill(path, args.records, per_row))
        opens, reads = [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            journal = Journal(path)
            journal.open()
            t1 = time.perf_counter()
            n = sum(1 for _ in journal.read())
            t2 = time.perf_counter()
            uvloop.run(journal.close())
            assert n == args.records, n
            opens.append(t1 - t0)
            reads.append(t2 - t1)
        size = path.stat().st_size / 1e6
        read_s = statistics.median(reads)
        each = ", ".join(f"{r:.3f}" for r in reads)
        print(
            f"{label:<24} {size:>8.1f} {statistics.median(opens):>7.3f} {read_s:>7.3f} "
            f"{args.records / read_s:>11,.0f}  {each}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["claims", "recovery"], help="run one part (default both)")
    parser.add_argument("--tasks", type=int, nargs="+", default=[256], help="concurrent claimers (default 256)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per run (default 1)")
    parser.add_argument("--runs", type=int, default=3, help="runs per configuration (default 3)")
    parser.add_argument("--records", type=int, default=1_000_000, help="records for recovery (default 1M)")
    parser.add_argument(
        "--switch-interval",
        type=float,
        help="sys.setswitchinterval in ms (default: Python's 5 ms); the writer waits this long for the GIL",
    )
    parser.add_argument("--dir", help="where to put the journals (default a temp dir, removed after)")
    args = parser.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval / 1e3)

    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(
        f"# bench_journal  python {platform.python_version()}  sqlite {sqlite3.sqlite_version}  "
        f"uvloop {version('uvloop')}  cpus {os.cpu_count()} (affinity {affinity})  "
        f"switch interval {sys.getswitchinterval() * 1e3:g} ms  {platform.platform()}"
    )
    print(f"# {' '.join(sys.argv)}")
    with tempfile.TemporaryDirectory(prefix="cairn-bench-journal-", dir=args.dir) as tmp:
        work = Path(tmp)
        if args.only in (None, "claims"):
            bench_claims(work, args)
        if args.only in (None, "recovery"):
            bench_recovery(work, args)


if __name__ == "__main__":
    main()
