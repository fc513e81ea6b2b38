"""Figures of the fault tests, written where tests/hardening/full.py asks (MESHNOTES_FIGURES)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

FIGURES: dict[str, object] = {}


def record(name: str, value: object) -> None:
    """Keep one figure of a fault test for the full run's summary."""
    FIGURES[name] = value


@pytest.fixture(scope="session", autouse=True)
def _write_figures() -> Iterator[None]:
    yield
    target = os.environ.get("MESHNOTES_FIGURES")
    if target and FIGURES:
        Path(target).write_text(json.dumps(FIGURES, indent=2))
