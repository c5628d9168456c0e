"""`GET /v1/session`: the WebSocket session for game-server plugins.

Frames are JSON (text) or MessagePack (binary); a reply uses the format of its request.
- `{"id": 1, "op": "dig", "hunt": "h", ...}` → `{"id": 1, "result": {...}}` or `{"id": 1, "error": {...}}`
- `{"id": 2, "ops": [{"op": "dig", ...}, ...]}` → `{"id": 2, "results": [...]}` (one result per op)
- `{"id": 3, "op": "subscribe", "hunt": "h", "after": 0}` → pushed `{"event": {...}}` frames
- also `unsubscribe`, `grants` (`player`), `ack` (`grant_id`), `leave` (`player`), `auth` (`key`), `ping`.
Every op is decoded with the msgspec structs of `schemas` (`Op`, `SessionOp`): the same fields and rules
as the HTTP routes and `/v1/batch`.
Authentication: the upgrade request's `Authorization` header, or an `auth` op first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import msgspec

from cairn.core import views
from cairn.core.errors import CairnError, Unauthorized, ValidationError
from cairn.net import schemas
from cairn.net.api import Api, key_of, loose_positions, wire_error
from cairn.net.hub import follow
from cairn.net.router import Router
from cairn.net.websocket import ConnectionClosed

log = logging.getLogger("cairn.session")

_json = msgspec.json.Encoder()
_mp = msgspec.msgpack.Encoder()
_op_from = msgspec.convert
_HOT = frozenset({"dig", "hint", "positions"})  # the ops of `/v1/batch`, run by `Api.run_ops`


class Session:
    def __init__(self, api: Api, ws: Any, scope: str | None, key: bytes | None = None) -> None:
        self.api = api
        self.ws = ws
        self.scope = scope
        self.key = key  # the Authorization value that authenticated the session, for the key's quotas
        self.sub: Any = None
        self.pusher: asyncio.Task[None] | None = None

    async def send(self, obj: Any, binary: bool) -> None:
        await self.ws.send(_mp.encode(obj) if binary else _json.encode(obj).decode())

    async def run(self) -> None:
        try:
            while True:
                frame = await self.ws.receive()
                binary = isinstance(frame, bytes | bytearray)
                try:
                    msg = msgspec.msgpack.decode(frame) if binary else msgspec.json.decode(frame)
                except UnicodeDecodeError:
                    # RFC 6455 1007: the data is not consistent with its type, as for a text frame.
                    await self.ws.close(1007, "invalid UTF-8 in a string")
                    return
                except (msgspec.DecodeError, RecursionError) as e:
                    kind = "MessagePack" if binary else "JSON"
                    why = "nested too deeply" if isinstance(e, RecursionError) else str(e)
                    err = {"code": "invalid_body", "message": f"bad {kind}: {why}"}
                    await self.send({"id": None, "error": err}, binary)
                    continue
                reply = await self.handle(msg, binary)
                if reply is not None:
                    await self.send(reply, binary)
        finally:
            if self.pusher is not None:
                self.pusher.cancel()
            if self.sub is not None:
                self.api.hub.unsubscribe(self.sub)

    async def handle(self, msg: Any, binary: bool) -> dict[str, Any] | None:
        """One frame: ops are decoded with the structs of `schemas` (the same as HTTP and `/v1/batch`)."""
        if not isinstance(msg, dict):
            return {"id": None, "error": {"code": "invalid_body", "message": "a frame must be an object"}}
        rid = msg.pop("id", None)
        try:
            op = msg.get("op")
            if op != "auth" and self.scope is None:
                raise Unauthorized("authenticate first: send the Authorization header or an auth op")
            if "ops" in msg or op in _HOT:
                ops = [msg] if "ops" not in msg else _op_from(msg, schemas.BatchFrame).ops
                results, wait = self.api.run_ops(ops, _to_op, self.key)
                if wait > self.api.rt.store.durable_seq:
                    await self.api.rt.store.durable(wait)
                if "ops" in msg:
                    return {"id": rid, "results": results}
                res = results[0]
                if isinstance(res, dict) and "error" in res and len(res) == 1:
                    return {"id": rid, **res}
                return {"id": rid, "result": res}
            cmd = _op_from(msg, schemas.SessionOp)
            kind = type(cmd)
            if kind is schemas.AuthOp:
                try:
                    self.scope = self.api.keys.scope_of("Bearer " + cmd.key)
                except Unauthorized as e:
                    await self.refused(rid, e, binary)
                    return None
                self.key = ("Bearer " + cmd.key).encode("utf-8", "replace")
                return {"id": rid, "result": {"scope": self.scope}}
            if kind is schemas.SubscribeOp:
                return {"id": rid, "result": self.subscribe(cmd.hunt, cmd.after, binary)}
            if kind is schemas.UnsubscribeOp:
                self.unsubscribe()
                return {"id": rid, "result": {"subscribed": False}}
            if kind is schemas.GrantsOp:
                if self.api.fail_fast is not None:
                    self.api.fail_fast()
                grants = self.api.rt.eng.grants_of(cmd.player)
                waiter = self.api.rt.settled()  # only durable grants leave the process
                if waiter is not None:
                    await waiter
                return {"id": rid, "result": {"grants": grants}}
            if kind is schemas.AckOp:
                return {"id": rid, "result": await self.api.rt.ack(cmd.grant_id)}
            if kind is schemas.LeaveOp:
                self.api.rt.eng.leave(cmd.player)
                return {"id": rid, "result": {"player": cmd.player, "left": True}}
            return {"id": rid, "result": "pong"}
        except (CairnError, msgspec.ValidationError, RecursionError) as e:
            return {"id": rid, **wire_error(e).to_wire()}

    async def refused(self, rid: Any, err: Unauthorized, binary: bool = False) -> None:
        """Answer a refused key under the server's brake: later as failures mount, then closing."""
        delay, close = self.ws.auth_failed()
        if delay > 0:
            await asyncio.sleep(delay)
        await self.send({"id": rid, **err.to_wire()}, binary)
        if close:
            await self.ws.close(4401, "too many failed authentications")
            raise ConnectionClosed(4401)

    def subscribe(self, hunt: str | None, after: int, binary: bool) -> dict[str, Any]:
        self.unsubscribe()
        self.sub = self.api.hub.subscribe(hunt, key_of(self.key))
        backlog, complete = views.events_after(self.api.rt.eng, after, hunt)
        self.pusher = asyncio.create_task(self._push(backlog, after, binary))
        return {"subscribed": True, "complete": complete}

    def unsubscribe(self) -> None:
        if self.pusher is not None:
            self.pusher.cancel()
            self.pusher = None
        if self.sub is not None:
            self.api.hub.unsubscribe(self.sub)
            self.sub = None

    async def _push(self, backlog: list[Any], after: int, binary: bool) -> None:
        """Send the subscription's events; when it was dropped (too far behind), say so and release it:
        the session stays open, and the client subscribes again with `after` set to `resume_after`."""
        sub = self.sub
        assert sub is not None
        last = after
        try:
            async with contextlib.aclosing(follow(sub, backlog, after, self.api.rt.settled())) as batches:
                del backlog
                async for batch in batches:
                    for e in batch:
                        await self.send({"event": e}, binary)
                        last = e.id
        except CairnError:
            return  # the journal failed: the process is stopping
        await self.send({"dropped": {"resume_after": last}}, binary)
        if self.sub is sub:  # its slot counts against the key's subscribers until released
            self.api.hub.unsubscribe(sub)
            self.sub = self.pusher = None


def _convert_op(raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ValidationError("an op must be an object")
    return _op_from(raw, schemas.Op)


_to_op = loose_positions(_convert_op, lambda raw: _op_from(raw, schemas.LoosePositionsOp))


class Sessions:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.open: set[Session] = set()  # to close those whose key is revoked (`cairn/net/keys.py`)

    async def __call__(self, ws: Any) -> None:
        scope = None
        header = ws.request.headers.get("authorization") if getattr(ws, "request", None) else None
        if header:
            try:
                scope = self.api.keys.scope_of(header)
            except CairnError:
                delay, _close = ws.auth_failed()
                await asyncio.sleep(delay)
                with contextlib.suppress(Exception):
                    await ws.close(4401, "unauthorized")
                return
        session = Session(self.api, ws, scope, header.encode("utf-8", "replace") if header else None)
        self.open.add(session)
        try:
            await session.run()
        finally:
            self.open.discard(session)

    def routes(self, router: Router) -> None:
        router.add_websocket("/v1/session", self)
