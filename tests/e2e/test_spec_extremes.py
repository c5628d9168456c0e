"""Hunt creation is all or nothing: hypothesis-made specs with extreme times against a real server.

Every answer is a 201 or a 4xx, and afterwards the hunt list, each hunt and the dashboard still
answer, listing exactly the hunts that were created.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import ADMIN, CairnServer

UNITS = ["ms", "s", "m", "h", "d", "w"]
durations = st.one_of(
    st.sampled_from(["1h", "0s", "99999999999h", "3660d", "3661d", "522w", "523w", "1ms", "10m", "9" * 31 + "s"]),
    st.builds(lambda n, u: f"{n}{u}", st.integers(0, 10**30), st.sampled_from(UNITS)),
)
zones = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-14))])
starts = st.one_of(
    st.none(),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=zones),
    st.builds(lambda s: datetime.now(UTC) + timedelta(seconds=s), st.integers(-7200, 7200)),
)
crons = st.sampled_from([None, None, "* * * * *", "0 0 29 2 *", "59 23 31 12 *", "@yearly", "0 0 1 1 MON"])
ids = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CairnServer]:
    srv = CairnServer(tmp_path_factory.mktemp("extremes") / "data")
    srv.start()
    yield srv
    srv.kill()


def make_spec(hunt_id: str, duration: str, start: datetime | None, window: str, cooldown: str, solve_by: str | None,
              schedule: str | None, concurrent: int) -> dict[str, Any]:  # fmt: skip
    spec: dict[str, Any] = {
        "id": hunt_id, "treasures": 1, "duration": duration, "max_concurrent": concurrent,
        "area": {"min": [-300, -64, -300], "max": [300, 320, 300]}, "spawn": {"tags_any": ["surface"]},
        "prize": {"mode": "shared_bounty", "window": window, "pool": 10},
        "hints": {"cooldown": cooldown, **({"solve_by": solve_by} if solve_by else {})},
    }  # fmt: skip
    if start is not None:
        spec["starts_at"] = start.isoformat()
    if schedule is not None:
        spec["schedule"] = schedule
    return spec


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(duration=durations, start=starts, window=durations, cooldown=durations,
       solve_by=st.one_of(st.none(), durations), schedule=crons, concurrent=st.integers(1, 1000))  # fmt: skip
def test_spec_creation_is_all_or_nothing_at_extreme_times(
    server: CairnServer, duration: str, start: datetime | None, window: str, cooldown: str, solve_by: str | None,
    schedule: str | None, concurrent: int,
) -> None:  # fmt: skip
    hunt_id = f"x{next(ids)}"
    spec = make_spec(hunt_id, duration, start, window, cooldown, solve_by, schedule, concurrent)
    status, body, _ = server.request("POST", "/v1/hunts", spec, key=ADMIN)
    assert status in (200, 201) or (400 <= status < 500 and body["error"]["code"]), (spec, status, body)
    status_list, listed, _ = server.request("GET", "/v1/hunts")
    assert status_list == 200, listed
    names = {h["id"] for h in listed["hunts"]}
    if schedule is not None:
        pass  # a recurring spec is registered; its instances are made by the clock
    elif status == 201:
        assert hunt_id in names
        assert server.request("GET", f"/v1/hunts/{hunt_id}")[0] == 200
    else:
        assert hunt_id not in names, (spec, status, body)  # refused: nothing of it is left
    assert server.request("GET", "/v1/dashboard/hunts", key=ADMIN)[0] == 200


def test_the_reported_huge_duration_is_a_422_and_leaves_nothing(tmp_path: Path) -> None:
    srv = CairnServer(tmp_path / "data")
    srv.start()
    try:
        spec = make_spec("huge", "99999999999h", None, "10m", "30s", None, None, 1)
        status, body, _ = srv.request("POST", "/v1/hunts", spec, key=ADMIN)
        assert status == 422 and body["error"] == {
            "code": "validation_error", "field": "duration",
            "message": "duration: '99999999999h' is longer than ten years (3660d)",
        }  # fmt: skip
        assert srv.request("GET", "/v1/hunts")[:2] == (200, {"hunts": []})
        assert srv.request("GET", "/v1/dashboard/hunts", key=ADMIN)[0] == 200
        assert "internal error" not in srv.log.read_text()
    finally:
        srv.kill()
