"""Cron schedules in UTC: recurring hunts (`schedule`) and leaderboard resets (`reset`).

Five fields, `minute hour day-of-month month day-of-week`, each a `*`, a number, a name
(JAN..DEC, SUN..SAT, any case), a range `a-b`, a step `*/n`, `a-b/n` or `a/n` (from a to
the field's end), or a comma list of those. Day-of-week 0 and 7 are both Sunday, and a
range may end in SUN (`FRI-SUN` is 5-7). Shortcuts: `@yearly` (`@annually`), `@monthly`,
`@weekly`, `@daily` (`@midnight`), `@hourly`.

The day rule is Vixie cron's (cronie, the cron on most Linux servers): when both
day-of-month and day-of-week are restricted, a day matches if *either* matches; a field
that starts with `*` (like `*` or `*/2`) is unrestricted, and then both must match.

A line that can never fire (`0 0 30 2 *`) is rejected by `parse`. Searches are bounded
anyway: they give up (None) beyond 400 years, one full Gregorian cycle, or at the edge of
`datetime`'s range.
"""

from __future__ import annotations

import calendar
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from cairn.core.errors import ValidationError

FIELDS: Final = ("minute", "hour", "day-of-month", "month", "day-of-week")
_BOUNDS: Final = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_MONTHS: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_NAMES: Final[dict[int, dict[str, int]]] = {
    3: {n: i + 1 for i, n in enumerate(_MONTHS)},
    4: {n: i for i, n in enumerate(_DAYS)},
}
_NAME_HINT: Final = {3: " or a month name (JAN..DEC)", 4: " or a day name (SUN..SAT)"}
SHORTCUTS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# One Gregorian cycle: every (date, weekday) pattern repeats after 400 years.
_HORIZON_YEARS: Final = 400
_MONTH_WORDS: Final = tuple(calendar.month_name)


def _utc_minute(t: datetime) -> datetime:
    """`t` in UTC (a naive datetime is read as UTC), truncated to the minute."""
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return t.replace(second=0, microsecond=0)


def stamp(t: datetime) -> str:
    """The UTC minute stamp of a recurring hunt instance id, `<spec-id>@<stamp>`.

    >>> stamp(datetime(2026, 11, 27, 19, 0, tzinfo=UTC))
    '20261127T1900'
    """
    return _utc_minute(t).strftime("%Y%m%dT%H%M")


@dataclass(frozen=True, slots=True)
class Cron:
    """A parsed cron line. Build it with `Cron.parse`.

    >>> c = Cron.parse("0 19 * * FRI")
    >>> c.next_after(datetime(2026, 11, 27, 19, 0, tzinfo=UTC))
    datetime.datetime(2026, 12, 4, 19, 0, tzinfo=datetime.timezone.utc)
    >>> c.prev_at_or_before(datetime(2026, 11, 27, 19, 0, 30, tzinfo=UTC))
    datetime.datetime(2026, 11, 27, 19, 0, tzinfo=datetime.timezone.utc)
    """

    line: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: tuple[int, ...]
    weekdays: frozenset[int]  # 0 = Sunday .. 6 = Saturday
    day_or: bool  # both day fields restricted: either may match

    # --- parsing ----------------------------------------------------------------------

    @classmethod
    def parse(cls, line: str, field: str = "schedule") -> Cron:
        """Parse a cron line, or raise ValidationError(field=`field`) saying what is wrong."""
        text = " ".join(line.split())
        if not text:
            raise ValidationError(
                "schedule is empty; expected 5 fields: minute hour day-of-month month day-of-week", field=field
            )
        if text.startswith("@"):
            expanded = SHORTCUTS.get(text.lower())
            if expanded is None:
                raise ValidationError(
                    f"unknown schedule shortcut {text!r}; expected one of {', '.join(SHORTCUTS)}", field=field
                )
            parts = expanded.split()
        else:
            parts = text.split()
        if len(parts) != 5:
            raise ValidationError(
                f"schedule needs 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}: {text!r}",
                field=field,
            )
        sets = [_parse_field(i, part, field) for i, part in enumerate(parts)]
        weekdays = frozenset(d % 7 for d in sets[4])
        dom_star, dow_star = parts[2].startswith("*"), parts[4].startswith("*")
        cron = cls(
            line=text,
            minutes=tuple(sorted(sets[0])),
            hours=tuple(sorted(sets[1])),
            days=frozenset(sets[2]),
            months=tuple(sorted(sets[3])),
            weekdays=weekdays,
            day_or=not dom_star and not dow_star,
        )
        if not cron.day_or and not any(d <= _longest(m) for m in cron.months for d in cron.days):
            days = " or ".join(str(d) for d in sorted(cron.days))
            months = " or ".join(_MONTH_WORDS[m] for m in cron.months)
            raise ValidationError(f"schedule {text!r} never fires: there is no day {days} in {months}", field=field)
        return cron

    def __str__(self) -> str:
        return self.line

    # --- matching ----------------------------------------------------------------------

    def _day_ok(self, year: int, month: int, day: int) -> bool:
        dom = day in self.days
        # calendar.weekday: Monday = 0; cron: Sunday = 0.
        dow = (calendar.weekday(year, month, day) + 1) % 7 in self.weekdays
        return (dom or dow) if self.day_or else (dom and dow)

    def matches(self, t: datetime) -> bool:
        """Whether the schedule fires in the UTC minute of `t`."""
        t = _utc_minute(t)
        return (
            t.minute in self.minutes
            and t.hour in self.hours
            and t.month in self.months
            and self._day_ok(t.year, t.month, t.day)
        )

    # --- searching ---------------------------------------------------------------------

    def next_after(self, t: datetime) -> datetime | None:
        """The first firing strictly after `t` (UTC, whole minutes), or None if none is in reach.

        Cost: O(days skipped) in the worst case, bounded by 400 years; usually a few steps.
        """
        t = _utc_minute(t)
        if t.year == 9999 and t.month == 12 and t.day == 31 and t.hour == 23 and t.minute == 59:
            return None
        t += timedelta(minutes=1)
        y, mo, d, h, mi = t.year, t.month, t.day, t.hour, t.minute
        last_year = min(9999, y + _HORIZON_YEARS)
        months, hours, minutes = self.months, self.hours, self.minutes
        while y <= last_year:
            if mo not in months:
                i = bisect_left(months, mo)
                if i == len(months):
                    y, mo = y + 1, months[0]
                else:
                    mo = months[i]
                d, h, mi = 1, 0, 0
                continue
            if d > calendar.monthrange(y, mo)[1]:
                y, mo, d, h, mi = (y + 1, 1, 1, 0, 0) if mo == 12 else (y, mo + 1, 1, 0, 0)
                continue
            if not self._day_ok(y, mo, d):
                d, h, mi = d + 1, 0, 0
                continue
            i = bisect_left(hours, h)
            if i == len(hours):
                d, h, mi = d + 1, 0, 0
                continue
            if hours[i] != h:
                h, mi = hours[i], 0
            j = bisect_left(minutes, mi)
            if j == len(minutes):
                h, mi = h + 1, 0
                if h == 24:
                    d, h = d + 1, 0
                continue
            return datetime(y, mo, d, h, minutes[j], tzinfo=UTC)
        return None

    def prev_at_or_before(self, t: datetime) -> datetime | None:
        """The last firing at or before `t` (UTC, whole minutes), or None if none is in reach.

        Cost: as `next_after`.
        """
        t = _utc_minute(t)
        y, mo, d, h, mi = t.year, t.month, t.day, t.hour, t.minute
        first_year = max(1, y - _HORIZON_YEARS)
        months, hours, minutes = self.months, self.hours, self.minutes
        while y >= first_year:
            if mo not in months:
                i = bisect_right(months, mo)
                if i == 0:
                    y, mo = y - 1, months[-1]
                else:
                    mo = months[i - 1]
                if y < 1:
                    break
                d, h, mi = calendar.monthrange(y, mo)[1], 23, 59
                continue
            if d < 1:
                if mo == 1:
                    y, mo = y - 1, 12
                else:
                    mo -= 1
                if y < 1:
                    break
                d, h, mi = calendar.monthrange(y, mo)[1], 23, 59
                continue
            if not self._day_ok(y, mo, d):
                d, h, mi = d - 1, 23, 59
                continue
            i = bisect_right(hours, h)
            if i == 0:
                d, h, mi = d - 1, 23, 59
                continue
            if hours[i - 1] != h:
                h, mi = hours[i - 1], 59
            j = bisect_right(minutes, mi)
            if j == 0:
                h, mi = h - 1, 59
                if h < 0:
                    d, h = d - 1, 23
                continue
            return datetime(y, mo, d, h, minutes[j - 1], tzinfo=UTC)
        return None

    def firings_between(self, a: datetime, b: datetime) -> Iterator[datetime]:
        """Every firing f with `a < f <= b`, in order (what a scheduler owes after a pause)."""
        end = _utc_minute(b)
        t = self.next_after(a)
        while t is not None and t <= end:
            yield t
            t = self.next_after(t)


def _longest(month: int) -> int:
    """The most days `month` ever has (29 for February)."""
    return calendar.monthrange(2000, month)[1]


def _parse_value(i: int, text: str, token: str, field: str) -> int:
    name = FIELDS[i]
    names = _NAMES.get(i, {})
    up = token.upper()
    if up in names:
        return names[up]
    if not token.isdigit() or not token.isascii():
        extra = ""
        if any(c in token for c in "?LW#"):
            extra = "; ?, L, W and # are not supported"
        raise ValidationError(
            f"{name} field {text!r}: {token!r} is not a number{_NAME_HINT.get(i, '')}{extra}", field=field
        )
    v = int(token)
    lo, hi = _BOUNDS[i]
    if not lo <= v <= hi:
        raise ValidationError(f"{name} field {text!r}: {v} is out of range {lo}-{hi}", field=field)
    return v


def _parse_field(i: int, text: str, field: str) -> set[int]:
    name = FIELDS[i]
    lo, hi = _BOUNDS[i]
    out: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ValidationError(f"{name} field {text!r}: empty list item", field=field)
        rng, sep, step_text = item.partition("/")
        step = 1
        if sep:
            if not step_text.isdigit() or not step_text.isascii() or int(step_text) < 1:
                raise ValidationError(
                    f"{name} field {text!r}: step {step_text!r} must be a whole number >= 1", field=field
                )
            step = int(step_text)
        if rng == "*":
            a, b = lo, (6 if i == 4 else hi)
        elif "-" in rng:
            a_text, _, b_text = rng.partition("-")
            a = _parse_value(i, text, a_text, field)
            b = _parse_value(i, text, b_text, field)
            if i == 4 and b == 0 and a > 0:
                b = 7  # FRI-SUN: Sunday as the end of a week range
            if a > b:
                raise ValidationError(f"{name} field {text!r}: range {rng} goes backwards", field=field)
        else:
            a = _parse_value(i, text, rng, field)
            b = (6 if i == 4 else hi) if sep else a
        out.update(range(a, b + 1, step))
    return out
