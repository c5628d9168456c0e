"""Hytale's save layout, read and written cell by cell, after the game's own server code.

An independent check on Cairn's numpy decoder (cairn/worlds/hytale.py): scalar, one cell at a time,
each step named after the game's method it mirrors:

- `IndexedStorageFile` (container), `ChunkUtil.indexBlock` (y·1024 + z·32 + x) and `indexColumn`;
- `BlockSection.serialize/deserialize` (codec version 6: a block-migration int first), the section
  palettes (`HalfByteSectionPalette`, `ByteSectionPalette`, `ShortSectionPalette` and their abstract
  bases: big-endian count, entries of internal id (1 byte; 2 for Short), UTF name, count, then the
  cells) and `BitUtil.getNibble/setNibble` (the even index in the HIGH nibble);
- `FluidSection.serialize/deserialize/getFluidLevel` (levels: the even index in the LOW nibble);
- `BlockChunk.serialize` with its `ShortBytePalette` heightmap (little-endian, `BitFieldArr` of 10-bit
  entries, low bits first).

`GameRegion` reads a real save; `write_section`, `write_fluid`, `chunk_doc` and `write_region` write
the same layout for test fixtures, and tests/integration/test_hytale_real.py checks the section
writers byte for byte against the real sample.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

EMPTY, HALF_BYTE, BYTE, SHORT = 0, 1, 2, 3
CELLS = 32 * 32 * 32


def index_block(x: int, y: int, z: int) -> int:
    return (y & 31) << 10 | (z & 31) << 5 | x & 31


def get_nibble(data: bytes, idx: int) -> int:
    return (data[idx >> 1] >> (((idx & 1) ^ 1) << 2)) & 0xF


def set_nibble(data: bytearray, idx: int, b: int) -> None:
    i = idx & 1
    keep = data[idx >> 1] & (0xF << (i << 2))
    data[idx >> 1] = keep | (b & 0xF) << ((i ^ 1) << 2)


class Buf:
    """A read cursor with netty ByteBuf's big-endian reads."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def take(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        if len(out) < n:
            raise ValueError("read past the end")
        self.pos += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def short(self) -> int:
        return struct.unpack(">h", self.take(2))[0]

    def ushort(self) -> int:
        return struct.unpack(">H", self.take(2))[0]

    def int(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def utf(self) -> str:
        return self.take(self.ushort()).decode("utf-8")


class SectionPalette:
    """`ISectionPalette.deserialize`: internal id → key, and the per-cell internal ids."""

    def __init__(self, buf: Buf) -> None:
        self.kind = buf.byte()
        self.names: dict[int, str] = {}
        self.order: list[tuple[int, str, int]] = []
        self.cells = b""
        if self.kind == EMPTY:
            return
        count = buf.short()
        for _ in range(count):
            internal = buf.ushort() if self.kind == SHORT else buf.byte()
            name = buf.utf()
            n = buf.short()
            self.order.append((internal, name, n))
            self.names.setdefault(internal, name)
        self.cells = buf.take({HALF_BYTE: CELLS // 2, BYTE: CELLS, SHORT: 2 * CELLS}[self.kind])

    def internal(self, idx: int) -> int:
        if self.kind == EMPTY:
            return 0
        if self.kind == HALF_BYTE:
            return get_nibble(self.cells, idx)
        if self.kind == BYTE:
            return self.cells[idx]
        return int(struct.unpack_from(">H", self.cells, 2 * idx)[0])

    def get(self, idx: int) -> str:
        return "Empty" if self.kind == EMPTY else self.names.get(self.internal(idx), "Empty")


class BlockSectionData:
    """`BlockSection.deserialize` (the block palette; the rest of the section is stepped over)."""

    def __init__(self, data: bytes, version: int) -> None:
        buf = Buf(data)
        self.migration = buf.int() if version >= 6 else 0
        self.palette = SectionPalette(buf)
        self.end = buf.pos


class FluidSectionData:
    """`FluidSection.deserialize` and `getFluidLevel`."""

    def __init__(self, data: bytes) -> None:
        buf = Buf(data)
        self.palette = SectionPalette(buf)
        self.levels = buf.take(CELLS // 2) if buf.byte() else None

    def level(self, idx: int) -> int:
        if self.levels is None:
            return 0
        return (self.levels[idx >> 1] >> ((idx & 1) * 4)) & 0xF

    def get(self, idx: int) -> tuple[str, int]:
        return self.palette.get(idx), self.level(idx)


def read_heightmap(data: bytes) -> list[int]:
    """`BlockChunk.deserialize`: the needsPhysics flag, then the `ShortBytePalette` of column heights."""
    pos = 1
    (count,) = struct.unpack_from("<h", data, pos)
    pos += 2
    keys = list(struct.unpack_from(f"<{count}h", data, pos))
    pos += 2 * count
    (length,) = struct.unpack_from("<i", data, pos)
    bits = data[pos + 4 : pos + 4 + length]
    out = []
    for col in range(1024):
        v = 0
        for i in range(10):
            b = col * 10 + i
            v |= ((bits[b >> 3] >> (b & 7)) & 1) << i
        out.append(keys[v])
    return out


class GameRegion:
    """A region file read as the game reads it: blocks, fluids and heights by world coordinates."""

    def __init__(self, path: Path) -> None:
        import bson
        import zstandard

        parts = path.name.split(".")
        self.rx, self.rz = int(parts[0]), int(parts[1])
        d = path.read_bytes()
        if d[:20] != b"HytaleIndexedStorage":
            raise ValueError("not an IndexedStorageFile")
        _version, n, seg = struct.unpack(">iii", d[20:32])
        first = struct.unpack(f">{n}i", d[32 : 32 + 4 * n])
        self.docs: dict[int, dict[str, Any]] = {}
        for slot, segment in enumerate(first):
            if segment == 0:
                continue
            pos = 32 + 4 * n + (segment - 1) * seg
            src, comp = struct.unpack(">ii", d[pos : pos + 8])
            raw = zstandard.ZstdDecompressor().decompress(d[pos + 8 : pos + 8 + comp], max_output_size=src)
            self.docs[slot] = bson.decode(raw)
        self._blocks: dict[tuple[int, int], BlockSectionData | None] = {}
        self._fluids: dict[tuple[int, int], FluidSectionData | None] = {}

    def chunks(self) -> list[tuple[int, int]]:
        """(chunk x, chunk z) of every chunk held."""
        return [(self.rx * 32 + s % 32, self.rz * 32 + s // 32) for s in self.docs]

    def _slot(self, x: int, z: int) -> int:
        if (x >> 5) >> 5 != self.rx or (z >> 5) >> 5 != self.rz:
            raise KeyError((x, z))
        return ((z >> 5) & 31) << 5 | ((x >> 5) & 31)

    def _section(self, x: int, y: int, z: int) -> dict[str, Any] | None:
        doc = self.docs.get(self._slot(x, z))
        if doc is None or not 0 <= y < 320:
            return None
        sections = doc["Components"]["ChunkColumn"]["Sections"]
        return sections[y >> 5]["Components"] if (y >> 5) < len(sections) else None

    def block(self, x: int, y: int, z: int) -> str:
        key = (self._slot(x, z), y >> 5)
        if key not in self._blocks:
            comps = self._section(x, y, z)
            block = comps.get("Block") if comps else None
            self._blocks[key] = BlockSectionData(bytes(block["Data"]), block.get("Version", 0)) if block else None
        sec = self._blocks[key]
        return "Empty" if sec is None else sec.palette.get(index_block(x, y, z))

    def fluid(self, x: int, y: int, z: int) -> tuple[str, int]:
        key = (self._slot(x, z), y >> 5)
        if key not in self._fluids:
            comps = self._section(x, y, z)
            fluid = comps.get("Fluid") if comps else None
            self._fluids[key] = FluidSectionData(bytes(fluid["Data"])) if fluid else None
        sec = self._fluids[key]
        return ("Empty", 0) if sec is None else sec.get(index_block(x, y, z))

    def fluid_cells(self) -> dict[tuple[int, int, int], tuple[str, int]]:
        """Every cell that holds a fluid (not Empty, level above 0), by world position."""
        out = {}
        for slot, doc in self.docs.items():
            ox, oz = (self.rx * 32 + slot % 32) * 32, (self.rz * 32 + slot // 32) * 32
            for sy, sec in enumerate(doc["Components"]["ChunkColumn"]["Sections"]):
                fluid = sec["Components"].get("Fluid")
                data = FluidSectionData(bytes(fluid["Data"])) if fluid else None
                if data is None or data.palette.kind == EMPTY:
                    continue
                for idx in range(CELLS):
                    name, level = data.get(idx)
                    if name != "Empty" and level > 0:
                        out[ox + (idx & 31), sy * 32 + (idx >> 10), oz + ((idx >> 5) & 31)] = (name, level)
        return out

    def heightmap(self, cx: int, cz: int) -> list[int]:
        """The game's heightmap of a chunk, indexed z·32 + x (`ChunkUtil.indexColumn`)."""
        doc = self.docs[(cz & 31) << 5 | (cx & 31)]
        return read_heightmap(bytes(doc["Components"]["BlockChunk"]["Data"]))


# ---- writing the same layout ----------------------------------------------------------------------------------


def _palette_bytes(kind: int, entries: Sequence[tuple[int, str]], ids: Sequence[int]) -> bytes:
    """`AbstractByte/ShortSectionPalette.serialize`: count, entries (id, UTF key, count), cells."""
    counts: dict[int, int] = {}
    for i in ids:
        counts[i] = counts.get(i, 0) + 1
    out = bytearray(struct.pack(">h", len(entries)))
    for internal, name in entries:
        raw = name.encode("utf-8")
        out += struct.pack(">H", internal) if kind == SHORT else bytes([internal])
        # `internalIdCount` is a short: a full section of one id wraps to -32768, as the game writes it.
        out += struct.pack(">H", len(raw)) + raw + struct.pack(">h", (counts.get(internal, 0) + 32768) % 65536 - 32768)
    if kind == HALF_BYTE:
        cells = bytearray(CELLS // 2)
        for idx, i in enumerate(ids):
            set_nibble(cells, idx, i)
        out += cells
    elif kind == BYTE:
        out += bytes(ids)
    else:
        out += struct.pack(f">{CELLS}H", *ids)
    return bytes(out)


def palette_of(names: Sequence[str]) -> tuple[int, list[tuple[int, str]], list[int]]:
    """The smallest palette kind for per-cell `names`, its entries (Empty first) and the cell ids."""
    order: dict[str, int] = {"Empty": 0}
    ids = [order.setdefault(n, len(order)) for n in names]
    kind = EMPTY if len(order) == 1 else HALF_BYTE if len(order) <= 16 else BYTE if len(order) <= 256 else SHORT
    return kind, [(i, n) for n, i in order.items()], ids


def write_section(
    cells: Mapping[tuple[int, int, int], str] | Sequence[str],
    kind: int | None = None,
    entries: Sequence[tuple[int, str]] | None = None,
    ids: Sequence[int] | None = None,
    migration: int = 11,
) -> bytes:
    """A `BlockSection` Data blob (codec version 6). `cells` maps local (x, y, z) → block id (Empty
    elsewhere), or lists 32³ ids by index; `kind`/`entries`/`ids` give the palette explicitly."""
    if ids is None or entries is None:
        if isinstance(cells, Mapping):
            names = ["Empty"] * CELLS
            for (x, y, z), name in cells.items():
                names[index_block(x, y, z)] = name
        else:
            names = list(cells)
        auto_kind, entries, ids = palette_of(names)
        kind = auto_kind if kind is None else kind
    assert kind is not None
    out = bytearray(struct.pack(">i", migration) + bytes([kind]))
    if kind != EMPTY:
        out += _palette_bytes(kind, entries, ids)
        out += struct.pack(">hh", 0, 0)  # no ticking blocks: cardinality, then no longs
    # Empty filler and rotation palettes, no local or global light (a change id and a no-data flag
    # each), and both change counters at 0: the trailer of most sections in the real sample.
    out += bytes([EMPTY, EMPTY]) + bytes(3) + bytes(3) + struct.pack(">hh", 0, 0)
    return bytes(out)


def write_fluid(
    cells: Mapping[tuple[int, int, int], tuple[str, int]],
    kind: int | None = None,
    entries: Sequence[tuple[int, str]] | None = None,
    ids: Sequence[int] | None = None,
    levels: Sequence[int] | None = None,
) -> bytes:
    """A `FluidSection` Data blob: palette, then the levels flag and 16384 level bytes (even index low)."""
    if ids is None or entries is None:
        names = ["Empty"] * CELLS
        lv = [0] * CELLS
        for (x, y, z), (name, level) in cells.items():
            names[index_block(x, y, z)] = name
            lv[index_block(x, y, z)] = level
        auto_kind, entries, ids = palette_of(names)
        kind = auto_kind if kind is None else kind
        levels = lv if any(lv) else None
    assert kind is not None
    out = bytearray([kind])
    if kind != EMPTY:
        out += _palette_bytes(kind, entries, ids)
    if levels is None:
        out += b"\x00"
    else:
        packed = bytearray(CELLS // 2)
        for idx, level in enumerate(levels):
            packed[idx >> 1] |= (level & 0xF) << ((idx & 1) * 4)
        out += b"\x01" + packed
    return bytes(out)


def write_region(path: Path, chunks: Mapping[int, dict[str, Any]], segment: int = 4096) -> Path:
    """An `IndexedStorageFile` of chunk documents by slot: header, first-segment table, zstd blobs."""
    import bson
    import zstandard

    blobs = bytearray()
    first = [0] * 1024
    for slot, doc in sorted(chunks.items()):
        src = bson.encode(doc)
        comp = zstandard.ZstdCompressor(level=3).compress(src)
        blob = struct.pack(">ii", len(src), len(comp)) + comp
        first[slot] = len(blobs) // segment + 1
        blobs += blob + bytes(-len(blob) % segment)
    head = b"HytaleIndexedStorage" + struct.pack(">iii", 1, 1024, segment)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(head + struct.pack(">1024i", *first) + bytes(blobs))
    return path


def chunk_doc(sections: Sequence[bytes], fluids: Sequence[bytes | None] = ()) -> dict[str, Any]:
    """A chunk document as the game saves it: `ChunkColumn.Sections[i].Components.{Block, Fluid}`."""
    secs = []
    for i, data in enumerate(sections):
        comps: dict[str, Any] = {"Block": {"Version": 6, "Data": data}}
        fluid = fluids[i] if i < len(fluids) else None
        if fluid is not None:
            comps["Fluid"] = {"Data": fluid}
        secs.append({"Components": comps})
    return {"Components": {"ChunkColumn": {"Sections": secs}}}
