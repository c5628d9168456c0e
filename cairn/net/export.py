"""A hunt's export on the wire: rows of `cairn.core.ledger.export_rows` as CSV or NDJSON chunks."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import msgspec

from cairn.core.ledger import EXPORT_FIELDS

#: Formats by their `?format=` name: content type, and the encoder of a chunk of rows.
_json = msgspec.json.Encoder()


def csv_header() -> bytes:
    return _csv([EXPORT_FIELDS])


def csv_rows(rows: list[dict[str, Any]]) -> bytes:
    """Rows as CSV lines (`EXPORT_FIELDS` order): `items` as a JSON array, a null as an empty cell."""
    return _csv([[_cell(name, r[name]) for name in EXPORT_FIELDS] for r in rows])


def ndjson_rows(rows: list[dict[str, Any]]) -> bytes:
    """Rows as JSON objects, one a line."""
    return b"".join([_json.encode(r) + b"\n" for r in rows])


def _cell(name: str, value: Any) -> Any:
    if value is None:
        return ""
    if name == "items":
        return _json.encode(value).decode()
    if value is True or value is False:
        return "true" if value else "false"
    return value


def _csv(lines: list[Any]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(lines)
    return buf.getvalue().encode()


FORMATS: dict[str, tuple[str, Callable[[list[dict[str, Any]]], bytes], bytes]] = {
    "csv": ("text/csv", csv_rows, csv_header()),
    "ndjson": ("application/x-ndjson", ndjson_rows, b""),
}
