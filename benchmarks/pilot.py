"""Timing the terminal UI headless, under Textual's Pilot: from an action to the frame
that shows its result.

:class:`FrameClock` wraps the app's display call (what writes a frame to the
terminal; headless, it writes nothing) and notes the moment the first frame
after an action is composed with the action's result in it. :func:`ui` runs the
product's app on a fresh home's own in-process node (a
:class:`tui.session.LocalSession`, loopback only, no dialing).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from textual import events
from textual.pilot import Pilot

from mesh.runtime.home import Home
from mesh.runtime.node import NodeConfig
from tui.app import MeshnotesApp
from tui.main_screen import MainScreen
from tui.session import LocalSession

SIZE = (120, 40)


class FrameClock:
    """The moments frames are painted, for timing an action up to its frame."""

    def __init__(self, app: MeshnotesApp) -> None:
        self._display = app._display
        self._shows: Callable[[], bool] | None = None
        self._painted = asyncio.Event()
        self._at = 0.0
        app._display = self._frame  # type: ignore[method-assign]
        self.app = app

    def _frame(self, screen: Any, renderable: Any) -> None:
        self._display(screen, renderable)
        if renderable is not None and self._shows is not None and self._shows():
            self._at = time.perf_counter()
            self._shows = None
            self._painted.set()

    async def time(
        self, action: Callable[[], object], shows: Callable[[], bool], timeout: float = 60.0
    ) -> tuple[float, float]:
        """(wall, CPU) seconds from calling `action` to the first frame painted once
        `shows()` holds."""
        self._painted.clear()
        self._shows = shows
        cpu, start = time.process_time(), time.perf_counter()
        action()
        await asyncio.wait_for(self._painted.wait(), timeout)
        return self._at - start, time.process_time() - cpu

    async def key(self, key: str, shows: Callable[[], bool]) -> tuple[float, float]:
        """Time one key press (as the terminal driver delivers it) to its frame."""
        driver = self.app._driver
        assert driver is not None
        character = key if len(key) == 1 else None
        return await self.time(lambda: driver.send_message(events.Key(key, character)), shows)


@contextlib.asynccontextmanager
async def ui(home: Path) -> AsyncIterator[tuple[LocalSession, MeshnotesApp, Pilot[Any]]]:
    """The UI on `home` (made if need be) with its node in the process, headless."""
    config = NodeConfig(listen=("127.0.0.1", 0), auto_connect=False)
    session = LocalSession.for_home(Home(home), config, name="bench")
    await session.start()
    try:
        app = MeshnotesApp(session, own_session=False)
        async with app.run_test(size=SIZE) as pilot:
            assert isinstance(app.screen, MainScreen)
            await pilot.pause()
            yield session, app, pilot
    finally:
        await session.stop()
