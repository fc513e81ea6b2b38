"""Listeners: how a layer reports events up (to a front end) without trusting its code."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

Listener = Callable[[str, dict[str, Any]], None]


class Listeners(list[Listener]):
    """Callbacks ``fn(kind, data)``; one that raises is logged and counted, and the rest still run.

    A front end's bug must not break delivery: the event that reached the layer
    stays stored and receipted whatever a listener does.
    """

    def __init__(self, log: logging.Logger, counters: dict[str, int]) -> None:
        super().__init__()
        self._log = log
        self._counters = counters

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        for listener in list(self):
            try:
                listener(kind, data)
            except Exception:
                self._counters["listener_errors"] = self._counters.get("listener_errors", 0) + 1
                self._log.exception("a listener failed on %s", kind)
