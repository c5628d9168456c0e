"""Per-key quotas (`cairn.net.quota`): token buckets per key, shared by the key's header variants."""

from __future__ import annotations

import random

import pytest

from cairn.core.errors import KeyQuota
from cairn.net.quota import DIG, HINT, NEW_PLAYER, KeyQuotas


def test_buckets_are_per_key_shared_by_variants_refill_and_can_be_off() -> None:
    q = KeyQuotas([(10.0, 3.0), (0.0, 0.0), (1.0, 2.0)])
    for header in (b"Bearer k", b"Bearer  k", b"Bearer k "):  # one key, three ways to send it
        q.take(header, DIG, 1, 0.0)
    with pytest.raises(KeyQuota) as e:
        q.take(b"Bearer k", DIG, 1, 0.0)
    assert e.value.code == "key_quota" and e.value.extra["retry_after"] == 0.1
    q.take(b"Bearer other", DIG, 3, 0.0)  # another key: its own bucket
    q.take(b"Bearer k", DIG, 1, 0.1)  # refilled at 10 a second
    for _ in range(1000):
        q.take(b"Bearer k", HINT, 1, 0.1)  # a rate of 0: no quota
    with pytest.raises(KeyQuota, match="new players"):
        q.take(b"Bearer k", NEW_PLAYER, 3, 0.0)  # all or none: 3 > burst 2
    q.take(b"Bearer k", NEW_PLAYER, 2, 0.0)


@pytest.mark.parametrize("seed", range(20))
def test_a_charger_is_take_then_take_a_new_player_in_one_call(seed: int) -> None:
    """`charger(kind)` against the two `take` calls it stands for, on seeded random sequences: the same
    refusals (the same error and retry_after), the same buckets after every call."""
    rnd = random.Random(seed)
    rates = [(rnd.choice([0.0, 0.5, 3.0, 10.0]), rnd.choice([1.0, 2.0, 5.0])) for _ in range(3)]
    fast, slow = KeyQuotas(rates), KeyQuotas(rates)
    chargers = {DIG: fast.charger(DIG), HINT: fast.charger(HINT)}
    players: set[str] = set()
    now = 0.0
    for step in range(400):
        now += rnd.choice([0.0, 0.0, 0.05, 0.3, 1.7])
        header = rnd.choice([b"Bearer k", b"Bearer  k", b"Bearer other"])
        kind = rnd.choice([DIG, HINT])
        player = f"p{rnd.randrange(12)}"
        got = want = None
        try:
            chargers[kind](header, player, players, now)
        except KeyQuota as e:
            got = (str(e), e.extra["retry_after"])
        try:
            slow.take(header, kind, 1, now)
            if player not in players:
                slow.take(header, NEW_PLAYER, 1, now)
        except KeyQuota as e:
            want = (str(e), e.extra["retry_after"])
        assert got == want, (seed, step)
        assert fast.buckets == slow.buckets, (seed, step)
        if got is None:
            players.add(player)
    assert fast.buckets  # some keys were charged
