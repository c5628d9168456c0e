"""`cairn.toml`: a small typed config, validated once at load.

Every key is optional and documents its default. `CAIRN_<SECTION>_<KEY>` environment variables
override single values (`CAIRN_SERVER_PORT=7500`, `CAIRN_STORE_DURABILITY=os`). Errors name the
file, the key and the reason.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from cairn.core.boards import DEFAULT_BOARDS, Boards, BoardSpec
from cairn.core.errors import CairnError
from cairn.core.events import EventLog
from cairn.core.loot import DEFAULT_LOOT, LootEntry, LootTable, table_named
from cairn.core.schedule import Cron
from cairn.core.spec import TIERS, HuntSpec, decode_spec


class ConfigError(CairnError):
    code, status = "config_error", 400


class _Section(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


class ServerConfig(_Section):
    host: str = "127.0.0.1"  # address to listen on
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 7420
    data_dir: str = "./cairn-data"  # journal, snapshots, keys and the secret live here
    secret: str = ""  # placement/loot secret; generated into data_dir when empty
    max_body: Annotated[int, msgspec.Meta(ge=1024, le=1 << 30)] = 1_048_576
    metrics_from: list[str] = msgspec.field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    header_timeout: Annotated[float, msgspec.Meta(gt=0)] = 10.0  # seconds to send request headers
    idle_timeout: Annotated[float, msgspec.Meta(gt=0)] = 60.0  # keep-alive idle seconds
    max_inflight: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 64  # pipelined requests per connection
    shutdown_timeout: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    access_log: bool = False  # one JSON log line per request (costs time on the hot path)
    max_uploads: Annotated[int, msgspec.Meta(ge=1, le=64)] = 2  # site uploads received at once; beyond: 503
    max_connections: Annotated[int, msgspec.Meta(ge=16, le=1_000_000)] = 10_000  # open connections, all clients
    max_connections_per_address: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 512  # from one client address
    first_request_timeout: Annotated[float, msgspec.Meta(gt=0)] = 5.0  # seconds from connect to a first request
    # addresses (CIDR) exempt from the per-address limits: a reverse proxy in front of Cairn (docs/security.md)
    trusted_proxies: list[str] = msgspec.field(default_factory=list)
    auth_failures_slow: Annotated[int, msgspec.Meta(ge=1)] = 5  # failed auths from one address before each is delayed
    auth_failures_close: Annotated[int, msgspec.Meta(ge=1)] = 20  # failed auths on one connection before it is closed


class StoreConfig(_Section):
    kind: Literal["embedded", "redis", "memory"] = "embedded"  # memory: nothing survives the process (tests, demos)
    durability: Literal["fsync", "os"] = "fsync"  # embedded: fsync survives power loss, os a process crash
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_cluster: list[str] = msgspec.field(default_factory=list)
    redis_timeout: Annotated[float, msgspec.Meta(gt=0, le=10)] = 0.08  # seconds per Redis call before 503
    snapshot_every: Annotated[int, msgspec.Meta(ge=1000)] = 200_000  # records between snapshots
    # After a journal failure, seconds of 503s (probes and metrics see why) before the process exits (75)
    fail_stop_grace: Annotated[float, msgspec.Meta(ge=0, le=600)] = 5.0


class LimitsConfig(_Section):
    max_speed: Annotated[float, msgspec.Meta(gt=0)] = 100.0
    dig_rate: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    dig_burst: Annotated[int, msgspec.Meta(ge=1)] = 20
    # Fake player ids (docs/configuration.md, [limits]): per key over all its players; a rate of 0 is no quota.
    key_dig_rate: Annotated[float, msgspec.Meta(ge=0)] = 200_000.0  # digs per second per key
    key_dig_burst: Annotated[float, msgspec.Meta(ge=1)] = 200_000.0
    key_hint_rate: Annotated[float, msgspec.Meta(ge=0)] = 20_000.0  # hints per second per key
    key_hint_burst: Annotated[float, msgspec.Meta(ge=1)] = 100_000.0
    new_players_rate: Annotated[float, msgspec.Meta(ge=0)] = 1_000.0  # players not tracked yet, per second per key
    new_players_burst: Annotated[float, msgspec.Meta(ge=1)] = 100_000.0
    strict_players: bool = False  # hint and dig only for players announced through positions
    player_idle: Annotated[float, msgspec.Meta(ge=1)] = 600.0  # seconds of silence before a player is forgotten
    max_players: Annotated[int, msgspec.Meta(ge=1)] = 250_000  # players tracked at once (memory bound)


class EventsConfig(_Section):
    # `proximity.enter`/`exit` stay resumable by `after` this many seconds (the rest, by count)
    ephemeral_seconds: Annotated[float, msgspec.Meta(ge=0, le=86_400)] = 60.0
    ephemeral_max: Annotated[int, msgspec.Meta(ge=0, le=1 << 24)] = 16_384  # and at most this many
    # event subscriptions (SSE streams and WebSocket subscribes) one API key may hold at once
    max_subscribers_per_key: Annotated[int, msgspec.Meta(ge=1, le=1 << 20)] = 256


class WebhooksConfig(_Section):
    # seconds one delivery request may take (connect, send, the reply's status line and headers)
    timeout: Annotated[float, msgspec.Meta(gt=0, le=300)] = 5.0
    # after an attempt that failed: wait `backoff_first` seconds, doubling per failure up to `backoff_max`
    # (each wait jittered to between half and all of it)
    backoff_first: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 1.0
    backoff_max: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 300.0
    # a target whose attempts failed this many times in a row is paused (about 8.5 min with the defaults)
    max_failures: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 10
    # requests in flight at once per target (one attempt sends up to this many pending deliveries)
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
    # pending deliveries kept per target; past it the oldest is dropped (counted in `dropped`)
    max_backlog: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 10_000
    # webhook targets at most (each `POST /v1/webhooks` past it gets 409)
    max_targets: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 50


#: World ids, in the config and in `/v1/worlds/{world}`: `world`, `world_nether`, `minecraft:overworld`.
WORLD_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
#: The keys of the procedural generator: a world section that sets one of them is procedural.
PROCEDURAL_KEYS = ("seed", "size", "density")


class WorldConfig(_Section):
    # Where the sites come from; a section must say it (see `_check_world`): "procedural" (generated,
    # implied by `seed`, `size` or `density`), `sites = FILE`, or "upload" (empty until uploaded).
    generator: Literal["procedural", "upload"] | None = None
    sites: str | None = None  # a site pack file instead of the generator
    cache: bool = True  # procedural: keep the generated sites as a pack in data_dir/worlds, for fast restarts
    verify_pack: bool = True  # check the pack's CRC-32s when loading it (one pass over the file)
    # largest `PUT /v1/worlds/<id>/sites` body in bytes (256 MiB), kept in a file under data_dir while read
    upload_max_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1 << 32)] = 256 << 20
    seed: int = 1
    size: Annotated[int, msgspec.Meta(ge=64, le=60_000_000)] = 8192
    density: Annotated[float, msgspec.Meta(gt=0, le=16)] = 0.5  # share of candidate columns kept


class LeaderboardConfig(_Section):
    id: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]{1,48}$")]
    metric: Literal["finds", "value", "fastest_find_seconds"] = "value"
    operator: Literal["incr", "best", "set"] = "incr"
    sort: Literal["desc", "asc"] = "desc"
    reset: str | None = None  # cron line in UTC; none = never
    hunt_tags: list[str] = msgspec.field(default_factory=list)  # only hunts with one of these tags count


class LandmarkConfig(_Section):
    name: str
    pos: Annotated[list[int], msgspec.Meta(min_length=3, max_length=3)]
    world: str = "overworld"


def _default_worlds() -> dict[str, WorldConfig]:
    return {"overworld": WorldConfig(generator="procedural")}


def _default_boards() -> list[LeaderboardConfig]:
    return [LeaderboardConfig(id=b.id, reset=b.reset) for b in DEFAULT_BOARDS]


class Config(_Section):
    hunts_dir: str = "hunts"  # every *.toml in it is loaded at start
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    store: StoreConfig = msgspec.field(default_factory=StoreConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    events: EventsConfig = msgspec.field(default_factory=EventsConfig)
    webhooks: WebhooksConfig = msgspec.field(default_factory=WebhooksConfig)
    worlds: dict[str, WorldConfig] = msgspec.field(default_factory=_default_worlds)
    loot: dict[str, dict[str, list[LootEntry]]] = msgspec.field(default_factory=dict)
    leaderboards: list[LeaderboardConfig] = msgspec.field(default_factory=_default_boards)
    landmarks: list[LandmarkConfig] = msgspec.field(default_factory=list)

    def loot_tables(self) -> dict[str, LootTable]:
        tables: dict[str, LootTable] = {"default": DEFAULT_LOOT}
        tables.update(self.loot)
        return tables

    def boards(self) -> Boards:
        """The configured leaderboards, empty."""
        return Boards(
            [BoardSpec(b.id, b.metric, b.operator, b.sort, b.reset, tuple(b.hunt_tags)) for b in self.leaderboards]
        )

    def event_log(self) -> EventLog:
        """The engine's event rings, keeping ephemeral events as `[events]` says."""
        return EventLog(ephemeral_seconds=self.events.ephemeral_seconds, ephemeral_max=self.events.ephemeral_max)


def _coerce(text: str) -> Any:
    try:
        return msgspec.toml.decode(f"v = {text}")["v"]
    except msgspec.DecodeError:
        return text


def _env_overrides(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    sections = {"server", "store", "limits", "events"}
    for name, value in env.items():
        if not name.startswith("CAIRN_") or name in ("CAIRN_ADMIN_KEY", "CAIRN_GAME_KEY"):
            continue
        rest = name[6:].lower()
        section, _, key = rest.partition("_")
        if section in sections and key:
            raw.setdefault(section, {})[key] = _coerce(value)
        elif rest == "hunts_dir":
            raw["hunts_dir"] = value


def load(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file (or the defaults), then apply environment overrides."""
    where = str(path) if path else "defaults"
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = msgspec.toml.decode(Path(path).read_bytes())
        except FileNotFoundError:
            raise ConfigError(f"{where}: file not found") from None
        except msgspec.DecodeError as e:
            raise ConfigError(f"{where}: not valid TOML: {e}") from None
    _env_overrides(raw, os.environ if env is None else env)
    try:
        cfg = msgspec.convert(raw, Config)
    except msgspec.ValidationError as e:
        msg = str(e)
        key = msg.rsplit("`$.", 1)[1].rstrip("`") if "`$." in msg else None
        reason = msg.split(" - at `$")[0]
        raise ConfigError(f"{where}: {key or 'config'}: {reason}", field=key) from None
    for name, section in (raw.get("worlds") or {}).items():
        _check_world(name, section, cfg.worlds[name], where)
    _check(cfg, where)
    return cfg


def _check_world(name: str, section: dict[str, Any], wc: WorldConfig, where: str) -> None:
    """A world section names its source: an empty `[worlds.x]` used to generate a procedural world
    (25 MB for the default size) without saying so."""
    if not re.fullmatch(WORLD_PATTERN, name):
        raise ConfigError(f"{where}: worlds.{name}: a world id is 1-64 characters of [A-Za-z0-9_.:-]",
                          field=f"worlds.{name}")  # fmt: skip
    if wc.generator is None and wc.sites is None:
        if not any(k in section for k in PROCEDURAL_KEYS):
            raise ConfigError(
                f"{where}: worlds.{name}: say where its sites come from: generator = \"procedural\" (generated "
                f"from seed and size), sites = \"FILE\" (a site pack) or generator = \"upload\" (empty until "
                f"PUT /v1/worlds/{name}/sites)", field=f"worlds.{name}",
            )  # fmt: skip
        wc.generator = "procedural"


def _check(cfg: Config, where: str) -> None:
    for name, table in cfg.loot.items():
        for tier in table:
            if tier not in TIERS:
                raise ConfigError(f"{where}: loot.{name}.{tier}: unknown tier (tiers are {', '.join(TIERS)})")
    for i, board in enumerate(cfg.leaderboards):
        if board.reset is not None:
            try:
                Cron.parse(board.reset)
            except CairnError as e:
                raise ConfigError(f"{where}: leaderboards[{i}].reset: {e.message}") from None
    if cfg.store.kind == "redis":
        _check_redis(cfg.store, where)


def _check_redis(store: StoreConfig, where: str) -> None:
    if not store.redis_cluster and not store.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(
            f"{where}: store.redis_url: must start with redis://, rediss:// or unix://", field="store.redis_url"
        )
    for i, node in enumerate(store.redis_cluster):
        host, _, port = node.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(
                f"{where}: store.redis_cluster[{i}]: {node!r} is not \"host:port\"", field="store.redis_cluster"
            )


def hunt_files(cfg: Config) -> list[Path]:
    """The hunt specs `serve` loads at start: every `*.toml` in `hunts_dir`, by name."""
    folder = Path(cfg.hunts_dir)
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


def hunt_file_error(path: Path, err: CairnError) -> CairnError:
    """`err` about the hunt spec in `path`, with the same code, naming the file and the field."""
    field = f" ({err.field})" if err.field and err.field not in err.message else ""
    return type(err)(f"{path}: {err.message}{field}", field=err.field, **err.extra)


def load_hunt_file(cfg: Config, path: Path) -> HuntSpec:
    """Read and check a hunt spec file against `cfg` (loot table, leaderboards), naming the file in errors."""
    try:
        spec = decode_spec(path.read_bytes(), "toml" if path.suffix == ".toml" else "json")
        check_spec_names(cfg, spec)
    except CairnError as e:
        raise hunt_file_error(path, e) from None
    return spec


def check_spec_names(cfg: Config, spec: HuntSpec) -> None:
    """The checks of a spec's names that need the config: its loot table and its leaderboards."""
    table_named(cfg.loot_tables(), spec.loot)
    cfg.boards().check(spec.leaderboards)


def secret_of(cfg: Config, data_dir: Path) -> bytes:
    """The placement/loot secret: from config, else from `data_dir/secret`, created on first start."""
    if cfg.server.secret:
        return cfg.server.secret.encode()
    path = data_dir / "secret"
    if path.exists():
        return path.read_text().strip().encode()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return value.encode()
