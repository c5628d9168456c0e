"""Hytale `<x>.<z>.region.bin` saves, read as the game's server writes them.

The layout follows the game's own server code (docs/worlds.md names the classes):

- the container (`IndexedStorageFile`): a 32-byte header (`HytaleIndexedStorage`, version, blob count,
  segment size, big-endian), a big-endian table of first segments (1-based, 0 = no chunk), and per
  chunk a blob of (source length, compressed length, zstd data) holding one BSON document;
- per section (`ChunkColumn.Sections[i]`, 32 blocks high, from y = 0) a `Block` component
  (`BlockSection`) and a `Fluid` component (`FluidSection`), each a palette: a type byte (0 Empty,
  1 HalfByte, 2 Byte, 3 Short), a big-endian entry count, entries of (internal id: 1 byte, or 2 for
  Short; name: 2-byte length + UTF-8; count: 2 bytes), then 32³ internal ids at index
  y·1024 + z·32 + x. HalfByte ids are nibbles with the even index in the HIGH half (`BitUtil`);
  Short ids are big-endian. A fluid section then holds a flag and, when set, 16384 bytes of 4-bit
  levels with the even index in the LOW half (`FluidSection.setFluidLevel`).

Cells are classified by block and fluid names (classify.py), and the site rules run on the column.
"""

from __future__ import annotations

import struct
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from cairn.worlds.anvil import MAX_CHUNK_BYTES, ChunkSites
from cairn.worlds.classify import AIR, SOLID, Classifier, classify

SECTION: Final = 32
CELLS: Final = SECTION**3
MAGIC: Final = b"HytaleIndexedStorage"
HEADER: Final = 32
BLOB_HEADER: Final = 8
REGION_CHUNKS: Final = 32
EMPTY, HALF_BYTE, BYTE, SHORT = 0, 1, 2, 3
#: `BlockSection` codec versions from 6 on start with the block-migration version (an int).
MIGRATION_FROM: Final = 6
#: The game's columns hold 10 sections (320 blocks); more than 128 (4,096 blocks, the highest y a site
#: may have) is a damaged chunk, not a world.
MAX_SECTIONS: Final = 128
_LUT_SIZE: Final = {HALF_BYTE: 16, BYTE: 256, SHORT: 1 << 16}


class HytaleError(Exception):
    """A region, chunk or section that is not in the game's format."""


class Palette(NamedTuple):
    """One section palette: its kind, (internal id, name) entries, and where its 32³ cells lie in `data`."""

    kind: int
    entries: tuple[tuple[int, str], ...]
    data: bytes
    cells: int  # offset of the cells in `data`
    end: int  # offset just after the cells

    def ids(self) -> npt.NDArray[np.uint16] | None:
        """The 32³ internal ids, or None for an Empty palette (every cell is `Empty`). O(cells)."""
        return None if self.kind == EMPTY else decode_indices(self.data, self.kind, self.cells)


def region_coords(path: Path) -> tuple[int, int]:
    """(rx, rz) from a name `<rx>.<rz>.region.bin`."""
    parts = path.name.split(".")
    if len(parts) != 4 or parts[2:] != ["region", "bin"]:
        raise ValueError(f"{path.name}: a Hytale region file is named <x>.<z>.region.bin")
    return int(parts[0]), int(parts[1])


# ---- the container ------------------------------------------------------------------------------------------


class Region:
    """An open `IndexedStorageFile`: its header and blob table; `blob(slot)` reads one chunk's bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f = path.open("rb")
        try:
            head = self._f.read(HEADER)
            if len(head) < HEADER or head[:20] != MAGIC:
                raise HytaleError(f"{path}: not a Hytale region file (no HytaleIndexedStorage header)")
            self.version, self.blob_count, self.segment_size = struct.unpack(">III", head[20:32])
            if self.version > 1 or not 0 < self.blob_count <= 1 << 20 or self.segment_size == 0:
                raise HytaleError(f"{path}: unsupported header (version {self.version}, {self.blob_count} blobs)")
            table = self._f.read(4 * self.blob_count)
            if len(table) < 4 * self.blob_count:
                raise HytaleError(f"{path}: truncated blob table")
            self.first = np.frombuffer(table, dtype=">u4").astype(np.int64)
            self.size = path.stat().st_size
            import zstandard

            self._zstd = zstandard.ZstdDecompressor()
            self._zstd_error = zstandard.ZstdError
            self._zstd_size = zstandard.frame_content_size
        except BaseException:
            self._f.close()
            raise

    def slots(self) -> list[int]:
        """The blob indexes that hold a chunk, in order."""
        return [int(s) for s in np.flatnonzero(self.first)]

    def blob(self, slot: int) -> bytes:
        """The decompressed bytes of blob `slot`. Raises HytaleError on a damaged blob."""
        if not 0 <= slot < self.blob_count or self.first[slot] == 0:
            raise HytaleError("no such blob")
        pos = HEADER + 4 * self.blob_count + (int(self.first[slot]) - 1) * self.segment_size
        self._f.seek(pos)
        head = self._f.read(BLOB_HEADER)
        if len(head) < BLOB_HEADER:
            raise HytaleError("blob header beyond the end of the file")
        src, comp = struct.unpack(">II", head)
        if pos + BLOB_HEADER + comp > self.size:
            raise HytaleError(f"blob of {comp} bytes runs past the end of the file")
        if src > MAX_CHUNK_BYTES:
            raise HytaleError(f"blob decompresses to {src:,} bytes, more than {MAX_CHUNK_BYTES >> 20} MiB")
        try:
            data = self._f.read(comp)
            # `max_output_size` bounds only a frame that does not declare its size: check a declared one.
            if self._zstd_size(data) > src:
                raise HytaleError(f"blob's zstd frame decompresses to more than its header's {src:,} bytes")
            out = self._zstd.decompress(data, max_output_size=src)
        except self._zstd_error as e:
            raise HytaleError(f"bad zstd data ({e})") from None
        if len(out) != src:
            raise HytaleError(f"blob holds {len(out)} bytes, header says {src}")
        return out

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> Region:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def chunk_slots(path: Path) -> list[int]:
    """The blob indexes of a region file that hold a chunk."""
    with Region(path) as region:
        return region.slots()


# ---- sections -------------------------------------------------------------------------------------------------


def decode_indices(raw: bytes | memoryview, kind: int, offset: int = 0) -> npt.NDArray[np.uint16]:
    """The 32³ internal ids of a palette's cell data at `offset`. O(cells).

    HalfByte: two ids per byte, the even cell in the high nibble (`BitUtil.getNibble`); Byte: one
    unsigned byte each; Short: big-endian 2-byte ids.
    """
    if kind == HALF_BYTE:
        b = np.frombuffer(raw, dtype=np.uint8, count=CELLS // 2, offset=offset)
        out = np.empty(CELLS, dtype=np.uint16)
        out[0::2] = b >> 4
        out[1::2] = b & 0x0F
        return out
    if kind == BYTE:
        return np.frombuffer(raw, dtype=np.uint8, count=CELLS, offset=offset).astype(np.uint16)
    if kind == SHORT:
        return np.frombuffer(raw, dtype=">u2", count=CELLS, offset=offset).astype(np.uint16)
    raise HytaleError(f"palette type {kind} is not one of 0..3")


_ID_BYTES: Final = {HALF_BYTE: 1, BYTE: 1, SHORT: 2}
_CELL_BYTES: Final = {HALF_BYTE: CELLS // 2, BYTE: CELLS, SHORT: 2 * CELLS}


def read_palette(data: bytes, pos: int = 0) -> Palette:
    """The palette at `data[pos:]` (`ISectionPalette.serialize` after its type byte is read here too)."""
    try:
        kind = data[pos]
        pos += 1
        if kind == EMPTY:
            return Palette(EMPTY, (), data, pos, pos)
        if kind not in _ID_BYTES:
            raise HytaleError(f"palette type {kind} is not one of 0..3")
        (count,) = struct.unpack_from(">H", data, pos)
        pos += 2
        short = kind == SHORT
        entries = []
        for _ in range(count):
            if short:
                (internal,) = struct.unpack_from(">H", data, pos)
                pos += 2
            else:
                internal = data[pos]
                pos += 1
            (n,) = struct.unpack_from(">H", data, pos)
            name = data[pos + 2 : pos + 2 + n].decode("utf-8")
            pos += 4 + n  # the name, then the block count, which Cairn does not need
            entries.append((internal, name))
    except (IndexError, struct.error, UnicodeDecodeError) as e:
        raise HytaleError(f"section palette is truncated or damaged ({e})") from None
    need = _CELL_BYTES[kind]
    if pos + need > len(data):
        raise HytaleError(f"section holds {len(data) - pos} bytes of cells, expected {need}")
    return Palette(kind, tuple(entries), data, pos, pos + need)


def _data(component: dict[str, Any]) -> bytes:
    """A component's `Data` binary (b"" when absent)."""
    data = component.get("Data", b"")
    if not isinstance(data, bytes):
        raise HytaleError(f"component Data is {type(data).__name__}, not binary")
    return data


def block_palette(component: dict[str, Any]) -> Palette:
    """The block palette of a section's `Block` component (`BlockSection`)."""
    data = _data(component)
    if not data:
        return Palette(EMPTY, (), data, 0, 0)
    version = int(component.get("Version", MIGRATION_FROM))
    return read_palette(data, 4 if version >= MIGRATION_FROM else 0)


def fluid_cells(component: dict[str, Any] | None) -> tuple[Palette, npt.NDArray[np.uint8] | None]:
    """A section's fluid palette and its 32³ levels (None when the section stores no levels)."""
    data = _data(component or {})
    if not data:
        return Palette(EMPTY, (), data, 0, 0), None
    pal = read_palette(data)
    pos = pal.end
    if pos >= len(data) or data[pos] == 0:
        return pal, None
    if pos + 1 + CELLS // 2 > len(data):
        raise HytaleError("fluid levels are truncated")
    b = np.frombuffer(data, dtype=np.uint8, count=CELLS // 2, offset=pos + 1)
    levels = np.empty(CELLS, dtype=np.uint8)
    levels[0::2] = b & 0x0F
    levels[1::2] = b >> 4
    return pal, levels


_LutKey = tuple[bool, int, tuple[tuple[int, str], ...]]
# Per classifier (its deny list shapes the classes), then per palette: palettes repeat across sections.
_LUTS: weakref.WeakKeyDictionary[Classifier, dict[_LutKey, npt.NDArray[Any]]] = weakref.WeakKeyDictionary()


def _lut(classifier: Classifier, pal: Palette, fluid: bool) -> npt.NDArray[Any]:
    """Internal id → class; ids missing from the palette are id 0 in the game (Empty), so AIR here.

    For HalfByte palettes the table maps a whole byte to its two cells' classes (256 uint16 items,
    each the even cell's class then the odd cell's in memory), so that a section is classed with one
    lookup per byte.
    """
    cache = _LUTS.setdefault(classifier, {})
    key = (fluid, pal.kind, pal.entries)
    lut = cache.get(key)
    if lut is None:
        if len(cache) > 4096:
            cache.clear()
        lut = np.zeros(_LUT_SIZE[pal.kind], dtype=np.uint8)
        for internal, name in pal.entries:
            lut[internal] = classifier.fluid(name) if fluid else classifier(name)
        if pal.kind == HALF_BYTE:
            b = np.arange(256)
            pairs = np.stack([lut[b >> 4], lut[b & 0x0F]], axis=1)  # BitUtil.getNibble: even index high
            lut = pairs.view(np.uint16).reshape(256)  # both cells' classes in one item, in memory order
        cache[key] = lut
    return lut


def cell_classes(pal: Palette, classifier: Classifier, fluid: bool = False) -> npt.NDArray[np.uint8]:
    """The classes of a non-Empty palette's 32³ cells, by index. O(cells)."""
    lut = _lut(classifier, pal, fluid)
    if pal.kind == HALF_BYTE:
        cells = np.frombuffer(pal.data, dtype=np.uint8, count=CELLS // 2, offset=pal.cells)
        return np.take(lut, cells).view(np.uint8)
    if pal.kind == BYTE:
        return np.take(lut, np.frombuffer(pal.data, dtype=np.uint8, count=CELLS, offset=pal.cells))
    return np.take(lut, decode_indices(pal.data, pal.kind, pal.cells))


def section_classes(section: dict[str, Any], classifier: Classifier) -> npt.NDArray[np.uint8] | None:
    """The (y, z, x) cell classes of one section document, or None if it holds no block and no fluid.

    A fluid cell (a fluid id with a level above 0) is WATER for water and OTHER for lava, poison and
    slime, where its block is air or a non-solid block; a solid block keeps SOLID. O(cells).
    """
    comps = section.get("Components") or {}
    blocks = block_palette(comps.get("Block") or {})
    fpal, levels = fluid_cells(comps.get("Fluid"))
    if fpal.kind == EMPTY or levels is None:
        if blocks.kind == EMPTY:
            return None
        return cell_classes(blocks, classifier).reshape(SECTION, SECTION, SECTION)
    cells = np.zeros(CELLS, dtype=np.uint8) if blocks.kind == EMPTY else cell_classes(blocks, classifier)
    fluid = cell_classes(fpal, classifier, True)
    fluid[levels == 0] = AIR  # the game keeps no fluid at level 0 (`FluidSection.setFluid`)
    wet = (fluid != AIR) & (cells != SOLID)
    cells[wet] = fluid[wet]
    return cells.reshape(SECTION, SECTION, SECTION)


def chunk_sections(doc: dict[str, Any]) -> list[Any]:
    """The section documents of a chunk document (`Components.ChunkColumn.Sections`), [] if none."""
    column = (doc.get("Components") or {}).get("ChunkColumn") or {}
    sections = column.get("Sections") or []
    if not isinstance(sections, list):
        raise HytaleError("ChunkColumn.Sections is not a list")
    if len(sections) > MAX_SECTIONS:
        raise HytaleError(f"ChunkColumn holds {len(sections)} sections, at most {MAX_SECTIONS} are read")
    return sections


def decode_chunk(doc: dict[str, Any], cx: int, cz: int, classifier: Classifier) -> ChunkSites | None:
    """The sites of one chunk document (32×32 columns at chunk cx, cz), or None if it has no blocks."""
    layers: dict[int, npt.NDArray[np.uint8]] = {}
    sections = chunk_sections(doc)
    for sy, sec in enumerate(sections):
        if not isinstance(sec, dict):
            raise HytaleError(f"section {sy} is not a document")
        arr = section_classes(sec, classifier)
        if arr is not None:
            layers[sy] = arr
    if not layers:
        return None
    # Two empty rows over the highest section that holds anything, so that its top cell can be a
    # floor, within the column's height.
    height = min((max(layers) + 1) * SECTION + 2, len(sections) * SECTION)
    cells = np.zeros((height, SECTION, SECTION), dtype=np.uint8)
    for sy, arr in layers.items():
        cells[sy * SECTION : (sy + 1) * SECTION] = arr
    ys, zs, xs, kind = classify(cells)
    return ChunkSites(
        (xs + cx * SECTION).astype(np.int32),
        ys.astype(np.int16),
        (zs + cz * SECTION).astype(np.int32),
        kind,
        np.full(ys.shape[0], 0xFFFF, dtype=np.uint16),
    )


def parse_chunk(raw: bytes) -> dict[str, Any]:
    """The BSON document of one chunk blob."""
    import bson
    from bson.errors import InvalidBSON

    try:
        doc = bson.decode(raw)
    except (InvalidBSON, ValueError, OverflowError) as e:
        raise HytaleError(f"bad BSON document ({e})") from None
    if not isinstance(doc, dict):
        raise HytaleError("chunk blob is not a BSON document")
    return doc


def iter_region(path: Path, slots: Sequence[int] | None = None) -> Iterator[tuple[int, int, int, Any, str | None]]:
    """(slot, chunk x, chunk z, chunk document or None, error or None) for the chunks in `slots`."""
    try:
        rx, rz = region_coords(path)
        misnamed = None
    except ValueError as e:
        rx = rz = 0
        misnamed = str(e)  # the name places the chunks: without it they have no position
    with Region(path) as region:
        for slot in slots if slots is not None else region.slots():
            if misnamed is not None:
                yield slot, 0, 0, None, misnamed
                continue
            cx, cz = rx * REGION_CHUNKS + slot % REGION_CHUNKS, rz * REGION_CHUNKS + slot // REGION_CHUNKS
            try:
                doc = parse_chunk(region.blob(slot))
            except (HytaleError, OSError) as e:
                yield slot, cx, cz, None, f"chunk {slot}: {e}"
                continue
            yield slot, cx, cz, doc, None
