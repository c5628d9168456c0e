"""The webhook routes: targets added, listed, removed and resumed at runtime, as operator actions.

Each change is an `Admin` record (`webhook.add`, `webhook.remove`, `webhook.resume`, hunt ""):
journaled, audited (without the secret) and applied on every node. Delivery is `cairn/net/delivery.py`.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from cairn.core import admin, views
from cairn.core.errors import AdminConflict, NotFound, ValidationError
from cairn.core.spec import rfc3339
from cairn.net.admin import ADMIN, body_of
from cairn.net.api import Api, encode
from cairn.net.request import Request

if TYPE_CHECKING:
    from cairn.net.delivery import Deliverer
    from cairn.net.router import Router

ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


class WebhookRoutes:
    def __init__(self, api: Api, deliverer: Deliverer | None = None) -> None:
        self.api = api
        self.rt = api.rt
        self.deliverer = deliverer

    def _ask(self, req: Request, action: str, target: str, body: dict[str, Any]) -> admin.Request:
        reason = body.pop("reason", None)
        return admin.Request(action, "", "", target, self.api.keys.label_of(req.auth()), reason, body)

    def add(self, req: Request) -> Any:
        """`POST /v1/webhooks`: a new target; the reply shows its secret, this once."""
        self.api.auth(req, ADMIN)
        body = body_of(req)
        cap = self.rt.cfg.webhooks.max_targets
        if len(views.webhook_targets(self.rt.eng)) >= cap:
            raise AdminConflict(f"there are {cap} webhook targets already (webhooks.max_targets)")
        if body.get("secret") is None:
            body["secret"] = "whsec_" + secrets.token_hex(24)
        wid = "wh_" + secrets.token_hex(8)
        return self.api._later(self._added(self._ask(req, "webhook.add", wid, body)), 201)

    async def _added(self, ask: admin.Request) -> dict[str, Any]:
        await self.rt.admin(ask)
        t = views.webhook_targets(self.rt.eng).get(ask.target)
        if t is None:  # removed at once by another node
            raise NotFound(f"no webhook {ask.target!r}", field="id")
        return {"id": t.id, "url": t.url, "events": list(t.events), "format": t.format, "secret": t.secret}

    def list(self, req: Request) -> bytes:
        """`GET /v1/webhooks`: every target and its delivery state, never its secret."""
        self.api.auth(req, ADMIN)
        out = []
        for t in sorted(views.webhook_targets(self.rt.eng).values(), key=lambda t: t.since):
            state = self.deliverer.view(t.id) if self.deliverer is not None else {}
            if state.get("last_success_at") is not None:
                state["last_success_at"] = rfc3339(state["last_success_at"])
            out.append({"id": t.id, "url": t.url, "events": list(t.events), "format": t.format, **state})
        return encode({"webhooks": out})

    def remove(self, req: Request) -> Any:
        self.api.auth(req, ADMIN)
        ask = self._ask(req, "webhook.remove", webhook_param(req), body_of(req))
        return self.api._later(self.rt.admin(ask), 200)

    def resume(self, req: Request) -> Any:
        self.api.auth(req, ADMIN)
        ask = self._ask(req, "webhook.resume", webhook_param(req), body_of(req))
        return self.api._later(self.rt.admin(ask), 200)

    def routes(self, router: Router) -> None:
        m = self.api.metrics.timed
        router.add("POST", "/v1/webhooks", m("webhook_add", self.add))
        router.add("GET", "/v1/webhooks", m("webhooks", self.api.durable_read(self.list)))
        router.add("DELETE", "/v1/webhooks/{webhook}", m("webhook_remove", self.remove))
        router.add("POST", "/v1/webhooks/{webhook}/resume", m("webhook_resume", self.resume))


def webhook_param(req: Request) -> str:
    wid: str = req.params["webhook"]
    if not 1 <= len(wid) <= 64 or not set(wid) <= ID_CHARS:
        raise ValidationError("a webhook id is 1-64 characters of [a-z0-9_]", field="webhook")
    return wid
