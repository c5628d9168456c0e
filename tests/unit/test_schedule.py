"""Cron schedules: hand-computed firings, exact error texts, and a day-by-day reference."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.core.errors import ValidationError
from cairn.core.schedule import Cron, stamp


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# (line, after, the next firings) — worked out by hand with a calendar.
NEXT_CASES = [
    # 2026-11-27 is a Friday (the SPEC's example hunt).
    ("0 19 * * FRI", utc(2026, 11, 27, 18, 59, 59), [utc(2026, 11, 27, 19, 0), utc(2026, 12, 4, 19, 0)]),
    ("0 19 * * FRI", utc(2026, 11, 27, 19, 0), [utc(2026, 12, 4, 19, 0), utc(2026, 12, 11, 19, 0)]),
    ("0 19 * * FRI", utc(2026, 11, 27, 19, 0, 30), [utc(2026, 12, 4, 19, 0)]),  # strictly after the minute
    ("0 19 * * 5", utc(2026, 12, 25, 20, 0), [utc(2027, 1, 1, 19, 0)]),  # across the year
    ("*/20 9-10 * * *", utc(2026, 3, 1, 10, 45), [utc(2026, 3, 2, 9, 0), utc(2026, 3, 2, 9, 20)]),
    ("0 0 31 * *", utc(2026, 1, 31, 0, 0), [utc(2026, 3, 31), utc(2026, 5, 31), utc(2026, 7, 31), utc(2026, 8, 31)]),
    # Leap days: 2028 is a leap year, 2100 is not, 2000 was.
    ("0 0 29 2 *", utc(2026, 1, 1), [utc(2028, 2, 29), utc(2032, 2, 29)]),
    ("0 0 29 2 *", utc(2096, 3, 1), [utc(2104, 2, 29)]),
    ("0 0 29 FEB *", utc(1999, 1, 1), [utc(2000, 2, 29)]),
    ("30 12 28-29 2 *", utc(2027, 2, 28, 12, 30), [utc(2028, 2, 28, 12, 30), utc(2028, 2, 29, 12, 30)]),
    # Both day fields restricted: either matches. Nov 2026: Fri 6th, Fri 13th.
    ("0 0 13 * FRI", utc(2026, 11, 1), [utc(2026, 11, 6), utc(2026, 11, 13), utc(2026, 11, 20)]),
    # A field starting with * is unrestricted, so both must match: odd days that are Mondays.
    ("0 0 */2 * MON", utc(2026, 11, 24), [utc(2026, 12, 7), utc(2026, 12, 21), utc(2027, 1, 11)]),
    (
        "0 12 * * FRI-SUN",
        utc(2026, 11, 27, 12, 0),
        [utc(2026, 11, 28, 12), utc(2026, 11, 29, 12), utc(2026, 12, 4, 12)],
    ),
    ("0 12 * * 7", utc(2026, 11, 27), [utc(2026, 11, 29, 12)]),
    ("59 23 31 12 *", utc(2026, 12, 31, 23, 59), [utc(2027, 12, 31, 23, 59)]),
    ("0 0 1 jan,Jul *", utc(2026, 2, 1), [utc(2026, 7, 1), utc(2027, 1, 1)]),
    ("5/20 * * * *", utc(2026, 1, 1, 0, 30), [utc(2026, 1, 1, 0, 45), utc(2026, 1, 1, 1, 5)]),
    ("@hourly", utc(2026, 1, 1, 0, 0), [utc(2026, 1, 1, 1, 0)]),
    ("@weekly", utc(2026, 11, 27), [utc(2026, 11, 29)]),
    ("@yearly", utc(2026, 11, 27), [utc(2027, 1, 1)]),
    ("@monthly", utc(2026, 11, 27), [utc(2026, 12, 1)]),
    ("@DAILY", utc(2026, 11, 27, 0, 0), [utc(2026, 11, 28)]),
]


@pytest.mark.parametrize(("line", "after", "expected"), NEXT_CASES)
def test_next_after_hand_computed(line: str, after: datetime, expected: list[datetime]) -> None:
    cron = Cron.parse(line)
    got = []
    t: datetime | None = after
    for _ in expected:
        assert t is not None
        t = cron.next_after(t)
        got.append(t)
    assert got == expected
    assert all(cron.matches(f) for f in expected)


def test_or_rule_0_0_29_2_mon_after_february() -> None:
    # Feb 2027 has no 29th; the Mondays of February still fire, and March has none.
    cron = Cron.parse("0 0 29 2 MON")
    assert cron.next_after(utc(2027, 2, 22, 0, 1)) == utc(2028, 2, 7)
    assert list(cron.firings_between(utc(2028, 2, 20), utc(2028, 3, 31))) == [
        utc(2028, 2, 21),
        utc(2028, 2, 28),
        utc(2028, 2, 29),
    ]


PREV_CASES = [
    ("0 19 * * FRI", utc(2026, 11, 27, 19, 0, 30), utc(2026, 11, 27, 19, 0)),  # at or before: same minute
    ("0 19 * * FRI", utc(2026, 11, 27, 18, 59), utc(2026, 11, 20, 19, 0)),
    ("0 0 29 2 *", utc(2100, 12, 31), utc(2096, 2, 29)),
    ("0 0 29 2 *", utc(2000, 2, 29, 0, 0), utc(2000, 2, 29)),
    ("0 0 31 * *", utc(2026, 5, 30), utc(2026, 3, 31)),
    ("0 0 1 1 *", utc(2026, 1, 1, 0, 0), utc(2026, 1, 1)),
    ("*/15 9-17 * * MON-FRI", utc(2026, 11, 30, 8, 59), utc(2026, 11, 27, 17, 45)),
    ("0 0 13 * FRI", utc(2026, 11, 19), utc(2026, 11, 13)),
    ("0 0 */2 * MON", utc(2026, 12, 6), utc(2026, 11, 23)),
]


@pytest.mark.parametrize(("line", "at", "expected"), PREV_CASES)
def test_prev_at_or_before_hand_computed(line: str, at: datetime, expected: datetime) -> None:
    assert Cron.parse(line).prev_at_or_before(at) == expected


def test_firings_between_is_half_open() -> None:
    cron = Cron.parse("0 * * * *")
    assert list(cron.firings_between(utc(2026, 1, 1, 10, 0), utc(2026, 1, 1, 13, 0))) == [
        utc(2026, 1, 1, 11),
        utc(2026, 1, 1, 12),
        utc(2026, 1, 1, 13),
    ]
    assert list(cron.firings_between(utc(2026, 1, 1, 10, 0), utc(2026, 1, 1, 10, 59))) == []
    assert list(cron.firings_between(utc(2026, 1, 1, 13, 0), utc(2026, 1, 1, 10, 0))) == []


def test_times_are_utc_naive_read_as_utc() -> None:
    cron = Cron.parse("0 19 * * FRI")
    plus_one = timezone(timedelta(hours=1))
    assert cron.next_after(datetime(2026, 11, 27, 20, 0, tzinfo=plus_one)) == utc(2026, 12, 4, 19, 0)
    assert cron.next_after(datetime(2026, 11, 27, 18, 0)) == utc(2026, 11, 27, 19, 0)
    assert cron.next_after(utc(2026, 11, 27, 18, 0)).tzinfo is UTC  # type: ignore[union-attr]
    assert stamp(datetime(2026, 11, 27, 20, 5, 59, tzinfo=plus_one)) == "20261127T1905"


def test_edges_of_time_give_none() -> None:
    assert Cron.parse("* * * * *").next_after(datetime(9999, 12, 31, 23, 59, tzinfo=UTC)) is None
    assert Cron.parse("0 0 1 1 *").next_after(datetime(9999, 6, 1, tzinfo=UTC)) is None
    assert Cron.parse("0 0 2 1 *").prev_at_or_before(datetime(1, 1, 1, 0, 0, tzinfo=UTC)) is None
    assert Cron.parse("0 0 1 1 *").prev_at_or_before(datetime(1, 1, 1, 0, 0, tzinfo=UTC)) == datetime(
        1, 1, 1, tzinfo=UTC
    )


def test_never_firing_is_rejected_and_search_stays_bounded() -> None:
    # parse refuses it; a hand-built one still terminates, with None, quickly.
    feb30 = Cron("0 0 30 2 *", (0,), (0,), frozenset({30}), (2,), frozenset(range(7)), False)
    t0 = time.perf_counter()
    assert feb30.next_after(utc(2026, 1, 1)) is None
    assert feb30.prev_at_or_before(utc(2026, 1, 1)) is None
    assert list(feb30.firings_between(utc(2026, 1, 1), utc(2030, 1, 1))) == []
    assert time.perf_counter() - t0 < 2.0


ERRORS = [
    ("", "schedule is empty; expected 5 fields: minute hour day-of-month month day-of-week"),
    ("   ", "schedule is empty; expected 5 fields: minute hour day-of-month month day-of-week"),
    ("* * * *", "schedule needs 5 fields (minute hour day-of-month month day-of-week), got 4: '* * * *'"),
    ("0 0 * * * 2026", "schedule needs 5 fields (minute hour day-of-month month day-of-week), got 6: '0 0 * * * 2026'"),
    ("0 0 30 2 *", "schedule '0 0 30 2 *' never fires: there is no day 30 in February"),
    ("0 0 30,31 FEB *", "schedule '0 0 30,31 FEB *' never fires: there is no day 30 or 31 in February"),
    ("0 0 31 4,6 *", "schedule '0 0 31 4,6 *' never fires: there is no day 31 in April or June"),
    ("60 * * * *", "minute field '60': 60 is out of range 0-59"),
    ("0 24 * * *", "hour field '24': 24 is out of range 0-23"),
    ("0 0 0 * *", "day-of-month field '0': 0 is out of range 1-31"),
    ("0 0 * 13 *", "month field '13': 13 is out of range 1-12"),
    ("0 0 * * 8", "day-of-week field '8': 8 is out of range 0-7"),
    ("0 0 * * FOO", "day-of-week field 'FOO': 'FOO' is not a number or a day name (SUN..SAT)"),
    ("0 0 * JANUARY *", "month field 'JANUARY': 'JANUARY' is not a number or a month name (JAN..DEC)"),
    ("0 0 MON * *", "day-of-month field 'MON': 'MON' is not a number"),
    ("0 0 L * *", "day-of-month field 'L': 'L' is not a number; ?, L, W and # are not supported"),
    ("0 0 ? * 1", "day-of-month field '?': '?' is not a number; ?, L, W and # are not supported"),
    (
        "0 0 * * 5#3",
        "day-of-week field '5#3': '5#3' is not a number or a day name (SUN..SAT); ?, L, W and # are not supported",
    ),
    ("-1 * * * *", "minute field '-1': '' is not a number"),
    ("5-1 * * * *", "minute field '5-1': range 5-1 goes backwards"),
    ("0 0 * * SAT-MON", "day-of-week field 'SAT-MON': range SAT-MON goes backwards"),
    ("*/0 * * * *", "minute field '*/0': step '0' must be a whole number >= 1"),
    ("*/x * * * *", "minute field '*/x': step 'x' must be a whole number >= 1"),
    ("1,,2 * * * *", "minute field '1,,2': empty list item"),
    (
        "@reboot",
        "unknown schedule shortcut '@reboot'; expected one of "
        "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly",
    ),
]


@pytest.mark.parametrize(("line", "message"), ERRORS)
def test_parse_errors_are_exact(line: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        Cron.parse(line)
    assert info.value.message == message
    assert info.value.field == "schedule"
    assert info.value.code == "validation_error"


def test_error_field_can_be_named() -> None:
    with pytest.raises(ValidationError) as info:
        Cron.parse("0 0 * *", field="leaderboards[0].reset")
    assert info.value.to_wire()["error"] == {
        "code": "validation_error",
        "message": "schedule needs 5 fields (minute hour day-of-month month day-of-week), got 4: '0 0 * *'",
        "field": "leaderboards[0].reset",
    }


def test_parse_normalises_and_folds_sunday() -> None:
    cron = Cron.parse("  0   19 *  * fri ")
    assert str(cron) == "0 19 * * fri"
    assert Cron.parse("0 0 * * 0").weekdays == Cron.parse("0 0 * * 7").weekdays == frozenset({0})
    assert Cron.parse("0 0 * * 1/2").weekdays == frozenset({1, 3, 5})
    assert Cron.parse("0 0 * * */2").weekdays == frozenset({0, 2, 4, 6})


# --- property test against a simple day-by-day reference -------------------------------------

_parts = {
    "minute": st.sampled_from(["*", "0", "*/15", "5,35", "10-20/5", "59"]),
    "hour": st.sampled_from(["*", "0", "9-17", "*/6", "23", "12,18"]),
    "dom": st.sampled_from(["*", "1", "13", "29", "31", "*/2", "1-7", "15,30"]),
    "month": st.sampled_from(["*", "2", "FEB", "1,7", "*/3", "4-6", "DEC"]),
    "dow": st.sampled_from(["*", "0", "FRI", "MON-FRI", "*/2", "6,7"]),
}


def _ref_next(cron: Cron, t: datetime, years: int = 12) -> datetime | None:
    """Scan day by day; within a matching day take the first (hour, minute) after t."""
    t = t.replace(second=0, microsecond=0)
    day = t.date()
    while day.year <= t.year + years:
        if day.month in cron.months and cron._day_ok(day.year, day.month, day.day):
            for h in cron.hours:
                for m in cron.minutes:
                    f = datetime(day.year, day.month, day.day, h, m, tzinfo=UTC)
                    if f > t:
                        return f
        day += timedelta(days=1)
    return None


def _ref_prev(cron: Cron, t: datetime, years: int = 12) -> datetime | None:
    t = t.replace(second=0, microsecond=0)
    day = t.date()
    while day.year >= t.year - years:
        if day.month in cron.months and cron._day_ok(day.year, day.month, day.day):
            for h in reversed(cron.hours):
                for m in reversed(cron.minutes):
                    f = datetime(day.year, day.month, day.day, h, m, tzinfo=UTC)
                    if f <= t:
                        return f
        day -= timedelta(days=1)
    return None


@settings(max_examples=150, deadline=None)
@given(
    minute=_parts["minute"],
    hour=_parts["hour"],
    dom=_parts["dom"],
    month=_parts["month"],
    dow=_parts["dow"],
    t=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)),
)
def test_matches_day_by_day_reference(minute: str, hour: str, dom: str, month: str, dow: str, t: datetime) -> None:
    line = f"{minute} {hour} {dom} {month} {dow}"
    try:
        cron = Cron.parse(line)
    except ValidationError as e:
        assert "never fires" in e.message
        return
    nxt = cron.next_after(t)
    ref = _ref_next(cron, t)
    if ref is not None:
        assert nxt == ref, line
        assert cron.matches(nxt)
    prev = cron.prev_at_or_before(t)
    ref_prev = _ref_prev(cron, t)
    if ref_prev is not None:
        assert prev == ref_prev, line
    if nxt is not None and prev is not None:
        assert prev <= t < nxt
        assert cron.prev_at_or_before(nxt) == nxt
        assert cron.next_after(prev) == nxt  # nothing fires in between


def test_day_rule_matches_calendar() -> None:
    cron = Cron.parse("0 0 13 * FRI")
    d = date(2026, 1, 1)
    while d.year == 2026:
        assert cron._day_ok(d.year, d.month, d.day) == (d.day == 13 or d.weekday() == 4)
        d += timedelta(days=1)
