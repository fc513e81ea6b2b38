"""How the UI writes times and delivery states (one place, so snapshots can pin the clock)."""

from __future__ import annotations

import time

STATUS_MARKS = {"pending": "… pending", "delivered": "✓ delivered", "received": ""}


def clock_time(ts_ms: int) -> str:
    return time.strftime("%H:%M", time.localtime(ts_ms / 1000))


def ago(ts: float, now: float | None = None) -> str:
    """How long ago wall-clock time `ts` was: 'just now', '5 min ago', '3 h ago', '2 d ago'."""
    seconds = max(0.0, (time.time() if now is None else now) - ts)
    if seconds < 60:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def seen_text(presence: dict[str, object]) -> str:
    """'online', 'seen 5 min ago', 'never seen': a peer's presence in a few words."""
    if presence.get("online"):
        return "online"
    seen = presence.get("last_seen")
    return "never seen" if not isinstance(seen, int | float) else "seen " + ago(seen)
