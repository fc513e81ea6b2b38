"""Event-loop lag: how late a task that sleeps a fixed interval wakes up, over the last minute.

Anything that holds the event loop (a long query, a large answer built in one
go) delays every other task by as long: the control socket, the links, the
timers. :class:`LagWindow` keeps the overshoot samples of the last `window`
seconds (bounded: at most ``window / interval`` samples, one per wake-up) and
reports their p99 and max; the node runs :func:`watch_loop` beside its other
tasks and shows ``loop_lag_ms`` in ``status --json``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

#: seconds the watching task sleeps between samples
LAG_INTERVAL = 0.1
#: seconds of samples kept (the figures in ``status`` are over this window)
LAG_WINDOW = 60.0


class LagWindow:
    """Lag samples (seconds late) of the last `window` seconds; sans-I/O, `now` passed in."""

    def __init__(self, window: float = LAG_WINDOW, interval: float = LAG_INTERVAL) -> None:
        self.window = window
        # one sample per wake-up; a stalled loop wakes less often, never more
        self._samples: deque[tuple[float, float]] = deque(maxlen=int(window / interval) + 1)

    def add(self, now: float, lag: float) -> None:
        self._samples.append((now, max(0.0, lag)))
        self._expire(now)

    def _expire(self, now: float) -> None:
        while self._samples and self._samples[0][0] < now - self.window:
            self._samples.popleft()

    def summary(self, now: float) -> dict[str, float | int]:
        """{"p99": ms, "max": ms, "samples": n} over the window (zeros when empty)."""
        self._expire(now)
        lags = sorted(lag for _, lag in self._samples)
        if not lags:
            return {"p99": 0.0, "max": 0.0, "samples": 0}
        p99 = lags[min(len(lags) - 1, math.ceil(0.99 * len(lags)) - 1)]
        return {"p99": round(p99 * 1000, 1), "max": round(lags[-1] * 1000, 1), "samples": len(lags)}


async def watch_loop(
    window: LagWindow,
    interval: float = LAG_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Sleep `interval` again and again and record in `window` how late each wake-up was."""
    while True:
        started = clock()
        await asyncio.sleep(interval)
        woke = clock()
        window.add(woke, woke - started - interval)
