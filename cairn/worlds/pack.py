"""The site pack: a versioned, checksummed, memory-mappable file holding one world's SiteSet.

Layout (all little-endian; docs/site-pack.md is the reference):

- header, 40 bytes: magic `CAIRNSPK`, version u32, flags u32, sites u64, chunks u64, sections u32,
  header CRC-32 u32 (over the header with this field zeroed, plus the directory);
- directory: one 24-byte entry per section (offset u64, length u64, CRC-32 u32, reserved u32), in the
  order meta, xz, y, tags, chunk_keys, chunk_starts (version 2);
- sections, each starting on a 64-byte boundary: `meta` is UTF-8 JSON (`tag_names`, `world`,
  `source`, `created_at`); the others are the raw SiteSet columns.

`load_pack` maps the file read-only and wraps the columns without copying, so processes that open
the same pack share its pages, and opening costs O(chunks) plus the CRC pass (skippable).
Version 1 packs (int32 `x` and `z` columns instead of `xz`) still load: their `xz` column is
computed into memory (1 byte per site) and the rest is mapped.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import tempfile
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np

from cairn.core.errors import CairnError
from cairn.core.sites import ARRAY_DTYPES, MAX_TAGS, SiteSet, chunk_key, pack_xz

MAGIC: Final = b"CAIRNSPK"
VERSION: Final = 2
HEADER: Final = struct.Struct("<8sIIQQII")
ENTRY: Final = struct.Struct("<QQII")
ALIGN: Final = 64
MAX_META: Final = 1 << 20
_V1_COLUMNS: Final = (
    ("x", np.int32), ("y", np.int16), ("z", np.int32), ("tags", np.uint32), ("chunk_keys", np.int64),
    ("chunk_starts", np.int64),
)  # fmt: skip
#: Per readable version: the column sections after `meta`, in directory order, with their
#: little-endian dtypes.
COLUMNS: Final = {
    v: tuple((name, np.dtype(t).newbyteorder("<")) for name, t in cols)
    for v, cols in ((1, _V1_COLUMNS), (VERSION, ARRAY_DTYPES))
}
SECTIONS: Final = ("meta", *(name for name, _ in COLUMNS[VERSION]))
DIR_END: Final = HEADER.size + ENTRY.size * len(SECTIONS)


class InvalidPack(CairnError):
    """A file or body that is not a valid site pack (wrong magic, version, size or checksum)."""

    code, status = "invalid_pack", 422


def is_pack(head: bytes) -> bool:
    """Whether `head` starts with the pack magic. O(1)."""
    return head[:8] == MAGIC


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _le(a: np.ndarray[Any, Any], dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    return np.ascontiguousarray(a, dtype=dtype)


def _view(p: bytes | np.ndarray[Any, Any]) -> bytes | memoryview:
    """The bytes of a payload, without copying a contiguous array."""
    return p.data.cast("B") if isinstance(p, np.ndarray) else p


def _columns(sites: SiteSet) -> list[np.ndarray[Any, Any]]:
    return [_le(getattr(sites, name), dt) for name, dt in COLUMNS[VERSION]]


def _layout(sites: SiteSet, meta: Mapping[str, Any] | None) -> tuple[bytes, list[bytes | np.ndarray[Any, Any]]]:
    """The header plus directory, and the section payloads in file order."""
    doc = {"tag_names": list(sites.tag_names), "created_at": int(time.time())}
    if meta:
        doc.update({k: v for k, v in meta.items() if k != "tag_names"})
    meta_bytes = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    payloads: list[bytes | np.ndarray[Any, Any]] = [meta_bytes, *_columns(sites)]
    entries = b""
    off = _align(DIR_END)
    for p in payloads:
        data = _view(p)
        n = len(data)
        entries += ENTRY.pack(off, n, zlib.crc32(data), 0)
        off = _align(off + n)
    head = HEADER.pack(MAGIC, VERSION, 0, len(sites), len(sites.chunk_keys), len(SECTIONS), 0)
    crc = zlib.crc32(head + entries)
    head = HEADER.pack(MAGIC, VERSION, 0, len(sites), len(sites.chunk_keys), len(SECTIONS), crc)
    return head + entries, payloads


def write_pack(sites: SiteSet, path: str | Path, meta: Mapping[str, Any] | None = None) -> Path:
    """Write `sites` as a pack at `path` atomically: temp file, fsync, rename, fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    head, payloads = _layout(sites, meta)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            pos = len(head)
            for p in payloads:
                pad = _align(pos) - pos
                f.write(b"\0" * pad)
                data = _view(p)
                f.write(data)
                pos += pad + len(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def pack_bytes(sites: SiteSet, meta: Mapping[str, Any] | None = None) -> bytes:
    """The pack of `sites` as one bytes object (for uploads and tests). O(n)."""
    head, payloads = _layout(sites, meta)
    out = bytearray(head)
    for p in payloads:
        out += b"\0" * (_align(len(out)) - len(out))
        out += _view(p)
    return bytes(out)


def _fsync_dir(folder: Path) -> None:
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


class PackInfo:
    """What a pack's header and meta section say."""

    __slots__ = ("chunks", "meta", "sections", "sites", "version")

    def __init__(
        self, version: int, sites: int, chunks: int, sections: list[tuple[int, int, int]], meta: dict[str, Any]
    ):
        self.version = version
        self.sites = sites
        self.chunks = chunks
        self.sections = sections
        self.meta = meta


def read_info(buf: Any, name: str = "pack") -> PackInfo:
    """Parse and check the header, directory and meta of a pack held in `buf`. O(1)."""
    size = len(buf)
    if size < HEADER.size:
        raise InvalidPack(f"{name}: {size} bytes is too short for a site pack header")
    magic, version, _flags, n, k, nsec, crc = HEADER.unpack_from(buf, 0)
    if magic != MAGIC:
        raise InvalidPack(f"{name}: not a site pack (magic {bytes(magic)!r}, expected {MAGIC!r})")
    columns = COLUMNS.get(version)
    if columns is None:
        raise InvalidPack(
            f"{name}: site pack version {version} is not supported (this Cairn reads {', '.join(map(str, COLUMNS))})"
        )
    names = ("meta", *(c for c, _ in columns))
    if nsec != len(names):
        raise InvalidPack(f"{name}: site pack has {nsec} sections, expected {len(names)}")
    if size < HEADER.size + ENTRY.size * nsec:
        raise InvalidPack(f"{name}: {size} bytes is too short for a site pack directory (truncated?)")
    zeroed = HEADER.pack(magic, version, _flags, n, k, nsec, 0)
    dir_end = HEADER.size + ENTRY.size * nsec
    if zlib.crc32(zeroed + bytes(buf[HEADER.size : dir_end])) != crc:
        raise InvalidPack(f"{name}: header checksum mismatch (the file is corrupted)")
    sections = [ENTRY.unpack_from(buf, HEADER.size + i * ENTRY.size)[:3] for i in range(nsec)]
    want = [None, *(k + 1 if c == "chunk_starts" else k if c == "chunk_keys" else n for c in names[1:])]
    dtypes = (None, *(dt for _, dt in columns))
    for sec, (off, length, _), count, dt in zip(names, sections, want, dtypes, strict=True):
        if off % ALIGN or off < dir_end or off + length > size:
            raise InvalidPack(f"{name}: section {sec} at {off}+{length} lies outside the {size}-byte file (truncated?)")
        if dt is not None and length != count * dt.itemsize:
            raise InvalidPack(f"{name}: section {sec} holds {length} bytes, expected {count * dt.itemsize}")
    moff, mlen, mcrc = sections[0]
    if mlen > MAX_META or zlib.crc32(buf[moff : moff + mlen]) != mcrc:
        raise InvalidPack(f"{name}: meta section checksum mismatch (the file is corrupted)")
    try:
        meta = json.loads(bytes(buf[moff : moff + mlen]))
        tag_names = meta["tag_names"]
    except (ValueError, KeyError, TypeError):
        raise InvalidPack(f"{name}: meta section is not the expected JSON") from None
    if not isinstance(tag_names, list) or len(tag_names) > MAX_TAGS:
        raise InvalidPack(f"{name}: meta tag_names must be a list of at most {MAX_TAGS} names")
    return PackInfo(version, n, k, sections, meta)


def _wrap(buf: Any, info: PackInfo, name: str, verify: bool) -> SiteSet:
    cols: dict[str, np.ndarray[Any, Any]] = {}
    for (off, length, crc), (sec, dt) in zip(info.sections[1:], COLUMNS[info.version], strict=True):
        if verify and zlib.crc32(buf[off : off + length]) != crc:
            raise InvalidPack(f"{name}: section {sec} checksum mismatch (the file is corrupted)")
        cols[sec] = np.frombuffer(buf, dtype=dt, count=length // dt.itemsize, offset=off)
    keys, starts = cols["chunk_keys"], cols["chunk_starts"]
    if int(starts[0]) != 0 or int(starts[-1]) != info.sites:
        raise InvalidPack(f"{name}: chunk index does not cover the {info.sites} sites")
    if info.version == 1:
        x, z = cols["x"], cols["z"]
        if not np.array_equal(chunk_key(x, z), np.repeat(keys, np.diff(starts))):
            raise InvalidPack(f"{name}: a site is filed under the wrong chunk")
        cols["xz"] = pack_xz(x, z)
    try:
        return SiteSet.from_index_arrays(
            cols["xz"], cols["y"], cols["tags"], keys, starts, info.meta["tag_names"]
        )
    except CairnError as e:
        raise InvalidPack(f"{name}: {e.message}") from None


def load_pack(path: str | Path, verify: bool = True) -> SiteSet:
    """Open a pack file as a SiteSet over a read-only memory map (no copy).

    O(chunks) for the index checks plus, with `verify`, one CRC-32 pass over the file.
    Raises InvalidPack naming the file and the fault.
    """
    path = Path(path)
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < DIR_END:
            raise InvalidPack(f"{path}: {size} bytes is too short for a site pack")
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    buf = memoryview(mm)
    info = read_info(buf, str(path))
    return _wrap(buf, info, str(path), verify)


def pack_meta(path: str | Path) -> dict[str, Any]:
    """The meta section of a pack file (tag names, world, source...). O(1)."""
    with Path(path).open("rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return read_info(memoryview(mm), str(path)).meta


def load_pack_bytes(data: bytes | bytearray | memoryview, name: str = "body") -> SiteSet:
    """A SiteSet over a pack held in memory, fully checked (CRCs and every SiteSet invariant). O(n)."""
    buf = memoryview(data).cast("B")
    info = read_info(buf, name)
    sites = _wrap(buf, info, name, verify=True)
    validate(sites, name)
    return sites


def validate(sites: SiteSet, name: str = "pack") -> None:
    """Check every SiteSet invariant without `assert`, raising InvalidPack on the first fault. O(n)."""
    problem = sites.fault()
    if problem is not None:
        raise InvalidPack(f"{name}: {problem}")


def uploaded_pack_path(data_dir: str | Path, world: str) -> Path:
    """Where the last pack uploaded for `world` is kept: `<data_dir>/worlds/<world>.pack`, with every
    character but ASCII letters, digits, `_`, `-` and a `.` past the first written `%XX` (so that
    `minecraft:overworld` is `minecraft%3Aoverworld.pack`).

    >>> uploaded_pack_path("d", "minecraft:the_end").name
    'minecraft%3Athe_end.pack'
    """
    if not world or len(world) > 64:
        raise InvalidPack(f"world id {world!r} cannot name a file (1-64 characters)")
    stem = "".join(
        c if (c.isascii() and (c.isalnum() or c in "_-")) or (c == "." and i > 0) else "".join(
            f"%{b:02X}" for b in c.encode()
        )
        for i, c in enumerate(world)
    )  # fmt: skip
    return Path(data_dir) / "worlds" / f"{stem}.pack"
