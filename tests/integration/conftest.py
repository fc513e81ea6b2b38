"""Fixtures for integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.harness import Mesh


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    mesh = Mesh(tmp_path)
    yield mesh
    for name in list(mesh.daemons):
        try:
            await asyncio.wait_for(mesh.stop(name), 30)
        except TimeoutError:  # say what is stuck, rather than leave pytest-timeout to guess
            for task in asyncio.all_tasks():
                task.print_stack(limit=8)
            raise
