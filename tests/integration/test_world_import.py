"""`cairn world import` on region files written by third-party code, and on a real 1.20.1 world."""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from cairn.core.sites import SiteSet
from cairn.worlds import anvil, importer
from cairn.worlds.pack import InvalidPack, load_pack, pack_meta, write_pack
from tests.unit import worldbuild as wb

REAL = Path(__file__).resolve().parents[1] / "data" / "mc-1.20.1"


def site_map(s: SiteSet) -> dict[tuple[int, int, int], set[str]]:
    return {s.pos(i): set(s.tags_of(i)) for i in range(len(s))}


def run(src: Path, fmt: str, tmp: Path, **kw: object) -> tuple[SiteSet, dict[str, object]]:
    return importer.import_regions(src, fmt, work=tmp / "work", **kw)  # type: ignore[arg-type]


def assert_never_inside(s: SiteSet, blocks: dict[tuple[int, int, int], str], ox: int, oz: int) -> None:
    """No site in bedrock, stone, leaves or lava, and none resting on them unless on stone."""
    for (x, y, z), tags in site_map(s).items():
        cell = blocks.get((x - ox, y, z - oz), "minecraft:air")
        floor = blocks.get((x - ox, y - 1, z - oz), "minecraft:air")
        assert cell == ("minecraft:water" if "underwater" in tags else "minecraft:air"), (x, y, z, cell)
        assert floor not in ("minecraft:bedrock", "minecraft:lava", "minecraft:oak_leaves", "minecraft:air"), floor


def test_anvil_1_14_written_by_anvil_parser2_gives_the_exact_sites(tmp_path: Path) -> None:
    wb.write_anvil_1_14(tmp_path / "world")
    s, info = run(tmp_path / "world", "anvil", tmp_path)
    assert site_map(s) == wb.expected_sites(0, 40)
    assert info["chunks"] == 1 and info["chunk_errors"] == 0
    assert_never_inside(s, wb.design(0, 40), 0, 0)


def test_anvil_1_18_nbt_with_negative_y_gives_the_exact_sites(tmp_path: Path) -> None:
    wb.write_anvil_1_18(tmp_path / "world")
    s, info = run(tmp_path / "world", "anvil", tmp_path)
    assert site_map(s) == wb.expected_sites(-64, 70, -16, -16)
    assert info["chunks"] == 2 and info["chunks_not_generated"] == 1
    assert_never_inside(s, wb.design(-64, 70), -16, -16)
    lake = s.query((-12, -64, -12), (-9, -60, -9))
    assert {s.tags_of(int(i)) for i in lake} == {("underwater", "river")}


def test_deny_list_removes_sites_on_denied_blocks(tmp_path: Path) -> None:
    wb.write_anvil_1_14(tmp_path / "world")
    s, _ = run(tmp_path / "world", "anvil", tmp_path, deny=["minecraft:gravel"])
    assert site_map(s) == wb.expected_sites(0, 40, deny=("minecraft:gravel",))
    assert (2, 4, 15) not in site_map(s)


def test_workers_and_resume(tmp_path: Path) -> None:
    wb.write_anvil_1_14(tmp_path / "a")
    wb.write_anvil_1_18(tmp_path / "a")
    s1, info1 = run(tmp_path / "a", "anvil", tmp_path, workers=2)
    assert info1["regions"] == 2 and info1["parts_resumed"] == 0
    s2, info2 = run(tmp_path / "a", "anvil", tmp_path, workers=2, resume=True)
    assert info2["parts_resumed"] == 2 and site_map(s2) == site_map(s1)
    region = tmp_path / "a" / "region" / "r.0.0.mca"
    os.utime(region, ns=(1, 1))  # a changed region is decoded again
    _, info3 = run(tmp_path / "a", "anvil", tmp_path, resume=True)
    assert info3["parts_resumed"] == 1
    _, info4 = run(tmp_path / "a", "anvil", tmp_path, deny=["minecraft:dirt"], resume=True)
    assert info4["parts_resumed"] == 0  # other settings: nothing is reused


def test_unreadable_chunks_are_reported_not_fatal(tmp_path: Path) -> None:
    path = wb.write_anvil_1_18(tmp_path / "w")
    data = bytearray(path.read_bytes())
    data[8192 + 5 : 8192 + 40] = b"\xff" * 35  # break the first chunk's zlib stream
    path.write_bytes(bytes(data))
    _s, info = run(tmp_path / "w", "anvil", tmp_path)
    assert info["chunk_errors"] == 1 and "bad compressed data" in info["errors_sample"][0]


def test_hytale_region_in_the_games_layout_gives_the_exact_sites(tmp_path: Path) -> None:
    wb.write_hytale_world(tmp_path / "hy")
    s, info = run(tmp_path / "hy", "hytale", tmp_path)
    assert info["chunks"] == 2 and info["chunk_errors"] == 0
    assert site_map(s) == wb.hytale_expected_world()


def _heights(longs: object, bits: int = 9) -> list[int]:
    """Decode a 1.18+ heightmap with plain Python: 256 entries of 9 bits, 7 per long."""
    out = []
    for v in np.asarray(longs).tolist():
        v &= (1 << 64) - 1
        out += [(v >> (k * bits)) & ((1 << bits) - 1) for k in range(64 // bits)]
    return out[:256]


def test_real_1_20_1_world_surface_matches_minecrafts_own_heightmap(tmp_path: Path) -> None:
    s, info = run(REAL, "anvil", tmp_path, workers=2)
    assert info["chunks"] == 20 and info["chunks_not_generated"] == 4 and info["chunk_errors"] == 0
    surface = s.mask("surface")
    data = (REAL / "region" / "r.0.-1.mca").read_bytes()
    checked = 0
    for slot in anvil.chunk_slots(data):
        root = anvil.parse_nbt(anvil.read_chunk(data, slot))
        if str(root["Status"]) != "minecraft:full":
            continue
        cx, cz = int(root["xPos"]), int(root["zPos"])
        top = _heights(root["Heightmaps"]["MOTION_BLOCKING_NO_LEAVES"])
        idx = s.query((cx * 16, -64, cz * 16), (cx * 16 + 15, 320, cz * 16 + 15), any_mask=surface)
        cols = set()
        for x, y, z in s.positions(idx).tolist():
            # A surface site is the first free cell above the highest motion-blocking, non-leaf block.
            assert y == top[(z - cz * 16) * 16 + (x - cx * 16)] - 64, (x, y, z)
            cols.add((x, z))
            checked += 1
        assert len(cols) == len(idx)  # one surface site per column at most
    assert checked > 1500
    assert {"surface", "cave", "underwater"} <= set(s.tag_names) and len(s.tag_names) > 3  # biomes too
    assert np.count_nonzero(s.tags & s.mask("cave")) > 0


def test_cli_import_writes_a_pack_that_loads(tmp_path: Path) -> None:
    wb.write_anvil_1_18(tmp_path / "world")
    out = tmp_path / "w.pack"
    proc = subprocess.run(
        [sys.executable, "-m", "cairn", "world", "import", str(tmp_path / "world"), "--world", "ow",
         "--out", str(out), "--workers", "1", "--deny", "minecraft:gravel"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "sites" in proc.stderr and not (tmp_path / "w.pack.work").exists()
    s = load_pack(out)
    assert site_map(s) == wb.expected_sites(-64, 70, -16, -16, deny=("minecraft:gravel",))
    assert pack_meta(out)["world"] == "ow"
    bad = subprocess.run([sys.executable, "-m", "cairn", "world", "import", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "import_failed" in bad.stdout + bad.stderr


def test_cli_import_refuses_bad_sources_and_flags_without_a_traceback(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "big.ndjson").write_text('{"x":1,"y":64,"z":99999999999999999999999}\n')
    (tmp_path / "big.csv").write_text("1,64,99999999999999999999999\n")
    (tmp_path / "empty.ndjson").write_text("")
    Image.new("L", (8, 8), 100).save(tmp_path / "h.png")
    cases = [
        (["big.ndjson"], "invalid_sites"),
        (["big.csv"], "invalid_sites"),
        (["empty.ndjson"], "invalid_sites"),
        (["h.png", "--format", "heightmap", "--origin", "a,b"], "validation_error"),
        (["h.png", "--format", "heightmap", "--origin", "1"], "validation_error"),
        (["h.png", "--format", "heightmap", "--origin", "99999999999999999999999,0"], "validation_error"),
        (["h.png", "--format", "heightmap", "--y-min=-99999999999999999999"], "validation_error"),
        (["h.png", "--format", "heightmap", "--step", "-1"], "validation_error"),
    ]
    for args, code in cases:
        out = tmp_path / "o.pack"
        proc = subprocess.run(
            [sys.executable, "-m", "cairn", "world", "import", str(tmp_path / args[0]), *args[1:], "--out", str(out)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        said = proc.stdout + proc.stderr
        assert proc.returncode == 2 and code in said and "Traceback" not in said, (args, said)
        assert not out.exists(), args


def test_pack_file_roundtrip_and_corruption(tmp_path: Path) -> None:
    s = SiteSet.from_arrays(np.array([[5, 64, 5], [1, 70, -3]]), np.array([1, 2], np.uint32), ["surface", "cave"])
    path = write_pack(s, tmp_path / "p.pack", {"world": "x"})
    t = load_pack(path)
    assert site_map(t) == site_map(s) and not t.xz.flags.writeable and not t.xz.flags.owndata
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(InvalidPack, match=r"p\.pack: section chunk_starts checksum mismatch"):
        load_pack(path)


def _v1_pack(s: SiteSet) -> bytes:
    """The version 1 layout (int32 x and z columns), written from docs/site-pack.md, not by Cairn."""
    meta = json.dumps({"tag_names": list(s.tag_names)}).encode()
    cols = [meta, *(np.ascontiguousarray(c).tobytes() for c in (s.x, s.y, s.z, s.tags, s.chunk_keys, s.chunk_starts))]
    header = struct.Struct("<8sIIQQII")
    entry = struct.Struct("<QQII")
    off, entries, body = -(-(header.size + entry.size * 7) // 64) * 64, b"", b""
    for c in cols:
        entries += entry.pack(off, len(c), zlib.crc32(c), 0)
        body += c + b"\0" * (-len(c) % 64)
        off += len(c) + (-len(c) % 64)
    crc = zlib.crc32(header.pack(b"CAIRNSPK", 1, 0, len(s), len(s.chunk_keys), 7, 0) + entries)
    head = header.pack(b"CAIRNSPK", 1, 0, len(s), len(s.chunk_keys), 7, crc) + entries
    return head + b"\0" * (-len(head) % 64) + body


def test_version_1_packs_still_load(tmp_path: Path) -> None:
    from cairn.core import worldgen
    from cairn.worlds.pack import load_pack_bytes

    s = worldgen.generate(seed=3, size=256)
    v1 = _v1_pack(s)
    (tmp_path / "old.pack").write_bytes(v1)
    for t in (load_pack(tmp_path / "old.pack"), load_pack_bytes(v1)):
        t._check()
        assert np.array_equal(t.xz, s.xz) and np.array_equal(t.y, s.y) and np.array_equal(t.tags, s.tags)
        assert t.query((-40, -64, -40), (40, 320, 40)).tolist() == s.query((-40, -64, -40), (40, 320, 40)).tolist()
    # A v1 site whose x does not belong to its chunk cannot be told apart once packed: refuse it.
    bad = SiteSet.from_arrays(np.array([[1, 64, 1], [40, 64, 1]]), np.ones(2, np.uint32), ["surface"])
    raw = bytearray(_v1_pack(bad))
    x_off = struct.unpack_from("<Q", raw, 40 + 24)[0]
    struct.pack_into("<i", raw, x_off, 17)  # site 0 moves to x=17, still filed under chunk 0
    with pytest.raises(InvalidPack, match="filed under the wrong chunk"):
        load_pack_bytes(_recrc(bytes(raw)))


def _recrc(raw: bytes) -> bytes:
    """`raw` with every section CRC and the header CRC made right again."""
    buf = bytearray(raw)
    nsec = struct.unpack_from("<I", buf, 32)[0]
    for i in range(nsec):
        at = 40 + 24 * i
        off, length = struct.unpack_from("<QQ", buf, at)
        struct.pack_into("<I", buf, at + 16, zlib.crc32(buf[off : off + length]))
    struct.pack_into("<I", buf, 36, 0)
    struct.pack_into("<I", buf, 36, zlib.crc32(bytes(buf[: 40 + 24 * nsec])))
    return bytes(buf)


def test_heightmap_image_source(tmp_path: Path) -> None:
    from PIL import Image

    img = Image.fromarray(np.array([[0, 255], [128, 64]], dtype=np.uint8), mode="L")
    img.save(tmp_path / "h.png")
    out = tmp_path / "h.pack"
    proc = subprocess.run(
        [sys.executable, "-m", "cairn", "world", "import", str(tmp_path / "h.png"), "--out", str(out),
         "--y-min", "0", "--y-max", "255", "--sea-level", "62"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = site_map(load_pack(out))
    assert got == {
        (0, 1, 0): {"underwater"},
        (1, 256, 0): {"surface"},
        (0, 129, 1): {"surface"},
        (1, 65, 1): {"surface"},
    }


def test_selective_parse_reads_what_nbtlib_reads_and_refuses_damage() -> None:
    data = (REAL / "region" / "r.0.-1.mca").read_bytes()
    biomes_a, biomes_b = anvil.BiomeNames(), anvil.BiomeNames()
    classifier = importer._classifier("anvil", ())
    seen = 0
    for slot in anvil.chunk_slots(data):
        raw = anvil.read_chunk(data, slot)
        assert raw is not None
        full = anvil.decode_chunk(anvil.parse_nbt(raw), classifier, biomes_a)
        lean = anvil.decode_chunk(anvil.parse_chunk(raw), classifier, biomes_b)
        assert (full is None) == (lean is None)
        if full is not None and lean is not None:
            seen += 1
            for field in ("x", "y", "z", "kind"):
                assert np.array_equal(getattr(full, field), getattr(lean, field))
            assert [biomes_a.names[i] for i in full.biome] == [biomes_b.names[i] for i in lean.biome]
        with pytest.raises(anvil.ChunkError, match="bad NBT"):
            anvil.parse_chunk(raw[: len(raw) // 2])
    assert seen == 16


def test_a_pack_cut_inside_its_directory_says_so() -> None:
    from cairn.core import worldgen
    from cairn.worlds.pack import load_pack_bytes, pack_bytes

    whole = pack_bytes(worldgen.generate(seed=3, size=256))
    with pytest.raises(InvalidPack, match="too short for a site pack directory"):
        load_pack_bytes(whole[:50])


def _bomb(size: int) -> bytes:
    """A zlib stream of `size` zero bytes (about size / 1000 compressed)."""
    z = zlib.compressobj(9)
    block = bytes(1 << 20)
    return b"".join(z.compress(block) for _ in range(size >> 20)) + z.flush()


def test_a_chunk_that_decompresses_past_the_bound_is_unreadable_and_costs_no_memory(tmp_path: Path) -> None:
    path = wb.write_anvil_1_18(tmp_path / "w")
    data = bytearray(path.read_bytes())
    bomb = _bomb(512 << 20)  # 512 MiB of zeros in a region of half a megabyte
    blob = struct.pack(">IB", len(bomb) + 1, 2) + bomb
    blob += bytes(-len(blob) % 4096)
    struct.pack_into(">I", data, 0, (len(data) // 4096) << 8 | len(blob) // 4096)  # slot 0: chunk (0, 0)
    path.write_bytes(bytes(data) + blob)
    gz = gzip.compress(b"nbt" * 5)
    assert anvil.read_chunk(struct.pack(">I", 1 << 8 | 1) + bytes(4092) + struct.pack(">IB", len(gz) + 1, 1) + gz,
                            0) == b"nbt" * 5  # gzip chunks still read  # fmt: skip
    # The CLI (one worker: in process), in a child that reports its peak RSS. VmHWM, not ru_maxrss:
    # Linux carries ru_maxrss across exec, so it would count this test process's own memory.
    out = tmp_path / "w.pack"
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['cairn', 'world', 'import', {str(tmp_path / 'w')!r}, '--out', {str(out)!r}, '--workers', '1']\n"
        "try:\n    runpy.run_module('cairn', run_name='__main__')\n"
        "finally:\n    hwm = [line for line in open('/proc/self/status') if line.startswith('VmHWM:')][0]\n"
        "    print('peak_kib', hwm.split()[1], file=sys.stderr)\n"
    )  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    peak_mib = int(proc.stderr.rsplit("peak_kib", 1)[1].split()[0]) / 1024
    assert peak_mib < 250, f"peak RSS {peak_mib:.0f} MiB while importing a 512 MiB chunk bomb"
    assert "decompresses to more than 16 MiB" in proc.stderr, proc.stderr
    assert site_map(load_pack(out)) == wb.expected_sites(-64, 70, -16, -16)  # the good chunk is kept


def test_a_hytale_blob_bigger_than_the_bound_is_unreadable_whatever_its_header_says(tmp_path: Path) -> None:
    import zstandard

    from cairn.worlds import hytale

    path = wb.write_hytale_world(tmp_path / "hy")
    bomb = zstandard.ZstdCompressor(level=3).compress(bytes(64 << 20))  # declares its 64 MiB size
    raw = bytearray(path.read_bytes())
    head, segment = 20 + 12, 4096
    for slot, src in ((2, 64 << 20), (3, 1000)):  # an honest header, and one that understates
        blob = struct.pack(">ii", src, len(bomb)) + bomb
        struct.pack_into(">i", raw, head + 4 * slot, (len(raw) - head - 4 * 1024) // segment + 1)
        raw += blob + bytes(-len(blob) % segment)
    path.write_bytes(bytes(raw))
    with hytale.Region(path) as region:
        for slot, message in ((2, "more than 16 MiB"), (3, "more than its header's 1,000 bytes")):
            with pytest.raises(hytale.HytaleError, match=message):
                region.blob(slot)
    _s, info = run(tmp_path / "hy", "hytale", tmp_path)
    assert info["chunk_errors"] == 2 and site_map(_s) == wb.hytale_expected_world()
