"""The operator's routes on API keys, and how a revoked or expired key loses what it holds.

`GET /v1/keys` lists every key (static and runtime) without secrets; `POST /v1/keys`,
`DELETE /v1/keys/{id}` and `POST /v1/keys/{id}/rotate` are operator actions (`cairn/core/keys.py`),
so every node applies them. The server makes a new key's secret here, shows it once, and journals
only its SHA-256.

When a `key.revoked` or `key.rotated` event is applied (on any node, whichever node acted), when a
rotation's overlap ends (a timer, off the hot path), and every `RECHECK` seconds (so that `last_used`
stays fresh), every cached verification is dropped and each
open WebSocket session (closed with 4001) and SSE stream (ended with `event: revoked`) whose key no
longer verifies is cut off.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from typing import TYPE_CHECKING, Any

from cairn.core import admin
from cairn.core.errors import CairnError, LastAdminKey
from cairn.core.events import Event
from cairn.core.spec import only_fields, rfc3339
from cairn.net.admin import ADMIN, body_of
from cairn.net.api import Api, encode
from cairn.net.request import Request

if TYPE_CHECKING:
    from cairn.net.router import Router
    from cairn.net.session import Sessions

#: Seconds between drops of the verification cache when no key changes: each key in use is checked
#: again, so `last_used` is at most this old.
RECHECK = 60.0
REVOKED_CLOSE = 4001  # the WebSocket close code of a session whose key was revoked or expired
_CHANGES = frozenset({"key.revoked", "key.rotated"})


def new_secret(scope: str) -> tuple[str, str, str]:
    """A new key: its public id, its secret (`ck_<scope>_<id>_<random>`), and the secret's SHA-256."""
    key_id = "k" + secrets.token_hex(5)
    secret = f"ck_{scope}_{key_id}_{secrets.token_urlsafe(24)}"
    return key_id, secret, hashlib.sha256(secret.encode()).hexdigest()


class KeyRoutes:
    """The key routes, and the watch that cuts off what a revoked or expired key holds."""

    def __init__(self, api: Api, sessions: Sessions) -> None:
        self.api = api
        self.rt = api.rt
        self.keys = api.keys
        self.sessions = sessions
        self._timer: asyncio.TimerHandle | None = None
        self.rt.listeners.append(self.on_events)
        self.keys.expire()
        self._schedule()

    # ---- the routes ---------------------------------------------------------------------------------
    def list(self, req: Request) -> bytes:
        """`GET /v1/keys`: every key, static and runtime, with no secret and no hash."""
        self.api.auth(req, ADMIN)
        ring, now, used = self.keys.ring, self.keys.clock(), self.keys.last_used
        static = self.keys.static()
        out = []
        for key_id, scope in static.items():
            key = ring.find(key_id, {key_id: scope})
            assert key is not None
            out.append(self._view(key, "env" if key_id.startswith("env-") else "file", now, used))
        out += [self._view(k, "runtime", now, used) for k in ring.keys.values() if not k.static]
        return encode({"keys": out})

    @staticmethod
    def _view(key: Any, origin: str, now: float, used: dict[str, float]) -> dict[str, Any]:
        last = used.get(key.id)
        return {
            "id": key.id, "label": key.label, "scope": key.scope, "origin": origin,
            "created": rfc3339(key.created) if key.created else None,
            "last_used": rfc3339(last) if last is not None else None,
            "expires_at": rfc3339(key.expires_at) if key.expires_at is not None else None,
            "revoked": key.revoked is not None,
            "revoked_at": rfc3339(key.revoked) if key.revoked is not None else None,
            "active": key.active(now),
        }  # fmt: skip

    async def create(self, req: Request) -> Any:
        """`POST /v1/keys`: a new key; its secret is in this reply only."""
        self.api.auth(req, ADMIN)
        body = body_of(req)
        scope = body.get("scope")
        key_id, secret, digest = new_secret(scope if scope in ("game", "admin") else "x")
        entry = await self._act(req, body, "key.create", "", {"id": key_id, "hash": digest}, ("scope", "label"))
        args = entry["args"]
        return 201, encode({"id": key_id, "label": args["label"], "scope": args["scope"], "created": entry["at"],
                            "secret": secret, "audit_id": entry["id"]})  # fmt: skip

    async def revoke(self, req: Request) -> Any:
        """`DELETE /v1/keys/{id}`: the key is refused on every node; its audit entry."""
        self.api.auth(req, ADMIN)
        entry = await self._act(req, body_of(req), "key.revoke", req.params["id"], {}, ())
        key = self.keys.ring.find(req.params["id"], self.keys.static())
        if key is not None and key.revoked is None:  # another node revoked the other admin key meanwhile
            raise LastAdminKey("this is the last active admin key: create another before revoking it", field="id")
        return encode(entry)

    async def rotate(self, req: Request) -> Any:
        """`POST /v1/keys/{id}/rotate`: a successor (secret shown once); the old key works for `overlap`."""
        self.api.auth(req, ADMIN)
        body = body_of(req)
        old = self.keys.ring.find(req.params["id"], self.keys.static())
        key_id, secret, digest = new_secret(old.scope if old is not None else "x")
        entry = await self._act(req, body, "key.rotate", req.params["id"], {"id": key_id, "hash": digest},
                                ("overlap",))
        args = entry["args"]
        ring_old = self.keys.ring.keys.get(req.params["id"])
        ends = ring_old.expires_at if ring_old is not None else None
        return 201, encode({"id": key_id, "label": args["label"], "scope": args["scope"], "created": entry["at"],
                            "secret": secret, "replaces": req.params["id"],
                            "replaced_expires_at": rfc3339(ends) if ends is not None else None,
                            "audit_id": entry["id"]})  # fmt: skip

    async def _act(
        self, req: Request, body: dict[str, Any], action: str, target: str, made: dict[str, Any], takes: tuple[str, ...]
    ) -> Any:
        reason = body.pop("reason", None)
        args = {**only_fields(body, takes), **made, "static": self.keys.static()}  # `made` is never the client's
        ask = admin.Request(action, "", "", target, self.keys.label_of(req.auth()), reason, args)
        return await self.rt.admin(ask)

    def routes(self, router: Router) -> None:
        m = self.api.metrics.timed
        router.add("GET", "/v1/keys", m("list_keys", self.api.durable_read(self.list)))
        router.add("POST", "/v1/keys", m("create_key", self.create))
        router.add("DELETE", "/v1/keys/{id}", m("revoke_key", self.revoke))
        router.add("POST", "/v1/keys/{id}/rotate", m("rotate_key", self.rotate))

    # ---- the watch ------------------------------------------------------------------------------------
    def on_events(self, events: list[Event]) -> None:
        """A listener of `Runtime.publish`: a key revoked or rotated (on any node) is acted on here."""
        for ev in events:
            if ev.type in _CHANGES:
                self.recheck()
                return

    def recheck(self) -> None:
        """Drop cached verifications and cut off every stream whose key no longer verifies."""
        keys = self.keys
        keys.expire()
        good: dict[bytes, bool] = {}

        def verifies(header: bytes | None) -> bool:
            if not header:
                return True  # not authenticated yet: it holds nothing
            ok = good.get(header)
            if ok is None:
                try:
                    keys.identify(header)
                    ok = True
                except CairnError:
                    ok = False
                good[header] = ok
            return ok

        for session in list(self.sessions.open):
            if not verifies(session.key):
                session.scope = None
                session.ws.close(REVOKED_CLOSE, "API key revoked or expired")
        hub = self.api.hub
        for subs in list(hub.by_hunt.values()):
            for sub in list(subs):
                if not verifies(b"Bearer " + sub.owner if sub.owner else None):
                    hub.end(sub)
        self._schedule()

    def _schedule(self) -> None:
        """A timer for the end of the next rotation's overlap, or `RECHECK` seconds if sooner."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no server running (a test building the routes)
        now, nxt = self.keys.clock(), self.keys.next_expiry
        wait = RECHECK if nxt is None else min(RECHECK, max(0.0, nxt - now) + 0.01)
        self._timer = loop.call_later(wait, self.recheck)
