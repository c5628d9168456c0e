"""Hytale sections as the game writes them: palette widths, nibble order, fluid levels, the name table."""

from __future__ import annotations

import random

import numpy as np
import pytest

from cairn.worlds import hytale
from cairn.worlds.classify import AIR, OTHER, SOLID, WATER, Classifier, hytale_class, hytale_fluid_class
from tests.unit import hytale_game as hg


def _names(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    pool = ["Empty"] + [f"Rock_Test_{i}" for i in range(n - 1)]
    names = [rng.choice(pool) for _ in range(hg.CELLS)]
    names[: len(pool)] = pool  # every palette entry is used
    return names


@pytest.mark.parametrize(("n", "kind"), [(13, hg.HALF_BYTE), (200, hg.BYTE), (300, hg.SHORT), (1000, hg.SHORT)])
def test_section_written_in_the_games_layout_decodes_exactly(n: int, kind: int) -> None:
    names = _names(n, n)
    data = hg.write_section(names)
    assert data[4] == kind  # the writer picked the game's palette for n distinct blocks
    pal = hytale.block_palette({"Version": 6, "Data": data})
    lookup = dict(pal.entries)
    ids = pal.ids()
    assert pal.kind == kind and ids is not None
    assert [lookup[int(i)] for i in ids] == names
    # Classed through the lookup table (per byte for 4-bit palettes), cell for cell.
    classes = hytale.cell_classes(pal, Classifier((), "hytale"))
    assert classes.tolist() == [AIR if name == "Empty" else SOLID for name in names]
    ref = hg.BlockSectionData(data, 6).palette  # the scalar reader agrees
    assert [ref.get(i) for i in range(0, hg.CELLS, 97)] == names[::97]


def test_16_bit_ids_are_two_big_endian_bytes_in_palette_and_cells() -> None:
    names = _names(300, 7)
    data = hg.write_section(names)
    count = int.from_bytes(data[5:7], "big")
    assert count == 300
    # The first entry: a 2-byte internal id 0, then "Empty" with its 2-byte length.
    assert data[7:9] == b"\x00\x00" and data[9:11] == b"\x00\x05" and data[11:16] == b"Empty"
    pal = hytale.block_palette({"Version": 6, "Data": data})
    ids = {name: i for i, name in pal.entries}
    cells = pal.ids()
    assert ids["Rock_Test_298"] == 299 and cells is not None
    assert int(cells[299]) == 299 and names[299] == "Rock_Test_298"


def test_nibbles_hold_the_even_cell_high_and_fluid_levels_hold_it_low() -> None:
    cells = bytes([0x12]) + bytes(hg.CELLS // 2 - 1)
    assert hytale.decode_indices(cells, hytale.HALF_BYTE)[:3].tolist() == [1, 2, 0]  # BitUtil.getNibble
    assert [hg.get_nibble(cells, i) for i in range(3)] == [1, 2, 0]
    fluid = hg.write_fluid({(0, 0, 0): ("Water", 1), (1, 0, 0): ("Water", 2)})
    assert fluid[-hg.CELLS // 2 - 1 :][:2] == b"\x01\x21"  # levels flag, then level 2 high, level 1 low
    pal, levels = hytale.fluid_cells({"Data": fluid})
    assert levels is not None and levels[:3].tolist() == [1, 2, 0]
    ids = pal.ids()
    assert ids is not None and ids[:3].tolist() == [1, 1, 0]


def test_fluids_fill_empty_cells_and_solid_blocks_stay_solid() -> None:
    blocks = {(0, 0, 0): "Rock_Stone", (1, 0, 0): "Plant_Grass_Tall"}
    fluids = {(x, 0, 0): ("Water", 3) for x in range(4)} | {(5, 0, 0): ("Lava_Source", 1), (6, 0, 0): ("Slime", 0)}
    section = hg.chunk_doc([hg.write_section(blocks)], [hg.write_fluid(fluids)])["Components"]["ChunkColumn"]
    cells = hytale.section_classes(section["Sections"][0], Classifier((), "hytale"))
    assert cells is not None
    # A fluid at level 0 is no fluid (`FluidSection.setFluid` stores none).
    assert cells[0, 0, :7].tolist() == [SOLID, WATER, WATER, WATER, AIR, OTHER, AIR]


def test_damaged_sections_raise_a_clear_error() -> None:
    good = hg.write_section({(0, 0, 0): "Rock_Stone"})
    with pytest.raises(hytale.HytaleError, match="bytes of cells"):
        hytale.block_palette({"Version": 6, "Data": good[:100]})
    with pytest.raises(hytale.HytaleError, match="palette type 9"):
        hytale.block_palette({"Version": 6, "Data": good[:4] + b"\x09" + good[5:]})
    with pytest.raises(hytale.HytaleError, match="truncated"):
        hytale.block_palette({"Version": 6, "Data": good[:9]})


# Every block id in the real sample (tests/data/hytale-into-the-heart), by the class the name table gives it.
_SOLID = """Build_GreyLight_Cube Rock_Aqua_Brick_Ornate Rock_Basalt_Brick_Ornate Rock_Calcite_Brick
Rock_Calcite_Brick_Decorative Rock_Calcite_Brick_Half Rock_Calcite_Brick_Ornate Rock_Calcite_Brick_Smooth
Rock_Calcite_Brick_Smooth_Half Rock_Calcite_Brick_Stairs Rock_Calcite_Cobble Rock_Calcite_Cobble_Half
Rock_Chalk_Brick_Ornate Rock_Gold_Brick_Ornate Rock_Ledge_Brick_Ornate Rock_Lime_Brick_Ornate
Rock_Magma_Cooled_Brick_Ornate Rock_Marble_Brick Rock_Marble_Brick_Decorative Rock_Marble_Brick_Half
Rock_Marble_Brick_Ornate Rock_Marble_Brick_Smooth Rock_Quartzite_Brick_Ornate Rock_Runic_Brick_Ornate
Rock_Sandstone_Brick_Ornate Rock_Sandstone_Red_Brick_Ornate Rock_Sandstone_White_Brick_Ornate
Rock_Shale_Brick_Ornate Rock_Slate_Brick_Ornate Rock_Stone Rock_Stone_Brick Rock_Stone_Brick_Ornate
Rock_Stone_Half Rock_Stone_Mossy Rock_Volcanic_Brick_Ornate Soil_Clay_Ocean_Brick_Ornate Soil_Clay_Red
Soil_Dirt Soil_Grass Wood_Ash_Trunk Wood_Ash_Trunk_Full Wood_Beech_Trunk Wood_Beech_Trunk_Full
Wood_Blackwood_Ornate Wood_Darkwood_Ornate Wood_Deadwood_Ornate Wood_Drywood_Ornate Wood_Goldenwood_Ornate
Wood_Greenwood_Ornate Wood_Hardwood_Ornate Wood_Lightwood_Ornate Wood_Oak_Trunk_Full Wood_Redwood_Ornate
Wood_Softwood_Ornate Wood_Tropicalwood_Ornate *Rock_Calcite_Brick_Half_State_Definitions_Block
*Rock_Calcite_Brick_Stairs_State_Definitions_Corner_Left *Rock_Stone_Half_State_Definitions_Block"""
_OTHER = """Air_Block Build_Lightsource_Red Build_Lightsource_White Deco_Book_Pile_Large Deco_Book_Pile_Small
Deco_SpiderWeb Deco_SpiderWeb_Full Furniture_Ancient_Bookshelf Furniture_Ancient_Table
Furniture_Human_Ruins_Bookshelf Furniture_Temple_Dark_Window Furniture_Temple_Light_Bed
Furniture_Temple_Light_Brazier Furniture_Temple_Light_Lantern Furniture_Temple_Light_Lantern_Ceiling
Furniture_Temple_Light_Statue Furniture_Village_Bookcase Lobby_Wall_Poster01 Lobby_Wall_Poster_Small01
Plant_Crop_Mushroom_Flatcap_Green Plant_Crop_Mushroom_Glowing_Blue Plant_Crop_Mushroom_Glowing_Red
Plant_Leaves_Aspen Plant_Leaves_Azure Plant_Leaves_Camphor Plant_Moss_Cave_Green_Dark Plant_Moss_Rug_Green_Dark
Plant_Vine_Hanging Rock_Bedrock Rock_Calcite_Brick_Beam Rock_Calcite_Brick_Pillar_Base
Rock_Calcite_Brick_Pillar_Middle Rock_Calcite_Brick_Wall Rock_Crystal_Blue_Large Rock_Crystal_Green_Block
Rock_Marble_Brick_Pillar_Base Rock_Marble_Brick_Pillar_Base_Glowing Rock_Marble_Brick_Pillar_Middle
Rock_Stone_Stalactite_Large Rock_Stone_Stalactite_Small Rubble_Stone Survival_Trap_Grass Survival_Trap_Spike_Iron
Weapon_Sword_Agni_Savior_Placeable Wood_Ash_Branch_Corner Wood_Ash_Branch_Long Wood_Torch_Wall
*Furniture_Crude_Candle_State_Definitions_Off *Furniture_Temple_Light_Door_Large_State_Definitions_CloseDoorIn
*Furniture_Temple_Light_Door_Large_State_Definitions_CloseDoorOut
**Furniture_Dungeon_Chest_Legendary_Large_State_Definitions_OpenWindow_State_Definitions_CloseWindow"""
SAMPLE_SOLID = _SOLID.split()
SAMPLE_OTHER = _OTHER.split()


def test_name_table_covers_every_block_of_the_real_sample() -> None:
    assert hytale_class("Empty") == AIR
    assert {n: hytale_class(n) for n in SAMPLE_SOLID} == dict.fromkeys(SAMPLE_SOLID, SOLID)
    assert {n: hytale_class(n) for n in SAMPLE_OTHER} == dict.fromkeys(SAMPLE_OTHER, OTHER)
    assert hytale_class("Some_Future_Category_Block") == OTHER  # unknown: never a floor, never a site
    fluids = {"Empty": AIR, "Water": WATER, "Water_Source": WATER, "Water_Glow_Source": WATER,
              "Lava_Source": OTHER, "Poison_Source": OTHER, "Slime": OTHER, "Slime_Source": OTHER}  # fmt: skip
    assert {n: hytale_fluid_class(n) for n in fluids} == fluids
    deny = Classifier(["Soil_Grass", "Water_Glow*"], "hytale")
    assert deny("Soil_Grass") == OTHER and deny("Soil_Dirt") == SOLID
    assert deny.fluid("Water_Glow_Source") == OTHER and deny.fluid("Water") == WATER


def test_lookup_tables_cover_every_id_a_palette_can_hold() -> None:
    c = Classifier((), "hytale")
    for kind, size in ((hytale.BYTE, 256), (hytale.SHORT, 65536)):
        pal = hytale.Palette(kind, ((size - 1, "Rock_Stone"),), b"", 0, 0)
        lut = hytale._lut(c, pal, False)
        assert lut.shape == (size,) and lut[size - 1] == SOLID and lut[0] == AIR
    # 4-bit: one item per byte holding both cells' classes, the even cell's (high nibble) first.
    pal = hytale.Palette(hytale.HALF_BYTE, ((15, "Rock_Stone"),), b"", 0, 0)
    lut = hytale._lut(c, pal, False)
    pairs = lut.view(np.uint8).reshape(256, 2)
    assert pairs[0xF0].tolist() == [SOLID, AIR] and pairs[0x0F].tolist() == [AIR, SOLID]


def test_each_classifier_keeps_its_own_lookup_tables() -> None:
    pal = hytale.Palette(hytale.BYTE, ((1, "Rock_Stone"),), b"", 0, 0)
    for deny, expected in (((), SOLID), (("Rock_Stone",), OTHER), ((), SOLID)):
        c = Classifier(deny, "hytale")  # a freed classifier's id may be reused: the cache must not care
        assert hytale._lut(c, pal, False)[1] == expected
        del c
