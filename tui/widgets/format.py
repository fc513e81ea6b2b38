"""How the UI writes times and delivery states (one place, so snapshots can pin the clock)."""

from __future__ import annotations

import time

STATUS_MARKS = {"pending": "… pending", "delivered": "✓ delivered", "received": ""}


def clock_time(ts_ms: int) -> str:
    return time.strftime("%H:%M", time.localtime(ts_ms / 1000))
