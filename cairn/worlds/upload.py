"""`PUT /v1/worlds/{world}/sites`: parse an uploaded site list or pack, keep it, open it.

Runs in a worker thread (the handler uses `run_in_executor`): parsing and sorting are O(n log n).
The new pack is written to `<data_dir>/worlds/<world>.pack` atomically (temp file, fsync, rename), so
a failed upload leaves the previous pack in place and a restart serves the last good upload.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Final

from cairn.core.errors import CairnError
from cairn.core.sites import SiteSet
from cairn.worlds import sources
from cairn.worlds.pack import is_pack, load_pack, load_pack_bytes, uploaded_pack_path, write_pack

PACK_TYPES: Final = ("application/vnd.cairn.site-pack", "application/octet-stream")
NDJSON_TYPES: Final = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-seq")
CSV_TYPES: Final = ("text/csv",)


class UnsupportedMediaType(CairnError):
    """A body whose content type is not a site list or a pack."""

    code, status = "unsupported_media_type", 415


def body_format(content_type: str, head: bytes) -> str:
    """`pack`, `ndjson` or `csv`, from the content type (the pack magic wins over a wrong type)."""
    ctype = content_type.split(";")[0].strip().lower()
    if is_pack(head) or ctype in PACK_TYPES:
        return "pack"
    if ctype in NDJSON_TYPES or ctype == "application/json":
        return "ndjson"
    if ctype in CSV_TYPES:
        return "csv"
    raise UnsupportedMediaType(
        f"content type {ctype or '(none)'!r} is not supported; send application/x-ndjson, text/csv "
        "or application/vnd.cairn.site-pack",
        field="content-type",
    )


def parse(body: bytes | bytearray | memoryview, content_type: str) -> SiteSet:
    """The SiteSet a body holds, fully validated. O(n log n)."""
    fmt = body_format(content_type, bytes(body[:8]))
    if fmt == "pack":
        return load_pack_bytes(body, "body")
    if fmt == "csv":
        return sources.read_csv(body)
    return sources.read_ndjson(body)


def ingest(
    body: bytes | bytearray | memoryview, content_type: str, data_dir: str | Path, world: str
) -> tuple[SiteSet, dict[str, Any]]:
    """Parse, persist as `<data_dir>/worlds/<world>.pack`, and reopen it memory-mapped."""
    path = uploaded_pack_path(data_dir, world)
    started = time.perf_counter()
    sites = parse(body, content_type)
    write_pack(sites, path, {"world": world, "source": "upload"})
    mapped = load_pack(path, verify=False)
    info = {
        "world": world,
        "sites": len(mapped),
        "chunks": len(mapped.chunk_keys),
        "tags": list(mapped.tag_names),
        "bytes": len(body),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return mapped, info
