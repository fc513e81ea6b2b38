"""What every fuzz target shares: input generators, the Target base and its checks.

The targets are in fuzz_mesh.py (what a peer sends the mesh), fuzz_chat.py (what a peer
sends the chat and notes layers) and fuzz_local.py (what a local client sends); the runner
and the list of targets in fuzz.py.
"""

from __future__ import annotations

import asyncio
import random
import string
import time
from typing import Any

import msgpack

#: a case that takes longer than this counts as a hang
CASE_LIMIT = 5.0
NETWORK_KEY = bytes(range(32))


# -- input generators ------------------------------------------------------------


def random_bytes(rng: random.Random, max_len: int = 300) -> bytes:
    size = rng.choice((0, 1, 2, 31, 32, 33, rng.randrange(max_len + 1)))
    return rng.randbytes(size)


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """A random msgpack-able value: ints of every width, bytes, text, lists, maps."""
    kinds = ["int", "bigint", "bytes", "key", "str", "none", "bool", "float"]
    if depth < 3:
        kinds += ["list", "map"]
    kind = rng.choice(kinds)
    if kind == "int":
        return rng.randint(-3, 1100)
    if kind == "bigint":
        return rng.choice((-(2**63), 2**32, 2**32 - 1, 2**63 - 1, 2**64 - 1, -1))
    if kind == "bytes":
        return random_bytes(rng, 80)
    if kind == "key":
        return rng.randbytes(32)
    if kind == "str":
        return "".join(rng.choice(string.printable + "é€😀") for _ in range(rng.randrange(20)))
    if kind == "none":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "float":
        return rng.choice((0.5, -1e308, float("inf"), float("nan")))
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(6))]
    return {random_key(rng): random_value(rng, depth + 1) for _ in range(rng.randrange(5))}


def random_key(rng: random.Random) -> Any:
    return rng.choice(
        (rng.randint(-5, 5), rng.randbytes(32), rng.randbytes(rng.randrange(8)), "k", "addrs")
    )


def mutate(rng: random.Random, data: bytes) -> bytes:
    """A valid message, damaged: bits flipped, cut short, spliced or extended."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        if op == 0 and out:
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            del out[rng.randrange(len(out)) :]
        elif op == 2:
            i = rng.randrange(len(out) + 1)
            out[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 3 and out:
            i = rng.randrange(len(out))
            out[i] = rng.choice((0x00, 0x7F, 0x80, 0xC1, 0xDC, 0xDD, 0xDE, 0xDF, 0xFF))
        else:
            out += rng.randbytes(rng.randint(1, 16))
    return bytes(out)


def packb(value: Any) -> bytes:
    return bytes(msgpack.packb(value))


# -- targets ---------------------------------------------------------------------


class Target:
    """One decoder under fuzz. Subclasses set `name`, and implement `generate` and `check`."""

    name = ""
    #: whether `check` is a coroutine (run on the target's event loop)
    is_async = False

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = {}

    def setup(self, loop: asyncio.AbstractEventLoop) -> None:
        """Build what the decoder needs (stores, peers, a daemon); once per run."""

    def teardown(self, loop: asyncio.AbstractEventLoop) -> None:
        """Release what `setup` built."""

    def generate(self, rng: random.Random) -> Any:
        raise NotImplementedError

    def check(self, case: Any) -> str:
        """Feed one case; return the outcome ("accepted" or a counted drop reason).

        Raise AssertionError when the property does not hold; any other
        exception escaping is a finding too.
        """
        raise NotImplementedError

    def run_case(self, loop: asyncio.AbstractEventLoop, case: Any) -> str:
        started = time.monotonic()
        if self.is_async:
            outcome = loop.run_until_complete(asyncio.wait_for(self.check(case), CASE_LIMIT))
        else:
            outcome = self.check(case)
        took = time.monotonic() - started
        assert took < CASE_LIMIT, f"{self.name}: one case took {took:.1f} s"
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        return outcome


def _changed(before: dict[str, int], after: dict[str, int]) -> list[str]:
    return sorted(k for k, v in after.items() if v != before.get(k, 0))
