"""The operator's routes: actions during a live event, each journaled and audited, and the audit log.

Every action takes a JSON body with a required `reason` (a DELETE may give it as `?reason=`
instead) and answers with its audit entry once the action is durable. The key that asked is
recorded by its label. The actions themselves are decided in the core (`cairn/core/admin.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from cairn.core import admin, views
from cairn.core.errors import InvalidBody
from cairn.core.spec import query_int
from cairn.net.api import Api, encode, player_param
from cairn.net.request import Request

if TYPE_CHECKING:
    from cairn.net.router import Router

ADMIN = "admin"
GAME = "game"
MAX_PAGE = 500


class AdminRoutes:
    """The operator's routes, on the API's runtime and keys."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.rt = api.rt

    def action(self, req: Request, action: str, hunt: str = "", player: str = "", target: str = "") -> Any:
        """Run an operator's action asked by `req`: the body's `reason`, and its other fields as the action's args."""
        self.api.auth(req, ADMIN)
        body = body_of(req)
        reason = body.pop("reason", None)
        label = self.api.keys.label_of(req.auth())
        ask = admin.Request(action, hunt, player, target, label, reason, body)
        return self.api._later(self.rt.admin(ask), 200)

    # ---- players ------------------------------------------------------------------------------------
    def bar(self, req: Request) -> Any:
        return self.action(req, "player.bar", player=player_param(req))

    def unbar(self, req: Request) -> Any:
        return self.action(req, "player.unbar", player=player_param(req))

    def clear_flags(self, req: Request) -> Any:
        return self.action(req, "player.clear_flags", player=player_param(req))

    # ---- claims and grants --------------------------------------------------------------------------
    def void(self, req: Request) -> Any:
        return self.action(req, "claim.void", target=req.params["claim_id"])

    def claim(self, req: Request) -> bytes:
        """`GET /v1/claims/{claim_id}`: one claim, `voided: true` once an operator voided it."""
        self.api.auth(req, ADMIN)
        return encode(views.claim(self.rt.eng, req.params["claim_id"]))

    def grant(self, req: Request) -> bytes:
        """`GET /v1/grants/{grant_id}`: one grant, with its status (pending, acked, cancelled, revoked)."""
        self.api.auth(req, GAME)
        return encode(views.grant(self.rt.eng, req.params["grant_id"]))

    def cancel_grant(self, req: Request) -> Any:
        return self.action(req, "grant.cancel", target=req.params["grant_id"])

    def reissue_grant(self, req: Request) -> Any:
        return self.action(req, "grant.reissue", target=req.params["grant_id"])

    # ---- hunts --------------------------------------------------------------------------------------
    def end_hunt(self, req: Request) -> Any:
        """`POST /v1/hunts/{hunt}/end` (SPEC: idempotent, no body needed): audited as `hunt.end`, with the
        body's `reason` or "not given"; ending an ended hunt changes nothing and is not audited again."""
        self.api.auth(req, ADMIN)
        body = body_of(req)
        reason = body.pop("reason", None)
        if reason is None:
            reason = "not given"
        label = self.api.keys.label_of(req.auth())
        ask = admin.Request("hunt.end", req.params["hunt"], "", "", label, reason, body)
        return self.api._later(self.rt.end_hunt(req.params["hunt"], ask), 200)

    def extend(self, req: Request) -> Any:
        return self.action(req, "hunt.extend", hunt=req.params["hunt"])

    def pause(self, req: Request) -> Any:
        return self.action(req, "hunt.pause", hunt=req.params["hunt"])

    def resume(self, req: Request) -> Any:
        return self.action(req, "hunt.resume", hunt=req.params["hunt"])

    def rename(self, req: Request) -> Any:
        return self.action(req, "hunt.rename", hunt=req.params["hunt"])

    def delete_hunt(self, req: Request) -> Any:
        return self.action(req, "hunt.delete", hunt=req.params["hunt"])

    # ---- the audit log ------------------------------------------------------------------------------
    def audit(self, req: Request) -> bytes:
        """`GET /v1/audit`: operator actions, newest first, `limit` a page, from `cursor` on."""
        self.api.auth(req, ADMIN)
        q = req.query
        limit = query_int(q, "limit", 100, 1, MAX_PAGE)
        before = query_int(q, "cursor", 0, 1, 2**63) if q.get("cursor") else None
        entries, nxt = views.audit(self.rt.eng, before, limit, q.get("action", ""), q.get("hunt", ""),
                                   q.get("player", ""))  # fmt: skip
        return encode({"entries": entries, "next_cursor": None if nxt is None else str(nxt)})

    def routes(self, router: Router) -> None:
        m = self.api.metrics.timed
        router.add("GET", "/v1/audit", m("audit", self.api.durable_read(self.audit)))
        router.add("POST", "/v1/players/{player}/bar", m("bar_player", self.bar))
        router.add("DELETE", "/v1/players/{player}/bar", m("unbar_player", self.unbar))
        # undoing and adjusting
        router.add("POST", "/v1/players/{player}/flags/clear", m("clear_flags", self.clear_flags))
        router.add("GET", "/v1/claims/{claim_id}", m("claim", self.api.durable_read(self.claim)))
        router.add("POST", "/v1/claims/{claim_id}/void", m("void_claim", self.void))
        router.add("GET", "/v1/grants/{grant_id}", m("grant", self.api.durable_read(self.grant)))
        router.add("POST", "/v1/grants/{grant_id}/cancel", m("cancel_grant", self.cancel_grant))
        router.add("POST", "/v1/grants/{grant_id}/reissue", m("reissue_grant", self.reissue_grant))
        router.add("POST", "/v1/hunts/{hunt}/end", m("end_hunt", self.end_hunt))
        router.add("POST", "/v1/hunts/{hunt}/extend", m("extend_hunt", self.extend))
        router.add("POST", "/v1/hunts/{hunt}/pause", m("pause_hunt", self.pause))
        router.add("POST", "/v1/hunts/{hunt}/resume", m("resume_hunt", self.resume))
        router.add("PATCH", "/v1/hunts/{hunt}", m("rename_hunt", self.rename))
        router.add("DELETE", "/v1/hunts/{hunt}", m("delete_hunt", self.delete_hunt))


def body_of(req: Request) -> dict[str, Any]:
    """An action's JSON object body (none: `{}`), with `?reason=` when the body gives none."""
    body: Any = {}
    if req.body.strip():
        try:
            body = msgspec.json.decode(req.body)
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as e:
            raise InvalidBody(f"body is not valid JSON: {e}") from None
        if not isinstance(body, dict):
            raise InvalidBody("the body must be a JSON object")
    if "reason" not in body and "reason" in req.query:
        body["reason"] = req.query["reason"]
    return body

