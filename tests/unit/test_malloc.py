"""glibc malloc settings (cairn/malloc.py): an operator's MALLOC_ARENA_MAX wins; both are no-ops off glibc."""

from __future__ import annotations

from cairn import malloc


def test_an_operators_malloc_arena_max_is_left_alone() -> None:
    assert malloc.limit_arenas({"MALLOC_ARENA_MAX": "8"}) is False


def test_trim_reports_whether_the_c_library_has_it() -> None:
    assert malloc.trim() is (malloc._libc() is not None)
