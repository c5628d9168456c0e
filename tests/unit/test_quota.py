"""Per-key quotas (`cairn.net.quota`): token buckets per key, shared by the key's header variants."""

from __future__ import annotations

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
