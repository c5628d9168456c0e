"""Webhook rules: the signature, the retry schedule, the Discord body, what a target may ask for."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from cairn.core.errors import ValidationError
from cairn.core.webhooks import backoff, check_args, discord_body, matches, sign, verify

SECRET = "whsec_0123456789abcdef"


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"id":1,"type":"hunt.started"}'
    want = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1_700_000_000, body) == f"t=1700000000,v1={want}"


def test_verify_accepts_the_signature_within_the_window_only() -> None:
    body = b'{"id":1}'
    header = sign(SECRET, 1_700_000_000, body)
    assert verify(SECRET, header, body, now=1_700_000_100)
    assert not verify(SECRET, header, body, now=1_700_000_301)  # a replay after the window
    assert not verify(SECRET, header, body + b" ", now=1_700_000_000)  # another body
    assert not verify("whsec_another-secret-xx", header, body, now=1_700_000_000)
    assert not verify(SECRET, header.replace("t=1700000000", "t=1700000001"), body, now=1_700_000_000)
    assert not verify(SECRET, "v1=abc", body, now=1_700_000_000)


def test_backoff_doubles_from_the_first_wait_to_the_cap_with_jitter() -> None:
    assert backoff(0, 0.5) == 0
    assert [backoff(n, 1.0) for n in range(1, 12)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert [backoff(n, 0.0) for n in (1, 2, 10)] == [0.5, 1, 150]  # jitter keeps at least half
    assert backoff(3, 0.5, first=0.1, cap=0.3) == pytest.approx(0.225)
    assert backoff(10**6, 0.99) <= 300


def ev(typ: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": 42, "type": typ, "hunt": "friday", "at": "2026-12-04T19:00:00.000Z", "data": data}


@pytest.mark.parametrize(
    ("typ", "data", "words"),
    [
        ("treasure.found", {"treasure": "friday#3", "tier": "epic", "player": "steve", "claim_id": "c1"},
         ["steve", "found", "an epic", "friday"]),
        ("treasure.claimed", {"treasure": "friday#3", "tier": "rare", "finders": ["steve"], "player": "steve"},
         ["steve", "claimed", "a rare", "friday"]),
        ("treasure.claimed", {"treasure": "friday#4", "tier": "common", "finders": ["a", "b"], "shares": [1, 1]},
         ["a, b", "claimed"]),
        ("hunt.started", {"ends_at": "2026-12-04T21:00:00Z", "treasures": 12}, ["friday", "started", "12"]),
        ("hunt.ended", {"reason": "time", "treasures_left": 2}, ["friday", "ended", "2 treasures left"]),
    ],
)  # fmt: skip
def test_discord_body_is_what_execute_webhook_takes(typ: str, data: dict[str, Any], words: list[str]) -> None:
    body = discord_body(ev(typ, data))
    assert set(body) == {"content", "embeds"}
    assert isinstance(body["content"], str) and 0 < len(body["content"]) <= 2000
    for w in words:
        assert w in body["content"], (w, body["content"])
    (embed,) = body["embeds"]
    assert embed["title"] and embed["timestamp"] == "2026-12-04T19:00:00.000Z" and "42" in embed["footer"]["text"]
    assert all(set(f) <= {"name", "value", "inline"} and len(f["value"]) <= 1024 for f in embed.get("fields", []))
    assert isinstance(embed.get("color", 0), int)


def test_a_target_asks_for_types_prefixes_or_everything() -> None:
    assert matches(("treasure.claimed",), "treasure.claimed")
    assert not matches(("treasure.claimed",), "treasure.found")
    assert matches(("hunt.",), "hunt.started") and not matches(("hunt.",), "hunting.started")
    assert matches(("*",), "anticheat.flagged") and matches(("*",), "webhook.added")
    assert not matches(("*",), "proximity.enter"), "the proximity stream only when named"
    assert matches(("*", "proximity."), "proximity.enter")


def test_target_args_are_checked() -> None:
    good = {"url": "https://discord.com/api/webhooks/1/x", "events": ["hunt.", "hunt."], "secret": SECRET}
    assert check_args(good) == {**good, "events": ["hunt."], "format": "cairn"}
    for bad in ({"url": "javascript:alert(1)"}, {"url": "http://u:p@host/"}, {"url": "https://"},
                {"url": "http://host:99999/"}, {"url": "http://a b/"}, {"events": "hunt."}, {"events": []},
                {"events": ["HUNT"]}, {"format": "slack"}, {"secret": "short"}):  # fmt: skip
        with pytest.raises(ValidationError):
            check_args({**good, **bad})
