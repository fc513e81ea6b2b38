"""The editing traces shipped with the tests (see tests/data/editing-traces/README.md)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

TRACES = Path(__file__).resolve().parent / "data" / "editing-traces"


def load_trace(name: str) -> dict[str, Any]:
    """A trace by name: {startContent, endContent, txns: [{patches: [[pos, del, ins]]}]}."""
    with gzip.open(TRACES / f"{name}.json.gz") as handle:
        trace: dict[str, Any] = json.load(handle)
    return trace
