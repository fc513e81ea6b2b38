"""Threat 1, malformed input: every decoder fuzzed by hypothesis (a few hundred cases each in CI).

The targets are listed in tests/hardening/fuzz.py (defined in fuzz_mesh.py, fuzz_chat.py and
fuzz_local.py); ``python -m tests.hardening.fuzz --cases 100000`` is the long run. Here
hypothesis draws the seeds of the same generators (and shrinks them).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hardening import fuzz

CI_CASES = 200


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.mark.parametrize("factory", fuzz.TARGETS, ids=lambda f: f.name)
def test_decoder_drops_malformed_input_with_a_counted_reason(
    factory: type[fuzz.Target], loop: asyncio.AbstractEventLoop
) -> None:
    target = factory()
    target.setup(loop)
    try:

        @settings(
            max_examples=CI_CASES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(st.randoms(use_true_random=False))
        def property_holds(rng: random.Random) -> None:
            target.run_case(loop, target.generate(rng))

        property_holds()
    finally:
        target.teardown(loop)
    # the generators reach past the first check: something is dropped and something accepted
    assert sum(target.outcomes.values()) >= CI_CASES
    assert len(target.outcomes) >= 2, target.outcomes


def test_the_fuzz_runner_prints_cases_per_decoder(capsys: pytest.CaptureFixture[str]) -> None:
    figures = fuzz.run(5, seed=3, only=["envelope", "inventory"])
    assert {name: f["cases"] for name, f in figures.items()} == {"envelope": 5, "inventory": 5}
    out = capsys.readouterr().out
    assert "envelope" in out and "5 cases" in out
