"""The Redis store: the connection, the key layout and the two atomic scripts.

Key layout (every key of one hunt carries the hash tag `{<hunt id>}`, so a hunt lives in one
hash slot and its scripts run on a Redis Cluster):

- `cairn:{H}:log`: a stream, the hunt's records in commit order (field `r`: the msgpack record,
  field `ev`: the first event id the store assigned it). Every node applies it to its engine cache,
  so every node derives the same state, events and leaderboards from it.
- `cairn:{H}:m`: a hash, the little state the scripts compare and set: `created`, `started`,
  `ended`, `t:<n>` (first-finder: the winning claim id; shared bounty: the window end in ms, then
  `s` once settled), `f:<n>` (shared-bounty finders), `c:<claim id>` (stream id of the claim),
  `r:<player>\\0<request id>` (the idempotency record: the claim id), `a:<grant id>` (acked, or cancelled),
  `v:<claim id>` (voided), `g:<grant id>` (a grant reissued under this id),
  `last` (last stream id), `ev` (last event id), `fence` (highest scheduler token seen).
- `cairn:{index}:hunts`: a stream of hunt ids (how nodes discover hunts).
- `cairn:{recurring}:log`: a stream of recurring-spec records.
- `cairn:{worlds}:log`: a stream of world records (registered and retired at runtime).
- `cairn:{admin}:log`: a stream of operator actions on no hunt (players, API keys, webhooks). The names
  in these keys are reserved hunt ids (`spec.RESERVED_IDS`).
- `cairn:{sched}:lease`, `cairn:{sched}:token`: the scheduler lease and its fencing counter.
- `cairn:{secret}`: the placement/loot secret, when `server.secret` is not set.
- `cairn:{watchN}:probe`: a stream of one entry a node writes when it subscribes (`Watch`), one
  key per Redis Cluster primary (N picked so that the key lives there).

Nodes learn of new records without reading: Redis publishes a keyspace notification
`__keyevent@<db>__:xadd` (the message is the stream's key) in the same step as every `XADD`,
the commit scripts' included (`Watch`).

The scripts only compare and set; what a dig means is decided by the Python core.
Every call has a short socket timeout: when Redis is unreachable the caller gets
`StoreUnavailable` (503) at once instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final

from redis import asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import RedisClusterException, RedisError, ResponseError
from redis.retry import Retry

from cairn.config import ConfigError
from cairn.core.errors import StoreUnavailable

log = logging.getLogger("cairn.redis")

# What a lost Redis connection raises. AttributeError: redis-py's cluster client can write to a
# connection torn down under it (`NoneType` has no `writelines`); RuntimeError: uvloop refuses a
# write to a transport closed under the client ("unable to perform operation on <TCPTransport
# closed=True>").
LOST = (TimeoutError, RedisError, OSError, AttributeError, RuntimeError)

TIMEOUT = 0.08  # seconds: every Redis call answers or fails well inside the 100 ms budget
HEALTH_EVERY = 0.1  # seconds between pings while Redis is down
WATCH_PING = 1.0  # seconds: a silent watch connection is pinged, and dropped if the pong is this late
NOTIFY = "notify-keyspace-events"
PING: Final = b"*1\r\n$4\r\nPING\r\n"
PROBE = "cairn:{watch%d}:probe"  # a stream each node writes to when it subscribes, to hear its notice

# Claim: the compare-and-set hidden -> claimed by X (first-finder), or add a finder while the
# window is open (shared bounty), plus the idempotency record. Returns {status, stream id, prev id, ev}.
CLAIM = """
local m, log = KEYS[1], KEYS[2]
local n, cid, rkey, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local at_ms, window_ms = tonumber(ARGV[5]), tonumber(ARGV[6])
if rkey ~= '' then
  local prior = redis.call('HGET', m, 'r:' .. rkey)
  if prior then return {'replay', prior} end
end
if redis.call('HEXISTS', m, 'created') == 0 then return {'nohunt', ''} end
if redis.call('HEXISTS', m, 'c:' .. cid) == 1 then return {'dup', cid} end
if redis.call('HEXISTS', m, 'ended') == 1 then return {'ended', ''} end
local tk = 't:' .. n
local st = redis.call('HGET', m, tk)
if mode == 'ff' then
  if st then return {'taken', st} end
  redis.call('HSET', m, tk, cid)
else
  if st == 's' then return {'taken', ''} end
  if st then
    if at_ms >= tonumber(st) then return {'taken', ''} end
  else
    redis.call('HSET', m, tk, string.format('%d', at_ms + window_ms))
  end
  redis.call('HINCRBY', m, 'f:' .. n, 1)
end
local last_ev = tonumber(redis.call('HGET', m, 'ev') or '0')
local ev = math.max(last_ev + 1, tonumber(ARGV[7]))
redis.call('HSET', m, 'ev', string.format('%d', ev + tonumber(ARGV[8]) - 1))
local prev = redis.call('HGET', m, 'last') or '0-0'
local id = redis.call('XADD', log, '*', 'r', ARGV[9], 'ev', string.format('%d', ev))
redis.call('HSET', m, 'last', id, 'c:' .. cid, id)
if rkey ~= '' then redis.call('HSET', m, 'r:' .. rkey, cid) end
return {'ok', id, prev, string.format('%d', ev)}
"""

# Append: records that happen once (hunt created / started / ended, a settlement, an ack, an operator's
# action). A flag that is set already makes it 'dup'; a flag `~<field>` is not checked but deleted (a
# treasure hidden again: `~t:<n>`). ARGV: fence token (0: none), settle n ('' none), settle finder count,
# number of flags, flags...,
# then (ev, span, record) triples. Checks everything first, then writes: all or nothing.
APPEND = """
local m, log = KEYS[1], KEYS[2]
local fence = tonumber(ARGV[1])
if fence > 0 then
  local cur = tonumber(redis.call('HGET', m, 'fence') or '0')
  if cur > fence then return {'fenced', tostring(cur)} end
end
local nflags = tonumber(ARGV[4])
for i = 1, nflags do
  local f = ARGV[4 + i]
  if string.sub(f, 1, 1) ~= '~' and redis.call('HEXISTS', m, f) == 1 then return {'dup', f} end
end
local sn = ARGV[2]
if sn ~= '' then
  local st = redis.call('HGET', m, 't:' .. sn)
  if st == 's' then return {'dup', 'settled'} end
  if tonumber(redis.call('HGET', m, 'f:' .. sn) or '0') ~= tonumber(ARGV[3]) then return {'stale', ''} end
  redis.call('HSET', m, 't:' .. sn, 's')
end
if fence > 0 then redis.call('HSET', m, 'fence', ARGV[1]) end
for i = 1, nflags do
  local f = ARGV[4 + i]
  if string.sub(f, 1, 1) == '~' then redis.call('HDEL', m, string.sub(f, 2)) else redis.call('HSET', m, f, '1') end
end
local prev = redis.call('HGET', m, 'last') or '0-0'
local out = {'ok', '', prev}
local i = 5 + nflags
local last_ev = tonumber(redis.call('HGET', m, 'ev') or '0')
local id = prev
while i + 2 <= #ARGV do
  local ev = tonumber(ARGV[i])
  local span = tonumber(ARGV[i + 1])
  if span > 0 then
    ev = math.max(last_ev + 1, ev)
    last_ev = ev + span - 1
  else
    ev = 0
  end
  id = redis.call('XADD', log, '*', 'r', ARGV[i + 2], 'ev', string.format('%d', ev))
  out[#out + 1] = id
  out[#out + 1] = string.format('%d', ev)
  i = i + 3
end
redis.call('HSET', m, 'ev', string.format('%d', last_ev), 'last', id)
out[2] = id
return out
"""

# The scheduler lease: the holder renews it; a new holder gets a new, higher fencing token.
LEASE = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local holder, token = string.match(cur, '^(.*)|(%d+)$')
  if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(token)
  end
  return 0
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
return token
"""


def hunt_keys(hunt: str) -> tuple[str, str]:
    return f"cairn:{{{hunt}}}:m", f"cairn:{{{hunt}}}:log"


INDEX = "cairn:{index}:hunts"
RECURRING = "cairn:{recurring}:log"
WORLDS = "cairn:{worlds}:log"
ADMIN = "cairn:{admin}:log"  # operator actions on no hunt (players, keys, webhooks)
LEASE_KEY, TOKEN_KEY = "cairn:{sched}:lease", "cairn:{sched}:token"
SECRET_KEY = "cairn:{secret}"
WEBHOOK_CURSORS = "cairn:{admin}:webhooks"  # webhook id -> the event id up to which it was delivered


def sid(raw: bytes | str) -> tuple[int, int]:
    """A stream id as a comparable pair."""
    s = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = s.partition("-")
    return int(ms), int(seq or 0)


class RedisStore:
    """One connection (pool) to Redis or a Redis Cluster, with the scripts and the health state."""

    kind = "redis"

    def __init__(self, url: str, cluster: list[str], timeout: float = TIMEOUT) -> None:
        self.url = url
        self.cluster_nodes = cluster
        self.timeout = timeout
        self.up = False
        self.down_since: float | None = time.monotonic()
        self.calls = 0
        self.failures = 0
        self.node = ""  # this node's name (written in the watch's probe record)
        kw: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
        }
        self.r: Any
        if cluster:
            nodes = []
            for hp in cluster:
                host, _, port = hp.rpartition(":")
                nodes.append(ClusterNode(host or "127.0.0.1", int(port)))
            self.r = RedisCluster(startup_nodes=nodes, **kw)
        else:
            self.r = aioredis.Redis.from_url(url, max_connections=256, **kw)
        self._claim = self.r.register_script(CLAIM)
        self._append = self.r.register_script(APPEND)
        self._lease = self.r.register_script(LEASE)
        self._health: asyncio.Task[None] | None = None
        self.on_up: Callable[[], None] = lambda: None  # called when Redis answers again after a failure

    # ---- health --------------------------------------------------------------------------------
    def ready(self) -> bool:
        return self.up

    def failed(self, exc: BaseException) -> StoreUnavailable:
        """Note a failed call; the background health check brings the store back."""
        self.failures += 1
        if self.up:
            log.warning("redis unreachable: %s", exc)
            self.up = False
            self.down_since = time.monotonic()
        return StoreUnavailable("the store (Redis) is unreachable; retry shortly")

    def check(self) -> None:
        if not self.up:
            raise StoreUnavailable("the store (Redis) is unreachable; retry shortly")

    async def ping(self) -> bool:
        try:
            await self.r.ping()
        except LOST as e:
            self.failed(e)
            return False
        if not self.up:
            log.info("redis reachable")
            await self._reset()  # pooled connections to the old server are dead: drop them
            self.up = True
            self.down_since = None
            self.on_up()
        return True

    async def _reset(self) -> None:
        with contextlib.suppress(Exception):
            if self.cluster_nodes:
                for node in self.r.get_nodes():
                    await node.disconnect_free_connections()
            else:
                await self.r.connection_pool.disconnect(inuse_connections=False)

    async def wait_up(self, deadline: float) -> None:
        while not await self.ping():
            if time.monotonic() > deadline:
                raise StoreUnavailable(f"Redis at {self.cluster_nodes or self.url} did not answer")
            await asyncio.sleep(HEALTH_EVERY)

    def start(self) -> None:
        self._health = asyncio.create_task(self._health_forever())

    async def _health_forever(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_EVERY if not self.up else 1.0)
            with contextlib.suppress(Exception):
                await self.ping()

    async def close(self) -> None:
        if self._health is not None:
            self._health.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health
        with contextlib.suppress(Exception):
            await self.r.aclose()

    async def call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        """One Redis call; any failure becomes StoreUnavailable and marks the store down."""
        self.check()
        self.calls += 1
        try:
            return await fn(*args, **kw)
        except LOST as e:
            raise self.failed(e) from None

    # ---- the scripts ---------------------------------------------------------------------------
    async def claim(
        self, hunt: str, n: int, claim_id: str, rkey: str, mode: str, at: float, window: float, ev: int,
        span: int, record: bytes,
    ) -> list[bytes]:  # fmt: skip
        args = [n, claim_id, rkey, mode, int(at * 1000), int(window * 1000), ev, span, record]
        out: list[bytes] = await self.call(self._claim, keys=list(hunt_keys(hunt)), args=args)
        return out

    async def append(
        self, hunt: str, records: list[tuple[int, int, bytes]], flags: Sequence[str] = (), fence: int = 0,
        settle: tuple[int, int] | None = None,
    ) -> list[bytes]:  # fmt: skip
        args: list[Any] = [fence, settle[0] if settle else "", settle[1] if settle else 0, len(flags), *flags]
        for ev, span, rec in records:
            args += [ev, span, rec]
        out: list[bytes] = await self.call(self._append, keys=list(hunt_keys(hunt)), args=args)
        return out

    async def webhook_cursors(self) -> dict[str, int]:
        """Per webhook target, the event id up to which the lease holder delivered (docs/webhooks.md)."""
        raw = await self.r.hgetall(WEBHOOK_CURSORS)
        return {k.decode(): int(v) for k, v in raw.items()}

    async def set_webhook_cursors(self, cursors: dict[str, int]) -> None:
        await self.r.hset(WEBHOOK_CURSORS, mapping=cursors)

    async def lease(self, node: str, ttl_ms: int) -> int:
        return int(await self.call(self._lease, keys=[LEASE_KEY, TOKEN_KEY], args=[node, ttl_ms]))

    # ---- streams -------------------------------------------------------------------------------
    async def index_add(self, hunt: str) -> None:
        await self.call(self.r.xadd, INDEX, {"h": hunt})

    async def recurring_add(self, record: bytes) -> None:
        await self.call(self.r.xadd, RECURRING, {"r": record, "ev": 0})

    async def world_add(self, record: bytes) -> None:
        await self.call(self.r.xadd, WORLDS, {"r": record})

    async def admin_add(self, record: bytes) -> None:
        await self.call(self.r.xadd, ADMIN, {"r": record})

    async def range_after(self, key: str, after: bytes, count: int = 1000) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Stream entries after `after` (exclusive)."""
        lo = b"(" + after if after != b"0-0" else b"-"
        out: list[tuple[bytes, dict[bytes, bytes]]] = await self.call(self.r.xrange, key, lo, b"+", count)
        return out

    async def poll(self, streams: list[tuple[str, bytes]], count: int = 1000) -> list[list[Any]]:
        """Entries after each (key, id), in one pipeline (split per shard on a cluster)."""
        self.check()
        self.calls += 1
        try:
            pipe = self.r.pipeline(transaction=False)
            for key, after in streams:
                pipe.xrange(key, b"(" + after if after != b"0-0" else b"-", b"+", count)
            out: list[list[Any]] = await pipe.execute()
        except LOST as e:
            raise self.failed(e) from None
        return out

    async def shared_secret(self, candidate: bytes) -> bytes:
        """The placement/loot secret every node shares: the first node's candidate wins."""
        await self.call(self.r.set, SECRET_KEY, candidate, nx=True)
        value: bytes = await self.call(self.r.get, SECRET_KEY)
        return value


class Watch:
    """Which streams got records: keyspace notifications of `XADD`, one pub/sub connection per Redis.

    Redis publishes `__keyevent@<db>__:xadd` with the stream's key as the message in the same step as
    the write, so a commit script's `XADD` is announced atomically with the commit. On a cluster the
    notifications are local to the node that did the write: one connection per primary. Each
    connection sets `notify-keyspace-events` to include `E` (keyevent) and `t` (stream commands) if
    it does not (Redis forgets a `CONFIG SET` when it restarts; on a Redis without `CONFIG`, set it in
    its configuration), then writes a probe record there and waits to hear it. Pub/sub keeps nothing
    for a subscriber that is away, so after a lost connection the caller must read every stream again
    from its last applied id (`run`'s `resync`).
    """

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.subs: list[tuple[Any, Any]] = []  # (client, pubsub) per Redis / primary
        self.endpoints: set[tuple[str, int]] = set()
        # Per listened connection (by id of its pubsub): each PING sent, in order, with what waits for
        # its pong (None for a keep-alive PING, a future for a `barrier`).
        self._pings: dict[int, deque[asyncio.Future[bool] | None]] = {}

    def _clients(self) -> list[tuple[Any, str, str]]:
        """A client per Redis / primary, with a stream key that lives there (the probe)."""
        st = self.store
        kw: dict[str, Any] = {
            "socket_timeout": max(1.0, st.timeout), "socket_connect_timeout": max(1.0, st.timeout),
            "retry": Retry(NoBackoff(), 0), "health_check_interval": 0, "max_connections": 2,
        }  # fmt: skip
        if not st.cluster_nodes:
            self.endpoints = set()
            client = aioredis.Redis.from_url(st.url, **kw)
            ckw = client.connection_pool.connection_kwargs  # not the URL: it may hold a password
            return [(client, PROBE % 0, f"{ckw.get('host', ckw.get('path', '?'))}:{ckw.get('port', '')}")]
        primaries = st.r.get_primaries()
        self.endpoints = {(n.host, n.port) for n in primaries}
        slots = st.r.nodes_manager.slots_cache
        out = []
        for n in primaries:
            i = 0
            while getattr(slots.get(key_slot(PROBE.encode() % i), [None])[0], "name", n.name) != n.name and i < 100_000:
                i += 1
            out.append((aioredis.Redis(host=n.host, port=n.port, **kw), PROBE % i, f"{n.host}:{n.port}"))
        return out

    def channel(self) -> str:
        db = 0 if self.store.cluster_nodes else self.store.r.connection_pool.connection_kwargs.get("db", 0)
        return f"__keyevent@{db}__:xadd"

    async def open(self) -> None:
        """Subscribe on every Redis / primary; returns once each subscription is confirmed.

        Everything written after `open` returns is announced: read the streams after it, not before."""
        await self.close()
        try:
            if self.store.cluster_nodes:
                await self.store.r.nodes_manager.initialize()  # the primaries of now
            for client, probe, where in self._clients():
                self.subs.append((client, None))
                known = await enable_notifications(client)
                ps = client.pubsub()
                self.subs[-1] = (client, ps)
                await ps.subscribe(self.channel())
                # A probe record proves this connection hears what is written there.
                await client.xadd(probe, {"n": self.store.node or "?"}, maxlen=1)
                deadline = time.monotonic() + max(1.0, self.store.timeout)
                while True:
                    msg = await ps.get_message(timeout=max(0.0, deadline - time.monotonic()))
                    if msg is not None and msg["type"] == "message" and msg["data"] == probe.encode():
                        break
                    if time.monotonic() > deadline:
                        if known:
                            raise TimeoutError("the probe's notification did not come")
                        raise ConfigError(
                            f"Redis at {where} does not publish stream notifications: set {NOTIFY} to include "
                            f"'E' and 't' (e.g. 'Et')",
                            field="store",
                        )
        except (*LOST, RedisClusterException) as e:
            await self.close()
            raise StoreUnavailable(f"cannot watch Redis for new records: {e}") from None
        except BaseException:
            await self.close()
            raise

    async def barrier(self) -> bool:
        """Wait until every notice Redis sent before this call has been handed to `changed`: a PING
        on each watch connection, whose pong comes after whatever Redis queued there before it.
        False when that cannot be known (a connection away or too slow): then read every stream."""
        loop = asyncio.get_running_loop()
        waits = []
        for _, ps in self.subs:
            pings = self._pings.get(id(ps))
            if ps is None or pings is None or ps.connection is None:
                return False
            fut: asyncio.Future[bool] = loop.create_future()
            try:
                ps.connection._writer.write(PING)
            except LOST:
                return False
            pings.append(fut)
            waits.append(fut)
        if not waits:
            return False
        try:
            async with asyncio.timeout(max(1.0, self.store.timeout)):
                return all(await asyncio.gather(*waits))  # False: a connection was lost meanwhile
        except TimeoutError:
            return False

    async def close(self) -> None:
        subs, self.subs = self.subs, []
        for client, ps in subs:
            with contextlib.suppress(Exception):
                if ps is not None:
                    await ps.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()

    async def run(self, changed: Callable[[bytes], None], resync: Callable[[], None]) -> None:
        """Call `changed(key)` for every `XADD`; on a lost connection reconnect, then call `resync()`."""
        while True:
            try:
                await self._pump(changed)
            except asyncio.CancelledError:
                await self.close()
                raise
            except Exception as e:  # a lost connection, or a primary added or gone
                log.info("watch connection lost (%s): reconnecting", e)
            said = ""
            while True:
                await asyncio.sleep(HEALTH_EVERY)
                try:
                    await self.open()
                    break
                except Exception as e:
                    if str(e) != said and self.store.up:
                        said = str(e)
                        log.warning("%s", e)
            resync()

    async def _pump(self, changed: Callable[[bytes], None]) -> None:
        tasks = [asyncio.ensure_future(self._listen(ps, changed)) for _, ps in self.subs]
        if self.store.cluster_nodes:
            tasks.append(asyncio.ensure_future(self._topology()))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                t.result()
            raise ConnectionError("watch ended")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.close()

    async def _listen(self, ps: Any, changed: Callable[[bytes], None]) -> None:
        """Read the subscribed connection's stream directly, many notices per read (redis-py's own
        reader costs about 40 µs a message, and every node gets one message per commit of any node)."""
        conn = ps.connection
        reader: asyncio.StreamReader = conn._reader
        writer: asyncio.StreamWriter = conn._writer
        pings = self._pings[id(ps)] = deque()
        buf = b""
        pinged = 0.0
        try:
            while True:
                try:
                    async with asyncio.timeout(WATCH_PING):
                        chunk = await reader.read(1 << 16)
                except TimeoutError:
                    now = time.monotonic()
                    if not pinged:
                        writer.write(PING)
                        pings.append(None)
                        pinged = now
                    elif now - pinged > WATCH_PING:
                        raise TimeoutError("the watch connection does not answer") from None
                    continue
                if not chunk:
                    raise ConnectionError("the watch connection was closed")
                pinged = 0.0
                buf += chunk
                pos = 0
                while (got := resp(buf, pos)) is not None:
                    reply, pos = got
                    if type(reply) is list and len(reply) == 3 and reply[0] == b"message":
                        changed(reply[2])
                    elif pings and (reply == b"PONG" or (type(reply) is list and reply and reply[0] == b"pong")):
                        waiter = pings.popleft()  # pongs come in the order of the PINGs
                        if waiter is not None and not waiter.done():
                            waiter.set_result(True)
                buf = buf[pos:]
        finally:
            del self._pings[id(ps)]
            for waiter in pings:
                if waiter is not None and not waiter.done():
                    waiter.set_result(False)

    async def _topology(self) -> None:
        """Return when the cluster's primaries changed (the client learns of moves from its calls)."""
        while True:
            await asyncio.sleep(5.0)
            now = {(n.host, n.port) for n in self.store.r.get_primaries()}
            if now != self.endpoints:
                return


async def enable_notifications(client: Any) -> bool:
    """Make Redis publish keyevent notifications of stream commands (`E` and `t`), keeping other flags.

    True if they are on; False if `CONFIG` is refused (a managed Redis: its configuration must do it)."""
    try:
        got = await client.config_get(NOTIFY)
    except ResponseError:
        return False
    flags = got.get(NOTIFY, "")
    flags = flags.decode() if isinstance(flags, bytes) else str(flags)
    want = ("E" not in flags) * "E" + ("t" not in flags and "A" not in flags) * "t"
    if not want:
        return True
    try:
        await client.config_set(NOTIFY, flags + want)
    except ResponseError as e:
        raise ConfigError(
            f"Redis must publish stream notifications: set {NOTIFY} to include 'E' and 't' ({e})",
            field="store",
        ) from None
    return True


def resp(buf: bytes, pos: int) -> tuple[Any, int] | None:
    """One RESP2 / RESP3 reply from `buf` at `pos` and the position after it; None if it is not all there."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    kind, line = buf[pos : pos + 1], buf[pos + 1 : end]
    if kind in (b"$", b"="):  # bulk / verbatim string
        n = int(line)
        if n < 0:
            return None, end + 2
        if len(buf) < end + 4 + n:
            return None
        return buf[end + 2 : end + 2 + n], end + 4 + n
    if kind in (b"*", b">", b"~", b"%"):  # array / push / set / map (a map as its 2n items)
        n = int(line) * (2 if kind == b"%" else 1)
        items: list[Any] = []
        at = end + 2
        for _ in range(max(n, 0)):
            got = resp(buf, at)
            if got is None:
                return None
            item, at = got
            items.append(item)
        return items, at
    if kind in (b"+", b"-", b":", b"_", b",", b"#", b"("):  # simple string, error, numbers, null, boolean
        return line, end + 2
    raise ConnectionError(f"unexpected reply {buf[pos : pos + 20]!r} on the watch connection")
