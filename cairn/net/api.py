"""The HTTP API of SPEC.md, on the lean transport of `cairn.net` (`router.py`, `protocol.py`).

Each handler reads as args → operation → response. The hot routes (hint, dig, positions,
batch) are synchronous: they decode with msgspec, let the engine decide, and answer inside
the protocol callback; only a reply that must wait for the journal becomes a task.
Errors are mapped to the wire in one place, `on_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import logging
import math
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from cairn.app import Runtime
from cairn.core import ledger, views
from cairn.core.engine import MISSES, Outcome
from cairn.core.errors import (
    BadRequest,
    CairnError,
    Forbidden,
    InvalidBody,
    NotFound,
    StoreUnavailable,
    ValidationError,
)
from cairn.core.events import Event
from cairn.core.spec import convert_spec, query_int, validation_error
from cairn.net import export, schemas
from cairn.net.auth import Keys
from cairn.net.hub import Hub, follow
from cairn.net.metrics import BUCKETS, Metrics
from cairn.net.quota import DIG, HINT, NEW_PLAYER, KeyQuotas
from cairn.net.request import Request
from cairn.net.response import Response, Stream
from cairn.net.router import Router

log = logging.getLogger("cairn.api")

JSON = "application/json"
ADMIN, GAME = "admin", "game"
EXPORT_CHUNK = 1000  # claims per chunk of a hunt's export
_enc = msgspec.json.Encoder()
encode = _enc.encode


def _decoder(t: Any) -> Callable[[bytes], Any]:
    return msgspec.json.Decoder(t).decode


dec_dig = _decoder(schemas.DigRequest)
# The engine answers most digs with one of its shared `MISSES` outcomes (never mutated).
_MISS_REPLIES: dict[int, bytes] = {id(m): encode(m.result) for m in MISSES}
dec_hint = _decoder(schemas.HintRequest)
dec_positions = _decoder(schemas.PositionsRequest)
dec_batch = _decoder(schemas.RawBatch)
dec_batch_typed = _decoder(schemas.BatchRequest)
dec_op = _decoder(schemas.Op)
dec_positions_loose = _decoder(schemas.LoosePositions)
_to_update = msgspec.convert


def loose_positions(decode: Callable[[Any], Any], loose: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`decode`, or for a positions op whose updates do not all decode, `loose` (a `LoosePositionsOp`)."""

    def decode_op(raw: Any) -> Any:
        try:
            return decode(raw)
        except msgspec.ValidationError as e:
            try:
                return loose(raw)
            except (msgspec.ValidationError, msgspec.DecodeError):
                raise e from None

    return decode_op


dec_op_each = loose_positions(dec_op, _decoder(schemas.LoosePositionsOp))
dec_world = _decoder(schemas.WorldRequest)


def wire_error(exc: BaseException) -> CairnError:
    """Every failure a client can cause, as a CairnError with a stable code."""
    if isinstance(exc, CairnError):
        return exc
    if isinstance(exc, msgspec.ValidationError):
        return validation_error(exc, "request")
    if isinstance(exc, msgspec.DecodeError):
        return InvalidBody(f"body is not valid JSON: {exc}")
    if isinstance(exc, RecursionError):
        return InvalidBody("body is nested too deeply")
    if isinstance(exc, UnicodeDecodeError):
        # msgspec checks UTF-8 before the structure, and says so with this, not a DecodeError.
        return InvalidBody(f"body is not valid UTF-8: {exc.reason} at byte {exc.start}")
    return CairnError("internal error")


class Api:
    """Route handlers bound to one runtime."""

    def __init__(self, rt: Runtime, keys: Keys, hub: Hub, metrics: Metrics) -> None:
        self.rt = rt
        self.keys = keys
        self.hub = hub
        self.metrics = metrics
        self.clock = rt.clock
        self.store = rt.store
        self.fail_fast = rt.fail_fast
        self.verified_keys = keys.verified
        self.metrics_from = [ipaddress.ip_network(n, strict=False) for n in rt.cfg.server.metrics_from]
        lim = rt.cfg.limits
        self.quotas = KeyQuotas([(lim.key_dig_rate, lim.key_dig_burst), (lim.key_hint_rate, lim.key_hint_burst),
                                 (lim.new_players_rate, lim.new_players_burst)])  # fmt: skip
        # A dig or a hint, and its player if new, against the key's quotas: one call per request.
        self.charge_dig, self.charge_hint = self.quotas.charger(DIG), self.quotas.charger(HINT)
        self.ready = True
        self.openapi: bytes = b""
        self._world_locks: dict[str, Any] = {}  # world -> asyncio.Lock serialising its uploads
        self.upload_cap = rt.upload_cap

    # ---- plumbing ---------------------------------------------------------------------------------
    def on_error(self, exc: Exception) -> Response:
        self.rt.publish()  # a refused command may still have flagged a cheat
        err = wire_error(exc)
        if type(err) is CairnError:
            log.exception("internal error", exc_info=exc)
            return Response(500, b'{"error":{"code":"internal","message":"internal error"}}')
        body = err.to_wire()
        headers = None
        retry = err.extra.get("retry_after")
        if retry is not None:
            headers = [("Retry-After", str(max(1, int(float(str(retry)) + 0.999))))]
        elif isinstance(err, StoreUnavailable):
            headers = [("Retry-After", "1")]
        self.metrics.error(err.code)
        return Response(err.status, encode(body), JSON, headers)

    def reply(self, waiter: Awaitable[Any] | None, result: Any, status: int = 200) -> Any:
        """Answer now, or once the journal has made the records durable."""
        if waiter is None:
            return (status, encode(result)) if status != 200 else encode(result)
        return self._later(waiter, status)

    async def _later(self, waiter: Awaitable[Any], status: int) -> Any:
        result = await waiter
        return (status, encode(result)) if status != 200 else encode(result)

    def auth(self, req: Request, scope: str) -> str:
        return self.keys.require(req.auth(), scope)

    def durable_read(self, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        """`handler`, answering only once the state it read is durable (`Runtime.settled`): no read
        shows a claim, grant or ack that a failed commit could still lose."""
        rt = self.rt

        def read(req: Request) -> Any:
            result = handler(req)
            if inspect.isawaitable(result):
                return self._settle(result)
            waiter = rt.settled()
            return result if waiter is None else self._settle(result, waiter)

        return read

    async def _settle(self, result: Any, waiter: Awaitable[None] | None = None) -> Any:
        if waiter is None:
            result = await result
            waiter = self.rt.settled()
        if waiter is not None:
            await waiter
        return result

    # ---- probes, metrics, schema --------------------------------------------------------------------
    def healthz(self, req: Request) -> Any:
        if self.rt.failed.is_set():  # the process is stopping: a liveness probe may restart it sooner
            return Response(503, b'{"error":{"code":"journal_failed","message":"the journal failed; restarting"}}',
                            JSON)  # fmt: skip
        return b'{"status":"ok"}'

    def readyz(self, req: Request) -> Any:
        if self.rt.engine is None or not self.rt.store.ready():
            return Response(503, b'{"error":{"code":"not_ready","message":"store not reachable"}}', JSON,
                            [("Retry-After", "1")])  # fmt: skip
        return b'{"status":"ready"}'

    def metrics_text(self, req: Request) -> Response:
        try:
            addr = ipaddress.ip_address(req.client.split("%")[0]) if req.client else None
        except ValueError:
            addr = None
        if addr is None or not any(addr in net for net in self.metrics_from):
            raise Forbidden("metrics are served to the addresses in server.metrics_from only")
        text = self.metrics.render(self.rt, self.hub, self.keys.requests_by_label())
        return Response(200, text, "text/plain; version=0.0.4")

    def openapi_json(self, req: Request) -> bytes:
        return self.openapi

    # ---- hunts -------------------------------------------------------------------------------------
    async def create_hunt(self, req: Request) -> Any:
        self.auth(req, ADMIN)
        ctype = req.headers.get("content-type", "")
        try:
            raw = msgspec.toml.decode(req.body) if "toml" in ctype else msgspec.json.decode(req.body)
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as e:
            raise InvalidBody(f"body is not valid {'TOML' if 'toml' in ctype else 'JSON'}: {e}") from None
        spec = convert_spec(raw)
        if "@" in spec.id:  # only the scheduler names a hunt so
            raise ValidationError("`<id>@<start>` is the id of a recurring hunt's instance; a hunt created here "
                                  "has an id of 1-48 characters of [a-z0-9-]", field="id")  # fmt: skip
        view = await self.rt.create_hunt(spec)
        return (201, encode(view))

    def list_hunts(self, req: Request) -> bytes:
        self.auth(req, GAME)
        archived = req.query.get("archived", "") in ("1", "true", "yes")
        return encode({"hunts": self.rt.eng.list_hunts(self.clock(), archived)})

    def get_hunt(self, req: Request) -> bytes:
        reveal = req.query.get("reveal", "") in ("1", "true", "yes")
        self.auth(req, ADMIN if reveal else GAME)
        return encode(self.rt.eng.hunt_view(req.params["hunt"], self.clock(), reveal=reveal))

    def export_hunt(self, req: Request) -> Any:
        """Every claim of a hunt with its grant, as CSV or NDJSON, streamed a chunk at a time."""
        self.auth(req, ADMIN)
        fmt = req.query.get("format") or "csv"
        if fmt not in export.FORMATS:
            raise BadRequest(f"format must be one of {', '.join(export.FORMATS)}", field="format")
        if self.fail_fast is not None:
            self.fail_fast()
        hunt = req.params["hunt"]
        rows, pos = views.hunt_export(self.rt.eng, hunt, (0, 0), EXPORT_CHUNK)  # no such hunt: 404, not a stream
        ctype = export.FORMATS[fmt][0]
        headers = [("Content-Disposition", f'attachment; filename="{hunt}.{fmt}"')]  # an existing hunt's id
        return Stream(self._export(hunt, fmt, rows, pos), content_type=ctype, headers=headers)

    async def _export(self, hunt: str, fmt: str, rows: list[Any], pos: tuple[int, int]) -> Any:
        _, encode_rows, head = export.FORMATS[fmt]
        yield head
        while rows:
            waiter = self.rt.settled()  # no row shows a claim, grant or ack before it is durable
            if waiter is not None:
                await waiter
            yield encode_rows(rows)
            await asyncio.sleep(0)  # a long export lets every other request in between chunks
            rows, pos = views.hunt_export(self.rt.eng, hunt, pos, EXPORT_CHUNK)

    # ---- the hot path --------------------------------------------------------------------------------
    def dig(self, req: Request) -> Any:
        # A key verified before on any route is good for GAME. None (not picked out while
        # parsing) is never in `verified_keys`: then the full lookup and check.
        header = req.authorization
        if header not in self.verified_keys:
            header = req.auth()
            self.keys.require(header, GAME)
        b = dec_dig(req.body)
        eng = self.rt.engine
        assert eng is not None
        now = self.clock()
        if self.fail_fast is not None:
            self.fail_fast()
        self.charge_dig(header, b.player, eng.players, now)  # the key's quotas
        out = eng.dig(req.params["hunt"], b.player, b.pos, b.at, b.request_id, now, b.teleport)
        if not eng.new_events:
            # The common misses are shared outcomes, with no records and nothing to wait for: encoded once.
            miss = _MISS_REPLIES.get(id(out))
            if miss is not None:
                return miss
            if not out.records and (out.wait_seq == 0 or out.wait_seq <= self.store.durable_seq):
                return encode(out.result)  # nothing to persist or publish, and nothing (left) to wait for
        return self.reply(self.rt.submit(out), out.result)

    def hint(self, req: Request) -> Any:
        header = req.auth()
        self.keys.require(header, GAME)
        b = dec_hint(req.body)
        now, eng = self.clock(), self.rt.eng
        if self.fail_fast is not None:
            self.fail_fast()
        self.charge_hint(header, b.player, eng.players, now)
        out = eng.hint(req.params["hunt"], b.player, b.pos, b.request_id, now, b.teleport)
        return self.reply(self.rt.submit(out), out.result)

    def positions(self, req: Request) -> Any:
        header = req.auth()
        self.keys.require(header, GAME)
        now, eng = self.clock(), self.rt.eng
        try:
            b = dec_positions(req.body)
        except msgspec.ValidationError:
            loose = dec_positions_loose(req.body)  # a bad envelope raises here; bad updates are reported
            out = self.positions_each(loose.world, loose.updates, now, header)
        else:
            self.join(header, b.updates, eng.players, now)
            out = eng.positions(b.world, [(u.player, u.pos, u.teleport) for u in b.updates], now)
        return self.reply(self.rt.submit(out), out.result)

    def positions_each(self, world: str, raws: list[Any], now: float, key: bytes | None) -> Outcome:
        """Positions whose updates are decoded one by one: each bad one is reported in `errors` with its index."""
        decoded, updates, index, errors = [], [], [], []
        for i, raw in enumerate(raws):
            try:
                u = _to_update(raw, schemas.PositionUpdate)
            except msgspec.ValidationError as e:
                err = validation_error(e, f"updates[{i}]")
                err.field = f"updates[{i}]" + (f".{err.field}" if err.field else "")
                errors.append({"index": i, **err.to_wire()})
                self.metrics.error(err.code)
                continue
            decoded.append(u)
            updates.append((u.player, u.pos, u.teleport))
            index.append(i)
        eng = self.rt.eng
        self.join(key, decoded, eng.players, now)
        out = eng.positions(world, updates, now, index)
        errors += out.result["errors"]
        errors.sort(key=_index)
        return Outcome({"events": out.result["events"], "errors": errors}, out.records, out.wait_seq)

    def batch(self, req: Request) -> Any:
        header = req.auth()
        self.keys.require(header, GAME)
        try:
            # One decode for the whole batch when every op is valid (the common case)...
            results, wait = self.run_ops(dec_batch_typed(req.body).ops, _same, header)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeDecodeError):
            # ...else op by op, so that each bad op fails only its own slot.
            try:
                ops = dec_batch(req.body).ops
            except RecursionError:
                raise InvalidBody("body is nested too deeply") from None
            results, wait = self.run_ops(ops, dec_op_each, header)
        out = {"results": results}
        if wait > self.rt.store.durable_seq:
            return self._later(self.rt.when_durable(wait, out), 200)
        return encode(out)

    def run_ops(
        self, ops: list[Any], decode_op: Callable[[Any], Any], key: bytes | None = None
    ) -> tuple[list[Any], int]:
        """Run batch ops in order; each gets its result or its error. Returns the seq to wait for.
        `key` is the Authorization header whose quotas the ops count against."""
        eng, rt, now = self.rt.eng, self.rt, self.clock()
        players, charge_dig, charge_hint, fail_fast = eng.players, self.charge_dig, self.charge_hint, self.fail_fast
        results: list[Any] = []
        wait = 0
        hists, clock = self.metrics.op_histograms(), time.perf_counter  # cairn_op_seconds{op}
        t0 = clock()
        for raw in ops:
            kind = "invalid"  # an op that does not decode
            try:
                op = decode_op(raw)
                if type(op) is schemas.DigOp:
                    kind = "dig"
                    if fail_fast is not None:
                        fail_fast()
                    charge_dig(key, op.player, players, now)
                    out = eng.dig(op.hunt, op.player, op.pos, op.at, op.request_id, now, op.teleport)
                elif type(op) is schemas.HintOp:
                    kind = "hint"
                    if fail_fast is not None:
                        fail_fast()
                    charge_hint(key, op.player, players, now)
                    out = eng.hint(op.hunt, op.player, op.pos, op.request_id, now, op.teleport)
                elif type(op) is schemas.PositionsOp:
                    kind = "positions"
                    self.join(key, op.updates, players, now)
                    out = eng.positions(op.world, [(u.player, u.pos, u.teleport) for u in op.updates], now)
                else:  # a LoosePositionsOp: some update did not decode
                    kind = "positions"
                    out = self.positions_each(op.world, op.updates, now, key)
                if out.records:
                    rt.commit(out)
                if out.wait_seq > wait:
                    wait = out.wait_seq
                results.append(out.result)
            except (CairnError, msgspec.ValidationError, msgspec.DecodeError, RecursionError) as e:
                err = wire_error(e)
                results.append(err.to_wire())
                self.metrics.error(err.code)
            t1 = clock()
            h = hists[kind]  # Histogram.observe, inlined: this runs for every op
            h.counts[bisect_left(BUCKETS, t1 - t0)] += 1
            h.sum += t1 - t0
            t0 = t1
        rt.publish()
        return results, wait

    def join(self, key: bytes | None, updates: list[Any], players: Any, now: float) -> None:
        """Count the players new to the engine in a positions update against the key's quota."""
        new = sum(1 for u in updates if u.player not in players)
        if new:
            self.quotas.take(key, NEW_PLAYER, new, now)

    # ---- grants -----------------------------------------------------------------------------------------
    def grants(self, req: Request) -> bytes:
        self.auth(req, GAME)
        if self.fail_fast is not None:
            self.fail_fast()
        return encode({"grants": self.rt.eng.grants_of(player_param(req))})

    def pending_grants(self, req: Request) -> bytes:
        self.auth(req, ADMIN)
        try:
            minutes = float(req.query.get("older_than_minutes", "0"))
        except ValueError:
            minutes = math.nan
        if not 0.0 <= minutes < math.inf:  # nan, inf and negative ones included
            raise ValidationError("older_than_minutes must be a number of minutes, 0 or more",
                                  field="older_than_minutes")  # fmt: skip
        return encode({"grants": self.rt.eng.pending_older_than(minutes * 60, self.clock())})

    def ack(self, req: Request) -> Any:
        self.auth(req, GAME)
        return self._later(self.rt.ack(req.params["grant_id"]), 200)

    def leave(self, req: Request) -> bytes:
        """A player logged out: forget their position and proximity state (claims and grants stay)."""
        self.auth(req, GAME)
        player = player_param(req)
        self.rt.eng.leave(player)
        return encode({"player": player, "left": True})

    def player(self, req: Request) -> bytes:
        self.auth(req, ADMIN)
        return encode(views.player(self.rt.eng, player_param(req)))

    def history(self, req: Request) -> bytes:
        """A page of the player's claims, grants, acks and admin actions, newest first."""
        self.auth(req, GAME)
        player = player_param(req)
        limit = query_int(req.query, "limit", ledger.DEFAULT_LIMIT, 1, ledger.MAX_LIMIT)
        cursor = req.query.get("cursor") or None
        if self.fail_fast is not None:
            self.fail_fast()
        return encode(views.player_history(self.rt.eng, player, limit, cursor))

    # ---- worlds --------------------------------------------------------------------------------------------
    def list_worlds(self, req: Request) -> bytes:
        self.auth(req, ADMIN)
        return encode({"worlds": self.rt.worlds_view()})

    async def put_world(self, req: Request) -> Any:
        """Register an upload-only world at runtime: 201 when created, 200 when it exists already."""
        self.auth(req, ADMIN)
        world = _world_param(req)
        if req.body.strip():
            dec_world(req.body)  # `{}`: no fields yet, and an unknown one is refused
        created, view = await self.rt.register_world(world)
        return (201 if created else 200, encode(view))

    async def delete_world(self, req: Request) -> Any:
        self.auth(req, ADMIN)
        return encode(await self.rt.retire_world(_world_param(req)))

    def upload_head(self, req: Request) -> int:
        """Check a site upload by its head alone: the key, the world, the announced length.

        Runs before the body is read (the transport's head check), and again in the handler.
        Returns the world's byte cap.
        """
        from cairn.core.errors import BodyTooLarge, UnknownWorld

        self.auth(req, ADMIN)
        world = _world_param(req)
        if not views.has_world(self.rt.eng, world):
            raise UnknownWorld(f"world {world!r} is neither configured nor registered (PUT /v1/worlds/{world})",
                               field="world")  # fmt: skip
        wc = self.rt.cfg.worlds.get(world)
        cap = wc.upload_max_bytes if wc is not None else self.upload_cap
        length = req.header(b"content-length")
        if length is not None and length.isdigit() and int(length) > cap:
            raise BodyTooLarge(f"site upload is larger than worlds.{world}.upload_max_bytes ({cap})")
        return cap

    async def put_sites(self, req: Request) -> Any:
        """Replace a world's sites with an uploaded NDJSON, CSV or pack body (parsed off the loop)."""
        import asyncio

        from cairn.core.errors import BodyTooLarge, UnknownWorld
        from cairn.worlds.pack import uploaded_pack_path
        from cairn.worlds.sources import InvalidSites
        from cairn.worlds.upload import ingest

        cap = self.upload_head(req)
        world = req.params["world"]
        spool = req.spool
        body: Any = req.body if spool is None else spool.file
        size = len(req.body) if spool is None else spool.size
        if size > cap:  # a chunked body announces no length
            raise BodyTooLarge(f"site upload is larger than worlds.{world}.upload_max_bytes ({cap})")
        if spool is None and not req.body.strip():
            raise InvalidSites("the body holds no sites")
        lock = self._world_locks.setdefault(world, asyncio.Lock())
        async with lock:
            loop = asyncio.get_running_loop()
            ctype = req.headers.get("content-type", "")
            sites, info = await loop.run_in_executor(None, ingest, body, ctype, self.rt.data_dir, world)
            eng = self.rt.eng
            if not views.has_world(eng, world):  # retired while the body was parsed: its sites go with it
                uploaded_pack_path(self.rt.data_dir, world).unlink(missing_ok=True)
                raise UnknownWorld(f"world {world!r} was retired during the upload", field="world")
            eng.replace_sites(world, sites)
        log.info("world %s: %d sites uploaded", world, len(sites))
        return encode(info)

    # ---- leaderboards ------------------------------------------------------------------------------------
    def leaderboard(self, req: Request) -> bytes:
        self.auth(req, GAME)
        boards = views.boards(self.rt.eng)
        if boards is None:
            raise NotFound(f"no leaderboard {req.params['board']!r}", field="board")
        for name in ("player", "around"):
            value = req.query.get(name)
            if value and not schemas.player_ok(value):
                raise ValidationError(f"{name} must be a player id: 1-64 characters of [A-Za-z0-9_.:-]", field=name)
        return encode(boards.read(req.params["board"], req.query, self.clock()))

    # ---- events ------------------------------------------------------------------------------------------
    def events(self, req: Request) -> Any:
        self.auth(req, GAME)
        q = req.query
        hunt = q.get("hunt") or None
        if hunt is not None and not schemas.hunt_ok(hunt):
            raise ValidationError("hunt must be a hunt id", field="hunt")
        raw_after = q.get("after") or req.headers.get("last-event-id") or "0"
        if not (raw_after.isascii() and raw_after.isdigit()) or len(raw_after) > 19:
            raise ValidationError("after must be an event id (a non-negative integer)", field="after")
        after = int(raw_after)
        sub = self.hub.subscribe(hunt, key_of(req.auth()))
        backlog, complete = views.events_after(self.rt.eng, after, hunt)
        # The stream ends its connection: a client that was cut off must reconnect with `after`.
        return Stream(self._sse(sub, backlog, complete, after), headers=[("Cache-Control", "no-cache")],
                      keep_alive=False)  # fmt: skip

    async def _sse(self, sub: Any, backlog: list[Event], complete: bool, after: int) -> Any:
        frame = self.hub.frame
        try:
            yield b"retry: 1000\n\n"
            if not complete:
                yield b"event: gap\ndata: " + encode({"after": after}) + b"\n\n"
            last = after
            async with contextlib.aclosing(follow(sub, backlog, after, self.rt.settled())) as batches:
                del backlog
                async for batch in batches:
                    if batch:
                        yield b"".join([frame(e) for e in batch])
                        last = batch[-1].id
                    else:
                        yield b": keep-alive\n\n"
            if sub.revoked:
                yield b"event: revoked\ndata: " + encode({"after": last}) + b"\n\n"
            else:
                yield b"event: dropped\ndata: " + encode({"resume_after": last}) + b"\n\n"
        finally:
            self.hub.unsubscribe(sub)

    # ---- routes ------------------------------------------------------------------------------------------
    def routes(self, router: Router) -> None:
        """Register the API's routes; each is described in `cairn.net.openapi.ROUTES` too."""
        m, r = self.metrics.timed, self.durable_read
        router.add("GET", "/healthz", self.healthz)
        router.add("GET", "/readyz", self.readyz)
        router.add("GET", "/metrics", self.metrics_text)
        router.add("GET", "/v1/openapi.json", self.openapi_json)
        router.add("POST", "/v1/hunts", m("create_hunt", self.create_hunt))
        router.add("GET", "/v1/hunts", m("list_hunts", r(self.list_hunts)))
        router.add("GET", "/v1/hunts/{hunt}", m("get_hunt", r(self.get_hunt)))
        router.add("GET", "/v1/hunts/{hunt}/export", self.export_hunt, stream=True)
        router.add("POST", "/v1/hunts/{hunt}/hint", m("hint", self.hint))
        router.add("POST", "/v1/hunts/{hunt}/dig", m("dig", self.dig))
        router.add("POST", "/v1/positions", m("positions", self.positions))
        router.add("POST", "/v1/batch", m("batch", self.batch))
        router.add("GET", "/v1/players/{player}", m("player", r(self.player)))
        router.add("GET", "/v1/players/{player}/grants", m("grants", r(self.grants)))
        router.add("GET", "/v1/players/{player}/history", m("history", r(self.history)))
        router.add("POST", "/v1/players/{player}/leave", m("leave", self.leave))
        router.add("GET", "/v1/grants/pending", m("pending_grants", r(self.pending_grants)))
        router.add("POST", "/v1/grants/{grant_id}/ack", m("ack", self.ack))
        router.add("GET", "/v1/leaderboards/{board}", m("leaderboard", r(self.leaderboard)))
        router.add("GET", "/v1/events", self.events, stream=True)
        router.add("GET", "/v1/worlds", m("list_worlds", self.list_worlds))
        router.add("PUT", "/v1/worlds/{world}", m("put_world", self.put_world))
        router.add("DELETE", "/v1/worlds/{world}", m("delete_world", self.delete_world))
        router.add("PUT", "/v1/worlds/{world}/sites", m("put_sites", self.put_sites), max_body=self.upload_cap,
                   head=self.upload_head, spool=True)  # fmt: skip


def _same(op: Any) -> Any:
    return op


def _index(error: dict[str, Any]) -> int:
    i: int = error["index"]
    return i


def player_param(req: Request) -> str:
    player: str = req.params["player"]
    if not schemas.player_ok(player):
        raise ValidationError("player id must be 1-64 characters of [A-Za-z0-9_.:-]", field="player")
    return player


def _world_param(req: Request) -> str:
    world: str = req.params["world"]
    if not schemas.world_ok(world):
        raise ValidationError("a world id is 1-64 characters of [A-Za-z0-9_.:-]", field="world")
    return world


def key_of(header: bytes | None) -> bytes:
    """The key in a verified `Authorization: Bearer <key>` value, as the per-key limits count it."""
    return header[7:].strip() if header else b""


