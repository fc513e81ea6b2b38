"""Websocket messages of one link opened in worker threads: in turn, whatever the threads do."""

from __future__ import annotations

import concurrent.futures
import time

import pytest

from mesh.errors import ProtocolError
from mesh.runtime.opening import InOrder
from mesh.runtime.signatures import SIGNATURE_BATCH
from mesh.wire.envelope import wire_message_id
from mesh.wire.link import Link
from tests.mesh.runtime.test_signatures import frames
from tests.mesh.wire.test_link import open_pair


def sealed_bursts(count: int) -> tuple[Link, list[list[bytes]], list[bytes]]:
    """A server link, and `count` bursts of frames its client sent, as sealed on the wire."""
    client, server = open_pair()
    bursts = [frames(SIGNATURE_BATCH + 4)[i::3] for i in range(count)]
    wire = []
    for burst in bursts:
        for frame in burst:
            client.send(frame, 1.0)
        wire.append(client.data_to_send())
    return server, bursts, wire


def test_a_job_whose_turn_has_not_come_waits_for_the_one_read_before_it() -> None:
    """The second message's job starts first: it waits, and opens once the first has
    (opened first, its box-stream header could not even be authenticated)."""
    server, bursts, wire = sealed_bursts(2)
    order = InOrder()
    first, second = order.ticket(), order.ticket()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        later = pool.submit(order.open, second, server, wire[1], 1.0)
        deadline = time.monotonic() + 30
        while not order._turn._waiters:  # type: ignore[attr-defined]  # it waits its turn
            assert time.monotonic() < deadline and not later.done()
            time.sleep(0.001)
        assert order.pending == 2
        opened = [order.open(first, server, wire[0], 1.0), later.result(timeout=30)]
    assert order.pending == 0
    assert [o.frames for o in opened] == bursts
    assert not opened[0].in_worker and opened[0].checked.verdicts == [None] * len(bursts[0])


def test_jobs_taken_in_the_order_read_by_two_workers_all_open_in_order() -> None:
    server, bursts, wire = sealed_bursts(30)
    order = InOrder()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(order.open, order.ticket(), server, data, 1.0) for data in wire]
        assert [job.result(timeout=60).frames for job in jobs] == bursts


def test_a_large_burst_is_checked_and_hashed_in_the_worker() -> None:
    client, server = open_pair()
    burst = frames(SIGNATURE_BATCH)
    for frame in burst:
        client.send(frame, 1.0)
    order = InOrder()
    opened = order.open(order.ticket(), server, client.data_to_send(), 1.0)
    assert opened.in_worker and opened.frames == burst
    assert opened.checked.verdicts == [True] * len(burst)
    assert opened.checked.ids == [wire_message_id(frame) for frame in burst]


def test_a_job_waiting_for_a_turn_that_never_comes_gives_up_when_the_link_closes() -> None:
    """The job before it was cancelled before it ran (the link went down, or the node
    stopped): without the close it would hold its worker forever, and the node's exit
    would wait for that thread."""
    server, _, wire = sealed_bursts(2)
    order = InOrder()
    order.ticket()  # its job is cancelled before it runs: this turn never comes
    second = order.ticket()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        stuck = pool.submit(order.open, second, server, wire[1], 1.0)
        deadline = time.monotonic() + 30
        while not order._turn._waiters:  # type: ignore[attr-defined]
            assert time.monotonic() < deadline and not stuck.done()
            time.sleep(0.001)
        order.close()
        with pytest.raises(ProtocolError, match="went down"):
            stuck.result(timeout=30)
