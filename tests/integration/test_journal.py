"""The journal on real SQLite files: group commit, durability before replies, crash recovery, snapshots."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
import uvloop

from cairn.store import journal as journal_module
from cairn.store.journal import Journal, JournalError, JournalPruned

REPO = Path(__file__).resolve().parents[2]

# SIGALRM cannot interrupt a thread join under uvloop: a hang must kill the run, not stall it.
pytestmark = pytest.mark.timeout(60, method="thread")


def run(main: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Run a coroutine on uvloop, the loop Cairn serves on, with a timeout inside the loop.

    pytest-timeout's SIGALRM cannot interrupt a test blocked in uvloop, so a hang must time out here.
    """

    async def bounded() -> Any:
        return await asyncio.wait_for(main(), timeout)

    return uvloop.run(bounded())


def rec(seq: int) -> bytes:
    """A record whose bytes say which seq they belong to, ~120 bytes like a claim."""
    return msgspec.msgpack.encode({"seq": seq, "kind": "claim", "pad": "x" * (90 + seq % 17)})


def started(path: Path, durability: str = "fsync") -> Journal:
    j = Journal(path, durability)  # type: ignore[arg-type]
    j.open()
    j.start(asyncio.get_running_loop())
    return j


def reopen_records(path: Path, after: int = 0) -> list[tuple[int, bytes]]:
    j = Journal(path)
    j.open()
    try:
        return list(j.read(after))
    finally:
        run_close(j)


def run_close(j: Journal) -> None:
    """Close a journal that was never started (no writer), from sync code."""
    uvloop.run(j.close())


# ---------------------------------------------------------------------- basics


def test_append_wait_read_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "data" / "journal.db"  # the directory does not exist yet

    async def main() -> None:
        j = started(path)
        assert (j.last_seq, j.durable_seq) == (0, 0)
        for seq in range(1, 101):
            j.append(seq, rec(seq))
        j.append_many([(seq, rec(seq)) for seq in range(101, 151)])
        await j.wait_durable(150)
        assert j.durable_seq == 150
        assert list(j.read()) == [(s, rec(s)) for s in range(1, 151)]
        assert list(j.read(after=137)) == [(s, rec(s)) for s in range(138, 151)]
        await j.close()

    run(main)
    assert reopen_records(path) == [(s, rec(s)) for s in range(1, 151)]


def test_msgpack_rows_decode_in_one_call_and_read_both_layouts(tmp_path: Path) -> None:
    """Rows embed MessagePack records (one decode per row); rows of the older binary layout still read."""
    path = tmp_path / "j.db"
    kinds: dict[bool, range] = {False: range(1, 41), True: range(41, 101)}  # older layout, then embedded

    async def write(embed: bool, seqs: range) -> None:
        j = Journal(path, "os", msgpack_records=embed)
        j.open()
        j.start(asyncio.get_running_loop())
        j.append_many([(s, rec(s)) for s in seqs])  # one group commit: one multi-record row
        await j.wait_durable(seqs[-1])
        await j.close()

    for embed, seqs in kinds.items():
        run(lambda embed=embed, seqs=seqs: write(embed, seqs))
    con = sqlite3.connect(path)
    rows = con.execute("SELECT data FROM journal WHERE first_seq < last_seq ORDER BY last_seq").fetchall()
    con.close()
    assert [type(msgspec.msgpack.decode(blob)[0][1]) for (blob,) in rows] == [bytes, dict]
    assert reopen_records(path) == [(s, rec(s)) for s in range(1, 101)]
    j = Journal(path, msgpack_records=True)
    j.open()
    try:
        rows = list(j.read_decoded(30, dict))
        assert [len(r) for r in rows] == [10, 60]  # the straddling row is cut at `after`
        assert [(s, v) for row in rows for s, v in row] == [(s, msgspec.msgpack.decode(rec(s))) for s in range(31, 101)]
        with pytest.raises(JournalPruned):
            j._pruned_through = 5
            list(j.read_decoded(2, dict))
    finally:
        j._pruned_through = 0
        run_close(j)


def test_records_keep_seq_order_and_gaps(tmp_path: Path) -> None:
    seqs = sorted(random.Random(7).sample(range(1, 10_000), 500))

    async def main() -> None:
        j = started(tmp_path / "j.db")
        for seq in seqs:
            j.append(seq, rec(seq))
            if seq % 3 == 0:
                await asyncio.sleep(0)  # let the writer cut batches at different places
        await j.wait_durable(seqs[-1])
        await j.close()

    run(main)
    assert reopen_records(tmp_path / "j.db") == [(s, rec(s)) for s in seqs]
    middle = seqs[250]
    assert [s for s, _ in reopen_records(tmp_path / "j.db", after=middle)] == seqs[251:]


def test_non_increasing_seq_is_refused(tmp_path: Path) -> None:
    async def main() -> None:
        j = started(tmp_path / "j.db")
        j.append(5, b"a")
        with pytest.raises(ValueError, match="seq 5 is not greater than the last seq 5"):
            j.append(5, b"b")
        with pytest.raises(ValueError, match="seq 4 is not greater"):
            j.append(4, b"b")
        with pytest.raises(ValueError, match="seq 7 is not greater than the last seq 7"):
            j.append_many([(6, b"c"), (7, b"d"), (7, b"e")])
        assert j.last_seq == 5  # append_many is all or nothing
        with pytest.raises(TypeError, match="must be bytes"):
            j.append(6, "text")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="never appended"):
            await j.wait_durable(6)
        await j.wait_durable(5)
        await j.close()
        with pytest.raises(JournalError, match="closed"):
            j.append(6, b"late")

    run(main)
    assert reopen_records(tmp_path / "j.db") == [(5, b"a")]


def test_reopen_continues_last_seq(tmp_path: Path) -> None:
    path = tmp_path / "j.db"

    async def first() -> None:
        j = started(path)
        j.append_many([(s, rec(s)) for s in range(1, 43)])
        await j.close()  # close flushes without anyone waiting

    async def second() -> None:
        j = started(path)
        assert (j.last_seq, j.durable_seq) == (42, 42)
        with pytest.raises(ValueError):
            j.append(42, b"again")
        j.append(43, rec(43))
        await j.wait_durable(43)
        await j.close()

    run(first)
    run(second)
    assert [s for s, _ in reopen_records(path)] == list(range(1, 44))


def test_a_second_journal_on_the_same_file_is_refused(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.open()
    other = Journal(tmp_path / "j.db")
    with pytest.raises(JournalError, match="in use"):
        other.open()
    run_close(j)
    other.open()  # free again once closed
    run_close(other)


def test_already_durable_returns_without_suspending(tmp_path: Path) -> None:
    async def main() -> None:
        j = started(tmp_path / "j.db")
        j.append(1, b"x")
        await j.wait_durable(1)
        coro = j.wait_durable(1)
        with pytest.raises(StopIteration):  # finished on the first step: no future was awaited
            coro.send(None)
        await j.close()

    run(main)


def test_big_batches_split_into_rows_and_read_back(tmp_path: Path) -> None:
    async def main() -> None:
        j = started(tmp_path / "j.db")
        j.ROW_RECORDS = 10
        j.append_many([(s, rec(s)) for s in range(1, 92)])  # 9 rows of 10, then a row of one
        await j.wait_durable(91)
        j.append(92, rec(92))  # alone in its commit
        await j.wait_durable(92)
        await j.close()

    run(main)
    with sqlite3.connect(tmp_path / "j.db") as db:
        rows = db.execute("SELECT first_seq, last_seq FROM journal ORDER BY last_seq").fetchall()
    assert rows == [(s, s + 9) for s in range(1, 90, 10)] + [(91, 91), (92, 92)]
    assert reopen_records(tmp_path / "j.db", after=33) == [(s, rec(s)) for s in range(34, 93)]
    assert reopen_records(tmp_path / "j.db", after=90) == [(91, rec(91)), (92, rec(92))]


# ---------------------------------------------------------------------- group commit


def test_group_commit_batches_concurrent_appenders(tmp_path: Path) -> None:
    async def main() -> dict[str, float]:
        j = started(tmp_path / "j.db")
        next_seq = 0

        async def claim() -> None:
            nonlocal next_seq
            for _ in range(5):
                next_seq += 1
                seq = next_seq
                j.append(seq, rec(seq))
                await j.wait_durable(seq)

        await asyncio.gather(*(claim() for _ in range(2000)))
        stats = j.stats()
        await j.close()
        return stats

    stats = run(main)
    assert stats["records"] == 10_000
    assert stats["commits"] <= stats["records"] / 20, stats
    assert stats["max_batch"] >= 500, stats


def test_wait_durable_returns_only_once_durable(tmp_path: Path) -> None:
    path = tmp_path / "j.db"

    async def main() -> int:
        j = started(path)
        next_seq = 0
        checked_on_disk = 0

        async def claim(worker: int) -> None:
            nonlocal next_seq, checked_on_disk
            for i in range(20):
                next_seq += 1
                seq = next_seq
                j.append(seq, rec(seq))
                if i % 4 == 0:
                    await asyncio.sleep(0)
                await j.wait_durable(seq)
                assert j.durable_seq >= seq
                if worker % 50 == 0:  # and, independently of the bookkeeping, it is on disk
                    assert next(iter(j.read(seq - 1))) == (seq, rec(seq))
                    checked_on_disk += 1

        await asyncio.gather(*(claim(w) for w in range(300)))
        await j.close()
        return checked_on_disk

    assert run(main) == 6 * 20


def test_waiters_in_any_order_are_all_released(tmp_path: Path) -> None:
    async def main() -> None:
        j = started(tmp_path / "j.db")
        j.append_many([(s, rec(s)) for s in range(1, 201)])
        order = list(range(1, 201))
        random.Random(3).shuffle(order)
        released: list[int] = []

        async def waiter(seq: int) -> None:
            await j.wait_durable(seq)
            assert j.durable_seq >= seq
            released.append(seq)

        await asyncio.gather(*(waiter(s) for s in order))
        j._check()
        assert sorted(released) == list(range(1, 201))
        assert j.stats()["waiters"] == 0
        await j.close()

    run(main)


def test_waiters_behind_a_slow_commit_stay_ordered(tmp_path: Path) -> None:
    async def main() -> None:
        j = started(tmp_path / "j.db")
        j.ROW_RECORDS = 1  # 20,000 rows in one transaction: a commit slow enough to queue behind
        j.append_many([(s, b"r") for s in range(1, 20_001)])
        await asyncio.sleep(0.005)  # the writer has taken that batch and is committing it
        j.append_many([(s, rec(s)) for s in range(20_001, 20_201)])
        order = list(range(19_901, 20_201))  # waiters on both batches, registered out of order
        random.Random(5).shuffle(order)
        tasks = [asyncio.create_task(j.wait_durable(s)) for s in order]
        await asyncio.sleep(0)
        j._check()
        assert j.stats()["waiters"] > 0, "the slow commit was not slow enough to test anything"
        await asyncio.gather(*tasks)
        j._check()
        await j.close()

    run(main)


def test_close_flushes_pending_and_releases_its_waiters(tmp_path: Path) -> None:
    async def main() -> None:
        j = started(tmp_path / "j.db")
        j.append_many([(s, rec(s)) for s in range(1, 1001)])
        waiter = asyncio.create_task(j.wait_durable(1000))
        await asyncio.sleep(0)
        await j.close()
        await waiter
        assert j.durable_seq == 1000
        await j.close()  # twice is fine

    run(main)
    assert len(reopen_records(tmp_path / "j.db")) == 1000


def test_checkpoints_keep_the_wal_bounded_under_sustained_load(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    wal = tmp_path / "j.db-wal"

    async def main() -> tuple[int, dict[str, float]]:
        j = started(path, "os")
        j.CHECKPOINT_BYTES = 256 << 10
        next_seq = 0
        stop = False
        biggest = 0

        async def claim() -> None:
            nonlocal next_seq
            while not stop:
                next_seq += 1
                seq = next_seq
                j.append(seq, os.urandom(400))  # incompressible, ~40 MB in all
                await j.wait_durable(seq)

        workers = [asyncio.create_task(claim()) for _ in range(64)]
        while next_seq < 100_000:
            await asyncio.sleep(0.01)
            biggest = max(biggest, wal.stat().st_size)
        stop = True
        await asyncio.gather(*workers)
        stats = j.stats()
        await j.close()
        return biggest, stats

    biggest, stats = run(main)
    assert stats["checkpoints"] > 0 and stats["inline_checkpoints"] > 0, stats
    assert biggest < 8 << 20, f"the WAL grew to {biggest / 1e6:.1f} MB"
    assert [s for s, _ in reopen_records(path)] == list(range(1, int(stats["records"]) + 1))


def test_close_while_checkpointing_does_not_hang(tmp_path: Path) -> None:
    async def main() -> int:
        checkpoints = 0
        for _ in range(15):
            j = started(tmp_path / "j.db", "os")
            j.CHECKPOINT_BYTES = 1  # the checkpointer runs after every commit: close races with it
            base = j.last_seq
            for i in range(1, 41):
                j.append(base + i, rec(base + i))
                await asyncio.sleep(0)
            await j.wait_durable(base + 40)
            await asyncio.wait_for(j.close(), 5)
            checkpoints += int(j.stats()["checkpoints"])
        return checkpoints

    # Counted over all cycles: a cycle whose close wins the race before any checkpoint (a loaded
    # machine, one group commit for all 40 records) still tests the close.
    assert run(main) > 0


# ---------------------------------------------------------------------- crash


CHILD = textwrap.dedent(
    """
    import asyncio, sys, uvloop
    from cairn.store.journal import Journal
    from tests.integration.test_journal import rec

    async def main(path, durability):
        j = Journal(path, durability)
        j.open()
        j.start(asyncio.get_running_loop())
        next_seq = j.last_seq

        async def claim():
            nonlocal next_seq
            while True:
                next_seq += 1
                seq = next_seq
                j.append(seq, rec(seq))
                await j.wait_durable(seq)
                sys.stdout.write(f"{seq}\\n")  # the reply: only after wait_durable returned
                sys.stdout.flush()

        await asyncio.gather(*(claim() for _ in range(32)))

    uvloop.run(main(sys.argv[1], sys.argv[2]))
    """
)


@pytest.mark.parametrize("durability", ["fsync", "os"])
def test_kill_9_loses_no_acked_record(tmp_path: Path, durability: str) -> None:
    path = tmp_path / "j.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), durability],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: list[int] = []
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 15
        while len(acked) < 3000 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            acked.append(int(line))
        assert len(acked) >= 3000, child.stderr.read() if child.stderr else ""
        os.kill(child.pid, signal.SIGKILL)  # mid-stream: it is still appending
        child.wait(timeout=10)
        acked.extend(int(line) for line in child.stdout.read().split())  # acks still in the pipe
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL

    records = reopen_records(path)
    seqs = [s for s, _ in records]
    assert seqs == list(range(1, len(seqs) + 1))  # contiguous, each once, in order
    assert max(acked) <= seqs[-1]
    assert set(acked) <= set(seqs)
    assert all(data == rec(seq) for seq, data in records)


# ---------------------------------------------------------------------- snapshots


def test_snapshot_round_trip_and_corrupt_files_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "j.db"

    async def main() -> None:
        j = started(path)
        assert j.load_snapshot() is None
        j.append_many([(s, rec(s)) for s in range(1, 31)])
        with pytest.raises(ValueError, match="not durable"):
            j.write_snapshot(30, b"too early")
        await j.wait_durable(30)
        j.write_snapshot(10, b"state at 10")
        j.write_snapshot(20, b"state at 20" * 1000)
        assert j.load_snapshot() == (20, b"state at 20" * 1000)
        await j.close()

    run(main)
    snap10 = path.with_name("j.db.snapshot-00000000000000000010.bin")
    snap20 = path.with_name("j.db.snapshot-00000000000000000020.bin")
    assert snap10.exists() and snap20.exists()

    def newest() -> tuple[int, bytes] | None:
        j = Journal(path)
        j.open()
        try:
            return j.load_snapshot()
        finally:
            run_close(j)

    raw = bytearray(snap20.read_bytes())
    raw[-5] ^= 0x01  # one flipped bit in the blob
    snap20.write_bytes(bytes(raw))
    assert newest() == (10, b"state at 10")

    snap20.write_bytes(bytes(raw[:100]))  # a torn write
    assert newest() == (10, b"state at 10")

    path.with_name("j.db.snapshot-00000000000000000025.bin").write_bytes(b"not a snapshot at all")
    assert newest() == (10, b"state at 10")

    # A valid file ahead of the journal (its records were lost) is never used, and set aside.
    ahead = path.with_name("j.db.snapshot-00000000000000000099.bin")
    journal_module._write_snapshot_file(ahead, 99, b"state at 99")
    assert newest() == (10, b"state at 10")
    assert not ahead.exists() and ahead.with_name(ahead.name + ".stale").exists()

    snap10.write_bytes(snap10.read_bytes()[:-1])
    assert newest() is None


def test_snapshot_forked_while_appending_then_recover(tmp_path: Path) -> None:
    path = tmp_path / "j.db"

    async def main() -> tuple[list[int], dict[int, int]]:
        j = started(path)
        state: dict[str, int] = {"sum": 0}  # the "engine": sum of all applied seqs
        at_seq: dict[int, int] = {}
        next_seq = 0
        stop = False

        async def claim() -> None:
            nonlocal next_seq
            while not stop:
                next_seq += 1
                seq = next_seq
                state["sum"] += seq  # apply, then journal: same step, no await between
                j.append(seq, rec(seq))
                await j.wait_durable(seq)

        workers = [asyncio.create_task(claim()) for _ in range(50)]
        snap_seqs = []
        for _ in range(3):
            await asyncio.sleep(0.15)
            seq = j.last_seq  # the state now is exactly the state at `seq`
            at_seq[seq] = state["sum"]
            assert await j.snapshot_forked(seq, lambda: msgspec.msgpack.encode(state))
            snap_seqs.append(seq)
            # Rows are pruned, later records are all still readable, appends never stopped.
            assert next(iter(j.read(seq)))[0] == seq + 1
            with pytest.raises(JournalPruned):
                j.read(seq - 1)
        stop = True
        await asyncio.gather(*workers)
        at_seq[j.last_seq] = state["sum"]
        await j.close()
        return snap_seqs, at_seq

    snap_seqs, at_seq = run(main)
    files = sorted(p.name for p in tmp_path.glob("j.db.snapshot-*"))
    assert files == [f"j.db.snapshot-{s:020d}.bin" for s in snap_seqs[-2:]]  # the 2 newest, no temp files

    j = Journal(path)
    j.open()
    snap = j.load_snapshot()
    assert snap is not None and snap[0] == snap_seqs[-1]
    state = msgspec.msgpack.decode(snap[1])
    assert state["sum"] == at_seq[snap[0]]
    for seq, data in j.read(snap[0]):  # recovery: snapshot + replay
        assert data == rec(seq)
        state["sum"] += seq
    assert state["sum"] == at_seq[j.last_seq]
    run_close(j)
    with sqlite3.connect(path) as db:  # rows wholly at or before the snapshot are gone
        assert db.execute("SELECT count(*) FROM journal WHERE last_seq <= ?", (snap[0],)).fetchone()[0] == 0


def test_snapshot_child_failure_returns_false(tmp_path: Path) -> None:
    async def main() -> None:
        j = started(tmp_path / "j.db")
        j.append(1, b"x")

        def broken() -> bytes:
            raise RuntimeError("make_blob failed")

        assert await j.snapshot_forked(1, broken) is False
        assert list(tmp_path.glob("j.db.snapshot-*")) == []
        j.append(2, b"y")  # the journal carries on
        await j.wait_durable(2)
        assert [s for s, _ in j.read()] == [1, 2]
        await j.close()

    run(main)


def test_snapshot_forked_without_pidfd_waits_in_a_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "pidfd_open")  # kernels before 5.3

    async def main() -> None:
        j = started(tmp_path / "j.db")
        j.append(1, b"x")
        assert await j.snapshot_forked(1, lambda: b"state at 1")
        assert j.load_snapshot() == (1, b"state at 1")
        await j.close()

    run(main)


# ---------------------------------------------------------------------- writer failure


def test_disk_full_fails_every_waiter_with_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "j.db"

    async def main() -> None:
        j = started(path)
        j.append(1, b"durable")
        await j.wait_durable(1)
        # The writer is idle: cap the database size on its connection, as a full disk would.
        pages = j._conn.execute("PRAGMA page_count").fetchone()[0]  # type: ignore[union-attr]
        j._conn.execute(f"PRAGMA max_page_count={pages + 2}")  # type: ignore[union-attr]
        big = os.urandom(200_000)
        waiters = []
        for seq in range(2, 12):
            j.append(seq, big)
            waiters.append(asyncio.create_task(j.wait_durable(seq)))
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(r, JournalError) for r in results), results
        last = results[-1]
        assert isinstance(last, JournalError) and "full" in str(last.__cause__)
        assert j.stats()["failed"] == 1.0
        await j.wait_durable(1)  # what was durable stays durable
        with pytest.raises(JournalError, match="writer failed"):
            await j.wait_durable(11)
        with pytest.raises(JournalError, match="writer failed"):
            j.append(12, b"more")
        with pytest.raises(JournalError, match="writer failed"):
            await j.close()

    run(main)
    assert reopen_records(path) == [(1, b"durable")]


def test_connection_lost_under_the_writer_fails_waiters(tmp_path: Path) -> None:
    async def main() -> None:
        j = started(tmp_path / "j.db")
        j.append(1, b"a")
        await j.wait_durable(1)
        j._conn.close()  # type: ignore[union-attr]  # the writer is idle: no statement in flight
        j.append(2, b"b")
        with pytest.raises(JournalError) as failed:
            await j.wait_durable(2)
        assert isinstance(failed.value.__cause__, sqlite3.ProgrammingError)
        assert failed.value.code == "journal_failed"
        with pytest.raises(JournalError):
            await j.close()

    run(main)
