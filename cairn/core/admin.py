"""Operator actions: each is decided into an `Admin` record, applied like every record, and audited.

`Operator` is a base class of `Engine`: the actions' rules, on the engine's state. An action is a
pair of its methods in `ACTIONS`, by name:

- `check(request, now)` decides: it reads the state, raises the error that refuses the action (an
  unknown claim, a claim voided already), and returns the action's `args`, as journaled. It changes
  nothing.
- `apply(record)` is the action's part of `Engine.apply`: it changes the state and emits the action's
  events, with the ids the record reserved (`rec.ev` on, `ids.ADMIN_SPAN` of them).

Every applied record is also kept in `Engine.audit`, the audit log, in apply order, whatever its
action; an action this version does not know is kept there and changes nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from cairn.core import keys
from cairn.core.errors import AdminConflict, BadRequest, NotFound, ReasonRequired
from cairn.core.ids import ADMIN_SPAN, Ids
from cairn.core.records import Admin
from cairn.core.spec import only_fields
from cairn.core.undo import Undo
from cairn.core.webhooks import FIELDS as WEBHOOK_FIELDS
from cairn.core.webhooks import Target, check_args

MAX_REASON = 500  # characters


class Request(NamedTuple):
    """What an operator asked: the action, what it acts on, and who and why."""

    action: str
    hunt: str = ""
    player: str = ""
    target: str = ""
    label: str = ""
    reason: Any = ""  # checked by `check_reason`: it comes from a client
    args: dict[str, Any] | None = None


def check_reason(reason: Any) -> str:
    """The reason, trimmed; refuse a missing, empty or over-long one."""
    if not isinstance(reason, str) or not reason.strip():
        raise ReasonRequired("every operator action needs a non-empty `reason` (it goes to the audit log)",
                             field="reason")  # fmt: skip
    text: str = reason.strip()
    if len(text) > MAX_REASON:
        raise BadRequest(f"reason is longer than {MAX_REASON} characters", field="reason")
    return text


class Operator(Undo):
    """The operator's actions on the engine's state (`Engine` derives from this class); the actions that
    undo and adjust (claims, grants, hunts) are in its base `Undo`."""

    __slots__ = ()
    # The engine's state the actions read and change (set by `Engine.__init__`).
    ids: Ids
    audit: list[Admin]  # every action applied, in order
    audited: set[int]  # their event ids: an action applied twice is applied once
    barred: dict[str, Admin]  # player -> the action that barred them from hunts
    webhooks: dict[str, Target]  # webhook id -> its target (`cairn/core/webhooks.py`)
    api_keys: keys.KeyRing  # the API keys made, revoked and rotated by actions (`cairn/core/keys.py`)

    def _emit(self, ev_id: int, typ: str, hunt: str, at: float, data: dict[str, Any]) -> None:
        raise NotImplementedError  # `Engine._emit`

    def admin(self, req: Request, now: float) -> tuple[Admin, int]:
        """Decide an operator's action: check it, and stamp its record with its reason.
        Returns the record and its seq (the caller's `Outcome`)."""
        action = ACTIONS.get(req.action)
        if action is None:
            raise NotFound(f"no operator action {req.action!r}", field="action")
        reason = check_reason(req.reason)
        only_fields(req.args, action.takes)
        if action.locate is not None:
            hunt, player = action.locate(self, req)
            req = req._replace(hunt=hunt, player=player)
        args = action.check(self, req, now)
        rec = self.ids.stamp(
            Admin(0, now, 0, req.action, req.hunt, req.player, req.target, req.label, reason, args), now
        )
        return rec, rec.seq

    def _apply_admin(self, rec: Admin) -> None:
        """`Engine.apply` of an operator's action: audit it, then apply its effect once."""
        if rec.ev in self.audited:
            return
        self.audited.add(rec.ev)
        self.audit.append(rec)
        action = ACTIONS.get(rec.action)
        if action is not None:  # else an action of a later version: audited, and nothing else
            action.apply(self, rec)
        ids = self.ids
        if rec.ev + ADMIN_SPAN - 1 > ids.event:
            ids.event = rec.ev + ADMIN_SPAN - 1

    def admin_event(self, rec: Admin, typ: str, data: dict[str, Any], offset: int = 0) -> None:
        """Emit one of an action's events: who asked and why, with `data`; `offset` picks the reserved id."""
        self._emit(rec.ev + offset, typ, rec.hunt, rec.at, {**data, "by": rec.label, "reason": rec.reason})

    # ---- players -----------------------------------------------------------------------------------
    def check_bar(self, req: Request, now: float) -> dict[str, Any]:
        if req.player in self.barred:
            raise AdminConflict(f"player {req.player!r} is barred already", field="player")
        return {}

    def apply_bar(self, rec: Admin) -> None:
        if rec.player in self.barred:  # two nodes barred them at once: the first bar stands
            return
        self.barred[rec.player] = rec
        self.admin_event(rec, "player.barred", {"player": rec.player})

    def check_unbar(self, req: Request, now: float) -> dict[str, Any]:
        if req.player not in self.barred:
            raise AdminConflict(f"player {req.player!r} is not barred", field="player")
        return {}

    def apply_unbar(self, rec: Admin) -> None:
        if self.barred.pop(rec.player, None) is not None:
            self.admin_event(rec, "player.unbarred", {"player": rec.player})

    # ---- webhooks (hunt "", target = the webhook's id) ----------------------------------------------
    def check_webhook_add(self, req: Request, now: float) -> dict[str, Any]:
        if not req.target or req.target in self.webhooks:
            raise AdminConflict(f"webhook {req.target!r} exists already", field="id")
        return check_args(req.args or {})

    def apply_webhook_add(self, rec: Admin) -> None:
        a = rec.args
        self.webhooks[rec.target] = Target(rec.target, str(a.get("url", "")), tuple(a.get("events", ())),
                                           str(a.get("format", "cairn")), str(a.get("secret", "")), rec.ev, 0)
        # Not the URL: the event stream is game-scoped, and a URL may carry a token (Discord's do).
        self.admin_event(rec, "webhook.added", {"webhook": rec.target})

    def _check_webhook(self, req: Request) -> None:
        if req.target not in self.webhooks:
            raise NotFound(f"no webhook {req.target!r}", field="id")

    def check_webhook_remove(self, req: Request, now: float) -> dict[str, Any]:
        self._check_webhook(req)
        return {}

    def apply_webhook_remove(self, rec: Admin) -> None:
        if self.webhooks.pop(rec.target, None) is not None:
            self.admin_event(rec, "webhook.removed", {"webhook": rec.target})

    def check_webhook_resume(self, req: Request, now: float) -> dict[str, Any]:
        self._check_webhook(req)
        return {}

    def apply_webhook_resume(self, rec: Admin) -> None:
        t = self.webhooks.get(rec.target)
        if t is not None:
            self.webhooks[rec.target] = t._replace(resumed=rec.ev)
            self.admin_event(rec, "webhook.resumed", {"webhook": rec.target})


class Action(NamedTuple):
    check: Callable[[Operator, Request, float], dict[str, Any]]
    apply: Callable[[Operator, Admin], None]
    # Fills in what the target belongs to (a claim's hunt and player), so that the record goes to its
    # hunt's stream, in order with the hunt's claims and acks.
    locate: Callable[[Operator, Request], tuple[str, str]] | None = None
    # The fields its args may have (its body less `reason`, and what the transport adds): any other is
    # refused with `unknown_field` before anything else is checked (SPEC: unknown fields are rejected).
    takes: tuple[str, ...] = ()


ACTIONS: dict[str, Action] = {
    "player.bar": Action(Operator.check_bar, Operator.apply_bar),
    "player.unbar": Action(Operator.check_unbar, Operator.apply_unbar),
    # undoing and adjusting (`cairn/core/undo.py`)
    "claim.void": Action(Operator.check_void, Operator.apply_void, Operator.locate_claim, ("rehide",)),
    "grant.cancel": Action(Operator.check_cancel, Operator.apply_cancel, Operator.locate_grant),
    "grant.reissue": Action(Operator.check_reissue, Operator.apply_reissue, Operator.locate_grant),
    "hunt.end": Action(Operator.check_end, Operator.apply_end),
    "hunt.extend": Action(Operator.check_extend, Operator.apply_extend, takes=("by", "ends_at")),
    "hunt.pause": Action(Operator.check_pause, Operator.apply_pause),
    "hunt.resume": Action(Operator.check_resume, Operator.apply_resume),
    "hunt.rename": Action(Operator.check_rename, Operator.apply_rename, takes=("name",)),
    "hunt.delete": Action(Operator.check_archive, Operator.apply_archive),
    "player.clear_flags": Action(Operator.check_clear_flags, Operator.apply_clear_flags),
    "webhook.add": Action(Operator.check_webhook_add, Operator.apply_webhook_add, takes=WEBHOOK_FIELDS),
    "webhook.remove": Action(Operator.check_webhook_remove, Operator.apply_webhook_remove),
    "webhook.resume": Action(Operator.check_webhook_resume, Operator.apply_webhook_resume),
    # API keys (`cairn/core/keys.py`)
    "key.create": Action(keys.check_create, keys.apply_create, takes=("scope", "label", *keys.MADE)),
    "key.revoke": Action(keys.check_revoke, keys.apply_revoke, takes=("static",)),
    "key.rotate": Action(keys.check_rotate, keys.apply_rotate, takes=("overlap", *keys.MADE)),
}
