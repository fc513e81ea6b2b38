"""Signature checks of a burst: inline for a few small frames, in worker threads for many."""

from __future__ import annotations

import asyncio
import threading

import pytest

from mesh.errors import FrameError
from mesh.runtime.signatures import SIGNATURE_BATCH, SignatureChecker
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity
from mesh.wire.link import Link
from mesh.wire.netkey import DEFAULT_NETWORK_KEY


def frames(count: int) -> list[bytes]:
    author = Identity.from_seed(b"a" * 32)
    return [
        Envelope.create(
            author,
            EnvelopeType.DATA,
            dest_kind=DestKind.PEER,
            dest=b"d" * 32,
            timestamp_ms=1,
            seq=i + 1,
            payload=b"x",
        ).encode()
        for i in range(count)
    ]


async def test_a_few_small_frames_are_left_to_the_router() -> None:
    counters: dict[str, int] = {}
    checker = SignatureChecker(lambda name, by: counters.update({name: by}))
    try:
        checking = checker.check(frames(3))
        assert checking.done() and checking.result() == [None, None, None]
        assert counters == {}
    finally:
        checker.shutdown()


async def test_a_large_burst_is_checked_in_workers_in_order() -> None:
    counters: dict[str, int] = {}
    checker = SignatureChecker(lambda name, by: counters.update({name: by}))
    burst = frames(SIGNATURE_BATCH + 1)
    forged = bytearray(burst[5])
    forged[-1] ^= 1  # the signature is last
    burst[5] = bytes(forged)
    try:
        verdicts = await checker.check(burst)
        assert verdicts == [i != 5 for i in range(len(burst))]
        assert counters == {"signatures_checked_in_workers": len(burst)}
    finally:
        checker.shutdown()


async def test_a_read_waiting_for_one_that_never_opens_gives_up_once_its_link_closed() -> None:
    """Taking a link down cancels its queued reads: one already in a worker, waiting for an
    earlier one to open, must not hold that worker forever."""
    checker = SignatureChecker(lambda name, by: None)
    link = Link(network_key=DEFAULT_NETWORK_KEY, identity=Identity.from_seed(b"l" * 32), now=0.0)
    never, opened = threading.Event(), threading.Event()
    try:
        waiting = checker.open_and_check(link, b"x" * 100, 0.0, never, opened)
        link.close()
        with pytest.raises(FrameError):
            await asyncio.wait_for(waiting, 60)
        assert opened.is_set()  # and the read after it may go on
    finally:
        checker.shutdown()
