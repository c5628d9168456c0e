"""Turn block names into cell classes, and a chunk column of classes into tagged sites.

A cell is AIR, WATER, SOLID (a floor a treasure can rest on) or OTHER (anything else: plants,
torches, fences, leaves, lava, bedrock, Hytale's poison and slime, props, and every block in the deny
list). Minecraft block ids and Hytale block and fluid ids each have their table below. The SPEC site rules,
applied to a (height, z, x) array of classes, vectorised with numpy:

- `surface`: AIR, SOLID below, AIR above, and no SOLID or WATER cell anywhere above (open to the sky:
  leaves, plants and other non-solid blocks do not close it);
- `cave`: AIR, SOLID below, AIR above, with SOLID or WATER somewhere above;
- `underwater`: WATER with SOLID below.

Denied blocks are never a site and never a floor, so no site sits in or on bedrock, lava or leaves.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import numpy as np
import numpy.typing as npt

AIR: Final = 0
WATER: Final = 1
SOLID: Final = 2
OTHER: Final = 3

SURFACE_BIT: Final = 1
CAVE_BIT: Final = 2
UNDERWATER_BIT: Final = 4
KIND_TAGS: Final = ("surface", "cave", "underwater")

#: Blocks excluded by default, whatever the deny list adds: never a site, never a floor.
DEFAULT_DENY: Final = ("minecraft:bedrock", "minecraft:lava", "*_leaves")

_MC_AIR: Final = frozenset({"air", "cave_air", "void_air"})
# Cells full of water even though the block is a plant or a current.
_MC_WATER: Final = frozenset({"water", "bubble_column", "kelp", "kelp_plant", "seagrass", "tall_seagrass"})
_MC_OTHER_EXACT: Final = frozenset({
    "lava", "grass", "short_grass", "tall_grass", "fern", "large_fern", "dead_bush", "snow", "cobweb",
    "dandelion", "poppy", "blue_orchid", "allium", "azure_bluet", "oxeye_daisy", "cornflower",
    "lily_of_the_valley", "wither_rose", "sunflower", "lilac", "rose_bush", "peony", "torchflower",
    "torchflower_crop", "pitcher_plant", "pitcher_crop", "pink_petals", "brown_mushroom", "red_mushroom",
    "crimson_fungus", "warped_fungus", "nether_sprouts", "sugar_cane", "cactus", "bamboo", "bamboo_sapling",
    "wheat", "carrots", "potatoes", "beetroots", "melon_stem", "pumpkin_stem", "attached_melon_stem",
    "attached_pumpkin_stem", "nether_wart", "cocoa", "sweet_berry_bush", "lily_pad", "sea_pickle",
    "ladder", "scaffolding", "lever", "rail", "redstone_wire", "repeater", "comparator", "tripwire",
    "tripwire_hook", "fire", "soul_fire", "iron_bars", "chain", "lantern", "soul_lantern", "end_rod",
    "flower_pot", "glow_lichen", "sculk_vein", "spore_blossom", "big_dripleaf", "big_dripleaf_stem",
    "small_dripleaf", "azalea", "flowering_azalea", "pointed_dripstone", "amethyst_cluster", "powder_snow",
    "structure_void", "light", "frogspawn", "mangrove_propagule", "moving_piston", "piston_head",
    "nether_portal", "end_portal", "end_gateway", "candle", "daylight_detector", "conduit", "vine",
    "barrier",
})  # fmt: skip
_MC_OTHER_SUFFIX: Final = (
    "_sapling", "torch", "_sign", "_banner", "_button", "_pressure_plate", "_rail", "_carpet", "_coral",
    "_coral_fan", "_door", "_trapdoor", "_bed", "_head", "_skull", "_fence", "_fence_gate", "_wall",
    "_pane", "_vines", "_vines_plant", "_roots", "_candle", "_tulip", "_bud", "_leaves",
)  # fmt: skip
_MC_OTHER_PREFIX: Final = ("potted_",)


def _strip(name: str) -> str:
    return name[10:] if name.startswith("minecraft:") else name


def minecraft_class(name: str) -> int:
    """The class of a Minecraft block id such as `minecraft:stone` (namespace optional). O(1)."""
    base = _strip(name)
    if base in _MC_AIR:
        return AIR
    if base in _MC_WATER:
        return WATER
    if base in _MC_OTHER_EXACT or base.endswith(_MC_OTHER_SUFFIX) or base.startswith(_MC_OTHER_PREFIX):
        return OTHER
    return SOLID


# Hytale block ids read Category_Material_Variant (`Rock_Stone_Brick_Half`). State variants are saved as
# `*<base>_State_Definitions_<state>`. Only full blocks of rock, soil and wood, slabs and stairs are a
# floor; props (furniture, decorations, plants, lanterns, braziers, crystals, pillars, beams, walls,
# branches, stalactites, rubble, traps, placed weapons) are OTHER, and so is any unknown category.
_HY_AIR: Final = frozenset({"Empty"})
_HY_SOLID_CATEGORY: Final = ("Rock_", "Soil_", "Wood_", "Ore_")
_HY_OTHER_PART: Final = (
    "_Bedrock", "Rock_Crystal_", "_Stalactite", "_Stalagmite", "_Pillar", "_Beam", "_Wall", "_Fence",
    "_Branch", "_Torch", "_Door", "_Window", "_Ladder", "_Rope", "_Sign", "_Leaves",
)  # fmt: skip
_HY_SOLID_EXTRA_SUFFIX: Final = ("_Cube",)  # builder cubes (`Build_GreyLight_Cube`)
_HY_FLUID_BLOCK: Final = "Fluid_"  # fluids saved as blocks by older versions (`Fluid_Water`)
_HY_WATER: Final = ("Water",)


def hytale_base(name: str) -> str:
    """The block id without the state decoration: `*Rock_Stone_Half_State_Definitions_Block` → `Rock_Stone_Half`."""
    base = name.lstrip("*")
    cut = base.find("_State_Definitions")
    return base[:cut] if cut >= 0 else base


def hytale_class(name: str) -> int:
    """The class of a Hytale block id, by the documented name table (docs/worlds.md). O(1)."""
    base = hytale_base(name)
    if base in _HY_AIR or base == "":
        return AIR
    if base.startswith(_HY_FLUID_BLOCK):
        return hytale_fluid_class(base[len(_HY_FLUID_BLOCK) :])
    if any(part in base for part in _HY_OTHER_PART):
        return OTHER
    if base.startswith(_HY_SOLID_CATEGORY) or base.endswith(_HY_SOLID_EXTRA_SUFFIX):
        return SOLID
    return OTHER


def hytale_fluid_class(name: str) -> int:
    """The class of a Hytale fluid id: `Empty` is AIR, water (`Water`, `Water_Source`...) is WATER, and
    every other fluid (lava, poison, slime...) is OTHER: never a site, never a floor. O(1)."""
    if name in _HY_AIR or name == "":
        return AIR
    return WATER if name.startswith(_HY_WATER) else OTHER


class Classifier:
    """Block name → class, with a deny list of exact ids or `*suffix` / `prefix*` patterns. Caches names."""

    def __init__(self, deny: Iterable[str] = (), game: str = "minecraft") -> None:
        self.deny = tuple(DEFAULT_DENY) + tuple(d.strip() for d in deny if d.strip())
        self._base = minecraft_class if game == "minecraft" else hytale_class
        self._cache: dict[str, int] = {}
        self._fluids: dict[str, int] = {}
        self._luts: dict[tuple[str, ...], npt.NDArray[np.uint8]] = {}

    def denied(self, name: str) -> bool:
        """Whether `name` matches a deny pattern (namespace optional on both sides). O(patterns)."""
        for pat in self.deny:
            for cand in (name, _strip(name)):
                p = _strip(pat) if not pat.startswith("*") else pat
                if p.startswith("*"):
                    if cand.endswith(p[1:]):
                        return True
                elif p.endswith("*"):
                    if cand.startswith(p[:-1]):
                        return True
                elif cand == p:
                    return True
        return False

    def __call__(self, name: str) -> int:
        c = self._cache.get(name)
        if c is None:
            c = self._base(name)
            if c != AIR and self.denied(name):
                c = OTHER
            self._cache[name] = c
        return c

    def fluid(self, name: str) -> int:
        """The class of a Hytale fluid id (`hytale_fluid_class`), AIR or else OTHER when denied. O(patterns)."""
        c = self._fluids.get(name)
        if c is None:
            c = hytale_fluid_class(name)
            if c != AIR and self.denied(name):
                c = OTHER
            self._fluids[name] = c
        return c

    def lut(self, names: Iterable[str]) -> npt.NDArray[np.uint8]:
        """Classes of a palette, as a lookup table for `lut[indices]`. O(len(names))."""
        return np.fromiter((self(n) for n in names), dtype=np.uint8)

    def palette_lut(self, names: tuple[str, ...]) -> npt.NDArray[np.uint8]:
        """`lut(names)`, cached: palettes repeat across sections and chunks. O(1) when seen before."""
        lut = self._luts.get(names)
        if lut is None:
            lut = self._luts[names] = self.lut(names)
        return lut


Idx = npt.NDArray[np.intp]


def classify(cells: npt.NDArray[np.uint8]) -> tuple[Idx, Idx, Idx, npt.NDArray[np.uint8]]:
    """Sites of a (height, z, x) column of cell classes: local (y, z, x) indices and kind bits.

    Cells above the array count as AIR, cells below it as not SOLID. O(cells), vectorised: the open
    sky is decided per column from its highest SOLID or WATER cell, only at the candidate cells.
    """
    h, d, w = cells.shape
    solid = cells == SOLID
    air = cells == AIR
    water = cells == WATER
    base = np.zeros_like(solid)
    np.logical_and(air[1:], solid[:-1], out=base[1:])
    base[1:-1] &= air[2:]
    under = np.zeros_like(solid)
    np.logical_and(water[1:], solid[:-1], out=under[1:])
    closing = solid | water
    # The highest closing cell of each column, -1 where there is none: a max over the rows of
    # (y + 1) where closing, which numpy reduces row by row (argmax along y walks column by column).
    rows = np.arange(1, h + 1, dtype=np.uint16 if h < 1 << 16 else np.uint32)
    top = (closing.reshape(h, -1) * rows[:, None]).max(axis=0, initial=0).astype(np.intp).reshape(d, w) - 1
    flat = np.flatnonzero(base | under)
    ys, rest = np.divmod(flat, d * w)
    zs, xs = np.divmod(rest, w)
    wet = under.reshape(-1)[flat]
    dry = np.where(ys > top[zs, xs], np.uint8(SURFACE_BIT), np.uint8(CAVE_BIT))
    kind = np.where(wet, np.uint8(UNDERWATER_BIT), dry).astype(np.uint8)
    return ys, zs, xs, kind
