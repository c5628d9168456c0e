"""Suite order: the Java client's build (a Maven run of about a minute, mostly waiting on the servers
its JUnit tests start) runs in the background alongside the unit tests, and its test, last, joins it."""

from __future__ import annotations

import pytest

JAVA_TEST = "tests/e2e/test_java_client.py"


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    java = [i for i in items if i.nodeid.startswith(JAVA_TEST)]
    if not java:
        return
    rest = [i for i in items if not i.nodeid.startswith(JAVA_TEST)]
    items[:] = rest + java
    unit = next((i for i in rest if i.nodeid.startswith("tests/unit/")), None)
    if unit is not None:
        config.stash[_START_AT] = unit.nodeid


_START_AT = pytest.StashKey[str]()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.config.stash.get(_START_AT, None) == item.nodeid:
        from tests.e2e.test_java_client import Build

        Build.start()
