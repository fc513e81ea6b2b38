"""Shared test helpers: conditions with deadlines instead of sleeps, and a mesh of daemons."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.integration.harness import Mesh

#: multiply every test deadline by this (slow or loaded machines)
TIMEOUT_SCALE = float(os.environ.get("MESHNOTES_TEST_TIMEOUT_SCALE", "1"))


def deadline(seconds: float) -> float:
    return time.monotonic() + seconds * TIMEOUT_SCALE


async def wait_until(
    condition: Callable[[], object], timeout: float = 10.0, what: str = ""
) -> None:
    """Poll `condition` until it is true; fail the test after `timeout` (scaled) seconds."""
    end = deadline(timeout)
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    """A mesh of daemons (real homes and websockets on loopback), stopped after the test."""
    from tests.integration.harness import Mesh

    mesh = Mesh(tmp_path)
    yield mesh
    for name in list(mesh.daemons):
        try:
            await asyncio.wait_for(mesh.stop(name), 30)
        except TimeoutError:  # say what is stuck, rather than leave pytest-timeout to guess
            for task in asyncio.all_tasks():
                task.print_stack(limit=8)
            raise
