"""Deterministic randomness derived from (server secret, hunt, ...) with BLAKE2b.

Nothing here touches a global RNG, so placement and loot are pure functions of their inputs.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive(secret: bytes, *parts: str | bytes | int) -> bytes:
    """A 32-byte key from the secret and labelled parts; parts are length-prefixed so they cannot collide."""
    h = hashlib.blake2b(digest_size=32, key=secret[:64])
    for part in parts:
        b = part if isinstance(part, bytes) else str(part).encode()
        h.update(len(b).to_bytes(4, "little"))
        h.update(b)
    return h.digest()


def u64(key: bytes, *parts: str | int) -> int:
    """A uniform 64-bit integer from a key and labelled parts."""
    return int.from_bytes(derive(key, *parts)[:8], "little")


def unit(key: bytes, *parts: str | int) -> float:
    """A uniform float in [0, 1) from a key and labelled parts."""
    return (u64(key, *parts) >> 11) / float(1 << 53)


def generator(key: bytes) -> np.random.Generator:
    """A numpy PCG64 generator seeded from the key (bit-reproducible across platforms)."""
    return np.random.Generator(np.random.PCG64(int.from_bytes(key[:16], "little")))


def weighted_choice(weights: list[tuple[str, int]], r: float) -> str:
    """Pick a name by integer weight with `r` in [0, 1); order of `weights` is the tie order."""
    total = sum(w for _, w in weights)
    target = r * total
    acc = 0
    for name, w in weights:
        acc += w
        if target < acc:
            return name
    return weights[-1][0]
