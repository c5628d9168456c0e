"""Test worlds with known structures, written by third-party code, and the sites they must yield.

- `write_anvil_1_14`: Minecraft 1.13–1.17 layout (`Level`/`Sections`/`Palette`/`BlockStates`, a
  spanning bit stream), written by anvil-parser2's `EmptyRegion` (DataVersion 1976, 1.14.4).
- `write_anvil_1_18`: 1.18+ layout (top-level `sections`, `block_states`/`biomes` palettes, negative y,
  non-spanning longs), built as plain NBT with nbtlib. The packing below follows the Minecraft wiki's
  "Chunk format" page: `bits = max(4, ceil(log2(len(palette))))` for blocks and `ceil(log2(len))` for
  biomes, `64 // bits` indices per long from the low bits up, index = y·256 + z·16 + x (biomes:
  y·16 + z·4 + x over 4×4×4 cells). It is a scalar loop, independent of Cairn's numpy decoder.
- `write_hytale_world`: a `.region.bin` in the game's own layout (tests/unit/hytale_game.py).

The structures (local chunk coordinates lx, lz in 0..15, heights relative to a base `b`):
bedrock at b, stone b+1..b+3; a lake (lx, lz in 4..7) with water at b+2..b+3; a lava pool
(lx 10..11, lz 1..2) at b+3; a stone hill (lx, lz in 8..13) up to b+8 with a cave (lx 9..12,
lz 10..11) carved at b+4..b+5; an oak tree (trunk at lx 2, lz 12, b+4..b+7, leaves around it at
b+7..b+9); a grass plant at (0, b+4, 0); a row of 16 other solid blocks at lz 15, y b+3; and one
floating stone block at (15, float_y, 0) that roofs its column.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from pathlib import Path

VARIETY = (
    "granite", "diorite", "gravel", "andesite", "cobblestone", "dirt", "sand", "sandstone", "clay",
    "oak_planks", "spruce_planks", "bricks", "mossy_cobblestone", "obsidian", "netherrack", "terracotta",
)  # fmt: skip
LAKE = {(x, z) for x in range(4, 8) for z in range(4, 8)}
LAVA = {(x, z) for x in (10, 11) for z in (1, 2)}
HILL = {(x, z) for x in range(8, 14) for z in range(8, 14)}
CAVE = {(x, z) for x in range(9, 13) for z in (10, 11)}
TRUNK = (2, 12)
CANOPY = {(x, z) for x in (1, 2, 3) for z in (11, 12, 13)}
PLANT = (0, 0)
FLOAT_COL = (15, 0)


def design(b: int, float_y: int) -> dict[tuple[int, int, int], str]:
    """Local (lx, y, lz) → block id, air left out."""
    w: dict[tuple[int, int, int], str] = {}
    for x in range(16):
        for z in range(16):
            w[x, b, z] = "minecraft:bedrock"
            for y in (b + 1, b + 2, b + 3):
                w[x, y, z] = "minecraft:stone"
            if (x, z) in LAKE:
                w[x, b + 2, z] = w[x, b + 3, z] = "minecraft:water"
            if (x, z) in LAVA:
                w[x, b + 3, z] = "minecraft:lava"
            if z == 15:
                w[x, b + 3, z] = "minecraft:" + VARIETY[x]
            if (x, z) in HILL:
                for y in range(b + 4, b + 9):
                    w[x, y, z] = "minecraft:stone"
            if (x, z) in CAVE:
                del w[x, b + 4, z], w[x, b + 5, z]
    for y in range(b + 4, b + 8):
        w[TRUNK[0], y, TRUNK[1]] = "minecraft:oak_log"
    for x, z in CANOPY:
        for y in (b + 7, b + 8):
            if (x, z) != TRUNK or y == b + 8:
                w[x, y, z] = "minecraft:oak_leaves"
    w[TRUNK[0], b + 9, TRUNK[1]] = "minecraft:oak_leaves"
    w[PLANT[0], b + 4, PLANT[1]] = "minecraft:grass"
    w[FLOAT_COL[0], float_y, FLOAT_COL[1]] = "minecraft:stone"
    return w


def biome_of(x: int, z: int) -> str:
    return "river" if (x, z) in LAKE else "forest"


def expected_sites(
    b: int, float_y: int, ox: int = 0, oz: int = 0, deny: tuple[str, ...] = ()
) -> dict[tuple[int, int, int], set[str]]:
    """The exact site set of the design, written out from the rules by hand (not by Cairn's classifier)."""
    out: dict[tuple[int, int, int], set[str]] = {}
    for x in range(16):
        for z in range(16):
            col = (x, z)
            if col in LAKE:
                out[x, b + 2, z] = {"underwater"}
                continue
            if col in HILL:
                out[x, b + 9, z] = {"surface"}
                if col in CAVE:
                    out[x, b + 4, z] = {"cave"}
                continue
            if col in LAVA or col in (TRUNK, PLANT):
                continue
            if z == 15 and "minecraft:" + VARIETY[x] in deny:
                continue
            out[x, b + 4, z] = {"cave"} if col == FLOAT_COL else {"surface"}
    out[FLOAT_COL[0], float_y + 1, FLOAT_COL[1]] = {"surface"}
    return {(ox + x, y, oz + z): tags | {biome_of(x, z)} for (x, y, z), tags in out.items()}


# ---- 1.13–1.17 via anvil-parser2 -----------------------------------------------------------------------


def write_anvil_1_14(folder: Path) -> Path:
    """A region r.0.0.mca holding chunk (0, 0) of the design at b=0, float_y=40."""
    import anvil

    region = anvil.EmptyRegion(0, 0)
    for (x, y, z), name in design(0, 40).items():
        ns, bid = name.split(":")
        region.set_block(anvil.Block(ns, bid), x, y, z)
    for x in range(16):
        for z in range(16):
            region.set_biome(anvil.Biome("minecraft", biome_of(x, z)), x, z)
    path = folder / "region" / "r.0.0.mca"
    path.parent.mkdir(parents=True, exist_ok=True)
    region.save(str(path))
    return path


# ---- 1.18+ via nbtlib ----------------------------------------------------------------------------------


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def pack_longs(indices: list[int], bits: int) -> list[int]:
    """Pack indices `64 // bits` per long, low bits first, as signed longs (scalar reference)."""
    per = 64 // bits
    longs = []
    for start in range(0, len(indices), per):
        v = 0
        for k, idx in enumerate(indices[start : start + per]):
            v |= idx << (k * bits)
        longs.append(_signed(v))
    return longs


def pack_longs_spanning(indices: list[int], bits: int) -> list[int]:
    """Pack indices as one bit stream over the longs (pre-1.16), as signed longs (scalar reference)."""
    total = 0
    for i, idx in enumerate(indices):
        total |= idx << (i * bits)
    n = math.ceil(len(indices) * bits / 64)
    return [_signed((total >> (64 * k)) & ((1 << 64) - 1)) for k in range(n)]


def chunk_1_18(
    cx: int,
    cz: int,
    blocks: dict[tuple[int, int, int], str],
    biome: dict[tuple[int, int], str],
    status: str = "minecraft:full",
) -> bytes:
    """The NBT bytes of one 1.18+ chunk (sections -4..19) from local blocks and a per-column biome."""
    from nbtlib import Byte, Compound, File, Int, List, LongArray, String

    sections = []
    for sy in range(-4, 20):
        names = ["minecraft:air"]
        idx = []
        for ly in range(16):
            for z in range(16):
                for x in range(16):
                    name = blocks.get((x, sy * 16 + ly, z), "minecraft:air")
                    if name not in names:
                        names.append(name)
                    idx.append(names.index(name))
        states = Compound({"palette": List[Compound]([Compound({"Name": String(n)}) for n in names])})
        if len(names) > 1:
            bits = max(4, (len(names) - 1).bit_length())
            states["data"] = LongArray(pack_longs(idx, bits))
        bnames: list[str] = []
        bidx = []
        for _cy in range(4):
            for bz in range(4):
                for bx in range(4):
                    name = "minecraft:" + biome[bx * 4, bz * 4]
                    if name not in bnames:
                        bnames.append(name)
                    bidx.append(bnames.index(name))
        biomes = Compound({"palette": List[String]([String(n) for n in bnames])})
        if len(bnames) > 1:
            biomes["data"] = LongArray(pack_longs(bidx, (len(bnames) - 1).bit_length()))
        sections.append(Compound({"Y": Byte(sy), "block_states": states, "biomes": biomes}))
    root = File({
        "DataVersion": Int(3465), "xPos": Int(cx), "zPos": Int(cz), "yPos": Int(-4),
        "Status": String(status), "sections": List[Compound](sections),
    })  # fmt: skip
    buf = io.BytesIO()
    root.write(buf)
    return buf.getvalue()


def write_region(path: Path, chunks: dict[int, bytes]) -> Path:
    """An Anvil region file holding NBT `chunks` by slot, zlib-compressed, 4 KiB sectors."""
    header = bytearray(8192)
    body = bytearray()
    for slot, raw in sorted(chunks.items()):
        data = zlib.compress(raw)
        blob = struct.pack(">IB", len(data) + 1, 2) + data
        blob += bytes(-len(blob) % 4096)
        sector = 2 + len(body) // 4096
        struct.pack_into(">I", header, slot * 4, sector << 8 | len(blob) // 4096)
        body += blob
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(header + body))
    return path


def write_anvil_1_18(folder: Path) -> Path:
    """A region r.-1.-1.mca holding chunk (-1, -1) of the design at b=-64, float_y=70."""
    blocks = design(-64, 70)
    biome = {(x, z): biome_of(x, z) for x in range(16) for z in range(16)}
    raw = chunk_1_18(-1, -1, blocks, biome)
    # A chunk that is still being generated holds no finished terrain: it must be skipped.
    proto = chunk_1_18(-2, -1, blocks, biome, status="minecraft:structure_starts")
    return write_region(folder / "region" / "r.-1.-1.mca", {31 * 32 + 31: raw, 31 * 32 + 30: proto})


# ---- Hytale ----------------------------------------------------------------------------------------------
# Written in the game's own layout by tests/unit/hytale_game.py (checked there against the real save).

HY_LEAVES = (5, 5)
HY_LAVA = (7, 7)
HY_PLANT = (0, 0)
HY_LANTERN = (9, 9)
HY_POISON = (25, 5)
HY_SLIME = (26, 5)
HY_POOL = {(x, z) for x in range(20, 24) for z in range(20, 24)}
HY_ROOF = {(x, z) for x in (10, 11, 12) for z in (10, 11, 12)}
HY_BRICKS = 30  # z of a row of bricks on every even x only: a swapped nibble order moves them to odd x


Cells = dict[tuple[int, int, int], str]


def hytale_design() -> tuple[Cells, dict[tuple[int, int, int], tuple[str, int]], Cells]:
    """Two 32³ sections of one Hytale chunk: (low blocks, low fluids, high blocks), local (x, y, z).

    A floor of stone (y 1..2) on bedrock; a water pool (stone at y 2 dug out, water at y 2..3), lava,
    poison and slime in the fluid data over Empty blocks; leaves, a plant and a lantern on the floor;
    a row of bricks on even x; a roof at y = 40 over a 3×3 patch.
    """
    low: dict[tuple[int, int, int], str] = {}
    fluids: dict[tuple[int, int, int], tuple[str, int]] = {}
    for x in range(32):
        for z in range(32):
            low[x, 0, z] = "Rock_Bedrock"
            low[x, 1, z] = low[x, 2, z] = "Rock_Stone"
            if (x, z) in HY_POOL:
                del low[x, 2, z]
                fluids[x, 2, z] = ("Water_Source", 1)
                fluids[x, 3, z] = ("Water", 6)
    for (x, z), name in ((HY_LAVA, "Lava_Source"), (HY_POISON, "Poison_Source"), (HY_SLIME, "Slime")):
        fluids[x, 3, z] = (name, 1)
    low[HY_LEAVES[0], 3, HY_LEAVES[1]] = "Plant_Leaves_Oak"
    low[HY_PLANT[0], 3, HY_PLANT[1]] = "Plant_Grass_Tall"
    low[HY_LANTERN[0], 3, HY_LANTERN[1]] = "Furniture_Temple_Light_Lantern"
    for x in range(0, 32, 2):
        low[x, 3, HY_BRICKS] = "*Rock_Stone_Brick_Half_State_Definitions_Block"
    high = {(x, 8, z): "Rock_Stone" for x, z in HY_ROOF}  # y = 32 + 8 = 40
    return low, fluids, high


def hytale_expected(cx: int = 0, cz: int = 0, roof: bool = True) -> dict[tuple[int, int, int], set[str]]:
    """The design's sites, written out from the rules by hand."""
    out: dict[tuple[int, int, int], set[str]] = {}
    for x in range(32):
        for z in range(32):
            wx, wz = cx * 32 + x, cz * 32 + z
            if (x, z) in (HY_LEAVES, HY_LAVA, HY_PLANT, HY_LANTERN, HY_POISON, HY_SLIME):
                continue
            if (x, z) in HY_POOL:
                out[wx, 2, wz] = {"underwater"}
            elif z == HY_BRICKS and x % 2 == 0:
                out[wx, 4, wz] = {"surface"}
            else:
                out[wx, 3, wz] = {"cave"} if roof and (x, z) in HY_ROOF else {"surface"}
    if roof:
        for x, z in HY_ROOF:
            out[cx * 32 + x, 41, cz * 32 + z] = {"surface"}
    return out


def write_hytale_world(folder: Path) -> Path:
    """`<folder>/chunks/0.0.region.bin`: the design in chunk (0, 0) (a Byte and a HalfByte section), and
    in chunk (1, 0) its low section alone with 16-bit (Short) ids."""
    from tests.unit import hytale_game as hg

    low, fluids, high = hytale_design()
    return hg.write_region(
        folder / "chunks" / "0.0.region.bin",
        {
            0: hg.chunk_doc([hg.write_section(low, hg.BYTE), hg.write_section(high)], [hg.write_fluid(fluids)]),
            1: hg.chunk_doc([hg.write_section(low, hg.SHORT)], [hg.write_fluid(fluids, hg.BYTE)]),
        },
    )


def hytale_expected_world() -> dict[tuple[int, int, int], set[str]]:
    return hytale_expected(0, 0) | hytale_expected(1, 0, roof=False)
