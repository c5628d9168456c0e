"""Structured logs: one JSON object per line, with the request id of the request that failed.

Access logging (one line per request) is off by default: it is not free on the hot path. Turn it
on with `server.access_log = true` (or `CAIRN_SERVER_ACCESS_LOG=true`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
from typing import Any

access_log = logging.getLogger("cairn.access")
_ids = itertools.count(1)


def request_id(req: Any) -> str:
    """The client's `X-Request-Id`, else a new id unique within this process."""
    try:
        rid = req.headers.get("x-request-id")
    except Exception:
        rid = None
    return str(rid)[:128] if rid else f"r{next(_ids):x}"


def tag(exc: BaseException, req: Any) -> None:
    """Remember which request an exception belongs to, for the log line that reports it."""
    if getattr(exc, "request_id", None) is None:
        with contextlib.suppress(AttributeError):
            exc.request_id = request_id(req)  # type: ignore[attr-defined]


class JsonLines(logging.Formatter):
    """One JSON object per log line: time, level, logger, message, any `extra` fields, the request id."""

    FIELDS = ("request_id", "route", "status", "code", "ms", "method", "path", "client")

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k in self.FIELDS:
            if hasattr(record, k):
                out[k] = getattr(record, k)
        if record.exc_info:
            exc = record.exc_info[1]
            rid = getattr(exc, "request_id", None)
            if rid is not None and "request_id" not in out:
                out["request_id"] = rid
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)
