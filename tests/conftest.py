"""Shared test helpers: conditions with deadlines instead of sleeps, and a mesh of daemons."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.waiting import TIMEOUT_SCALE, deadline, wait_until

if TYPE_CHECKING:
    from tests.integration.harness import Mesh

__all__ = ["TIMEOUT_SCALE", "deadline", "wait_until"]


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
