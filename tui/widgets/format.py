"""How the UI writes times and delivery states (one place, so snapshots can pin the clock)."""

from __future__ import annotations

import time
from typing import Any

from chat.files.export import human_size

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


def escape(text: str) -> str:
    """`text` shown as it is, not read as Textual markup."""
    return text.replace("[", r"\[")


#: characters of the bar at the head of a progress line
BAR_WIDTH = 10


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """'▕████▌     ▏': how much of `total` is done, in eighths of a character."""
    eighths = width * 8 * min(done, total) // max(1, total)
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if full < width else ""
    return "▕" + "█" * full + partial + " " * (width - full - len(partial)) + "▏"


def progress_line(shown: dict[str, Any], with_bar: bool = True) -> str:
    """'▕████▌     ▏ name: 45% of 27.0 MiB, 3.2 MiB/s, 4 s left': a fetch's (or, 'sealing
    name: ...', a send's) progress, from files list's fields (`with_bar`: the bar first)."""
    share = 100 * shown["have_bytes"] // max(1, shown["size"])
    line = f"{shown['name']}: {share}% of {human_size(shown['size'])}"
    if shown["state"] == "sealing":
        line = f"sealing {line}"
    if with_bar:
        line = f"{bar(shown['have_bytes'], shown['size'])} {line}"
    if shown.get("rate"):
        line += f", {human_size(shown['rate'])}/s"
    if shown.get("eta_s") is not None:
        line += f", {shown['eta_s']:.0f} s left"
    elif shown["state"] == "fetching" and not shown.get("holders"):
        line += ", looking for a peer that holds it"
    return line


#: what each state of an attachment reads as under its message
FILE_STATES = {
    "offered": "not fetched: o opens it (f fetches), or meshnotes files get ID OUT",
    "fetching": "arriving",
    "complete": "here: o opens it (s saves), or meshnotes files get ID OUT",
    "over_budget": "too large for the file budget",
    "evicted": "dropped for room: o opens it (f fetches it again)",
}


def attachment_text(file: dict[str, Any], draws: bool = False) -> str:
    """A message's attachment on screen: the file's name, size and state, and for a picture
    a placeholder where the terminal draws none (`draws`: it does, under the message)."""
    kind = "picture" if str(file["mime"]).startswith("image/") else "file"
    state = FILE_STATES.get(file["state"], file["state"]).replace("ID", file["file_id"][:12])
    if file["state"] == "fetching":
        state = f"arriving, {100 * file['have_bytes'] // max(1, file['size'])}%"
    icon = "🖼" if kind == "picture" else "📎"
    preview = "  (no preview in this terminal)" if kind == "picture" and not draws else ""
    return f"{icon} {kind}: {file['name']} ({human_size(file['size'])}) — {state}{preview}"
