"""Site lists for custom engines: NDJSON, CSV and grayscale heightmap images.

- NDJSON: one JSON object per line, `{"x": 1, "y": 64, "z": -3, "tags": ["surface", "forest"]}` or
  `{"pos": [1, 64, -3], "tags": [...]}`; blank lines are skipped.
- CSV: columns `x,y,z,tags` (a header row is optional); tags are separated by `;`, `|` or spaces.
- Heightmap: each pixel is a column; its gray value maps linearly from 0..max to `y_min..y_max`, the
  height of the floor block. The site is the cell above it: `surface`, or `underwater` when the floor
  lies below `sea_level`.

Tags are the union over the rows: `surface`, `cave`, `underwater` first when present, then the others in
order of first use; at most 32. Every error names the line.
"""

from __future__ import annotations

import csv
import io
import re
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

import msgspec
import numpy as np

from cairn.core.errors import CairnError
from cairn.core.sites import MAX_TAGS, SiteSet
from cairn.worlds.classify import KIND_TAGS


class InvalidSites(CairnError):
    """A site list that cannot be read: the message names the line and the fault."""

    code, status = "invalid_sites", 422


class _Row(msgspec.Struct, forbid_unknown_fields=False):
    x: int | None = None
    y: int | None = None
    z: int | None = None
    pos: list[int] | None = None
    tags: list[str] | str = msgspec.field(default_factory=list)


_dec_row = msgspec.json.Decoder(_Row)
_SPLIT = re.compile(r"[;|\s,]+")


class _Builder:
    """Collects rows into packed arrays (32 bytes a site), interning tag names into bits."""

    def __init__(self) -> None:
        self.xyz = array("q")
        self.masks = array("Q")
        self.names: list[str] = []
        self.bits: dict[str, int] = {}

    def add(self, line: int, x: Any, y: Any, z: Any, tags: Iterable[str]) -> None:
        for v in (x, y, z):
            if not isinstance(v, int) or isinstance(v, bool):
                raise InvalidSites(f"line {line}: x, y and z must be integers", line=line)
        m = 0
        for t in tags:
            t = t.strip()
            if not t:
                continue
            b = self.bits.get(t)
            if b is None:
                if len(self.names) >= MAX_TAGS:
                    raise InvalidSites(f"line {line}: more than {MAX_TAGS} distinct tags (at {t!r})", line=line)
                b = self.bits[t] = len(self.names)
                self.names.append(t)
            m |= 1 << b
        try:
            self.xyz.extend((x, y, z))
        except OverflowError:
            del self.xyz[len(self.masks) * 3 :]
            raise InvalidSites(f"line {line}: a coordinate does not fit in 64 bits", line=line) from None
        self.masks.append(m)

    def build(self) -> SiteSet:
        # Renumber so the kind tags come first, then the rest in order of first use.
        order = [n for n in KIND_TAGS if n in self.bits] + [n for n in self.names if n not in KIND_TAGS]
        remap = np.zeros(max(1, len(self.names)), dtype=np.uint32)
        for new, name in enumerate(order):
            remap[self.bits[name]] = new
        masks = np.frombuffer(self.masks, dtype=np.uint64) if self.masks else np.zeros(0, np.uint64)
        tags = np.zeros(masks.shape[0], dtype=np.uint32)
        for old in range(len(self.names)):
            tags |= (((masks >> np.uint64(old)) & np.uint64(1)).astype(np.uint32)) << remap[old]
        xyz = (np.frombuffer(self.xyz, dtype=np.int64) if self.xyz else np.zeros(0, np.int64)).reshape(-1, 3)
        try:
            return SiteSet.from_arrays(xyz, tags, order)
        except CairnError as e:
            raise InvalidSites(e.message) from None


def _lines(data: bytes | bytearray | memoryview | IO[bytes]) -> Iterator[bytes]:
    """The lines of a body in memory or in a file, one at a time: a file is never read whole."""
    if isinstance(data, bytes | bytearray | memoryview):
        start, buf = 0, bytes(data) if not isinstance(data, bytes) else data
        while start < len(buf):
            end = buf.find(b"\n", start)
            if end < 0:
                end = len(buf)
            yield buf[start:end]
            start = end + 1
    else:
        yield from data


def read_ndjson(data: bytes | bytearray | memoryview | IO[bytes]) -> SiteSet:
    """Sites from NDJSON bytes or a binary file, read line by line. O(n log n); about 32 bytes a site."""
    b = _Builder()
    for i, raw in enumerate(_lines(data), start=1):
        if not raw.strip():
            continue
        try:
            row = _dec_row.decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError) as e:
            raise InvalidSites(f"line {i}: not a valid site object: {e}", line=i) from None
        if row.pos is not None:
            if row.x is not None or row.y is not None or row.z is not None:
                raise InvalidSites(f"line {i}: give pos or x, y and z, not both", line=i)
            if len(row.pos) != 3:
                raise InvalidSites(f"line {i}: pos must be [x, y, z]", line=i)
            x, y, z = row.pos
        elif row.x is None or row.y is None or row.z is None:
            raise InvalidSites(f"line {i}: a site needs x, y and z (or pos)", line=i)
        else:
            x, y, z = row.x, row.y, row.z
        tags = _SPLIT.split(row.tags) if isinstance(row.tags, str) else row.tags
        b.add(i, x, y, z, tags)
    return b.build()


def read_csv(data: bytes | bytearray | memoryview | IO[bytes]) -> SiteSet:
    """Sites from CSV bytes or a binary file (`x,y,z,tags`, header optional), read row by row. O(n log n)."""
    raw = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")  # type: ignore[arg-type]
    try:
        return _read_csv(text)
    except UnicodeDecodeError:
        raise InvalidSites("CSV body is not UTF-8") from None
    finally:
        text.detach()  # the caller's file stays open


def _csv_int(cell: str) -> int:
    """A CSV coordinate: ASCII digits and an optional sign (`int()` alone also takes other scripts' digits)."""
    if not cell.isascii():
        raise ValueError(cell)
    return int(cell)


def _read_csv(text: IO[str]) -> SiteSet:
    b = _Builder()
    for i, row in enumerate(csv.reader(text), start=1):
        if not row or not any(c.strip() for c in row):
            continue
        if i == 1 and row[0].strip().lower() in ("x", "#x"):
            continue
        if len(row) < 3:
            raise InvalidSites(f"line {i}: expected x,y,z,tags", line=i)
        try:
            x, y, z = (_csv_int(c) for c in row[:3])
        except ValueError:
            raise InvalidSites(f"line {i}: x, y and z must be integers", line=i) from None
        tags = [t for c in row[3:] for t in _SPLIT.split(c)]
        b.add(i, x, y, z, tags)
    return b.build()


class HeightmapOptions(NamedTuple):
    origin: tuple[int, int] = (0, 0)  # world (x, z) of the top-left pixel
    y_min: int = 0  # height of gray 0
    y_max: int = 255  # height of the brightest possible gray
    sea_level: int | None = None  # floors below this are under water
    step: int = 1  # keep every step-th pixel in x and z


def heightmap_sites(heights: np.ndarray[Any, Any], opt: HeightmapOptions) -> SiteSet:
    """Sites from a (rows=z, cols=x) array of floor heights. O(pixels)."""
    h = np.asarray(heights, dtype=np.int64)[:: opt.step, :: opt.step]
    zi, xi = np.indices(h.shape)
    x = (xi * opt.step + opt.origin[0]).ravel()
    z = (zi * opt.step + opt.origin[1]).ravel()
    y = h.ravel() + 1
    names = ["surface"]
    tags = np.ones(y.shape[0], dtype=np.uint32)
    if opt.sea_level is not None:
        names.append("underwater")
        wet = y <= opt.sea_level
        tags[wet] = 2
    return SiteSet.from_arrays(np.stack([x, y, z], axis=1), tags, names)


def read_heightmap(path: Path, opt: HeightmapOptions) -> SiteSet:
    """Sites from a grayscale image (8 or 16 bits per pixel). O(pixels)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.int64)
                top = 65535
            else:
                arr = np.asarray(img.convert("L"), dtype=np.int64)
                top = 255
    except (UnidentifiedImageError, OSError) as e:
        raise InvalidSites(f"{path}: not a readable image: {e}") from None
    if opt.y_max <= opt.y_min:
        raise InvalidSites("heightmap y_max must be above y_min")
    heights = opt.y_min + (arr * (opt.y_max - opt.y_min) + top // 2) // top
    return heightmap_sites(heights, opt)
