"""`PUT /v1/worlds/{world}/sites`: parse an uploaded site list or pack, keep it, open it.

Runs in a worker thread (the handler uses `run_in_executor`): parsing and sorting are O(n log n).
A large body arrives as a file (the transport spools it): a pack is mapped, NDJSON and CSV are read
a line at a time into packed arrays, so memory stays near the size of the result, not of the body.
The new pack is written to `<data_dir>/worlds/<world>.pack` atomically (temp file, fsync, rename), so
a failed upload leaves the previous pack in place and a restart serves the last good upload.
"""

from __future__ import annotations

import mmap
import time
from pathlib import Path
from typing import IO, Any, Final

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


Body = bytes | bytearray | memoryview | IO[bytes]


def parse(body: Body, content_type: str) -> SiteSet:
    """The SiteSet a body (in memory, or a binary file at its start) holds, fully validated. O(n log n)."""
    if isinstance(body, bytes | bytearray | memoryview):
        head = bytes(body[:8])
    else:
        head = body.read(8)
        body.seek(0)
    fmt = body_format(content_type, head)
    if fmt == "pack":
        if isinstance(body, bytes | bytearray | memoryview):
            return load_pack_bytes(body, "body")
        # The map lives as long as the arrays over it (numpy holds it), with no copy in memory.
        return load_pack_bytes(mmap.mmap(body.fileno(), 0, access=mmap.ACCESS_READ), "body")
    if fmt == "csv":
        return sources.read_csv(body)
    return sources.read_ndjson(body)


def ingest(body: Body, content_type: str, data_dir: str | Path, world: str) -> tuple[SiteSet, dict[str, Any]]:
    """Parse, persist as `<data_dir>/worlds/<world>.pack`, and reopen it memory-mapped.

    A body that holds no sites is refused before anything is written.
    """
    path = uploaded_pack_path(data_dir, world)
    started = time.perf_counter()
    size = len(body) if isinstance(body, bytes | bytearray | memoryview) else body.seek(0, 2)
    if not isinstance(body, bytes | bytearray | memoryview):
        body.seek(0)
    if size == 0:
        raise sources.InvalidSites("the body holds no sites")
    sites = parse(body, content_type)
    if len(sites) == 0:
        raise sources.InvalidSites("the body holds no sites")
    write_pack(sites, path, {"world": world, "source": "upload"})
    mapped = load_pack(path, verify=False)
    info = {
        "world": world,
        "sites": len(mapped),
        "chunks": len(mapped.chunk_keys),
        "tags": list(mapped.tag_names),
        "bytes": size,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return mapped, info
