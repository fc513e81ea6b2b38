"""Signature checks of a burst of frames, in worker threads when the burst is large.

PyNaCl releases the GIL while it verifies, so two worker threads check a large
burst while the event loop reads and routes; a few small frames are left to
the router, which checks them inline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from collections.abc import Callable

from mesh.routing.router import check_signatures

#: a burst of at least this many frames, or bytes of frames (large envelopes come few
#: to a burst), has its signatures checked in worker threads
SIGNATURE_BATCH = 16
SIGNATURE_BATCH_BYTES = 16 * 1024
#: seconds a thread holds the GIL before one waiting gets it (Python's default is 0.005)
GIL_SWITCH_INTERVAL = 0.0005

#: a verdict per frame: True or False once checked, None when left to the router
Verdicts = list[bool | None]


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
        if len(frames) < SIGNATURE_BATCH and sum(map(len, frames)) < SIGNATURE_BATCH_BYTES:
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

    def shutdown(self) -> None:
        self._workers.shutdown(wait=False, cancel_futures=True)
