"""The links' crypto in worker threads: signature checks of bursts, box-stream opens and seals.

PyNaCl releases the GIL while it verifies, opens and seals (and hashlib while
it hashes a large envelope), so two worker threads do that work for large
bursts while the event loop reads and routes; a few small frames are left
to the router, which checks them inline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from mesh.routing.router import check_signatures
from mesh.wire.envelope import wire_message_id

#: a burst of at least this many frames, or bytes of frames (large envelopes come few
#: to a burst), has its signatures checked in worker threads
SIGNATURE_BATCH = 16
SIGNATURE_BATCH_BYTES = 16 * 1024
#: a websocket message of at least this many bytes is opened in a worker thread, and
#: frames queued on a link to at least this many bytes are sealed in one
OPEN_IN_WORKER = 8 * 1024
SEAL_IN_WORKER = 8 * 1024
#: seconds a thread holds the GIL before one waiting gets it (Python's default is 0.005)
GIL_SWITCH_INTERVAL = 0.0005

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Checked:
    """What the workers found for a burst of frames, frame by frame.

    `verdicts`: True or False once checked, None when left to the router;
    `ids`: each frame's message id (``wire_message_id``), None when left to the router.
    """

    verdicts: list[bool | None]
    ids: list[bytes | None]


def share_the_gil() -> None:
    """Let the worker threads have the GIL back soon after every check.

    At the default 5 ms switch interval they wait on the event loop's routing
    for most of a burst.
    """
    if sys.getswitchinterval() > GIL_SWITCH_INTERVAL:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)


def worth_a_worker(frames: list[bytes]) -> bool:
    """Whether a burst is large enough to have its signatures checked in a worker thread."""
    return len(frames) >= SIGNATURE_BATCH or sum(map(len, frames)) >= SIGNATURE_BATCH_BYTES


def left_to_the_router(frames: list[bytes]) -> Checked:
    """No verdicts and no ids: the router checks and hashes these frames itself."""
    nothing: list[None] = [None] * len(frames)
    return Checked(list(nothing), list(nothing))


def check_and_hash(frames: list[bytes]) -> Checked:
    """Signature verdicts and message ids of encoded envelopes (thread-safe, pure)."""
    return Checked(check_signatures(frames), [wire_message_id(frame) for frame in frames])


class SignatureChecker:
    """Two worker threads doing the links' crypto for large bursts."""

    def __init__(self, count: Callable[[str, int], None]) -> None:
        self._count = count  # the router's counters
        self._workers = concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="meshnotes-crypto"
        )

    def check(self, frames: list[bytes]) -> asyncio.Future[Checked]:
        """Start the checks of a burst; the future is already done when they are left to
        the router (every verdict and id None)."""
        loop = asyncio.get_running_loop()
        if not worth_a_worker(frames):
            done: asyncio.Future[Checked] = loop.create_future()
            done.set_result(left_to_the_router(frames))
            return done
        self._count("signatures_checked_in_workers", len(frames))
        half = (len(frames) + 1) // 2
        parts = [frames[:half], frames[half:]] if len(frames) > 1 else [frames]
        checks = [loop.run_in_executor(self._workers, check_and_hash, part) for part in parts]

        async def joined() -> Checked:
            done = await asyncio.gather(*checks)
            return Checked(
                [v for part in done for v in part.verdicts], [i for part in done for i in part.ids]
            )

        return asyncio.ensure_future(joined())

    def run(self, work: Callable[[], T]) -> asyncio.Future[T]:
        """Run `work` (an open or a seal of one link, which keeps their order) in a worker."""
        return asyncio.get_running_loop().run_in_executor(self._workers, work)

    def shutdown(self) -> None:
        self._workers.shutdown(wait=False, cancel_futures=True)
