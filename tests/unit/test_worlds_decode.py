"""World import building blocks without files: bit unpacking, cell classes, site lists, pack bytes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.core.sites import SiteSet
from cairn.worlds import anvil, sources, upload
from cairn.worlds.classify import AIR, OTHER, SOLID, WATER, Classifier, classify, minecraft_class
from cairn.worlds.pack import InvalidPack, load_pack_bytes, pack_bytes
from tests.unit.worldbuild import pack_longs, pack_longs_spanning


@st.composite
def packed(draw: st.DrawFn) -> tuple[int, list[int]]:
    bits = draw(st.integers(1, 16))
    idx = draw(st.lists(st.integers(0, (1 << bits) - 1), min_size=1, max_size=300))
    return bits, idx


@given(packed())
def test_unpack_nospan_matches_the_scalar_packer(case: tuple[int, list[int]]) -> None:
    bits, idx = case
    longs = anvil._longs(np.array(pack_longs(idx, bits), dtype=">i8"))
    assert anvil.unpack_nospan(longs, bits, len(idx)).tolist() == idx


@given(packed())
def test_unpack_span_matches_the_scalar_packer(case: tuple[int, list[int]]) -> None:
    bits, idx = case
    longs = anvil._longs(np.array(pack_longs_spanning(idx, bits), dtype=">i8"))
    assert anvil.unpack_span(longs, bits, len(idx)).tolist() == idx


@pytest.mark.parametrize("bits", [4, 5, 6, 7, 9, 12])
def test_unpack_picks_the_layout_by_length(bits: int) -> None:
    rng = np.random.default_rng(bits)
    idx = rng.integers(0, 1 << bits, 4096).tolist()
    assert anvil.unpack(np.array(pack_longs(idx, bits), dtype=">i8"), bits, 4096).tolist() == idx
    assert anvil.unpack(np.array(pack_longs_spanning(idx, bits), dtype=">i8"), bits, 4096).tolist() == idx
    with pytest.raises(anvil.ChunkError, match="match neither packing"):
        anvil.unpack(np.zeros(7, dtype=">i8"), bits, 4096)


def test_minecraft_classes() -> None:
    assert minecraft_class("minecraft:grass_block") == SOLID
    assert minecraft_class("minecraft:grass") == OTHER
    assert minecraft_class("minecraft:cave_air") == AIR
    assert minecraft_class("minecraft:seagrass") == WATER
    assert minecraft_class("minecraft:oak_leaves") == OTHER
    assert minecraft_class("minecraft:cobblestone_wall") == OTHER
    c = Classifier(["minecraft:gravel", "*_ore"])
    assert c("minecraft:bedrock") == OTHER and c("minecraft:lava") == OTHER
    assert c("minecraft:gravel") == OTHER and c("minecraft:iron_ore") == OTHER
    assert c("minecraft:stone") == SOLID


def test_classify_rules_on_one_column() -> None:
    # y=1 is a cave (stone at y=3 roofs it); y=4 is surface (leaves at y=6 do not close the sky);
    # y=7 stands on leaves and y=11 on OTHER (lava, say): neither is a floor.
    col = [SOLID, AIR, AIR, SOLID, AIR, AIR, OTHER, AIR, AIR, AIR, OTHER, AIR]
    cells = np.array(col, dtype=np.uint8).reshape(-1, 1, 1)
    ys, _, _, kind = classify(cells)
    assert dict(zip(ys.tolist(), kind.tolist(), strict=True)) == {1: 2, 4: 1}
    water = np.array([SOLID, WATER, WATER, AIR], dtype=np.uint8).reshape(-1, 1, 1)
    ys, _, _, kind = classify(water)
    assert dict(zip(ys.tolist(), kind.tolist(), strict=True)) == {1: 4}


def test_ndjson_and_csv_lists() -> None:
    nd = b'{"x": 1, "y": 64, "z": -3, "tags": ["forest", "surface"]}\n\n{"pos": [2, 30, 5], "tags": "cave"}\n'
    s = sources.read_ndjson(nd)
    assert s.tag_names == ("surface", "cave", "forest")
    assert {s.pos(i): s.tags_of(i) for i in range(len(s))} == {
        (1, 64, -3): ("surface", "forest"),
        (2, 30, 5): ("cave",),
    }
    c = sources.read_csv(b"x,y,z,tags\n1,64,-3,surface;forest\n2,30,5,cave\n")
    assert {c.pos(i): c.tags_of(i) for i in range(len(c))} == {
        (1, 64, -3): ("surface", "forest"),
        (2, 30, 5): ("cave",),
    }
    with pytest.raises(sources.InvalidSites, match="line 2: a site needs x, y and z"):
        sources.read_ndjson(b'{"x":1,"y":2,"z":3}\n{"x":1}\n')
    with pytest.raises(sources.InvalidSites, match="line 1: not a valid site object"):
        sources.read_ndjson(b"{nope\n")
    with pytest.raises(sources.InvalidSites, match="line 3: x, y and z must be integers"):
        sources.read_csv(b"x,y,z\n1,2,3\na,b,c\n")
    with pytest.raises(sources.InvalidSites, match="line 2: x, y and z must be integers"):
        sources.read_csv("x,y,z\n１,64,2\n".encode())  # a fullwidth 1 is not a coordinate
    with pytest.raises(sources.InvalidSites, match="line 1: give pos or x, y and z, not both"):
        sources.read_ndjson(b'{"pos":[1,2,3],"x":9,"y":2,"z":3}\n')
    with pytest.raises(sources.InvalidSites, match="outside the world limits"):
        sources.read_ndjson(b'{"x":1,"y":99999,"z":3}\n')
    with pytest.raises(sources.InvalidSites, match="more than 32 distinct tags"):
        sources.read_ndjson(b"\n".join(b'{"x":%d,"y":1,"z":1,"tags":["t%d"]}' % (i, i) for i in range(33)))


def test_heightmap_sites_from_an_array() -> None:
    h = np.array([[10, 20], [30, 40]])
    s = sources.heightmap_sites(h, sources.HeightmapOptions(origin=(100, -5), sea_level=25))
    got = {s.pos(i): s.tags_of(i) for i in range(len(s))}
    assert got == {(100, 11, -5): ("underwater",), (101, 21, -5): ("underwater",),
                   (100, 31, -4): ("surface",), (101, 41, -4): ("surface",)}  # fmt: skip


def test_upload_body_format() -> None:
    assert upload.body_format("application/x-ndjson", b"{") == "ndjson"
    assert upload.body_format("text/csv; charset=utf-8", b"x") == "csv"
    assert upload.body_format("application/x-ndjson", b"CAIRNSPK") == "pack"
    with pytest.raises(upload.UnsupportedMediaType):
        upload.body_format("text/plain", b"hi")


sites_strategy = st.lists(
    st.tuples(st.integers(-70000, 70000), st.integers(-2048, 4096), st.integers(-70000, 70000), st.integers(0, 7)),
    max_size=200,
)


@settings(max_examples=60)
@given(rows=sites_strategy)
def test_pack_then_load_gives_the_same_siteset(rows: list[tuple[int, int, int, int]]) -> None:
    xyz = np.array([r[:3] for r in rows], dtype=np.int64).reshape(-1, 3)
    tags = np.array([r[3] for r in rows], dtype=np.uint32)
    s = SiteSet.from_arrays(xyz, tags, ["surface", "cave", "forest"])
    t = load_pack_bytes(pack_bytes(s, {"world": "w"}))
    assert t.tag_names == s.tag_names
    for name in ("xz", "x", "y", "z", "tags", "chunk_keys", "chunk_starts"):
        a, b = getattr(s, name), getattr(t, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    t._check()


def test_a_corrupted_pack_is_refused_with_a_clear_error() -> None:
    s = SiteSet.from_arrays(
        np.array([[1, 64, 1], [40, 70, -9], [1, 65, 1]]), np.array([1, 2, 1], np.uint32), ["a", "b"]
    )
    good = pack_bytes(s)
    assert len(load_pack_bytes(good)) == 3
    for at, msg in ((0, "not a site pack"), (20, "header checksum mismatch"), (len(good) - 3, "checksum mismatch")):
        bad = bytearray(good)
        bad[at] ^= 0x40
        with pytest.raises(InvalidPack, match=msg):
            load_pack_bytes(bytes(bad))
    with pytest.raises(InvalidPack, match="truncated"):
        load_pack_bytes(good[:-20])
    with pytest.raises(InvalidPack, match="too short"):
        load_pack_bytes(good[:10])
    wrong_version = bytearray(good)
    wrong_version[8] = 9
    with pytest.raises(InvalidPack, match="version 9 is not supported"):
        load_pack_bytes(bytes(wrong_version))


def test_worlds_before_the_flattening_are_refused_by_name() -> None:
    from nbtlib import Compound, Int

    old = Compound({"DataVersion": Int(1343), "Level": Compound({"xPos": Int(0), "zPos": Int(0)})})
    with pytest.raises(anvil.ChunkError, match=r"DataVersion 1343: worlds before Minecraft 1\.13"):
        anvil.decode_chunk(old, Classifier(), anvil.BiomeNames())
