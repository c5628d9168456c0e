"""Webhook targets: their rules, the signature, the retry schedule and the bodies (pure; no I/O).

A target is an operator action's `Admin` record (`webhook.add`, hunt ""): its `target` is the
webhook's id and its args are `url`, `events`, `format` and `secret`. Delivery (the outbox and the
HTTP requests) lives in `cairn/net/delivery.py` and `cairn/store/outbox.py`; this module decides
what is sent and how it is signed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any, NamedTuple

from cairn.core.errors import ValidationError
from cairn.core.events import EPHEMERAL

FORMATS = ("cairn", "discord")
MAX_URL = 2048
MAX_EVENTS = 64
MAX_SECRET = 256
EVENT_PATTERN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
#: Seconds a receiver should accept between the signature's `t` and its own clock (docs/webhooks.md).
REPLAY_WINDOW = 300
#: An absolute http(s) URL: a host name or an IP literal, an optional port, then a path and query.
#: No user or password (`@` in the authority): the signature authenticates, not the URL.
URL = re.compile(r"(https?)://([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?"
                 r"([/?][\x21-\x7e]*)?")  # fmt: skip


class Target(NamedTuple):
    """A webhook target as the engine holds it: its `webhook.add` args, and the ids that place it."""

    id: str
    url: str
    events: tuple[str, ...]
    format: str
    secret: str
    since: int  # the event id of its `webhook.add`: it is sent the events after it
    resumed: int  # the event id of its last `webhook.resume` (0: none); a pause before it is lifted


FIELDS = ("url", "events", "format", "secret")  # a `webhook.add`'s args


def check_args(args: dict[str, Any]) -> dict[str, Any]:
    """A `webhook.add`'s args (`FIELDS` only: `admin` refuses any other), checked and normalised; a 422
    naming the field otherwise."""
    url = args.get("url")
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise ValidationError(f"url must be an http(s) URL of at most {MAX_URL} characters", field="url")
    m = URL.fullmatch(url)
    if m is None:
        raise ValidationError("url must be an absolute http:// or https:// URL (a host, an optional port, a path; "
                              "no user or password)", field="url")  # fmt: skip
    if m.group(3) is not None and not 0 < int(m.group(3)) < 65536:
        raise ValidationError("url has a port out of range", field="url")
    events = args.get("events")
    if not isinstance(events, list) or not events or len(events) > MAX_EVENTS:
        raise ValidationError(f"events must be a list of 1 to {MAX_EVENTS} event types or prefixes", field="events")
    for e in events:
        if not isinstance(e, str) or not e or len(e) > 64 or (e != "*" and not set(e) <= EVENT_PATTERN_CHARS):
            raise ValidationError("each of events is an event type (`treasure.claimed`), a prefix ending in `.` "
                                  "(`hunt.`) or `*`", field="events")  # fmt: skip
    fmt = args.get("format", "cairn")
    if fmt not in FORMATS:
        raise ValidationError("format must be `cairn` or `discord`", field="format")
    secret = args.get("secret")
    if not isinstance(secret, str) or not 16 <= len(secret) <= MAX_SECRET:
        raise ValidationError(f"secret must be a string of 16 to {MAX_SECRET} characters", field="secret")
    return {"url": url, "events": list(dict.fromkeys(events)), "format": fmt, "secret": secret}


def matches(patterns: tuple[str, ...], typ: str) -> bool:
    """Whether an event type is asked for: by its type, by a prefix ending in `.`, or by `*` (every type
    but the steady, never-journaled proximity stream, which a target must name: `proximity.`)."""
    return any(p == typ or (p.endswith(".") and typ.startswith(p)) or (p == "*" and typ not in EPHEMERAL)
               for p in patterns)  # fmt: skip


def sign(secret: str, t: int, body: bytes) -> str:
    """The `Cairn-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>`."""
    mac = hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: float, window: float = REPLAY_WINDOW) -> bool:
    """What a receiver does (docs/webhooks.md): the signature matches and `t` is within `window` of now."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - t) > window:
        return False
    want = sign(secret, t, body).split("v1=", 1)[1]
    return hmac.compare_digest(want, parts.get("v1", ""))


def backoff(failures: int, jitter: float, first: float = 1.0, cap: float = 300.0) -> float:
    """Seconds to wait after `failures` failed requests in a row: `first` doubling up to `cap`, then
    scaled by `jitter` (a random number in [0, 1)) to between half and all of it ("equal jitter")."""
    if failures <= 0:
        return 0.0
    base = min(cap, first * 2.0 ** min(failures - 1, 62))
    return base / 2 + base / 2 * jitter


# ---- Discord ----------------------------------------------------------------------------------------
TIER_COLOURS = {"common": 0x9E9E9E, "uncommon": 0x4CAF50, "rare": 0x2196F3, "epic": 0x9C27B0,
                "legendary": 0xFF9800}  # fmt: skip
DISCORD_MAX_CONTENT = 2000


def discord_body(ev: dict[str, Any]) -> dict[str, Any]:
    """A body Discord's "Execute Webhook" accepts (`content` and `embeds`) for one Cairn event."""
    typ, hunt, data = ev["type"], ev.get("hunt") or "", ev.get("data") or {}
    embed: dict[str, Any] = {"timestamp": ev["at"], "footer": {"text": f"Cairn · event {ev['id']}"}}
    if typ in ("treasure.found", "treasure.claimed"):
        finders = data.get("finders") or []
        player = data.get("player") or ", ".join(str(f) for f in finders[:10]) or "someone"
        tier = str(data.get("tier", ""))
        verb = "found" if typ == "treasure.found" else "claimed"
        content = f"**{player}** {verb} {'an' if tier[:1] in ('u', 'e') else 'a'} {tier + ' ' if tier else ''}" \
                  f"treasure in **{hunt}**!"  # fmt: skip
        embed.update(title=f"Treasure {verb}: {data.get('treasure', '')}", color=TIER_COLOURS.get(tier, 0xFFC107))
        fields = [{"name": "Player" if len(finders) <= 1 else "Finders", "value": str(player)[:1024], "inline": True}]
        if tier:
            fields.append({"name": "Tier", "value": tier, "inline": True})
        embed["fields"] = fields
    elif typ == "hunt.started":
        content = f"The hunt **{hunt}** has started: {data.get('treasures', 'some')} treasures are hidden!"
        embed.update(title=f"Hunt started: {hunt}", color=0x2ECC71)
        if data.get("ends_at"):
            embed["fields"] = [{"name": "Ends", "value": str(data["ends_at"]), "inline": True}]
    elif typ == "hunt.ended":
        left = data.get("treasures_left")
        content = f"The hunt **{hunt}** has ended" + (f" ({left} treasures left unfound)." if left else ".")
        embed.update(title=f"Hunt ended: {hunt}", color=0xE74C3C)
    else:
        content = f"{typ}" + (f" in **{hunt}**" if hunt else "")
        embed.update(title=typ)
    return {"content": content[:DISCORD_MAX_CONTENT], "embeds": [embed]}
