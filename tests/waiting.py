"""Conditions with deadlines instead of sleeps: what every test waits with."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

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
