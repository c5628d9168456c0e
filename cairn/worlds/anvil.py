"""Minecraft Java Anvil (`.mca`) region files: chunks, block states and biomes, decoded with numpy.

Both chunk layouts are read:

- 1.13–1.17: `Level` → `Sections` (`Y`, `Palette`, `BlockStates`), `Level.Biomes` as numeric ids
  (256 per column before 1.15, 1024 per 4×4×4 cell after);
- 1.18+: top-level `sections` (`Y`, `block_states` {`palette`, `data`}, `biomes` {`palette`, `data`}),
  with negative section Y.

Block-state indices are packed into 64-bit longs, low bits first. Before 1.16 an index may span two
longs; from 1.16 on, each long holds `64 // bits` indices and the high bits are padding. Both
unpackers are vectorised over a whole section. The NBT layer is `nbtlib`.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

import nbtlib
import numpy as np
import numpy.typing as npt

from cairn.worlds.classify import Classifier, classify

SECTOR: Final = 4096
#: Most bytes one chunk may decompress to; a real chunk's NBT is under a few MiB. A bigger one is
#: reported unreadable, so that a crafted region (a zlib bomb) cannot take the importer's memory.
MAX_CHUNK_BYTES: Final = 16 << 20
FLATTENING: Final = 1451  # DataVersion of 17w47a, the first with block palettes (1.13)
FULL_STATUS: Final = frozenset({"full", "minecraft:full", "postprocessed", "fullchunk", "minecraft:postprocessed"})
U64 = npt.NDArray[np.uint64]


class ChunkError(Exception):
    """A chunk that cannot be read (bad compression, bad NBT, inconsistent arrays)."""


def unpack_nospan(longs: U64, bits: int, count: int) -> npt.NDArray[np.uint32]:
    """Indices packed `64 // bits` per long, low bits first, high bits unused (1.16+). O(count)."""
    per = 64 // bits
    if longs.shape[0] * per < count:
        raise ChunkError(f"{longs.shape[0]} longs hold fewer than {count} indices of {bits} bits")
    shifts = np.arange(per, dtype=np.uint64) * np.uint64(bits)
    vals = (longs[:, None] >> shifts[None, :]) & np.uint64((1 << bits) - 1)
    return vals.reshape(-1)[:count].astype(np.uint32)


def unpack_span(longs: U64, bits: int, count: int) -> npt.NDArray[np.uint32]:
    """Indices packed as one bit stream over the longs, an index may span two longs (pre-1.16). O(count)."""
    if longs.shape[0] * 64 < count * bits:
        raise ChunkError(f"{longs.shape[0]} longs hold fewer than {count} indices of {bits} bits")
    pos = np.arange(count, dtype=np.uint64) * np.uint64(bits)
    li = (pos >> np.uint64(6)).astype(np.intp)
    off = pos & np.uint64(63)
    lo = longs[li] >> off
    nxt = longs[np.minimum(li + 1, longs.shape[0] - 1)]
    spans = off + np.uint64(bits) > np.uint64(64)
    hi = np.where(spans, nxt << ((np.uint64(64) - off) & np.uint64(63)), np.uint64(0))
    return ((lo | hi) & np.uint64((1 << bits) - 1)).astype(np.uint32)


def _longs(tag: Any) -> U64:
    """Any array of 64-bit values (big-endian NBT or native) as native uint64 bits. O(n)."""
    a = np.asarray(tag)
    out: U64 = a.astype(np.uint64 if a.dtype.kind == "u" else np.int64, copy=False).view(np.uint64)
    return out


def unpack(longs: Any, bits: int, count: int) -> npt.NDArray[np.uint32]:
    """Unpack either layout, chosen by the array length (they differ unless `bits` divides 64). O(count)."""
    arr = _longs(longs)
    per = 64 // bits
    if arr.shape[0] == math.ceil(count / per):
        return unpack_nospan(arr, bits, count)
    if arr.shape[0] == math.ceil(count * bits / 64):
        return unpack_span(arr, bits, count)
    raise ChunkError(f"{arr.shape[0]} longs match neither packing of {count} indices of {bits} bits")


# ---- region files ------------------------------------------------------------------------------


def region_coords(path: Path) -> tuple[int, int]:
    """(rx, rz) from a name `r.<rx>.<rz>.mca`."""
    parts = path.name.split(".")
    if len(parts) != 4 or parts[0] != "r" or parts[3] != "mca":
        raise ValueError(f"{path.name}: a region file is named r.<x>.<z>.mca")
    return int(parts[1]), int(parts[2])


def chunk_slots(head: bytes) -> list[int]:
    """The slots (0..1023, index = (cz & 31) * 32 + (cx & 31)) that hold a chunk. O(1024)."""
    if len(head) < SECTOR:
        return []
    locs = struct.unpack(">1024I", head[:SECTOR])
    return [i for i, loc in enumerate(locs) if loc >> 8 and loc & 0xFF]


def read_chunk(data: bytes | memoryview, slot: int, path: Path | None = None) -> bytes | None:
    """The uncompressed NBT bytes of the chunk in `slot`, or None when absent. O(chunk)."""
    loc = struct.unpack_from(">I", data, slot * 4)[0]
    off, count = (loc >> 8) * SECTOR, loc & 0xFF
    if not off or not count:
        return None
    if off + 5 > len(data):
        raise ChunkError(f"chunk slot {slot} points past the end of the file")
    length, ctype = struct.unpack_from(">IB", data, off)
    if ctype & 0x80:
        # Oversized chunk stored beside the region as c.<x>.<z>.mcc.
        if path is None:
            raise ChunkError("external chunk without a region path")
        rx, rz = region_coords(path)
        ext = path.parent / f"c.{rx * 32 + slot % 32}.{rz * 32 + slot // 32}.mcc"
        if ext.stat().st_size > MAX_CHUNK_BYTES:
            raise ChunkError(f"chunk slot {slot}: {ext.name} is larger than {MAX_CHUNK_BYTES >> 20} MiB")
        body = ext.read_bytes()
        ctype &= 0x7F
    else:
        body = bytes(data[off + 5 : off + 4 + length])
    if ctype == 3:
        if len(body) > MAX_CHUNK_BYTES:
            raise ChunkError(f"chunk slot {slot}: larger than {MAX_CHUNK_BYTES >> 20} MiB")
        return body
    if ctype not in (1, 2):
        raise ChunkError(f"chunk slot {slot}: compression type {ctype} is not supported (1, 2, 3 are)")
    # Bounded: never more than MAX_CHUNK_BYTES + 1 bytes of output, whatever the stream claims.
    inflate = zlib.decompressobj(zlib.MAX_WBITS | (16 if ctype == 1 else 0))
    try:
        raw = inflate.decompress(body, MAX_CHUNK_BYTES + 1)
    except zlib.error as e:
        raise ChunkError(f"chunk slot {slot}: bad compressed data: {e}") from None
    if len(raw) > MAX_CHUNK_BYTES:
        raise ChunkError(f"chunk slot {slot}: decompresses to more than {MAX_CHUNK_BYTES >> 20} MiB")
    if not inflate.eof:
        raise ChunkError(f"chunk slot {slot}: bad compressed data: the stream is truncated")
    return raw


# ---- chunks --------------------------------------------------------------------------------------

#: Numeric biome ids of 1.13–1.17 (the ones that existed); unknown ids become `biome_<id>`.
LEGACY_BIOMES: Final = dict(enumerate((
    "ocean", "plains", "desert", "mountains", "forest", "taiga", "swamp", "river", "nether_wastes",
    "the_end", "frozen_ocean", "frozen_river", "snowy_tundra", "snowy_mountains", "mushroom_fields",
    "mushroom_field_shore", "beach", "desert_hills", "wooded_hills", "taiga_hills", "mountain_edge",
    "jungle", "jungle_hills", "jungle_edge", "deep_ocean", "stone_shore", "snowy_beach", "birch_forest",
    "birch_forest_hills", "dark_forest", "snowy_taiga", "snowy_taiga_hills", "giant_tree_taiga",
    "giant_tree_taiga_hills", "wooded_mountains", "savanna", "savanna_plateau", "badlands",
    "wooded_badlands_plateau", "badlands_plateau", "small_end_islands", "end_midlands", "end_highlands",
    "end_barrens", "warm_ocean", "lukewarm_ocean", "cold_ocean", "deep_warm_ocean", "deep_lukewarm_ocean",
    "deep_cold_ocean", "deep_frozen_ocean",
))) | {
    127: "the_void", 129: "sunflower_plains", 130: "desert_lakes", 131: "gravelly_mountains",
    132: "flower_forest", 133: "taiga_mountains", 134: "swamp_hills", 140: "ice_spikes",
    149: "modified_jungle", 151: "modified_jungle_edge", 155: "tall_birch_forest", 156: "tall_birch_hills",
    157: "dark_forest_hills", 158: "snowy_taiga_mountains", 160: "giant_spruce_taiga",
    161: "giant_spruce_taiga_hills", 162: "modified_gravelly_mountains", 163: "shattered_savanna",
    164: "shattered_savanna_plateau", 165: "eroded_badlands", 166: "modified_wooded_badlands_plateau",
    167: "modified_badlands_plateau", 168: "bamboo_jungle", 169: "bamboo_jungle_hills",
    170: "soul_sand_valley", 171: "crimson_forest", 172: "warped_forest", 173: "basalt_deltas",
    174: "dripstone_caves", 175: "lush_caves",
}  # fmt: skip


def biome_tag(name: str) -> str:
    """The tag of a biome id: the namespace `minecraft:` dropped, others kept."""
    return name[10:] if name.startswith("minecraft:") else name


class ChunkSites(NamedTuple):
    """The sites of one chunk: world coordinates, kind bits and biome names (by local index)."""

    x: npt.NDArray[np.int32]
    y: npt.NDArray[np.int16]
    z: npt.NDArray[np.int32]
    kind: npt.NDArray[np.uint8]
    biome: npt.NDArray[np.uint16]  # index into `names`


class BiomeNames:
    """A growing table of biome tag names, local to one worker."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._ids: dict[str, int] = {}

    def id(self, name: str) -> int:
        i = self._ids.get(name)
        if i is None:
            i = self._ids[name] = len(self.names)
            self.names.append(name)
        return i

    def ids(self, names: Sequence[str]) -> npt.NDArray[np.uint16]:
        return np.fromiter((self.id(biome_tag(str(n))) for n in names), dtype=np.uint16, count=len(names))


#: nbtlib's Compound.get resolves paths; plain dict lookups are all the importer needs.
_get: Final = dict.get


def _palette_names(palette: Any) -> tuple[str, ...]:
    return tuple([str(dict.__getitem__(entry, "Name")) for entry in palette])


def _bits(n: int, minimum: int) -> int:
    return max(minimum, (n - 1).bit_length())


def parse_nbt(raw: bytes) -> Any:
    """The root compound of a chunk's NBT bytes, every tag parsed by nbtlib."""
    try:
        return nbtlib.File.parse(io.BytesIO(raw))
    except Exception as e:  # nbtlib raises several types on truncated or bad input
        raise ChunkError(f"bad NBT: {e}") from None


#: What the importer reads of a chunk, as a tree: a name maps to None (parse the whole tag with nbtlib)
#: or to the spec of a compound (or list of compounds) to select from. Everything else (ticks,
#: structures, heightmaps, light, block properties...) is skipped without being built.
Spec = dict[str, "Spec | None"]
_SECTION: Final[Spec] = {
    "Y": None,
    "block_states": {"palette": {"Name": None}, "data": None},
    "biomes": None,
    "Palette": {"Name": None},
    "BlockStates": None,
}
CHUNK_SPEC: Final[Spec] = {
    "xPos": None, "zPos": None, "yPos": None, "Status": None, "DataVersion": None, "sections": _SECTION,
    "Level": {"xPos": None, "zPos": None, "Status": None, "Biomes": None, "Sections": _SECTION},
}  # fmt: skip
_FIXED: Final = {1: 1, 2: 2, 3: 4, 4: 8, 5: 4, 6: 8}
_ARRAY: Final = {7: 1, 11: 4, 12: 8}
_unpack_u16 = struct.Struct(">H").unpack_from
_unpack_i32 = struct.Struct(">i").unpack_from
_unpack_list = struct.Struct(">bi").unpack_from


def _skip(raw: bytes, pos: int, tid: int) -> int:
    """The offset just past a payload of tag type `tid` starting at `pos`, walking without building tags."""
    size = _FIXED.get(tid)
    if size is not None:
        return pos + size
    item = _ARRAY.get(tid)
    if item is not None:
        return pos + 4 + item * int(_unpack_i32(raw, pos)[0])
    if tid == 8:
        return pos + 2 + int(_unpack_u16(raw, pos)[0])
    if tid == 9:
        sub, n = (int(v) for v in _unpack_list(raw, pos))
        pos += 5
        size = _FIXED.get(sub)
        if size is not None:
            return pos + size * max(n, 0)
        for _ in range(max(n, 0)):
            pos = _skip(raw, pos, sub)
        return pos
    if tid == 10:
        while True:
            t = raw[pos]
            pos += 1
            if t == 0:
                return pos
            pos += 2 + _unpack_u16(raw, pos)[0]
            pos = _skip(raw, pos, t)
    raise ChunkError(f"bad NBT: unknown tag type {tid}")


def _select(raw: bytes, bio: io.BytesIO, pos: int, spec: Spec) -> tuple[Any, int]:
    """The compound payload at `pos`, holding only what `spec` names (tags parsed by nbtlib); and its end."""
    out = nbtlib.Compound()
    while True:
        tid = raw[pos]
        pos += 1
        if tid == 0:
            return out, pos
        n = _unpack_u16(raw, pos)[0]
        name = raw[pos + 2 : pos + 2 + n].decode("utf-8", "replace")
        pos += 2 + n
        if name not in spec:
            pos = _skip(raw, pos, tid)
            continue
        sub = spec[name]
        if sub is not None and tid == 10:
            out[name], pos = _select(raw, bio, pos, sub)
        elif sub is not None and tid == 9 and raw[pos] == 10:
            count = _unpack_i32(raw, pos + 1)[0]
            pos += 5
            items = []
            for _ in range(max(count, 0)):
                item, pos = _select(raw, bio, pos, sub)
                items.append(item)
            out[name] = nbtlib.List[nbtlib.Compound](items)
        else:
            bio.seek(pos)
            out[name] = nbtlib.Base.get_tag(tid).parse(bio)
            pos = bio.tell()


_STATUS_TAG: Final = b"\x08\x00\x06Status"


def _status(raw: bytes) -> str | None:
    """The chunk's `Status` string, found by its tag header without parsing, or None."""
    at = raw.find(_STATUS_TAG)
    if at < 0:
        return None
    at += len(_STATUS_TAG)
    n = struct.unpack_from(">H", raw, at)[0]
    return raw[at + 2 : at + 2 + n].decode("utf-8", "replace")


def parse_chunk(raw: bytes) -> Any:
    """The parts of a chunk's NBT the importer reads, parsed by nbtlib; unused tags are skipped without
    being built, and a chunk that is not fully generated is not parsed at all. O(bytes)."""
    try:
        if raw[0] != 10:
            raise ChunkError("bad NBT: the root is not a compound")
        status = _status(raw)
        if status is not None and status not in FULL_STATUS:
            return nbtlib.Compound({"Status": nbtlib.String(status)})
        bio = io.BytesIO(raw)
        start = 3 + struct.unpack_from(">H", raw, 1)[0]
        root, _ = _select(raw, bio, start, CHUNK_SPEC)
        return root
    except ChunkError:
        raise
    except Exception as e:  # truncated input raises IndexError, struct.error, EOFError...
        raise ChunkError(f"bad NBT: {e}") from None


def decode_chunk(root: Any, classifier: Classifier, biomes: BiomeNames) -> ChunkSites | None:
    """The sites of one parsed chunk, or None for a chunk that is not fully generated. O(cells)."""
    modern = "Level" not in root
    level = root if modern else root["Level"]
    status = str(level.get("Status", "full"))
    if status not in FULL_STATUS:
        return None
    if "xPos" not in level or "zPos" not in level:
        raise ChunkError("chunk has no xPos/zPos (neither the 1.18+ nor the `Level` layout)")
    version = int(root.get("DataVersion", 0))
    if version < FLATTENING:
        raise ChunkError(f"DataVersion {version}: worlds before Minecraft 1.13 (numeric block ids) are not supported")
    cx, cz = int(level["xPos"]), int(level["zPos"])
    sections = level.get("sections" if modern else "Sections") or []
    blocks: dict[int, npt.NDArray[np.uint8]] = {}
    biome_cells: dict[int, npt.NDArray[np.uint16]] = {}
    for sec in sections:
        sy = int(_get(sec, "Y", 0))
        if modern:
            states = _get(sec, "block_states")
            if states is None:
                continue
            palette, data = _get(states, "palette"), _get(states, "data")
        else:
            palette, data = _get(sec, "Palette"), _get(sec, "BlockStates")
        if not palette:
            continue
        lut = classifier.palette_lut(_palette_names(palette))
        if len(palette) == 1 or data is None:
            if lut[0] != 0:
                blocks[sy] = np.full((16, 16, 16), lut[0], dtype=np.uint8)
        else:
            idx = unpack(data, _bits(len(palette), 4), 4096)
            if int(idx.max()) >= len(palette):
                raise ChunkError(f"section {sy}: block index beyond its {len(palette)}-entry palette")
            blocks[sy] = lut[idx].reshape(16, 16, 16)
        bsec = _get(sec, "biomes") if modern else None
        if bsec is not None:
            bpal = _get(bsec, "palette") or []
            if bpal:
                ids = biomes.ids(bpal)
                bdata = _get(bsec, "data")
                if len(bpal) == 1 or bdata is None:
                    biome_cells[sy] = np.full(64, ids[0], dtype=np.uint16)
                else:
                    bi = unpack(bdata, _bits(len(bpal), 1), 64)
                    if int(bi.max()) >= len(bpal):
                        raise ChunkError(f"section {sy}: biome index beyond its palette")
                    biome_cells[sy] = ids[bi]
    if not blocks:
        return None
    lo, hi = min(blocks), max(blocks)
    cells = np.zeros(((hi - lo + 1) * 16, 16, 16), dtype=np.uint8)
    for sy, arr in blocks.items():
        cells[(sy - lo) * 16 : (sy - lo + 1) * 16] = arr
    ys, zs, xs, kind = classify(cells)
    wy = ys + lo * 16
    biome = _biomes_of(level, modern, biome_cells, biomes, wy, zs, xs)
    return ChunkSites(
        (xs + cx * 16).astype(np.int32),
        wy.astype(np.int16),
        (zs + cz * 16).astype(np.int32),
        kind,
        biome,
    )


NO_BIOME: Final = 0xFFFF


def _biomes_of(
    level: Any,
    modern: bool,
    cells: dict[int, npt.NDArray[np.uint16]],
    biomes: BiomeNames,
    wy: npt.NDArray[np.intp],
    zs: npt.NDArray[np.intp],
    xs: npt.NDArray[np.intp],
) -> npt.NDArray[np.uint16]:
    n = wy.shape[0]
    if modern:
        if not cells:
            return np.full(n, NO_BIOME, dtype=np.uint16)
        lo, hi = min(cells), max(cells)
        table = np.full(((hi - lo + 1), 64), NO_BIOME, dtype=np.uint16)
        for sy, arr in cells.items():
            table[sy - lo] = arr
        sec = np.clip((wy >> 4) - lo, 0, hi - lo)
        cell = ((wy & 15) >> 2) * 16 + (zs >> 2) * 4 + (xs >> 2)
        out: npt.NDArray[np.uint16] = table[sec, cell]
        return out
    raw = level.get("Biomes")
    if raw is None or len(raw) == 0:
        return np.full(n, NO_BIOME, dtype=np.uint16)
    ids = np.asarray(raw).astype(np.int64)
    uniq, inv = np.unique(ids, return_inverse=True)
    local = biomes.ids([LEGACY_BIOMES.get(int(u), f"biome_{int(u)}") for u in uniq])[inv]
    if ids.shape[0] == 256:
        out = local[zs * 16 + xs]
        return out
    if ids.shape[0] == 1024:
        cell = np.clip(wy >> 2, 0, 63) * 16 + (zs >> 2) * 4 + (xs >> 2)
        out = local[cell]
        return out
    return np.full(n, NO_BIOME, dtype=np.uint16)


def iter_region(path: Path, slots: Sequence[int] | None = None) -> Iterator[tuple[int, bytes | None, str | None]]:
    """(slot, NBT bytes or None, error or None) for each chunk of a region file in `slots`."""
    data = path.read_bytes()
    if len(data) < 2 * SECTOR:
        return
    for slot in slots if slots is not None else chunk_slots(data):
        try:
            yield slot, read_chunk(data, slot, path), None
        except (ChunkError, OSError) as e:
            yield slot, None, str(e)
