"""Read-only views of the engine's state for the transport: plain data out, nothing changed, no I/O.

`cairn.net` asks the engine through its methods and through these functions; it never reads an
attribute of the engine itself (`tests/unit/test_net_engine_access.py` checks that). So when the
engine's internals change, the transport's reads change here, in one place.

Each view costs what the code it replaced cost: the dashboard's views walk the players once, as
they did, and none of them is on the dig, hint, positions or batch path.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from cairn.core import ledger
from cairn.core.boards import Boards
from cairn.core.engine import Engine, Hunt, Treasure
from cairn.core.errors import ClaimNotFound
from cairn.core.events import Event
from cairn.core.keys import KeyRing
from cairn.core.records import Admin
from cairn.core.sites import SiteSet
from cairn.core.spec import rfc3339
from cairn.core.webhooks import Target as WebhookTarget


class Totals(NamedTuple):
    """Counts for `/metrics` and the dashboard's health view."""

    live_hunts: int  # scheduled or active
    live_treasures: int  # not yet claimed, in live hunts
    players: int  # with a known position
    pending_grants: int  # not yet acked


def totals(eng: Engine, now: float) -> Totals:
    live = [h for h in eng.hunts.values() if h.state_at(now) != "ended"]
    return Totals(
        len(live), sum(h.left for h in live), len(eng.players), sum(len(g) for g in eng.pending.values())
    )


def hunt_rows(eng: Engine, now: float, recent: float) -> list[dict[str, Any]]:
    """Every hunt's summary, with its distinct `finders` and its `players`: those seen in its area
    within the last `recent` seconds (counted for live hunts only)."""
    out = []
    live = []
    for h in eng.hunts.values():
        if h.archived is not None:  # deleted by an operator: gone from the lists, still readable by id
            continue
        row = h.summary(now)
        row["finders"] = len({p for t in h.treasures for p in finders(eng, t)})
        row["players"] = 0
        out.append(row)
        if row["state"] != "ended":
            live.append((row, h.spec.area.min, h.spec.area.max))
    if live:
        cut = now - recent
        for p in eng.players.values():
            pos = p.last_pos
            if pos is None or p.last_t < cut:
                continue
            x, z = pos[0], pos[2]
            for row, lo, hi in live:
                if lo[0] <= x <= hi[0] and lo[2] <= z <= hi[2]:
                    row["players"] += 1
    return out


def finders(eng: Engine, t: Treasure) -> list[str]:
    """A treasure's finders, in claim order, but for those whose claim an operator voided."""
    return eng.finders_of(t)


def map_treasures(eng: Engine, h: Hunt, shown: int = 5) -> list[dict[str, Any]]:
    """A hunt's treasures for its map: id, number, tier, state, position, the first `shown` finders
    (as `finders` lists them) and how many there are."""
    out = []
    for t in h.treasures:
        f = finders(eng, t)
        out.append({"id": t.id, "n": t.n, "tier": t.tier, "state": t.state, "pos": list(t.pos),
                    "finders": f[:shown], "finder_count": len(f)})  # fmt: skip
    return out


#: One letter per treasure state, for `treasure_states`.
STATE_CODE: Final = {"hidden": "h", "open": "o", "claimed": "c", "expired": "e"}


def treasure_states(h: Hunt) -> str:
    """A hunt's treasure states, one letter each in treasure order (`STATE_CODE`; "?" for another).

    A live view sends this string on every refresh: a few bytes per treasure."""
    return "".join(STATE_CODE.get(t.state, "?") for t in h.treasures)


def hunt_version(eng: Engine, h: Hunt, now: float) -> tuple[int, str]:
    """Changes whenever an operator acts or the hunt's state does (it starts, ends, is paused): a cached
    view of that hunt is stale then, however recently it was built."""
    return len(eng.audit), h.state_at(now)


def hunts_version(eng: Engine) -> tuple[int, int]:
    """Changes whenever an operator acts or a hunt ends: a cached list of hunts is stale then."""
    return len(eng.audit), sum(1 for h in eng.hunts.values() if h.ended is not None)


def area_activity(
    eng: Engine, x0: int, z0: int, x1: int, z1: int, cut: float, dig_since: float, now: float
) -> tuple[list[int], list[int]]:
    """The players seen since `cut` standing in the area [x0, x1] × [z0, z1], as flat lists:
    positions `[x, z, ...]`, and of those who dug since `dig_since`, `[x, z, ms ago, ...]`."""
    pts: list[int] = []
    digs: list[int] = []
    add, dig = pts.extend, digs.extend
    for p in eng.players.values():
        if p.last_t < cut:
            continue
        pos = p.last_pos
        if pos is None:
            continue
        x, z = pos[0], pos[2]
        if x0 <= x <= x1 and z0 <= z <= z1:
            add((x, z))
            if p.tokens_t > dig_since:  # the player's last dig was this recent, from where they stand
                dig((x, z, int((now - p.tokens_t) * 1000)))
    return pts, digs


def fence_occupancy(eng: Engine, h: Hunt) -> dict[int, int]:
    """Players inside the proximity fence of each live treasure of `h`, by treasure number."""
    prox = eng.proximity.get(h.world)
    return {t.n: len(prox.players_inside(t.id)) for t in h.treasures if t.live} if prox is not None else {}


def sites(eng: Engine, world: str) -> SiteSet | None:
    """The world's current sites; None for a world neither configured nor registered."""
    return eng.worlds.get(world)


def has_world(eng: Engine, world: str) -> bool:
    return world in eng.worlds


def boards(eng: Engine) -> Boards | None:
    """The leaderboards, if this engine keeps any."""
    return getattr(eng, "boards", None)


def board_names(eng: Engine, wanted: list[str]) -> list[str]:
    """The boards of `wanted` that exist, else every board."""
    known = eng.boards.boards
    return [b for b in wanted if b in known] or list(known)


def last_event(eng: Engine) -> int:
    """The highest event id used so far: where a new event stream resumes from."""
    return eng.last_event


def events_after(eng: Engine, after: int, hunt: str | None) -> tuple[list[Event], bool]:
    """The retained events after id `after` (of one hunt, or all), and whether none were lost."""
    return eng.events.after(after, hunt)


def player(eng: Engine, name: str) -> dict[str, Any]:
    """An admin's view of one player: finds, flags, last position, pending grants."""
    p = eng.players.get(name)
    return {
        "player": name,
        "finds": eng.finds(name),
        "flags": p.flags if p else 0,
        "last_pos": list(p.last_pos) if p and p.last_pos else None,
        "pending_grants": len(eng.pending.get(name, {})),
        "barred": barred(eng, name),
    }


# ---- operator actions --------------------------------------------------------------------------------
#: Args that an audit entry never shows (a key's hash, a webhook's secret).
SECRET_ARGS = frozenset({"hash", "secret"})


def admin_entry(rec: Admin) -> dict[str, Any]:
    """One audit log entry: its id (the action's event id, also its cursor), when, what, who and why."""
    out: dict[str, Any] = {"id": rec.ev, "at": rfc3339(rec.at), "action": rec.action, "by": rec.label,
                           "reason": rec.reason}  # fmt: skip
    for name in ("hunt", "player", "target"):
        value = getattr(rec, name)
        if value:
            out[name] = value
    args = {k: v for k, v in rec.args.items() if k not in SECRET_ARGS}
    if args:
        out["args"] = args
    return out


def admin_applied(eng: Engine, rec: Admin) -> dict[str, Any]:
    """The audit entry of `rec` as applied: with Redis, a record takes its event id when committed."""
    for kept in reversed(eng.audit):
        if kept.at == rec.at and kept.action == rec.action and kept.label == rec.label and \
                (kept.hunt, kept.player, kept.target) == (rec.hunt, rec.player, rec.target):
            return admin_entry(kept)
    return admin_entry(rec)


def api_keys(eng: Engine) -> KeyRing:
    """The engine's registry of runtime keys (and of static keys an action changed), which the
    transport checks presented keys against; it changes only by applying `key.*` actions."""
    return eng.api_keys


def audit(
    eng: Engine, before: int | None, limit: int, action: str = "", hunt: str = "", player: str = ""
) -> tuple[list[dict[str, Any]], int | None]:
    """The audit log, newest first, from below the entry id `before` (None: the newest), filtered by
    action (or an action prefix ending in "."), hunt and player; and the cursor of the next page."""
    out: list[dict[str, Any]] = []
    for rec in reversed(eng.audit):
        if before is not None and rec.ev >= before:
            continue
        if action and not (rec.action == action or (action.endswith(".") and rec.action.startswith(action))):
            continue
        if (hunt and rec.hunt != hunt) or (player and rec.player != player):
            continue
        if len(out) == limit:
            return out, out[-1]["id"]
        out.append(admin_entry(rec))
    return out, None


def barred(eng: Engine, player: str) -> dict[str, Any] | None:
    """The bar on `player` (who, why, since when), or None."""
    rec = eng.barred.get(player)
    return None if rec is None else {"by": rec.label, "reason": rec.reason, "since": rfc3339(rec.at)}


def player_history(eng: Engine, name: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """One page of a player's history, newest first (`ledger.history`)."""
    return ledger.history(eng, name, limit, cursor)


def hunt_export(
    eng: Engine, hunt: str, pos: tuple[int, int], count: int
) -> tuple[list[dict[str, Any]], tuple[int, int]]:
    """Up to `count` of a hunt's claims with their grants from `pos`, and the position after them
    (`ledger.export_rows`). Raises HuntNotFound."""
    return ledger.export_rows(eng, hunt, pos, count)


# ---- undoing and adjusting -----------------------------------------------------------------------------
def claim(eng: Engine, claim_id: str) -> dict[str, Any]:
    """One claim (`voided: true` once an operator voided it)."""
    c = eng.claims.get(claim_id)
    if c is None:
        raise ClaimNotFound(f"no claim {claim_id!r}", field="claim_id")
    return eng.claim_view(c)


def grant(eng: Engine, grant_id: str) -> dict[str, Any]:
    """One grant, whatever its status."""
    return eng.grant_view(grant_id)


# ---- webhooks ---------------------------------------------------------------------------------------
def webhook_targets(eng: Engine) -> dict[str, WebhookTarget]:
    """The webhook targets, by id (a copy: the delivery loop compares it with what it runs)."""
    return dict(eng.webhooks)


def last_event_id(eng: Engine) -> int:
    """The highest event id the engine has reserved or applied."""
    return eng.ids.event
