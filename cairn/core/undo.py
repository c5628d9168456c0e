"""Undoing and adjusting: the operator's actions on claims, grants and hunts (`cairn/core/admin.py`).

Each action is a `check_*` method (decide: read the state, refuse, return the record's args) and an
`apply_*` method (change the state, emit the events on the ids the record reserved). An apply
changes nothing when its effect is there already, so a record applied twice is applied once, and a
record that lost a race (a grant acked before the cancel that was decided while it was pending)
does what the state at its place in the hunt's order allows.

- `claim.void`: the claim no longer counts. Its grants are cancelled (pending) or revoked (acked,
  `grant.revoked`: the plugin takes the items back), the leaderboards are recounted without it, and
  with `rehide` its treasure is hidden again. The player keeps the claim in their history (it shows
  `voided: true`) and cannot find that treasure again.
- `grant.cancel`, `grant.reissue`: a pending grant withdrawn; a grant given again under a new id.
- `hunt.end`, `hunt.extend`, `hunt.pause`, `hunt.resume`, `hunt.rename`, `hunt.delete` (archive).
- `player.clear_flags`: the anti-cheat flag count back to 0 (per node state: applied on every node).
"""

from __future__ import annotations

import heapq
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from cairn.core import loot as lootmod
from cairn.core.boards import Boards, Find
from cairn.core.errors import (
    AdminConflict,
    ClaimNotFound,
    ClaimVoided,
    GrantAcked,
    GrantCancelled,
    GrantNotFound,
    HuntNotActive,
    HuntNotEnded,
    HuntNotFound,
    ValidationError,
)
from cairn.core.grants import Grant, grant_id_of
from cairn.core.hunts import TimerKind
from cairn.core.records import Admin, Claimed
from cairn.core.spec import parse_duration, rfc3339

if TYPE_CHECKING:
    from cairn.core.hunts import Hunt, Treasure
    from cairn.core.placement import LiveTreasures
    from cairn.core.players import Player
    from cairn.core.proximity import ProximityIndex


class Request(Protocol):
    """What an operator asked (`cairn.core.admin.Request`, which imports this module)."""

    @property
    def hunt(self) -> str: ...
    @property
    def player(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def args(self) -> dict[str, Any] | None: ...


MAX_NAME = 200  # characters, as a spec's `name`


class Undo:
    """The actions that undo and adjust, on the engine's state (a base of `Operator`, so of `Engine`)."""

    __slots__ = ()
    # The engine's state these actions read and change (set by `Engine.__init__`).
    hunts: dict[str, Hunt]
    claims: dict[str, Claimed]
    claimed: dict[tuple[str, str], tuple[int, ...]]
    grants: dict[str, Grant]
    pending: dict[str, dict[str, Grant]]
    players: dict[str, Player]
    proximity: dict[str, ProximityIndex]
    boards: Boards
    timers: list[tuple[float, Any, str, int]]
    voided: dict[str, Admin]  # claim id -> the action that voided it
    reissued: dict[str, list[str]]  # claim id -> the grants reissued for it, in order

    def admin_event(self, rec: Admin, typ: str, data: dict[str, Any], offset: int = 0) -> None:
        raise NotImplementedError  # `Operator.admin_event`

    def emit(self, typ: str, hunt: str, now: float, data: dict[str, Any]) -> None:
        raise NotImplementedError  # `Engine.emit`

    def _live(self, world: str) -> LiveTreasures:
        raise NotImplementedError  # `Engine._live`

    def _add_grant(self, g: Grant) -> None:
        raise NotImplementedError  # `Engine._add_grant`

    def _forget_tiles(self, h: Hunt) -> None:
        raise NotImplementedError  # `Engine._forget_tiles`

    def _hunt(self, hunt_id: str) -> Hunt:
        h = self.hunts.get(hunt_id)
        if h is None:
            raise HuntNotFound(f"no hunt {hunt_id!r}", field="hunt")
        return h

    # ---- claims ------------------------------------------------------------------------------------
    def locate_claim(self, req: Request) -> tuple[str, str]:
        """The claim's hunt and player."""
        c = self.claims.get(req.target)
        if c is None:
            raise ClaimNotFound(f"no claim {req.target!r}", field="claim_id")
        return c.hunt, c.player

    def check_void(self, req: Request, now: float) -> dict[str, Any]:
        args = req.args or {}
        rehide = args.get("rehide", False)
        if not isinstance(rehide, bool):
            raise ValidationError("rehide must be true or false", field="rehide")
        c = self.claims[req.target]
        if c.claim_id in self.voided:
            raise ClaimVoided(f"claim {c.claim_id!r} is voided already", field="claim_id")
        h = self.hunts[c.hunt]
        t = h.treasures[c.n - 1]
        if t.state == "open":
            raise AdminConflict(f"the bounty window of {t.id} is still open: void {c.claim_id!r} once it has "
                                f"closed", field="claim_id")  # fmt: skip
        if rehide:
            if h.spec.prize.mode != "first_finder" or list(t.claims) != [c]:
                raise AdminConflict(f"{t.id} cannot be hidden again: only a first-finder treasure whose one claim "
                                    f"is this one can", field="rehide")  # fmt: skip
            if h.ended is not None or not h.starts_at <= now < h.ends_at:
                raise AdminConflict(f"{t.id} cannot be hidden again: hunt {h.id!r} is {h.state_at(now)}",
                                    field="rehide")  # fmt: skip
            return {"rehide": True}
        return {}

    def apply_void(self, rec: Admin) -> None:
        cid = rec.target
        c = self.claims.get(cid)
        if c is None or cid in self.voided:
            return
        self.voided[cid] = rec
        h = self.hunts[c.hunt]
        t = h.treasures[c.n - 1]
        rehide = bool(rec.args.get("rehide")) and t.state == "claimed" and list(t.claims) == [c] and h.ended is None
        self.admin_event(rec, "claim.voided", {"claim_id": cid, "player": c.player, "treasure": t.id,
                                               "rehide": rehide})  # fmt: skip
        if rehide:
            self._rehide(rec, h, t)
        # Its grants: the claim's own (a first finder's loot, or a settled bounty's share) and those reissued.
        first = c.grant_id if c.grant_id is not None else grant_id_of(cid, "pool") if t.settled is not None else None
        offset = 2
        for gid in ([first] if first is not None else []) + self.reissued.get(cid, []):
            g = self.grants.get(gid)
            if g is not None and g.undone is None:
                self._take_back(rec, g, offset)
                offset += 1
        self._recount(h, c, rec.at)

    def _rehide(self, rec: Admin, h: Hunt, t: Treasure) -> None:
        """Hide `t` again: findable, hinted and fenced as before its claim (the inverse of `Engine._retire`)."""
        t.state = "hidden"
        t.claims = ()
        t.seq = rec.seq
        h.left += 1
        h.unretire(t)
        self._live(h.world).add([t.pos])
        self._forget_tiles(h)  # they left `t` out
        prox = self.proximity.get(h.world)
        if prox is not None and h.started is not None:
            prox.add(t.id, h.id, t.pos, h.spec.proximity.radius)
        self.admin_event(rec, "treasure.rehidden", {"treasure": t.id, "tier": t.tier}, 1)

    def _take_back(self, rec: Admin, g: Grant, offset: int) -> None:
        """Cancel `g` (pending) or revoke it (acked: the plugin takes the items back)."""
        g.undone = rec
        data = {"grant_id": g.grant_id, "player": g.player, "claim_id": g.claim_id,
                "items": lootmod.item_wire(g.items)}  # fmt: skip
        if g.ack is None:
            grants = self.pending.get(g.player)
            if grants is not None:
                grants.pop(g.grant_id, None)
                if not grants:
                    del self.pending[g.player]
        typ = "grant.revoked" if g.ack is not None else "grant.cancelled"
        if offset < 4:  # `ids.ADMIN_SPAN`: the record's own ids; a claim reissued many times takes fresh ones
            self.admin_event(rec, typ, data, offset)
        else:
            self.emit(typ, rec.hunt, rec.at, {**data, "by": rec.label, "reason": rec.reason})

    def _recount(self, h: Hunt, c: Claimed, at: float) -> None:
        """The boards of `h` without the voided claim: the player's other finds counted again."""
        finds: list[Find] = []
        for other in self.hunts.values():
            mine = self.claimed.get((other.id, c.player))
            if not mine or not set(other.spec.leaderboards) & set(h.spec.leaderboards):
                continue
            for i in mine:
                t = other.treasures[i]
                for k in t.claims:
                    if k.player != c.player or k.claim_id in self.voided:
                        continue
                    if k.share is not None:
                        value = sum(item.value for item in k.items)
                        finds.append(Find(other.spec.leaderboards, other.spec.tags, value, k.at - other.starts_at,
                                          k.at))  # fmt: skip
                    elif t.settled is not None:
                        amount = t.settled.amounts[list(t.claims).index(k)]
                        finds.append(Find(other.spec.leaderboards, other.spec.tags, amount,
                                          k.at - other.starts_at, t.settled.at))  # fmt: skip
        finds.sort(key=lambda f: f.at)
        self.boards.recount(h.spec.leaderboards, h.spec.tags, c.player, finds, at)

    # ---- grants ------------------------------------------------------------------------------------
    def locate_grant(self, req: Request) -> tuple[str, str]:
        """The grant's hunt (its claim's) and player."""
        g = self.grants.get(req.target)
        if g is None:
            raise GrantNotFound(f"no grant {req.target!r}", field="grant_id")
        return self.claims[g.claim_id].hunt, g.player

    def check_cancel(self, req: Request, now: float) -> dict[str, Any]:
        g = self.grants[req.target]
        if g.undone is not None:
            raise GrantCancelled(f"grant {g.grant_id!r} is {g.status} already", field="grant_id")
        if g.ack is not None:
            raise GrantAcked(f"grant {g.grant_id!r} was delivered: only a pending grant can be cancelled",
                             field="grant_id")  # fmt: skip
        return {}

    def apply_cancel(self, rec: Admin) -> None:
        g = self.grants.get(rec.target)
        if g is None or g.undone is not None or g.ack is not None:
            return  # acked first (another node): the cancel came too late
        self._take_back(rec, g, 0)

    def check_reissue(self, req: Request, now: float) -> dict[str, Any]:
        g = self.grants[req.target]
        if g.claim_id in self.voided:
            raise ClaimVoided(f"the claim of grant {g.grant_id!r} is voided", field="grant_id")
        n = 1
        while f"{g.grant_id}.r{n}" in self.grants:
            n += 1
        if n > 1:  # one live payout per grant: a second reissue while the first is undelivered would pay twice
            last = self.grants[f"{g.grant_id}.r{n - 1}"]
            if last.ack is None and last.undone is None:
                raise AdminConflict(f"grant {g.grant_id!r} was reissued as {last.grant_id!r}, which is still pending: "
                                    "reissue or cancel that one", field="grant_id")  # fmt: skip
        return {"grant_id": f"{g.grant_id}.r{n}"}

    def apply_reissue(self, rec: Admin) -> None:
        new = rec.args.get("grant_id")
        old = self.grants.get(rec.target)
        if not isinstance(new, str) or old is None or new in self.grants or old.claim_id in self.voided:
            return
        g = Grant(new, old.player, old.claim_id, old.items)
        self._add_grant(g)
        self.reissued.setdefault(old.claim_id, []).append(new)
        self.admin_event(
            rec,
            "grant.reissued",
            {
                "grant_id": new,
                "replaces": old.grant_id,
                "player": g.player,
                "claim_id": g.claim_id,
                "items": lootmod.item_wire(g.items),
            },
        )
        if old.ack is None and old.undone is None:
            self._take_back(rec, old, 1)

    # ---- hunts -------------------------------------------------------------------------------------
    def _live_hunt(self, req: Request, now: float) -> Hunt:
        h = self._hunt(req.hunt)
        if h.ended is not None or now >= h.ends_at:
            raise HuntNotActive(f"hunt {h.id!r} has ended", field="hunt")
        return h

    def check_end(self, req: Request, now: float) -> dict[str, Any]:
        if self._hunt(req.hunt).ended is not None:
            raise AdminConflict(f"hunt {req.hunt!r} has ended already", field="hunt")
        return {}

    def apply_end(self, rec: Admin) -> None:
        pass  # the `HuntEnded` record decided with it ends the hunt; this one says who asked and why

    def check_extend(self, req: Request, now: float) -> dict[str, Any]:
        args = req.args or {}
        h = self._live_hunt(req, now)
        if ("by" in args) == ("ends_at" in args):
            raise ValidationError("give either `by` (a duration, 30m) or `ends_at` (RFC 3339)", field="by")
        if "by" in args:
            by = args["by"]
            if not isinstance(by, str):
                raise ValidationError("by must be a duration such as 30m or 1h", field="by")
            end = h.ends_at + parse_duration(by, "by")
            field = "by"
        else:
            text = args["ends_at"]
            try:
                when = datetime.fromisoformat(text.replace("Z", "+00:00")) if isinstance(text, str) else None
            except ValueError:
                when = None
            if when is None or when.tzinfo is None:
                raise ValidationError("ends_at must be an RFC 3339 time with a zone", field="ends_at")
            end = when.timestamp()
            field = "ends_at"
        if end <= h.ends_at:  # the text as given: a time before year 1 has no RFC 3339 form
            raise ValidationError(f"the new end ({args[field]}) is not later than the current one "
                                  f"{rfc3339(h.ends_at)}", field=field)  # fmt: skip
        if end - now > 366 * 86400:
            raise ValidationError("a hunt may be extended up to a year from now", field=field)
        return {**args, "until": end}

    def apply_extend(self, rec: Admin) -> None:
        h = self.hunts.get(rec.hunt)
        end = rec.args.get("until")
        if h is None or h.ended is not None or not isinstance(end, (int, float)) or end <= h.ends_at:
            return
        was = h.ends_at
        h.ends_at = float(end)
        # The END timer queued for `was` is stale now: `Engine.tick` drops an END that is not `ends_at`.
        heapq.heappush(self.timers, (h.ends_at, TimerKind.END, h.id, 0))
        self.admin_event(rec, "hunt.extended", {"ends_at": rfc3339(h.ends_at), "was": rfc3339(was)})

    def check_pause(self, req: Request, now: float) -> dict[str, Any]:
        h = self._live_hunt(req, now)
        if h.paused is not None:
            raise AdminConflict(f"hunt {h.id!r} is paused already", field="hunt")
        return {}

    def apply_pause(self, rec: Admin) -> None:
        h = self.hunts.get(rec.hunt)
        if h is None or h.paused is not None or h.ended is not None:
            return
        h.paused = rec
        self.admin_event(rec, "hunt.paused", {})

    def check_resume(self, req: Request, now: float) -> dict[str, Any]:
        h = self._live_hunt(req, now)  # a hunt that ended while paused stays as it ended
        if h.paused is None:
            raise AdminConflict(f"hunt {h.id!r} is not paused", field="hunt")
        return {}

    def apply_resume(self, rec: Admin) -> None:
        h = self.hunts.get(rec.hunt)
        if h is None or h.paused is None:
            return
        h.paused = None
        self.admin_event(rec, "hunt.resumed", {})

    def check_rename(self, req: Request, now: float) -> dict[str, Any]:
        args = req.args or {}
        h = self._hunt(req.hunt)
        name = args.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            raise ValidationError(f"name must be 1-{MAX_NAME} characters", field="name")
        if name == h.name:
            raise AdminConflict(f"hunt {h.id!r} is named {name!r} already", field="name")
        return {"name": name}

    def apply_rename(self, rec: Admin) -> None:
        h = self.hunts.get(rec.hunt)
        name = rec.args.get("name")
        if h is None or not isinstance(name, str):
            return
        was, h.name = h.name, name
        self.admin_event(rec, "hunt.renamed", {"name": name, "was": was})

    def check_archive(self, req: Request, now: float) -> dict[str, Any]:
        h = self._hunt(req.hunt)
        if h.state_at(now) != "ended":
            raise HuntNotEnded(f"hunt {h.id!r} is {h.state_at(now)}: end it before deleting it", field="hunt")
        if h.archived is not None:
            raise AdminConflict(f"hunt {h.id!r} is archived already", field="hunt")
        return {}

    def apply_archive(self, rec: Admin) -> None:
        h = self.hunts.get(rec.hunt)
        if h is None or h.archived is not None:
            return
        h.archived = rec
        self.admin_event(rec, "hunt.archived", {})

    # ---- players -----------------------------------------------------------------------------------
    def check_clear_flags(self, req: Request, now: float) -> dict[str, Any]:
        return {}

    def apply_clear_flags(self, rec: Admin) -> None:
        p = self.players.get(rec.player)
        if p is not None:
            p.flags = 0
        self.admin_event(rec, "player.flags_cleared", {"player": rec.player})
