"""Hytale `.region.bin` saves, read through the `hytale-region-parser` package.

The package reads the container (an IndexedStorageFile: a 32-byte header, a blob index, zstd blobs
of BSON chunk documents) and each section's block palette and raw index bytes. Cairn decodes the
indices with numpy (4, 8 or 16 bits per block, index = x + z·32 + y·1024 in a 32³ section) and
classifies cells by block name. The limits are in docs/worlds.md: no fluids (the package does not
read them, so no `underwater` sites), no biomes, and name heuristics for solidity.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from cairn.worlds.anvil import ChunkSites
from cairn.worlds.classify import Classifier, classify

SECTION: Final = 32
CELLS: Final = SECTION**3


class HytaleError(Exception):
    """A region or chunk the parser could not read."""


def region_coords(path: Path) -> tuple[int, int]:
    """(rx, rz) from a name `<rx>.<rz>.region.bin`."""
    parts = path.name.split(".")
    if len(parts) != 4 or parts[2:] != ["region", "bin"]:
        raise ValueError(f"{path.name}: a Hytale region file is named <x>.<z>.region.bin")
    return int(parts[0]), int(parts[1])


def _parser(path: Path) -> Any:
    from hytale_region_parser import RegionFileParser

    parser = RegionFileParser(path)
    if not parser.open():
        raise HytaleError(f"{path}: not a readable Hytale region file")
    return parser


def chunk_slots(path: Path) -> list[int]:
    """The blob indexes that hold a chunk."""
    parser = _parser(path)
    try:
        return list(parser.get_chunk_indexes())
    finally:
        parser.close()


def decode_indices(raw: bytes, palette_type: int) -> npt.NDArray[np.uint16]:
    """Per-block palette ids of a section (HalfByte: low nibble first; Short: big-endian). O(cells)."""
    if palette_type == 1:
        b = np.frombuffer(raw, dtype=np.uint8, count=min(len(raw), CELLS // 2))
        out = np.empty(b.shape[0] * 2, dtype=np.uint16)
        out[0::2] = b & 0x0F
        out[1::2] = b >> 4
    elif palette_type == 2:
        out = np.frombuffer(raw, dtype=np.uint8, count=min(len(raw), CELLS)).astype(np.uint16)
    elif palette_type == 3:
        out = np.frombuffer(raw, dtype=">u2", count=min(len(raw) // 2, CELLS)).astype(np.uint16)
    else:
        raise HytaleError(f"palette type {palette_type} is not supported")
    if out.shape[0] < CELLS:
        raise HytaleError(f"section holds {out.shape[0]} block indices, expected {CELLS}")
    return out


def decode_chunk(chunk: Any, classifier: Classifier) -> ChunkSites | None:
    """The sites of one parsed Hytale chunk (32×32 columns), or None if it has no blocks. O(cells)."""
    layers: dict[int, npt.NDArray[np.uint8]] = {}
    for sec in chunk.sections:
        if sec.palette_type == 0 or not sec.block_palette:
            continue
        lut = np.zeros(1 << 16, dtype=np.uint8)  # ids missing from the palette read as AIR
        for entry in sec.block_palette:
            lut[entry.internal_id] = classifier(entry.name)
        if sec.block_indices is None:
            continue
        ids = decode_indices(sec.block_indices, sec.palette_type)
        layers[sec.section_y] = lut[ids].reshape(SECTION, SECTION, SECTION)
    if not layers:
        return None
    hi = max(layers)
    cells = np.zeros(((hi + 1) * SECTION, SECTION, SECTION), dtype=np.uint8)
    for sy, arr in layers.items():
        cells[sy * SECTION : (sy + 1) * SECTION] = arr
    ys, zs, xs, kind = classify(cells)
    return ChunkSites(
        (xs + chunk.chunk_x * SECTION).astype(np.int32),
        ys.astype(np.int16),
        (zs + chunk.chunk_z * SECTION).astype(np.int32),
        kind,
        np.full(ys.shape[0], 0xFFFF, dtype=np.uint16),
    )


def iter_region(path: Path, slots: Sequence[int] | None = None) -> Iterator[tuple[int, Any, str | None]]:
    """(slot, parsed chunk or None, error or None) for each chunk of a region file in `slots`."""
    parser = _parser(path)
    try:
        for slot in slots if slots is not None else parser.get_chunk_indexes():
            try:
                # The parser prints a warning on a bad BSON document; keep the terminal clean.
                with contextlib.redirect_stdout(io.StringIO()):
                    chunk = parser.read_chunk(slot)
            except Exception as e:  # the parser raises several types on damaged input
                yield slot, None, f"chunk {slot}: {e}"
                continue
            if chunk is None or not chunk.raw_components:
                yield slot, None, f"chunk {slot}: unreadable (bad zstd or BSON)"
            else:
                yield slot, chunk, None
    finally:
        parser.close()
