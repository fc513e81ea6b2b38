"""The crypto of a link's traffic in worker threads: opens, signature checks, seals.

PyNaCl releases the GIL while it verifies, opens and seals, so two worker
threads do that work for large reads and bursts while the event loop reads
and routes; a few small frames are left to the router, which checks them
inline, and small reads are opened on the loop.

A link's reads must be opened in the order they came (box-stream nonces
count up). :meth:`SignatureChecker.open_and_check` lets two reads of one link
be in the workers at once: the later one waits for the earlier one's open (an
event), then opens, and then both check signatures side by side. No wait can
deadlock: the executor takes work in the order it was given, so the read
waited for was taken before, and is running or done.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
from collections.abc import Callable

from mesh.routing.router import check_signatures
from mesh.wire.link import Link

#: a burst of at least this many frames, or bytes of frames (large envelopes come few
#: to a burst), has its signatures checked in worker threads
SIGNATURE_BATCH = 16
SIGNATURE_BATCH_BYTES = 16 * 1024
#: seconds a thread holds the GIL before one waiting gets it (Python's default is 0.005)
GIL_SWITCH_INTERVAL = 0.0005

#: a verdict per frame: True or False once checked, None when left to the router
Verdicts = list[bool | None]
#: the frames a read opened, with their verdicts
Opened = tuple[list[bytes], Verdicts]


def share_the_gil() -> None:
    """Let the signature workers have the GIL back soon after every check.

    At the default 5 ms switch interval they wait on the event loop's routing
    for most of a burst.
    """
    if sys.getswitchinterval() > GIL_SWITCH_INTERVAL:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)


class SignatureChecker:
    """Two worker threads checking the signatures of large bursts."""

    def __init__(self, count: Callable[[str, int], None]) -> None:
        self._count = count  # the router's counters
        self._workers = concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="meshnotes-verify"
        )

    def check(self, frames: list[bytes]) -> asyncio.Future[Verdicts]:
        """Start the checks of a burst; the future is already done when they are left to
        the router (every verdict None)."""
        loop = asyncio.get_running_loop()
        if _small(frames):
            done: asyncio.Future[Verdicts] = loop.create_future()
            done.set_result([None] * len(frames))
            return done
        self._count("signatures_checked_in_workers", len(frames))
        half = (len(frames) + 1) // 2
        parts = [frames[:half], frames[half:]] if len(frames) > 1 else [frames]
        checks = [loop.run_in_executor(self._workers, check_signatures, part) for part in parts]

        async def joined() -> Verdicts:
            return [verdict for part in await asyncio.gather(*checks) for verdict in part]

        return asyncio.ensure_future(joined())

    def open_and_check(
        self,
        link: Link,
        data: bytes,
        now: float,
        after: threading.Event | None,
        opened: threading.Event,
    ) -> asyncio.Future[Opened]:
        """Open a read of an open link in a worker, after the read before it (`after`, set
        once that one is opened), then check the signatures of the frames; `opened` is set
        once this read is opened, even if that fails. The future raises what the link
        raised (a :class:`~mesh.errors.ProtocolError` when the peer broke the protocol)."""
        self._count("reads_opened_in_workers", 1)
        work = asyncio.get_running_loop().run_in_executor(
            self._workers, _open_and_check, link, data, now, after, opened
        )

        async def counted() -> Opened:
            frames, verdicts = await work
            if not _small(frames):  # counted here, on the loop: the counters are not shared
                self._count("signatures_checked_in_workers", len(frames))
            return frames, verdicts

        return asyncio.ensure_future(counted())

    def seal(self, link: Link) -> asyncio.Future[None]:
        """Seal the frames queued on `link` in a worker (see :meth:`Link.seal`)."""
        return asyncio.get_running_loop().run_in_executor(self._workers, link.seal)

    def shutdown(self) -> None:
        self._workers.shutdown(wait=False, cancel_futures=True)


def _small(frames: list[bytes]) -> bool:
    """Few and small frames: not worth a worker."""
    return len(frames) < SIGNATURE_BATCH and sum(map(len, frames)) < SIGNATURE_BATCH_BYTES


def _open_and_check(
    link: Link, data: bytes, now: float, after: threading.Event | None, opened: threading.Event
) -> Opened:
    try:
        if after is not None:
            after.wait()
        frames = link.receive_data(data, now)
    finally:
        opened.set()
    if _small(frames):
        return frames, [None] * len(frames)
    return frames, check_signatures(frames)
