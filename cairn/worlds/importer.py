"""`cairn world import`: scan a world save once, offline, into a site pack.

Region files are split into parts of at most `PART_SLOTS` chunks; each part is decoded in a worker
process and its sites saved to `<work dir>/<region>.<part>.npz` (temp file, then rename). A rerun with
`--resume` keeps the parts already done, provided the settings and the region file are unchanged.
The parts are then merged: biome names become tags (the most common first, up to the 32-tag limit),
and the SiteSet is written as a pack.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import numpy as np

from cairn.core.errors import CairnError, ValidationError
from cairn.core.sites import MAX_TAGS, SiteSet
from cairn.worlds import anvil, hytale
from cairn.worlds.classify import KIND_TAGS, Classifier
from cairn.worlds.pack import write_pack

if TYPE_CHECKING:
    from cairn.worlds import sources

IMPORTER_VERSION: Final = 2  # 2: Hytale read as the game writes it (nibble order, fluids, 16-bit ids)
PART_SLOTS: Final = 256
REGION_FORMATS: Final = ("anvil", "hytale")
FORMATS: Final = ("auto", *REGION_FORMATS, "ndjson", "csv", "heightmap", "pack")
NO_BIOME: Final = 0xFFFF


class ImportFailed(CairnError):
    """The source could not be imported (not found, unknown format, nothing readable)."""

    code, status = "import_failed", 422


class Task(NamedTuple):
    fmt: str
    path: str
    part: int
    slots: tuple[int, ...]
    out: str
    deny: tuple[str, ...]


class Stats(NamedTuple):
    chunks: int
    skipped: int
    errors: list[str]


# ---- finding the source -----------------------------------------------------------------------------


def detect(path: Path) -> str:
    """The source format of `path`, by its name or the files it holds."""
    if path.is_dir():
        if region_files(path, "anvil"):
            return "anvil"
        if region_files(path, "hytale"):
            return "hytale"
        raise ImportFailed(f"{path}: no Anvil (r.X.Z.mca) or Hytale (X.Z.region.bin) region files found", field="path")
    name = path.name.lower()
    for suffixes, fmt in (
        ((".mca",), "anvil"),
        ((".region.bin",), "hytale"),
        ((".ndjson", ".jsonl"), "ndjson"),
        ((".csv",), "csv"),
        ((".png", ".pgm", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg"), "heightmap"),
        ((".pack",), "pack"),
    ):
        if name.endswith(suffixes):
            return fmt
    raise ImportFailed(f"{path}: cannot tell the format from the name; pass --format", field="path")


def region_files(path: Path, fmt: str) -> list[Path]:
    """The region files of a world folder (its `region/` folder first), or the file itself."""
    if path.is_file():
        return [path]
    pattern = "r.*.*.mca" if fmt == "anvil" else "*.*.region.bin"
    for folder in (path / "region", path / "chunks", path):
        found = sorted(p for p in folder.glob(pattern) if p.is_file()) if folder.is_dir() else []
        if found:
            return found
    return []


def _slots(fmt: str, path: Path) -> list[int]:
    try:
        if fmt == "anvil":
            with path.open("rb") as f:
                return anvil.chunk_slots(f.read(anvil.SECTOR))
        return hytale.chunk_slots(path)
    except (OSError, hytale.HytaleError):
        return []


def plan(fmt: str, files: Sequence[Path], work: Path, deny: Sequence[str]) -> list[Task]:
    """One task per part of each region file."""
    tasks = []
    for path in files:
        slots = _slots(fmt, path)
        for part, start in enumerate(range(0, len(slots), PART_SLOTS)):
            chunk = tuple(slots[start : start + PART_SLOTS])
            out = work / f"{path.name}.{part}.npz"
            tasks.append(Task(fmt, str(path), part, chunk, str(out), tuple(deny)))
    return tasks


# ---- one part, in a worker -------------------------------------------------------------------------------

_classifiers: dict[tuple[str, tuple[str, ...]], Classifier] = {}


def _classifier(fmt: str, deny: tuple[str, ...]) -> Classifier:
    key = (fmt, deny)
    c = _classifiers.get(key)
    if c is None:
        c = _classifiers[key] = Classifier(deny, "minecraft" if fmt == "anvil" else "hytale")
    return c


def run_task(task: Task) -> tuple[int, int, list[str]]:
    """Decode one part and save its sites; returns (chunks, not-generated chunks, errors)."""
    path = Path(task.path)
    classifier = _classifier(task.fmt, task.deny)
    biomes = anvil.BiomeNames()
    parts: list[anvil.ChunkSites] = []
    skipped, errors = 0, []
    if task.fmt == "anvil":
        for slot, raw, err in anvil.iter_region(path, task.slots):
            if err is not None or raw is None:
                errors.append(f"{path.name} chunk {slot}: {err or 'missing'}")
                continue
            try:
                got = anvil.decode_chunk(anvil.parse_chunk(raw), classifier, biomes)
            except (anvil.ChunkError, KeyError, TypeError, ValueError) as e:
                errors.append(f"{path.name} chunk {slot}: {e}")
                continue
            if got is None:
                skipped += 1
            else:
                parts.append(got)
    else:
        try:
            for slot, cx, cz, doc, err in hytale.iter_region(path, task.slots):
                if err is not None or doc is None:
                    errors.append(f"{path.name} {err or f'chunk {slot}: missing'}")
                    continue
                try:
                    got = hytale.decode_chunk(doc, cx, cz, classifier)
                except (hytale.HytaleError, ValueError, TypeError, AttributeError) as e:
                    errors.append(f"{path.name} chunk {slot}: {e}")
                    continue
                if got is None:
                    skipped += 1
                else:
                    parts.append(got)
        except (hytale.HytaleError, OSError) as e:
            errors.append(str(e))
    cols = [np.concatenate([getattr(p, f) for p in parts]) if parts else np.zeros(0, dt) for f, dt in _FIELDS]
    st = path.stat()
    out = Path(task.out)
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        arrays: dict[str, Any] = dict(zip((name for name, _ in _FIELDS), cols, strict=True))
        np.savez(
            f,
            **arrays,
            biome_names=np.array(json.dumps(biomes.names)),
            stats=np.array(json.dumps({"chunks": len(task.slots), "skipped": skipped, "errors": errors})),
            source=np.array([st.st_size, st.st_mtime_ns], dtype=np.int64),
        )
    os.replace(tmp, out)
    return len(task.slots), skipped, errors


_FIELDS: Final = (("x", np.int32), ("y", np.int16), ("z", np.int32), ("kind", np.uint8), ("biome", np.uint16))


def _part_done(task: Task) -> bool:
    """Whether a finished part for `task` exists and matches the region file as it is now."""
    out = Path(task.out)
    if not out.is_file():
        return False
    try:
        with np.load(out) as z:
            size, mtime = (int(v) for v in z["source"])
        st = Path(task.path).stat()
    except (OSError, ValueError, KeyError):
        return False
    return size == st.st_size and mtime == st.st_mtime_ns


# ---- the whole import -------------------------------------------------------------------------------------


def _prepare_work(work: Path, settings: dict[str, Any], resume: bool) -> None:
    manifest = work / "settings.json"
    same = False
    if resume and manifest.is_file():
        try:
            same = json.loads(manifest.read_text()) == settings
        except ValueError:
            same = False
    if not same and work.exists():
        for p in work.glob("*.npz"):
            p.unlink()
    work.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps(settings, sort_keys=True))


def run_tasks(tasks: Sequence[Task], workers: int, show_progress: bool) -> Stats:
    """Run the tasks, in `workers` processes (1: in this process), with a rich progress bar."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    total = sum(len(t.slots) for t in tasks)
    chunks, skipped, errors = 0, 0, []
    columns = (
        TextColumn("[bold]importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunks"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not show_progress, transient=False) as bar:
        job = bar.add_task("import", total=total)

        def done(result: tuple[int, int, list[str]]) -> None:
            nonlocal chunks, skipped
            chunks += result[0]
            skipped += result[1]
            errors.extend(result[2])
            bar.advance(job, result[0])

        if workers <= 1 or len(tasks) <= 1:
            for t in tasks:
                done(run_task(t))
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                pending: set[Future[tuple[int, int, list[str]]]] = {pool.submit(run_task, t) for t in tasks}
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        done(fut.result())
    return Stats(chunks, skipped, errors)


def merge(parts: Iterable[Path], extra_tags: int = 0) -> tuple[SiteSet, dict[str, Any]]:
    """Merge part files into one SiteSet; biomes become tags, most common first. O(n log n)."""
    xs, ys, zs, kinds, biomes = [], [], [], [], []
    names: list[str] = []
    ids: dict[str, int] = {}
    counts: Counter[str] = Counter()
    chunks = skipped = 0
    errors: list[str] = []
    for p in parts:
        with np.load(p) as z:
            local = json.loads(str(z["biome_names"]))
            stats = json.loads(str(z["stats"]))
            b = z["biome"]
            for n in local:
                if n not in ids:
                    ids[n] = len(names)
                    names.append(n)
            table = np.array([ids[n] for n in local] + [NO_BIOME], dtype=np.int64)
            gb = table[np.where(b == NO_BIOME, len(local), b).astype(np.int64)]
            xs.append(z["x"])
            ys.append(z["y"])
            zs.append(z["z"])
            kinds.append(z["kind"])
            biomes.append(gb)
        chunks += stats["chunks"]
        skipped += stats["skipped"]
        errors += stats["errors"]
    gbiome = np.concatenate(biomes) if biomes else np.zeros(0, np.int64)
    if gbiome.size:
        valid = gbiome[gbiome != NO_BIOME]
        for i, c in zip(*np.unique(valid, return_counts=True), strict=True):
            counts[names[int(i)]] += int(c)
    room = MAX_TAGS - len(KIND_TAGS) - extra_tags
    ranked = sorted(counts, key=lambda n: (-counts[n], n))
    kept, dropped = ranked[:room], ranked[room:]
    tag_names = list(KIND_TAGS) + [n for n in kept if n not in KIND_TAGS]
    bit = np.zeros(len(names) + 1, dtype=np.uint32)
    for n in kept:
        if n in KIND_TAGS:
            continue
        bit[names.index(n)] = np.uint32(1) << np.uint32(tag_names.index(n))
    kind = np.concatenate(kinds).astype(np.uint32) if kinds else np.zeros(0, np.uint32)
    gidx = np.where(gbiome == NO_BIOME, len(names), gbiome)
    tags = kind | bit[gidx]
    xyz = np.empty((kind.shape[0], 3), dtype=np.int64)
    if kind.shape[0]:
        xyz[:, 0] = np.concatenate(xs)
        xyz[:, 1] = np.concatenate(ys)
        xyz[:, 2] = np.concatenate(zs)
    sites = SiteSet.from_arrays(xyz, tags, tag_names)
    info = {
        "chunks": chunks,
        "chunks_not_generated": skipped,
        "chunk_errors": len(errors),
        "errors_sample": errors[:20],
        "biomes_dropped": dropped,
    }
    return sites, info


def import_regions(
    src: Path,
    fmt: str,
    *,
    work: Path,
    workers: int = 1,
    deny: Sequence[str] = (),
    resume: bool = False,
    progress: bool = False,
) -> tuple[SiteSet, dict[str, Any]]:
    """Import every region file under `src` (or the one file `src`) into a SiteSet."""
    files = region_files(src, fmt)
    if not files:
        raise ImportFailed(f"{src}: no {fmt} region files found", field="path")
    settings = {"format": fmt, "deny": sorted(deny), "importer": IMPORTER_VERSION, "source": str(src.resolve())}
    _prepare_work(work, settings, resume)
    tasks = plan(fmt, files, work, deny)
    todo = [t for t in tasks if not (resume and _part_done(t))]
    started = time.perf_counter()
    run_tasks(todo, workers, progress)
    elapsed = time.perf_counter() - started
    sites, info = merge(Path(t.out) for t in tasks)
    info.update({
        "format": fmt,
        "regions": len(files),
        "parts": len(tasks),
        "parts_resumed": len(tasks) - len(todo),
        "seconds": round(elapsed, 3),
    })  # fmt: skip
    if info["chunks"] and info["chunk_errors"] == info["chunks"]:
        raise ImportFailed(f"{src}: no chunk could be read; first error: {info['errors_sample'][0]}", field="path")
    return sites, info


def import_any(args: argparse.Namespace) -> tuple[SiteSet, dict[str, Any]]:
    """Import `args.path` in the format asked for (or detected)."""
    from cairn.worlds import sources
    from cairn.worlds.pack import load_pack, validate

    src = Path(args.path)
    if not src.exists():
        raise ImportFailed(f"{src}: no such file or folder", field="path")
    fmt = getattr(args, "format", "auto") or "auto"
    if fmt == "auto":
        fmt = detect(src)
    deny = [d for item in (getattr(args, "deny", None) or []) for d in item.split(",") if d.strip()]
    if fmt in REGION_FORMATS:
        out = Path(args.out or f"{args.world}.pack")
        work = Path(getattr(args, "work_dir", None) or f"{out}.work")
        workers = int(getattr(args, "workers", 0) or 0) or max(1, os.cpu_count() or 1)
        progress = not getattr(args, "quiet", False) and sys.stderr.isatty()
        sites, info = import_regions(src, fmt, work=work, workers=workers, deny=deny,
                                     resume=bool(getattr(args, "resume", False)), progress=progress)  # fmt: skip
        info["work_dir"] = str(work)
        return sites, info
    if fmt == "ndjson":
        return sources.read_ndjson(src.read_bytes()), {"format": fmt}
    if fmt == "csv":
        return sources.read_csv(src.read_bytes()), {"format": fmt}
    if fmt == "heightmap":
        return sources.read_heightmap(src, _heightmap_options(args)), {"format": fmt}
    if fmt == "pack":
        sites = load_pack(src)
        validate(sites, str(src))
        return sites, {"format": fmt}
    raise ValidationError(f"unknown source format {fmt!r}; one of {', '.join(FORMATS)}", field="format")


_COORD = 1 << 31  # heightmap options beyond ±2^31 are mistakes, and would overflow the int64 columns


def _heightmap_options(args: argparse.Namespace) -> sources.HeightmapOptions:
    """The heightmap flags, checked: a bad one is a ValidationError naming it, not a traceback."""
    from cairn.worlds import sources

    raw = getattr(args, "origin", None) or "0,0"
    try:
        origin = tuple(int(v) for v in raw.split(","))
    except ValueError:
        origin = ()
    if len(origin) != 2 or any(abs(v) >= _COORD for v in origin):
        raise ValidationError(f"--origin must be two integers x,z (got {raw!r})", field="origin")
    values = {"y_min": getattr(args, "y_min", None), "y_max": getattr(args, "y_max", None),
              "sea_level": getattr(args, "sea_level", None)}  # fmt: skip
    for name, v in values.items():
        if v is not None and abs(v) >= _COORD:
            raise ValidationError(f"--{name.replace('_', '-')} is out of range ({v})", field=name)
    step = getattr(args, "step", None)
    if step is not None and not 1 <= step < _COORD:
        raise ValidationError(f"--step must be at least 1 (got {step})", field="step")
    return sources.HeightmapOptions(
        origin=(origin[0], origin[1]),
        y_min=0 if values["y_min"] is None else values["y_min"],
        y_max=255 if values["y_max"] is None else values["y_max"],
        sea_level=values["sea_level"],
        step=step or 1,
    )


def main(args: argparse.Namespace) -> int:
    """The `cairn world import` command."""
    from rich.console import Console

    console = Console(stderr=True)
    out = Path(args.out or f"{args.world}.pack")
    from cairn.worlds.sources import InvalidSites

    sites, info = import_any(args)
    if len(sites) == 0:
        raise InvalidSites(f"{args.path} holds no sites; no pack was written")
    meta = {"world": args.world, "source": str(Path(args.path).resolve()), "import": info}
    work = info.pop("work_dir", None)
    write_pack(sites, out, meta)
    if work is not None and not getattr(args, "keep_work", False):
        shutil.rmtree(work, ignore_errors=True)  # only once the pack is safely written
    counts = {name: int(np.count_nonzero(sites.tags & np.uint32(1 << i))) for i, name in enumerate(sites.tag_names)}
    console.print(
        f"[green]ok[/green] {out}: {len(sites):,} sites in {len(sites.chunk_keys):,} chunks for world {args.world!r}"
    )
    if "chunks" in info:
        rate = info["chunks"] / info["seconds"] if info["seconds"] else 0.0
        console.print(
            f"  {info['chunks']:,} chunks ({info['chunks_not_generated']:,} not fully generated, "
            f"{info['chunk_errors']:,} unreadable) in {info['seconds']:.2f} s, {rate:,.0f} chunks/s"
            + (f", {info['parts_resumed']} parts resumed" if info["parts_resumed"] else "")
        )
        for err in info["errors_sample"][:5]:
            console.print(f"  [yellow]skipped[/yellow] {err}")
        if info["biomes_dropped"]:
            console.print(
                f"  [yellow]biomes without a tag (32-tag limit)[/yellow]: {', '.join(info['biomes_dropped'])}"
            )
    console.print("  " + ", ".join(f"{k}: {v:,}" for k, v in counts.items()))
    return 0
