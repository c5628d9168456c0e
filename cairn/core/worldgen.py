"""The built-in procedural world: deterministic terrain and the sites derived from it.

The terrain is a pure function of (seed, x, y, z) built from hash-based value noise, so
`Terrain.block` answers for any cell and `generate` derives sites that obey the SPEC site rule.

- Columns: a surface height from layered value noise, water up to `SEA_LEVEL`, bedrock at `MIN_Y`.
- Caves: `CAVE_LAYERS` separate layers of winding tunnels. Each layer has a floor and a height
  per column (ridged noise, so tunnels follow the noise's zero lines); a cave's air never rises
  above `height - CAVE_ROOF`, so caves never open to the sky or the sea.
- Sites: one jittered candidate column per 4×4 cell (scaled by `density`). Each candidate gives a
  `surface` site (land) or an `underwater` site (sea floor), plus a `cave` site on the floor of
  each cave layer open at that column. Every site carries exactly one biome tag.

Only integer hashing and IEEE +, -, *, / and floor are used, so the output is bit-identical
on every platform.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from cairn.core.errors import ValidationError
from cairn.core.sites import SiteSet, build_chunk_index, pack_xz

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]

# Block codes; every code >= STONE is solid.
AIR: Final = 0
WATER: Final = 1
STONE: Final = 2
DIRT: Final = 3
GRASS: Final = 4
SAND: Final = 5
SNOW: Final = 6
BEDROCK: Final = 7
BLOCK_NAMES: Final = ("air", "water", "stone", "dirt", "grass", "sand", "snow", "bedrock")

MIN_Y: Final = -64  # the bedrock layer; below it is void (AIR)
SEA_LEVEL: Final = 62  # water fills every non-solid cell up to this y
MAX_HEIGHT: Final = 255  # no solid block above this y
CAVE_ROOF: Final = 6  # cave air stays at least this far below the surface block
CAVE_BASES: Final = (-40, -8, 24)  # mean floor y of each cave layer; spaced so layers never touch
CAVE_LAYERS: Final = len(CAVE_BASES)

DEFAULT_TAGS: Final[tuple[str, ...]] = (
    "surface",
    "cave",
    "underwater",
    "plains",
    "forest",
    "desert",
    "snowy",
    "mountains",
    "swamp",
    "beach",
    "ocean",
)
KIND_TAGS: Final = DEFAULT_TAGS[:3]
BIOMES: Final = DEFAULT_TAGS[3:]
PLAINS, FOREST, DESERT, SNOWY, MOUNTAINS, SWAMP, BEACH, OCEAN = range(len(BIOMES))
_SURFACE_BIT: Final = 1 << 0
_CAVE_BIT: Final = 1 << 1
_UNDERWATER_BIT: Final = 1 << 2
_BIOME_SHIFT: Final = 3

# Bump when the sites `generate` makes for the same arguments change: cached packs of the old
# output (`<data_dir>/worlds/*.procedural-*.pack`) are then regenerated.
VERSION: Final = 1
DEFAULT_SEED: Final = 1
DEFAULT_SIZE: Final = 8192
#: Candidate columns per 16 columns (one per 4×4 cell at 1.0), at most 16 (every column).
DEFAULT_DENSITY: Final = 0.5
MAX_DENSITY: Final = 16.0
MAX_SIZE: Final = 32768  # a bigger procedural world would take minutes to generate at start
MAX_CANDIDATES: Final = 1 << 26  # size² · density / 16: about 100M sites, 1.4 GB

_BAND: Final = 128  # columns of x generated at a time: a multiple of the 16-wide chunk


def is_solid(codes: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """True where a block code is solid. O(n)."""
    out: npt.NDArray[np.bool_] = np.asarray(codes) >= STONE
    return out


# ---- noise --------------------------------------------------------------------------------------


def _salt(seed: int, name: str) -> int:
    """A 32-bit salt per (seed, noise field), independent of Python's hash randomisation."""
    digest = hashlib.blake2b(f"cairn:{seed}:{name}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def _mix(h: U32) -> U32:
    """lowbias32 finaliser: a full-avalanche 32-bit integer hash, in place."""
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x7FEB352D)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x846CA68B)
    h ^= h >> np.uint32(16)
    return h


def _hash2(ix: I64, iz: I64, salt: int) -> U32:
    """A 32-bit hash of integer lattice points (ix, iz) under `salt`."""
    h = _mix(ix.astype(np.uint32) ^ np.uint32(salt))
    h += iz.astype(np.uint32)
    return _mix(h)


def _lattice(ix: I64, iz: I64, salt: int) -> F64:
    """The value in [-1, 1) at lattice points (ix, iz)."""
    h = _hash2(ix, iz, salt) >> np.uint32(8)
    out: F64 = h.astype(np.float64) * (2.0 / (1 << 24)) - 1.0
    return out


def _noise(x: I64, z: I64, shift: int, salt: int) -> F64:
    """Smooth value noise in [-1, 1) at block columns (x, z), lattice spacing 2**shift."""
    ix, iz = x >> shift, z >> shift
    scale = 1.0 / (1 << shift)
    fx = (x & ((1 << shift) - 1)).astype(np.float64) * scale
    fz = (z & ((1 << shift) - 1)).astype(np.float64) * scale
    fx = fx * fx * (3.0 - 2.0 * fx)
    fz = fz * fz * (3.0 - 2.0 * fz)
    n = ix.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    ix0, iz0 = int(ix.min()), int(iz.min())
    gx, gz = int(ix.max()) - ix0 + 2, int(iz.max()) - iz0 + 2
    if gx * gz <= 2 * n + 4096:
        # Dense points: hash each lattice point once, then gather the four corners.
        grid = _lattice(
            np.repeat(np.arange(ix0, ix0 + gx, dtype=np.int64), gz),
            np.tile(np.arange(iz0, iz0 + gz, dtype=np.int64), gx),
            salt,
        )
        i = (ix - ix0) * gz + (iz - iz0)
        v00, v01 = grid[i], grid[i + 1]
        v10, v11 = grid[i + gz], grid[i + gz + 1]
    else:
        # Scattered points: hash the corners directly (same values as the gather path).
        v00, v01 = _lattice(ix, iz, salt), _lattice(ix, iz + 1, salt)
        v10, v11 = _lattice(ix + 1, iz, salt), _lattice(ix + 1, iz + 1, salt)
    a = v00 + (v10 - v00) * fx
    b = v01 + (v11 - v01) * fx
    out: F64 = a + (b - a) * fz
    return out


# ---- terrain ------------------------------------------------------------------------------------


class Columns(NamedTuple):
    """Everything about a batch of block columns that the terrain needs (arrays of shape (n,) or (L, n))."""

    height: I64  # y of the top solid block
    biome: U8  # index into BIOMES
    cave_floor: I64  # (CAVE_LAYERS, n): y of each layer's floor block
    cave_top: I64  # (CAVE_LAYERS, n): y of each layer's highest air cell (< floor: closed)


class Terrain:
    """The deterministic world model that sites are derived from; every method is vectorised.

    The world spans `size`×`size` columns with x, z in [-size/2, size/2); the noise is defined
    beyond that, but `generate` samples only inside it.
    """

    def __init__(self, seed: int, size: int) -> None:
        self.seed = int(seed)
        self.size = int(size)
        s = self.seed
        self._continent = (_salt(s, "continent0"), _salt(s, "continent1"), _salt(s, "continent2"))
        self._hills = (_salt(s, "hills0"), _salt(s, "hills1"))
        self._ridge = _salt(s, "ridge")
        self._temp = (_salt(s, "temp0"), _salt(s, "temp1"))
        self._humid = (_salt(s, "humid0"), _salt(s, "humid1"))
        self._cave_floor = tuple(_salt(s, f"cave_floor{k}") for k in range(CAVE_LAYERS))
        self._cave_tube = tuple(_salt(s, f"cave_tube{k}") for k in range(CAVE_LAYERS))

    def columns(self, x: npt.ArrayLike, z: npt.ArrayLike) -> Columns:
        """Height, biome and cave layers of 1-d arrays of columns. O(n)."""
        xa = np.asarray(x, dtype=np.int64).ravel()
        za = np.asarray(z, dtype=np.int64).ravel()
        c0, c1, c2 = self._continent
        continent = 0.55 * _noise(xa, za, 9, c0) + 0.30 * _noise(xa, za, 8, c1) + 0.15 * _noise(xa, za, 7, c2)
        hills = 0.6 * _noise(xa, za, 5, self._hills[0]) + 0.4 * _noise(xa, za, 4, self._hills[1])
        ridge = np.maximum(_noise(xa, za, 8, self._ridge) - 0.3, 0.0) * (1.0 / 0.7)
        land = np.clip(continent * 4.0 + 0.5, 0.0, 1.0)  # mountains rise only inland
        hf = 66.0 + 32.0 * continent + 6.0 * hills + 130.0 * ridge * ridge * land
        height = np.clip(np.floor(hf), MIN_Y + 8, MAX_HEIGHT).astype(np.int64)

        temp = 0.8 * _noise(xa, za, 9, self._temp[0]) + 0.2 * _noise(xa, za, 6, self._temp[1])
        humid = 0.8 * _noise(xa, za, 9, self._humid[0]) + 0.2 * _noise(xa, za, 6, self._humid[1])
        biome = np.select(
            [
                height < SEA_LEVEL,
                (height <= SEA_LEVEL + 2) & (humid > 0.3) & (temp > -0.2),
                height <= SEA_LEVEL + 2,
                height >= 120,
                temp < -0.35,
                (temp > 0.3) & (humid < 0.0),
                (humid > 0.35) & (height < SEA_LEVEL + 8),
                humid > 0.0,
            ],
            [OCEAN, SWAMP, BEACH, MOUNTAINS, SNOWY, DESERT, SWAMP, FOREST],
            default=PLAINS,
        ).astype(np.uint8)

        floors = np.empty((CAVE_LAYERS, xa.shape[0]), dtype=np.int64)
        tops = np.empty((CAVE_LAYERS, xa.shape[0]), dtype=np.int64)
        roof = height - CAVE_ROOF
        for k, base in enumerate(CAVE_BASES):
            floors[k] = base + np.floor(6.0 * _noise(xa, za, 6, self._cave_floor[k])).astype(np.int64)
            # Ridged noise: open only near the zero line of the tube field, so tunnels wind.
            openness = 1.0 - np.abs(_noise(xa, za, 5, self._cave_tube[k])) * (1.0 / 0.12)
            thick = np.floor(np.maximum(openness, 0.0) * 8.0).astype(np.int64)
            tops[k] = np.minimum(floors[k] + thick, roof)
        return Columns(height, biome, floors, tops)

    def height(self, x: npt.ArrayLike, z: npt.ArrayLike) -> I64:
        """The y of the top solid block of each column (x, z); broadcasts. O(n)."""
        xa, za = np.broadcast_arrays(np.asarray(x, dtype=np.int64), np.asarray(z, dtype=np.int64))
        out: I64 = self.columns(xa, za).height.reshape(xa.shape)
        return out

    def biome(self, x: npt.ArrayLike, z: npt.ArrayLike) -> U8:
        """The biome index (into BIOMES) of each column (x, z); broadcasts. O(n)."""
        xa, za = np.broadcast_arrays(np.asarray(x, dtype=np.int64), np.asarray(z, dtype=np.int64))
        out: U8 = self.columns(xa, za).biome.reshape(xa.shape)
        return out

    def block(self, x: npt.ArrayLike, y: npt.ArrayLike, z: npt.ArrayLike) -> U8:
        """The block code at each cell (x, y, z); broadcasts. O(n)."""
        xa, ya, za = np.broadcast_arrays(
            np.asarray(x, dtype=np.int64), np.asarray(y, dtype=np.int64), np.asarray(z, dtype=np.int64)
        )
        shape = xa.shape
        col = self.columns(xa.ravel(), za.ravel())
        yy = ya.ravel()
        h = col.height
        depth = h - yy  # 0 at the surface block
        top = np.select(
            [col.biome == SNOWY, np.isin(col.biome, [DESERT, BEACH, OCEAN]), col.biome == MOUNTAINS],
            [SNOW, SAND, STONE],
            default=GRASS,
        )
        under = np.where(top == GRASS, DIRT, np.where(top == STONE, STONE, SAND))
        out = np.select(
            [yy < MIN_Y, yy == MIN_Y, depth < 0, depth == 0, depth <= 3],
            [
                AIR,
                BEDROCK,
                np.where(yy <= SEA_LEVEL, WATER, AIR),
                top,
                under,
            ],
            default=STONE,
        ).astype(np.uint8)
        in_cave = np.zeros(yy.shape, dtype=np.bool_)
        for k in range(CAVE_LAYERS):
            in_cave |= (yy > col.cave_floor[k]) & (yy <= col.cave_top[k])
        out[in_cave & (yy > MIN_Y)] = AIR
        return out.reshape(shape)


# ---- sites --------------------------------------------------------------------------------------


class _Growable:
    """Site columns filled band by band; growth and the final trim use realloc, not copies."""

    def __init__(self, capacity: int) -> None:
        self.n = 0
        self.xz = np.empty(capacity, dtype=np.uint8)
        self.y = np.empty(capacity, dtype=np.int16)
        self.tags = np.empty(capacity, dtype=np.uint32)

    def _resize(self, capacity: int) -> None:
        for a in (self.xz, self.y, self.tags):
            a.resize(capacity, refcheck=False)

    def append(self, x: I64, y: I64, z: I64, tags: npt.NDArray[Any]) -> None:
        m = x.shape[0]
        if self.n + m > self.xz.shape[0]:
            self._resize(max(self.n + m, self.xz.shape[0] * 3 // 2))
        s = slice(self.n, self.n + m)
        self.xz[s], self.y[s], self.tags[s] = pack_xz(x, z), y, tags
        self.n += m

    def trim(self) -> None:
        self._resize(self.n)


def generate(seed: int = DEFAULT_SEED, size: int = DEFAULT_SIZE, density: float = DEFAULT_DENSITY) -> SiteSet:
    """The sites of the procedural world (seed, size), sampled at `density` candidates per 16 columns.

    Deterministic: the same arguments give bit-identical arrays. O(size² · density / 16).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 16 or size % 16 or size > MAX_SIZE:
        raise ValidationError(f"size must be a multiple of 16 from 16 to {MAX_SIZE}, got {size!r}", field="size")
    if not 0.0 < float(density) <= MAX_DENSITY:
        raise ValidationError(f"density must be in (0, {MAX_DENSITY:g}], got {density!r}", field="density")
    if size * size * float(density) / 16.0 > MAX_CANDIDATES:
        raise ValidationError(
            f"size {size} at density {density} makes more than {MAX_CANDIDATES:,} candidate columns; "
            "lower the size or the density",
            field="density",
        )
    terrain = Terrain(seed, size)
    cell = 4 if density <= 1.0 else 2 if density <= 4.0 else 1
    keep_below = round(float(density) * cell * cell / 16.0 * 65536)  # out of 65536
    jitter_salt = _salt(terrain.seed, "jitter")
    half = size // 2  # a multiple of 8, so cells of 1, 2 or 4 tile the world exactly
    cz_first = -half >> 4
    chunks_z = ((half - 1) >> 4) - cz_first + 1
    cells_z = np.arange(-half // cell, half // cell, dtype=np.int64)

    # Each candidate yields at most 1 + CAVE_LAYERS sites; pages never written cost no memory.
    candidates = (size // cell) ** 2 * keep_below // 65536 + 1024
    out = _Growable(candidates * (1 + CAVE_LAYERS))
    key_parts: list[I64] = []
    start_parts: list[I64] = []
    # Bands start on chunk boundaries so that bands in x order give chunks in key order.
    for band_x in range((-half >> 4) << 4, half, _BAND):
        x_lo, x_hi = max(band_x, -half), min(band_x + _BAND, half)
        # Candidate columns: one per cell, jittered inside it, kept with probability density.
        cells_x = np.arange(x_lo // cell, x_hi // cell, dtype=np.int64)
        ci = np.repeat(cells_x, cells_z.shape[0])
        cj = np.tile(cells_z, cells_x.shape[0])
        h = _hash2(ci, cj, jitter_salt)
        x = ci * cell + (h & np.uint32(cell - 1)).astype(np.int64)
        z = cj * cell + ((h >> np.uint32(8)) & np.uint32(cell - 1)).astype(np.int64)
        if keep_below < 65536:
            keep = (h >> np.uint32(16)) < np.uint32(keep_below)
            x, z = x[keep], z[keep]
        del ci, cj, h
        m = x.shape[0]
        if m == 0:
            continue
        # Order columns by (chunk, x, z) with one SIMD sort of (key, row) packed in int64.
        key = ((x >> 4) - (band_x >> 4)) * chunks_z + ((z >> 4) - cz_first)
        key = (key << 8) | ((x & 15) << 4) | (z & 15)
        ibits = (m - 1).bit_length() or 1
        key = (key << ibits) | np.arange(m, dtype=np.int64)
        key.sort()
        order = key & ((1 << ibits) - 1)
        x, z = x[order], z[order]
        del key, order

        col = terrain.columns(x, z)
        hgt = col.height
        # Per column: one slot per cave layer (ascending y), then the surface/sea-floor slot.
        ys = np.empty((m, CAVE_LAYERS + 1), dtype=np.int64)
        valid = np.empty((m, CAVE_LAYERS + 1), dtype=np.bool_)
        kinds = np.empty((m, CAVE_LAYERS + 1), dtype=np.uint32)
        for k in range(CAVE_LAYERS):
            ys[:, k] = col.cave_floor[k] + 1
            # Two air cells (site plus headroom) above a solid floor, under a solid roof.
            valid[:, k] = col.cave_top[k] >= col.cave_floor[k] + 2
            kinds[:, k] = _CAVE_BIT
        ys[:, CAVE_LAYERS] = hgt + 1
        valid[:, CAVE_LAYERS] = True
        kinds[:, CAVE_LAYERS] = np.where(hgt >= SEA_LEVEL, _SURFACE_BIT, _UNDERWATER_BIT)
        tags = kinds | (np.uint32(1) << (col.biome.astype(np.uint32) + np.uint32(_BIOME_SHIFT)))[:, None]
        sx = np.repeat(x, CAVE_LAYERS + 1)[valid.ravel()]
        sz = np.repeat(z, CAVE_LAYERS + 1)[valid.ravel()]
        keys, starts = build_chunk_index(sx, sz)
        key_parts.append(keys)
        start_parts.append(starts[:-1] + out.n)
        out.append(sx, ys[valid], sz, tags[valid])
    out.trim()
    start_parts.append(np.array([out.n], dtype=np.int64))
    chunk_keys = np.concatenate(key_parts) if key_parts else np.zeros(0, dtype=np.int64)
    chunk_starts = np.concatenate(start_parts)
    return SiteSet.from_index_arrays(out.xz, out.y, out.tags, chunk_keys, chunk_starts, DEFAULT_TAGS)
