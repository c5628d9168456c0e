"""The `cairn` command line: serve, demo, bench, hunt, world, keys, config."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.markup import escape

from cairn import config as configmod
from cairn.core.errors import CairnError

console = Console(stderr=True, soft_wrap=True)  # no wrapping: messages stay whole for logs and grep


def _load_config(args: argparse.Namespace) -> configmod.Config:
    cfg = configmod.load(args.config)
    server = cfg.server
    changes: dict[str, Any] = {}
    for name in ("host", "port", "data_dir"):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    if changes:
        cfg.server = msgspec.structs.replace(server, **changes)
    return cfg


def _read_spec(path: str) -> Any:
    from cairn.core.spec import decode_spec

    data = Path(path).read_bytes()
    return decode_spec(data, "toml" if path.endswith(".toml") else "json")


# ---- commands -------------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    from cairn import malloc
    from cairn.bootstrap import make_runtime
    from cairn.net.server import serve

    malloc.limit_arenas()  # before any thread starts (docs/operations.md, Memory)
    cfg = _load_config(args)
    return serve(cfg, make_runtime, profile=args.profile)


def cmd_demo(args: argparse.Namespace) -> int:
    from cairn.bootstrap import make_runtime
    from cairn.net.server import run_demo

    cfg = _load_config(args)
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="cairn-demo-")
    cfg.server = msgspec.structs.replace(cfg.server, data_dir=data_dir)
    return run_demo(cfg, make_runtime, players=args.players, seconds=args.seconds, live=not args.plain)


def cmd_config_check(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.file)
    files = configmod.hunt_files(cfg)
    for path in files:
        configmod.load_hunt_file(cfg, path)
    extra = f" and {len(files)} hunt file(s) in {cfg.hunts_dir}" if files else ""
    console.print(f"[green]ok[/green] {escape(args.file)}{escape(extra)}")
    return 0


def cmd_hunt(args: argparse.Namespace) -> int:
    from cairn.core import placement
    from cairn.core.engine import Engine, compute_plan

    if args.action == "export":
        return _export_remote(args)
    cfg = _load_config(args)
    if args.action == "validate":
        spec = configmod.load_hunt_file(cfg, Path(args.file))
        what = f"hunt {spec.id!r}, {spec.treasures} treasures in {spec.world}"
        console.print(f"[green]ok[/green] {escape(args.file)}: {what}")
        return 0
    spec = _read_spec(args.file)
    if args.action == "create":
        return _create_remote(args, spec)
    if args.action == "verify":
        return _verify(cfg, spec)
    sites = world_sites(cfg, spec.world)
    eng = Engine(_secret(cfg), {spec.world: sites}, cfg.loot_tables(), boards=cfg.boards())
    plan = compute_plan(eng.plan_input(spec))
    eligible = len(placement.eligible(spec, sites))
    print(ascii_map(spec, plan.pos))
    print(f"{len(plan.pos)} treasures placed; {eligible:,} eligible sites")
    for n, (p, tier) in enumerate(zip(plan.pos, plan.tiers, strict=True), 1):
        print(f"  {spec.id}#{n}  {tier:<9} {list(p)}")
    return 0


def world_sites(cfg: configmod.Config, world: str) -> Any:
    """A world's sites as `cairn serve` on `server.data_dir` loads them: the pack last uploaded to it
    (`<data_dir>/worlds/<world>.pack`) first, else the config's pack or generator."""
    from cairn.app import build_world
    from cairn.core.errors import UnknownWorld
    from cairn.worlds.pack import load_pack, uploaded_pack_path

    data_dir = cfg.server.data_dir
    wc = cfg.worlds.get(world)
    if wc is not None:
        return build_world(world, wc, data_dir)
    uploaded = uploaded_pack_path(data_dir, world)
    if uploaded.is_file():
        return load_pack(uploaded)
    raise UnknownWorld(f"world {world!r} is not in the config and has no sites uploaded in {data_dir}", field="world")


def _secret(cfg: configmod.Config) -> bytes:
    """The placement/loot secret the server uses: the config's, else the Redis store's or the data dir's."""
    if cfg.server.secret or cfg.store.kind != "redis":
        return configmod.secret_of(cfg, Path(cfg.server.data_dir))
    from cairn.store.redis import SECRET_KEY

    value = _from_redis(cfg, lambda store: store.call(store.r.get, SECRET_KEY), "the secret")
    if not value:
        raise CairnError("Redis holds no placement secret yet: no node has started on it")
    return bytes(value)


def _from_redis(cfg: configmod.Config, read: Any, what: str) -> Any:
    """`await read(store)` against the configured Redis store."""
    import asyncio
    import time

    from cairn.store.redis import RedisStore

    async def run() -> Any:
        store = RedisStore(cfg.store.redis_url, cfg.store.redis_cluster, timeout=max(cfg.store.redis_timeout, 2.0))
        try:
            await store.wait_up(time.monotonic() + 5)
            return await read(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except CairnError as e:
        raise CairnError(f"could not read {what} from Redis: {e.message}") from None


def _stored_hunt(cfg: configmod.Config, hunt: str) -> Any:
    """The HuntCreated record of `hunt` from the configured store (a running server's too), or None."""
    from cairn.core import records

    if cfg.store.kind == "redis":
        from cairn.store.redis import hunt_keys

        entries = _from_redis(cfg, lambda store: store.range_after(hunt_keys(hunt)[1], b"0-0", 1), f"hunt {hunt!r}")
        first = records.decode(entries[0][1][b"r"]) if entries else None
        return first if isinstance(first, records.HuntCreated) else None
    from cairn.store.embedded import find_hunt_created

    return find_hunt_created(cfg.server.data_dir, hunt)


def _verify(cfg: configmod.Config, spec: Any) -> int:
    """Recompute placement and loot from the store's HuntCreated record and compare."""
    from cairn.core import placement
    from cairn.core.engine import PlanInput, compute_plan
    from cairn.core.loot import table_named
    from cairn.core.spec import HuntSpec

    where = "Redis" if cfg.store.kind == "redis" else cfg.server.data_dir
    if cfg.store.kind != "redis" and not (Path(cfg.server.data_dir) / "journal.db").is_file():
        console.print(f"[red]no journal in {escape(where)}[/red]: give the server's --data-dir (or its --config)")
        return 1
    rec = _stored_hunt(cfg, spec.id)
    if rec is None:
        console.print(f"[red]hunt {spec.id!r} is not in {escape(where)}[/red]")
        return 1
    stored = msgspec.json.decode(rec.spec, type=HuntSpec)
    secret = _secret(cfg)
    sites = world_sites(cfg, stored.world)
    # Placement is a function of the sites too: a world uploaded again since gives another placement.
    inp = PlanInput(stored, sites, list(rec.avoid), 0, placement.placement_key(secret, stored),
                    table_named(cfg.loot_tables(), stored.loot))  # fmt: skip
    plan = compute_plan(inp)
    ok = plan.pos == rec.pos and plan.tiers == rec.tiers and plan.loot == rec.loot
    if stored != spec:
        console.print("[yellow]note: the stored spec differs from the file; verified the stored one[/yellow]")
    console.print("[green]verified[/green]" if ok else "[red]MISMATCH[/red]", f"hunt {spec.id}: placement and loot")
    if not ok:
        _explain_mismatch(cfg, stored.world, rec.at)
    return 0 if ok else 1


def _explain_mismatch(cfg: configmod.Config, world: str, created_at: float) -> None:
    from cairn.worlds.pack import uploaded_pack_path

    pack = uploaded_pack_path(cfg.server.data_dir, world)
    if pack.is_file() and pack.stat().st_mtime > created_at:
        console.print(f"[yellow]note: sites were uploaded to world {escape(world)} after the hunt was created; "
                      "the hunt was placed on the earlier sites[/yellow]")  # fmt: skip


def _remote(args: argparse.Namespace, method: str, path: str, data: bytes | None = None) -> Any:
    """Open `path` on the server at `--url` with the admin key (`--key`, else $CAIRN_ADMIN_KEY); the
    response, to be closed by the caller. Raises urllib.error.HTTPError for a status not 2xx."""
    import urllib.request

    key = args.key or os.environ.get("CAIRN_ADMIN_KEY", "")
    headers = {"Authorization": f"Bearer {key}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(args.url.rstrip("/") + path, data=data, method=method, headers=headers)
    return urllib.request.urlopen(req, timeout=60)


def _create_remote(args: argparse.Namespace, spec: Any) -> int:
    import urllib.error

    try:
        with _remote(args, "POST", "/v1/hunts", msgspec.json.encode(spec)) as resp:
            body = msgspec.json.decode(resp.read())
    except urllib.error.HTTPError as e:
        console.print(f"[red]{e.code}[/red] {escape(e.read().decode(errors='replace'))}")
        return 1
    console.print(f"[green]created[/green] {escape(body['id'])} with {body['treasures_total']} treasures")
    return 0


def _export_remote(args: argparse.Namespace) -> int:
    """`cairn hunt export HUNT`: the hunt's claims and grants from a running server, to `--out` or stdout."""
    import shutil
    import urllib.error
    import urllib.parse

    hunt = urllib.parse.quote(args.file, safe="")
    try:
        with _remote(args, "GET", f"/v1/hunts/{hunt}/export?format={args.format}") as resp:
            if args.out:
                tmp = Path(args.out + ".part")
                with open(tmp, "wb") as f:
                    shutil.copyfileobj(resp, f)
                tmp.replace(args.out)  # a broken transfer leaves no half file under the name asked for
            else:
                shutil.copyfileobj(resp, sys.stdout.buffer)
                sys.stdout.buffer.flush()
    except urllib.error.HTTPError as e:
        console.print(f"[red]{e.code}[/red] {escape(e.read().decode(errors='replace'))}")
        return 1
    if args.out:
        console.print(f"[green]exported[/green] hunt {escape(args.file)} to {escape(args.out)}")
    return 0


def ascii_map(spec: Any, pos: list[tuple[int, int, int]], width: int = 64, height: int = 24) -> str:
    (x0, _, z0), (x1, _, z1) = spec.area.min, spec.area.max
    grid = [["·"] * width for _ in range(height)]
    for ex in spec.spawn.exclude:
        cx = int((ex.center[0] - x0) / max(1, x1 - x0) * (width - 1))
        cz = int((ex.center[2] - z0) / max(1, z1 - z0) * (height - 1))
        if 0 <= cx < width and 0 <= cz < height:
            grid[cz][cx] = "x"
    for n, (x, _, z) in enumerate(pos, 1):
        cx = int((x - x0) / max(1, x1 - x0) * (width - 1))
        cz = int((z - z0) / max(1, z1 - z0) * (height - 1))
        grid[cz][cx] = str(n % 10) if n < 10 else "*"
    top = f"north ↑   x {x0}..{x1}, z {z0}..{z1}"
    return "\n".join([top, *("".join(r) for r in grid)])


def cmd_keys(args: argparse.Namespace) -> int:
    """`cairn keys`: against a running server with `--url`; `create` without it adds to keys.json."""
    if args.url is None:
        if args.action != "create":
            console.print(f"[red]keys {args.action} needs --url (the running server's URL)[/red]")
            return 2
        from cairn.net.auth import Keys

        cfg = _load_config(args)
        keys = Keys.load(Path(cfg.server.data_dir), os.environ)
        print(keys.create(args.scope))
        return 0
    if args.action != "list" and not args.reason:
        console.print(f"[red]keys {args.action} needs --reason (it goes to the audit log)[/red]")
        return 2
    if args.action in ("revoke", "rotate") and not args.id:
        console.print(f"[red]keys {args.action} needs the key's id (see: cairn keys list --url ...)[/red]")
        return 2
    from urllib.parse import quote

    kid = quote(args.id or "", safe="")
    method, path, body = {
        "list": ("GET", "/v1/keys", None),
        "create": ("POST", "/v1/keys", {"scope": args.scope, "label": args.label or "", "reason": args.reason}),
        "revoke": ("DELETE", f"/v1/keys/{kid}", {"reason": args.reason}),
        "rotate": ("POST", f"/v1/keys/{kid}/rotate", {"reason": args.reason, "overlap": args.overlap}),
    }[args.action]
    status, reply = _admin_call(args, method, path, body)
    if status >= 300:
        err = reply.get("error", {}) if isinstance(reply, dict) else {}
        code, message = escape(str(err.get("code", ""))), escape(str(err.get("message", reply)))
        console.print(f"[red]{status} {code}[/red] {message}")
        return 1
    if args.action == "list":
        for k in reply["keys"]:
            state = "revoked" if k["revoked"] else ("active" if k["active"] else "expired")
            if k["active"] and k["expires_at"]:
                state = f"expires {k['expires_at']}"
            print(f"{k['id']:<16} {k['label']:<24} {k['scope']:<6} {k['origin']:<8} {state:<32} "
                  f"last used {k['last_used'] or '-'}")  # fmt: skip
    elif args.action == "revoke":
        console.print(f"[green]revoked[/green] {escape(kid)}")
    else:
        console.print(f"[green]{args.action}d[/green] {escape(reply['id'])} ({escape(reply['label'])}, "
                      f"{reply['scope']}); the secret is shown this once:")  # fmt: skip
        print(reply["secret"])
    return 0


def _admin_call(args: argparse.Namespace, method: str, path: str, body: Any) -> tuple[int, Any]:
    import urllib.request

    key = args.key or os.environ.get("CAIRN_ADMIN_KEY", "")
    req = urllib.request.Request(
        args.url.rstrip("/") + path, data=None if body is None else msgspec.json.encode(body), method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, msgspec.json.decode(resp.read())
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return e.code, raw.decode(errors="replace")


def cmd_world_import(args: argparse.Namespace) -> int:
    from cairn.worlds.importer import main as import_main  # type: ignore[import-not-found, unused-ignore]

    result: int = import_main(args)
    return result


def cmd_bench(args: argparse.Namespace) -> int:
    from cairn.bench.main import main as bench_main  # type: ignore[import-not-found, unused-ignore]

    result: int = bench_main(args)
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cairn", description="Cairn, a treasure hunt engine for game servers.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", help="cairn.toml (default: built-in defaults)")
        sp.add_argument("--host")
        sp.add_argument("--port", type=int)
        sp.add_argument("--data-dir", dest="data_dir")

    sp = sub.add_parser("serve", help="run the engine")
    common(sp)
    sp.add_argument("--profile", help="write a pyinstrument profile of the serving loop to this HTML file")
    sp.set_defaults(fn=cmd_serve)

    sp = sub.add_parser("demo", help="serve a procedural world with a sample hunt and simulated players")
    common(sp)
    sp.add_argument("--players", type=int, default=40)
    sp.add_argument("--seconds", type=float, default=0, help="stop after this long (0: when all are found)")
    sp.add_argument("--plain", action="store_true", help="no live terminal view")
    sp.set_defaults(fn=cmd_demo)

    sp = sub.add_parser("hunt", help="validate, create, preview or verify a hunt spec; export a hunt's claims")
    sp.add_argument("action", choices=["validate", "create", "preview", "verify", "export"])
    sp.add_argument("file", metavar="FILE|HUNT", help="a hunt spec file; for export, a hunt id")
    common(sp)
    sp.add_argument("--url", default="http://127.0.0.1:7420", help="create, export: the engine's URL")
    sp.add_argument("--key", help="create, export: the admin key (default: $CAIRN_ADMIN_KEY)")
    sp.add_argument("--format", choices=["csv", "ndjson"], default="csv", help="export: the format (default: csv)")
    sp.add_argument("--out", help="export: write to this file (default: stdout)")
    sp.set_defaults(fn=cmd_hunt)

    sp = sub.add_parser("config", help="check a config file offline")
    sp.add_argument("action", choices=["check"])
    sp.add_argument("file")
    sp.set_defaults(fn=cmd_config_check)

    sp = sub.add_parser("keys", help="list, create, revoke or rotate API keys (create without --url: keys.json)")
    sp.add_argument("action", choices=["list", "create", "revoke", "rotate"])
    sp.add_argument("id", nargs="?", help="revoke, rotate: the key's id (from `cairn keys list`)")
    sp.add_argument("--scope", choices=["admin", "game"], default="game")
    sp.add_argument("--label", help="create with --url: the key's label (1-64 of [A-Za-z0-9_.:-])")
    sp.add_argument("--reason", help="with --url: why (required for create, revoke, rotate; goes to the audit log)")
    sp.add_argument("--overlap", help="rotate: how long the old key keeps working (default 5m, at most 7d)")
    sp.add_argument("--url", help="the running server's URL; without it, create adds a key to keys.json")
    sp.add_argument("--key", help="the admin key (default: $CAIRN_ADMIN_KEY)")
    common(sp)
    sp.set_defaults(fn=cmd_keys)

    sp = sub.add_parser("world", help="import a world save into a site pack")
    sp.add_argument("action", choices=["import"])
    sp.add_argument("path")
    sp.add_argument("--world", default="overworld")
    sp.add_argument("--out", required=False, help="the site pack to write (default: <world>.pack)")
    sp.add_argument("--format", default="auto", help="auto|anvil|hytale|ndjson|csv|heightmap|pack (default: auto)")
    sp.add_argument("--workers", type=int, default=0, help="worker processes (default: one per CPU)")
    sp.add_argument("--deny", action="append", help="block ids never used as a site or floor (comma list, *suffix)")
    sp.add_argument("--resume", action="store_true", help="keep the region parts a stopped import finished")
    sp.add_argument("--work-dir", dest="work_dir", help="where parts are kept (default: <out>.work)")
    sp.add_argument("--keep-work", dest="keep_work", action="store_true", help="keep the work dir afterwards")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")
    sp.add_argument("--origin", help="heightmap: world x,z of the top-left pixel (default: 0,0)")
    sp.add_argument("--y-min", dest="y_min", type=int, help="heightmap: height of black (default: 0)")
    sp.add_argument("--y-max", dest="y_max", type=int, help="heightmap: height of white (default: 255)")
    sp.add_argument("--sea-level", dest="sea_level", type=int, help="heightmap: floors below are underwater")
    sp.add_argument("--step", type=int, help="heightmap: keep every n-th pixel (default: 1)")
    sp.set_defaults(fn=cmd_world_import)

    sp = sub.add_parser("bench", help="the load generator: simulated players against a running server")
    sp.add_argument("--url", default="http://127.0.0.1:7420")
    sp.add_argument("--key", help="game key (default: $CAIRN_GAME_KEY)")
    sp.add_argument("--admin-key", dest="admin_key", help="admin key to create the bench hunt ($CAIRN_ADMIN_KEY)")
    sp.add_argument("--scenario", choices=["steady", "hunt-start", "soak"], default="steady")
    sp.add_argument("--transport", choices=["http", "ws"], default="http")
    sp.add_argument("--players", type=int, default=2500)
    sp.add_argument("--duration", type=float, help="seconds (default: steady 60, hunt-start 20, soak 600)")
    sp.add_argument("--warmup", type=float, help="seconds left out of the summary (default 5)")
    sp.add_argument("--connections", type=int, help="game-server connections, one batch each per tick (4)")
    sp.add_argument("--tick-hz", dest="tick_hz", type=float, help="ticks per second (20)")
    sp.add_argument("--positions-per-s", dest="positions_per_s", type=float, help="per player (4)")
    sp.add_argument("--dig-every", dest="dig_every", type=float, help="seconds between a player's digs (2)")
    sp.add_argument("--hint-every", dest="hint_every", type=float, help="seconds between a player's hints (30)")
    sp.add_argument("--world", help="world id (overworld)")
    sp.add_argument("--radius", type=int, help="players walk in [-radius, radius]² (1000)")
    sp.add_argument("--hunt", help="an existing hunt (default: create one with the admin key)")
    sp.add_argument("--treasures", type=int, help="treasures of the created hunt (100)")
    sp.add_argument("--burst-at", dest="burst_at", type=float, help="hunt-start: seconds before the burst (5)")
    sp.add_argument("--sample-every", dest="sample_every", type=float, help="seconds between /metrics samples (1)")
    sp.add_argument("--seed", type=int)
    sp.add_argument("--json", help="write the JSON report here")
    sp.add_argument("--html", help="write the HTML report here")
    sp.add_argument("--compare", help="an earlier JSON report: print the change")
    sp.add_argument("--profile", help="write a pyinstrument profile of the load generator to this HTML file")
    sp.add_argument("--check", action="store_true", help="exit 1 when a target of the scenario is missed")
    sp.add_argument("--quiet", action="store_true", help="no live view")
    sp.set_defaults(fn=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        code = args.fn(args)
    except CairnError as e:
        console.print(f"[red]error[/red] ({e.code}): {escape(e.message)}")
        code = 2
    except KeyboardInterrupt:
        code = 130
    except OSError as e:
        console.print(f"[red]error[/red]: {escape(str(e))}")
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()

