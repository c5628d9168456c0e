"""The hunt spec: a TOML file or the same object as JSON, validated into typed structs.

Every error names the field (`spawn.min_spacing`) and the reason.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

from cairn.core.errors import UnknownField, ValidationError
from cairn.core.geometry import MAX_XZ, MAX_Y, MIN_Y, check_pos
from cairn.core.hints import AdaptPolicy

TIERS = ("common", "uncommon", "rare", "epic", "legendary")
HintKind = Literal["temperature", "bearing", "region", "riddle"]
HINT_KINDS: tuple[HintKind, ...] = ("temperature", "bearing", "region", "riddle")
DEFAULT_TIER_WEIGHTS = {"common": 60, "uncommon": 25, "rare": 10, "epic": 4, "legendary": 1}

# A recurring spec's instances are `<spec id>@<UTC start, YYYYMMDDTHHMM>`.
HuntId = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9-]{1,48}(@[0-9]{8}T[0-9]{4})?$")]
Coord = Annotated[int, msgspec.Meta(ge=-MAX_XZ, le=MAX_XZ)]
Vec3 = Annotated[list[Coord], msgspec.Meta(min_length=3, max_length=3)]
Duration = Annotated[str, msgspec.Meta(max_length=32)]


class Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Base for wire and config structs: unknown fields are errors."""


class Area(Strict):
    min: Vec3
    max: Vec3


class Exclude(Strict):
    center: Vec3
    radius: Annotated[int, msgspec.Meta(ge=0, le=MAX_XZ)]


class Spawn(Strict):
    tags_any: list[str] = msgspec.field(default_factory=list)
    tags_none: list[str] = msgspec.field(default_factory=list)
    min_spacing: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 0
    exclude: Annotated[list[Exclude], msgspec.Meta(max_length=256)] = msgspec.field(default_factory=list)


class Prize(Strict):
    mode: Literal["first_finder", "shared_bounty"] = "first_finder"
    window: Duration = "10m"
    pool: Annotated[int, msgspec.Meta(ge=1, le=10**12)] = 1000
    item: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_.-]+:[a-z0-9_./-]+$")] = "cairn:coin"


class DigRules(Strict):
    reach: Annotated[float, msgspec.Meta(gt=0, le=64)] = 6.0
    tolerance: Annotated[int, msgspec.Meta(ge=0, le=16)] = 1


class HintRules(Strict):
    cooldown: Duration = "30s"
    kinds: list[HintKind] = msgspec.field(default_factory=lambda: list(HINT_KINDS))
    solve_by: Duration | None = None  # after the start; absent: the hunt's end
    adapt: AdaptPolicy = msgspec.field(default_factory=AdaptPolicy)


class Proximity(Strict):
    radius: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 16


class HuntSpec(Strict):
    """A hunt as an operator writes it. Fields and defaults follow SPEC.md."""

    id: HuntId
    area: Area
    treasures: Annotated[int, msgspec.Meta(ge=1, le=10_000)]
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    world: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] = "overworld"
    seed: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    starts_at: datetime | None = None
    duration: Duration = "2h"
    schedule: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    max_concurrent: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1
    prize: Prize = msgspec.field(default_factory=Prize)
    spawn: Spawn = msgspec.field(default_factory=Spawn)
    dig: DigRules = msgspec.field(default_factory=DigRules)
    hints: HintRules = msgspec.field(default_factory=HintRules)
    proximity: Proximity = msgspec.field(default_factory=Proximity)
    loot: Annotated[str, msgspec.Meta(max_length=64)] = "default"
    tiers: dict[str, Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_TIER_WEIGHTS)
    )
    leaderboards: list[str] = msgspec.field(default_factory=lambda: ["weekly", "alltime"])
    tags: list[str] = msgspec.field(default_factory=list)


#: The longest duration a spec may give (`duration`, `prize.window`, `hints.cooldown`, `hints.solve_by`):
#: ten years. With starts between EARLIEST and LATEST, every instant a hunt derives stays a valid date.
MAX_SPAN = 10 * 366 * 86400.0
EARLIEST = 0.0  # 1970-01-01T00:00:00Z
LATEST = datetime(9000, 1, 1, tzinfo=UTC).timestamp()  # far from datetime's end (9999) by more than a span

_DURATION = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")  # ASCII digits: `\d` would take any script's
_DURATION_CHARS = 32  # as `Duration` in a spec: a longer text is no duration anyone means
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str, field: str) -> float:
    """Seconds in a duration such as `90m`, `2h`, `1h30m`, `30s` or `0s`.

    >>> parse_duration("1h30m", "duration")
    5400.0
    """
    pos, total = 0, 0.0
    text = text.strip()
    if len(text) > _DURATION_CHARS:
        raise ValidationError(f"{field}: a duration has at most {_DURATION_CHARS} characters", field=field)
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValidationError(f"{field}: {text!r} is not a duration (use forms like 30s, 10m, 2h, 1h30m)", field=field)
    return total


def only_fields(args: dict[str, Any] | None, allowed: tuple[str, ...]) -> dict[str, Any]:
    """An operator action's args (its body less `reason`), refusing a field the action does not take.

    >>> only_fields({"by": "30m"}, ("by", "ends_at"))
    {'by': '30m'}
    """
    args = args or {}
    for k in args:
        if k not in allowed:
            known = ", ".join(("reason", *allowed))
            raise UnknownField(f"unknown field {k!r} (this action takes: {known})", field=k)
    return args


def query_int(query: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    """A query parameter that is an integer in [lo, hi]: ASCII digits and an optional `-`, nothing else
    (`int()` alone also takes `+5`, ` 1`, `1_000` and other scripts' digits); `default` when absent or empty.

    >>> query_int({"limit": "20"}, "limit", 10, 1, 100), query_int({}, "limit", 10, 1, 100)
    (20, 10)
    """
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    digits = raw[1:] if raw[:1] == "-" else raw
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        raise ValidationError(f"{name} must be an integer", field=name)
    value = int(raw)
    if not lo <= value <= hi:
        raise ValidationError(f"{name} must be between {lo} and {hi}", field=name)
    return value


def _field_of(err: msgspec.ValidationError) -> str | None:
    msg = str(err)
    i = msg.rfind(" - at `$")
    if i < 0:
        return None
    path = msg[i + 8 : -1]
    return path.lstrip(".") or None


def validation_error(err: msgspec.ValidationError | msgspec.DecodeError, what: str) -> ValidationError:
    """Turn a msgspec error into a ValidationError that names the field, a missing one included.

    >>> class Area(msgspec.Struct):
    ...     min: list[int]
    >>> class Spec(msgspec.Struct):
    ...     area: Area
    >>> def field(body: bytes) -> str | None:
    ...     try:
    ...         msgspec.json.decode(body, type=Spec)
    ...     except msgspec.ValidationError as e:
    ...         return validation_error(e, "spec").field
    ...     return None
    >>> field(b'{"area": {"min": "x"}}'), field(b'{"area": {}}'), field(b'{}')
    ('area.min', 'area.min', 'area')
    """
    field = _field_of(err) if isinstance(err, msgspec.ValidationError) else None
    reason = str(err).split(" - at `$")[0]
    if reason.startswith("`") and "` " in reason:  # a `__post_init__` check names its field first
        name = reason[1 : reason.index("`", 1)]
        field = f"{field}.{name}" if field else name
    if reason.startswith("Object missing required field `"):  # the missing field is the one to name
        name = reason.split("`")[1]
        field = f"{field}.{name}" if field else name
    if reason.startswith("Object contains unknown field"):
        name = reason.split("`")[1]
        full = f"{field}.{name}" if field else name
        return UnknownField(f"unknown field {full!r} in {what}", field=full)
    where = f" at {field}" if field else ""
    return ValidationError(f"invalid {what}{where}: {reason}", field=field)


def decode_spec(data: bytes | str, fmt: Literal["json", "toml"] = "json") -> HuntSpec:
    """Decode and fully validate a hunt spec; raise ValidationError naming the field."""
    try:
        decode = msgspec.toml.decode if fmt == "toml" else msgspec.json.decode
        spec = decode(data, type=HuntSpec)
    except msgspec.ValidationError as e:
        raise validation_error(e, "hunt spec") from None
    except msgspec.DecodeError as e:
        raise ValidationError(f"hunt spec is not valid {fmt.upper()}: {e}") from None
    check_spec(spec)
    return spec


def convert_spec(obj: Any) -> HuntSpec:
    """Validate an already-decoded object (from a batch, a config) as a hunt spec."""
    try:
        spec = msgspec.convert(obj, HuntSpec)
    except msgspec.ValidationError as e:
        raise validation_error(e, "hunt spec") from None
    check_spec(spec)
    return spec


#: Hunt ids a Redis deployment uses for streams of its own (`cairn:{<name>}:...`): a hunt by one of these
#: names would share its keys.
RESERVED_IDS = frozenset({"admin", "index", "recurring", "sched", "secret", "worlds"})


def check_spec(spec: HuntSpec) -> None:
    """Checks that need more than one field or a parser; raise ValidationError."""
    if spec.id in RESERVED_IDS:
        raise ValidationError(f"hunt id {spec.id!r} is reserved (one of {', '.join(sorted(RESERVED_IDS))})",
                              field="id")  # fmt: skip
    lo, hi = spec.area.min, spec.area.max
    for axis, name in enumerate("xyz"):
        if lo[axis] > hi[axis]:
            raise ValidationError(f"area.min.{name} is greater than area.max.{name}", field="area")
    for field, v in (("area.min", lo), ("area.max", hi)):
        check_pos((v[0], v[1], v[2]), field)
        if not MIN_Y <= v[1] <= MAX_Y:
            raise ValidationError(f"{field}: y must be within [{MIN_Y}, {MAX_Y}]", field=field)
    duration = _span(spec.duration, "duration")
    if duration <= 0:
        raise ValidationError("duration must be longer than 0s", field="duration")
    _span(spec.prize.window, "prize.window")
    _span(spec.hints.cooldown, "hints.cooldown")
    if spec.hints.solve_by is not None and _span(spec.hints.solve_by, "hints.solve_by") > duration:
        # Past the end, the region hint would never shrink to its final size: refused, not clamped.
        raise ValidationError(
            f"hints.solve_by ({spec.hints.solve_by}) is after the hunt's end (duration {spec.duration}); "
            "the final hint would never come: make it at most the duration, or leave it out (the end)",
            field="hints.solve_by",
        )
    if spec.starts_at is not None:
        if spec.starts_at.tzinfo is None:
            raise ValidationError("starts_at needs a time zone, e.g. 2026-11-27T19:00:00Z", field="starts_at")
        check_start(spec.starts_at.timestamp())
    unknown = sorted(set(spec.tiers) - set(TIERS))
    if unknown:
        raise ValidationError(f"tiers: unknown tier {unknown[0]!r}; tiers are {', '.join(TIERS)}", field="tiers")
    if sum(spec.tiers.values()) <= 0:
        raise ValidationError("tiers: at least one tier needs a weight above 0", field="tiers")
    if len(set(spec.hints.kinds)) != len(spec.hints.kinds):
        raise ValidationError("hints.kinds lists a kind twice", field="hints.kinds")
    if spec.schedule is not None:
        from cairn.core.schedule import Cron

        Cron.parse(spec.schedule)
        if "@" in spec.id:
            raise ValidationError("a recurring spec's id cannot contain '@'", field="id")


def _span(text: str, field: str) -> float:
    """A spec's duration in seconds, at most MAX_SPAN (ten years)."""
    seconds = parse_duration(text, field)
    if seconds > MAX_SPAN:
        raise ValidationError(f"{field}: {text!r} is longer than ten years (3660d)", field=field)
    return seconds


def check_start(ts: float) -> None:
    """Refuse a start (UNIX seconds) outside [EARLIEST, LATEST]: every time derived from it must be a date."""
    if not EARLIEST <= ts <= LATEST:
        raise ValidationError("starts_at must be between 1970-01-01 and 9000-01-01 (UTC)", field="starts_at")


def starts_at_ts(spec: HuntSpec, now: float) -> float:
    """The start as UNIX seconds; an absent `starts_at` means now."""
    return spec.starts_at.timestamp() if spec.starts_at is not None else now


_second: list[object] = [None, ""]  # one-entry memo: (whole second, its formatted prefix)


def rfc3339(ts: float) -> str:
    """UNIX seconds as RFC 3339 UTC with milliseconds, e.g. 2026-11-27T19:00:00.000Z.

    >>> rfc3339(1795716000.25)
    '2026-11-26T18:00:00.250Z'
    """
    ms = round(ts * 1000)
    sec, frac = divmod(ms, 1000)
    if _second[0] != sec:
        _second[0] = sec
        _second[1] = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_second[1]}.{frac:03d}Z"


def encode_spec(spec: HuntSpec) -> bytes:
    """Canonical JSON of a spec, used in records and for determinism keys."""
    return msgspec.json.encode(spec, order="sorted")
