"""`GET /v1/session`: the WebSocket session for game-server plugins.

Frames are JSON (text) or MessagePack (binary); a reply uses the format of its request.
- `{"id": 1, "op": "dig", "hunt": "h", ...}` → `{"id": 1, "result": {...}}` or `{"id": 1, "error": {...}}`
- `{"id": 2, "ops": [{"op": "dig", ...}, ...]}` → `{"id": 2, "results": [...]}` (one result per op)
- `{"id": 3, "op": "subscribe", "hunt": "h", "after": 0}` → pushed `{"event": {...}}` frames
- also `unsubscribe`, `grants` (`player`), `ack` (`grant_id`), `auth` (`key`), `ping`.
Authentication: the upgrade request's `Authorization` header, or an `auth` op first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import msgspec

from cairn.core.errors import CairnError, Unauthorized, ValidationError
from cairn.net import schemas
from cairn.net.api import Api, loose_positions, wire_error
from cairn.net.http import Router
from cairn.net.websocket import ConnectionClosed

log = logging.getLogger("cairn.session")

_json = msgspec.json.Encoder()
_mp = msgspec.msgpack.Encoder()
_op_from = msgspec.convert
MAX_OPS = 1000


class Session:
    def __init__(self, api: Api, ws: Any, scope: str | None, owner: bytes = b"") -> None:
        self.api = api
        self.ws = ws
        self.scope = scope
        self.owner = owner  # the key, as per-key limits count it
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
        if not isinstance(msg, dict):
            return {"id": None, "error": {"code": "invalid_body", "message": "a frame must be an object"}}
        rid = msg.pop("id", None)
        try:
            op = msg.get("op")
            if op == "auth":
                key = str(msg.get("key", ""))
                try:
                    self.scope = self.api.keys.scope_of("Bearer " + key)
                except Unauthorized as e:
                    await self.refused(rid, e, binary)
                    return None
                self.owner = key.strip().encode("utf-8", "replace")
                return {"id": rid, "result": {"scope": self.scope}}
            if self.scope is None:
                raise Unauthorized("authenticate first: send the Authorization header or an auth op")
            if "ops" in msg:
                ops = msg["ops"]
                if not isinstance(ops, list) or len(ops) > MAX_OPS:
                    raise ValidationError(f"ops must be a list of at most {MAX_OPS} ops", field="ops")
                results, wait = self.api.run_ops(ops, _to_op)
                if wait > self.api.rt.store.journal.durable_seq:
                    await self.api.rt.store.durable(wait)
                return {"id": rid, "results": results}
            if op in ("dig", "hint", "positions"):
                results, wait = self.api.run_ops([msg], _to_op)
                if wait > self.api.rt.store.journal.durable_seq:
                    await self.api.rt.store.durable(wait)
                res = results[0]
                if isinstance(res, dict) and "error" in res and len(res) == 1:
                    return {"id": rid, **res}
                return {"id": rid, "result": res}
            if op == "subscribe":
                return {"id": rid, "result": self.subscribe(msg, binary)}
            if op == "unsubscribe":
                self.unsubscribe()
                return {"id": rid, "result": {"subscribed": False}}
            if op == "grants":
                player = msg.get("player")
                if not isinstance(player, str) or not player:
                    raise ValidationError("player must be a player id", field="player")
                grants = self.api.rt.eng.grants_of(player)
                waiter = self.api.rt.settled()  # only durable grants leave the process
                if waiter is not None:
                    await waiter
                return {"id": rid, "result": {"grants": grants}}
            if op == "ack":
                result = await self.api.rt.ack(str(msg.get("grant_id", "")))
                return {"id": rid, "result": result}
            if op == "ping":
                return {"id": rid, "result": "pong"}
            raise ValidationError(f"unknown op {op!r}", field="op")
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

    def subscribe(self, msg: dict[str, Any], binary: bool) -> dict[str, Any]:
        self.unsubscribe()
        hunt = msg.get("hunt") or None
        if hunt is not None and not isinstance(hunt, str):
            raise ValidationError("hunt must be a hunt id", field="hunt")
        after = msg.get("after") or 0
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise ValidationError("after must be an event id", field="after")
        self.sub = self.api.hub.subscribe(hunt, self.owner)
        backlog, complete = self.api.rt.eng.events.after(after, hunt)
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
        sub, last = self.sub, after
        waiter = self.api.rt.settled()  # the backlog may hold events of records not yet durable
        if waiter is not None:
            try:
                await waiter
            except CairnError:
                return  # the journal failed: the process is stopping
        for e in backlog:
            await self.send({"event": e}, binary)
            last = e.id
        while True:
            evs = await sub.get(15.0)
            for e in evs:
                if e.id > last:
                    await self.send({"event": e}, binary)
                    last = e.id
            if sub.dropped and not evs:
                await self.send({"dropped": {"resume_after": last}}, binary)
                return


def _convert_op(raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ValidationError("an op must be an object")
    return _op_from(raw, schemas.Op)


_to_op = loose_positions(_convert_op, lambda raw: _op_from(raw, schemas.LoosePositionsOp))


class Sessions:
    def __init__(self, api: Api) -> None:
        self.api = api

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
        owner = header.strip()[7:].strip().encode("utf-8", "replace") if header else b""
        await Session(self.api, ws, scope, owner).run()

    def routes(self, router: Router) -> None:
        router.add_websocket("/v1/session", self)
