"""Tests for mesh.runtime.memory: heap trims only after traffic, at most every interval."""

from __future__ import annotations

import pytest

from mesh.runtime import memory
from mesh.runtime.memory import TRIM_INTERVAL, HeapTrimmer

pytestmark = pytest.mark.skipif(memory._LIBC is None, reason="glibc's malloc_trim is not here")


def test_the_heap_is_trimmed_after_traffic_and_not_more_often_than_the_interval() -> None:
    heap = HeapTrimmer()
    heap.tick(100.0)
    assert heap.trims == 0  # nothing happened: nothing to give back
    heap.busy = True
    heap.tick(100.0)
    assert heap.trims == 1 and not heap.busy
    heap.busy = True
    heap.tick(100.0 + TRIM_INTERVAL / 2)
    assert heap.trims == 1  # too soon: it waits, still marked busy
    heap.tick(100.0 + TRIM_INTERVAL)
    assert heap.trims == 2
