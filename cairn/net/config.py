"""The HTTP transport's limits and timeouts: `ServerConfig`, validated once when it is built.

Every part of the transport (`cairn.net.protocol`, `cairn.net.http`, `cairn.net.websocket`) reads
its limits from here; `cairn.net.server` fills one in from the `[server]` section of the config.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["ServerConfig"]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Transport limits and timeouts; every field has a default and is validated once."""

    max_body: int = 1_048_576
    """Largest request body in bytes, unless a route sets its own (default 1 MiB). Beyond: 413."""
    header_timeout: float = 10.0
    """Seconds from a request's first byte until its headers must be complete (default 10)."""
    body_timeout: float = 30.0
    """Longest silence in seconds while a request body is arriving (default 30)."""
    idle_timeout: float = 60.0
    """Seconds a keep-alive connection may sit idle (default 60). WebSocket: ping after half, drop after all."""
    send_timeout: float = 30.0
    """Seconds a client may leave our writes undrained before it is dropped (default 30)."""
    max_inflight: int = 64
    """Pipelined requests pending per connection before reading pauses (default 64)."""
    max_header_bytes: int = 16_384
    """Largest request line plus headers in bytes (default 16 KiB). Beyond: 431."""
    ws_max_message: int = 1_048_576
    """Largest WebSocket message in bytes (default 1 MiB). Beyond: close 1009."""
    backlog: int = 512
    """Listen backlog of the server socket (default 512): also the most connections accepted in one
    turn of the event loop, so it bounds the stall a burst of connects can cause."""
    max_uploads: int = 2
    """Bodies of `spool=True` routes being received at once (default 2). Beyond: 503."""
    max_connections: int = 10_000
    """Open connections, HTTP and WebSocket (default 10,000). Beyond: a connection that has not
    sent a request yet is dropped to make room, else the new one is."""
    max_connections_per_address: int = 512
    """Open connections from one client address (default 512), except from `trusted_addresses`."""
    first_request_timeout: float = 5.0
    """Seconds from accepting a connection until its first request's head is complete (default 5)."""
    trusted_addresses: tuple[str, ...] = ()
    """Networks (CIDR) exempt from the per-address limits: a reverse proxy in front (default none)."""
    auth_failures_slow: int = 5
    """401s to one address (within a minute) before each further one is answered late (default 5)."""
    auth_failures_close: int = 20
    """401s on one connection, or to one address within a minute, before each closes its connection (default 20)."""
    spool_dir: str = ""
    """Directory for spooled bodies (default: the system's temporary directory)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("str", "tuple[str, ...]"):
                continue
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"ServerConfig.{f.name}: must be a positive number, got {value!r}")
