"""Routing: maps (method, path) to the `Route` registered for it, and what a handler may be.

The app registers handlers on a `Router`:

- A plain handler takes a `Request` and returns a result: a `Response`, `bytes` (200,
  application/json) or a `(status, body)` tuple (application/json). `bytes` is the fastest.
  A sync handler is called inside the protocol callback, with no task. If it returns an
  awaitable instead (an `async def` handler does), that awaitable becomes one task.
- A stream handler (`stream=True`) returns a `Stream` (or a bare async iterable of bytes,
  sent as `text/event-stream`), or any plain result, e.g. an error before streaming starts.
  It runs as a task; a client disconnect cancels it and closes the iterator.
- A WebSocket endpoint (`add_websocket`) is `async def handler(ws)` or a sync
  `WebSocketEndpoint`; see `cairn.net.websocket`. The server speaks WebSocket through the
  `Upgrade` it is given (`HttpServer(upgrade=cairn.net.websocket.UPGRADE)`).
- Exceptions from handlers go to the server's `on_error(exc) -> Response | None`.

A route may check a request's head before its body is read (`head=`): an upload can be refused
by key, path or `Content-Length` before it costs anything. A route with `spool=True` receives a
large body in an unnamed temporary file (`Request.spool`), at most `max_uploads` at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final
from urllib.parse import unquote

import httptools

from cairn.net.request import Request
from cairn.net.response import Handler, StreamHandler

__all__ = ["Route", "Router"]


_PLAIN: Final = 0
_STREAM: Final = 1
_WEBSOCKET: Final = 2


class Route:
    """A registered handler: its kind (plain, stream, websocket), its own body cap, its head check."""

    __slots__ = ("fast", "handler", "head", "kind", "max_body", "pattern", "spool")

    def __init__(
        self, method: str, pattern: str, handler: Any, kind: int, max_body: int | None,
        head: Callable[[Request], Any] | None = None, spool: bool = False,
    ) -> None:  # fmt: skip
        self.pattern = pattern
        self.handler = handler
        self.kind = kind
        self.max_body = max_body
        self.head = head
        self.spool = spool
        # Eligible for the protocol's fast path: nothing about it needs a second look.
        self.fast = kind == _PLAIN and max_body is None and method != "HEAD"


class _Node:
    __slots__ = ("children", "methods", "param", "param_node")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.param: str | None = None
        self.param_node: _Node | None = None
        self.methods: dict[str, Route] | None = None


_CACHE_SIZE: Final = 4096
_CACHE_MAX_PATH: Final = 256

# A request target resolved: (decoded path, raw query, routes by method or None for 404, params).
_Target = tuple[str, bytes, "dict[str, Route] | None", "dict[str, str]"]


class Router:
    """Maps (method, path) to a route.

    Static paths are one dict lookup. Dynamic paths walk a segment trie (a literal segment
    wins over a `{param}`, with backtracking), behind a bounded cache of recent paths, so a
    hot dynamic route such as `/v1/hunts/{hunt}/dig` costs about two dict lookups.
    """

    def __init__(self) -> None:
        self._static: dict[str, dict[str, Route]] = {}
        self._root = _Node()
        self._cache: dict[str, tuple[dict[str, Route], dict[str, str]]] = {}
        self._targets: dict[bytes, _Target] = {}
        self.websockets = False  # a WebSocket endpoint is registered

    def add(
        self,
        method: str,
        pattern: str,
        handler: Handler | StreamHandler,
        *,
        stream: bool = False,
        max_body: int | None = None,
        head: Callable[[Request], Any] | None = None,
        spool: bool = False,
    ) -> None:
        """Register `handler` for `method` on `pattern`, e.g. "/v1/hunts/{hunt}/dig".

        `stream=True` marks a streaming (SSE) handler. `max_body` overrides the server's cap
        for this route. `head(request)` (a request without its body) runs once the headers of a
        body that spans reads are in; it refuses by raising, before the body is read.
        `spool=True` keeps such a body in a temporary file (`Request.spool`).
        """
        kind = _STREAM if stream else _PLAIN
        method = method.upper()
        if max_body is not None and max_body <= 0:
            raise ValueError(f"max_body must be positive, got {max_body}")
        self._add(method, pattern, Route(method, pattern, handler, kind, max_body, head, spool))

    def add_websocket(self, pattern: str, handler: Any) -> None:
        """Register a WebSocket endpoint: `async def handler(ws)` or a `WebSocketEndpoint`
        (`cairn.net.websocket.WebSocketHandler`); the server needs an `Upgrade` to serve it."""
        self.websockets = True
        self._add("GET", pattern, Route("GET", pattern, handler, _WEBSOCKET, None))

    def _add(self, method: str, pattern: str, route: Route) -> None:
        if not pattern.startswith("/"):
            raise ValueError(f"route pattern must start with '/': {pattern!r}")
        segments = pattern.split("/")[1:]
        names = []
        for s in segments:
            if s.startswith("{") and s.endswith("}") and len(s) > 2 and "{" not in s[1:-1]:
                names.append(s[1:-1])
            elif "{" in s or "}" in s:
                raise ValueError(f"bad path parameter {s!r} in {pattern!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"repeated path parameter in {pattern!r}")
        if not names:
            methods = self._static.setdefault(pattern, {})
        else:
            node = self._root
            for s in segments:
                if s.startswith("{"):
                    if node.param_node is None:
                        node.param_node = _Node()
                        node.param = s[1:-1]
                    elif node.param != s[1:-1]:
                        raise ValueError(f"{pattern!r}: this position is already {{{node.param}}}")
                    node = node.param_node
                else:
                    node = node.children.setdefault(s, _Node())
            if node.methods is None:
                node.methods = {}
            methods = node.methods
        if method in methods:
            raise ValueError(f"route already registered: {method} {pattern}")
        methods[method] = route
        self._cache.clear()
        self._targets.clear()

    def patterns(self) -> set[tuple[str, str]]:
        """Every registered (METHOD, pattern): what the OpenAPI document must describe."""
        out = {(method, pattern) for pattern, methods in self._static.items() for method in methods}
        stack = [self._root]
        while stack:
            node = stack.pop()
            out.update((method, route.pattern) for method, route in (node.methods or {}).items())
            stack.extend(node.children.values())
            if node.param_node is not None:
                stack.append(node.param_node)
        return out

    def resolve(self, url: bytes) -> _Target:
        """Split a raw request target and route it: (decoded path, raw query, routes, params).

        Targets without a query are cached (bounded), so a hot URL costs one dict lookup.
        The params dict is shared with the cache: handlers only read it.
        """
        hit = self._targets.get(url)
        if hit is not None:
            return hit
        q = url.find(b"?")
        raw_path, query = (url, b"") if q < 0 else (url[:q], url[q + 1 :])
        if not raw_path.startswith(b"/"):
            raw_path, query = _absolute_form(url)
        raw = raw_path.decode("latin-1")
        path = unquote(raw) if "%" in raw else raw
        found = self.match(raw)
        target: _Target = (path, query, None, {}) if found is None else (path, query, found[0], found[1])
        if found is not None and q < 0 and len(url) <= _CACHE_MAX_PATH:
            if len(self._targets) >= _CACHE_SIZE:
                self._targets.clear()
            self._targets[url] = target
        return target

    def match(self, path: str) -> tuple[dict[str, Route], dict[str, str]] | None:
        """The routes by method for a raw (undecoded) `path`, and its decoded parameters.

        None means no pattern matches (404). Each call returns a fresh params dict.
        """
        methods = self._static.get(path)
        if methods is not None:
            return methods, {}
        hit = self._cache.get(path)
        if hit is None:
            pairs: list[tuple[str, str]] = []
            node = _walk(self._root, path.split("/")[1:], 0, pairs)
            if node is None or node.methods is None:
                return None  # misses are not cached: random 404 paths must not evict hot ones
            hit = (node.methods, {k: unquote(v) if "%" in v else v for k, v in pairs})
            if len(path) <= _CACHE_MAX_PATH:
                if len(self._cache) >= _CACHE_SIZE:
                    self._cache.clear()
                self._cache[path] = hit
        return hit[0], hit[1].copy()


def _allow(methods: dict[str, Route]) -> str:
    allow = set(methods)
    if "GET" in allow and methods["GET"].kind == _PLAIN:
        allow.add("HEAD")
    return ", ".join(sorted(allow))


def _walk(node: _Node, segs: list[str], i: int, pairs: list[tuple[str, str]]) -> _Node | None:
    """Depth-first match: the literal child first, then the parameter child."""
    if i == len(segs):
        return node if node.methods else None
    seg = segs[i]
    child = node.children.get(seg)
    if child is not None:
        found = _walk(child, segs, i + 1, pairs)
        if found is not None:
            return found
    if node.param_node is not None and seg:
        pairs.append((node.param or "", seg))
        found = _walk(node.param_node, segs, i + 1, pairs)
        if found is not None:
            return found
        pairs.pop()
    return None


def _absolute_form(url: bytes) -> tuple[bytes, bytes]:
    if url == b"*":
        return b"*", b""
    try:
        parsed = httptools.parse_url(url)
    except httptools.HttpParserInvalidURLError:
        return url, b""
    return parsed.path or b"/", parsed.query or b""
