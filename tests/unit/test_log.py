"""Structured logs: JSON lines, and the request id of a failed request on its error line."""

from __future__ import annotations

import json
import logging

from cairn.log import JsonLines, request_id, tag


class Req:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


def test_error_lines_carry_the_request_id_of_the_failed_request() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError as e:
        tag(e, Req({"x-request-id": "abc-1"}))
        record = logging.LogRecord("cairn", logging.ERROR, __file__, 1, "internal error", (), (type(e), e, None))
    out = json.loads(JsonLines().format(record))
    assert out["request_id"] == "abc-1" and out["level"] == "error" and out["msg"] == "internal error"
    assert "RuntimeError: boom" in out["exc"]


def test_request_ids_are_generated_when_the_client_sends_none() -> None:
    a, b = request_id(Req({})), request_id(Req({}))
    assert a != b and a.startswith("r")
    assert request_id(Req({"x-request-id": "x" * 500})) == "x" * 128
