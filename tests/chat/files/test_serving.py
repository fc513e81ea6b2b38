"""Serving chunks: who is answered, at what rate per peer and per link, and partial holders."""

from __future__ import annotations

from typing import Any, cast

from chat.files import wire
from chat.files.format import Descriptor
from chat.files.holdings import Holdings
from chat.files.serving import HAVE_INTERVAL, Server, ServingConfig
from mesh.runtime.answers import AnswerLimits, LinkBudget

ROOT = bytes(range(32))
FILE_ID = ROOT.hex()
A, B, C, STRANGER = b"a" * 32, b"b" * 32, b"c" * 32, b"s" * 32


class Kept:
    """A store of one 10-chunk file, whole or in part: what the server reads of Holdings."""

    def __init__(self, state: str) -> None:
        self.state = state
        self.desc = Descriptor("f.bin", 10 * 65536, "application/octet-stream", ROOT, b"k" * 32)

    def row(self, file_id: str) -> dict[str, Any] | None:
        if file_id != FILE_ID:
            return None
        return {"file_id": FILE_ID, "conv_id": "room", "state": self.state, "root": ROOT}

    def descriptor(self, row: dict[str, Any]) -> Descriptor:
        return self.desc

    def read_chunk(self, descriptor: Descriptor, index: int) -> tuple[bytes, list[bytes]]:
        return b"whole%-16d" % index, []

    def read_part_chunk(self, descriptor: Descriptor, index: int) -> tuple[bytes, list[bytes]]:
        return b"part%-16d" % index, []


class Rig:
    def __init__(self, state: str = "complete", **rates: float) -> None:
        self.kept = Kept(state)
        self.sent: list[tuple[bytes, wire.Message]] = []
        self.counters: dict[str, int] = {}
        self.held: set[int] = {1, 2}
        #: every member but the stranger reaches this node over link 7
        self.links = {A: 7, B: 7, C: 8}
        self.server = Server(
            cast(Holdings, self.kept),
            ServingConfig(**rates),
            members=lambda conv: {A, B, C},
            partial=lambda file_id: set(self.held),
            link_to=self.links.get,
            send=lambda peer, payload: self.sent.append((peer, wire.decode(payload))),
            count=lambda name, by: self.counters.__setitem__(name, self.counters.get(name, 0) + by),
        )

    def take(self) -> list[tuple[bytes, wire.Message]]:
        sent, self.sent = self.sent, []
        return sent


def chunks(sent: list[tuple[bytes, wire.Message]]) -> list[tuple[bytes, int]]:
    return [(peer, m.index) for peer, m in sent if isinstance(m, wire.Chunk)]


def test_requests_are_limited_per_link_across_the_peers_behind_it() -> None:
    rig = Rig(request_rate=100.0, request_burst=8.0, link_rate=100.0, link_burst=10.0)
    rig.server.on_want(A, wire.Want.of(ROOT, list(range(6))), now=0.0)
    assert len(chunks(rig.take())) == 6
    # B has its own peer budget, but shares link 7 with A: 4 chunks are left on it
    rig.server.on_want(B, wire.Want.of(ROOT, list(range(6))), now=0.0)
    assert [m for _, m in rig.take()] == [wire.Refuse(ROOT, "busy")]
    assert rig.counters["files_refused_busy_link"] == 1
    rig.server.on_want(B, wire.Want.of(ROOT, [0, 1, 2, 3]), now=0.0)
    assert chunks(rig.take()) == [(B, 0), (B, 1), (B, 2), (B, 3)]  # B's refusal cost B nothing
    # C comes over link 8: untouched by what links 7 spent
    rig.server.on_want(C, wire.Want.of(ROOT, list(range(6))), now=0.0)
    assert len(chunks(rig.take())) == 6
    rig.server.on_want(A, wire.Want.of(ROOT, [9]), now=0.05)  # refilled at 100 a second
    assert chunks(rig.take()) == [(A, 9)]


def test_chunks_spend_the_links_answer_budget_with_its_free_requests() -> None:
    rig = Rig()
    free = AnswerLimits(bytes_per_s=100.0, bytes_burst=100.0, cpu_per_s=0.1, cpu_burst=0.25)
    total = AnswerLimits(bytes_per_s=1000.0, bytes_burst=1000.0, cpu_per_s=0.1, cpu_burst=0.25)
    budgets = {link: LinkBudget(free, now=0.0, total=total) for link in (7, 8)}
    # the timer's readings at the start and end of each answer: the loop time it takes
    ticks = iter([0.0, 0.01, 0.0, 0.01, 0.0, 0.01, 0.0, 0.3])
    rig.server.budget = budgets.get
    rig.server.timer = lambda: next(ticks)
    rig.server.on_want(A, wire.Want.of(ROOT, [0, 1]), now=0.0)
    served = rig.take()
    assert chunks(served) == [(A, 0), (A, 1)]
    spent = sum(len(m.encode()) for _, m in served)
    assert budgets[7].wait_total(0.0) == 0.0  # 1000 bytes were there: not spent yet
    assert budgets[7].free.wait(0.0) == 0.0  # chunks leave the free requests' share alone
    # an inventory's answer over link 7 takes the rest (mesh/runtime/streams.py charges it)
    budgets[7].charge(1000 - spent + 500, 0.0, now=0.0)
    assert budgets[7].free.wait(0.0) > 0  # the inventory spent its own share, and the total
    rig.server.on_want(B, wire.Want.of(ROOT, [2]), now=0.0)
    assert [m for _, m in rig.take()] == [wire.Refuse(ROOT, "busy")]
    assert rig.counters["files_refused_answer_budget"] == 1
    # the refusal cost B's and the link's buckets nothing; link 8 has its own budget
    rig.server.on_want(C, wire.Want.of(ROOT, [2]), now=0.0)
    assert chunks(rig.take()) == [(C, 2)]
    # refilled after half a second at 1000 bytes a second: served again
    rig.server.on_want(B, wire.Want.of(ROOT, [3]), now=0.6)
    assert chunks(rig.take()) == [(B, 3)]
    # loop time is charged too: an answer that took 0.3 s spends the 0.25 s burst
    rig.server.on_want(A, wire.Want.of(ROOT, [4]), now=10.0)
    assert chunks(rig.take()) == [(A, 4)]
    assert budgets[7].wait_total(10.0) > 0 and budgets[7].wait(10.0) > 0


def test_a_peer_over_its_own_rate_is_refused_and_counted() -> None:
    rig = Rig(request_rate=10.0, request_burst=4.0)
    rig.server.on_want(A, wire.Want.of(ROOT, [0, 1, 2, 3, 4]), now=0.0)
    assert [m for _, m in rig.take()] == [wire.Refuse(ROOT, "busy")]
    assert rig.counters["files_refused_busy"] == 1


def test_a_partial_holder_serves_what_it_has_and_tells_watchers_of_more() -> None:
    rig = Rig(state="fetching")
    rig.server.on_query(A, wire.Query(ROOT))
    assert rig.take() == [(A, wire.Have(ROOT, 10, wire.bitfield(10, {1, 2})))]
    rig.server.on_want(A, wire.Want.of(ROOT, [1, 2, 3]), now=0.0)
    sent = rig.take()
    # chunk 3 is not here yet: what is held is said again, and the rest is served
    assert sent[0] == (A, wire.Have(ROOT, 10, wire.bitfield(10, {1, 2})))
    assert [(p, m.index, m.sealed) for p, m in sent[1:] if isinstance(m, wire.Chunk)] == [
        (A, 1, b"part1               "),
        (A, 2, b"part2               "),
    ]
    assert rig.counters["files_wants_not_held"] == 1
    # more arrives: A, which asked, hears of it, at most once per interval
    rig.held.add(3)
    rig.server.kept_more(FILE_ID)
    rig.server.tell(now=1.0)
    assert rig.take() == [(A, wire.Have(ROOT, 10, wire.bitfield(10, {1, 2, 3})))]
    rig.held.add(4)
    rig.server.kept_more(FILE_ID)
    rig.server.tell(now=1.0 + HAVE_INTERVAL / 2)
    assert rig.take() == []
    assert rig.server.next_tell() == 1.0 + HAVE_INTERVAL
    rig.server.tell(now=1.0 + HAVE_INTERVAL)
    assert len(rig.take()) == 1
    rig.server.completed(FILE_ID, ROOT, 10)
    assert rig.take() == [(A, wire.Have(ROOT, 10, None))]
    assert rig.server.watchers == {}


def test_strangers_are_refused_and_unknown_files_get_no_answer() -> None:
    rig = Rig()
    rig.server.on_query(STRANGER, wire.Query(ROOT))
    rig.server.on_query(A, wire.Query(bytes(32)))
    assert rig.take() == [(STRANGER, wire.Refuse(ROOT, "not_member"))]
    assert rig.counters == {"files_refused_not_member": 1, "files_query_unknown": 1}
