"""Signature checks of a burst: inline for a few small frames, in worker threads for many."""

from __future__ import annotations

from mesh.runtime.signatures import SIGNATURE_BATCH, Checked, SignatureChecker
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType, wire_message_id
from mesh.wire.identity import Identity


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
        assert checking.done() and checking.result() == Checked([None] * 3, [None] * 3)
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
        checked = await checker.check(burst)
        assert checked.verdicts == [i != 5 for i in range(len(burst))]
        assert checked.ids == [wire_message_id(frame) for frame in burst]
        assert counters == {"signatures_checked_in_workers": len(burst)}
    finally:
        checker.shutdown()
