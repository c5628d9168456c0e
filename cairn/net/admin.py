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
from cairn.net.api import Api, encode, int_param, player_param
from cairn.net.request import Request

if TYPE_CHECKING:
    from cairn.net.router import Router

ADMIN = "admin"
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

    # ---- the audit log ------------------------------------------------------------------------------
    def audit(self, req: Request) -> bytes:
        """`GET /v1/audit`: operator actions, newest first, `limit` a page, from `cursor` on."""
        self.api.auth(req, ADMIN)
        q = req.query
        limit = int_param(q, "limit", 100, 1, MAX_PAGE)
        before = int_param(q, "cursor", 0, 1, 2**63) if q.get("cursor") else None
        entries, nxt = views.audit(self.rt.eng, before, limit, q.get("action", ""), q.get("hunt", ""),
                                   q.get("player", ""))  # fmt: skip
        return encode({"entries": entries, "next_cursor": None if nxt is None else str(nxt)})

    def routes(self, router: Router) -> None:
        m = self.api.metrics.timed
        router.add("GET", "/v1/audit", m("audit", self.api.durable_read(self.audit)))
        router.add("POST", "/v1/players/{player}/bar", m("bar_player", self.bar))
        router.add("DELETE", "/v1/players/{player}/bar", m("unbar_player", self.unbar))


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

